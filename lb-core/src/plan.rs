//! The plan value: everything the pure core decided about a cluster, in one
//! serialisable [`ClusterPlan`] that every way of running `lb` shares (the
//! CLI prints it, `/status` shows parts of it, an embedder reads it).
//!
//! It has two halves, made by different roles:
//! - the assignments ([`ServiceAssignment`], [`PoolStats`]): what the
//!   controller's allocator (`lb_ipam::pipeline`) gave each Service;
//! - the node plans ([`NodePlan`], from [`plan_node`]): what each node's
//!   speaker announces, over BGP to each peer and (later) on layer 2.
//!
//! [`Observed`] is the world both halves are computed from, as sources
//! (files, the Kubernetes API) deliver it.
//!
//! The JSON form is `lb plan -o json`'s, field for field:
//! `{"services":[{"service","ips","pool","error"}],"pools":[{"name",
//! "ipv4Total","ipv4InUse","ipv6Total","ipv6InUse"}],"nodes":[{"node",
//! "bgp":[{"peer","routes":[{"prefix","localPref","communities",
//! "largeCommunities"}]}]}]}`.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde::{Serialize, Serializer};

use crate::config::Config;
use crate::endpoints::Endpoints;
use crate::manifest::Manifests;
use crate::node::Node;
use crate::planner::{AssignedService, PeerPlan, RouteAttributes, ServiceAnnouncement, World, plan_bgp};
use crate::service::{Namespace, Service, ServiceKey};

/// The observed world: what sources deliver, what the core plans from.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub config: Config,
    /// In the order the source lists them: allocation is in this order.
    pub services: Vec<Service>,
    /// Namespace labels, for `serviceAllocation.namespaceSelectors`.
    pub namespaces: Vec<Namespace>,
    pub nodes: Vec<Node>,
    /// `None`: no endpoint information, every Service is served on every node.
    pub endpoints: Option<Endpoints>,
}

impl Observed {
    /// The world of a configuration and the manifests read beside it.
    pub fn new(config: Config, manifests: Manifests) -> Self {
        let Manifests { services, namespaces, nodes, endpoints, .. } = manifests;
        Self { config, services, namespaces, nodes, endpoints }
    }

    /// What the planner looks at: this world with the Services as assigned.
    pub fn world<'a>(&'a self, assigned: &'a [AssignedService<'a>]) -> World<'a> {
        World { config: &self.config, services: assigned, endpoints: self.endpoints.as_ref(), nodes: &self.nodes }
    }
}

/// What the allocator did for one Service it handles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceAssignment {
    #[serde(serialize_with = "as_display")]
    pub service: ServiceKey,
    /// Primary family first; empty on error.
    pub ips: Vec<IpAddr>,
    /// The pool of the first address.
    pub pool: Option<String>,
    /// Why the Service has no address, as the allocator says it (the
    /// allocator's error type lives in `lb-ipam`, which depends on this crate).
    pub error: Option<String>,
}

/// Per-pool counts (`metallb_allocator_addresses_*`).
///
/// In memory the counts are exact `u128`s (all of IPv6, 2^128, is the one
/// count a `u128` cannot hold: it saturates at `u128::MAX`). Serialised,
/// each count saturates at [`JSON_COUNT_MAX`] (see [`json_count`]): an
/// IPv6 /64 alone holds 2^64 addresses, a 20-digit number that most JSON
/// readers silently round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolStats {
    pub name: String,
    #[serde(serialize_with = "saturated_count")]
    pub ipv4_total: u128,
    #[serde(serialize_with = "saturated_count")]
    pub ipv4_in_use: u128,
    #[serde(serialize_with = "saturated_count")]
    pub ipv6_total: u128,
    #[serde(serialize_with = "saturated_count")]
    pub ipv6_in_use: u128,
}

/// The largest address count a serialised plan shows: 2^53 - 1
/// (JavaScript's `Number.MAX_SAFE_INTEGER`), the largest integer below
/// which every integer is an IEEE 754 double. JSON readers (JavaScript,
/// `jq`, Go's `interface{}` decoding, Python's `json` into floats) and
/// Prometheus samples hold numbers as doubles: above this, counts would be
/// rounded silently, or overflow readers that expect a 64-bit integer.
/// This limit holds exactly in every one of them, and a reader seeing it
/// knows the pool holds at least that many. MetalLB caps these counts too.
pub const JSON_COUNT_MAX: u64 = (1 << 53) - 1;

