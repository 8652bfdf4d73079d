//! The announcement planner: from the observed world to what one node
//! should announce, over BGP, to each of its peers.
//!
//! One pure function, [`plan_bgp`], holds all of the policy (MetalLB's
//! rules); drivers only make the sessions carry what it returns. Because it
//! is a function of its inputs alone, every node of a cluster can be planned
//! in one process (`lb plan --nodes`), and a change in any input can be
//! re-planned and diffed cheaply.
//!
//! The rules, in the order they are applied to each assigned IP:
//! 1. the IP's pool (pools never overlap) must have a BGPAdvertisement;
//!    none means the pool is not announced over BGP;
//! 2. the node takes part: not labelled
//!    `node.kubernetes.io/exclude-from-external-load-balancers`, and not
//!    `NetworkUnavailable=True`;
//! 3. the Service is served: `externalTrafficPolicy: Local` needs a serving
//!    endpoint on this node, `Cluster` a serving endpoint anywhere; without
//!    endpoint information every Service counts as served everywhere;
//! 4. each advertisement of the pool whose `nodeSelectors` match this node
//!    and whose `serviceSelectors` match the Service gives a route: the IP
//!    masked to the aggregation length, with the advertisement's localPref
//!    and communities, to the advertisement's peers (all when none are
//!    named) among those this node talks to (BGPPeer `nodeSelectors`), and
//!    only to peers that carry the IP's family;
//! 5. the same prefix to the same peer from several advertisements or
//!    Services is one route: communities merged (sorted, deduplicated),
//!    the highest localPref kept.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnetwork::IpNetwork;

use crate::addr::Family;
use crate::community::Community;
use crate::config::{BgpAdvertisement, BgpPeer, Config};
use crate::endpoints::Endpoints;
use crate::node::{Node, NodeExclusion};
use crate::selector::any_matches;
use crate::service::{Service, ServiceKey, TrafficPolicy};

/// A Service and the IPs the allocator gave it.
#[derive(Debug, Clone, Copy)]
pub struct AssignedService<'a> {
    pub service: &'a Service,
    pub ips: &'a [IpAddr],
}

/// Everything the planner looks at.
#[derive(Debug, Clone, Copy)]
pub struct World<'a> {
    pub config: &'a Config,
    pub services: &'a [AssignedService<'a>],
    /// `None`: no endpoint information, every Service is served on every node
    /// (a host running its own backends, in standalone mode).
    pub endpoints: Option<&'a Endpoints>,
    pub nodes: &'a [Node],
}

/// The attributes of an announced route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteAttributes {
    /// Sent to iBGP peers only; the session drops it towards eBGP peers.
    pub local_pref: Option<u32>,
    /// Standard then large, sorted, without duplicates.
    pub communities: Vec<Community>,
}

impl RouteAttributes {
    /// The standard communities as `a:b`, as `lb plan` and `/status` print them.
    pub fn standard_communities(&self) -> impl Iterator<Item = String> + '_ {
        self.communities.iter().filter(|c| matches!(c, Community::Standard(_))).map(ToString::to_string)
    }

    /// The large communities as `a:b:c` (without the `large:` of the configuration).
    pub fn large_communities(&self) -> impl Iterator<Item = String> + '_ {
        self.communities.iter().filter_map(|c| match c {
            Community::Large(a, b, c) => Some(format!("{a}:{b}:{c}")),
            Community::Standard(_) => None,
        })
    }

    fn merge(&mut self, other: &RouteAttributes) {
        self.local_pref = self.local_pref.max(other.local_pref);
        self.communities.extend_from_slice(&other.communities);
        self.communities.sort_unstable();
        self.communities.dedup();
    }
}

/// What one node announces to one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerPlan {
    /// The BGPPeer's name.
    pub peer: String,
    /// The peer's address (`None` for a peer reached through an interface).
    pub address: Option<IpAddr>,
    pub routes: BTreeMap<IpNetwork, RouteAttributes>,
}

/// Why an assigned IP is not announced from this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum NotAnnounced {
    /// The IP lies in no configured pool (the configuration changed under it).
    #[error("the IP is in no pool")]
    NoPool,
    /// The IP's pool has no BGPAdvertisement.
    #[error("the pool has no BGPAdvertisement")]
    NoAdvertisement,
    /// No advertisement of the pool selects this node and this Service.
    #[error("no BGPAdvertisement of the pool selects this node and Service")]
    NotSelected,
    /// No BGP peer of this node gets the IP's family from the selected advertisements.
    #[error("no peer of this node carries the route")]
    NoPeer,
    /// The node is excluded from load balancing.
    #[error("{0}")]
    Node(NodeExclusion),
    /// `externalTrafficPolicy: Cluster` and no endpoint serves anywhere.
    #[error("no serving endpoint")]
    NoEndpoints,
    /// `externalTrafficPolicy: Local` and no endpoint serves on this node.
    #[error("no serving endpoint on this node")]
    NoLocalEndpoints,
}

