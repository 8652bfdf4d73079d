//! Peer planning: from a `BGPPeer` to the parameters of the BGP session a
//! speaker opens with it, decided here once so that a driver only applies
//! them (opens the socket, sets its options, feeds the session machine).
//!
//! - [`peer_session`]: the session with one peer (address, binding, TCP MD5
//!   key, TTL, timers, families, ASNs, router ID);
//! - [`default_router_id`] and [`router_id`]: the BGP identifier when the
//!   peer sets none, from the node's addresses and, where the driver probed
//!   it, the local address the kernel would use towards the peer;
//! - [`nexthop`]: the next hops announcements carry, from the host's
//!   interface addresses (RFC 2545).
//!
//! Every limit a driver would refuse (hold time, key length) is also a
//! configuration error reported by [`crate::config::load`]; the checks here
//! guard against a [`BgpPeer`] built by hand and against Secrets that only
//! the driver can see.

pub mod nexthop;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::addr::Family;
use crate::config::secret::{Secrets, namespace_of};
use crate::config::{BgpPeer, Config, Password, PeerAsn};
use crate::node::Node;
use crate::planner::{peer_carries, peers_of};

/// TCP MD5 keys are at most 80 bytes (RFC 2385 sets no limit; Linux's
/// `TCP_MD5SIG_MAXKEYLEN` does, and so does every router we peer with).
pub const MD5_MAX_KEY_LEN: usize = 80;

/// Longest network device name (interface, VRF) Linux knows: `IFNAMSIZ`
/// less the terminating NUL.
pub const MAX_DEVICE_NAME_LEN: usize = 15;

/// The largest hold time: the OPEN message carries it in 16 bits of seconds.
pub const MAX_HOLD_TIME: Duration = Duration::from_secs(u16::MAX as u64);

/// Between connection attempts unless `connectTime` says otherwise: a
/// router that restarts should see us again within seconds; the session
/// backs off by itself on repeated failures.
pub const DEFAULT_CONNECT_RETRY: Duration = Duration::from_secs(2);
/// Retrying faster than this would only load the peer.
pub const MIN_CONNECT_RETRY: Duration = Duration::from_millis(100);
/// How long one TCP connection attempt may take unless `connectTime` says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Shorter attempts fail on any link with some latency.
pub const MIN_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest pause between attempts after repeated failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// RFC 4724 restart time announced when graceful restart is enabled: long
/// enough for a speaker pod to be rescheduled and come back.
pub const GRACEFUL_RESTART_TIME: u16 = 120;
/// TTL of a directly connected eBGP session: a packet from further away
/// cannot reach it (RFC 4271's default; GTSM-like protection).
pub const TTL_DIRECT: u8 = 1;
/// TTL of iBGP and multi-hop eBGP sessions, which cross routers.
pub const TTL_MULTIHOP: u8 = 255;

/// Why a BGPPeer cannot be turned into a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// Only peers with an address are supported (unnumbered BGP is not).
    #[error("peer {peer}: no peerAddress (peering over an interface alone is not supported)")]
    NoAddress { peer: String },
    /// `passwordSecret` names a Secret that was not given.
    #[error("peer {peer}: passwordSecret {namespace}/{name} not found")]
    MissingSecret { peer: String, namespace: String, name: String },
    /// The hold time does not fit BGP's 16-bit field.
    #[error("peer {peer}: hold time {hold:?} is over 65535 s")]
    HoldTime { peer: String, hold: Duration },
    /// `sourceAddress` and the peer's address are of different families:
    /// no socket can connect from one to the other.
    #[error("peer {peer}: sourceAddress {local} is not of the family of {remote}")]
    SourceFamily { peer: String, local: IpAddr, remote: IpAddr },
    /// TCP MD5 keys are at most [`MD5_MAX_KEY_LEN`] bytes.
    #[error("peer {peer}: password of {len} bytes; TCP MD5 keys are at most 80")]
    KeyTooLong { peer: String, len: usize },
}

