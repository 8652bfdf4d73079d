//! The allocator's rules, one behaviour per test.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;

use lb_core::addr::Family;
use lb_core::config::Config;
use lb_core::selector::Labels;
use lb_core::service::{
    IpFamilyPolicy, Namespace, Protocol, Service, ServiceKey, ServicePort, ServiceType, TrafficPolicy,
};
use lb_ipam::{AllocError, Allocator, PoolStats};

// ---------------------------------------------------------------- helpers

/// A configuration of `IPAddressPool`s given as `(name, flow-style spec)`.
fn config(pools: &[(&str, &str)]) -> Config {
    let yaml: String = pools
        .iter()
        .map(|(name, spec)| {
            format!("---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: \"{name}\"}}\nspec: {{{spec}}}\n")
        })
        .collect();
    lb_core::config::load(&[("test.yaml", &yaml)]).unwrap_or_else(|e| panic!("bad test config: {e:?}")).config
}

fn allocator(pools: &[(&str, &str)]) -> Allocator {
    Allocator::new(config(pools))
}

/// A LoadBalancer Service `namespace/name` (or `name` in `default`) on TCP/80.
fn lb(key: &str) -> Service {
    let (ns, name) = key.split_once('/').unwrap_or(("default", key));
    let mut s = Service::new(ns, name);
    s.service_type = ServiceType::LoadBalancer;
    s.ports = vec![ServicePort { protocol: Protocol::Tcp, port: 80 }];
    s
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn key(text: &str) -> ServiceKey {
    let (ns, name) = text.split_once('/').unwrap_or(("default", text));
    ServiceKey::new(ns, name)
}

/// Builder-style changes to a test Service.
trait Spec: Sized {
    fn ann(self, name: &str, value: &str) -> Self;
    /// `allow-shared-ip`.
    fn shared(self, sharing_key: &str) -> Self {
        self.ann("metallb.io/allow-shared-ip", sharing_key)
    }
    /// `loadBalancerIPs` annotation.
    fn wants(self, ips: &str) -> Self {
        self.ann("metallb.io/loadBalancerIPs", ips)
    }
    /// `address-pool` annotation.
    fn pool(self, pool: &str) -> Self {
        self.ann("metallb.io/address-pool", pool)
    }
    /// Ports as `"80/TCP,53/UDP"`.
    fn ports(self, ports: &str) -> Self;
    /// `externalTrafficPolicy: Local` selecting `app=<app>`.
    fn local(self, app: &str) -> Self;
    fn families(self, policy: IpFamilyPolicy, families: &[Family]) -> Self;
    fn label(self, name: &str, value: &str) -> Self;
    fn status(self, ips: &[&str]) -> Self;
}

impl Spec for Service {
    fn ann(mut self, name: &str, value: &str) -> Self {
        self.annotations.insert(name.into(), value.into());
        self
    }

    fn ports(mut self, ports: &str) -> Self {
        self.ports = ports
            .split(',')
            .map(|p| {
                let (port, protocol) = p.split_once('/').unwrap();
                let protocol = match protocol {
                    "TCP" => Protocol::Tcp,
                    "UDP" => Protocol::Udp,
                    _ => Protocol::Sctp,
                };
                ServicePort { protocol, port: port.parse().unwrap() }
            })
            .collect();
        self
    }

    fn local(mut self, app: &str) -> Self {
        self.external_traffic_policy = TrafficPolicy::Local;
        self.selector = Labels::from([("app".to_string(), app.to_string())]);
        self
    }

    fn families(mut self, policy: IpFamilyPolicy, families: &[Family]) -> Self {
        self.ip_family_policy = Some(policy);
        self.ip_families = families.to_vec();
        self
    }

    fn label(mut self, name: &str, value: &str) -> Self {
        self.labels.insert(name.into(), value.into());
        self
    }

    fn status(mut self, ips: &[&str]) -> Self {
        self.ingress_ips = ips.iter().map(|i| ip(i)).collect();
        self
    }
}

fn join(ips: impl Iterator<Item = IpAddr>) -> String {
    ips.map(|i| i.to_string()).collect::<Vec<_>>().join(",")
}

/// Allocates and returns the addresses, comma separated; panics unless assigned.
fn give(a: &mut Allocator, s: &Service) -> String {
    match a.allocate(s) {
        Ok(Some(assignment)) => join(assignment.addresses.iter()),
        other => panic!("{}: expected an assignment, got {other:?}", s.key),
    }
}

/// Allocates and returns the error; panics unless it failed.
fn fail(a: &mut Allocator, s: &Service) -> AllocError {
    match a.allocate(s) {
        Err(e) => e,
        Ok(other) => panic!("{}: expected an error, got {other:?}", s.key),
    }
}

/// The Service's current addresses, comma separated.
fn held(a: &Allocator, s: &Service) -> Option<String> {
    a.assignment(&s.key).map(|x| join(x.addresses.iter()))
}

fn pool_of(a: &Allocator, s: &Service) -> String {
    a.assignment(&s.key).unwrap().pool.to_string()
}

fn stats(a: &Allocator, pool: &str) -> PoolStats {
    a.pool_stats().into_iter().find(|p| p.name == pool).unwrap()
}

const V4: &[Family] = &[Family::V4];
const V6: &[Family] = &[Family::V6];
const V4V6: &[Family] = &[Family::V4, Family::V6];
const V6V4: &[Family] = &[Family::V6, Family::V4];

// ---------------------------------------------------------- which Services

#[test]
fn only_load_balancer_services_are_handled() {
    let mut a = allocator(&[("a", "addresses: [192.0.2.0/30]")]);
    for t in [ServiceType::ClusterIp, ServiceType::NodePort, ServiceType::ExternalName, ServiceType::Other("X".into())]
    {
        let mut s = lb("other");
        s.service_type = t;
        assert_eq!(a.allocate(&s), Ok(None));
        assert_eq!(held(&a, &s), None);
    }
    assert_eq!(stats(&a, "a").ipv4_in_use, 0);
    assert_eq!(give(&mut a, &lb("web")), "192.0.2.0");
}

#[test]
fn load_balancer_class_must_match_the_configured_one() {
    let cfg = config(&[("a", "addresses: [192.0.2.0/30]")]);
    let mut classed = lb("classed");
    classed.load_balancer_class = Some("example.com/lb".into());
    let mut foreign = lb("foreign");
    foreign.load_balancer_class = Some("someone.else/lb".into());

    let mut plain = Allocator::new(cfg.clone());
    assert_eq!(plain.allocate(&classed), Ok(None));
    assert_eq!(give(&mut plain, &lb("unclassed")), "192.0.2.0");

    let mut ours = Allocator::new(cfg).with_load_balancer_class(Some("example.com/lb".into()));
    assert_eq!(give(&mut ours, &lb("unclassed")), "192.0.2.0", "no class is always handled");
    assert_eq!(give(&mut ours, &classed), "192.0.2.1");
    assert_eq!(ours.allocate(&foreign), Ok(None));
    assert!(ours.is_handled(&classed) && !ours.is_handled(&foreign));

    // A controller's --lb-class: that class only.
    let only =
        Allocator::new(config(&[("a", "addresses: [192.0.2.0/30]")])).with_only_class(Some("example.com/lb".into()));
    assert!(only.is_handled(&classed) && !only.is_handled(&foreign) && !only.is_handled(&lb("unclassed")));
    let none = Allocator::new(config(&[("a", "addresses: [192.0.2.0/30]")])).with_only_class(None);
    assert!(!none.is_handled(&classed) && none.is_handled(&lb("unclassed")));
}

#[test]
fn becoming_unhandled_releases_the_address() {
    let mut a = allocator(&[("a", "addresses: [192.0.2.0/31]")]);
    let web = lb("web");
    assert_eq!(give(&mut a, &web), "192.0.2.0");

    let mut node_port = web.clone();
    node_port.service_type = ServiceType::NodePort;
    assert_eq!(a.allocate(&node_port), Ok(None));
    assert_eq!(held(&a, &web), None);
    assert_eq!(give(&mut a, &lb("next")), "192.0.2.0", "the address is free again");

    let mut classed = lb("classed");
    assert_eq!(give(&mut a, &classed), "192.0.2.1");
    classed.load_balancer_class = Some("other/lb".into());
    assert_eq!(a.allocate(&classed), Ok(None));
    assert_eq!(stats(&a, "a").ipv4_in_use, 1);
}

// --------------------------------------------------------- requested IPs

#[test]
fn requested_ip_in_every_form() {
    let mut a = allocator(&[("a", "addresses: [192.0.2.0/28]")]);
    let mut spec = lb("spec");
    spec.load_balancer_ip = Some("192.0.2.7".into());
    assert_eq!(give(&mut a, &spec), "192.0.2.7");
    let legacy = lb("legacy").ann("metallb.universe.tf/loadBalancerIPs", "192.0.2.8");
    assert_eq!(give(&mut a, &legacy), "192.0.2.8");
    let current = lb("current").wants(" 192.0.2.9 ");
    assert_eq!(give(&mut a, &current), "192.0.2.9");
    assert_eq!(give(&mut a, &lb("auto")), "192.0.2.0", "requests do not disturb auto-assignment");
}

#[test]
fn requested_ip_may_come_from_a_manual_pool_but_auto_never_does() {
    let mut a = allocator(&[
        ("auto", "addresses: [192.0.2.0/31]"),
        ("manual", "addresses: [198.51.100.0/30], autoAssign: false"),
    ]);
    let wanted = lb("wanted").wants("198.51.100.2");
    assert_eq!(give(&mut a, &wanted), "198.51.100.2");
    assert_eq!(pool_of(&a, &wanted), "manual");
    give(&mut a, &lb("x"));
    give(&mut a, &lb("y"));
    assert_eq!(fail(&mut a, &lb("z")), AllocError::Exhausted { family: Family::V4, pools: vec!["auto".into()] });
}

#[test]
fn requested_ip_outside_every_pool() {
    let mut a = allocator(&[("a", "addresses: [192.0.2.0/30]")]);
    assert_eq!(fail(&mut a, &lb("s").wants("203.0.113.1")), AllocError::NotInAnyPool { ip: ip("203.0.113.1") });
}

#[test]
fn requested_buggy_ip_only_where_buggy_ips_are_allowed() {
    let mut a = allocator(&[
        ("careful", "addresses: [192.0.2.0/24], avoidBuggyIPs: true"),
        ("plain", "addresses: [198.51.100.0/24]"),
    ]);
    for bad in ["192.0.2.0", "192.0.2.255"] {
        assert_eq!(fail(&mut a, &lb("s").wants(bad)), AllocError::BuggyIp { ip: ip(bad), pool: "careful".into() });
    }
    assert_eq!(give(&mut a, &lb("zero").wants("198.51.100.0")), "198.51.100.0");
    assert_eq!(give(&mut a, &lb("bcast").wants("198.51.100.255")), "198.51.100.255");
}

#[test]
fn requested_ip_in_use_names_the_holder() {
    let mut a = allocator(&[("a", "addresses: [192.0.2.0/30]")]);
    give(&mut a, &lb("first"));
    let second = lb("second").wants("192.0.2.0");
    let err = fail(&mut a, &second);
    assert_eq!(err, AllocError::InUse { ip: ip("192.0.2.0"), other: key("first") });
    assert!(err.to_string().contains("default/first"), "{err}");
    assert_eq!(held(&a, &second), None);
    assert!(a.release(&key("first")));
    assert_eq!(give(&mut a, &second), "192.0.2.0");
}

#[test]
fn both_request_forms_is_an_error_and_releases() {
    let mut a = allocator(&[("a", "addresses: [192.0.2.0/30]")]);
    let s = lb("s");
    assert_eq!(give(&mut a, &s), "192.0.2.0");
    let mut both = s.clone().wants("192.0.2.1");
    both.load_balancer_ip = Some("192.0.2.1".into());
    assert_eq!(fail(&mut a, &both), AllocError::BothRequestForms);
    assert_eq!(held(&a, &s), None, "on error the Service holds nothing");
    assert_eq!(stats(&a, "a").ipv4_in_use, 0);
}

#[test]
fn malformed_requests() {
    let mut a = allocator(&[("a", "addresses: [192.0.2.0/30, 2001:db8::/126]")]);
    assert_eq!(fail(&mut a, &lb("s").wants("192.0.2.x")), AllocError::InvalidRequestedIp { text: "192.0.2.x".into() });
    let three = lb("s").wants("192.0.2.1,2001:db8::1,192.0.2.2").families(IpFamilyPolicy::RequireDualStack, V4V6);
    assert_eq!(fail(&mut a, &three), AllocError::TooManyRequestedIps { count: 3 });
    let twice = lb("s").wants("192.0.2.1,192.0.2.2").families(IpFamilyPolicy::PreferDualStack, V4V6);
    assert_eq!(fail(&mut a, &twice), AllocError::SameFamilyTwice { family: Family::V4 });
    let v6_for_v4 = lb("s").wants("2001:db8::1");
    assert!(matches!(fail(&mut a, &v6_for_v4), AllocError::FamilyMismatch { .. }));
}

#[test]
fn requested_dual_stack_pair_primary_first() {
    let mut a = allocator(&[("a", "addresses: [192.0.2.0/30, 2001:db8::/126]")]);
    let s = lb("s").wants("192.0.2.2, 2001:db8::3").families(IpFamilyPolicy::RequireDualStack, V6V4);
    assert_eq!(give(&mut a, &s), "2001:db8::3,192.0.2.2");
    let half = lb("half").wants("192.0.2.1").families(IpFamilyPolicy::RequireDualStack, V4V6);
    assert!(matches!(fail(&mut a, &half), AllocError::FamilyMismatch { .. }));
}

#[test]
fn requested_dual_stack_pair_must_come_from_one_pool() {
    let mut a = allocator(&[("four", "addresses: [192.0.2.0/30]"), ("six", "addresses: [2001:db8::/126]")]);
    let s = lb("s").wants("192.0.2.1,2001:db8::1").families(IpFamilyPolicy::RequireDualStack, V4V6);
    let err = fail(&mut a, &s);
    assert!(err.to_string().contains("four") && err.to_string().contains("six"), "{err}");
    assert_eq!(a.assignments().count(), 0);
}

#[test]
fn changing_the_request_moves_and_dropping_it_keeps() {
    let mut a = allocator(&[("a", "addresses: [192.0.2.0/29]")]);
    let s = lb("s").wants("192.0.2.5");
    assert_eq!(give(&mut a, &s), "192.0.2.5");
    assert_eq!(give(&mut a, &lb("s").wants("192.0.2.6")), "192.0.2.6");
    assert_eq!(stats(&a, "a").ipv4_in_use, 1, "the old address was released");
    assert_eq!(give(&mut a, &lb("s")), "192.0.2.6", "no request: keep what it has");
    assert_eq!(give(&mut a, &lb("s")), "192.0.2.6", "re-submitting never moves");
}

// ------------------------------------------------------------ pool choice

#[test]
fn address_pool_annotation_picks_the_pool() {
    let mut a = allocator(&[
        ("a", "addresses: [192.0.2.0/30]"),
        ("b", "addresses: [198.51.100.0/30]"),
        ("manual", "addresses: [203.0.113.0/30], autoAssign: false"),
    ]);
    assert_eq!(give(&mut a, &lb("to-b").pool("b")), "198.51.100.0");
    assert_eq!(give(&mut a, &lb("to-manual").pool("manual")), "203.0.113.0");
    let legacy = lb("legacy").ann("metallb.universe.tf/address-pool", "manual");
    assert_eq!(give(&mut a, &legacy), "203.0.113.1");
    assert_eq!(give(&mut a, &lb("auto")), "192.0.2.0");
}

#[test]
fn address_pool_annotation_errors() {
    let mut a = allocator(&[("a", "addresses: [192.0.2.0/30]"), ("b", "addresses: [198.51.100.0/30]")]);
    assert_eq!(fail(&mut a, &lb("s").pool("nope")), AllocError::UnknownPool { pool: "nope".into() });
    let outside = lb("s").pool("b").wants("192.0.2.1");
    assert_eq!(fail(&mut a, &outside), AllocError::NotInRequestedPool { ip: ip("192.0.2.1"), pool: "b".into() });
    assert_eq!(give(&mut a, &lb("s").pool("b").wants("198.51.100.3")), "198.51.100.3");
}

#[test]
fn changing_the_pool_annotation_moves() {
    let mut a = allocator(&[("a", "addresses: [192.0.2.0/30]"), ("b", "addresses: [198.51.100.0/30]")]);
    assert_eq!(give(&mut a, &lb("s")), "192.0.2.0");
    assert_eq!(give(&mut a, &lb("s").pool("a")), "192.0.2.0", "already in the pool: stays");
    assert_eq!(give(&mut a, &lb("s").pool("b")), "198.51.100.0");
    assert_eq!(stats(&a, "a").ipv4_in_use, 0);
}

// ------------------------------------------------------ serviceAllocation

#[test]
fn service_allocation_namespaces() {
    let mut a = allocator(&[
        ("general", "addresses: [192.0.2.0/30]"),
        ("team", "addresses: [198.51.100.0/30], serviceAllocation: {namespaces: [red]}"),
    ]);
    assert_eq!(give(&mut a, &lb("red/web")), "198.51.100.0");
    assert_eq!(give(&mut a, &lb("blue/web")), "192.0.2.0");
    assert_eq!(
        fail(&mut a, &lb("blue/x").pool("team")),
        AllocError::PoolNotAllowed { pool: "team".into() },
        "the annotation does not bypass serviceAllocation"
    );
    assert_eq!(
        fail(&mut a, &lb("blue/y").wants("198.51.100.3")),
        AllocError::IpPoolNotAllowed { ip: ip("198.51.100.3"), pool: "team".into() },
        "nor does a requested IP"
    );
    assert_eq!(give(&mut a, &lb("red/z").wants("198.51.100.3")), "198.51.100.3");
}

#[test]
fn service_allocation_namespace_selectors() {
    let mut a = allocator(&[
        ("general", "addresses: [192.0.2.0/30]"),
        ("red", "addresses: [198.51.100.0/30], serviceAllocation: {namespaceSelectors: [{matchLabels: {team: red}}]}"),
        (
            "by-name",
            "addresses: [203.0.113.0/30], serviceAllocation: {namespaceSelectors: [{matchLabels: {kubernetes.io/metadata.name: lonely}}]}",
        ),
    ]);
    let labels = |team: &str| Labels::from([("team".to_string(), team.to_string())]);
    a.set_namespaces([Namespace::new("shop", labels("red")), Namespace::new("blog", labels("blue"))]);
    assert_eq!(give(&mut a, &lb("shop/web")), "198.51.100.0");
    assert_eq!(give(&mut a, &lb("blog/web")), "192.0.2.0");
    assert_eq!(give(&mut a, &lb("unknown/web")), "192.0.2.1", "an unknown namespace has no team label");
    assert_eq!(give(&mut a, &lb("lonely/web")), "203.0.113.0", "implicit name label of an unlisted namespace");

    // Relabelling namespaces: re-allocation follows.
    a.set_namespaces([Namespace::new("shop", labels("blue"))]);
    assert_eq!(give(&mut a, &lb("shop/web")), "192.0.2.2");
}

#[test]
fn service_allocation_implicit_name_label_of_listed_namespaces() {
    let mut a = allocator(&[
        ("general", "addresses: [192.0.2.0/30]"),
        (
            "by-name",
            "addresses: [203.0.113.0/30], serviceAllocation: {namespaceSelectors: [{matchLabels: {kubernetes.io/metadata.name: shop}}]}",
        ),
    ]);
    // Built without Namespace::new, so without the label the API server would add.
    a.set_namespaces([Namespace { name: "shop".into(), labels: Labels::from([("a".into(), "b".into())]) }]);
    assert_eq!(give(&mut a, &lb("shop/web")), "203.0.113.0");
}

#[test]
fn service_allocation_service_selectors_and_all_conditions() {
    let mut a = allocator(&[
        ("general", "addresses: [192.0.2.0/30]"),
        (
            "gold",
            "addresses: [198.51.100.0/30], serviceAllocation: {namespaces: [shop], serviceSelectors: [{matchLabels: {tier: gold}}]}",
        ),
    ]);
    assert_eq!(give(&mut a, &lb("shop/gold").label("tier", "gold")), "198.51.100.0");
    assert_eq!(give(&mut a, &lb("shop/plain")), "192.0.2.0", "selector fails");
    assert_eq!(give(&mut a, &lb("blog/gold").label("tier", "gold")), "192.0.2.1", "namespace fails");
}

#[test]
fn auto_assign_order_priority_then_unset_then_general_by_name() {
    let one = |addr: &str, rest: &str| format!("addresses: [{addr}]{rest}");
    let pools = [
        ("a", one("192.0.2.1/32", ", serviceAllocation: {priority: 10}")),
        ("z", one("192.0.2.2/32", ", serviceAllocation: {priority: 1}")),
        ("y", one("192.0.2.3/32", ", serviceAllocation: {priority: 5}")),
        ("x", one("192.0.2.4/32", ", serviceAllocation: {priority: 5}")),
        ("neg", one("192.0.2.5/32", ", serviceAllocation: {priority: -5}")),
        ("c", one("192.0.2.6/32", ", serviceAllocation: {namespaces: [default]}")),
        ("b", one("192.0.2.7/32", ", serviceAllocation: {namespaces: [default]}")),
        ("g2", one("192.0.2.8/32", "")),
        ("g1", one("192.0.2.9/32", "")),
        ("manual", one("192.0.2.10/32", ", autoAssign: false, serviceAllocation: {priority: 0}")),
        ("elsewhere", one("192.0.2.11/32", ", serviceAllocation: {priority: 0, namespaces: [other]}")),
    ];
    let pools: Vec<(&str, &str)> = pools.iter().map(|(n, s)| (*n, s.as_str())).collect();
    let mut a = allocator(&pools);
    let order = ["neg", "z", "x", "y", "a", "b", "c", "g1", "g2"];
    for (i, expected) in order.iter().enumerate() {
        let s = lb(&format!("s{i}"));
        give(&mut a, &s);
        assert_eq!(pool_of(&a, &s), *expected, "allocation {i}");
    }
    let err = fail(&mut a, &lb("last"));
    assert_eq!(err, AllocError::Exhausted { family: Family::V4, pools: order.iter().map(|p| p.to_string()).collect() });
    assert!(err.to_string().contains("neg, z, x, y, a, b, c, g1, g2"), "{err}");
}

#[test]
fn no_pool_for_the_service() {
    let mut a = allocator(&[
        ("manual", "addresses: [192.0.2.0/30], autoAssign: false"),
        ("team", "addresses: [198.51.100.0/30], serviceAllocation: {namespaces: [red]}"),
    ]);
    assert_eq!(fail(&mut a, &lb("blue/web")), AllocError::NoPool);
    assert_eq!(give(&mut a, &lb("red/web")), "198.51.100.0");
}

// --------------------------------------------------------- within a pool

#[test]
fn lowest_free_address_in_written_order() {
    let mut a = allocator(&[("a", "addresses: [198.51.100.8/31, 192.0.2.0/31, 192.0.2.10-192.0.2.11]")]);
    let got: Vec<String> = (0..6).map(|i| give(&mut a, &lb(&format!("s{i}")))).collect();
    assert_eq!(got, ["198.51.100.8", "198.51.100.9", "192.0.2.0", "192.0.2.1", "192.0.2.10", "192.0.2.11"]);
    a.release(&key("s3"));
    a.release(&key("s1"));
    assert_eq!(give(&mut a, &lb("n1")), "198.51.100.9");
    assert_eq!(give(&mut a, &lb("n2")), "192.0.2.1");
}

#[test]
fn dot_zero_is_handed_out_unless_buggy_ips_are_avoided() {
    let mut plain = allocator(&[("a", "addresses: [192.0.2.0/24]")]);
    assert_eq!(give(&mut plain, &lb("s")), "192.0.2.0");
    let mut careful = allocator(&[("a", "addresses: [192.0.2.254-192.0.3.1], avoidBuggyIPs: true")]);
    assert_eq!(give(&mut careful, &lb("s1")), "192.0.2.254");
    assert_eq!(give(&mut careful, &lb("s2")), "192.0.3.1");
    assert!(matches!(fail(&mut careful, &lb("s3")), AllocError::Exhausted { .. }));
    // IPv6 has no buggy addresses.
    let mut v6 = allocator(&[("a", "addresses: [2001:db8::/127], avoidBuggyIPs: true")]);
    assert_eq!(give(&mut v6, &lb("s").families(IpFamilyPolicy::SingleStack, V6)), "2001:db8::");
}

#[test]
fn buggy_ips_in_slash_31_and_slash_32() {
    let mut a =
        allocator(&[("a", "addresses: [192.0.2.254/31, 198.51.100.0/32, 198.51.100.7/32], avoidBuggyIPs: true")]);
    assert_eq!(stats(&a, "a").ipv4_total, 2);
    assert_eq!(give(&mut a, &lb("s1")), "192.0.2.254");
    assert_eq!(give(&mut a, &lb("s2")), "198.51.100.7");
    assert!(matches!(fail(&mut a, &lb("s3")), AllocError::Exhausted { .. }));
}

// ---------------------------------------------------------------- sharing

#[test]
fn sharing_needs_the_same_key_and_distinct_ports() {
    let mut a = allocator(&[("a", "addresses: [192.0.2.0/30]")]);
    let web = lb("web").shared("k").ports("80/TCP");
    assert_eq!(give(&mut a, &web), "192.0.2.0");
    let dns = lb("dns").shared("k").ports("53/TCP,53/UDP").wants("192.0.2.0");
    assert_eq!(give(&mut a, &dns), "192.0.2.0");
    let dns_udp_only = lb("dns2").shared("k").ports("53/UDP").wants("192.0.2.0");
    let err = fail(&mut a, &dns_udp_only);
    assert_eq!(
        err,
        AllocError::PortCollision { ip: ip("192.0.2.0"), other: key("dns"), protocol: Protocol::Udp, port: 53 }
    );
    assert!(err.to_string().contains("default/dns") && err.to_string().contains("UDP/53"), "{err}");

    let other_key = lb("o").shared("other").ports("443/TCP").wants("192.0.2.0");
    assert!(matches!(fail(&mut a, &other_key), AllocError::InUse { .. }));
    let no_key = lb("n").ports("443/TCP").wants("192.0.2.0");
    assert!(matches!(fail(&mut a, &no_key), AllocError::InUse { .. }));
    let empty_key = lb("e").shared("").ports("443/TCP").wants("192.0.2.0");
    assert!(matches!(fail(&mut a, &empty_key), AllocError::InUse { .. }), "an empty key means no sharing");
    let mut holders: Vec<String> = a.holders(ip("192.0.2.0")).map(|k| k.to_string()).collect();
    holders.sort();
    assert_eq!(holders, ["default/dns", "default/web"]);
}

#[test]
fn tcp_and_udp_on_one_port_share() {
    let mut a = allocator(&[("a", "addresses: [192.0.2.0/30]")]);
    assert_eq!(give(&mut a, &lb("t").shared("dns").ports("53/TCP")), "192.0.2.0");
    assert_eq!(give(&mut a, &lb("u").shared("dns").ports("53/UDP")), "192.0.2.0");
    assert_eq!(give(&mut a, &lb("s").shared("dns").ports("53/SCTP")), "192.0.2.0");
    assert_eq!(give(&mut a, &lb("t2").shared("dns").ports("53/TCP")), "192.0.2.1");
}

#[test]
fn sharing_needs_compatible_traffic_policies() {
    let mut a = allocator(&[("a", "addresses: [192.0.2.0/30]")]);
    give(&mut a, &lb("cluster").shared("k").ports("1/TCP"));
    let local = lb("local").shared("k").ports("2/TCP").local("web").wants("192.0.2.0");
    assert_eq!(fail(&mut a, &local), AllocError::BackendMismatch { ip: ip("192.0.2.0"), other: key("cluster") });
    assert_eq!(give(&mut a, &lb("cluster2").shared("k").ports("3/TCP").wants("192.0.2.0")), "192.0.2.0");

    give(&mut a, &lb("l1").shared("j").ports("1/TCP").local("web").wants("192.0.2.1"));
    assert_eq!(give(&mut a, &lb("l2").shared("j").ports("2/TCP").local("web").wants("192.0.2.1")), "192.0.2.1");
    let other_pods = lb("l3").shared("j").ports("3/TCP").local("db").wants("192.0.2.1");
    assert!(matches!(fail(&mut a, &other_pods), AllocError::BackendMismatch { .. }));
}

#[test]
fn keyed_service_joins_the_lowest_compatible_address_then_takes_a_fresh_one() {
    let mut a = allocator(&[("a", "addresses: [192.0.2.0/29]")]);
    assert_eq!(give(&mut a, &lb("a").shared("k").ports("80/TCP")), "192.0.2.0");
    assert_eq!(give(&mut a, &lb("b").ports("443/TCP")), "192.0.2.1");
    assert_eq!(give(&mut a, &lb("c").shared("k").ports("80/TCP")), "192.0.2.2", "port collision at .0");
    assert_eq!(give(&mut a, &lb("d").shared("k").ports("443/TCP")), "192.0.2.0", "lowest first");
    assert_eq!(give(&mut a, &lb("e").shared("k").ports("443/TCP")), "192.0.2.2");
    assert_eq!(give(&mut a, &lb("f").shared("k").ports("443/TCP")), "192.0.2.3");
    assert_eq!(give(&mut a, &lb("g").shared("k").ports("8080/TCP").local("x")), "192.0.2.4", "backend differs");
    assert_eq!(give(&mut a, &lb("h").shared("other").ports("9/TCP")), "192.0.2.5");
    assert_eq!(stats(&a, "a").ipv4_in_use, 6, "shared addresses are counted once");

    // The address stays held until its last holder goes.
    assert!(a.release(&key("d")));
    assert!(held(&a, &lb("a")).is_some());
    assert_eq!(give(&mut a, &lb("i").ports("1/TCP")), "192.0.2.6");
    assert!(a.release(&key("a")));
    assert_eq!(a.holders(ip("192.0.2.0")).count(), 0);
    assert_eq!(give(&mut a, &lb("j").ports("1/TCP")), "192.0.2.0");
}

#[test]
fn keyed_service_joins_only_in_pools_it_may_use() {
    let mut a = allocator(&[("a", "addresses: [192.0.2.0/30]"), ("b", "addresses: [198.51.100.0/30]")]);
    assert_eq!(give(&mut a, &lb("x").shared("k").ports("1/TCP")), "192.0.2.0");
    assert_eq!(give(&mut a, &lb("y").shared("k").ports("2/TCP").pool("b")), "198.51.100.0");
    assert_eq!(give(&mut a, &lb("z").shared("k").ports("3/TCP")), "192.0.2.0");
}

#[test]
fn changing_the_key_while_sharing_moves_the_changed_service() {
    let mut a = allocator(&[("a", "addresses: [192.0.2.0/30]")]);
    let x = lb("x").shared("k").ports("1/TCP");
    let y = lb("y").shared("k").ports("2/TCP");
    assert_eq!(give(&mut a, &x), "192.0.2.0");
    assert_eq!(give(&mut a, &y), "192.0.2.0");
    assert_eq!(give(&mut a, &x.clone().shared("k2")), "192.0.2.1");
    assert_eq!(held(&a, &y).as_deref(), Some("192.0.2.0"));
    // A sole holder may change its key and keep its address, and is found under the new key.
    assert_eq!(give(&mut a, &y.clone().shared("k3")), "192.0.2.0");
    assert_eq!(give(&mut a, &lb("z").shared("k3").ports("3/TCP")), "192.0.2.0");
    // Compatible port changes keep the address; colliding ones move.
    assert_eq!(give(&mut a, &lb("z").shared("k3").ports("4/TCP")), "192.0.2.0");
    assert_eq!(give(&mut a, &lb("z").shared("k3").ports("2/TCP")), "192.0.2.2");
}

// ------------------------------------------------------------- dual stack

fn dual_pools() -> Allocator {
    allocator(&[
        ("a-v4", "addresses: [192.0.2.0/30]"),
        ("b-v6", "addresses: [2001:db8:1::/126]"),
        ("c-dual", "addresses: [198.51.100.0/30, 2001:db8::/126]"),
    ])
}

#[test]
fn single_stack_follows_ip_families() {
    let mut a = dual_pools();
    assert_eq!(give(&mut a, &lb("four")), "192.0.2.0");
    assert_eq!(give(&mut a, &lb("six").families(IpFamilyPolicy::SingleStack, V6)), "2001:db8:1::");
    let mut by_cluster_ip = lb("by-cluster-ip");
    by_cluster_ip.cluster_ips = vec![ip("fd00::1")];
    assert_eq!(give(&mut a, &by_cluster_ip), "2001:db8:1::1", "no ipFamilies: family of the cluster IP");
    assert_eq!(give(&mut a, &lb("explicit").families(IpFamilyPolicy::SingleStack, V4)), "192.0.2.1");
}

#[test]
fn require_dual_stack_takes_both_from_one_pool() {
    let mut a = dual_pools();
    let s = lb("s").families(IpFamilyPolicy::RequireDualStack, V4V6);
    assert_eq!(give(&mut a, &s), "198.51.100.0,2001:db8::");
    assert_eq!(pool_of(&a, &s), "c-dual");
    let v6_first = lb("t").families(IpFamilyPolicy::RequireDualStack, V6V4);
    assert_eq!(give(&mut a, &v6_first), "2001:db8::1,198.51.100.1");
    let only_v4 = lb("u").families(IpFamilyPolicy::RequireDualStack, V4V6).pool("a-v4");
    assert_eq!(fail(&mut a, &only_v4), AllocError::NoDualStack { pools: vec!["a-v4".into()] });
}

#[test]
fn require_dual_stack_without_a_pool_offering_both() {
    let mut a = dual_pools();
    for i in 0..4 {
        give(&mut a, &lb(&format!("v6-{i}")).families(IpFamilyPolicy::SingleStack, V6).pool("c-dual"));
    }
    let s = lb("s").families(IpFamilyPolicy::RequireDualStack, V4V6);
    let err = fail(&mut a, &s);
    assert_eq!(err, AllocError::NoDualStack { pools: vec!["a-v4".into(), "b-v6".into(), "c-dual".into()] });
    assert!(err.to_string().contains("a-v4, b-v6, c-dual"), "{err}");
    assert_eq!(stats(&a, "c-dual").ipv4_in_use, 0, "nothing half-allocated");
}

#[test]
fn prefer_dual_stack_takes_both_where_offered_else_one() {
    let mut a = dual_pools();
    let both = lb("both").families(IpFamilyPolicy::PreferDualStack, V4V6);
    assert_eq!(give(&mut a, &both), "198.51.100.0,2001:db8::");
    let in_v4_pool = lb("v4").families(IpFamilyPolicy::PreferDualStack, V4V6).pool("a-v4");
    assert_eq!(give(&mut a, &in_v4_pool), "192.0.2.0");
    let in_v6_pool = lb("v6").families(IpFamilyPolicy::PreferDualStack, V4V6).pool("b-v6");
    assert_eq!(give(&mut a, &in_v6_pool), "2001:db8:1::");

    // Once no pool offers both, the primary family first, then the other.
    for i in 0..3 {
        give(&mut a, &lb(&format!("fill-{i}")).families(IpFamilyPolicy::SingleStack, V6).pool("c-dual"));
    }
    assert_eq!(give(&mut a, &lb("p4").families(IpFamilyPolicy::PreferDualStack, V4V6)), "192.0.2.1");
    assert_eq!(give(&mut a, &lb("p6").families(IpFamilyPolicy::PreferDualStack, V6V4)), "2001:db8:1::1");
}

#[test]
fn dual_stack_from_manifests() {
    let yaml = r#"
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  type: LoadBalancer
  ipFamilyPolicy: RequireDualStack
  ipFamilies: [IPv6, IPv4]
  ports: [{port: 443}]
"#;
    let services = lb_core::manifest::services(yaml).unwrap();
    let mut a = dual_pools();
    assert_eq!(give(&mut a, &services[0]), "2001:db8::,198.51.100.0");
}

// ---------------------------------------------------------------- restore

const RESTORE: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: fresh}
spec: {type: LoadBalancer, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: restored}
spec: {type: LoadBalancer, ports: [{port: 80}]}
status: {loadBalancer: {ingress: [{ip: 192.0.2.0}]}}
---
apiVersion: v1
kind: Service
metadata: {name: dual}
spec: {type: LoadBalancer, ipFamilyPolicy: RequireDualStack, ipFamilies: [IPv4, IPv6], ports: [{port: 80}]}
status: {loadBalancer: {ingress: [{ip: "2001:db8::2"}, {ip: 192.0.2.2}]}}
"#;

