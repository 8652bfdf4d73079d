//! Structured inputs for the configuration (`config_parse`, `config_text`)
//! and planner (`plan`) fuzz targets.
//!
//! Raw bytes almost never make a configuration that gets past the YAML
//! parser, so a raw-bytes target spends its time on the parser's error paths
//! and on inputs of kilobytes that reach nothing new. Here the fuzzer
//! mutates a small description ([`arbitrary`]-derived) that is rendered to
//! a few hundred bytes of MetalLB YAML (CRDs or the legacy ConfigMap), so
//! nearly every input reaches validation, the builder and, in the plan
//! target, the allocator and the planner. Names come from a tiny alphabet
//! and addresses from a few bases near interesting edges (the ends of each
//! family, `.0`/`.255`), so references resolve, pools overlap, requested
//! addresses fall into pools and advertisements select pools often enough
//! to matter; a `Raw` variant of strings and numbers keeps the error paths
//! reachable.

use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arbitrary::Arbitrary;
use lb_core::addr::Family;
use lb_core::config::crd::{
    BfdProfileSpec, BgpAdvertisementSpec, BgpPeerSpec, CommunityAlias, CommunitySpec, IpAddressPoolSpec,
    L2AdvertisementSpec, Metadata, Object, ServiceAllocationSpec,
};
use lb_core::config::{Config, ConfigError, FileSecrets, Origin, Resource, SourcedResource};
use lb_core::endpoints::{Endpoint, EndpointSlice, Endpoints};
use lb_core::node::{Node, NodeAddress};
use lb_core::plan::Observed;
use lb_core::selector::{LabelSelector, LabelSelectorRequirement, Labels, Operator};
use lb_core::service::{IpFamilyPolicy, Namespace, Protocol, Service, ServicePort, ServiceType, TrafficPolicy};

/// A name from a tiny alphabet, so that references between objects resolve.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name {
    A,
    B,
    C,
    /// Not a valid object name: exercises the name checks.
    Bad,
}

impl Name {
    pub fn as_str(self) -> &'static str {
        match self {
            Name::A => "a",
            Name::B => "b",
            Name::C => "c",
            Name::Bad => "Not_A-Name!",
        }
    }
}

/// A short string: usually one of a few meaningful values, sometimes anything.
#[derive(Arbitrary, Debug, Clone)]
pub enum Text {
    Pick(u8),
    Raw(String),
}

impl Text {
    fn render(&self, picks: &[&str]) -> String {
        match self {
            Text::Pick(i) => picks[usize::from(*i) % picks.len()].to_string(),
            Text::Raw(s) => s.chars().take(24).collect(),
        }
    }
}

const V4_BASES: [u32; 5] = [0xc000_0200, 0, u32::MAX - 15, 0x0a00_00fe, 0xc633_64ff];
const V6_BASES: [u128; 4] = [0x2001_0db8 << 96, 0, u128::MAX - 15, 1 << 127];

/// An address near one of the bases: the ends of each family and `.0`/`.255`.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Addr {
    v6: bool,
    base: u8,
    offset: u8,
}

impl Addr {
    pub fn ip(self) -> IpAddr {
        let offset = u128::from(self.offset & 0x1f);
        if self.v6 {
            let base = V6_BASES[usize::from(self.base) % V6_BASES.len()];
            IpAddr::V6(Ipv6Addr::from(base.wrapping_add(offset)))
        } else {
            let base = V4_BASES[usize::from(self.base) % V4_BASES.len()];
            IpAddr::V4(Ipv4Addr::from(base.wrapping_add(offset as u32)))
        }
    }
}

/// One entry of `addresses`.
#[derive(Arbitrary, Debug, Clone)]
pub enum Block {
    /// A CIDR; the prefix is taken modulo width + 2, so a few are too long.
    Cidr(Addr, u8),
    Range(Addr, Addr),
    Raw(String),
}