/// One assigned IP of one Service, and whether this node announces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAnnouncement {
    pub service: ServiceKey,
    pub ip: IpAddr,
    pub result: Result<(), NotAnnounced>,
}

/// Everything one node should announce over BGP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpPlan {
    pub node: String,
    /// Every peer this node talks to, in configuration order, routes or not.
    pub peers: Vec<PeerPlan>,
    /// Every assigned IP, in input order, with the decision.
    pub services: Vec<ServiceAnnouncement>,
}

/// Whether BGP sessions with `peer` carry routes of `family`: the family of
/// the peer's address, and the other one too where the peer is configured
/// for both over one session (`dualStackAddressFamily`). A peer known only
/// by its interface speaks over an IPv6 link-local session.
pub fn peer_carries(peer: &BgpPeer, family: Family) -> bool {
    let own = peer.address.map_or(Family::V6, Family::of);
    own == family || peer.dual_stack_address_family
}

/// The peers `node` talks to: those whose `nodeSelectors` match it.
pub fn peers_of<'c>(config: &'c Config, node: &Node) -> impl Iterator<Item = &'c BgpPeer> {
    config.peers.iter().filter(move |p| any_matches(&p.node_selectors, &node.labels))
}

/// The prefix `ip` is announced as under an advertisement.
pub fn aggregate(ip: IpAddr, advertisement: &BgpAdvertisement) -> IpNetwork {
    let len = match ip {
        IpAddr::V4(_) => advertisement.aggregation_length,
        IpAddr::V6(_) => advertisement.aggregation_length_v6,
    };
    // Lengths are validated against the family when the config is built;
    // a host route is the safe reading of anything else.
    let net = IpNetwork::new(ip, len).unwrap_or_else(|_| IpNetwork::from(ip));
    IpNetwork::new(net.network(), net.prefix()).unwrap_or(net)
}

/// What `node_name` announces over BGP. A node missing from `world.nodes`
/// counts as one with no labels and no conditions.
pub fn plan_bgp(world: &World<'_>, node_name: &str) -> BgpPlan {
    let unknown;
    let node = match world.nodes.iter().find(|n| n.name == node_name) {
        Some(n) => n,
        None => {
            unknown = Node::new(node_name);
            &unknown
        }
    };
    let config = world.config;
    let peers: Vec<&BgpPeer> = peers_of(config, node).collect();
    let mut routes: Vec<BTreeMap<IpNetwork, RouteAttributes>> = vec![BTreeMap::new(); peers.len()];
    let mut services = Vec::new();
    let exclusion = node.exclusion();

    for assigned in world.services {
        let service = assigned.service;
        let served = served(world.endpoints, service, node_name);
        for &ip in assigned.ips {
            let result = (|| {
                let pool = config.pool_of(ip).ok_or(NotAnnounced::NoPool)?;
                let mut advertisements =
                    config.bgp_advertisements.iter().filter(|a| a.pools.contains(&pool.name)).peekable();
                advertisements.peek().ok_or(NotAnnounced::NoAdvertisement)?;
                if let Some(e) = exclusion {
                    return Err(NotAnnounced::Node(e));
                }
                served?;
                let mut selected = false;
                let mut announced = false;
                for adv in advertisements {
                    if !any_matches(&adv.node_selectors, &node.labels)
                        || !any_matches(&adv.service_selectors, &service.labels)
                    {
                        continue;
                    }
                    selected = true;
                    let prefix = aggregate(ip, adv);
                    let attrs = RouteAttributes { local_pref: adv.local_pref, communities: adv.communities.clone() };
                    for (peer, table) in peers.iter().zip(routes.iter_mut()) {
                        let named = adv.peers.is_empty() || adv.peers.contains(&peer.name);
                        if !named || !peer_carries(peer, Family::of(ip)) {
                            continue;
                        }
                        announced = true;
                        table.entry(prefix).and_modify(|a| a.merge(&attrs)).or_insert_with(|| attrs.clone());
                    }
                }
                match (selected, announced) {
                    (false, _) => Err(NotAnnounced::NotSelected),
                    (true, false) => Err(NotAnnounced::NoPeer),
                    (true, true) => Ok(()),
                }
            })();
            services.push(ServiceAnnouncement { service: service.key.clone(), ip, result });
        }
    }

    BgpPlan {
        node: node_name.to_string(),
        peers: peers
            .iter()
            .zip(routes)
            .map(|(p, routes)| PeerPlan { peer: p.name.clone(), address: p.address, routes })
            .collect(),
        services,
    }
}

