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

use lb_bgp::adj_rib_out::RouteAttributes;
use lb_bgp::session::{RemoteAs, SessionConfig};
use lb_bgp::wire::Prefix;
use lb_core::community::Community;
use lb_core::config::PeerAsn;
use lb_core::peering::PeerSession;
use lb_core::planner::PeerPlan;
use tokio::net::TcpStream;
use tracing::{debug, info};

use super::peer::{PeerHandle, PeerShared, PeerSpec, Routes, StopReason};

/// The session a planned peer gets: `lb_core::peering` decided every
/// value; this only puts them in the BGP library's and the socket's terms.
pub fn spec_of(planned: PeerSession) -> PeerSpec {
    let remote_as = match planned.remote_as {
        PeerAsn::Fixed(asn) => RemoteAs::Fixed(asn),
        PeerAsn::Internal => RemoteAs::Internal,
        PeerAsn::External => RemoteAs::External,
    };
    let mut session = SessionConfig::new(planned.local_asn, remote_as, planned.router_id);
    session.hold_time = planned.hold_time;
    session.keepalive = Some(planned.keepalive);
    session.connect_retry = planned.connect_retry;
    session.max_backoff = planned.max_backoff;
    session.ipv4 = planned.ipv4;
    session.ipv6 = planned.ipv6;
    session.graceful_restart = planned.graceful_restart;
    PeerSpec {
        name: planned.name,
        remote: planned.remote,
        source: planned.source,
        interface: planned.bind_device,
        md5_key: planned.md5_key,
        ttl: planned.ttl,
        connect_timeout: planned.connect_timeout,
        session,
    }
}

/// The local IPv4 address the kernel would use towards `to`: a connected
/// UDP socket sends nothing but knows its route.
pub fn probe_local_address(to: SocketAddr) -> Option<Ipv4Addr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect(to).ok()?;
    match socket.local_addr().ok()? {
        SocketAddr::V4(local) if !local.ip().is_unspecified() => Some(*local.ip()),
        _ => None,
    }
}

/// Every BGP session of `node` as configured, keyed by peer name, or the
/// configuration errors that make the whole change invalid (a missing
/// Secret, say). Default router IDs are chosen once per peer and kept in
/// `router_ids`: a new one would restart the session. Peers this build
/// cannot run are logged (`peerUnsupported`) and left out.
pub fn peer_specs(
    config: &lb_core::Config,
    node: &lb_core::Node,
    secrets: &lb_core::config::Secrets,
    router_ids: &mut std::collections::HashMap<String, Ipv4Addr>,
) -> Result<BTreeMap<String, PeerSpec>, Vec<String>> {
    use lb_core::peering;
    let node_addresses: Vec<IpAddr> = node.addresses.iter().map(|a| a.address).collect();
    let planned = peering::node_sessions(config, node, secrets, |peer| {
        *router_ids.entry(peer.name.clone()).or_insert_with(|| {
            let probed = peering::router_id_probe(peer, &node_addresses).and_then(probe_local_address);
            peering::default_router_id(peer, &node.name, &node_addresses, probed)
        })
    });
    let mut specs = BTreeMap::new();
    let mut invalid = Vec::new();
    for result in planned {
        match result {
            Ok(session) => {
                specs.insert(session.name.clone(), spec_of(session));
            }
            Err(e) if e.is_invalid_config() => invalid.push(e.to_string()),
            Err(e) => tracing::warn!(event = "peerUnsupported", peer = %e.peer(), error = %e, "peer not started"),
        }
    }
    if invalid.is_empty() { Ok(specs) } else { Err(invalid) }
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
