//! Layer 2: which node announces a Service's IP, by MetalLB's ranking.
//!
//! On a segment one node answers ARP/NDP for an IP. When an IP needs a
//! new owner, the candidates (live, eligible speakers) are ranked as
//! MetalLB ranks them, so that a cluster moving over from MetalLB, or
//! planned fresh, places every IP exactly where MetalLB would:
//! 1. the summed weights of the L2Advertisements' `preferredNodeSelectors`
//!    terms that match the node, highest first;
//! 2. then `sha256(nodeName + "#" + ip)` ascending, over the Service's
//!    first IP (the winner announces all of the Service's IPs);
//! 3. then the node name, so the order is total.
//!
//! [`plan_l2`] decides every owner from the observed world, the live
//! speakers and the current claims (what each node says it answers for):
//! - eligible nodes for a Service: live, matched by an L2Advertisement
//!   that selects its pool and the Service (`serviceSelectors`; as in
//!   MetalLB, an advertisement with `serviceSelectors` does not select a
//!   Service that asks for a shared IP with `allow-shared-ip`), whose
//!   `nodeSelectors` match the node, and that the node can answer on (one
//!   of the interfaces it names is up there, or, naming none, some
//!   interface is: a node whose interface lost carrier, or that is
//!   stopping, says so in its gossip and is passed over); not excluded (the
//!   `exclude-from-external-load-balancers` label, `NetworkUnavailable`);
//!   with `externalTrafficPolicy: Local` only nodes with a local serving
//!   endpoint; no serving endpoint anywhere means no announcement;
//! - sticky: a live, eligible node already claiming the IP keeps it, so a
//!   node coming back takes nothing back (no second outage);
//! - two or more such claimants (a partition healed) are decided by the
//!   ranking, the same on every node; with none, the ranking picks among
//!   the eligible nodes;
//! - the winner announces all of the Service's IPs, on the interfaces its
//!   advertisements name (none named: every eligible interface).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use sha2::{Digest, Sha256};

use crate::config::{L2Advertisement, PreferredNodeSelector};
use crate::node::Node;
use crate::plan::L2Announcement;
use crate::planner::World;
use crate::selector::any_matches;
use crate::service::{ServiceKey, TrafficPolicy};

/// What the members say about themselves (from gossip): which IPs each
/// answers for, and on which interfaces each can answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    /// IP: the nodes answering for it.
    pub answering: BTreeMap<IpAddr, BTreeSet<String>>,
    /// Node: the interfaces it can answer on. A node not listed is taken
    /// as able to answer anywhere (nothing heard yet, or `lb plan`).
    pub interfaces: BTreeMap<String, Interfaces>,
}

/// The interfaces a node can answer on now (up, with carrier).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interfaces {
    /// Every usable interface by name, the excluded names included: an
    /// advertisement that names an interface may use any of them.
    pub usable: BTreeSet<String>,
    /// Whether one of them passes the name exclusions, for advertisements
    /// that name no interface.
    pub default_usable: bool,
}

impl Interfaces {
    /// A node stopping, or with no usable interface: eligible nowhere.
    pub fn none() -> Self {
        Self::default()
    }

    /// Whether an advertisement naming `named` (empty: any) can be
    /// answered here.
    pub fn can_answer(&self, named: &[String]) -> bool {
        if named.is_empty() { self.default_usable } else { named.iter().any(|n| self.usable.contains(n)) }
    }
}

impl Claims {
    /// Nobody claims anything and every node can answer anywhere.
    pub fn new() -> Self {
        Self::default()
    }

    /// `node` says it answers for `ips` (replacing what it said before).
    pub fn set_answering(&mut self, node: &str, ips: impl IntoIterator<Item = IpAddr>) {
        self.answering.retain(|_, nodes| {
            nodes.remove(node);
            !nodes.is_empty()
        });
        for ip in ips {
            self.answering.entry(ip).or_default().insert(node.to_string());
        }
    }

    fn claims(&self, node: &str, ip: &IpAddr) -> bool {
        self.answering.get(ip).is_some_and(|c| c.contains(node))
    }

    fn can_answer(&self, node: &str, advertisement: &L2Advertisement) -> bool {
        self.interfaces.get(node).is_none_or(|i| i.can_answer(&advertisement.interfaces))
    }
}

