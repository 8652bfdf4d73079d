//! The announcement planner against an oracle written from MetalLB's rules,
//! over random clusters built so that the answer is known by construction:
//! labels and selectors come from small sets (a rack per node, a tier per
//! Service) and are matched here by hand; endpoints are drawn per node with
//! a known state; prefixes are masked here with integer arithmetic. Nothing
//! of the planner's own code (selectors, endpoint lookups, aggregation)
//! decides the expected answer.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lb_core::endpoints::{Endpoint, EndpointSlice, Endpoints};
use lb_core::node::EXCLUDE_FROM_LOAD_BALANCERS;
use lb_core::planner::{AssignedService, World, plan_bgp};
use lb_core::service::TrafficPolicy;
use lb_core::{Config, Node, Service};
use proptest::prelude::*;

const RACKS: [&str; 2] = ["r1", "r2"];
const TIERS: [&str; 2] = ["gold", "iron"];

#[derive(Debug, Clone)]
struct PeerSpec {
    /// `nodeSelectors: rack`, or every node.
    rack: Option<usize>,
    v6: bool,
    dual_stack: bool,
}

#[derive(Debug, Clone)]
struct AdvertisementSpec {
    rack: Option<usize>,
    /// `serviceSelectors: tier` (then aggregation is a host route and a
    /// localPref may be set: MetalLB's conflict rule skips such advertisements).
    tier: Option<usize>,
    peers: BTreeSet<usize>,
    length_v4: u8,
    length_v6: u8,
    local_pref: Option<u32>,
    communities: BTreeSet<u16>,
}

/// One endpoint of a Service on one node, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndpointState {
    None,
    Ready,
    NotReady,
    /// Terminating, not ready, but still serving: it counts.
    Draining,
}

impl EndpointState {
    fn serves(self) -> bool {
        matches!(self, EndpointState::Ready | EndpointState::Draining)
    }
}

#[derive(Debug, Clone)]
struct ServiceSpec {
    local: bool,
    tier: usize,
    v6: bool,
    /// The endpoint on each node, by node index.
    endpoints: Vec<EndpointState>,
}

#[derive(Debug, Clone)]
struct NodeSpec {
    rack: usize,
    excluded: bool,
    unavailable: bool,
}

#[derive(Debug, Clone)]
struct Cluster {
    peers: Vec<PeerSpec>,
    advertisements: Vec<AdvertisementSpec>,
    nodes: Vec<NodeSpec>,
    services: Vec<ServiceSpec>,
    /// Without endpoint information every Service is served everywhere.
    with_endpoints: bool,
}

fn endpoint_state() -> impl Strategy<Value = EndpointState> {
    prop_oneof![
        3 => Just(EndpointState::None),
        2 => Just(EndpointState::Ready),
        1 => Just(EndpointState::NotReady),
        1 => Just(EndpointState::Draining),
    ]
}

fn cluster() -> impl Strategy<Value = Cluster> {
    let peer = (proptest::option::of(0..2usize), any::<bool>(), proptest::bool::weighted(0.3))
        .prop_map(|(rack, v6, dual_stack)| PeerSpec { rack, v6, dual_stack });
    let advertisement = (
        proptest::option::of(0..2usize),
        proptest::option::of(0..2usize),
        proptest::collection::btree_set(0..3usize, 0..3),
        prop_oneof![Just(32u8), Just(30), Just(24)],
        prop_oneof![Just(128u8), Just(120), Just(64)],
        proptest::option::of(prop_oneof![Just(50u32), Just(100), Just(200)]),
        proptest::collection::btree_set(1..5u16, 0..3),
    )
        .prop_map(|(rack, tier, peers, length_v4, length_v6, local_pref, communities)| AdvertisementSpec {
            rack,
            tier,
            peers,
            length_v4: if tier.is_some() { 32 } else { length_v4 },
            length_v6: if tier.is_some() { 128 } else { length_v6 },
            local_pref: local_pref.filter(|_| tier.is_some()),
            communities,
        });
    let node = (0..2usize, proptest::bool::weighted(0.2), proptest::bool::weighted(0.2))
        .prop_map(|(rack, excluded, unavailable)| NodeSpec { rack, excluded, unavailable });
    (
        proptest::collection::vec(peer, 1..4),
        proptest::collection::vec(advertisement, 0..4),
        proptest::collection::vec(node, 1..4),
        any::<bool>(),
    )
        .prop_flat_map(|(peers, advertisements, nodes, with_endpoints)| {
            let n = nodes.len();
            let service = (any::<bool>(), 0..2usize, any::<bool>(), proptest::collection::vec(endpoint_state(), n))
                .prop_map(|(local, tier, v6, endpoints)| ServiceSpec { local, tier, v6, endpoints });
            proptest::collection::vec(service, 1..8).prop_map(move |services| Cluster {
                peers: peers.clone(),
                advertisements: advertisements.clone(),
                nodes: nodes.clone(),
                services,
                with_endpoints,
            })
        })
}

