//! Random sequences of allocations, deletions and configuration changes over
//! small pools; after every step the allocator's guarantees must hold.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::LazyLock;

use lb_core::addr::Family;
use lb_core::config::Config;
use lb_core::selector::Labels;
use lb_core::service::{
    IpFamilyPolicy, Namespace, Protocol, Service, ServiceKey, ServicePort, ServiceType, TrafficPolicy,
};
use lb_ipam::request::Request;
use lb_ipam::{AllocError, Allocator};
use proptest::prelude::*;
use proptest::sample::select;

// ------------------------------------------------------------- the world

/// Configurations to switch between: splits, renames, a deleted pool,
/// autoAssign, avoidBuggyIPs and serviceAllocation coming and going.
const CONFIGS: [&str; 4] = [
    r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: p1}
spec: {addresses: [192.0.2.0/30, "2001:db8::/126"]}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: p2}
spec: {addresses: [198.51.100.0/30, "2001:db8:1::/127"], autoAssign: false}
"#,
    r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: p1}
spec: {addresses: [192.0.2.0/31, "2001:db8::/126"]}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: p3}
spec: {addresses: [192.0.2.2/31]}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: p2}
spec: {addresses: [198.51.100.0/30], avoidBuggyIPs: true, serviceAllocation: {namespaces: [red]}}
"#,
    r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: p2}
spec:
  addresses: [198.51.100.0/30, "2001:db8::/127"]
  serviceAllocation: {priority: 1, namespaceSelectors: [{matchLabels: {team: red}}]}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: p1}
spec: {addresses: [192.0.2.0/30, "2001:db8::2/127"]}
"#,
    r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: q}
spec: {addresses: [192.0.2.0/29, "2001:db8::/125"], avoidBuggyIPs: true}
"#,
];

static LOADED: LazyLock<Vec<Config>> = LazyLock::new(|| {
    CONFIGS.iter().map(|yaml| lb_core::config::load(&[("test.yaml", yaml)]).unwrap().config).collect()
});

fn namespaces() -> Vec<Namespace> {
    ["red", "blue"].iter().map(|n| Namespace::new(n, Labels::from([("team".to_string(), n.to_string())]))).collect()
}

const SLOTS: usize = 8;
/// Inside and outside the pools, buggy, single and pairs.
const REQUESTED: [&str; 8] = [
    "192.0.2.1",
    "192.0.2.3",
    "198.51.100.0",
    "198.51.100.2",
    "2001:db8::1",
    "192.0.2.2,2001:db8::2",
    "198.51.100.1,2001:db8:1::1",
    "203.0.113.7",
];
const POOLS: [&str; 5] = ["p1", "p2", "p3", "q", "gone"];
const PORTS: [ServicePort; 3] = [
    ServicePort { protocol: Protocol::Tcp, port: 80 },
    ServicePort { protocol: Protocol::Tcp, port: 53 },
    ServicePort { protocol: Protocol::Udp, port: 53 },
];

/// What a Service in a slot looks like this time.
#[derive(Debug, Clone)]
struct Spec {
    load_balancer: bool,
    requested: Option<&'static str>,
    sharing_key: Option<&'static str>,
    ports: u8,
    backend: u8,
    families: u8,
    pool: Option<&'static str>,
    /// A (possibly stale) status, to exercise restoring.
    status: Option<&'static str>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::bool::weighted(0.9),
        prop::option::weighted(0.3, select(&REQUESTED[..])),
        prop::option::of(select(&["a", "b"][..])),
        0u8..8,
        prop_oneof![3 => Just(0u8), 1 => 1u8..3],
        0u8..6,
        prop::option::weighted(0.25, select(&POOLS[..])),
        prop::option::weighted(0.15, select(&REQUESTED[..])),
    )
        .prop_map(|(load_balancer, requested, sharing_key, ports, backend, families, pool, status)| Spec {
            load_balancer,
            requested,
            sharing_key,
            ports,
            backend,
            families,
            pool,
            status,
        })
}

