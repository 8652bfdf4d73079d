//! The pipeline from the observed world to the plan value, written once:
//! allocate, take the assigned Services into the planner's world, plan each
//! node. `lb plan`, the standalone mode, benches, fuzz targets and embedders
//! all run it; a controller runs [`allocate`] alone, a speaker
//! [`lb_core::plan::plan_node`] alone.
//!
//! Expected flow: keep one [`Allocator`] across changes (it holds the
//! assignments; a new one would move addresses), and on each change of the
//! world call [`allocate`] (or [`plan_cluster`]) with the whole world.
//! Before the first call, [`restore`] gives Services the addresses a
//! previous run recorded, so a restart moves nothing.
//!
//! ```
//! use lb_core::plan::Observed;
//! let yaml = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: web}\nspec: {addresses: [192.0.2.0/28]}\n";
//! let config = lb_core::config::load(&[("pools.yaml", yaml)]).unwrap().config;
//! let services = lb_core::manifest::services("kind: Service\nmetadata: {name: a}\nspec: {type: LoadBalancer}\n").unwrap();
//! let observed = Observed { config: config.clone(), services, ..Observed::default() };
//! let mut allocator = lb_ipam::Allocator::new(config);
//! let plan = lb_ipam::pipeline::plan_cluster(&mut allocator, &observed, &["node-a"]);
//! assert_eq!(plan.services[0].ips, ["192.0.2.0".parse::<std::net::IpAddr>().unwrap()]);
//! ```

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

pub use lb_core::plan::Observed;
use lb_core::plan::{Assignments, ClusterPlan, ServiceAssignment, assigned_services, plan_node};
use lb_core::{Service, ServiceKey};

use crate::Allocator;

/// Gives Services without `status.loadBalancer.ingress` the addresses a
/// previous run recorded for them (`namespace/name` to addresses), so
/// that allocation restores them first, whatever the input order now.
pub fn restore(services: &mut [Service], recorded: &BTreeMap<String, Vec<IpAddr>>) {
    for service in services.iter_mut().filter(|s| s.ingress_ips.is_empty()) {
        if let Some(ips) = recorded.get(service.key.as_str()) {
            service.ingress_ips.clone_from(ips);
        }
    }
}

/// Runs allocation for the whole observed world on `allocator`: installs a
/// changed configuration (releasing what it no longer allows), the
/// namespaces, releases Services that are gone, then allocates every
/// Service: those with status addresses first, then those requesting
/// specific addresses, then the rest ([`Allocator::allocate_all`]). The result has one entry per
/// handled Service, in the order of `observed.services`.
pub fn allocate(allocator: &mut Allocator, observed: &Observed) -> Assignments {
    if *allocator.config() != observed.config {
        allocator.set_config(observed.config.clone(), &observed.services);
    }
    allocator.set_namespaces(observed.namespaces.iter().cloned());
    let present: HashSet<&ServiceKey> = observed.services.iter().map(|s| &s.key).collect();
    let gone: Vec<ServiceKey> =
        allocator.assignments().map(|(k, _)| k).filter(|k| !present.contains(k)).cloned().collect();
    for key in &gone {
        allocator.release(key);
    }
    let results = allocator.allocate_all(&observed.services);
    let services = observed
        .services
        .iter()
        .zip(results)
        .filter_map(|(service, result)| match result {
            Ok(None) => None,
            Ok(Some((addresses, pool))) => Some(ServiceAssignment {
                service: service.key.clone(),
                ips: addresses.to_vec(),
                pool: Some(pool),
                error: None,
            }),
            Err(e) => Some(ServiceAssignment {
                service: service.key.clone(),
                ips: Vec::new(),
                pool: None,
                error: Some(e.to_string()),
            }),
        })
        .collect();
    Assignments { services, pools: allocator.pool_stats() }
}