#[test]
fn restore_from_status_before_fresh_allocations() {
    let services = lb_core::manifest::services(RESTORE).unwrap();
    let mut a = allocator(&[("a", "addresses: [192.0.2.0/29, 2001:db8::/125]")]);
    let results = a.allocate_all(&services);
    let got: Vec<String> = results.iter().map(|r| join(r.as_ref().unwrap().as_ref().unwrap().0.iter())).collect();
    assert_eq!(got, ["192.0.2.1", "192.0.2.0", "192.0.2.2,2001:db8::2"]);
    // Re-submitting changes nothing.
    assert_eq!(give(&mut a, &services[1]), "192.0.2.0");
}

#[test]
fn restore_shared_addresses() {
    let mut a = allocator(&[("a", "addresses: [192.0.2.0/29]")]);
    let x = lb("x").shared("k").ports("1/TCP").status(&["192.0.2.5"]);
    let y = lb("y").shared("k").ports("2/TCP").status(&["192.0.2.5"]);
    let z = lb("z").shared("k").ports("2/TCP").status(&["192.0.2.5"]);
    let results = a.allocate_all(&[x.clone(), y.clone(), z.clone()]);
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(held(&a, &x).as_deref(), Some("192.0.2.5"));
    assert_eq!(held(&a, &y).as_deref(), Some("192.0.2.5"));
    assert_eq!(held(&a, &z).as_deref(), Some("192.0.2.0"), "z collides with y: a new address");
}