fn service(slot: usize, spec: &Spec) -> Service {
    let namespace = ["red", "blue"][slot % 2];
    let mut s = Service::new(namespace, &format!("s{slot}"));
    if spec.load_balancer {
        s.service_type = ServiceType::LoadBalancer;
    }
    if let Some(ips) = spec.requested {
        s.annotations.insert("metallb.io/loadBalancerIPs".into(), ips.into());
    }
    if let Some(key) = spec.sharing_key {
        s.annotations.insert("metallb.io/allow-shared-ip".into(), key.into());
    }
    if let Some(pool) = spec.pool {
        s.annotations.insert("metallb.io/address-pool".into(), pool.into());
    }
    s.ports = PORTS.iter().enumerate().filter(|(i, _)| spec.ports & (1 << i) != 0).map(|(_, p)| *p).collect();
    if spec.backend > 0 {
        s.external_traffic_policy = TrafficPolicy::Local;
        s.selector = Labels::from([("app".to_string(), format!("app{}", spec.backend))]);
    }
    let (policy, families) = match spec.families {
        0 => (IpFamilyPolicy::SingleStack, vec![Family::V4]),
        1 => (IpFamilyPolicy::SingleStack, vec![Family::V6]),
        2 => (IpFamilyPolicy::PreferDualStack, vec![Family::V4, Family::V6]),
        3 => (IpFamilyPolicy::PreferDualStack, vec![Family::V6, Family::V4]),
        4 => (IpFamilyPolicy::RequireDualStack, vec![Family::V4, Family::V6]),
        _ => (IpFamilyPolicy::RequireDualStack, vec![Family::V6, Family::V4]),
    };
    s.ip_family_policy = Some(policy);
    s.ip_families = families;
    s.ingress_ips = spec.status.into_iter().flat_map(|t| t.split(',')).map(|t| t.parse().unwrap()).collect();
    s
}

#[derive(Debug, Clone)]
enum Op {
    Allocate(usize, Spec),
    /// Change the slot's Service without telling the allocator (an update
    /// still queued when a configuration change is processed).
    Edit(usize, Spec),
    /// Like `Edit`, changing only the sharing key.
    Rekey(usize, Option<&'static str>),
    /// Submit the slot's current Service again, unchanged.
    Resubmit(usize),
    /// Delete the slot's Service.
    Release(usize),
    /// Switch to a configuration (`None`: the current one again).
    SetConfig(Option<usize>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..SLOTS, spec()).prop_map(|(slot, spec)| Op::Allocate(slot, spec)),
        1 => (0..SLOTS, spec()).prop_map(|(slot, spec)| Op::Edit(slot, spec)),
        1 => (0..SLOTS, prop::option::of(select(&["a", "b"][..]))).prop_map(|(slot, key)| Op::Rekey(slot, key)),
        2 => (0..SLOTS).prop_map(Op::Resubmit),
        2 => (0..SLOTS).prop_map(Op::Release),
        1 => (0..CONFIGS.len()).prop_map(|i| Op::SetConfig(Some(i))),
        1 => Just(Op::SetConfig(None)),
    ]
}

// ------------------------------------------------------------ the checks

type Snapshot = BTreeMap<ServiceKey, (Vec<IpAddr>, String)>;
type Outcome = Result<Option<Vec<IpAddr>>, AllocError>;

fn snapshot(a: &Allocator) -> Snapshot {
    a.assignments().map(|(k, x)| (k.clone(), (x.addresses.to_vec(), x.pool.to_string()))).collect()
}

fn outcome(a: &mut Allocator, s: &Service) -> Outcome {
    a.allocate(s).map(|x| x.map(|x| x.addresses.to_vec()))
}