/// The owner of one layer 2 IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub service: ServiceKey,
    pub ip: IpAddr,
    pub node: String,
    /// Empty: every eligible interface.
    pub interfaces: Vec<String>,
}

/// Every layer 2 IP with its owner, by IP.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct L2Plan {
    pub owners: BTreeMap<IpAddr, Owner>,
}

impl L2Plan {
    /// What `node` answers for.
    pub fn of_node(&self, node: &str) -> Vec<L2Announcement> {
        self.owners
            .values()
            .filter(|o| o.node == node)
            .map(|o| L2Announcement { ip: o.ip, service: o.service.clone(), interfaces: o.interfaces.clone() })
            .collect()
    }

    /// How many IPs each node owns (`/status` shows the spread).
    pub fn counts(&self) -> BTreeMap<&str, usize> {
        let mut counts = BTreeMap::new();
        for o in self.owners.values() {
            *counts.entry(o.node.as_str()).or_default() += 1;
        }
        counts
    }
}

/// The owner of every layer 2 IP (see the module doc for the rules).
pub fn plan_l2(world: &World<'_>, live: impl Fn(&str) -> bool, claims: &Claims) -> L2Plan {
    let config = world.config;
    let mut owners = BTreeMap::new();
    for assigned in world.services {
        let service = assigned.service;
        let Some(&first) = assigned.ips.first() else { continue };
        let Some(pool) = config.pool_of(first) else { continue };
        let advertisements: Vec<&L2Advertisement> = config
            .l2_advertisements
            .iter()
            .filter(|a| a.pools.contains(&pool.name) && any_matches(&a.service_selectors, &service.labels))
            .filter(|a| a.service_selectors.is_empty() || service.sharing_key().is_none())
            .collect();
        if advertisements.is_empty() {
            continue;
        }
        if let Some(endpoints) = world.endpoints
            && !endpoints.serving_anywhere(&service.key)
        {
            continue;
        }
        let local = service.external_traffic_policy == TrafficPolicy::Local;
        let selecting = |node: &Node| -> Vec<&L2Advertisement> {
            advertisements
                .iter()
                .copied()
                .filter(|a| any_matches(&a.node_selectors, &node.labels) && claims.can_answer(&node.name, a))
                .collect()
        };
        let eligible: Vec<&Node> = world
            .nodes
            .iter()
            .filter(|n| live(&n.name) && n.exclusion().is_none() && !selecting(n).is_empty())
            .filter(|n| !local || world.endpoints.is_none_or(|e| e.serving_on(&service.key, &n.name)))
            .collect();
        let terms: Vec<PreferredNodeSelector> =
            advertisements.iter().flat_map(|a| a.preferred_node_selectors.iter().cloned()).collect();
        let claimants: Vec<&Node> =
            eligible.iter().copied().filter(|n| assigned.ips.iter().any(|ip| claims.claims(&n.name, ip))).collect();
        let pool_of_candidates = if claimants.is_empty() { eligible } else { claimants };
        let Some(winner) = rank(pool_of_candidates, first, &terms).into_iter().next() else { continue };
        let ads = selecting(winner);
        let interfaces: Vec<String> = if ads.iter().any(|a| a.interfaces.is_empty()) {
            Vec::new()
        } else {
            let set: BTreeSet<&String> = ads.iter().flat_map(|a| &a.interfaces).collect();
            set.into_iter().cloned().collect()
        };
        for &ip in assigned.ips {
            owners.insert(
                ip,
                Owner { service: service.key.clone(), ip, node: winner.name.clone(), interfaces: interfaces.clone() },
            );
        }
    }
    L2Plan { owners }
}