#[test]
fn status_addresses_no_longer_allowed_are_dropped() {
    let mut a = allocator(&[
        ("careful", "addresses: [192.0.2.0/30], avoidBuggyIPs: true"),
        ("team", "addresses: [198.51.100.0/30], serviceAllocation: {namespaces: [red]}"),
    ]);
    assert_eq!(give(&mut a, &lb("gone").status(&["203.0.113.9"])), "192.0.2.1");
    assert_eq!(give(&mut a, &lb("buggy").status(&["192.0.2.0"])), "192.0.2.2");
    assert_eq!(give(&mut a, &lb("blue/web").status(&["198.51.100.1"])), "192.0.2.3");
    assert_eq!(give(&mut a, &lb("red/web").status(&["198.51.100.1"])), "198.51.100.1");
    let wrong_pool = lb("red/x").status(&["198.51.100.2"]).pool("careful");
    assert!(matches!(fail(&mut a, &wrong_pool), AllocError::Exhausted { .. }));
    let wrong_family = lb("red/y").status(&["2001:db8::1"]);
    assert_eq!(give(&mut a, &wrong_family), "198.51.100.0");
}

#[test]
fn status_addresses_win_over_requests_at_restore() {
    let mut a = allocator(&[("a", "addresses: [192.0.2.0/30]")]);
    let requester = lb("requester").wants("192.0.2.0");
    let stale = lb("stale").status(&["192.0.2.0"]);
    let results = a.allocate_all(&[requester.clone(), stale.clone()]);
    assert_eq!(results[1].as_ref().unwrap().as_ref().unwrap().0.to_vec(), vec![ip("192.0.2.0")]);
    assert_eq!(results[0], Err(AllocError::InUse { ip: ip("192.0.2.0"), other: key("stale") }));
}

