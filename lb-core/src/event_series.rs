//! Kubernetes Events' series, as a publisher counts them: a repeat of an
//! Event (same object, type, reason and message) within a window patches
//! the first one's `series` instead of creating another, as client-go
//! does. What is remembered is bounded in size and age, so a role that
//! records 10,000 Events keeps no more than [`REMEMBERED`] of them, and a
//! repeat is found in O(1). Keys are digests the publisher makes of an
//! Event; time is given, not read.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Repeats within this window count as one Event's series.
pub const REPEAT_WINDOW: Duration = Duration::from_secs(6 * 60);
/// Recent Events remembered for counting repeats.
pub const REMEMBERED: usize = 4096;

/// What a recent Event makes of one more like it.
#[derive(Debug, PartialEq, Eq)]
pub enum Repeat {
    /// None recent: create it.
    First,
    /// Its create is in flight: counted, sent with the series after it.
    Pending,
    /// Patch the series of this Event to this count.
    Of(String, i32),
}

/// The API server refuses a note over 1 KiB: longer messages are cut
/// at a character boundary, with an ellipsis.
pub const NOTE_LIMIT: usize = 1024;

pub fn note(message: &str) -> String {
    if message.len() <= NOTE_LIMIT {
        return message.to_string();
    }
    let mut end = NOTE_LIMIT - '…'.len_utf8();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

/// The Events sent recently, by key: name, count and when first sent.
/// Bounded both in size (the oldest go first) and in age.
#[derive(Debug)]
pub struct Recent {
    by_key: HashMap<u64, Remembered>,
    /// Keys in the order they were first sent (may name forgotten keys).
    order: VecDeque<(u64, Instant)>,
    capacity: usize,
    window: Duration,
}

#[derive(Debug)]
struct Remembered {
    name: String,
    count: i32,
    first: Instant,
    /// Its create is in flight.
    creating: bool,
    /// Repeats counted while it was being created.
    unsent: bool,
}

impl Recent {
    pub fn new(capacity: usize, window: Duration) -> Self {
        Self { by_key: HashMap::new(), order: VecDeque::new(), capacity, window }
    }

    /// A repeat of a recent Event: its name and the series count now.
    pub fn repeat(&mut self, key: u64, now: Instant) -> Repeat {
        self.expire(now);
        let Some(r) = self.by_key.get_mut(&key) else { return Repeat::First };
        r.count = r.count.saturating_add(1);
        if r.creating {
            r.unsent = true;
            return Repeat::Pending;
        }
        Repeat::Of(r.name.clone(), r.count)
    }

    /// Its create is done: the series to send for repeats counted meanwhile.
    pub fn created(&mut self, key: u64) -> Option<(String, i32)> {
        let r = self.by_key.get_mut(&key)?;
        r.creating = false;
        std::mem::take(&mut r.unsent).then(|| (r.name.clone(), r.count))
    }

    pub fn insert(&mut self, key: u64, name: String, now: Instant) {
        self.expire(now);
        while self.by_key.len() >= self.capacity {
            let Some((old, at)) = self.order.pop_front() else { break };
            if self.by_key.get(&old).is_some_and(|r| r.first == at) {
                self.by_key.remove(&old);
            }
        }
        self.by_key.insert(key, Remembered { name, count: 1, first: now, creating: true, unsent: false });
        self.order.push_back((key, now));
        // Entries of keys forgotten (failed requests) would otherwise stay
        // behind live ones for the whole window.
        if self.order.len() > 2 * self.capacity {
            let by_key = &self.by_key;
            self.order.retain(|(k, at)| by_key.get(k).is_some_and(|r| r.first == *at));
        }
    }

    pub fn forget(&mut self, key: u64) {
        self.by_key.remove(&key);
    }

    /// Drops what is older than the window, and order entries of keys
    /// forgotten or sent again since.
    fn expire(&mut self, now: Instant) {
        while let Some(&(key, at)) = self.order.front() {
            let current = self.by_key.get(&key).is_some_and(|r| r.first == at);
            if current && now.duration_since(at) < self.window {
                break;
            }
            if current {
                self.by_key.remove(&key);
            }
            self.order.pop_front();
        }
    }

    /// Events remembered.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(name: &str, count: i32) -> Repeat {
        Repeat::Of(name.into(), count)
    }

    #[test]
    fn notes_fit_the_api_servers_limit() {
        assert_eq!(note("short"), "short");
        for long in ["x".repeat(5000), "é".repeat(3000)] {
            let cut = note(&long);
            assert!(cut.len() <= NOTE_LIMIT && cut.ends_with('…'), "{}", cut.len());
        }
    }

    #[test]
    fn a_repeat_within_the_window_is_counted_on_the_first() {
        let mut recent = Recent::new(10, Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(recent.repeat(1, t0), Repeat::First);
        recent.insert(1, "a.1".into(), t0);
        assert_eq!(recent.created(1), None, "no repeat while it was created");
        assert_eq!(recent.repeat(1, t0 + Duration::from_secs(1)), of("a.1", 2));
        assert_eq!(recent.repeat(1, t0 + Duration::from_secs(2)), of("a.1", 3));
        assert_eq!(recent.repeat(2, t0), Repeat::First, "another key");
        // Past the window: a new Event.
        assert_eq!(recent.repeat(1, t0 + Duration::from_secs(61)), Repeat::First);
        assert_eq!(recent.len(), 0);
    }

    #[test]
    fn repeats_while_the_first_is_created_go_out_as_one_series_after_it() {
        let mut recent = Recent::new(10, Duration::from_secs(60));
        let t0 = Instant::now();
        recent.insert(1, "a.1".into(), t0);
        assert_eq!(recent.repeat(1, t0), Repeat::Pending);
        assert_eq!(recent.repeat(1, t0), Repeat::Pending);
        assert_eq!(recent.created(1), Some(("a.1".into(), 3)));
        assert_eq!(recent.repeat(1, t0), of("a.1", 4));
    }

    #[test]
    fn memory_is_bounded_oldest_first() {
        let mut recent = Recent::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for key in 0..10 {
            recent.insert(key, format!("e.{key}"), t0 + Duration::from_millis(key));
            let _ = recent.created(key);
            assert!(recent.len() <= 3);
        }
        assert_eq!(recent.repeat(9, t0 + Duration::from_secs(1)), of("e.9", 2));
        assert_eq!(recent.repeat(0, t0 + Duration::from_secs(1)), Repeat::First, "the oldest went first");
        // Keys forgotten (failed requests) do not pile up behind a live one.
        for key in 100..1000 {
            recent.insert(key, format!("e.{key}"), t0 + Duration::from_secs(2));
            recent.forget(key);
        }
        assert!(recent.order.len() <= 6, "{}", recent.order.len());
    }

    #[test]
    fn a_forgotten_key_starts_afresh_and_its_stale_order_entry_is_dropped() {
        let mut recent = Recent::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        recent.insert(1, "a".into(), at(0));
        recent.insert(2, "b".into(), at(1));
        recent.forget(1);
        assert_eq!(recent.repeat(1, at(2)), Repeat::First);
        recent.insert(1, "c".into(), at(2));
        let _ = recent.created(1);
        // Full: the oldest live entry (2) goes, not key 1 by its stale entry.
        recent.insert(3, "d".into(), at(3));
        assert_eq!(recent.len(), 2);
        assert_eq!(recent.repeat(1, at(4)), of("c", 2));
        assert_eq!(recent.repeat(2, at(4)), Repeat::First);
    }
}
