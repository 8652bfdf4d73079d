//! This node's BGP speaker: the set of peer tasks, kept equal to what the
//! configuration and the planner want.
//!
//! [`Speaker::apply`] takes the whole desired state each time (every peer
//! with its routes) and reconciles: a new peer gets a task, a removed one
//! gets a Cease NOTIFICATION, a peer whose session parameters changed is
//! restarted, and a peer whose routes changed gets only the difference as
//! UPDATEs, on the session it has.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use lb_bgp::adj_rib_out::RouteAttributes;
use lb_bgp::session::{RemoteAs, SessionConfig};
use lb_bgp::wire::Prefix;
use lb_core::community::Community;
use lb_core::config::{BgpPeer, Password, PeerAsn};
use lb_core::planner::{self, PeerPlan};
use tokio::net::TcpStream;
use tracing::{debug, info};

use super::peer::{PeerHandle, PeerShared, PeerSpec, Routes, StopReason};

/// Why a BGPPeer cannot be turned into a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerSpecError {
    /// Only peers with an address are supported (unnumbered BGP is not).
    #[error("peer {0}: no peerAddress (peering over an interface alone is not supported)")]
    NoAddress(String),
    /// `passwordSecret` names a Secret that was not given.
    #[error("peer {peer}: passwordSecret {namespace}/{name} not found")]
    MissingSecret { peer: String, namespace: String, name: String },
    /// The hold time does not fit BGP's 16-bit field.
    #[error("peer {0}: hold time over 65535 s")]
    HoldTime(String),
    /// TCP MD5 keys are at most 80 bytes (RFC 2385, Linux's limit).
    #[error("peer {peer}: password of {len} bytes; TCP MD5 keys are at most 80")]
    KeyTooLong { peer: String, len: usize },
}

impl PeerSpecError {
    /// Whether the configuration is wrong (refuse it, keep the last good
    /// one), rather than asking for something this speaker does not do.
    pub fn is_invalid_config(&self) -> bool {
        matches!(self, Self::MissingSecret { .. } | Self::HoldTime(_) | Self::KeyTooLong { .. })
    }
}

pub use crate::view::Secrets;

/// The session parameters for `peer`, with `router_id` unless the peer sets
/// its own (see [`default_router_id`]).
pub fn peer_spec(peer: &BgpPeer, router_id: Ipv4Addr, secrets: &Secrets) -> Result<PeerSpec, PeerSpecError> {
    let address = peer.address.ok_or_else(|| PeerSpecError::NoAddress(peer.name.clone()))?;
    let remote_as = match peer.peer_asn {
        PeerAsn::Fixed(asn) => RemoteAs::Fixed(asn),
        PeerAsn::Internal => RemoteAs::Internal,
        PeerAsn::External => RemoteAs::External,
    };
    let router_id = peer.router_id.unwrap_or(router_id);
    let mut session = SessionConfig::new(peer.my_asn, remote_as, router_id);
    session.hold_time =
        u16::try_from(peer.hold_time.as_secs()).map_err(|_| PeerSpecError::HoldTime(peer.name.clone()))?;
    session.keepalive = Some(peer.keepalive_time);
    // Retry quickly: a router that restarts should see us again within
    // seconds; the session backs off by itself on repeated failures.
    session.connect_retry = peer.connect_time.unwrap_or(Duration::from_secs(2)).max(Duration::from_millis(100));
    session.max_backoff = Duration::from_secs(30);
    session.ipv4 = planner::peer_carries(peer, lb_core::Family::V4);
    session.ipv6 = planner::peer_carries(peer, lb_core::Family::V6);
    session.graceful_restart = peer.graceful_restart.then_some(120);
    let md5_key = match &peer.password {
        None => None,
        Some(Password::Plain(p)) => Some(p.as_bytes().to_vec()),
        Some(Password::Secret(s)) => {
            let namespace = s.namespace.clone().unwrap_or_else(|| "metallb-system".into());
            let key = format!("{namespace}/{}", s.name);
            Some(secrets.get(&key).cloned().ok_or_else(|| PeerSpecError::MissingSecret {
                peer: peer.name.clone(),
                namespace,
                name: s.name.clone(),
            })?)
        }
    };
    if let Some(key) = &md5_key
        && key.len() > super::socket::MD5_MAX_KEY_LEN
    {
        return Err(PeerSpecError::KeyTooLong { peer: peer.name.clone(), len: key.len() });
    }
    // RFC 4271 eBGP peers are directly connected unless told otherwise, and
    // a TTL of 1 keeps the session from being reached from further away;
    // iBGP and multi-hop eBGP sessions cross routers.
    let ttl = if peer.is_ibgp() || peer.ebgp_multihop { 255 } else { 1 };
    Ok(PeerSpec {
        name: peer.name.clone(),
        remote: SocketAddr::new(address, peer.port),
        source: peer.source_address,
        // A VRF is a device: binding the socket to it routes the session in
        // the VRF's table.
        interface: peer.vrf.clone().filter(|v| !v.is_empty()).or_else(|| peer.interface.clone()),
        md5_key,
        ttl,
        connect_timeout: peer.connect_time.unwrap_or(Duration::from_secs(5)).max(Duration::from_secs(1)),
        session,
    })
}

