//! What the controller writes back to a Service, decided without I/O.
//!
//! From the Service as the cluster shows it (its `status.loadBalancer`
//! and annotations) and what the allocator decided, [`service_writeback`]
//! says which writes are needed: the status, the
//! `metallb.io/ip-allocated-from-pool` annotation, and the Events MetalLB
//! records, with its reasons and messages (users grep for them). A
//! Service whose status and annotation are already right needs no write
//! at all, so a controller restart writes nothing for them.
//!
//! For the speaker, [`announcement_statuses`] gives the ServiceL2Status and
//! ServiceBGPStatus objects a node keeps (which Services it announces, on
//! which interfaces, to which peers), and [`AnnouncementStatus::event`]
//! MetalLB's `nodeAssigned` Event.

use std::net::IpAddr;

use crate::plan::ServiceAssignment;
use crate::service::{Service, annotation};

/// `type` of a Kubernetes Event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// An Event to record on the Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEvent {
    pub event_type: EventType,
    pub reason: &'static str,
    pub message: String,
}

/// A change to the pool annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolAnnotation {
    /// Set `metallb.io/ip-allocated-from-pool` to this pool (and drop the
    /// deprecated `metallb.universe.tf/` one).
    Set(String),
    /// Remove both.
    Remove,
}

/// The writes one Service needs. Empty: it is right as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Writeback {
    /// The new `status.loadBalancer.ingress` IPs (empty: clear it).
    pub status: Option<Vec<IpAddr>>,
    pub annotation: Option<PoolAnnotation>,
    pub events: Vec<ServiceEvent>,
}

impl Writeback {
    /// Whether anything must be written to the Service itself.
    pub fn writes(&self) -> bool {
        self.status.is_some() || self.annotation.is_some()
    }
}

/// Go's `%q` of a list of IPs, as MetalLB's messages print them:
/// `["192.0.2.1" "2001:db8::1"]`.
fn quoted_ips(ips: &[IpAddr]) -> String {
    let inner: Vec<String> = ips.iter().map(|ip| format!("\"{ip}\"")).collect();
    format!("[{}]", inner.join(" "))
}

/// The writes for `service`, given what the allocator decided for it.
///
/// `last_error` is the allocation error already reported for it (an
/// `AllocationFailed` Event is recorded once per distinct error, not on
/// every pass).
pub fn service_writeback(service: &Service, assignment: &ServiceAssignment, last_error: Option<&str>) -> Writeback {
    let mut out = Writeback::default();
    let shown = &service.ingress_ips;
    let key = service.key.as_str();
    let stable_pool = service.annotations.get(annotation::IP_ALLOCATED_FROM_POOL[0]);
    let deprecated_pool = service.annotations.contains_key(annotation::IP_ALLOCATED_FROM_POOL[1]);
    match (&assignment.error, assignment.ips.is_empty()) {
        (None, false) => {
            if !same_ips(shown, &assignment.ips) {
                if !shown.is_empty() {
                    out.events.push(ServiceEvent {
                        event_type: EventType::Normal,
                        reason: "ClearAssignment",
                        message: format!(
                            "current IP for \"{key}\" not allowed by config, will attempt for new IP assignment"
                        ),
                    });
                }
                out.status = Some(assignment.ips.clone());
                out.events.push(ServiceEvent {
                    event_type: EventType::Normal,
                    reason: "IPAllocated",
                    message: format!("Assigned IP {}", quoted_ips(&assignment.ips)),
                });
            }
            if let Some(pool) = &assignment.pool
                && (stable_pool != Some(pool) || deprecated_pool)
            {
                out.annotation = Some(PoolAnnotation::Set(pool.clone()));
            }
        }
        (error, _) => {
            if !shown.is_empty() {
                out.status = Some(Vec::new());
            }
            if stable_pool.is_some() || deprecated_pool {
                out.annotation = Some(PoolAnnotation::Remove);
            }
            if let Some(error) = error
                && last_error != Some(error.as_str())
            {
                out.events.push(ServiceEvent {
                    event_type: EventType::Warning,
                    reason: "AllocationFailed",
                    message: format!("Failed to allocate IP for \"{key}\": {error}"),
                });
            }
        }
    }
    out
}

/// The deprecated `metallb.universe.tf/` annotations a Service uses: a
/// Warning Event each, so users move before they go away.
pub fn deprecated_annotations(service: &Service) -> Vec<ServiceEvent> {
    [annotation::ADDRESS_POOL, annotation::LOAD_BALANCER_IPS, annotation::ALLOW_SHARED_IP]
        .iter()
        .filter(|[_, old]| service.annotations.contains_key(*old))
        .map(|[new, old]| ServiceEvent {
            event_type: EventType::Warning,
            reason: "deprecatedAnnotation",
            message: format!("annotation {old} is deprecated, use {new}"),
        })
        .collect()
}

/// How a Service is announced from a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Layer2,
    Bgp,
}

