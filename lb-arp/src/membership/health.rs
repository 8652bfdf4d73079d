//! Local health: a speaker that is itself slow must not accuse others.
//!
//! foca has no Lifeguard. A node whose CPU is saturated handles its probe
//! timers late, sees acks late and would suspect healthy members. As
//! Lifeguard's local health multiplier does, a score counts recent signs
//! of our own slowness (timers handled late); while it is above zero the
//! time a suspect gets to refute before we declare it down is stretched
//! by `1 + score`. Each timer handled on time lowers the score again.
//! Together with the driver reading every waiting datagram before
//! handling a timer (an ack already received is never missed), a busy
//! node raises no false alarms; a dead one is still found, only later
//! while we are ourselves in trouble.

use std::time::Duration;

/// Lifeguard's ceiling for the multiplier (S = 8).
pub const MAX_SCORE: u8 = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalHealth {
    score: u8,
    /// A timer handled later than this counts against us.
    late_after: Duration,
    /// Timers on time in a row since the last change.
    on_time: u32,
}

impl LocalHealth {
    pub fn new(late_after: Duration) -> Self {
        Self { score: 0, late_after, on_time: 0 }
    }

    pub fn score(&self) -> u8 {
        self.score
    }

    /// A timer due `lateness` ago was just handled. Returns whether the
    /// score changed.
    pub fn timer_handled(&mut self, lateness: Duration) -> bool {
        if lateness > self.late_after {
            self.on_time = 0;
            if self.score < MAX_SCORE {
                self.score += 1;
                return true;
            }
            return false;
        }
        self.on_time += 1;
        // Recover slowly: several timers on time for each step down.
        if self.score > 0 && self.on_time >= 8 {
            self.on_time = 0;
            self.score -= 1;
            return true;
        }
        false
    }

    /// The suspicion time to use now.
    pub fn scale(&self, suspicion: Duration) -> Duration {
        suspicion * (1 + u32::from(self.score))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_stretches_suspicion_and_punctuality_restores_it() {
        let mut h = LocalHealth::new(Duration::from_millis(20));
        let base = Duration::from_millis(200);
        assert_eq!(h.scale(base), base);
        for _ in 0..20 {
            h.timer_handled(Duration::from_millis(50));
        }
        assert_eq!(h.score(), MAX_SCORE);
        assert_eq!(h.scale(base), base * 9);
        for _ in 0..8 {
            h.timer_handled(Duration::ZERO);
        }
        assert_eq!(h.score(), MAX_SCORE - 1);
        for _ in 0..8 * 8 {
            h.timer_handled(Duration::from_millis(1));
        }
        assert_eq!(h.scale(base), base);
    }
}