/// `count` as the serialised plan (`lb plan -o json`, `/status`, metrics)
/// shows it: exact up to [`JSON_COUNT_MAX`], saturated at it above.
pub fn json_count(count: u128) -> u64 {
    u64::try_from(count).map_or(JSON_COUNT_MAX, |c| c.min(JSON_COUNT_MAX))
}

fn saturated_count<S: Serializer>(count: &u128, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(json_count(*count))
}

/// The controller's half of the plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Assignments {
    /// One per handled Service, in the order of [`Observed::services`].
    pub services: Vec<ServiceAssignment>,
    /// In pool name order.
    pub pools: Vec<PoolStats>,
}

/// One IP this node owns on layer 2 (ARP/NDP), and where it answers for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct L2Announcement {
    pub ip: IpAddr,
    #[serde(serialize_with = "as_display")]
    pub service: ServiceKey,
    /// Empty: every interface.
    pub interfaces: Vec<String>,
}

impl L2Announcement {
    pub fn new(ip: IpAddr, service: ServiceKey, interfaces: Vec<String>) -> Self {
        Self { ip, service, interfaces }
    }
}

/// What one node announces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodePlan {
    pub node: String,
    /// Every peer this node talks to, in configuration order, routes or not.
    #[serde(serialize_with = "peers")]
    pub bgp: Vec<PeerPlan>,
    /// The IPs this node owns on layer 2 (with every node live and no
    /// claims yet); not serialised when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub l2: Vec<L2Announcement>,
    /// Every assigned IP with whether this node announces it over BGP and
    /// why not (for `/status` and logs; not part of the printed plan).
    #[serde(skip)]
    pub services: Vec<ServiceAnnouncement>,
}

/// Everything the core decided about a cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClusterPlan {
    pub services: Vec<ServiceAssignment>,
    pub pools: Vec<PoolStats>,
    /// In the order they were asked for.
    pub nodes: Vec<NodePlan>,
}

impl ClusterPlan {
    pub fn new(assignments: Assignments, nodes: Vec<NodePlan>) -> Self {
        Self { services: assignments.services, pools: assignments.pools, nodes }
    }
}

/// What `node_name` announces (see [`crate::planner`] for the rules). A
/// node missing from `world.nodes` counts as one with no labels and no
/// conditions.
///
/// Its layer 2 IPs are those it would own with every node of the world
/// live and no claims yet (what `lb plan` shows); a speaker that knows the
/// live members and their claims asks [`crate::l2::plan_l2`] itself.
pub fn plan_node(world: &World<'_>, node_name: &str) -> NodePlan {
    let plan = plan_bgp(world, node_name);
    // A node without a Node object counts as one with no labels, as for BGP.
    let with_node;
    let world = if world.nodes.iter().any(|n| n.name == node_name) {
        world
    } else {
        with_node = [world.nodes, &[Node::new(node_name)]].concat();
        &World { nodes: &with_node, ..*world }
    };
    let l2 = crate::l2::plan_l2(world, |_| true, &crate::l2::Claims::new()).of_node(node_name);
    NodePlan { node: plan.node, bgp: plan.peers, l2, services: plan.services }
}

/// The Services with addresses, as the planner sees them: each assignment
/// with its Service. `assignments` must follow `services`' order (as
/// [`Assignments::services`] does), so that two Services of one name in one
/// input (which a file can hold) each keep their own result.
pub fn assigned_services<'a>(
    services: impl IntoIterator<Item = &'a Service>,
    assignments: &'a [ServiceAssignment],
) -> Vec<AssignedService<'a>> {
    let mut rest = services.into_iter();
    let mut out = Vec::with_capacity(assignments.len());
    for a in assignments {
        let Some(service) = rest.by_ref().find(|s| s.key == a.service) else { break };
        if !a.ips.is_empty() {
            out.push(AssignedService { service, ips: &a.ips });
        }
    }
    out
}

/// Whether a component started with `--lb-class` (`class`) handles a
/// Service's `spec.loadBalancerClass`: with a class, only Services of that
/// class; without one, only Services without a class (MetalLB's rule, the
/// same for the controller and the speakers so they never disagree).
pub fn handles_class(service: &Service, class: Option<&str>) -> bool {
    service.load_balancer_class.as_deref() == class
}

