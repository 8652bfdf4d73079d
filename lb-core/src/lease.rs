//! Leader election on a `coordination.k8s.io` Lease, decided without I/O.
//!
//! The protocol client-go uses, with the same safety argument:
//! - a candidate takes a Lease only after it has seen the same record (same
//!   holder and renew time) for a whole lease duration **on its own
//!   monotonic clock**, so clock skew between nodes does not matter;
//! - a holder renews every [`LeaseTiming::renew_every`], and counts itself
//!   leader only until `sent + duration - margin`, where `sent` is when it
//!   sent its last renewal that succeeded: it stops writing before any
//!   candidate can have waited out the duration since seeing that renewal;
//! - every write is an update with the record's `resourceVersion`, so of
//!   two candidates only one succeeds.
//!
//! [`Elector`] is the state machine; the driver reads the Lease, asks
//! [`Elector::step`] what to write, writes it with optimistic concurrency
//! and reports the outcome.

use std::time::{Duration, Instant};

/// What a Lease says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseRecord {
    pub holder: Option<String>,
    /// `spec.renewTime`, as the holder wrote it (only compared, never
    /// trusted as a time: clocks differ).
    pub renew_time: Option<String>,
    pub duration_seconds: Option<u32>,
    pub transitions: u32,
}

/// Timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    /// How long a record stays valid without renewal.
    pub duration: Duration,
    /// How often the holder renews (well inside `duration`).
    pub renew_every: Duration,
    /// How much earlier than the candidates the holder gives up.
    pub margin: Duration,
}

impl Default for LeaseTiming {
    /// A standby takes over within 5 s of the leader's last renewal.
    fn default() -> Self {
        Self { duration: Duration::from_secs(5), renew_every: Duration::from_secs(1), margin: Duration::from_secs(1) }
    }
}

/// What to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Take the Lease: holder = us, a new acquire time, transitions + 1.
    Acquire { transitions: u32 },
    /// Renew our holding.
    Renew,
    /// Someone else holds it (or did until recently): check again later.
    Wait,
}

/// One candidate's view.
#[derive(Debug, Clone)]
pub struct Elector {
    me: String,
    timing: LeaseTiming,
    /// The record last seen, and when it was first seen like that.
    seen: Option<(LeaseRecord, Instant)>,
    /// Leader until then (from our last successful write).
    leader_until: Option<Instant>,
}

impl Elector {
    pub fn new(me: &str, timing: LeaseTiming) -> Self {
        Self { me: me.to_string(), timing, seen: None, leader_until: None }
    }

    /// What to do with the Lease as just read (`None`: it does not exist).
    pub fn step(&mut self, record: Option<&LeaseRecord>, now: Instant) -> Step {
        let Some(record) = record else {
            return Step::Acquire { transitions: 0 };
        };
        if record.holder.as_deref() == Some(self.me.as_str()) {
            return Step::Renew;
        }
        match &self.seen {
            Some((old, _)) if old == record => {}
            _ => self.seen = Some((record.clone(), now)),
        }
        // A record that names nobody is free at once; another holder's is
        // free once we have seen it unchanged for a whole duration.
        let free = record.holder.as_deref().is_none_or(str::is_empty)
            || self.seen.as_ref().is_some_and(|(_, since)| now.duration_since(*since) >= self.timing.duration);
        if free { Step::Acquire { transitions: record.transitions + 1 } } else { Step::Wait }
    }

    /// Our write (acquire or renew), sent at `sent`, succeeded.
    pub fn wrote(&mut self, sent: Instant) {
        self.seen = None;
        self.leader_until = Some(sent + self.timing.duration.saturating_sub(self.timing.margin));
    }

    /// Our write failed (a conflict: someone else wrote first), or the
    /// Lease names another holder: not leader from now on.
    pub fn lost(&mut self) {
        self.leader_until = None;
    }

    /// Whether we may act as leader at `now`.
    pub fn is_leader(&self, now: Instant) -> bool {
        self.leader_until.is_some_and(|until| now < until)
    }

    /// When leadership ends unless renewed.
    pub fn leader_until(&self) -> Option<Instant> {
        self.leader_until
    }

    pub fn timing(&self) -> LeaseTiming {
        self.timing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(who: &str, renew: &str) -> LeaseRecord {
        LeaseRecord {
            holder: Some(who.into()),
            renew_time: Some(renew.into()),
            duration_seconds: Some(5),
            transitions: 3,
        }
    }

    #[test]
    fn a_candidate_waits_a_whole_duration_of_silence_on_its_own_clock() {
        let t0 = Instant::now();
        let mut b = Elector::new("b", LeaseTiming::default());
        assert_eq!(b.step(None, t0), Step::Acquire { transitions: 0 });
        let r1 = held_by("a", "t1");
        assert_eq!(b.step(Some(&r1), t0), Step::Wait);
        assert_eq!(b.step(Some(&r1), t0 + Duration::from_secs(4)), Step::Wait);
        // A renewal restarts the wait.
        let r2 = held_by("a", "t2");
        assert_eq!(b.step(Some(&r2), t0 + Duration::from_secs(4)), Step::Wait);
        assert_eq!(b.step(Some(&r2), t0 + Duration::from_secs(8)), Step::Wait);
        assert_eq!(b.step(Some(&r2), t0 + Duration::from_secs(9)), Step::Acquire { transitions: 4 });
        // Released (no holder): free at once.
        let free = LeaseRecord { holder: None, ..r2 };
        assert_eq!(Elector::new("c", LeaseTiming::default()).step(Some(&free), t0), Step::Acquire { transitions: 4 });
    }

    #[test]
    fn the_holder_gives_up_before_any_candidate_can_take_over() {
        let timing = LeaseTiming::default();
        let t0 = Instant::now();
        let mut a = Elector::new("a", timing);
        assert_eq!(a.step(Some(&held_by("a", "t1")), t0), Step::Renew);
        a.wrote(t0);
        assert!(a.is_leader(t0 + Duration::from_secs(3)));
        // The candidate saw the renewal no earlier than it was sent.
        let mut b = Elector::new("b", timing);
        assert_eq!(b.step(Some(&held_by("a", "t1")), t0), Step::Wait);
        let mut t = t0;
        while b.step(Some(&held_by("a", "t1")), t) == Step::Wait {
            t += Duration::from_millis(100);
        }
        assert!(!a.is_leader(t), "never two leaders: a until {:?}, b from {:?}", a.leader_until(), t);
        a.lost();
        assert!(!a.is_leader(t0));
    }
}