fn peer_address(i: usize, spec: &PeerSpec) -> IpAddr {
    if spec.v6 {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, i as u16 + 1))
    } else {
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, i as u8 + 1))
    }
}

fn service_ip(i: usize, spec: &ServiceSpec) -> IpAddr {
    if spec.v6 {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 10 + i as u16))
    } else {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10 + i as u8))
    }
}

fn render(c: &Cluster) -> String {
    let mut y = String::from(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: pool}\nspec: {addresses: [192.0.2.0/24, '2001:db8::/64']}\n",
    );
    for (i, p) in c.peers.iter().enumerate() {
        let selector =
            p.rack.map(|r| format!(", nodeSelectors: [{{matchLabels: {{rack: {}}}}}]", RACKS[r])).unwrap_or_default();
        let _ = write!(
            y,
            "---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: p{i}}}\nspec: {{myASN: 64500, peerASN: 64501, peerAddress: '{}', dualStackAddressFamily: {}{selector}}}\n",
            peer_address(i, p),
            p.dual_stack
        );
    }
    for (i, a) in c.advertisements.iter().enumerate() {
        let _ =
            write!(y, "---\napiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: a{i}}}\nspec:\n");
        let _ = writeln!(y, "  aggregationLength: {}\n  aggregationLengthV6: {}", a.length_v4, a.length_v6);
        if let Some(r) = a.rack {
            let _ = writeln!(y, "  nodeSelectors: [{{matchLabels: {{rack: {}}}}}]", RACKS[r]);
        }
        if let Some(t) = a.tier {
            let _ = writeln!(y, "  serviceSelectors: [{{matchLabels: {{tier: {}}}}}]", TIERS[t]);
        }
        let peers: Vec<String> = a.peers.iter().filter(|p| **p < c.peers.len()).map(|p| format!("p{p}")).collect();
        if !peers.is_empty() {
            let _ = writeln!(y, "  peers: [{}]", peers.join(", "));
        }
        if let Some(lp) = a.local_pref {
            let _ = writeln!(y, "  localPref: {lp}");
        }
        if !a.communities.is_empty() {
            let list: Vec<String> = a.communities.iter().map(|c| format!("\"64500:{c}\"")).collect();
            let _ = writeln!(y, "  communities: [{}]", list.join(", "));
        }
    }
    y
}

/// `ip` with the host bits beyond `len` cleared, written as the planner's
/// prefixes print.
fn masked(ip: IpAddr, len: u8) -> String {
    match ip {
        IpAddr::V4(a) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
            format!("{}/{len}", Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
            format!("{}/{len}", Ipv6Addr::from(u128::from(a) & mask))
        }
    }
}

/// A route as compared: local preference and the communities as text.
type Expected = BTreeMap<String, (Option<u32>, BTreeSet<String>)>;

