//! The announcement planner over a cluster's worth of Services, against
//! the least work any planner must do: one route per address into a sorted
//! map; and the whole pipeline (allocation, then a node's plan) as `lb
//! plan` runs it. The planner re-runs on every change, so its cost bounds how fast a
//! speaker can follow the cluster.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ipnetwork::IpNetwork;
use lb_core::endpoints::{Endpoint, EndpointSlice, Endpoints};
use lb_core::plan::{Observed, assigned_services, plan_node};
use lb_core::planner::RouteAttributes;
use lb_core::service::{ServiceType, TrafficPolicy};
use lb_core::{Config, Node, Service};
use lb_ipam::{Allocator, pipeline};

const SERVICES: u32 = 10_000;

fn config() -> Config {
    let mut y = String::from(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: pool}\nspec: {addresses: [10.0.0.0/16]}\n---\napiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: adv}\nspec: {localPref: 100, communities: [\"64512:1\"]}\n",
    );
    for i in 0..3 {
        let _ = write!(
            y,
            "---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: p{i}}}\nspec: {{myASN: 64512, peerASN: 64513, peerAddress: 198.51.100.{}}}\n",
            i + 1
        );
    }
    match lb_core::config::load(&[("bench.yaml", &y)]) {
        Ok(l) => l.config,
        Err(e) => panic!("{e:?}"),
    }
}

fn bench(c: &mut Criterion) {
    let config = config();
    let services: Vec<Service> = (0..SERVICES)
        .map(|i| {
            let mut s = Service::new("default", &format!("s{i}"));
            s.service_type = ServiceType::LoadBalancer;
            // Half Local, so endpoints are looked up per node.
            if i % 2 == 0 {
                s.external_traffic_policy = TrafficPolicy::Local;
            }
            s
        })
        .collect();
    let endpoints = Endpoints::new(services.iter().map(|s| EndpointSlice {
        service: s.key.clone(),
        endpoints: vec![Endpoint { node_name: Some("node-a".into()), ready: Some(true), serving: None }],
    }));
    let observed = Observed {
        config: config.clone(),
        services,
        namespaces: Vec::new(),
        nodes: vec![Node::new("node-a")],
        endpoints: Some(endpoints),
    };
    // The controller's half once; the speaker's half is what re-runs.
    let assignments = pipeline::allocate(&mut Allocator::new(config.clone()), &observed);
    let assigned = assigned_services(&observed.services, &assignments.services);
    let world = observed.world(&assigned);

    let mut group = c.benchmark_group("plan_10k_services_3_peers");
    group.bench_function("plan_node", |b| b.iter(|| black_box(plan_node(black_box(&world), "node-a"))));
    // The floor: each address once into each peer's sorted map, no rules.
    group.bench_function("bare_route_maps", |b| {
        let attrs =
            RouteAttributes { local_pref: Some(100), communities: config.bgp_advertisements[0].communities.clone() };
        b.iter(|| {
            let maps: Vec<BTreeMap<IpNetwork, RouteAttributes>> =
                (0..3).map(|_| assigned.iter().map(|s| (IpNetwork::from(s.ips[0]), attrs.clone())).collect()).collect();
            black_box(maps)
        })
    });
    group.finish();

    // The whole pipeline as `lb plan` runs it: allocation from nothing, then one node.
    let mut group = c.benchmark_group("plan_cluster_10k_services_1_node");
    group.sample_size(20);
    group.bench_function("plan_cluster", |b| {
        b.iter(|| {
            let mut allocator = Allocator::new(config.clone());
            black_box(pipeline::plan_cluster(&mut allocator, black_box(&observed), &["node-a"]))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