impl Protocol {
    /// As MetalLB names it in Events and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Layer2 => "layer2",
            Protocol::Bgp => "bgp",
        }
    }
}

/// One Service announced from one node: what its ServiceL2Status or
/// ServiceBGPStatus object says.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AnnouncementStatus {
    pub service: crate::service::ServiceKey,
    pub protocol: Protocol,
    /// Layer 2: the interfaces it is answered on (empty: all eligible).
    pub interfaces: Vec<String>,
    /// BGP: the peers it is announced to, by name.
    pub peers: Vec<String>,
}

impl AnnouncementStatus {
    /// The status object's name: one per node, Service and protocol, and
    /// the same on every run, so a restarted speaker finds its objects and
    /// two speakers never write the same one.
    pub fn object_name(&self, node: &str) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(format!("{node}/{}/{}", self.service.namespace(), self.service.name()));
        let hex: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
        let prefix = match self.protocol {
            Protocol::Layer2 => "l2",
            Protocol::Bgp => "bgp",
        };
        format!("{prefix}-{hex}")
    }

    /// The `nodeAssigned` Event MetalLB's speaker records on the Service.
    pub fn event(&self, node: &str) -> ServiceEvent {
        ServiceEvent {
            event_type: EventType::Normal,
            reason: "nodeAssigned",
            message: format!("announcing from node \"{node}\" with protocol \"{}\"", self.protocol.as_str()),
        }
    }
}

/// The status objects a speaker keeps for its node: one per Service it
/// answers for on layer 2, one per Service whose IPs it announces to at
/// least one BGP peer (with those peers).
pub fn announcement_statuses(
    l2: &[crate::plan::L2Announcement],
    bgp: &[crate::planner::PeerPlan],
    services: &[crate::planner::ServiceAnnouncement],
) -> Vec<AnnouncementStatus> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut out: BTreeMap<(crate::service::ServiceKey, Protocol), (BTreeSet<String>, BTreeSet<String>)> =
        BTreeMap::new();
    for a in l2 {
        out.entry((a.service.clone(), Protocol::Layer2)).or_default().0.extend(a.interfaces.iter().cloned());
    }
    for s in services.iter().filter(|s| s.result.is_ok()) {
        let peers: BTreeSet<String> = bgp
            .iter()
            .filter(|p| p.routes.keys().any(|prefix| prefix.contains(s.ip)))
            .map(|p| p.peer.clone())
            .collect();
        if !peers.is_empty() {
            out.entry((s.service.clone(), Protocol::Bgp)).or_default().1.extend(peers);
        }
    }
    out.into_iter()
        .map(|((service, protocol), (interfaces, peers))| AnnouncementStatus {
            service,
            protocol,
            interfaces: interfaces.into_iter().collect(),
            peers: peers.into_iter().collect(),
        })
        .collect()
}

