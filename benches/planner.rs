//! The announcement planner over a cluster's worth of Services, against
//! the least work any planner must do: one route per address into a sorted
//! map. The planner re-runs on every change, so its cost bounds how fast a
//! speaker can follow the cluster.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, criterion_group, criterion_main};
use ipnetwork::IpNetwork;
use lb_core::endpoints::{Endpoint, EndpointSlice, Endpoints};
use lb_core::planner::{AssignedService, RouteAttributes, World, plan_bgp};
use lb_core::service::TrafficPolicy;
use lb_core::{Config, Node, Service};

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
            // Half Local, so endpoints are looked up per node.
            if i % 2 == 0 {
                s.external_traffic_policy = TrafficPolicy::Local;
            }
            s
        })
        .collect();
    let ips: Vec<Vec<IpAddr>> =
        (0..SERVICES).map(|i| vec![IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + i))]).collect();
    let assigned: Vec<AssignedService<'_>> =
        services.iter().zip(&ips).map(|(service, ips)| AssignedService { service, ips }).collect();
    let endpoints = Endpoints::new(services.iter().map(|s| EndpointSlice {
        service: s.key.clone(),
        endpoints: vec![Endpoint { node_name: Some("node-a".into()), ready: Some(true), serving: None }],
    }));
    let nodes = [Node::new("node-a")];
    let world = World { config: &config, services: &assigned, endpoints: Some(&endpoints), nodes: &nodes };

    let mut group = c.benchmark_group("plan_10k_services_3_peers");
    group.bench_function("plan_bgp", |b| b.iter(|| black_box(plan_bgp(black_box(&world), "node-a"))));
    // The floor: each address once into each peer's sorted map, no rules.
    group.bench_function("bare_route_maps", |b| {
        let attrs =
            RouteAttributes { local_pref: Some(100), communities: config.bgp_advertisements[0].communities.clone() };
        b.iter(|| {
            let maps: Vec<BTreeMap<IpNetwork, RouteAttributes>> =
                (0..3).map(|_| ips.iter().map(|v| (IpNetwork::from(v[0]), attrs.clone())).collect()).collect();
            black_box(maps)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