fn served(endpoints: Option<&Endpoints>, service: &Service, node: &str) -> Result<(), NotAnnounced> {
    let Some(endpoints) = endpoints else { return Ok(()) };
    match service.external_traffic_policy {
        TrafficPolicy::Cluster if !endpoints.serving_anywhere(&service.key) => Err(NotAnnounced::NoEndpoints),
        TrafficPolicy::Local if !endpoints.serving_on(&service.key, node) => Err(NotAnnounced::NoLocalEndpoints),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use crate::endpoints::{Endpoint, EndpointSlice};
    use crate::node::EXCLUDE_FROM_LOAD_BALANCERS;

    fn config(yaml: &str) -> Config {
        match config::load(&[("test.yaml", yaml)]) {
            Ok(l) => l.config,
            Err(e) => panic!("{e:?}"),
        }
    }

    const BASE: &str = r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: a}
spec: {addresses: [192.0.2.0/24, "2001:db8::/64"]}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: r1}
spec: {myASN: 64500, peerASN: 64501, peerAddress: 198.51.100.1}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: r2}
spec: {myASN: 64500, peerASN: 64500, peerAddress: "2001:db8:1::1", nodeSelectors: [{matchLabels: {rack: "2"}}]}
"#;

    fn web(policy: TrafficPolicy) -> Service {
        let mut s = Service::new("default", "web");
        s.external_traffic_policy = policy;
        s
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("IP")
    }

    fn net(s: &str) -> IpNetwork {
        s.parse().expect("prefix")
    }

    fn plan(config: &Config, svc: &Service, ips: &[IpAddr], eps: Option<&Endpoints>, nodes: &[Node]) -> BgpPlan {
        let services = [AssignedService { service: svc, ips }];
        plan_bgp(&World { config, services: &services, endpoints: eps, nodes }, "n1")
    }

    #[test]
    fn no_advertisement_announces_nothing() {
        let c = config(BASE);
        let svc = web(TrafficPolicy::Cluster);
        let p = plan(&c, &svc, &[ip("192.0.2.1")], None, &[]);
        assert_eq!(p.peers.len(), 1, "r2 selects rack 2 only");
        assert!(p.peers[0].routes.is_empty());
        assert_eq!(p.services[0].result, Err(NotAnnounced::NoAdvertisement));
    }

    #[test]
    fn aggregation_communities_and_merge() {
        let c = config(&format!(
            "{BASE}---\napiVersion: metallb.io/v1beta1\nkind: Community\nmetadata: {{name: c}}\nspec: {{communities: [{{name: gold, value: '64500:1'}}]}}\n---\napiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: agg}}\nspec: {{aggregationLength: 24, localPref: 50, communities: [gold, 'large:1:2:3', '64500:9']}}\n---\napiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: agg2}}\nspec: {{aggregationLength: 24, localPref: 50, communities: ['64500:1', '64500:2']}}\n"
        ));
        let svc = web(TrafficPolicy::Cluster);
        let nodes = [Node { labels: [("rack".to_string(), "2".to_string())].into(), ..Node::new("n1") }];
        let p = plan(&c, &svc, &[ip("192.0.2.77"), ip("2001:db8::5")], None, &nodes);
        assert_eq!(p.peers.len(), 2);
        let r1 = &p.peers[0].routes;
        assert_eq!(r1.keys().copied().collect::<Vec<_>>(), vec![net("192.0.2.0/24")], "v4 peer gets v4 only");
        let attrs = &r1[&net("192.0.2.0/24")];
        assert_eq!(attrs.local_pref, Some(50));
        let communities: Vec<String> = attrs.communities.iter().map(ToString::to_string).collect();
        assert_eq!(communities, ["64500:1", "64500:2", "64500:9", "large:1:2:3"]);
        let r2 = &p.peers[1].routes;
        assert_eq!(r2.keys().copied().collect::<Vec<_>>(), vec![net("2001:db8::5/128")]);
    }

    #[test]
    fn selectors_of_advertisements() {
        let c = config(&format!(
            "{BASE}---\napiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: sel}}\nspec: {{nodeSelectors: [{{matchLabels: {{rack: '1'}}}}], serviceSelectors: [{{matchLabels: {{tier: gold}}}}], peers: [r1]}}\n"
        ));
        let mut svc = web(TrafficPolicy::Cluster);
        let rack1 = [Node { labels: [("rack".to_string(), "1".to_string())].into(), ..Node::new("n1") }];
        assert_eq!(plan(&c, &svc, &[ip("192.0.2.1")], None, &rack1).services[0].result, Err(NotAnnounced::NotSelected));
        svc.labels.insert("tier".into(), "gold".into());
        let p = plan(&c, &svc, &[ip("192.0.2.1")], None, &rack1);
        assert_eq!(p.peers[0].routes.keys().copied().collect::<Vec<_>>(), vec![net("192.0.2.1/32")]);
        assert_eq!(plan(&c, &svc, &[ip("192.0.2.1")], None, &[]).services[0].result, Err(NotAnnounced::NotSelected));
    }

    #[test]
    fn endpoints_and_node_conditions() {
        let c = config(&format!(
            "{BASE}---\napiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: all}}\n"
        ));
        let ips = [ip("192.0.2.1")];
        let on = |node: &str, ready| EndpointSlice {
            service: ServiceKey::new("default", "web"),
            endpoints: vec![Endpoint { node_name: Some(node.into()), ready: Some(ready), serving: None }],
        };
        let elsewhere = Endpoints::new([on("n2", true)]);
        let cluster = web(TrafficPolicy::Cluster);
        let local = web(TrafficPolicy::Local);
        assert_eq!(plan(&c, &cluster, &ips, Some(&elsewhere), &[]).services[0].result, Ok(()));
        assert_eq!(
            plan(&c, &local, &ips, Some(&elsewhere), &[]).services[0].result,
            Err(NotAnnounced::NoLocalEndpoints)
        );
        let here = Endpoints::new([on("n1", true)]);
        assert_eq!(plan(&c, &local, &ips, Some(&here), &[]).services[0].result, Ok(()));
        let down = Endpoints::new([on("n1", false)]);
        assert_eq!(plan(&c, &cluster, &ips, Some(&down), &[]).services[0].result, Err(NotAnnounced::NoEndpoints));
        assert_eq!(plan(&c, &local, &ips, None, &[]).services[0].result, Ok(()), "no information: served");

        let mut excluded = Node::new("n1");
        excluded.labels.insert(EXCLUDE_FROM_LOAD_BALANCERS.into(), String::new());
        let p = plan(&c, &cluster, &ips, None, &[excluded]);
        assert_eq!(p.services[0].result, Err(NotAnnounced::Node(NodeExclusion::Excluded)));
        assert!(p.peers[0].routes.is_empty(), "the session stays, without routes");
        let unavailable = Node { network_unavailable: true, ..Node::new("n1") };
        let p = plan(&c, &cluster, &ips, None, &[unavailable]);
        assert_eq!(p.services[0].result, Err(NotAnnounced::Node(NodeExclusion::NetworkUnavailable)));
    }

    #[test]
    fn dual_stack_peer_and_no_peer() {
        let c = config(
            "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a}\nspec: {addresses: ['2001:db8::/64']}\n---\napiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: all}\n---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: r1}\nspec: {myASN: 64500, peerASN: 64501, peerAddress: 198.51.100.1}\n",
        );
        let svc = web(TrafficPolicy::Cluster);
        assert_eq!(plan(&c, &svc, &[ip("2001:db8::1")], None, &[]).services[0].result, Err(NotAnnounced::NoPeer));
        let mut c2 = c.clone();
        c2.peers[0].dual_stack_address_family = true;
        let p = plan(&c2, &svc, &[ip("2001:db8::1")], None, &[]);
        assert_eq!(p.peers[0].routes.keys().copied().collect::<Vec<_>>(), vec![net("2001:db8::1/128")]);
    }

    #[test]
    fn aggregate_masks_host_bits() {
        let adv = BgpAdvertisement {
            name: "x".into(),
            aggregation_length: 24,
            aggregation_length_v6: 64,
            local_pref: None,
            communities: vec![],
            pools: vec![],
            node_selectors: vec![],
            peers: vec![],
            service_selectors: vec![],
        };
        assert_eq!(aggregate(ip("10.20.30.1"), &adv), net("10.20.30.0/24"));
        assert_eq!(aggregate(ip("2001:db8::1:2"), &adv), net("2001:db8::/64"));
    }
}