impl PeerError {
    /// Whether the configuration is wrong (refuse it, keep the last good
    /// one), rather than asking for something this speaker does not do
    /// (skip that peer with a warning).
    pub fn is_invalid_config(&self) -> bool {
        matches!(
            self,
            Self::MissingSecret { .. } | Self::HoldTime { .. } | Self::KeyTooLong { .. } | Self::SourceFamily { .. }
        )
    }

    /// The BGPPeer's name.
    pub fn peer(&self) -> &str {
        match self {
            Self::NoAddress { peer }
            | Self::MissingSecret { peer, .. }
            | Self::HoldTime { peer, .. }
            | Self::SourceFamily { peer, .. }
            | Self::KeyTooLong { peer, .. } => peer,
        }
    }
}

/// Everything a driver needs to run a BGP session with one peer, as plain
/// values: nothing here is decided again by the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSession {
    /// The BGPPeer's name, for logs and status.
    pub name: String,
    /// The peer's address and port.
    pub remote: SocketAddr,
    /// Connect from this address (`sourceAddress`).
    pub source: Option<IpAddr>,
    /// Bind the socket to this device (`SO_BINDTODEVICE`): the VRF when one
    /// is set, since binding to a VRF device routes the session in its
    /// table; else the interface.
    pub bind_device: Option<String>,
    /// TCP MD5 signature key (RFC 2385), at most [`MD5_MAX_KEY_LEN`] bytes.
    pub md5_key: Option<Vec<u8>>,
    /// IP TTL / hop limit of our packets: [`TTL_DIRECT`] or [`TTL_MULTIHOP`].
    pub ttl: u8,
    /// How long one connection attempt may take.
    pub connect_timeout: Duration,
    /// The AS we speak as: `localASN` when set, else `myASN`.
    pub local_asn: u32,
    /// The peer's ASN, or which kind of ASN it must announce.
    pub remote_as: PeerAsn,
    /// Our BGP identifier towards this peer.
    pub router_id: Ipv4Addr,
    /// Proposed hold time in seconds (0: no keepalives).
    pub hold_time: u16,
    /// Interval between KEEPALIVEs.
    pub keepalive: Duration,
    /// Pause between connection attempts.
    pub connect_retry: Duration,
    /// Longest pause between attempts after repeated failures.
    pub max_backoff: Duration,
    /// RFC 4724 restart time in seconds, when graceful restart is enabled.
    pub graceful_restart: Option<u16>,
    /// Whether the session carries IPv4 unicast routes.
    pub ipv4: bool,
    /// Whether the session carries IPv6 unicast routes.
    pub ipv6: bool,
}

/// The hold time as the OPEN message carries it. The one place the 16-bit
/// limit is defined: configuration validation reports what this refuses.
pub fn hold_time_secs(hold: Duration) -> Option<u16> {
    u16::try_from(hold.as_secs()).ok()
}

/// The TCP MD5 key of a session with `peer`: the plain password, or the
/// password of the Secret it names. `Ok(None)` without a password.
pub fn md5_key(peer: &BgpPeer, secrets: &Secrets) -> Result<Option<Vec<u8>>, PeerError> {
    let key = match &peer.password {
        None => return Ok(None),
        Some(Password::Plain(p)) => p.as_bytes().to_vec(),
        Some(Password::Secret(s)) => secrets.get(s).map(<[u8]>::to_vec).ok_or_else(|| PeerError::MissingSecret {
            peer: peer.name.clone(),
            namespace: namespace_of(s).to_string(),
            name: s.name.clone(),
        })?,
    };
    if key.len() > MD5_MAX_KEY_LEN {
        return Err(PeerError::KeyTooLong { peer: peer.name.clone(), len: key.len() });
    }
    Ok(Some(key))
}

