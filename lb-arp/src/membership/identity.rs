//! Who a member is, for foca.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// One speaker in the gossip: its node name, where it listens, and which
/// run of it this is.
///
/// foca tells members apart by [`foca::Identity::addr`], here the gossip
/// address (what a seed list knows before any name is heard), so a speaker
/// that restarts (a newer `started`) or rejoins after being declared down
/// (a newer `bump`) replaces its older self rather than being refused as
/// a duplicate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemberId {
    pub name: String,
    pub addr: SocketAddr,
    /// When this run started (microseconds since the Unix epoch).
    pub started: u64,
    /// Renewals within this run (each rejoin after being declared down).
    pub bump: u32,
}

impl foca::Identity for MemberId {
    type Addr = SocketAddr;

    fn renew(&self) -> Option<Self> {
        Some(Self { bump: self.bump.wrapping_add(1), ..self.clone() })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        (self.started, self.bump) > (adversary.started, adversary.bump)
    }
}

#[cfg(test)]
mod tests {
    use foca::Identity;

    use super::*;

    #[test]
    fn a_later_run_or_renewal_wins() {
        let old = MemberId { name: "a".into(), addr: "192.0.2.1:7946".parse().expect("addr"), started: 10, bump: 5 };
        let restarted = MemberId { started: 11, bump: 0, ..old.clone() };
        assert!(restarted.win_addr_conflict(&old));
        assert!(!old.win_addr_conflict(&restarted));
        let renewed = old.renew().expect("renews");
        assert!(renewed.win_addr_conflict(&old));
        assert_eq!(renewed.addr(), old.addr);
    }
}
