//! How long to wait before trying again something that failed: soon the
//! first time, then twice as long each time it fails again, up to a
//! ceiling. Used where a driver retries on its own (an unreadable reload,
//! a write the API server refused), so the rule is stated once.

use std::time::Duration;

/// A doubling wait from `first` to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Backoff {
    pub const fn new(first: Duration, max: Duration) -> Self {
        Self { first, max }
    }

    /// The wait after a failure, given the wait before it (`None`: this is
    /// the first failure since the last success).
    pub fn next(&self, last: Option<Duration>) -> Duration {
        last.map_or(self.first, |last| (last * 2).clamp(self.first, self.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_the_first_wait_to_the_ceiling() {
        let b = Backoff::new(Duration::from_millis(500), Duration::from_secs(3));
        let mut wait = None;
        let waits: Vec<u64> = (0..5)
            .map(|_| {
                let next = b.next(wait);
                wait = Some(next);
                u64::try_from(next.as_millis()).unwrap_or(u64::MAX)
            })
            .collect();
        assert_eq!(waits, [500, 1000, 2000, 3000, 3000]);
    }
}
