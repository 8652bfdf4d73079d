//! The parts of Kubernetes Services and Namespaces that address allocation
//! and announcement depend on, independent of any Kubernetes client.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use crate::addr::Family;
use crate::selector::Labels;

/// Annotations MetalLB reads, in both the current and the legacy domain.
pub mod annotation {
    pub const ADDRESS_POOL: [&str; 2] = ["metallb.io/address-pool", "metallb.universe.tf/address-pool"];
    pub const LOAD_BALANCER_IPS: [&str; 2] = ["metallb.io/loadBalancerIPs", "metallb.universe.tf/loadBalancerIPs"];
    pub const ALLOW_SHARED_IP: [&str; 2] = ["metallb.io/allow-shared-ip", "metallb.universe.tf/allow-shared-ip"];
    /// Written by the controller: the pool the Service's IPs come from.
    pub const IP_ALLOCATED_FROM_POOL: [&str; 2] =
        ["metallb.io/ip-allocated-from-pool", "metallb.universe.tf/ip-allocated-from-pool"];

    /// Whether an annotation is in one of MetalLB's domains: the only
    /// annotations allocation, announcement and write-back read.
    pub fn is_metallb(key: &str) -> bool {
        key.starts_with("metallb.io/") || key.starts_with("metallb.universe.tf/")
    }
}

/// `namespace/name`, cheap to clone and hash: it keys every allocation.
#[derive(Debug, Clone, Eq, PartialOrd, Ord, Default)]
pub struct ServiceKey(Arc<str>);

impl std::hash::Hash for ServiceKey {
    /// The text, as equality is decided by the text.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialEq for ServiceKey {
    /// Keys are cloned from one another far more often than rebuilt, so the
    /// pointer comparison usually decides without reading the text.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl ServiceKey {
    pub fn new(namespace: &str, name: &str) -> Self {
        Self(format!("{namespace}/{name}").into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn namespace(&self) -> &str {
        self.0.split_once('/').map_or("", |(ns, _)| ns)
    }

    pub fn name(&self) -> &str {
        self.0.split_once('/').map_or(&self.0, |(_, n)| n)
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `spec.type`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum ServiceType {
    #[default]
    ClusterIp,
    NodePort,
    LoadBalancer,
    ExternalName,
    Other(String),
}

/// `spec.ipFamilyPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IpFamilyPolicy {
    #[default]
    SingleStack,
    PreferDualStack,
    RequireDualStack,
}

/// `spec.externalTrafficPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TrafficPolicy {
    #[default]
    Cluster,
    Local,
}

/// Transport protocol of a Service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
    Sctp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        })
    }
}

/// One `spec.ports` entry, as far as sharing an IP cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServicePort {
    pub protocol: Protocol,
    pub port: u16,
}

/// A Service as the load balancer sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Service {
    /// `namespace/name`, built once: every allocation is keyed by it.
    pub key: ServiceKey,
    pub labels: Labels,
    pub annotations: Labels,
    pub service_type: ServiceType,
    pub load_balancer_class: Option<String>,
    /// `spec.loadBalancerIP`, kept as written so a typo is reported, not dropped.
    pub load_balancer_ip: Option<String>,
    pub ports: Vec<ServicePort>,
    pub external_traffic_policy: TrafficPolicy,
    pub selector: Labels,
    pub ip_family_policy: Option<IpFamilyPolicy>,
    pub ip_families: Vec<Family>,
    pub cluster_ips: Vec<IpAddr>,
    /// `status.loadBalancer.ingress[].ip`: what an earlier run assigned.
    pub ingress_ips: Vec<IpAddr>,
}

impl Service {
    /// A Service of type ClusterIP with nothing else set.
    pub fn new(namespace: &str, name: &str) -> Self {
        Self { key: ServiceKey::new(namespace, name), ..Self::default() }
    }

    pub fn namespace(&self) -> &str {
        self.key.namespace()
    }

    /// Drops what no rule reads: annotations outside MetalLB's domains
    /// ([`annotation::is_metallb`]) and the pod selector, which matters
    /// only between Services that share an address under
    /// `externalTrafficPolicy: Local` ([`Service::backend_key`]). A role
    /// that keeps every Service of a cluster calls it: kubectl's
    /// `last-applied-configuration` alone is the whole object again, and a
    /// one-label map costs half a KiB.
    pub fn forget_what_no_rule_reads(&mut self) {
        self.annotations.retain(|k, _| annotation::is_metallb(k));
        if self.sharing_key().is_none() || self.external_traffic_policy != TrafficPolicy::Local {
            self.selector = Labels::new();
        }
    }

