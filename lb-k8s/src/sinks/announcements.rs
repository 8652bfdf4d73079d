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

/// Up to this many addresses newly not announced for one reason are named
/// one by one; more make one line with a count.
pub const NAMED_ONE_BY_ONE: usize = 5;

/// What this node announced when last told.
#[derive(Debug, Default)]
pub struct Announcements {
    announced: BTreeSet<(ServiceKey, IpAddr)>,
    /// Addresses not announced from here, with why, as last logged: said
    /// once, and again only when the reason changes.
    not_announced: BTreeMap<(ServiceKey, IpAddr), String>,
}

impl Announcements {
    /// Logs what this node announces or withdraws now (`services`, from its
    /// plan) compared with the last plan.
    /// Returns the events it logged, by name.
    pub fn record(&mut self, services: &[ServiceAnnouncement]) -> Vec<&'static str> {
        let mut logged = Vec::new();
        let now: BTreeSet<(ServiceKey, IpAddr)> =
            services.iter().filter(|s| s.result.is_ok()).map(|s| (s.service.clone(), s.ip)).collect();
        for (key, ip) in now.difference(&self.announced) {
            info!(event = "serviceAnnounced", service = %key, ip = %ip, protocol = "bgp", "announcing from this node");
            logged.push("serviceAnnounced");
        }
        let withdrawn: BTreeSet<(ServiceKey, IpAddr)> = self.announced.difference(&now).cloned().collect();
        // One lookup table, not a scan per withdrawal: a removed pool
        // withdraws thousands at once.
        let reasons: BTreeMap<(&ServiceKey, IpAddr), String> = if withdrawn.is_empty() {
            BTreeMap::new()
        } else {
            services.iter().filter_map(|s| s.result.err().map(|r| ((&s.service, s.ip), r.to_string()))).collect()
        };
        for (key, ip) in &withdrawn {
            let reason = reasons.get(&(key, *ip)).map_or("Service has no IP any more", String::as_str);
            info!(event = "serviceWithdrawn", service = %key, ip = %ip, protocol = "bgp", reason = %reason, "withdrawn from this node");
            logged.push("serviceWithdrawn");
        }
        self.announced = now;
        let mut not_announced = BTreeMap::new();
        // Newly not announced, by reason: a handful are named one by one, a
        // pool's worth is one line with a count and a few examples.
        let mut fresh: BTreeMap<String, Vec<(ServiceKey, IpAddr)>> = BTreeMap::new();
        for s in services {
            let Err(reason) = s.result else { continue };
            let key = (s.service.clone(), s.ip);
            let reason = reason.to_string();
            // A withdrawal was logged above, with its reason.
            if self.not_announced.get(&key) != Some(&reason) && !withdrawn.contains(&key) {
                fresh.entry(reason.clone()).or_default().push(key.clone());
            }
            not_announced.insert(key, reason);
        }
        for (reason, keys) in fresh {
            if keys.len() <= NAMED_ONE_BY_ONE {
                for (service, ip) in &keys {
                    info!(event = "serviceNotAnnounced", service = %service, ip = %ip, protocol = "bgp", reason = %reason, "not announced from this node");
                    logged.push("serviceNotAnnounced");
                }
            } else {
                let examples: Vec<String> =
                    keys.iter().take(NAMED_ONE_BY_ONE).map(|(service, ip)| format!("{service} {ip}")).collect();
                info!(event = "serviceNotAnnounced", count = keys.len(), examples = %examples.join(", "), protocol = "bgp", reason = %reason, "addresses not announced from this node");
                logged.push("serviceNotAnnounced");
            }
        }
        self.not_announced = not_announced;
        logged
    }
}

#[cfg(test)]
mod tests {
    use lb_core::planner::NotAnnounced;

    use super::*;

    fn announcement(name: &str, ip: &str, result: Result<(), NotAnnounced>) -> ServiceAnnouncement {
        ServiceAnnouncement { service: ServiceKey::new("default", name), ip: ip.parse().expect("IP"), result }
    }

    #[test]
    fn each_change_is_said_once_and_a_plan_without_change_says_nothing() {
        let mut log = Announcements::default();
        let plan = [
            announcement("web", "192.0.2.1", Ok(())),
            announcement("l2-only", "192.0.2.2", Err(NotAnnounced::NoAdvertisement)),
        ];
        assert_eq!(log.record(&plan), ["serviceAnnounced", "serviceNotAnnounced"]);
        assert!(log.record(&plan).is_empty(), "the same plan again: nothing to say");

        // web withdrawn (one line, with its reason), l2-only's reason changes.
        let plan = [
            announcement("web", "192.0.2.1", Err(NotAnnounced::NoPeer)),
            announcement("l2-only", "192.0.2.2", Err(NotAnnounced::NotSelected)),
        ];
        assert_eq!(log.record(&plan), ["serviceWithdrawn", "serviceNotAnnounced"]);
        assert!(log.record(&plan).is_empty());
    }

    #[test]
    fn many_addresses_for_one_reason_are_one_line() {
        let mut log = Announcements::default();
        let plan: Vec<ServiceAnnouncement> = (0..1000)
            .map(|i| announcement(&format!("s{i}"), &format!("2001:db8::{i:x}"), Err(NotAnnounced::NoAdvertisement)))
            .collect();
        assert_eq!(log.record(&plan), ["serviceNotAnnounced"], "one line for a thousand");
        assert!(log.record(&plan).is_empty());
    }
}