#[test]
fn requested_addresses_go_before_unpinned_ones_in_one_pass() {
    let mut a = allocator(&[("a", "addresses: [192.0.2.0/29]")]);
    let any = lb("any");
    let pinned = lb("pinned").wants("192.0.2.0");
    let mut spec_ip = lb("spec-ip");
    spec_ip.load_balancer_ip = Some("192.0.2.1".into());
    let old_domain = lb("old-domain").ann("metallb.universe.tf/loadBalancerIPs", "192.0.2.2");
    let shared = lb("shared").shared("k").wants("192.0.2.3");
    let later = lb("later");
    let results = a.allocate_all(&[any, pinned, spec_ip, old_domain, shared, later]);
    let got: Vec<String> = results.iter().map(|r| join(r.as_ref().unwrap().as_ref().unwrap().0.iter())).collect();
    // In input order; the unpinned ones get what the requesters left, in order.
    assert_eq!(got, ["192.0.2.4", "192.0.2.0", "192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.5"]);
}

#[test]
fn unpinned_service_listed_first_does_not_take_the_requested_address() {
    let mut a = allocator(&[("a", "addresses: [192.0.2.0/30]")]);
    let results = a.allocate_all(&[lb("first"), lb("requester").wants("192.0.2.0")]);
    let got: Vec<String> = results.iter().map(|r| join(r.as_ref().unwrap().as_ref().unwrap().0.iter())).collect();
    assert_eq!(got, ["192.0.2.1", "192.0.2.0"]);
}