/// The session with `peer`. `router_id` is used unless the peer sets its
/// own `routerID` (see [`default_router_id`]).
pub fn peer_session(peer: &BgpPeer, router_id: Ipv4Addr, secrets: &Secrets) -> Result<PeerSession, PeerError> {
    let address = peer.address.ok_or_else(|| PeerError::NoAddress { peer: peer.name.clone() })?;
    let hold_time = hold_time_secs(peer.hold_time)
        .ok_or_else(|| PeerError::HoldTime { peer: peer.name.clone(), hold: peer.hold_time })?;
    if let Some(source) = peer.source_address
        && source.is_ipv4() != address.is_ipv4()
    {
        return Err(PeerError::SourceFamily { peer: peer.name.clone(), local: source, remote: address });
    }
    let md5_key = md5_key(peer, secrets)?;
    // RFC 4271 eBGP peers are directly connected unless told otherwise;
    // iBGP and multi-hop eBGP sessions cross routers.
    let ttl = if peer.is_ibgp() || peer.ebgp_multihop { TTL_MULTIHOP } else { TTL_DIRECT };
    Ok(PeerSession {
        name: peer.name.clone(),
        remote: SocketAddr::new(address, peer.port),
        source: peer.source_address,
        bind_device: peer.vrf.clone().filter(|v| !v.is_empty()).or_else(|| peer.interface.clone()),
        md5_key,
        ttl,
        connect_timeout: peer.connect_time.unwrap_or(DEFAULT_CONNECT_TIMEOUT).max(MIN_CONNECT_TIMEOUT),
        local_asn: peer.session_asn(),
        remote_as: peer.peer_asn,
        router_id: peer.router_id.unwrap_or(router_id),
        hold_time,
        keepalive: peer.keepalive_time,
        connect_retry: peer.connect_time.unwrap_or(DEFAULT_CONNECT_RETRY).max(MIN_CONNECT_RETRY),
        max_backoff: MAX_BACKOFF,
        graceful_restart: peer.graceful_restart.then_some(GRACEFUL_RESTART_TIME),
        ipv4: peer_carries(peer, Family::V4),
        ipv6: peer_carries(peer, Family::V6),
    })
}

/// The sessions of `node`: one result per peer whose `nodeSelectors` match
/// it, in configuration order. `default_router_id` gives the identifier for
/// a peer without `routerID`; callers keep what it returns per peer (see
/// [`default_router_id`]).
pub fn node_sessions(
    config: &Config,
    node: &Node,
    secrets: &Secrets,
    mut default_router_id: impl FnMut(&BgpPeer) -> Ipv4Addr,
) -> Vec<Result<PeerSession, PeerError>> {
    peers_of(config, node).map(|peer| peer_session(peer, default_router_id(peer), secrets)).collect()
}

/// The first address usable as a router ID among `addresses`.
fn first_ipv4(addresses: &[IpAddr]) -> Option<Ipv4Addr> {
    addresses.iter().find_map(|a| match a {
        IpAddr::V4(v4) if !v4.is_loopback() && !v4.is_unspecified() => Some(*v4),
        _ => None,
    })
}

/// Where the driver should probe for the local address the kernel would
/// use towards the peer (a connected UDP socket sends nothing but tells),
/// or `None` when [`default_router_id`] does not need it: the peer has no
/// IPv4 address, or an earlier rule decides.
pub fn router_id_probe(peer: &BgpPeer, node_addresses: &[IpAddr]) -> Option<SocketAddr> {
    if matches!(peer.source_address, Some(IpAddr::V4(_))) || first_ipv4(node_addresses).is_some() {
        return None;
    }
    match peer.address {
        Some(address @ IpAddr::V4(_)) => Some(SocketAddr::new(address, peer.port)),
        _ => None,
    }
}

