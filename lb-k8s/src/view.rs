//! What a running node shows of itself: the values that drivers write
//! and sinks (`/status`, `/metrics`, logs) read. A leaf module: it depends
//! on the pure crates only, so drivers and sinks never depend on each other.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use lb_bgp::session::State;
use lb_core::planner::BgpPlan;
use serde::Serialize;

/// Where `passwordSecret` references are looked up: `namespace/name` to the
/// Secret's `password` key, decoded.
pub type Secrets = std::collections::HashMap<String, Vec<u8>>;

/// One published state of a running node. Rebuilt whole on every change
/// and shared as an `Arc`: readers render from it without holding any
/// lock that the sessions or the reload need. Sessions are the exception
/// they share: each is a small cell its peer task updates.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub node: String,
    pub config: ConfigState,
    pub allocations: Vec<AllocationView>,
    pub pools: Vec<lb_ipam::PoolStats>,
    pub plan: Option<BgpPlan>,
    pub sessions: Vec<Arc<PeerShared>>,
}

/// Whether the configuration in force is the files' latest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigState {
    /// A configuration was applied at least once.
    pub loaded: bool,
    /// The latest change was refused: an older configuration is in force.
    pub stale: bool,
    pub last_error: Option<String>,
    pub reloads: u64,
    pub reload_errors: u64,
}

/// One Service's allocation.
#[derive(Debug, Clone, Serialize)]
pub struct AllocationView {
    pub service: String,
    pub ips: Vec<std::net::IpAddr>,
    pub pool: Option<String>,
    pub error: Option<String>,
}

/// What a peer is doing, for `/status` and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    pub name: String,
    pub remote: SocketAddr,
    pub state: State,
    /// When the session last reached Established, while it is.
    pub established_at: Option<SystemTime>,
    /// Local address of the current connection: the IPv4 next hop.
    pub local: Option<SocketAddr>,
    /// The peer's AS and BGP identifier, while established.
    pub peer_asn: Option<u32>,
    /// Prefixes the peer should have.
    pub routes: usize,
    /// Why the last session or attempt ended.
    pub last_error: Option<String>,
}

/// Counters of one peer, for metrics.
#[derive(Debug, Default)]
pub struct PeerCounters {
    pub opens_sent: AtomicU64,
    pub updates_sent: AtomicU64,
    pub keepalives_sent: AtomicU64,
    pub notifications_sent: AtomicU64,
    pub route_refreshes_sent: AtomicU64,
    pub messages_received: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    pub connects: AtomicU64,
    pub sessions_established: AtomicU64,
}

impl PeerCounters {
    /// Counts the messages in `bytes`, which holds whole messages only (the
    /// session produces them whole).
    pub fn count_sent(&self, bytes: &[u8]) {
        self.count(bytes, true);
    }

    /// Takes back the count of messages queued but never written (dropped
    /// when their connection closed).
    pub fn uncount(&self, bytes: &[u8]) {
        self.count(bytes, false);
    }

    fn count(&self, mut bytes: &[u8], add: bool) {
        let bump = |c: &AtomicU64, n: u64| {
            if add {
                c.fetch_add(n, Ordering::Relaxed);
            } else {
                c.fetch_sub(n.min(c.load(Ordering::Relaxed)), Ordering::Relaxed);
            }
        };
        bump(&self.bytes_sent, bytes.len() as u64);
        while bytes.len() >= 19 {
            let len = usize::from(u16::from_be_bytes([bytes[16], bytes[17]])).max(19);
            let counter = match bytes[18] {
                1 => &self.opens_sent,
                2 => &self.updates_sent,
                3 => &self.notifications_sent,
                4 => &self.keepalives_sent,
                5 => &self.route_refreshes_sent,
                _ => {
                    bytes = bytes.get(len..).unwrap_or_default();
                    continue;
                }
            };
            bump(counter, 1);
            bytes = bytes.get(len..).unwrap_or_default();
        }
    }
}

/// Shared between a peer task and whoever watches it.
#[derive(Debug)]
pub struct PeerShared {
    pub(crate) status: Mutex<PeerStatus>,
    pub counters: PeerCounters,
}

impl PeerShared {
    pub fn status(&self) -> PeerStatus {
        self.status.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn update(&self, f: impl FnOnce(&mut PeerStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }
}