impl Block {
    fn render(&self) -> String {
        match self {
            Block::Cidr(a, prefix) => {
                let width = if a.v6 { 128 } else { 32 };
                // Mostly long prefixes (small pools), sometimes any.
                let prefix = if prefix & 0x80 == 0 { width - (prefix % 6) } else { prefix % (width + 2) };
                format!("{}/{prefix}", a.ip())
            }
            Block::Range(a, b) => format!("{}-{}", a.ip(), b.ip()),
            Block::Raw(s) => s.chars().take(24).collect(),
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
pub struct Selector {
    labels: Vec<(Name, Name)>,
    expression: Option<(Name, u8, Vec<Name>)>,
}

impl Selector {
    fn typed(&self) -> LabelSelector {
        let match_labels =
            self.labels.iter().take(2).map(|(k, v)| (k.as_str().to_string(), v.as_str().to_string())).collect();
        let match_expressions = self
            .expression
            .iter()
            .map(|(key, op, values)| LabelSelectorRequirement {
                key: key.as_str().into(),
                operator: [Operator::In, Operator::NotIn, Operator::Exists, Operator::DoesNotExist]
                    [usize::from(*op) % 4],
                values: values.iter().take(3).map(|v| v.as_str().to_string()).collect(),
            })
            .collect();
        LabelSelector { match_labels, match_expressions }
    }

    /// Flow-style YAML, for the legacy form.
    fn render(&self) -> String {
        let mut out = String::from("{matchLabels: {");
        for (k, v) in self.labels.iter().take(2) {
            let _ = write!(out, "{}: {},", q(k.as_str()), q(v.as_str()));
        }
        out.push('}');
        if let Some((key, op, values)) = &self.expression {
            let op = ["In", "NotIn", "Exists", "DoesNotExist", "Bogus"][usize::from(*op) % 5];
            let _ = write!(
                out,
                ", matchExpressions: [{{key: {}, operator: {op}, values: {}}}]",
                q(key.as_str()),
                names(values)
            );
        }
        out.push('}');
        out
    }
}

#[derive(Arbitrary, Debug, Clone)]
pub struct Pool {
    name: Name,
    addresses: Vec<Block>,
    auto_assign: Option<bool>,
    avoid_buggy: Option<bool>,
    /// `serviceAllocation`: priority, namespaces, namespace and Service selectors.
    allocation: Option<(Option<i8>, Vec<Name>, Option<Selector>, Option<Selector>)>,
    /// For the legacy form: layer2 or bgp, and its advertisements.
    bgp: Option<Vec<Advertisement>>,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct Advertisement {
    pools: Vec<Name>,
    aggregation: Option<(i8, Option<i16>)>,
    local_pref: Option<u32>,
    communities: Vec<Text>,
    peers: Vec<Name>,
    node_selector: Option<Selector>,
    pool_selector: Option<Selector>,
    /// L2: interfaces; BGP: ignored.
    interfaces: Vec<Name>,
}

const COMMUNITIES: [&str; 6] = ["65535:65282", "large:64512:1:2", "a", "b", "70000:1", "no-advertise"];
const ASNS: [u32; 5] = [64512, 64513, 65000, 4_200_000_000, 0];
const DURATIONS: [&str; 6] = ["90s", "3s", "0s", "1m30s", "1s", "-1s"];

#[derive(Arbitrary, Debug, Clone)]
pub struct Peer {
    name: Name,
    v1beta1: bool,
    my_asn: Option<u8>,
    peer_asn: Option<u8>,
    dynamic_asn: Option<Text>,
    address: Option<Addr>,
    interface: Option<Name>,
    source: Option<Addr>,
    port: Option<u32>,
    hold: Option<Text>,
    keepalive: Option<Text>,
    router_id: Option<Addr>,
    password: Option<Text>,
    bfd: Option<Name>,
    multihop: Option<bool>,
    vrf: Option<Name>,
    node_selector: Option<Selector>,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct ConfigInput {
    legacy: bool,
    pools: Vec<Pool>,
    l2: Vec<Advertisement>,
    bgp: Vec<Advertisement>,
    peers: Vec<Peer>,
    communities: Vec<(Name, Text)>,
    bfd: Vec<(Name, Option<i16>, Option<bool>)>,
}

/// A YAML double-quoted string (JSON's escapes are YAML's too).
fn q(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn names(list: &[Name]) -> String {
    let inner: Vec<String> = list.iter().take(3).map(|n| q(n.as_str())).collect();
    format!("[{}]", inner.join(", "))
}

fn list(items: impl Iterator<Item = String>) -> String {
    format!("[{}]", items.take(4).map(|s| q(&s)).collect::<Vec<_>>().join(", "))
}

fn opt<T: std::fmt::Display>(out: &mut String, key: &str, value: Option<T>) {
    if let Some(v) = value {
        let _ = write!(out, "{key}: {v}, ");
    }
}

fn opt_q(out: &mut String, key: &str, value: Option<String>) {
    if let Some(v) = value {
        let _ = write!(out, "{key}: {}, ", q(&v));
    }
}

impl ConfigInput {
    /// The configuration as one YAML file.
    pub fn render(&self) -> String {
        if self.legacy { self.render_legacy() } else { self.render_crds() }
    }

    fn render_crds(&self) -> String {
        let mut out = String::new();
        for r in self.resources() {
            // JSON is YAML: the serde form of a resource is what a user writes.
            out.push_str("---\n");
            out.push_str(&serde_json::to_string(&r).unwrap_or_default());
            out.push('\n');
        }
        out
    }

    /// The configuration as typed resources (CRDs), as the YAML layer
    /// would deliver them: [`ConfigInput::config`] builds from these
    /// without any text, [`ConfigInput::render`] writes them out.
    pub fn resources(&self) -> Vec<Resource> {
        let mut out = Vec::new();
        fn object<S>(kind: &str, version: &str, name: Name, spec: S) -> Object<S> {
            Object {
                api_version: format!("metallb.io/{version}"),
                kind: kind.into(),
                metadata: Metadata {
                    name: name.as_str().into(),
                    namespace: Some("metallb-system".into()),
                    labels: Labels::new(),
                },
                spec,
            }
        }
        let names = |list: &[Name]| list.iter().take(3).map(|n| n.as_str().to_string()).collect::<Vec<_>>();
        let selectors = |s: &Option<Selector>| s.iter().map(Selector::typed).collect::<Vec<_>>();
        for p in self.pools.iter().take(4) {
            let service_allocation =
                p.allocation.as_ref().map(|(priority, namespaces, ns_sel, svc_sel)| ServiceAllocationSpec {
                    priority: priority.map(i32::from),
                    namespaces: names(namespaces),
                    namespace_selectors: selectors(ns_sel),
                    service_selectors: selectors(svc_sel),
                });
            let spec = IpAddressPoolSpec {
                addresses: p.addresses.iter().take(4).map(Block::render).collect(),
                auto_assign: p.auto_assign,
                avoid_buggy_ips: p.avoid_buggy,
                service_allocation,
            };
            out.push(Resource::IpAddressPool(object("IPAddressPool", "v1beta1", p.name, spec)));
        }
        for (i, adv) in self.l2.iter().take(2).enumerate() {
            let spec = L2AdvertisementSpec {
                ip_address_pools: names(&adv.pools),
                ip_address_pool_selectors: selectors(&adv.pool_selector),
                node_selectors: selectors(&adv.node_selector),
                interfaces: names(&adv.interfaces),
                ..Default::default()
            };
            out.push(Resource::L2Advertisement(object("L2Advertisement", "v1beta1", [Name::A, Name::B][i], spec)));
        }
        for (i, adv) in self.bgp.iter().take(3).enumerate() {
            let spec = BgpAdvertisementSpec {
                aggregation_length: adv.aggregation.map(|(l, _)| i64::from(l)),
                aggregation_length_v6: adv.aggregation.and_then(|(_, l)| l).map(i64::from),
                local_pref: adv.local_pref,
                communities: adv.communities.iter().take(3).map(|t| t.render(&COMMUNITIES)).collect(),
                ip_address_pools: names(&adv.pools),
                ip_address_pool_selectors: selectors(&adv.pool_selector),
                node_selectors: selectors(&adv.node_selector),
                peers: names(&adv.peers),
                service_selectors: Vec::new(),
            };
            out.push(Resource::BgpAdvertisement(object(
                "BGPAdvertisement",
                "v1beta1",
                [Name::A, Name::B, Name::C][i],
                spec,
            )));
        }
        for p in self.peers.iter().take(3) {
            let asn = |i: Option<u8>| i.map(|i| ASNS[usize::from(i) % ASNS.len()]);
            let spec = BgpPeerSpec {
                my_asn: asn(p.my_asn),
                peer_asn: asn(p.peer_asn),
                dynamic_asn: p.dynamic_asn.as_ref().map(|t| t.render(&["internal", "external"])),
                peer_address: p.address.map(|a| a.ip().to_string()),
                interface: p.interface.map(|n| n.as_str().to_string()),
                source_address: p.source.map(|a| a.ip().to_string()),
                peer_port: p.port,
                hold_time: p.hold.as_ref().map(|t| t.render(&DURATIONS)),
                keepalive_time: p.keepalive.as_ref().map(|t| t.render(&DURATIONS)),
                router_id: p.router_id.map(|a| a.ip().to_string()),
                node_selectors: selectors(&p.node_selector),
                password: p.password.as_ref().map(|t| t.render(&["secret", ""])),
                bfd_profile: p.bfd.map(|n| n.as_str().to_string()),
                ebgp_multi_hop: p.multihop,
                vrf: p.vrf.map(|n| n.as_str().to_string()),
                ..BgpPeerSpec::default()
            };
            out.push(Resource::BgpPeer(object("BGPPeer", if p.v1beta1 { "v1beta1" } else { "v1beta2" }, p.name, spec)));
        }
        if !self.communities.is_empty() {
            let communities = self
                .communities
                .iter()
                .take(3)
                .map(|(n, v)| CommunityAlias { name: n.as_str().into(), value: v.render(&COMMUNITIES) })
                .collect();
            out.push(Resource::Community(object("Community", "v1beta1", Name::A, CommunitySpec { communities })));
        }
        for (name, interval, echo) in self.bfd.iter().take(2) {
            let spec = BfdProfileSpec {
                receive_interval: interval.map(i64::from),
                echo_mode: *echo,
                ..BfdProfileSpec::default()
            };
            out.push(Resource::BfdProfile(object("BFDProfile", "v1beta1", *name, spec)));
        }
        out
    }

    /// The configuration built straight from [`ConfigInput::resources`]
    /// (validation and defaults, no YAML): `Err` with what is invalid.
    pub fn config(&self) -> Result<Config, Vec<ConfigError>> {
        let resources: Vec<SourcedResource> = self
            .resources()
            .into_iter()
            .map(|resource| SourcedResource {
                origin: Origin { file: "fuzz.yaml".into(), object: resource.metadata().name.clone(), legacy: None },
                resource,
            })
            .collect();
        let mut errors = Vec::new();
        let config = lb_core::config::build::build(&resources, &mut errors);
        let _ = lb_core::config::build::check_secret_references(&resources, &FileSecrets::default(), &mut errors);
        if errors.is_empty() { Ok(config) } else { Err(errors) }
    }

    fn render_legacy(&self) -> String {
        let mut c = String::from("{peers: [");
        for p in self.peers.iter().take(3) {
            let mut s = String::new();
            opt(&mut s, "my-asn", p.my_asn.map(|i| ASNS[usize::from(i) % ASNS.len()]));
            opt(&mut s, "peer-asn", p.peer_asn.map(|i| ASNS[usize::from(i) % ASNS.len()]));
            opt_q(&mut s, "peer-address", p.address.map(|a| a.ip().to_string()));
            opt_q(&mut s, "source-address", p.source.map(|a| a.ip().to_string()));
            opt(&mut s, "peer-port", p.port);
            opt_q(&mut s, "hold-time", p.hold.as_ref().map(|t| t.render(&DURATIONS)));
            opt_q(&mut s, "router-id", p.router_id.map(|a| a.ip().to_string()));
            opt_q(&mut s, "password", p.password.as_ref().map(|t| t.render(&["secret", ""])));
            opt_q(&mut s, "bfd-profile", p.bfd.map(|n| n.as_str().to_string()));
            opt(&mut s, "ebgp-multihop", p.multihop);
            opt(&mut s, "node-selectors", p.node_selector.as_ref().map(|n| format!("[{}]", n.render())));
            let _ = write!(c, "{{{s}}}, ");
        }
        c.push_str("], bgp-communities: {");
        for (n, v) in self.communities.iter().take(3) {
            let _ = write!(c, "{}: {}, ", q(n.as_str()), q(&v.render(&COMMUNITIES)));
        }
        c.push_str("}, address-pools: [");
        for p in self.pools.iter().take(4) {
            let mut s = format!(
                "name: {}, protocol: {}, addresses: {}, ",
                q(p.name.as_str()),
                if p.bgp.is_some() { "bgp" } else { "layer2" },
                list(p.addresses.iter().map(Block::render))
            );
            opt(&mut s, "auto-assign", p.auto_assign);
            opt(&mut s, "avoid-buggy-ips", p.avoid_buggy);
            if let Some(advs) = &p.bgp {
                let advs: Vec<String> = advs
                    .iter()
                    .take(2)
                    .map(|a| {
                        let mut s = String::new();
                        opt(&mut s, "aggregation-length", a.aggregation.map(|(l, _)| l));
                        opt(&mut s, "aggregation-length-v6", a.aggregation.and_then(|(_, l)| l));
                        opt(&mut s, "localpref", a.local_pref);
                        let _ =
                            write!(s, "communities: {}", list(a.communities.iter().map(|t| t.render(&COMMUNITIES))));
                        format!("{{{s}}}")
                    })
                    .collect();
                let _ = write!(s, "bgp-advertisements: [{}]", advs.join(", "));
            }
            let _ = write!(c, "{{{s}}}, ");
        }
        c.push_str("], bfd-profiles: [");
        for (name, interval, echo) in self.bfd.iter().take(2) {
            let mut s = format!("name: {}, ", q(name.as_str()));
            opt(&mut s, "receive-interval", *interval);
            opt(&mut s, "echo-mode", *echo);
            let _ = write!(c, "{{{s}}}, ");
        }
        c.push_str("]}");
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: config, namespace: metallb-system}}\ndata: {{config: {}}}\n",
            q(&c)
        )
    }
}

/// A Service as a source delivers it, built directly (no YAML): its parsing
/// is the configuration target's business, not the planner's.
#[derive(Arbitrary, Debug, Clone)]
pub struct ServiceInput {
    namespace: Name,
    name: Name,
    not_load_balancer: bool,
    class: Option<Name>,
    spec_ip: Option<Addr>,
    /// The `loadBalancerIPs` annotation, in the old domain if true.
    requested: Option<(bool, Vec<Addr>)>,
    pool: Option<Name>,
    sharing: Option<Name>,
    ports: Vec<(u8, bool)>,
    local: Option<Name>,
    policy: Option<u8>,
    families: Vec<bool>,
    status: Vec<Addr>,
    label: Option<(Name, Name)>,
}

impl ServiceInput {
    pub fn service(&self) -> Service {
        let mut s = Service::new(self.namespace.as_str(), self.name.as_str());
        s.service_type = if self.not_load_balancer { ServiceType::ClusterIp } else { ServiceType::LoadBalancer };
        s.load_balancer_class = self.class.map(|c| c.as_str().to_string());
        s.load_balancer_ip = self.spec_ip.map(|a| a.ip().to_string());
        if let Some((old, ips)) = &self.requested {
            let domain = if *old { "metallb.universe.tf" } else { "metallb.io" };
            let list: Vec<String> = ips.iter().take(3).map(|a| a.ip().to_string()).collect();
            s.annotations.insert(format!("{domain}/loadBalancerIPs"), list.join(","));
        }
        if let Some(pool) = self.pool {
            s.annotations.insert("metallb.io/address-pool".into(), pool.as_str().into());
        }
        if let Some(key) = self.sharing {
            s.annotations.insert("metallb.io/allow-shared-ip".into(), key.as_str().into());
        }
        s.ports = self
            .ports
            .iter()
            .take(3)
            .map(|(port, udp)| ServicePort {
                protocol: if *udp { Protocol::Udp } else { Protocol::Tcp },
                port: u16::from(*port % 4),
            })
            .collect();
        if let Some(app) = self.local {
            s.external_traffic_policy = TrafficPolicy::Local;
            s.selector.insert("app".into(), app.as_str().into());
        }
        s.ip_family_policy = self.policy.map(|p| match p % 3 {
            0 => IpFamilyPolicy::SingleStack,
            1 => IpFamilyPolicy::PreferDualStack,
            _ => IpFamilyPolicy::RequireDualStack,
        });
        s.ip_families = self.families.iter().take(2).map(|v6| if *v6 { Family::V6 } else { Family::V4 }).collect();
        s.ingress_ips = self.status.iter().take(2).map(|a| a.ip()).collect();
        if let Some((k, v)) = self.label {
            s.labels.insert(k.as_str().into(), v.as_str().into());
        }
        s
    }
}

#[derive(Arbitrary, Debug, Clone)]
pub struct NodeInput {
    name: Name,
    label: Option<(Name, Name)>,
    excluded: bool,
    network_unavailable: bool,
    address: Option<Addr>,
}

/// The observed world, every part built directly as model values: the
/// configuration from typed resources through validation
/// ([`ConfigInput::config`]), Services, namespaces, nodes and endpoints.
#[derive(Arbitrary, Debug, Clone)]
pub struct WorldInput {
    pub config: ConfigInput,
    services: Vec<ServiceInput>,
    namespaces: Vec<(Name, Option<(Name, Name)>)>,
    nodes: Vec<NodeInput>,
    /// Per Service (by index), endpoints on nodes: ready, serving.
    endpoints: Option<Vec<(u8, Name, Option<bool>, Option<bool>)>>,
}

impl WorldInput {
    /// The world, or `None` when the configuration does not load.
    pub fn observed(&self) -> Option<Observed> {
        let config = self.config.config().ok()?;
        let services: Vec<Service> = self.services.iter().take(8).map(ServiceInput::service).collect();
        let namespaces = self
            .namespaces
            .iter()
            .take(3)
            .map(|(name, label)| {
                let labels = label.iter().map(|(k, v)| (k.as_str().to_string(), v.as_str().to_string())).collect();
                Namespace::new(name.as_str(), labels)
            })
            .collect();
        let nodes = self
            .nodes
            .iter()
            .take(3)
            .map(|n| {
                let mut node = Node::new(n.name.as_str());
                if let Some((k, v)) = n.label {
                    node.labels.insert(k.as_str().into(), v.as_str().into());
                }
                if n.excluded {
                    node.labels.insert(lb_core::node::EXCLUDE_FROM_LOAD_BALANCERS.into(), String::new());
                }
                node.network_unavailable = n.network_unavailable;
                node.addresses =
                    n.address.iter().map(|a| NodeAddress { kind: "InternalIP".into(), address: a.ip() }).collect();
                node
            })
            .collect();
        let endpoints = self.endpoints.as_ref().map(|list| {
            Endpoints::new(list.iter().take(8).filter_map(|(i, node, ready, serving)| {
                let service = services.get(usize::from(*i) % services.len().max(1))?.key.clone();
                let endpoint = Endpoint { node_name: Some(node.as_str().into()), ready: *ready, serving: *serving };
                Some(EndpointSlice { service, endpoints: vec![endpoint] })
            }))
        });
        Some(Observed { config, services, namespaces, nodes, endpoints })
    }
}