/// The layer 2 IPs `node` should announce but cannot, for lack of the
/// interfaces its advertisements name (MetalLB's `announceFailed`): no
/// node announces them, and were every node able to answer anywhere,
/// `node` would. Only that node reports an IP, so a Service is reported
/// once, not by every node that lacks the interface.
pub fn announce_failures(
    world: &World<'_>,
    live: impl Fn(&str) -> bool,
    claims: &Claims,
    node: &str,
) -> Vec<(ServiceKey, IpAddr)> {
    if world.config.l2_advertisements.iter().all(|a| a.interfaces.is_empty()) {
        return Vec::new();
    }
    let actual = plan_l2(world, &live, claims);
    let anywhere = Claims { answering: claims.answering.clone(), interfaces: BTreeMap::new() };
    plan_l2(world, &live, &anywhere)
        .owners
        .into_values()
        .filter(|o| o.node == node && !actual.owners.contains_key(&o.ip))
        .map(|o| (o.service, o.ip))
        .collect()
}

/// Whether `node` could answer for some layer 2 IP with `interfaces`: an
/// L2Advertisement selects it and can be answered there. Gossip runs only
/// then, so a node with nothing to answer (or whose advertisements name
/// interfaces it lacks) sends nothing at all.
pub fn may_answer(config: &crate::Config, node: &Node, interfaces: &Interfaces) -> bool {
    node.exclusion().is_none()
        && config
            .l2_advertisements
            .iter()
            .any(|a| any_matches(&a.node_selectors, &node.labels) && interfaces.can_answer(&a.interfaces))
}

/// Whether an IP this node answered for, while stopping, has been taken
/// over: another live node claims it. Until then the stopping node keeps
/// answering, so the segment never goes without an answer.
pub fn handed_over(claims: &Claims, me: &str, ip: IpAddr, live: impl Fn(&str) -> bool) -> bool {
    claims.answering.get(&ip).is_some_and(|nodes| nodes.iter().any(|n| n != me && live(n)))
}

/// The longest a stopping node keeps answering while waiting for another
/// to take its IPs over.
pub const HANDOVER_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether a stopping node keeps answering for `ip`: until another live
/// node claims it, and not at all when no other node is alive (nobody is
/// there to take it).
pub fn still_to_hand_over(claims: &Claims, me: &str, ip: IpAddr, live: &BTreeSet<String>) -> bool {
    live.iter().any(|n| n != me) && !handed_over(claims, me, ip, |n| live.contains(n))
}

/// The summed weights of the terms `node` matches.
pub fn preference(node: &Node, terms: &[PreferredNodeSelector]) -> u32 {
    terms.iter().filter(|t| t.preference.matches(&node.labels)).map(|t| u32::from(t.weight)).sum()
}

/// MetalLB's tie-breaker: `sha256("<node>#<ip>")`.
pub fn hash(node: &str, ip: IpAddr) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(node.as_bytes());
    h.update(b"#");
    h.update(ip.to_string().as_bytes());
    h.finalize().into()
}