#[test]
fn a_service_listed_twice_is_the_last_one_listed() {
    // x first shares an address with y; its later copy drops the key and
    // asks for an address outside every pool. The later copy is x now: it
    // gets the error and holds nothing, even though requesters go first.
    let mut a = allocator(&[("a", "addresses: [192.0.2.0/32]")]);
    let results = a.allocate_all(&[lb("x").shared("k"), lb("y").shared("k"), lb("x").wants("198.51.100.7")]);
    assert!(matches!(results[0], Ok(None)), "the earlier copy is not allocated: {:?}", results[0]);
    assert_eq!(join(results[1].as_ref().unwrap().as_ref().unwrap().0.iter()), "192.0.2.0");
    assert!(results[2].is_err(), "{:?}", results[2]);
    let holders: Vec<&ServiceKey> = a.holders(ip("192.0.2.0")).collect();
    assert_eq!(holders, [&key("default/y")]);
}

const TOP: &str = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";

#[test]
fn the_top_of_ipv6_can_be_requested_released_and_requested_again() {
    for spec in [
        "addresses: [\"::/0\"]",
        "addresses: [\"::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff\"]",
        "addresses: [\"8000::/1\"]",
    ] {
        let mut a = allocator(&[("all", spec)]);
        let top = lb("top").wants(TOP).families(IpFamilyPolicy::SingleStack, &[Family::V6]);
        assert_eq!(give(&mut a, &top), TOP, "{spec}");
        assert_eq!(stats(&a, "all").ipv6_in_use, 1);
        let other = lb("other").wants(TOP).families(IpFamilyPolicy::SingleStack, &[Family::V6]);
        assert!(matches!(fail(&mut a, &other), AllocError::InUse { .. }), "{spec}");
        assert!(a.release(&key("top")));
        assert_eq!(stats(&a, "all").ipv6_in_use, 0);
        assert_eq!(give(&mut a, &other), TOP, "{spec}");
    }
}

