//! Arbitrary configuration and Service manifests: allocation results or
//! errors, never a panic, and never one address held by two Services that
//! may not share it; then the BGP plan of a node, whose every route covers
//! an address the allocator gave out. The input is split at the first NUL into configuration
//! and Services so both halves get mutated.
#![no_main]

use std::collections::HashMap;
use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (config_text, services_text) = text.split_once('\0').unwrap_or(("", &text));
    let Ok(loaded) = lb_core::config::load(&[("config.yaml", config_text)]) else { return };
    let Ok(services) = lb_core::manifest::services(services_text) else { return };
    let mut allocator = lb_ipam::Allocator::new(loaded.config);
    let _ = allocator.allocate_all(&services);
    let _ = allocator.pool_stats();

    // The final state: each Service as last written in the manifests.
    let latest: HashMap<&lb_core::ServiceKey, &lb_core::Service> = services.iter().map(|s| (&s.key, s)).collect();
    let mut holders: HashMap<IpAddr, Vec<&lb_core::Service>> = HashMap::new();
    for (key, assignment) in allocator.assignments() {
        for ip in assignment.addresses.iter() {
            holders.entry(ip).or_default().push(latest[key]);
        }
    }
    let assigned: Vec<(&lb_core::Service, Vec<IpAddr>)> =
        allocator.assignments().map(|(key, a)| (latest[key], a.addresses.to_vec())).collect();
    let views: Vec<lb_core::planner::AssignedService<'_>> =
        assigned.iter().map(|(service, ips)| lb_core::planner::AssignedService { service, ips }).collect();
    // Nodes and EndpointSlices from the same text: the manifests' other kinds.
    let nodes = lb_core::manifest::nodes(services_text).unwrap_or_default();
    let endpoints = lb_core::manifest::endpoint_slices(services_text).ok().map(lb_core::endpoints::Endpoints::new);
    let world = lb_core::planner::World {
        config: allocator.config(),
        services: &views,
        endpoints: endpoints.as_ref(),
        nodes: &nodes,
    };
    let name = nodes.first().map_or("node", |n| n.name.as_str());
    let plan = lb_core::planner::plan_bgp(&world, name);
    for peer in &plan.peers {
        for prefix in peer.routes.keys() {
            assert!(
                assigned.iter().any(|(_, ips)| ips.iter().any(|ip| prefix.contains(*ip))),
                "{prefix} announced to {} covers no assigned address",
                peer.peer
            );
        }
    }

    for (ip, list) in holders {
        if let [first, rest @ ..] = list.as_slice() {
            for other in rest {
                assert!(
                    first.sharing_key().is_some() && first.sharing_key() == other.sharing_key(),
                    "{ip} held by {} and {} without a common sharing key",
                    first.key,
                    other.key
                );
            }
        }
    }
});
