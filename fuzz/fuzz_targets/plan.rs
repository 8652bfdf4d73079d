//! A structured world ([`lb_fuzz::WorldInput`]: a configuration built from
//! typed resources through validation, Services, namespaces, nodes and
//! endpoints built directly) through the pipeline `lb plan` runs:
//! allocation results or errors, never a panic; never one address held by
//! two Services that may not share it; every route to a peer covers an
//! address the allocator gave out; and allocating the same world again
//! moves nothing. Parsing raw manifests is `config_parse`'s business: here
//! every input is a valid world, so the fuzzer's time goes to the
//! allocator and the planner.
#![no_main]

use std::collections::HashMap;
use std::net::IpAddr;

use lb_fuzz::WorldInput;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: WorldInput| {
    let Some(observed) = input.observed() else { return };
    let mut allocator = lb_ipam::Allocator::new(observed.config.clone());
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

    // The final state: each Service as last listed.
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

    // Nothing changed, so nothing moves: a second pass gives every Service
    // what it holds (a Service listed twice is the last one listed).
    let before: HashMap<lb_core::ServiceKey, Vec<IpAddr>> =
        allocator.assignments().map(|(k, a)| (k.clone(), a.addresses.to_vec())).collect();
    let _ = lb_ipam::pipeline::allocate(&mut allocator, &observed);
    let after: HashMap<lb_core::ServiceKey, Vec<IpAddr>> =
        allocator.assignments().map(|(k, a)| (k.clone(), a.addresses.to_vec())).collect();
    let unique = observed.services.iter().map(|s| &s.key).collect::<std::collections::HashSet<_>>().len();
    if unique == observed.services.len() {
        assert_eq!(before, after, "a second pass over the same world moved addresses");
    }
});