/// What a speaker announces from, in a cluster: each handled Service of
/// type LoadBalancer with the IPs its `status.loadBalancer.ingress` shows
/// (the controller's decision, already written), the pool being the one
/// that holds the first IP. Services without IPs are left out (nothing to
/// announce); an IP in no pool keeps `pool: None` and the planners refuse
/// to announce it, as MetalLB's speaker does when the configuration no
/// longer covers an address.
///
/// `services` is any sequence of them (a slice, or a speaker's map of the
/// Services it watches, so that planning needs no copy of them).
pub fn status_assignments<'a>(
    config: &Config,
    services: impl IntoIterator<Item = &'a Service>,
    class: Option<&str>,
) -> Vec<ServiceAssignment> {
    services
        .into_iter()
        .filter(|s| s.service_type == crate::service::ServiceType::LoadBalancer && handles_class(s, class))
        .filter(|s| !s.ingress_ips.is_empty())
        .map(|s| {
            let mut ips = s.ingress_ips.clone();
            ips.dedup();
            ServiceAssignment {
                service: s.key.clone(),
                pool: ips.first().and_then(|ip| config.pool_of(*ip)).map(|p| p.name.clone()),
                ips,
                error: None,
            }
        })
        .collect()
}

/// One route as `lb plan` and `/status` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteView {
    #[serde(serialize_with = "as_display")]
    pub prefix: IpNetwork,
    pub local_pref: Option<u32>,
    /// Standard communities, `a:b`.
    pub communities: Vec<String>,
    /// Large communities, `a:b:c`.
    pub large_communities: Vec<String>,
}

impl RouteView {
    pub fn new(prefix: IpNetwork, attrs: &RouteAttributes) -> Self {
        Self {
            prefix,
            local_pref: attrs.local_pref,
            communities: attrs.standard_communities().collect(),
            large_communities: attrs.large_communities().collect(),
        }
    }

    /// Every route of a peer, in prefix order.
    pub fn of(peer: &PeerPlan) -> Vec<RouteView> {
        peer.routes.iter().map(|(prefix, attrs)| Self::new(*prefix, attrs)).collect()
    }
}

/// How a peer is named in the plan: by its address, or by its name when it
/// is reached through an interface.
pub fn peer_label(peer: &PeerPlan) -> String {
    peer.address.map_or_else(|| peer.peer.clone(), |a| a.to_string())
}

fn as_display<T: std::fmt::Display, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

