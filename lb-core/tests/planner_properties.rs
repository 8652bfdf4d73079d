//! Properties of the announcement planner over random clusters: random
//! advertisements (selectors, peers, aggregation, communities), peers,
//! nodes (labels, exclusion, network condition), Services (traffic policy,
//! labels) and endpoints.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::IpAddr;

use lb_core::endpoints::{Endpoint, EndpointSlice, Endpoints};
use lb_core::node::EXCLUDE_FROM_LOAD_BALANCERS;
use lb_core::planner::{AssignedService, NotAnnounced, World, plan_bgp};
use lb_core::selector::any_matches;
use lb_core::service::TrafficPolicy;
use lb_core::{Config, Node, Service};
use proptest::prelude::*;

const RACKS: [&str; 2] = ["r1", "r2"];
const TIERS: [&str; 2] = ["gold", "iron"];

#[derive(Debug, Clone)]
struct Advertisement {
    rack: Option<usize>,
    tier: Option<usize>,
    peers: Vec<usize>,
    aggregation: u8,
    communities: Vec<u16>,
}

#[derive(Debug, Clone)]
struct ServiceSpec {
    local: bool,
    tier: usize,
    /// Nodes with a ready endpoint, and with a not-ready one.
    ready_on: Vec<usize>,
    not_ready_on: Vec<usize>,
}

#[derive(Debug, Clone)]
struct NodeSpec {
    rack: usize,
    excluded: bool,
    unavailable: bool,
}

fn advertisement() -> impl Strategy<Value = Advertisement> {
    (
        proptest::option::of(0..2usize),
        proptest::option::of(0..2usize),
        proptest::collection::vec(0..3usize, 0..3),
        prop_oneof![Just(32u8), Just(30), Just(24)],
        // Unique within one advertisement, as validation demands.
        proptest::collection::btree_set(1..5u16, 0..3),
    )
        .prop_map(|(rack, tier, peers, aggregation, communities)| Advertisement {
            rack,
            tier,
            peers,
            aggregation,
            communities: communities.into_iter().collect(),
        })
}

fn render(ads: &[Advertisement], peer_racks: &[Option<usize>]) -> String {
    let mut y = String::from(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: pool}\nspec: {addresses: [192.0.2.0/24]}\n",
    );
    for (i, rack) in peer_racks.iter().enumerate() {
        let selector =
            rack.map(|r| format!(", nodeSelectors: [{{matchLabels: {{rack: {}}}}}]", RACKS[r])).unwrap_or_default();
        let _ = write!(
            y,
            "---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: p{i}}}\nspec: {{myASN: 64500, peerASN: 64501, peerAddress: 198.51.100.{}{selector}}}\n",
            i + 1
        );
    }
    for (i, a) in ads.iter().enumerate() {
        let _ =
            write!(y, "---\napiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: a{i}}}\nspec:\n");
        // serviceSelectors need /32 (MetalLB's rule): selectors win here.
        let aggregation = if a.tier.is_some() { 32 } else { a.aggregation };
        let _ = writeln!(y, "  aggregationLength: {aggregation}");
        if let Some(r) = a.rack {
            let _ = writeln!(y, "  nodeSelectors: [{{matchLabels: {{rack: {}}}}}]", RACKS[r]);
        }
        if let Some(t) = a.tier {
            let _ = writeln!(y, "  serviceSelectors: [{{matchLabels: {{tier: {}}}}}]", TIERS[t]);
        }
        let peers: BTreeSet<usize> = a.peers.iter().copied().filter(|p| *p < peer_racks.len()).collect();
        if !peers.is_empty() {
            let names: Vec<String> = peers.iter().map(|p| format!("p{p}")).collect();
            let _ = writeln!(y, "  peers: [{}]", names.join(", "));
        }
        if !a.communities.is_empty() {
            let c: Vec<String> = a.communities.iter().map(|c| format!("\"64500:{c}\"")).collect();
            let _ = writeln!(y, "  communities: [{}]", c.join(", "));
        }
    }
    y
}

fn cluster() -> impl Strategy<Value = (Vec<Advertisement>, Vec<Option<usize>>, Vec<NodeSpec>, Vec<ServiceSpec>)> {
    (
        proptest::collection::vec(advertisement(), 0..4),
        proptest::collection::vec(proptest::option::of(0..2usize), 1..4),
        proptest::collection::vec((0..2usize, proptest::bool::weighted(0.2), proptest::bool::weighted(0.2)), 1..4),
        proptest::collection::vec(
            (
                any::<bool>(),
                0..2usize,
                proptest::collection::vec(0..4usize, 0..3),
                proptest::collection::vec(0..4usize, 0..2),
            ),
            1..8,
        ),
    )
        .prop_map(|(ads, peers, nodes, services)| {
            let nodes = nodes
                .into_iter()
                .map(|(rack, excluded, unavailable)| NodeSpec { rack, excluded, unavailable })
                .collect();
            let services = services
                .into_iter()
                .map(|(local, tier, ready_on, not_ready_on)| ServiceSpec { local, tier, ready_on, not_ready_on })
                .collect();
            (ads, peers, nodes, services)
        })
}

