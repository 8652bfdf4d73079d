//! Arbitrary configuration and Service manifests: allocation results or
//! errors, never a panic, and never one address held by two Services that
//! may not share it; then the plan of a node (the same pipeline `lb plan`
//! runs), whose every route covers an address the allocator gave out. The
//! input is split at the first NUL into configuration and Services so both
//! halves get mutated.
#![no_main]

use std::collections::HashMap;
use std::net::IpAddr;

use lb_core::manifest::{ManifestFiles, load};
use lb_core::plan::Observed;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (config_text, services_text) = text.split_once('\0').unwrap_or(("", &text));
    let Ok(loaded) = lb_core::config::load(&[("config.yaml", config_text)]) else { return };
    // Services, Nodes and EndpointSlices from the same manifests.
    let files = [("manifests.yaml", services_text)];
    let Ok(manifests) = load(&ManifestFiles { services: &files, nodes: &files, endpoints: &files, ..Default::default() })
    else {
        return;
    };
    let observed = Observed::new(loaded.config.clone(), manifests);
    let mut allocator = lb_ipam::Allocator::new(loaded.config);
    let name = observed.nodes.first().map_or("node", |n| n.name.as_str());
    let plan = lb_ipam::pipeline::plan_cluster(&mut allocator, &observed, &[name]);

    for peer in &plan.nodes[0].bgp {
        for prefix in peer.routes.keys() {
            assert!(
                plan.services.iter().any(|s| s.ips.iter().any(|ip| prefix.contains(*ip))),
                "{prefix} announced to {} covers no assigned address",
                peer.peer
            );
        }
    }

    // The final state: each Service as last written in the manifests.
    let latest: HashMap<&lb_core::ServiceKey, &lb_core::Service> =
        observed.services.iter().map(|s| (&s.key, s)).collect();
    let mut holders: HashMap<IpAddr, Vec<&lb_core::Service>> = HashMap::new();
    for (key, assignment) in allocator.assignments() {
        for ip in assignment.addresses.iter() {
            holders.entry(ip).or_default().push(latest[key]);
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
