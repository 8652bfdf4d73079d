//! Faults on demand: failing requests, slow responses, dropped watches,
//! expired history, bookmarks now.

use std::sync::Arc;
use std::time::Duration;

use crate::server::Shared;

/// One rule: the next `remaining` requests whose path and query contain
/// `path_contains` (every request when `None`) answer `code`.
#[derive(Debug, Clone)]
struct FailRule {
    remaining: usize,
    path_contains: Option<String>,
    code: u16,
}

/// The faults in force; lives under the server's lock.
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    rules: Vec<FailRule>,
    delay: Duration,
}

impl FaultState {
    /// Consumes one matching failure, if any is armed.
    pub(crate) fn take_failure(&mut self, path_and_query: &str) -> Option<u16> {
        let rule = self
            .rules
            .iter_mut()
            .find(|r| r.remaining > 0 && r.path_contains.as_deref().is_none_or(|p| path_and_query.contains(p)))?;
        rule.remaining -= 1;
        let code = rule.code;
        self.rules.retain(|r| r.remaining > 0);
        Some(code)
    }

    pub(crate) fn delay(&self) -> Duration {
        self.delay
    }
}

/// Counters that open watches compare against their own copy: a change
/// tells each watch to end, to end with 410, or to send a bookmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Control {
    pub(crate) drop_generation: u64,
    pub(crate) gone_generation: u64,
    pub(crate) bookmark_generation: u64,
}

/// The fault controls of one server (from [`crate::FakeApiServer::faults`]).
#[derive(Debug, Clone)]
pub struct Faults {
    pub(crate) shared: Arc<Shared>,
}

impl Faults {
    /// The next `count` requests, whatever they are, answer `code` (e.g. 500)
    /// with a `Status` body. 429, 503 and 504 are retried by kube's client itself.
    pub fn fail_next(&self, count: usize, code: u16) {
        self.push(FailRule { remaining: count, path_contains: None, code });
    }

    /// The next `count` requests whose path and query contain `path_contains`
    /// (e.g. `"/leases"`, `"watch=true"`) answer `code`.
    pub fn fail_next_matching(&self, count: usize, path_contains: &str, code: u16) {
        self.push(FailRule { remaining: count, path_contains: Some(path_contains.to_owned()), code });
    }

    /// Every response waits `delay` first (zero to stop).
    pub fn set_delay(&self, delay: Duration) {
        self.shared.lock().faults.delay = delay;
    }

    /// Ends every open watch stream cleanly, as a restarting API server or a
    /// load balancer in between would; clients resume from their last version.
    pub fn drop_watches(&self) {
        self.shared.control.send_modify(|c| c.drop_generation += 1);
    }

    /// Forgets the change history, as etcd compaction does, and ends every
    /// open watch with an `ERROR` event carrying a 410 `Expired` Status.
    /// Watches resumed from any earlier version get the same, so clients relist.
    pub fn expire_history(&self) {
        self.shared.lock().store.expire_history();
        self.shared.control.send_modify(|c| c.gone_generation += 1);
        self.shared.notify();
    }

    /// Every open watch that asked for bookmarks gets one now.
    pub fn send_bookmarks(&self) {
        self.shared.control.send_modify(|c| c.bookmark_generation += 1);
    }

    /// Removes all armed failures and the delay.
    pub fn clear(&self) {
        let mut state = self.shared.lock();
        state.faults = FaultState::default();
    }

    fn push(&self, rule: FailRule) {
        self.shared.lock().faults.rules.push(rule);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_consumed_in_order_and_by_path() {
        let mut f = FaultState::default();
        f.rules.push(FailRule { remaining: 1, path_contains: Some("/leases".into()), code: 500 });
        f.rules.push(FailRule { remaining: 2, path_contains: None, code: 503 });
        assert_eq!(f.take_failure("/api/v1/pods"), Some(503));
        assert_eq!(f.take_failure("/apis/coordination.k8s.io/v1/namespaces/a/leases/x"), Some(500));
        assert_eq!(f.take_failure("/apis/coordination.k8s.io/v1/namespaces/a/leases/x"), Some(503));
        assert_eq!(f.take_failure("/api/v1/pods"), None);
    }
}