fn node(i: usize, spec: &NodeSpec) -> Node {
    let mut n = Node::new(&format!("n{i}"));
    n.labels.insert("rack".into(), RACKS[spec.rack].into());
    if spec.excluded {
        n.labels.insert(EXCLUDE_FROM_LOAD_BALANCERS.into(), String::new());
    }
    n.network_unavailable = spec.unavailable;
    n
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn plans_follow_the_rules((ads, peer_racks, node_specs, service_specs) in cluster()) {
        let config: Config = match lb_core::config::load(&[("c.yaml", &render(&ads, &peer_racks))]) {
            Ok(l) => l.config,
            Err(e) => return Err(TestCaseError::fail(format!("{e:?}"))),
        };
        let nodes: Vec<Node> = node_specs.iter().enumerate().map(|(i, s)| node(i, s)).collect();
        let services: Vec<Service> = service_specs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut svc = Service::new("default", &format!("s{i}"));
                svc.external_traffic_policy = if s.local { TrafficPolicy::Local } else { TrafficPolicy::Cluster };
                svc.labels.insert("tier".into(), TIERS[s.tier].into());
                svc
            })
            .collect();
        let ips: Vec<Vec<IpAddr>> = (0..services.len()).map(|i| vec![IpAddr::from([192, 0, 2, 10 + i as u8])]).collect();
        let slices: Vec<EndpointSlice> = service_specs
            .iter()
            .zip(&services)
            .map(|(s, svc)| EndpointSlice {
                service: svc.key.clone(),
                endpoints: s
                    .ready_on
                    .iter()
                    .map(|n| (n, true))
                    .chain(s.not_ready_on.iter().map(|n| (n, false)))
                    .map(|(n, ready)| Endpoint { node_name: Some(format!("n{n}")), ready: Some(ready), serving: None })
                    .collect(),
            })
            .collect();
        let endpoints = Endpoints::new(slices);
        let assigned: Vec<AssignedService<'_>> =
            services.iter().zip(&ips).map(|(service, ips)| AssignedService { service, ips }).collect();
        let world = World { config: &config, services: &assigned, endpoints: Some(&endpoints), nodes: &nodes };

        for n in &nodes {
            let plan = plan_bgp(&world, &n.name);
            prop_assert_eq!(&plan, &plan_bgp(&world, &n.name), "deterministic");

            // Exactly the peers whose nodeSelectors pick this node.
            let expected: Vec<&str> = config
                .peers
                .iter()
                .filter(|p| any_matches(&p.node_selectors, &n.labels))
                .map(|p| p.name.as_str())
                .collect();
            let got: Vec<&str> = plan.peers.iter().map(|p| p.peer.as_str()).collect();
            prop_assert_eq!(got, expected);

            let announced: Vec<(&Service, IpAddr)> = plan
                .services
                .iter()
                .filter(|a| a.result.is_ok())
                .map(|a| (services.iter().find(|s| s.key == a.service).expect("known"), a.ip))
                .collect();
            if n.exclusion().is_some() {
                prop_assert!(announced.is_empty());
                prop_assert!(plan.peers.iter().all(|p| p.routes.is_empty()));
            }
            for (svc, _) in &announced {
                let served = match svc.external_traffic_policy {
                    TrafficPolicy::Local => endpoints.serving_on(&svc.key, &n.name),
                    TrafficPolicy::Cluster => endpoints.serving_anywhere(&svc.key),
                };
                prop_assert!(served, "{} announced from {} without a serving endpoint", svc.key, n.name);
            }
            for a in &plan.services {
                if a.result == Err(NotAnnounced::NoAdvertisement) {
                    prop_assert!(config.bgp_advertisements.is_empty());
                }
            }
            for p in &plan.peers {
                for (prefix, attrs) in &p.routes {
                    // Every route covers an address announced from here...
                    prop_assert!(announced.iter().any(|(_, ip)| prefix.contains(*ip)), "{prefix} covers nothing");
                    // ...with its communities sorted and without duplicates.
                    prop_assert!(attrs.communities.windows(2).all(|w| w[0] < w[1]), "{:?}", attrs.communities);
                }
                // Every announced address is covered towards some peer.
            }
            for (svc, ip) in &announced {
                prop_assert!(
                    plan.peers.iter().any(|p| p.routes.keys().any(|prefix| prefix.contains(*ip))),
                    "{} {ip} announced but in no peer's routes", svc.key
                );
            }
        }
    }
}
