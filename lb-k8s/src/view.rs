//! What a running node shows of itself: the values that drivers write
//! and sinks (`/status`, `/metrics`, logs) read. A leaf module: it depends
//! on the pure crates only, so drivers and sinks never depend on each other.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use lb_bgp::session::State;
use lb_bgp::stats::SessionStats;
use lb_core::plan::{NodePlan, PoolStats, ServiceAssignment};

/// An error with every cause behind it (`connect failed: Connection
/// refused (os error 111)`), for logs and `/status`: an operator needs the
/// system's reason, which `Display` of the outer error leaves to `source()`.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some errors repeat their source in their own message.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// One published state of a running node. Rebuilt whole on every change
/// and shared as an `Arc`: readers render from it without holding any
/// lock that the sessions or the reload need. Sessions are the exception
/// they share: each is a small cell its peer task updates.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub node: String,
    pub config: ConfigState,
    /// The controller's half of the plan: one entry per handled Service.
    pub allocations: Vec<ServiceAssignment>,
    pub pools: Vec<PoolStats>,
    /// This node's half: its BGP routes per peer, and why each assigned
    /// IP is or is not announced from here.
    pub plan: Option<NodePlan>,
    pub sessions: Vec<Arc<PeerShared>>,
    /// Layer 2, updated live by its own thread.
    pub layer2: Option<Arc<L2Shared>>,
    /// The part of `/status` that only changes with the snapshot, rendered
    /// by the first reader (see `sinks::status`).
    pub status_fixed: std::sync::OnceLock<String>,
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

/// What a peer is doing, for `/status`, `/metrics` and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    pub name: String,
    pub remote: SocketAddr,
    pub state: State,
    /// When the session last reached Established, while it is.
    pub established_at: Option<SystemTime>,
    /// Local address of the connection carrying the session: the IPv4 next hop.
    pub local: Option<SocketAddr>,
    /// The peer's AS, while established.
    pub peer_asn: Option<u32>,
    /// Prefixes the peer should have.
    pub routes: usize,
    /// Why the last session or attempt ended.
    pub last_error: Option<String>,
    /// Failed attempts and sessions in a row (the back-off's exponent).
    pub consecutive_failures: u32,
    /// Connections made or accepted.
    pub connects: u64,
    /// Messages and bytes, as the session counted them.
    pub stats: SessionStats,
}

impl PeerStatus {
    /// A peer that has not started yet.
    pub fn new(name: &str, remote: SocketAddr, routes: usize) -> Self {
        Self {
            name: name.to_string(),
            remote,
            state: State::Idle,
            established_at: None,
            local: None,
            peer_asn: None,
            routes,
            last_error: None,
            consecutive_failures: 0,
            connects: 0,
            stats: SessionStats::default(),
        }
    }
}

/// A peer's status, shared between its task and whoever shows it.
#[derive(Debug)]
pub struct PeerShared {
    status: Mutex<PeerStatus>,
}

impl PeerShared {
    pub fn new(status: PeerStatus) -> Self {
        Self { status: Mutex::new(status) }
    }

    pub fn status(&self) -> PeerStatus {
        self.status.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn update(&self, f: impl FnOnce(&mut PeerStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_chain_keeps_the_system_reason() {
        #[derive(Debug, thiserror::Error)]
        #[error("connect failed")]
        struct Outer(#[source] std::io::Error);
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let text = error_chain(&Outer(refused));
        assert!(text.starts_with("connect failed: ") && text.contains("refused"), "{text}");
    }
}

/// Layer 2 as this node sees it, written by the layer 2 thread and read
/// by `/status` and `/metrics`.
#[derive(Debug, Default)]
pub struct L2Shared(Mutex<L2Status>);

impl L2Shared {
    pub fn status(&self) -> L2Status {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub fn set(&self, status: L2Status) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = status;
    }
}

/// See [`L2Shared`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct L2Status {
    /// Gossip runs (some advertisement can be answered here).
    pub gossiping: bool,
    /// Start-up is over: this node claims IPs.
    pub ready: bool,
    /// Every layer 2 IP: its owner by the plan, who claims it, where.
    pub ips: Vec<L2IpStatus>,
    /// How many IPs each live node owns.
    pub owned_per_node: std::collections::BTreeMap<String, usize>,
    pub members: Vec<lb_arp::membership::MemberView>,
    pub gossip: lb_arp::membership::MembershipStats,
    /// This node's interfaces that can answer.
    pub interfaces: Vec<String>,
    /// Other hosts seen answering for our IPs.
    pub ip_conflicts: u64,
}

/// One layer 2 IP in [`L2Status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L2IpStatus {
    pub ip: std::net::IpAddr,
    pub service: String,
    pub owner: Option<String>,
    pub claimants: Vec<String>,
    /// Where this node answers for it (empty unless it is the owner).
    pub interfaces: Vec<String>,
    pub counters: lb_arp::Counters,
}