/// The router ID of a session with `peer` when it sets none: its
/// `sourceAddress` if IPv4; else the node's first IPv4 address that is
/// neither loopback nor unspecified; else `probed`, the local address of the
/// route towards the peer (see [`router_id_probe`]); else one derived from
/// the node's and the peer's names, so that every session has an identifier
/// even on an IPv6-only host (set `routerID` there), distinct per node.
///
/// Callers keep the result per peer: a route lookup can change between
/// reloads, and a new identifier would restart the session.
pub fn default_router_id(peer: &BgpPeer, node: &str, node_addresses: &[IpAddr], probed: Option<Ipv4Addr>) -> Ipv4Addr {
    if let Some(IpAddr::V4(a)) = peer.source_address {
        return a;
    }
    if let Some(a) = first_ipv4(node_addresses) {
        return a;
    }
    if let Some(local) = probed.filter(|a| !a.is_unspecified())
        && matches!(peer.address, Some(IpAddr::V4(_)))
    {
        return local;
    }
    // FNV-1a: stable across releases and platforms, so a restart keeps the
    // identifier and the session.
    let hash = node
        .bytes()
        .chain([0])
        .chain(peer.name.bytes())
        .fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    Ipv4Addr::from(hash | 1)
}

/// The router ID of a session with `peer`: its `routerID`, else
/// [`default_router_id`]. Not to be cached across configuration changes
/// (the `routerID` may change); cache [`default_router_id`] instead.
pub fn router_id(peer: &BgpPeer, node: &str, node_addresses: &[IpAddr], probed: Option<Ipv4Addr>) -> Ipv4Addr {
    peer.router_id.unwrap_or_else(|| default_router_id(peer, node, node_addresses, probed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, SecretReference};

    fn peer(spec: &str) -> BgpPeer {
        let yaml = format!("apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: p}}\nspec: {spec}\n");
        match config::load(&[("p.yaml", &yaml)]) {
            Ok(l) => l.config.peers[0].clone(),
            Err(e) => panic!("{e:?}"),
        }
    }

    const EBGP: &str = "{myASN: 64500, peerASN: 64501, peerAddress: 192.0.2.1}";
    const ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

    fn session(p: &BgpPeer) -> PeerSession {
        match peer_session(p, ID, &Secrets::new()) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn local_asn_is_the_sessions_as_and_decides_ibgp() {
        let s = session(&peer("{myASN: 64500, localASN: 64501, peerASN: 64501, peerAddress: 192.0.2.1}"));
        assert_eq!(s.local_asn, 64501);
        assert_eq!(s.ttl, TTL_MULTIHOP, "iBGP between localASN and the peer's AS");
        let s = session(&peer("{myASN: 64500, localASN: 64502, peerASN: 64500, peerAddress: 192.0.2.1}"));
        assert_eq!((s.local_asn, s.ttl), (64502, TTL_DIRECT), "eBGP although myASN is the peer's");
        assert_eq!(session(&peer(EBGP)).local_asn, 64500, "myASN without localASN");
    }

    #[test]
    fn defaults_of_a_direct_ebgp_peer() {
        let s = session(&peer(EBGP));
        assert_eq!(s.remote, "192.0.2.1:179".parse().expect("socket address"));
        assert_eq!(s.ttl, TTL_DIRECT);
        assert_eq!(s.hold_time, 90);
        assert_eq!(s.keepalive, Duration::from_secs(30));
        assert_eq!(s.connect_retry, Duration::from_secs(2));
        assert_eq!(s.connect_timeout, Duration::from_secs(5));
        assert_eq!(s.max_backoff, Duration::from_secs(30));
        assert_eq!(s.graceful_restart, None);
        assert_eq!((s.ipv4, s.ipv6), (true, false));
        assert_eq!((s.local_asn, s.remote_as), (64500, PeerAsn::Fixed(64501)));
        assert_eq!(s.router_id, ID);
        assert_eq!(s.bind_device, None);
        assert_eq!(s.md5_key, None);
    }

    #[test]
    fn ttl_binding_timers_and_families() {
        let mut p = peer(
            "{myASN: 64500, peerASN: 64500, peerAddress: '2001:db8::1', vrf: red, dualStackAddressFamily: true, enableGracefulRestart: true, routerID: 10.9.9.9, sourceAddress: '2001:db8::2', peerPort: 1179}",
        );
        // Below what validation lets through: the floors still hold.
        p.connect_time = Some(Duration::from_millis(50));
        let s = session(&p);
        assert_eq!(s.ttl, TTL_MULTIHOP, "iBGP");
        assert_eq!(s.bind_device.as_deref(), Some("red"));
        assert_eq!(s.connect_retry, Duration::from_millis(100), "at least 100 ms");
        assert_eq!(s.connect_timeout, Duration::from_secs(1), "at least 1 s");
        assert_eq!(s.graceful_restart, Some(120));
        assert_eq!((s.ipv4, s.ipv6), (true, true));
        assert_eq!(s.router_id, Ipv4Addr::new(10, 9, 9, 9), "routerID wins");
        assert_eq!(s.source, Some("2001:db8::2".parse().expect("IP")));
        assert_eq!(s.remote.port(), 1179);
        assert_eq!(s.remote_as, PeerAsn::Fixed(64500));

        let s = session(&peer(
            "{myASN: 64500, peerASN: 64501, peerAddress: 192.0.2.1, ebgpMultiHop: true, connectTime: 7s}",
        ));
        assert_eq!(s.ttl, TTL_MULTIHOP, "multi-hop eBGP");
        assert_eq!((s.connect_retry, s.connect_timeout), (Duration::from_secs(7), Duration::from_secs(7)));

        let mut p = peer(EBGP);
        p.interface = Some("eth1".into());
        assert_eq!(session(&p).bind_device.as_deref(), Some("eth1"));
        p.vrf = Some(String::new());
        assert_eq!(session(&p).bind_device.as_deref(), Some("eth1"), "an empty VRF is no VRF");
        p.vrf = Some("blue".into());
        assert_eq!(session(&p).bind_device.as_deref(), Some("blue"), "the VRF wins over the interface");
    }

    #[test]
    fn passwords_and_their_limits() {
        let mut p = peer(EBGP);
        p.password = Some(Password::Plain("secret".into()));
        assert_eq!(session(&p).md5_key.as_deref(), Some(&b"secret"[..]));
        p.password = Some(Password::Plain("k".repeat(MD5_MAX_KEY_LEN)));
        assert_eq!(session(&p).md5_key.map(|k| k.len()), Some(80), "80 bytes is the limit, not beyond");
        p.password = Some(Password::Plain("k".repeat(MD5_MAX_KEY_LEN + 1)));
        let e = peer_session(&p, ID, &Secrets::new()).expect_err("81 bytes");
        assert_eq!(e, PeerError::KeyTooLong { peer: "p".into(), len: 81 });
        assert!(e.is_invalid_config());

        let reference = SecretReference { name: "bgp".into(), namespace: None };
        p.password = Some(Password::Secret(reference));
        let e = peer_session(&p, ID, &Secrets::new()).expect_err("no Secret");
        assert_eq!(e.to_string(), "peer p: passwordSecret metallb-system/bgp not found");
        assert!(e.is_invalid_config());
        let mut secrets = Secrets::new();
        secrets.insert("metallb-system", "bgp", b"from-secret".to_vec());
        let s = peer_session(&p, ID, &secrets).expect("resolved");
        assert_eq!(s.md5_key.as_deref(), Some(&b"from-secret"[..]));
        secrets.insert("metallb-system", "bgp", vec![b'x'; 100]);
        assert_eq!(
            peer_session(&p, ID, &secrets),
            Err(PeerError::KeyTooLong { peer: "p".into(), len: 100 }),
            "a Secret's password has the same limit"
        );
    }

    #[test]
    fn unsupported_and_invalid_peers() {
        let mut p = peer(EBGP);
        p.address = None;
        p.interface = Some("eth0".into());
        let e = peer_session(&p, ID, &Secrets::new()).expect_err("unnumbered");
        assert_eq!(e, PeerError::NoAddress { peer: "p".into() });
        assert!(!e.is_invalid_config(), "skipped with a warning, not a refused configuration");
        let mut p = peer(EBGP);
        p.hold_time = Duration::from_secs(65536);
        assert!(matches!(peer_session(&p, ID, &Secrets::new()), Err(PeerError::HoldTime { .. })));
        p.hold_time = MAX_HOLD_TIME;
        assert_eq!(session(&p).hold_time, u16::MAX);
        p.source_address = Some("2001:db8::2".parse().expect("IP"));
        let e = peer_session(&p, ID, &Secrets::new()).expect_err("IPv6 source for an IPv4 peer");
        assert!(matches!(e, PeerError::SourceFamily { .. }) && e.is_invalid_config(), "{e:?}");
    }

    #[test]
    fn router_id_choice() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("IP");
        let mut p = peer(EBGP);
        let node = [ip("::1"), ip("127.0.0.1"), ip("2001:db8::7"), ip("192.0.2.7"), ip("192.0.2.8")];
        let probed = Some(Ipv4Addr::new(198, 51, 100, 9));
        assert_eq!(default_router_id(&p, "n1", &node, probed), Ipv4Addr::new(192, 0, 2, 7), "first non-loopback IPv4");
        assert_eq!(router_id_probe(&p, &node), None, "nothing to probe");
        assert_eq!(router_id_probe(&p, &[ip("2001:db8::7")]), Some("192.0.2.1:179".parse().expect("address")));
        assert_eq!(default_router_id(&p, "n1", &[ip("2001:db8::7")], probed), Ipv4Addr::new(198, 51, 100, 9));
        assert_eq!(
            default_router_id(&p, "n1", &[], Some(Ipv4Addr::UNSPECIFIED)),
            default_router_id(&p, "n1", &[], None),
            "an unspecified probe result is no result"
        );
        // The hash of today's speakers, so that no running session changes its identifier.
        assert_eq!(default_router_id(&p, "n1", &[], None), Ipv4Addr::new(140, 239, 236, 81));
        assert_ne!(default_router_id(&p, "n2", &[], None), default_router_id(&p, "n1", &[], None));
        p.source_address = Some(ip("192.0.2.99"));
        assert_eq!(default_router_id(&p, "n1", &node, probed), Ipv4Addr::new(192, 0, 2, 99), "IPv4 sourceAddress");
        assert_eq!(router_id_probe(&p, &[]), None);
        p.router_id = Some(Ipv4Addr::new(10, 1, 1, 1));
        assert_eq!(router_id(&p, "n1", &node, probed), Ipv4Addr::new(10, 1, 1, 1), "routerID first");
        p.router_id = None;
        p.source_address = Some(ip("2001:db8::2"));
        assert_eq!(router_id(&p, "n1", &node, probed), Ipv4Addr::new(192, 0, 2, 7), "IPv6 sourceAddress is skipped");
    }

    #[test]
    fn sessions_of_a_node_follow_node_selectors() {
        let yaml = "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: a}\nspec: {myASN: 1, peerASN: 2, peerAddress: 192.0.2.1}\n---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: b}\nspec: {myASN: 1, peerASN: 2, peerAddress: 192.0.2.2, nodeSelectors: [{matchLabels: {rack: x}}]}\n---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: c}\nspec: {myASN: 1, peerASN: 2, interface: eth0}\n";
        let c = match config::load(&[("c.yaml", yaml)]) {
            Ok(l) => l.config,
            Err(e) => panic!("{e:?}"),
        };
        let sessions = node_sessions(&c, &Node::new("n1"), &Secrets::new(), |_| ID);
        let names: Vec<&str> = sessions.iter().map(|r| r.as_ref().map_or_else(PeerError::peer, |s| &s.name)).collect();
        assert_eq!(names, ["a", "c"]);
        assert!(matches!(sessions[1], Err(PeerError::NoAddress { .. })));
    }
}