/// `candidates` best first for announcing `ip` (the Service's first IP).
pub fn rank<'a>(
    candidates: impl IntoIterator<Item = &'a Node>,
    ip: IpAddr,
    terms: &[PreferredNodeSelector],
) -> Vec<&'a Node> {
    let mut ranked: Vec<(Reverse<u32>, [u8; 32], &Node)> =
        candidates.into_iter().map(|n| (Reverse(preference(n, terms)), hash(&n.name, ip), n)).collect();
    ranked.sort_by(|a, b| (a.0, a.1, &a.2.name).cmp(&(b.0, b.1, &b.2.name)));
    ranked.into_iter().map(|(_, _, n)| n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selector::LabelSelector;

    fn node(name: &str, labels: &[(&str, &str)]) -> Node {
        let mut n = Node::new(name);
        n.labels = labels.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect();
        n
    }

    fn names(nodes: &[&Node]) -> Vec<String> {
        nodes.iter().map(|n| n.name.clone()).collect()
    }

    #[test]
    fn the_hash_is_metallbs() {
        // Independent oracle: Python's hashlib.sha256(b"node-a#192.0.2.1").
        let expected = "9028b03eebd9c50f45e3cb24b507db170990cd5f206b44ba22be4e1dc2acad0a";
        let got: String = hash("node-a", "192.0.2.1".parse().expect("IP")).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn without_preferences_the_lowest_hash_wins() {
        // sha256 of node#192.0.2.1: node-c 22e6…, node-a 9028…, node-b fbbf….
        let nodes = [node("node-a", &[]), node("node-b", &[]), node("node-c", &[])];
        let ranked = rank(&nodes, "192.0.2.1".parse().expect("IP"), &[]);
        assert_eq!(names(&ranked), ["node-c", "node-a", "node-b"]);
    }

    fn world_config(extra: &str) -> crate::Config {
        let yaml = format!(
            "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: p}}\nspec: {{addresses: [192.0.2.0/24]}}\n---\napiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {{name: l2}}\nspec:\n  ipAddressPools: [p]\n{extra}"
        );
        match crate::config::load(&[("l2.yaml", &yaml)]) {
            Ok(l) => l.config,
            Err(e) => panic!("{e:?}"),
        }
    }

    fn service(name: &str) -> crate::Service {
        let mut s = crate::Service::new("default", name);
        s.service_type = crate::service::ServiceType::LoadBalancer;
        s
    }

    fn owner(plan: &L2Plan, ip: &str) -> Option<String> {
        plan.owners.get(&ip.parse().expect("IP")).map(|o| o.node.clone())
    }

    #[test]
    fn a_new_ip_goes_by_the_ranking_and_stays_with_a_live_claimant() {
        let config = world_config("");
        let nodes = [node("node-a", &[]), node("node-b", &[]), node("node-c", &[])];
        let web = service("web");
        let ips: [IpAddr; 1] = ["192.0.2.1".parse().expect("IP")];
        let assigned = [crate::planner::AssignedService { service: &web, ips: &ips }];
        let world = World { config: &config, services: &assigned, endpoints: None, nodes: &nodes };

        // Fresh: the best hash (node-c) wins.
        let fresh = plan_l2(&world, |_| true, &Claims::new());
        assert_eq!(owner(&fresh, "192.0.2.1").as_deref(), Some("node-c"));
        assert_eq!(fresh.of_node("node-c").len(), 1);
        assert!(fresh.of_node("node-a").is_empty());

        // node-c died, node-a took over; node-c back: node-a keeps it.
        let mut claims = Claims::new();
        claims.set_answering("node-a", ips);
        let back = plan_l2(&world, |_| true, &claims);
        assert_eq!(owner(&back, "192.0.2.1").as_deref(), Some("node-a"), "no second move");
        // node-a dies: the ranking again, among the live.
        let gone = plan_l2(&world, |n| n != "node-a", &claims);
        assert_eq!(owner(&gone, "192.0.2.1").as_deref(), Some("node-c"));

        // A healed partition: two claimants, the ranking decides, on every node alike.
        let mut both = claims.clone();
        both.set_answering("node-b", ips);
        let healed = plan_l2(&world, |_| true, &both);
        assert_eq!(owner(&healed, "192.0.2.1").as_deref(), Some("node-a"), "node-a's hash is below node-b's");
    }

    #[test]
    fn only_eligible_nodes_announce() {
        let config = world_config("  nodeSelectors: [{matchLabels: {l2: \"yes\"}}]\n  interfaces: [eth1]\n");
        let mut excluded = node("node-c", &[("l2", "yes")]);
        excluded.labels.insert(crate::node::EXCLUDE_FROM_LOAD_BALANCERS.into(), String::new());
        let nodes = [node("node-a", &[("l2", "yes")]), node("node-b", &[]), excluded];
        let web = service("web");
        let ips: [IpAddr; 1] = ["192.0.2.1".parse().expect("IP")];
        let assigned = [crate::planner::AssignedService { service: &web, ips: &ips }];
        let world = World { config: &config, services: &assigned, endpoints: None, nodes: &nodes };
        let plan = plan_l2(&world, |_| true, &Claims::new());
        let o = plan.owners.get(&ips[0]).expect("owned");
        assert_eq!((o.node.as_str(), o.interfaces.clone()), ("node-a", vec!["eth1".to_string()]));
        // A claim by an ineligible node counts for nothing.
        let mut claims = Claims::new();
        claims.set_answering("node-b", ips);
        assert_eq!(owner(&plan_l2(&world, |_| true, &claims), "192.0.2.1").as_deref(), Some("node-a"));
        // No eligible node is live: nobody.
        assert_eq!(owner(&plan_l2(&world, |n| n != "node-a", &Claims::new()), "192.0.2.1"), None);
    }

    #[test]
    fn local_traffic_needs_a_local_endpoint_and_no_endpoint_means_no_announcement() {
        use crate::endpoints::{Endpoint, EndpointSlice, Endpoints};
        let config = world_config("");
        let nodes = [node("node-a", &[]), node("node-b", &[]), node("node-c", &[])];
        let mut web = service("web");
        web.external_traffic_policy = TrafficPolicy::Local;
        let ips: [IpAddr; 1] = ["192.0.2.1".parse().expect("IP")];
        let assigned = [crate::planner::AssignedService { service: &web, ips: &ips }];
        let on = |node: &str| EndpointSlice {
            service: web.key.clone(),
            endpoints: vec![Endpoint { node_name: Some(node.into()), ready: Some(true), serving: None }],
        };
        let endpoints = Endpoints::new([on("node-b")]);
        let world = World { config: &config, services: &assigned, endpoints: Some(&endpoints), nodes: &nodes };
        assert_eq!(owner(&plan_l2(&world, |_| true, &Claims::new()), "192.0.2.1").as_deref(), Some("node-b"));
        let none = Endpoints::new([]);
        let world = World { endpoints: Some(&none), ..world };
        assert_eq!(owner(&plan_l2(&world, |_| true, &Claims::new()), "192.0.2.1"), None);
    }

    #[test]
    fn matching_weights_add_up_and_come_first() {
        let terms = [
            PreferredNodeSelector {
                weight: 30,
                preference: LabelSelector::from_labels([("zone".into(), "a".into())].into()),
            },
            PreferredNodeSelector {
                weight: 20,
                preference: LabelSelector::from_labels([("ssd".into(), "yes".into())].into()),
            },
            PreferredNodeSelector {
                weight: 40,
                preference: LabelSelector::from_labels([("zone".into(), "b".into())].into()),
            },
        ];
        let nodes = [
            node("node-a", &[("zone", "a"), ("ssd", "yes")]), // 50
            node("node-b", &[("zone", "b")]),                 // 40
            node("node-c", &[]),                              // 0, best hash
        ];
        let ranked = rank(&nodes, "192.0.2.1".parse().expect("IP"), &terms);
        assert_eq!(names(&ranked), ["node-a", "node-b", "node-c"]);
        assert_eq!(preference(&nodes[0], &terms), 50);
    }

    #[test]
    fn a_node_that_cannot_answer_is_passed_over_and_takes_nothing() {
        let config = world_config("  interfaces: [eth1]\n");
        let nodes = [node("node-a", &[]), node("node-b", &[]), node("node-c", &[])];
        let web = service("web");
        let ips: [IpAddr; 1] = ["192.0.2.1".parse().expect("IP")];
        let assigned = [crate::planner::AssignedService { service: &web, ips: &ips }];
        let world = World { config: &config, services: &assigned, endpoints: None, nodes: &nodes };
        let mut claims = Claims::new();
        claims.set_answering("node-c", ips);
        assert_eq!(owner(&plan_l2(&world, |_| true, &claims), "192.0.2.1").as_deref(), Some("node-c"));
        // node-c's eth1 lost carrier: it still claims, but cannot answer.
        let eth0 = Interfaces { usable: BTreeSet::from(["eth0".to_string()]), default_usable: true };
        claims.interfaces.insert("node-c".into(), eth0.clone());
        assert_eq!(owner(&plan_l2(&world, |_| true, &claims), "192.0.2.1").as_deref(), Some("node-a"));
        // An advertisement naming no interface is answered on eth0.
        let any = world_config("");
        let world = World { config: &any, ..world };
        assert_eq!(owner(&plan_l2(&world, |_| true, &claims), "192.0.2.1").as_deref(), Some("node-c"));
        // Stopping: eligible nowhere, whatever it claims.
        claims.interfaces.insert("node-c".into(), Interfaces::none());
        assert_eq!(owner(&plan_l2(&world, |_| true, &claims), "192.0.2.1").as_deref(), Some("node-a"));
        // Only excluded names up: not for an advertisement that names none.
        let veth = Interfaces { usable: BTreeSet::from(["veth0".to_string()]), default_usable: false };
        assert!(!veth.can_answer(&[]));
        assert!(veth.can_answer(&["veth0".to_string()]));
    }

    #[test]
    fn service_selectors_do_not_select_a_service_sharing_its_ip() {
        let config = world_config("  serviceSelectors: [{matchLabels: {app: web}}]\n");
        let nodes = [node("node-a", &[])];
        let mut web = service("web");
        web.labels.insert("app".into(), "web".into());
        let mut shared = web.clone();
        shared.key = crate::service::ServiceKey::new("default", "shared");
        shared.annotations.insert("metallb.universe.tf/allow-shared-ip".into(), "k".into());
        let ips: [IpAddr; 1] = ["192.0.2.1".parse().expect("IP")];
        let others: [IpAddr; 1] = ["192.0.2.2".parse().expect("IP")];
        let assigned = [
            crate::planner::AssignedService { service: &web, ips: &ips },
            crate::planner::AssignedService { service: &shared, ips: &others },
        ];
        let world = World { config: &config, services: &assigned, endpoints: None, nodes: &nodes };
        let plan = plan_l2(&world, |_| true, &Claims::new());
        assert_eq!(owner(&plan, "192.0.2.1").as_deref(), Some("node-a"));
        assert_eq!(owner(&plan, "192.0.2.2"), None);
        // Without serviceSelectors, sharing is no obstacle.
        let plain = world_config("");
        let world = World { config: &plain, ..world };
        assert_eq!(owner(&plan_l2(&world, |_| true, &Claims::new()), "192.0.2.2").as_deref(), Some("node-a"));
    }

    #[test]
    fn an_ip_nobody_can_answer_for_lack_of_interfaces_is_reported_by_one_node() {
        let config = world_config("  interfaces: [eth9]\n");
        let svc = service("web");
        let ips = ["192.0.2.1".parse::<IpAddr>().expect("IP")];
        let assigned = [crate::planner::AssignedService { service: &svc, ips: &ips }];
        let nodes = [node("a", &[]), node("b", &[])];
        let world = World { config: &config, services: &assigned, endpoints: None, nodes: &nodes };
        let mut claims = Claims::new();
        let lacking = Interfaces { usable: ["eth0".to_string()].into(), default_usable: true };
        claims.interfaces.insert("a".into(), lacking.clone());
        claims.interfaces.insert("b".into(), lacking);
        let first = rank(nodes.iter(), ips[0], &[])[0].name.clone();
        let reports: Vec<_> = ["a", "b"].iter().map(|n| announce_failures(&world, |_| true, &claims, n)).collect();
        let reporters: Vec<usize> = (0..2).filter(|&i| !reports[i].is_empty()).collect();
        assert_eq!(reporters.len(), 1, "one node reports: {reports:?}");
        assert_eq!(nodes[reporters[0]].name, first, "the node the ranking would pick");
        assert_eq!(reports[reporters[0]], [(svc.key.clone(), ips[0])]);
        // Once a node has the interface, it announces and nobody reports.
        claims.interfaces.insert("b".into(), Interfaces { usable: ["eth9".to_string()].into(), default_usable: true });
        assert!(["a", "b"].iter().all(|n| announce_failures(&world, |_| true, &claims, n).is_empty()));
    }

    #[test]
    fn gossip_only_where_something_can_be_answered_and_handover_waits_for_a_live_taker() {
        let config = world_config("  interfaces: [lb-demo0]\n");
        let me = node("node-a", &[]);
        let eth0 = Interfaces { usable: BTreeSet::from(["eth0".to_string()]), default_usable: true };
        assert!(!may_answer(&config, &me, &eth0), "the named interface is missing");
        let demo = Interfaces { usable: BTreeSet::from(["lb-demo0".to_string()]), default_usable: false };
        assert!(may_answer(&config, &me, &demo));
        let mut excluded = me.clone();
        excluded.labels.insert(crate::node::EXCLUDE_FROM_LOAD_BALANCERS.into(), String::new());
        assert!(!may_answer(&config, &excluded, &demo));

        let ip: IpAddr = "192.0.2.1".parse().expect("IP");
        let mut claims = Claims::new();
        claims.set_answering("node-a", [ip]);
        assert!(!handed_over(&claims, "node-a", ip, |_| true), "only we claim it");
        claims.set_answering("node-b", [ip]);
        assert!(handed_over(&claims, "node-a", ip, |_| true));
        assert!(!handed_over(&claims, "node-a", ip, |n| n != "node-b"), "a taker must be live");
        let both = BTreeSet::from(["node-a".to_string(), "node-b".to_string()]);
        let alone = BTreeSet::from(["node-a".to_string()]);
        assert!(!still_to_hand_over(&claims, "node-a", ip, &both), "node-b took it");
        let mut only_me = Claims::new();
        only_me.set_answering("node-a", [ip]);
        assert!(still_to_hand_over(&only_me, "node-a", ip, &both), "node-b has not claimed it yet");
        assert!(!still_to_hand_over(&only_me, "node-a", ip, &alone), "nobody to wait for");
    }

    proptest::proptest! {
        /// Whatever the live set and the claims: one owner per IP, live and
        /// eligible; a live claimant keeps the IP; a Service's IPs stay
        /// together; and the result does not depend on the order claims
        /// were heard in.
        #[test]
        fn owners_are_live_eligible_sticky_and_order_free(
            live in proptest::collection::vec(proptest::bool::ANY, 4),
            claimed in proptest::collection::vec((0usize..6, 0usize..4), 0..12),
            unable in proptest::collection::vec(proptest::bool::ANY, 4),
        ) {
            let config = world_config("  interfaces: [eth1]\n");
            let names = ["n0", "n1", "n2", "n3"];
            let nodes: Vec<Node> = names.iter().map(|n| node(n, &[])).collect();
            let services: Vec<crate::Service> = (0..3).map(|i| service(&format!("s{i}"))).collect();
            let ips: Vec<[IpAddr; 2]> = (0..3u8)
                .map(|i| [IpAddr::from([192, 0, 2, 10 + 2 * i]), IpAddr::from([192, 0, 2, 11 + 2 * i])])
                .collect();
            let assigned: Vec<_> = services
                .iter()
                .zip(&ips)
                .map(|(service, ips)| crate::planner::AssignedService { service, ips })
                .collect();
            let world = World { config: &config, services: &assigned, endpoints: None, nodes: &nodes };
            let all: Vec<IpAddr> = ips.iter().flatten().copied().collect();
            let mut by_node: BTreeMap<&str, Vec<IpAddr>> = BTreeMap::new();
            for &(ip, n) in &claimed {
                by_node.entry(names[n]).or_default().push(all[ip]);
            }
            let mut claims = Claims::new();
            let mut reversed = Claims::new();
            for (n, ips) in &by_node {
                claims.set_answering(n, ips.iter().copied());
            }
            for (n, ips) in by_node.iter().rev() {
                reversed.set_answering(n, ips.iter().rev().copied());
            }
            for (i, n) in names.iter().enumerate() {
                if unable[i] {
                    claims.interfaces.insert((*n).into(), Interfaces::none());
                    reversed.interfaces.insert((*n).into(), Interfaces::none());
                }
            }
            let is_live = |n: &str| names.iter().position(|m| *m == n).is_some_and(|i| live[i]);
            let plan = plan_l2(&world, is_live, &claims);
            proptest::prop_assert_eq!(&plan, &plan_l2(&world, is_live, &reversed));
            for pair in &ips {
                let owners: Vec<_> = pair.iter().map(|ip| plan.owners.get(ip).map(|o| o.node.clone())).collect();
                proptest::prop_assert_eq!(&owners[0], &owners[1], "a Service's IPs stay together");
                let able: Vec<&str> = names.iter().enumerate().filter(|(i, _)| live[*i] && !unable[*i]).map(|(_, n)| *n).collect();
                match &owners[0] {
                    None => proptest::prop_assert!(able.is_empty()),
                    Some(o) => {
                        proptest::prop_assert!(able.contains(&o.as_str()), "owner {} live and able", o);
                        let claimants: Vec<&str> = able.iter().copied().filter(|n| pair.iter().any(|ip| claims.claims(n, ip))).collect();
                        if !claimants.is_empty() {
                            proptest::prop_assert!(claimants.contains(&o.as_str()), "a live claimant keeps it");
                        }
                    }
                }
            }
        }
    }
}