/// The router ID of a session with `peer` when it sets none: its
/// `sourceAddress` if IPv4; else the node's first IPv4 address; else the
/// local address of the route towards the peer; else one derived from the
/// node's and the peer's names, so that every session has an identifier
/// even on an IPv6-only host (set `routerID` there), distinct per node.
/// Callers keep the result: a route lookup can change between reloads, and
/// a new identifier would restart the session.
pub fn default_router_id(peer: &BgpPeer, node: &str, node_addresses: &[IpAddr]) -> Ipv4Addr {
    if let Some(IpAddr::V4(a)) = peer.source_address {
        return a;
    }
    if let Some(a) = node_addresses.iter().find_map(|a| match a {
        IpAddr::V4(v4) if !v4.is_loopback() && !v4.is_unspecified() => Some(*v4),
        _ => None,
    }) {
        return a;
    }
    // A connected UDP socket sends nothing but tells which local address
    // the kernel would use towards the peer.
    if let Some(address @ IpAddr::V4(_)) = peer.address
        && let Ok(socket) = UdpSocket::bind("0.0.0.0:0")
        && socket.connect(SocketAddr::new(address, 179)).is_ok()
        && let Ok(SocketAddr::V4(local)) = socket.local_addr()
        && !local.ip().is_unspecified()
    {
        return *local.ip();
    }
    let hash = node
        .bytes()
        .chain([0])
        .chain(peer.name.bytes())
        .fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    Ipv4Addr::from(hash | 1)
}

/// The planner's routes in the BGP library's terms.
pub fn routes_of(plan: &PeerPlan) -> Routes {
    plan.routes
        .iter()
        .filter_map(|(net, attrs)| {
            let prefix = Prefix::new(net.network(), net.prefix())?;
            let mut out = RouteAttributes { local_pref: attrs.local_pref, ..RouteAttributes::default() };
            for c in &attrs.communities {
                match *c {
                    Community::Standard(v) => out.communities.push(v),
                    Community::Large(a, b, c) => out.large_communities.push([a, b, c]),
                }
            }
            Some((prefix, out))
        })
        .collect()
}

/// The running peers of this node.
#[derive(Debug, Default)]
pub struct Speaker {
    peers: BTreeMap<String, PeerHandle>,
    routes: BTreeMap<String, Arc<Routes>>,
}

impl Speaker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the running peers those of `desired` (by name), each with its routes.
    pub async fn apply(&mut self, desired: Vec<(PeerSpec, Routes)>) {
        let mut desired: BTreeMap<String, (PeerSpec, Routes)> =
            desired.into_iter().map(|(spec, routes)| (spec.name.clone(), (spec, routes))).collect();
        let mut stopping = Vec::new();
        let names: Vec<String> = self.peers.keys().cloned().collect();
        for name in names {
            let keep =
                desired.get(&name).is_some_and(|(spec, _)| self.peers.get(&name).is_some_and(|h| h.spec() == spec));
            if !keep && let Some(handle) = self.peers.remove(&name) {
                self.routes.remove(&name);
                let reason = if desired.contains_key(&name) {
                    StopReason::ConfigurationChanged
                } else {
                    StopReason::Deconfigured
                };
                info!(peer = %name, reason = ?reason, "stopping BGP peer");
                stopping.push(tokio::spawn(handle.stop(reason)));
            }
        }
        for task in stopping {
            let _ = task.await;
        }
        for (name, (spec, routes)) in std::mem::take(&mut desired) {
            match self.peers.get(&name) {
                Some(handle) => {
                    if self.routes.get(&name).is_none_or(|r| **r != routes) {
                        let routes = Arc::new(routes);
                        handle.set_routes(routes.clone());
                        self.routes.insert(name, routes);
                    }
                }
                None => {
                    debug!(peer = %name, remote = %spec.remote, "starting BGP peer");
                    let routes = Arc::new(routes);
                    self.peers.insert(name.clone(), PeerHandle::spawn(spec, routes.clone()));
                    self.routes.insert(name, routes);
                }
            }
        }
    }

    /// Every peer's shared state, by name.
    pub fn peers(&self) -> impl Iterator<Item = (&str, &Arc<PeerShared>)> {
        self.peers.iter().map(|(n, h)| (n.as_str(), h.shared()))
    }

    /// The TCP MD5 key of every running peer that has one, by address.
    pub fn md5_keys(&self) -> BTreeMap<IpAddr, Vec<u8>> {
        self.peers.values().filter_map(|h| h.spec().md5_key.clone().map(|k| (h.spec().remote.ip(), k))).collect()
    }

    /// Hands a connection accepted on a listener to the peer it comes from;
    /// dropped (closed) when no peer has that address.
    pub fn accepted(&self, stream: TcpStream, from: SocketAddr) {
        let ip = from.ip().to_canonical();
        match self.peers.values().find(|h| h.spec().remote.ip() == ip) {
            Some(handle) => handle.accepted(stream),
            None => debug!(%from, "connection from an unknown address closed"),
        }
    }

    /// Cease / Administrative Shutdown to every peer, then close.
    pub async fn shutdown(mut self, message: &str) {
        let tasks: Vec<_> = std::mem::take(&mut self.peers)
            .into_values()
            .map(|h| tokio::spawn(h.stop(StopReason::Shutdown(Some(message.to_string())))))
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    }
}