    pub fn name(&self) -> &str {
        self.key.name()
    }

    /// First of the annotations (current domain first) that is set.
    pub fn annotation(&self, names: [&str; 2]) -> Option<&str> {
        if self.annotations.is_empty() {
            return None;
        }
        names.iter().find_map(|n| self.annotations.get(*n)).map(String::as_str)
    }

    /// The `allow-shared-ip` key; empty means no sharing.
    pub fn sharing_key(&self) -> Option<&str> {
        self.annotation(annotation::ALLOW_SHARED_IP).filter(|k| !k.is_empty())
    }

    /// The `address-pool` annotation.
    pub fn requested_pool(&self) -> Option<&str> {
        self.annotation(annotation::ADDRESS_POOL).map(str::trim).filter(|p| !p.is_empty())
    }

    /// Services that share an IP with `externalTrafficPolicy: Local` must
    /// select the same pods, or traffic would reach nodes without backends.
    /// This is the key that must be equal (MetalLB's "backend key").
    pub fn backend_key(&self) -> Option<&Labels> {
        (self.external_traffic_policy == TrafficPolicy::Local).then_some(&self.selector)
    }

    /// The family the cluster gave this Service first.
    pub fn primary_family(&self) -> Family {
        self.ip_families
            .first()
            .copied()
            .or_else(|| self.cluster_ips.first().map(|ip| Family::of(*ip)))
            .unwrap_or(Family::V4)
    }
}

/// A Namespace's labels, for `serviceAllocation.namespaceSelectors`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Namespace {
    pub name: String,
    pub labels: Labels,
}

impl Namespace {
    /// The API server adds `kubernetes.io/metadata.name` to every namespace;
    /// selectors written against it must work here too.
    pub fn new(name: &str, mut labels: Labels) -> Self {
        labels.insert("kubernetes.io/metadata.name".into(), name.into());
        Self { name: name.into(), labels }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_parts() {
        let k = ServiceKey::new("default", "web");
        assert_eq!(k.as_str(), "default/web");
        assert_eq!(k.namespace(), "default");
        assert_eq!(k.name(), "web");
    }

    #[test]
    fn only_what_rules_read_is_kept() {
        let mut s = Service::default();
        for key in [
            "metallb.io/address-pool",
            "metallb.universe.tf/allow-shared-ip",
            "kubectl.kubernetes.io/last-applied-configuration",
            "example.com/metallb.io/x",
        ] {
            s.annotations.insert(key.into(), "v".into());
        }
        s.selector.insert("app".into(), "web".into());
        let mut local = s.clone();
        s.forget_what_no_rule_reads();
        let kept: Vec<&str> = s.annotations.keys().map(String::as_str).collect();
        assert_eq!(kept, ["metallb.io/address-pool", "metallb.universe.tf/allow-shared-ip"]);
        assert!(s.selector.is_empty(), "a Cluster policy: no backend key");
        // Shared under a Local policy: the selector is the backend key.
        local.external_traffic_policy = TrafficPolicy::Local;
        local.forget_what_no_rule_reads();
        assert_eq!(local.backend_key().map(|k| k.len()), Some(1));
        local.annotations.clear();
        local.forget_what_no_rule_reads();
        assert!(local.selector.is_empty(), "no sharing key: nothing to compare");
    }

    #[test]
    fn annotations_prefer_current_domain() {
        let mut s = Service::default();
        s.annotations.insert("metallb.universe.tf/allow-shared-ip".into(), "old".into());
        assert_eq!(s.sharing_key(), Some("old"));
        s.annotations.insert("metallb.io/allow-shared-ip".into(), "new".into());
        assert_eq!(s.sharing_key(), Some("new"));
        s.annotations.insert("metallb.io/allow-shared-ip".into(), String::new());
        assert_eq!(s.sharing_key(), None);
    }

    #[test]
    fn implicit_namespace_label() {
        let ns = Namespace::new("team-a", Labels::new());
        assert_eq!(ns.labels.get("kubernetes.io/metadata.name").map(String::as_str), Some("team-a"));
    }
}