/// Everything the allocator promises about its current state.
fn check(a: &Allocator, seen: &BTreeMap<usize, Service>) -> Result<(), TestCaseError> {
    let config = a.config();
    let by_key: BTreeMap<&ServiceKey, &Service> = seen.values().map(|s| (&s.key, s)).collect();
    let namespaces: BTreeMap<String, Labels> = namespaces().into_iter().map(|n| (n.name, n.labels)).collect();
    let mut holders: BTreeMap<IpAddr, Vec<&Service>> = BTreeMap::new();

    for (key, assignment) in a.assignments() {
        let service = by_key.get(key).copied();
        prop_assert!(service.is_some(), "{key} holds {:?} but was deleted", assignment.addresses);
        let service = service.unwrap();
        prop_assert!(a.is_handled(service), "{key} is not handled but holds an address");
        let request = Request::of(service);
        prop_assert!(request.is_ok(), "{key} holds an address despite {request:?}");
        let request = request.unwrap();
        let ips = assignment.addresses.to_vec();
        prop_assert!(request.families.accepts(&ips), "{key}: {ips:?} do not fit {:?}", request.families);
        prop_assert_eq!(Family::of(ips[0]), primary_or_only(service, &ips), "{} primary family first", key);
        if !request.addresses.is_empty() {
            prop_assert_eq!(&request.addresses, &ips, "{} holds other than it requested", key);
        }
        let pool = config.pool(assignment.pool);
        prop_assert!(pool.is_some(), "{key}: pool {} does not exist", assignment.pool);
        let pool = pool.unwrap();
        if let Some(wanted) = request.pool {
            prop_assert_eq!(wanted, &pool.name, "{} is outside its annotated pool", key);
        }
        if let Some(allocation) = &pool.allocation {
            prop_assert!(
                allocation.matches(service, &namespaces[service.namespace()]),
                "{key}: pool {} does not serve it",
                pool.name
            );
        }
        for &ip in &ips {
            prop_assert!(pool.is_usable(ip), "{key}: {ip} is not usable in pool {}", pool.name);
            holders.entry(ip).or_default().push(service);
        }
    }

    for (ip, services) in &holders {
        let mut reported: Vec<&ServiceKey> = a.holders(*ip).collect();
        reported.sort();
        let mut expected: Vec<&ServiceKey> = services.iter().map(|s| &s.key).collect();
        expected.sort();
        prop_assert_eq!(reported, expected, "holders of {}", ip);
        for (i, x) in services.iter().enumerate() {
            for y in &services[i + 1..] {
                let (kx, ky) = (&x.key, &y.key);
                prop_assert!(
                    x.sharing_key().is_some() && x.sharing_key() == y.sharing_key(),
                    "{ip} held by {kx} and {ky} with keys {:?} and {:?}",
                    x.sharing_key(),
                    y.sharing_key()
                );
                prop_assert!(!x.ports.iter().any(|p| y.ports.contains(p)), "{ip}: {kx} and {ky} share a port");
                prop_assert_eq!(x.backend_key(), y.backend_key(), "{}: {} and {} backends differ", ip, kx, ky);
            }
        }
    }

    for stats in a.pool_stats() {
        let pool = config.pool(&stats.name).unwrap();
        let count = |family: Family| {
            holders.keys().filter(|ip| Family::of(**ip) == family && pool.contains(**ip)).count() as u128
        };
        prop_assert_eq!((stats.ipv4_in_use, stats.ipv6_in_use), (count(Family::V4), count(Family::V6)), "{:?}", stats);
        prop_assert_eq!((stats.ipv4_total, stats.ipv6_total), (pool.total(Family::V4), pool.total(Family::V6)));
    }
    Ok(())
}

/// The family that must come first: the primary one if held, else the only one.
fn primary_or_only(service: &Service, ips: &[IpAddr]) -> Family {
    let primary = service.primary_family();
    if ips.iter().any(|ip| Family::of(*ip) == primary) { primary } else { Family::of(ips[0]) }
}

/// A fresh allocator given the Services with their addresses as status gives
/// them back exactly.
fn check_restore(a: &Allocator, seen: &BTreeMap<usize, Service>) -> Result<(), TestCaseError> {
    let before = snapshot(a);
    let services: Vec<Service> = seen
        .values()
        .map(|s| {
            let mut s = s.clone();
            s.ingress_ips = before.get(&s.key).map(|(ips, _)| ips.clone()).unwrap_or_default();
            s
        })
        .collect();
    let mut fresh = Allocator::new(a.config().clone());
    fresh.set_namespaces(namespaces());
    fresh.allocate_all(&services);
    let after = snapshot(&fresh);
    for (key, assignment) in &before {
        prop_assert_eq!(Some(assignment), after.get(key), "{} not restored", key);
    }
    Ok(())
}