#[test]
fn a_pool_ending_at_the_top_of_ipv6_hands_out_its_last_address() {
    let mut a = allocator(&[("top", "addresses: [\"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127\"]")]);
    let v6 = |name: &str| lb(name).families(IpFamilyPolicy::SingleStack, &[Family::V6]);
    assert_eq!(give(&mut a, &v6("a")), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe");
    assert_eq!(give(&mut a, &v6("b")), TOP);
    assert!(matches!(fail(&mut a, &v6("c")), AllocError::Exhausted { .. }));
    assert!(a.release(&key("b")));
    assert_eq!(give(&mut a, &v6("c")), TOP);
}

#[test]
fn the_whole_of_ipv4_hands_out_its_last_address() {
    let mut a = allocator(&[("all", "addresses: [0.0.0.0/0]")]);
    assert_eq!(stats(&a, "all").ipv4_total, 1 << 32);
    assert_eq!(give(&mut a, &lb("last").wants("255.255.255.255")), "255.255.255.255");
    assert_eq!(give(&mut a, &lb("first")), "0.0.0.0");
}

// ---------------------------------------------------------- config change

#[test]
fn config_change_keeps_what_is_still_allowed() {
    let mut a = allocator(&[("a", "addresses: [192.0.2.0/29]"), ("b", "addresses: [198.51.100.0/30]")]);
    let services: Vec<Service> = (0..4).map(|i| lb(&format!("s{i}"))).collect();
    for s in &services {
        give(&mut a, s);
    }
    a.release(&key("s1"));
    // A new pool that sorts first and shrinking "a" keep everyone in place.
    let cfg = config(&[
        ("0-first", "addresses: [203.0.113.0/30]"),
        ("a", "addresses: [192.0.2.0/30]"),
        ("b", "addresses: [198.51.100.0/30]"),
    ]);
    let live = [services[0].clone(), services[2].clone(), services[3].clone()];
    assert_eq!(a.set_config(cfg, &live), Vec::<ServiceKey>::new());
    assert_eq!(held(&a, &services[3]).as_deref(), Some("192.0.2.3"));
    assert_eq!(give(&mut a, &services[3]), "192.0.2.3");
    assert_eq!(stats(&a, "a").ipv4_in_use, 3);
    assert_eq!(give(&mut a, &lb("new")), "203.0.113.0");
}

#[test]
fn config_change_releases_services_missing_or_unhandled() {
    let mut a = allocator(&[("a", "addresses: [192.0.2.0/30]")]);
    let (x, y, z) = (lb("x"), lb("y"), lb("z"));
    for s in [&x, &y, &z] {
        give(&mut a, s);
    }
    let mut y_cluster_ip = y.clone();
    y_cluster_ip.service_type = ServiceType::ClusterIp;
    let released = a.set_config(a.config().clone(), &[x.clone(), y_cluster_ip]);
    assert_eq!(released, vec![key("y"), key("z")]);
    assert_eq!(stats(&a, "a").ipv4_in_use, 1);
}

#[test]
fn deleting_a_pool_moves_its_services() {
    let mut a = allocator(&[("a", "addresses: [192.0.2.0/30]"), ("b", "addresses: [198.51.100.0/30]")]);
    let (x, y) = (lb("x"), lb("y").pool("b"));
    give(&mut a, &x);
    give(&mut a, &y);
    let released = a.set_config(config(&[("b", "addresses: [198.51.100.0/30]")]), &[x.clone(), y.clone()]);
    assert_eq!(released, vec![key("x")]);
    assert_eq!(held(&a, &x), None);
    assert_eq!(give(&mut a, &x), "198.51.100.1");
    assert_eq!(held(&a, &y).as_deref(), Some("198.51.100.0"));
}

#[test]
fn renaming_a_pool_keeps_addresses_but_not_annotations() {
    let mut a = allocator(&[("old", "addresses: [192.0.2.0/30]")]);
    let (plain, annotated) = (lb("plain"), lb("annotated").pool("old"));
    give(&mut a, &plain);
    give(&mut a, &annotated);
    let released = a.set_config(config(&[("new", "addresses: [192.0.2.0/30]")]), &[plain.clone(), annotated.clone()]);
    assert_eq!(released, vec![key("annotated")]);
    assert_eq!(pool_of(&a, &plain), "new");
    assert_eq!(held(&a, &plain).as_deref(), Some("192.0.2.0"));
    assert_eq!(fail(&mut a, &annotated), AllocError::UnknownPool { pool: "old".into() });
}

#[test]
fn splitting_a_pool_keeps_addresses() {
    let mut a = allocator(&[("a", "addresses: [192.0.2.0/29]")]);
    let services: Vec<Service> = (0..6).map(|i| lb(&format!("s{i}"))).collect();
    for s in &services {
        give(&mut a, s);
    }
    let cfg = config(&[("a", "addresses: [192.0.2.0/30]"), ("b", "addresses: [192.0.2.4/30]")]);
    assert!(a.set_config(cfg, &services).is_empty());
    assert_eq!(pool_of(&a, &services[4]), "b");
    assert_eq!(held(&a, &services[5]).as_deref(), Some("192.0.2.5"));
    assert_eq!((stats(&a, "a").ipv4_in_use, stats(&a, "b").ipv4_in_use), (4, 2));
    assert_eq!(give(&mut a, &lb("next")), "192.0.2.6");
}

#[test]
fn splitting_a_dual_stack_pool_moves_require_dual_stack_services() {
    let mut a = allocator(&[("a", "addresses: [192.0.2.0/30, 2001:db8::/126]")]);
    let s = lb("s").families(IpFamilyPolicy::RequireDualStack, V4V6);
    assert_eq!(give(&mut a, &s), "192.0.2.0,2001:db8::");
    let cfg = config(&[
        ("four", "addresses: [192.0.2.0/30]"),
        ("six", "addresses: [2001:db8::/126]"),
        ("z-both", "addresses: [198.51.100.0/30, 2001:db8:1::/126]"),
    ]);
    assert_eq!(a.set_config(cfg, std::slice::from_ref(&s)), vec![key("s")]);
    assert_eq!(give(&mut a, &s), "198.51.100.0,2001:db8:1::");
}

#[test]
fn enabling_avoid_buggy_ips_later() {
    let mut a = allocator(&[("a", "addresses: [192.0.2.254/31, 198.51.100.0/30]")]);
    let services: Vec<Service> = (0..4).map(|i| lb(&format!("s{i}"))).collect();
    let got: Vec<String> = services.iter().map(|s| give(&mut a, s)).collect();
    assert_eq!(got, ["192.0.2.254", "192.0.2.255", "198.51.100.0", "198.51.100.1"]);
    let cfg = config(&[("a", "addresses: [192.0.2.254/31, 198.51.100.0/30], avoidBuggyIPs: true")]);
    assert_eq!(a.set_config(cfg, &services), vec![key("s1"), key("s2")]);
    assert_eq!(give(&mut a, &services[1]), "198.51.100.2");
    assert_eq!(give(&mut a, &services[2]), "198.51.100.3");
    assert_eq!(stats(&a, "a").ipv4_total, 4);
}

/// Two Services share an address; one changes so that they may no longer.
/// A config change then moves the changed one, whatever the name order
/// ("a-changed" sorts before "b-stays"), and the other keeps the address.
fn changed_sharer_moves(change: impl FnOnce(Service) -> Service) {
    let mut a = allocator(&[("a", "addresses: [192.0.2.0/30]")]);
    let changed = lb("a-changed").shared("k").ports("1/TCP");
    let stays = lb("b-stays").shared("k").ports("2/TCP");
    give(&mut a, &changed);
    give(&mut a, &stays);
    let changed = change(changed);
    assert_eq!(a.set_config(a.config().clone(), &[changed.clone(), stays.clone()]), vec![key("a-changed")]);
    assert_eq!(held(&a, &stays).as_deref(), Some("192.0.2.0"));
    assert_eq!(give(&mut a, &changed), "192.0.2.1");
}

#[test]
fn config_change_after_a_sharing_key_change_moves_the_changed_service() {
    changed_sharer_moves(|s| s.shared("k2"));
}

#[test]
fn config_change_after_a_colliding_port_change_moves_the_changed_service() {
    changed_sharer_moves(|s| s.ports("2/TCP"));
}

#[test]
fn config_change_with_new_service_allocation_or_changed_request() {
    let mut a = allocator(&[("a", "addresses: [192.0.2.0/30]"), ("b", "addresses: [198.51.100.0/30]")]);
    let (red, blue) = (lb("red/web"), lb("blue/web"));
    let asked = lb("asked").wants("192.0.2.3");
    for s in [&red, &blue, &asked] {
        give(&mut a, s);
    }
    let cfg = config(&[
        ("a", "addresses: [192.0.2.0/30], serviceAllocation: {namespaces: [red]}"),
        ("b", "addresses: [198.51.100.0/30]"),
    ]);
    let asked_other = lb("asked").wants("198.51.100.3");
    let released = a.set_config(cfg, &[red.clone(), blue.clone(), asked_other.clone()]);
    assert_eq!(released, vec![key("blue/web"), key("asked")]);
    assert_eq!(give(&mut a, &blue), "198.51.100.0");
    assert_eq!(give(&mut a, &asked_other), "198.51.100.3");
    assert_eq!(held(&a, &red).as_deref(), Some("192.0.2.0"));
}

// ------------------------------------------------------- release and stats

#[test]
fn release_is_idempotent() {
    let mut a = allocator(&[("a", "addresses: [192.0.2.0/30]")]);
    give(&mut a, &lb("s"));
    assert!(a.release(&key("s")));
    assert!(!a.release(&key("s")));
    assert!(!a.release(&key("never")));
    assert_eq!(stats(&a, "a").ipv4_in_use, 0);
    assert_eq!(a.assignments().count(), 0);
}

#[test]
fn pool_stats_count_per_family() {
    let mut a = allocator(&[
        ("a", "addresses: [192.0.2.0/24, 2001:db8::/120], avoidBuggyIPs: true"),
        ("b", "addresses: [198.51.100.10-198.51.100.19]"),
    ]);
    give(&mut a, &lb("x").shared("k").ports("1/TCP"));
    give(&mut a, &lb("y").shared("k").ports("2/TCP"));
    give(&mut a, &lb("z").families(IpFamilyPolicy::RequireDualStack, V4V6));
    give(&mut a, &lb("w").pool("b"));
    assert_eq!(
        a.pool_stats(),
        vec![
            PoolStats { name: "a".into(), ipv4_total: 254, ipv4_in_use: 2, ipv6_total: 256, ipv6_in_use: 1 },
            PoolStats { name: "b".into(), ipv4_total: 10, ipv4_in_use: 1, ipv6_total: 0, ipv6_in_use: 0 },
        ]
    );
}

#[test]
fn huge_pools_are_instant() {
    let mut a = allocator(&[
        ("big", "addresses: [10.0.0.0/8, 2001:db8::/64], avoidBuggyIPs: true"),
        ("huge", "addresses: [2001:db8:1::/48]"),
    ]);
    let start = std::time::Instant::now();
    for i in 0..2000 {
        give(&mut a, &lb(&format!("s{i}")).families(IpFamilyPolicy::RequireDualStack, V4V6));
    }
    assert_eq!(give(&mut a, &lb("last")), "10.0.7.223");
    a.release(&key("s1000"));
    let big = stats(&a, "big");
    assert_eq!(big.ipv4_total, (1 << 24) - 2 * (1 << 16));
    assert_eq!(big.ipv4_in_use, 2000);
    assert_eq!((big.ipv6_total, big.ipv6_in_use), (1 << 64, 1999));
    assert_eq!(stats(&a, "huge").ipv6_total, 1 << 80);
    assert_eq!(give(&mut a, &lb("far").wants("10.255.255.254")), "10.255.255.254");
    assert!(start.elapsed() < std::time::Duration::from_secs(5), "took {:?}", start.elapsed());
}

#[test]
fn errors_name_what_failed() {
    let exhausted = AllocError::Exhausted { family: Family::V6, pools: vec!["a".into(), "b".into()] };
    assert_eq!(exhausted.to_string(), "no free IPv6 address in pools a, b");
    let unknown = AllocError::UnknownPool { pool: "gold".into() }.to_string();
    assert!(unknown.contains("\"gold\""), "{unknown}");
    let buggy = AllocError::BuggyIp { ip: ip("192.0.2.0"), pool: "p".into() }.to_string();
    assert!(buggy.contains("192.0.2.0") && buggy.contains("\"p\""), "{buggy}");
    let mismatch = AllocError::BackendMismatch { ip: ip("192.0.2.1"), other: key("ns/web") }.to_string();
    assert!(mismatch.contains("ns/web") && mismatch.contains("192.0.2.1"), "{mismatch}");
    let not_in = AllocError::NotInRequestedPool { ip: ip("192.0.2.1"), pool: "b".into() }.to_string();
    assert!(not_in.contains("192.0.2.1") && not_in.contains("\"b\""), "{not_in}");
}