fn peers<S: Serializer>(peers: &[PeerPlan], serializer: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct PeerView {
        peer: String,
        routes: Vec<RouteView>,
    }
    serializer.collect_seq(peers.iter().map(|p| PeerView { peer: peer_label(p), routes: RouteView::of(p) }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::community::Community;

    #[test]
    fn a_speaker_announces_what_the_status_shows_for_its_class_only() {
        let config = crate::config::load(&[(
            "pool.yaml",
            "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: web, namespace: metallb-system}\nspec: {addresses: [192.0.2.0/28]}\n",
        )])
        .expect("config")
        .config;
        let lb = |name: &str, ips: &[&str], class: Option<&str>| {
            let mut s = Service::new("shop", name);
            s.service_type = crate::service::ServiceType::LoadBalancer;
            s.ingress_ips = ips.iter().map(|i| i.parse().expect("IP")).collect();
            s.load_balancer_class = class.map(Into::into);
            s
        };
        let mut cluster_ip = lb("internal", &["192.0.2.9"], None);
        cluster_ip.service_type = crate::service::ServiceType::ClusterIp;
        let services = [
            lb("web", &["192.0.2.1"], None),
            lb("pending", &[], None),
            lb("stray", &["198.51.100.1"], None),
            lb("other", &["192.0.2.2"], Some("example.com/other")),
            cluster_ip,
        ];
        let got = status_assignments(&config, &services, None);
        let shown: Vec<(&str, Option<&str>)> = got.iter().map(|a| (a.service.name(), a.pool.as_deref())).collect();
        assert_eq!(shown, [("web", Some("web")), ("stray", None)]);
        assert_eq!(got[0].ips, ["192.0.2.1".parse::<IpAddr>().expect("IP")]);
        let classed = status_assignments(&config, &services, Some("example.com/other"));
        assert_eq!(classed.iter().map(|a| a.service.name()).collect::<Vec<_>>(), ["other"]);
    }

    #[test]
    fn json_is_lb_plans() {
        let key = ServiceKey::new("shop", "web");
        let mut routes = std::collections::BTreeMap::new();
        routes.insert(
            "203.0.113.0/32".parse().expect("prefix"),
            RouteAttributes {
                local_pref: Some(100),
                communities: vec![Community::Standard((65535 << 16) | 65282), Community::Large(64512, 1, 2)],
            },
        );
        let plan = ClusterPlan {
            services: vec![
                ServiceAssignment {
                    service: key.clone(),
                    ips: vec!["192.0.2.0".parse().expect("IP"), "2001:db8:1::".parse().expect("IP")],
                    pool: Some("default".into()),
                    error: None,
                },
                ServiceAssignment {
                    service: ServiceKey::new("x", "bad"),
                    ips: vec![],
                    pool: None,
                    error: Some("no".into()),
                },
            ],
            pools: vec![PoolStats {
                name: "default".into(),
                ipv4_total: 16,
                ipv4_in_use: 2,
                ipv6_total: u128::from(u64::MAX) + 1,
                ipv6_in_use: 1,
            }],
            nodes: vec![NodePlan {
                node: "node-a".into(),
                bgp: vec![
                    PeerPlan { peer: "tor".into(), address: Some("192.0.2.254".parse().expect("IP")), routes },
                    PeerPlan { peer: "unnumbered".into(), address: None, routes: Default::default() },
                ],
                l2: vec![],
                services: vec![ServiceAnnouncement {
                    service: key,
                    ip: "192.0.2.0".parse().expect("IP"),
                    result: Ok(()),
                }],
            }],
        };
        let json = serde_json::to_string(&plan).expect("JSON");
        assert_eq!(
            json,
            concat!(
                r#"{"services":[{"service":"shop/web","ips":["192.0.2.0","2001:db8:1::"],"pool":"default","error":null},"#,
                r#"{"service":"x/bad","ips":[],"pool":null,"error":"no"}],"#,
                r#""pools":[{"name":"default","ipv4Total":16,"ipv4InUse":2,"ipv6Total":9007199254740991,"ipv6InUse":1}],"#,
                r#""nodes":[{"node":"node-a","bgp":[{"peer":"192.0.2.254","routes":[{"prefix":"203.0.113.0/32","localPref":100,"#,
                r#""communities":["65535:65282"],"largeCommunities":["64512:1:2"]}]},{"peer":"unnumbered","routes":[]}]}]}"#
            )
        );
    }

    #[test]
    fn serialised_counts_saturate_where_json_readers_stay_exact() {
        assert_eq!(json_count(0), 0);
        assert_eq!(json_count(1 << 32), 1 << 32);
        assert_eq!(json_count(u128::from(JSON_COUNT_MAX)), JSON_COUNT_MAX);
        assert_eq!(json_count(u128::from(JSON_COUNT_MAX) + 1), JSON_COUNT_MAX);
        assert_eq!(json_count(1 << 64), JSON_COUNT_MAX);
        assert_eq!(json_count(u128::MAX), JSON_COUNT_MAX);
        // The limit survives a round trip through a double.
        assert_eq!(JSON_COUNT_MAX as f64 as u64, JSON_COUNT_MAX);
        let all = PoolStats {
            name: "all".into(),
            ipv4_total: 1 << 32,
            ipv4_in_use: 3,
            ipv6_total: u128::MAX,
            ipv6_in_use: u128::from(JSON_COUNT_MAX) + 7,
        };
        let json = serde_json::to_value(&all).expect("JSON");
        assert_eq!(json["ipv4Total"], 4_294_967_296u64);
        assert_eq!(json["ipv4InUse"], 3);
        assert_eq!(json["ipv6Total"], JSON_COUNT_MAX);
        assert_eq!(json["ipv6InUse"], JSON_COUNT_MAX);
        assert_eq!(all.ipv6_total, u128::MAX, "in memory, exact");
    }

    #[test]
    fn each_assignment_keeps_its_own_service() {
        let mut a = Service::new("ns", "a");
        a.labels.insert("first".into(), String::new());
        let b = Service::new("ns", "b");
        let a_again = Service::new("ns", "a");
        let services = [a, b, a_again];
        let entry = |name: &str, ip: &str| ServiceAssignment {
            service: ServiceKey::new("ns", name),
            ips: ip.parse().map(|ip| vec![ip]).unwrap_or_default(),
            pool: None,
            error: None,
        };
        // b is not handled (no entry); the second a failed (no addresses).
        let assignments = [entry("a", "192.0.2.1"), entry("a", "")];
        let assigned = assigned_services(&services, &assignments);
        assert_eq!(assigned.len(), 1);
        assert!(assigned[0].service.labels.contains_key("first"), "the first a, not the last");
        let assignments = [entry("a", "192.0.2.1"), entry("b", "192.0.2.2"), entry("a", "192.0.2.3")];
        let assigned = assigned_services(&services, &assignments);
        let names: Vec<(&str, bool)> =
            assigned.iter().map(|s| (s.service.key.name(), s.service.labels.is_empty())).collect();
        assert_eq!(names, [("a", false), ("b", true), ("a", true)]);
        assert_eq!(assigned[2].ips, ["192.0.2.3".parse::<IpAddr>().expect("IP")]);
    }
}