/// Runs the operations, checking after each; returns what each step produced.
fn run(ops: &[Op]) -> Result<Vec<(Vec<Outcome>, Snapshot)>, TestCaseError> {
    let mut a = Allocator::new(LOADED[0].clone());
    a.set_namespaces(namespaces());
    // The Services as they are, and as the allocator last saw them.
    let mut live: BTreeMap<usize, Service> = BTreeMap::new();
    let mut seen: BTreeMap<usize, Service> = BTreeMap::new();
    let mut config = 0;
    let mut trace = Vec::new();
    for op in ops {
        let before = snapshot(&a);
        let mut outcomes = Vec::new();
        match op {
            Op::Allocate(slot, spec) => {
                let s = service(*slot, spec);
                outcomes.push(outcome(&mut a, &s));
                live.insert(*slot, s.clone());
                seen.insert(*slot, s);
            }
            Op::Edit(slot, spec) => {
                live.insert(*slot, service(*slot, spec));
            }
            Op::Rekey(slot, key) => {
                if let Some(s) = live.get_mut(slot) {
                    match key {
                        Some(key) => s.annotations.insert("metallb.io/allow-shared-ip".into(), key.to_string()),
                        None => s.annotations.remove("metallb.io/allow-shared-ip"),
                    };
                }
            }
            Op::Resubmit(slot) => {
                if let Some(s) = live.get(slot) {
                    let result = outcome(&mut a, s);
                    if seen.get(slot) == Some(s)
                        && let Some((ips, _)) = before.get(&s.key)
                    {
                        prop_assert_eq!(&result, &Ok(Some(ips.clone())), "{} moved on resubmit", s.key);
                    }
                    outcomes.push(result);
                    seen.insert(*slot, s.clone());
                }
            }
            Op::Release(slot) => {
                seen.remove(slot);
                if let Some(s) = live.remove(slot) {
                    let held = a.release(&s.key);
                    prop_assert_eq!(held, before.contains_key(&s.key));
                    prop_assert!(!a.release(&s.key), "release is idempotent");
                }
            }
            Op::SetConfig(i) => {
                let services: Vec<Service> = live.values().cloned().collect();
                let i = i.unwrap_or(config);
                let released = a.set_config(LOADED[i].clone(), &services);
                if i == config {
                    // Same configuration: only Services that changed may lose their addresses.
                    for (slot, s) in &live {
                        let unchanged = seen.get(slot) == Some(s);
                        prop_assert!(!(unchanged && released.contains(&s.key)), "{} released, unchanged", s.key);
                    }
                }
                config = i;
                seen = live.clone();
                let kept = snapshot(&a);
                for (key, assignment) in &before {
                    if released.contains(key) {
                        prop_assert!(!kept.contains_key(key), "{key} released but still held");
                    } else {
                        let sorted = |ips: &[IpAddr]| ips.iter().copied().collect::<BTreeSet<_>>();
                        let now = kept.get(key).map(|k| sorted(&k.0));
                        prop_assert_eq!(Some(sorted(&assignment.0)), now, "{} moved", key);
                    }
                }
                prop_assert_eq!(kept.len() + released.len(), before.len());
                for s in services.iter().filter(|s| released.contains(&s.key)) {
                    outcomes.push(outcome(&mut a, s));
                }
            }
        }
        check(&a, &seen)?;
        check_restore(&a, &seen)?;
        trace.push((outcomes, snapshot(&a)));
    }
    Ok(trace)
}

proptest! {
    #[test]
    fn allocator_invariants(ops in prop::collection::vec(op(), 1..40)) {
        let first = run(&ops)?;
        let second = run(&ops)?;
        prop_assert_eq!(first, second, "the same operations gave different results");
    }
}

/// The configurations above are what the test means them to be.
#[test]
fn configurations_load() {
    let names: Vec<Vec<&str>> = LOADED.iter().map(|c| c.pools.iter().map(|p| p.name.as_str()).collect()).collect();
    assert_eq!(names, [vec!["p1", "p2"], vec!["p1", "p2", "p3"], vec!["p1", "p2"], vec!["q"]]);
}