/// Order does not matter in the status (the primary family is first in
/// the allocator's answer, and a reader may list them either way).
fn same_ips(a: &[IpAddr], b: &[IpAddr]) -> bool {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort();
    b.sort();
    a == b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::ServiceKey;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("IP")
    }

    fn assigned(ips: &[&str], pool: &str) -> ServiceAssignment {
        ServiceAssignment {
            service: ServiceKey::new("shop", "web"),
            ips: ips.iter().map(|s| ip(s)).collect(),
            pool: Some(pool.into()),
            error: None,
        }
    }

    fn failed(error: &str) -> ServiceAssignment {
        ServiceAssignment {
            service: ServiceKey::new("shop", "web"),
            ips: vec![],
            pool: None,
            error: Some(error.into()),
        }
    }

    #[test]
    fn a_new_ip_is_written_with_its_pool_and_metallbs_event() {
        let svc = Service::new("shop", "web");
        let w = service_writeback(&svc, &assigned(&["192.0.2.1", "2001:db8::1"], "default"), None);
        assert_eq!(w.status, Some(vec![ip("192.0.2.1"), ip("2001:db8::1")]));
        assert_eq!(w.annotation, Some(PoolAnnotation::Set("default".into())));
        assert_eq!(
            w.events,
            vec![ServiceEvent {
                event_type: EventType::Normal,
                reason: "IPAllocated",
                message: "Assigned IP [\"192.0.2.1\" \"2001:db8::1\"]".into()
            }]
        );
    }

    #[test]
    fn a_service_already_right_needs_no_write() {
        let mut svc = Service::new("shop", "web");
        svc.ingress_ips = vec![ip("2001:db8::1"), ip("192.0.2.1")];
        svc.annotations.insert("metallb.io/ip-allocated-from-pool".into(), "default".into());
        let w = service_writeback(&svc, &assigned(&["192.0.2.1", "2001:db8::1"], "default"), None);
        assert_eq!(w, Writeback::default());
        assert!(!w.writes());
        // Only the deprecated annotation: rewritten under the new name.
        svc.annotations.insert("metallb.universe.tf/ip-allocated-from-pool".into(), "default".into());
        let w = service_writeback(&svc, &assigned(&["192.0.2.1", "2001:db8::1"], "default"), None);
        assert_eq!((w.status, w.annotation), (None, Some(PoolAnnotation::Set("default".into()))));
    }

    #[test]
    fn a_moved_ip_is_cleared_and_reassigned_and_a_failure_reported_once() {
        let mut svc = Service::new("shop", "web");
        svc.ingress_ips = vec![ip("192.0.2.1")];
        svc.annotations.insert("metallb.io/ip-allocated-from-pool".into(), "gone".into());
        let w = service_writeback(&svc, &assigned(&["198.51.100.1"], "other"), None);
        let reasons: Vec<&str> = w.events.iter().map(|e| e.reason).collect();
        assert_eq!(reasons, ["ClearAssignment", "IPAllocated"]);
        assert_eq!(w.annotation, Some(PoolAnnotation::Set("other".into())));

        let w = service_writeback(&svc, &failed("no available IPs"), None);
        assert_eq!(w.status, Some(vec![]));
        assert_eq!(w.annotation, Some(PoolAnnotation::Remove));
        assert_eq!(w.events[0].message, "Failed to allocate IP for \"shop/web\": no available IPs");
        assert_eq!(w.events[0].event_type, EventType::Warning);
        let again = service_writeback(&svc, &failed("no available IPs"), Some("no available IPs"));
        assert!(again.events.is_empty(), "said once");
        // Not handled (no IP, no error) on a Service showing nothing: nothing to do.
        let plain = Service::new("shop", "web");
        let none = ServiceAssignment { error: None, ..failed("") };
        assert_eq!(service_writeback(&plain, &none, None), Writeback::default());
    }

    #[test]
    fn status_object_names_are_stable_and_distinct() {
        let status = |ns: &str, protocol| AnnouncementStatus {
            service: ServiceKey::new(ns, "web"),
            protocol,
            interfaces: vec![],
            peers: vec![],
        };
        let a = status("shop", Protocol::Layer2).object_name("node-a");
        assert_eq!(a, status("shop", Protocol::Layer2).object_name("node-a"));
        assert!(a.starts_with("l2-") && a.len() == 23, "{a}");
        assert_ne!(a, status("shop", Protocol::Layer2).object_name("node-b"));
        assert_ne!(a, status("shop2", Protocol::Layer2).object_name("node-a"));
        assert!(status("shop", Protocol::Bgp).object_name("node-a").starts_with("bgp-"));
    }

    #[test]
    fn deprecated_annotations_are_named() {
        let mut svc = Service::new("shop", "web");
        svc.annotations.insert("metallb.universe.tf/address-pool".into(), "p".into());
        svc.annotations.insert("metallb.io/allow-shared-ip".into(), "k".into());
        let events = deprecated_annotations(&svc);
        assert_eq!(events.len(), 1);
        assert_eq!(
            events[0].message,
            "annotation metallb.universe.tf/address-pool is deprecated, use metallb.io/address-pool"
        );
    }

    #[test]
    fn statuses_per_service_and_protocol_with_the_peers_that_carry_its_ip() {
        use crate::plan::L2Announcement;
        use crate::planner::{PeerPlan, RouteAttributes, ServiceAnnouncement};
        let web = ServiceKey::new("shop", "web");
        let db = ServiceKey::new("shop", "db");
        let l2 = vec![
            L2Announcement { ip: ip("192.0.2.1"), service: web.clone(), interfaces: vec!["eth1".into()] },
            L2Announcement { ip: ip("2001:db8::1"), service: web.clone(), interfaces: vec!["eth1".into()] },
        ];
        let route = |p: &str| (p.parse().expect("prefix"), RouteAttributes::default());
        let bgp = vec![
            PeerPlan { peer: "tor1".into(), address: None, routes: [route("198.51.100.0/24")].into() },
            PeerPlan { peer: "tor2".into(), address: None, routes: [route("198.51.100.7/32")].into() },
            PeerPlan { peer: "idle".into(), address: None, routes: Default::default() },
        ];
        let services = vec![
            ServiceAnnouncement { service: db.clone(), ip: ip("198.51.100.7"), result: Ok(()) },
            ServiceAnnouncement {
                service: web.clone(),
                ip: ip("203.0.113.9"),
                result: Err(crate::planner::NotAnnounced::NoAdvertisement),
            },
        ];
        let got = announcement_statuses(&l2, &bgp, &services);
        assert_eq!(
            got,
            vec![
                AnnouncementStatus {
                    service: db,
                    protocol: Protocol::Bgp,
                    interfaces: vec![],
                    peers: vec!["tor1".into(), "tor2".into()]
                },
                AnnouncementStatus {
                    service: web,
                    protocol: Protocol::Layer2,
                    interfaces: vec!["eth1".into()],
                    peers: vec![]
                },
            ]
        );
        assert_eq!(got[1].event("node-a").message, "announcing from node \"node-a\" with protocol \"layer2\"");
    }
}
