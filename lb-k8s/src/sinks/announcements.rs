//! The log lines that say what changed: `ipAllocated` / `ipReleased` for
//! assignments, `serviceAnnounced` / `serviceWithdrawn` for this node's
//! announcements, each logged once per change, never on every reload.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use lb_core::ServiceKey;
use lb_core::planner::ServiceAnnouncement;
use tracing::info;

/// Logs the assignments that differ between `before` and `after`.
pub fn log_assignments(before: &BTreeMap<ServiceKey, Vec<IpAddr>>, after: &BTreeMap<ServiceKey, Vec<IpAddr>>) {
    for (key, ips) in after {
        if before.get(key) != Some(ips) {
            let ips: Vec<String> = ips.iter().map(ToString::to_string).collect();
            info!(event = "ipAllocated", service = %key, ips = %ips.join(","), "Service assigned");
        }
    }
    for key in before.keys().filter(|k| !after.contains_key(*k)) {
        info!(event = "ipReleased", service = %key, "Service's IPs released");
    }
}

/// What this node announced when last told.
#[derive(Debug, Default)]
pub struct Announcements {
    announced: BTreeSet<(ServiceKey, IpAddr)>,
}

impl Announcements {
    /// Logs what this node announces or withdraws now (`services`, from its
    /// plan) compared with the last plan.
    pub fn record(&mut self, services: &[ServiceAnnouncement]) {
        let now: BTreeSet<(ServiceKey, IpAddr)> =
            services.iter().filter(|s| s.result.is_ok()).map(|s| (s.service.clone(), s.ip)).collect();
        for (key, ip) in now.difference(&self.announced) {
            info!(event = "serviceAnnounced", service = %key, ip = %ip, protocol = "bgp", "announcing from this node");
        }
        for (key, ip) in self.announced.difference(&now) {
            let reason = services
                .iter()
                .find(|s| s.service == *key && s.ip == *ip)
                .and_then(|s| s.result.err())
                .map_or_else(|| "Service has no IP any more".to_string(), |r| r.to_string());
            info!(event = "serviceWithdrawn", service = %key, ip = %ip, protocol = "bgp", reason = %reason, "withdrawn from this node");
        }
        self.announced = now;
    }
}