/// What node `n` must announce to each of its peers (by name), from the rules alone.
fn oracle(c: &Cluster, n: usize) -> Vec<(String, Expected)> {
    let node = &c.nodes[n];
    let mine: Vec<usize> = (0..c.peers.len()).filter(|&p| c.peers[p].rack.is_none_or(|r| r == node.rack)).collect();
    let mut tables: Vec<Expected> = vec![Expected::new(); mine.len()];
    let takes_part = !node.excluded && !node.unavailable;
    for (i, s) in c.services.iter().enumerate() {
        let served =
            !c.with_endpoints || if s.local { s.endpoints[n].serves() } else { s.endpoints.iter().any(|e| e.serves()) };
        if !takes_part || !served {
            continue;
        }
        let ip = service_ip(i, s);
        for a in &c.advertisements {
            let node_ok = a.rack.is_none_or(|r| r == node.rack);
            let service_ok = a.tier.is_none_or(|t| t == s.tier);
            if !node_ok || !service_ok {
                continue;
            }
            let prefix = masked(ip, if s.v6 { a.length_v6 } else { a.length_v4 });
            let named: Vec<usize> = a.peers.iter().copied().filter(|p| *p < c.peers.len()).collect();
            for (table, &p) in tables.iter_mut().zip(&mine) {
                let peer = &c.peers[p];
                let carries = peer.v6 == s.v6 || peer.dual_stack;
                if !(named.is_empty() || named.contains(&p)) || !carries {
                    continue;
                }
                let entry = table.entry(prefix.clone()).or_default();
                entry.0 = entry.0.max(a.local_pref);
                entry.1.extend(a.communities.iter().map(|c| format!("64500:{c}")));
            }
        }
    }
    mine.iter().map(|p| format!("p{p}")).zip(tables).collect()
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

fn endpoint(node: usize, state: EndpointState) -> Option<Endpoint> {
    let (ready, serving) = match state {
        EndpointState::None => return None,
        EndpointState::Ready => (Some(true), None),
        EndpointState::NotReady => (Some(false), Some(false)),
        EndpointState::Draining => (Some(false), Some(true)),
    };
    Some(Endpoint { node_name: Some(format!("n{node}")), ready, serving })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn plans_equal_the_oracle(c in cluster()) {
        let config: Config = match lb_core::config::load(&[("c.yaml", &render(&c))]) {
            Ok(l) => l.config,
            Err(e) => return Err(TestCaseError::fail(format!("{e:?}"))),
        };
        let nodes: Vec<Node> = c.nodes.iter().enumerate().map(|(i, s)| node(i, s)).collect();
        let services: Vec<Service> = c
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut svc = Service::new("default", &format!("s{i}"));
                svc.external_traffic_policy = if s.local { TrafficPolicy::Local } else { TrafficPolicy::Cluster };
                svc.labels.insert("tier".into(), TIERS[s.tier].into());
                svc
            })
            .collect();
        let ips: Vec<Vec<IpAddr>> = c.services.iter().enumerate().map(|(i, s)| vec![service_ip(i, s)]).collect();
        let endpoints = Endpoints::new(c.services.iter().zip(&services).map(|(s, svc)| EndpointSlice {
            service: svc.key.clone(),
            endpoints: s.endpoints.iter().enumerate().filter_map(|(n, e)| endpoint(n, *e)).collect(),
        }));
        let assigned: Vec<AssignedService<'_>> =
            services.iter().zip(&ips).map(|(service, ips)| AssignedService { service, ips }).collect();
        let world = World {
            config: &config,
            services: &assigned,
            endpoints: c.with_endpoints.then_some(&endpoints),
            nodes: &nodes,
        };

        for (n, spec) in c.nodes.iter().enumerate() {
            let plan = plan_bgp(&world, &format!("n{n}"));
            let got: Vec<(String, Expected)> = plan
                .peers
                .iter()
                .map(|p| {
                    let routes = p
                        .routes
                        .iter()
                        .map(|(prefix, a)| (prefix.to_string(), (a.local_pref, a.communities.iter().map(ToString::to_string).collect())))
                        .collect();
                    (p.peer.clone(), routes)
                })
                .collect();
            let expected = oracle(&c, n);
            prop_assert_eq!(&got, &expected, "node n{}", n);

            for p in &plan.peers {
                for a in p.routes.values() {
                    prop_assert!(a.communities.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicates: {:?}", a.communities);
                }
            }
            let announced: BTreeSet<IpAddr> = plan.services.iter().filter(|s| s.result.is_ok()).map(|s| s.ip).collect();
            if spec.excluded || spec.unavailable {
                prop_assert!(announced.is_empty(), "an excluded node announces nothing");
            }
            // Every route covers an announced address, and every announced
            // address is covered by some route.
            for p in &plan.peers {
                for prefix in p.routes.keys() {
                    prop_assert!(announced.iter().any(|ip| prefix.contains(*ip)), "{} covers nothing announced", prefix);
                }
            }
            for ip in &announced {
                prop_assert!(
                    plan.peers.iter().any(|p| p.routes.keys().any(|prefix| prefix.contains(*ip))),
                    "{} announced but in no route", ip
                );
            }
        }
    }
}