/// Both halves: [`allocate`], then the plan of each of `nodes` (in that
/// order) from the Services as assigned.
pub fn plan_cluster(allocator: &mut Allocator, observed: &Observed, nodes: &[&str]) -> ClusterPlan {
    let assignments = allocate(allocator, observed);
    let assigned = assigned_services(&observed.services, &assignments.services);
    let world = observed.world(&assigned);
    let nodes = nodes.iter().map(|n| plan_node(&world, n)).collect();
    ClusterPlan::new(assignments, nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(services: &str) -> Observed {
        let yaml = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: web}\nspec: {addresses: [192.0.2.0/30]}\n---\napiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: all}\n---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: tor}\nspec: {myASN: 64512, peerASN: 64513, peerAddress: 198.51.100.1}\n";
        let config = match lb_core::config::load(&[("c.yaml", yaml)]) {
            Ok(l) => l.config,
            Err(e) => panic!("{e:?}"),
        };
        let services = lb_core::manifest::services(services).expect("services");
        Observed { config, services, ..Observed::default() }
    }

    const SVC: &str = "---\nkind: Service\nmetadata: {name: NAME}\nspec: {type: LoadBalancer}\n";

    fn svc(names: &[&str]) -> String {
        names.iter().map(|n| SVC.replace("NAME", n)).collect()
    }

    fn ips(plan: &Assignments) -> Vec<(String, Vec<String>)> {
        plan.services.iter().map(|s| (s.service.to_string(), s.ips.iter().map(ToString::to_string).collect())).collect()
    }

    #[test]
    fn allocator_lives_across_changes() {
        let mut allocator = Allocator::new(observed("").config);
        let first = allocate(&mut allocator, &observed(&svc(&["a", "b"])));
        assert_eq!(
            ips(&first),
            [("default/a".into(), vec!["192.0.2.0".into()]), ("default/b".into(), vec!["192.0.2.1".into()])]
        );
        // a is gone: its address is free again, b keeps its own.
        let second = allocate(&mut allocator, &observed(&svc(&["c", "b"])));
        assert_eq!(
            ips(&second),
            [("default/c".into(), vec!["192.0.2.0".into()]), ("default/b".into(), vec!["192.0.2.1".into()])]
        );
        assert_eq!(second.pools[0].ipv4_in_use, 2);
        assert!(allocator.assignment(&ServiceKey::new("default", "a")).is_none());
    }

    #[test]
    fn restore_gives_recorded_addresses_back_first() {
        let mut world = observed(&svc(&["a", "b"]));
        let recorded: BTreeMap<String, Vec<IpAddr>> =
            [("default/b".to_string(), vec!["192.0.2.0".parse().expect("IP")])].into();
        restore(&mut world.services, &recorded);
        let mut allocator = Allocator::new(world.config.clone());
        let plan = allocate(&mut allocator, &world);
        assert_eq!(
            ips(&plan),
            [("default/a".into(), vec!["192.0.2.1".into()]), ("default/b".into(), vec!["192.0.2.0".into()])]
        );
    }

    #[test]
    fn requested_addresses_win_over_earlier_unpinned_services() {
        let yaml = format!(
            "{}---\nkind: Service\nmetadata: {{name: b, annotations: {{metallb.io/loadBalancerIPs: 192.0.2.0}}}}\nspec: {{type: LoadBalancer}}\n---\nkind: Service\nmetadata: {{name: c}}\nspec: {{type: LoadBalancer, loadBalancerIP: 192.0.2.1}}\n",
            svc(&["a"])
        );
        let world = observed(&yaml);
        let mut allocator = Allocator::new(world.config.clone());
        let plan = allocate(&mut allocator, &world);
        assert_eq!(
            ips(&plan),
            [
                ("default/a".into(), vec!["192.0.2.2".into()]),
                ("default/b".into(), vec!["192.0.2.0".into()]),
                ("default/c".into(), vec!["192.0.2.1".into()]),
            ]
        );
    }

    #[test]
    fn cluster_plan_announces_what_was_assigned() {
        let mut world = observed(&svc(&["a", "b", "c", "d", "e", "f"]));
        world.services[1].service_type = lb_core::service::ServiceType::ClusterIp;
        let mut allocator = Allocator::new(world.config.clone());
        let plan = plan_cluster(&mut allocator, &world, &["n1", "n2"]);
        // b is not handled; f finds the /30 full.
        let names: Vec<&str> = plan.services.iter().map(|s| s.service.name()).collect();
        assert_eq!(names, ["a", "c", "d", "e", "f"]);
        assert!(plan.services[4].error.is_some() && plan.services[4].ips.is_empty());
        assert_eq!(plan.nodes.len(), 2);
        let routes: Vec<String> = plan.nodes[1].bgp[0].routes.keys().map(ToString::to_string).collect();
        assert_eq!(routes, ["192.0.2.0/32", "192.0.2.1/32", "192.0.2.2/32", "192.0.2.3/32"]);
        assert_eq!(plan.nodes[1].node, "n2");
        assert_eq!(plan.nodes[1].services.len(), 4, "one decision per assigned address");
    }
}
