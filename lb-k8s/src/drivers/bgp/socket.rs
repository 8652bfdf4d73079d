//! TCP plumbing for BGP sessions (RFC 4271 runs over TCP port 179).
//!
//! This module only builds sockets; it never reads or writes BGP messages.
//! What a BGP speaker needs from its sockets beyond a plain
//! `TcpStream::connect`:
//!
//! - **TCP MD5 signatures** (RFC 2385): the `password` of BIRD, FRR and
//!   GoBGP. The kernel signs every segment for a peer with a key set through
//!   `setsockopt(IPPROTO_TCP, TCP_MD5SIG)`. Neither socket2 nor nix wraps the
//!   option, so [`crate::sys`] sets it. The key must be in place *before* the SYN
//!   leaves (active side) or arrives (passive side, [`set_md5_key`] on the
//!   listener): a segment with a missing, unexpected or wrong signature
//!   is dropped silently, so a key mismatch looks like an unreachable peer
//!   and ends in [`SocketError::Timeout`], never in a refusal.
//! - **TTL** ([`ConnectOptions::ttl`], [`set_ttl`]): RFC 4271 eBGP peers are
//!   directly connected unless configured as multihop, and routers send
//!   such sessions with TTL 1 so that the packets cannot leave the link;
//!   multihop eBGP and iBGP use 255 (the value RFC 5082, GTSM, builds on).
//!   The caller decides; this module applies the value.
//! - **Source address and interface** ([`ConnectOptions::source`],
//!   [`ConnectOptions::bind_device`]): the peer checks that the session comes
//!   from the neighbor address it was configured with.
//! - **TCP_NODELAY**: BGP messages are small and KEEPALIVEs are timed;
//!   Nagle would hold them back behind unacknowledged data.
//! - **DSCP CS6** (`IP_TOS` / `IPV6_TCLASS` = 0xC0, internetwork control),
//!   as routers mark their BGP traffic; best effort.
//!
//! # Address families
//!
//! [`listen`] on a specific IPv6 address sets `IPV6_V6ONLY`; on `[::]` it
//! takes both families. Such a socket sees IPv4 peers as v4-mapped
//! addresses (`::ffff:a.b.c.d`); [`set_md5_key`] and [`set_ttl`] handle
//! that case.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// The well-known BGP port (RFC 4271, section 8).
pub const BGP_PORT: u16 = 179;

/// Longest key the kernel accepts (`TCP_MD5SIG_MAXKEYLEN`).
pub const MD5_MAX_KEY_LEN: usize = 80;

/// DSCP CS6 ("internetwork control", RFC 4594) in the TOS / traffic class
/// byte: what routers mark BGP with.
const TOS_INTERNETWORK_CONTROL: u32 = 0xC0;

/// Pending connections a BGP listener keeps; peers are few.
const LISTEN_BACKLOG: i32 = 64;

/// What failed while building or configuring a BGP socket.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SocketError {
    /// The TCP MD5 key is longer than the kernel's 80-byte limit.
    #[error("TCP MD5 key is {len} bytes long, the kernel accepts at most {MD5_MAX_KEY_LEN}")]
    Md5KeyTooLong {
        /// Length of the rejected key.
        len: usize,
    },
    /// An address of one family was given for a socket of the other
    /// (for example an IPv6 source for an IPv4 peer).
    #[error("address {addr} does not match the socket's address family")]
    FamilyMismatch {
        /// The offending address.
        addr: IpAddr,
    },
    /// A system call failed; `op` names it (`"setsockopt(TCP_MD5SIG)"`,
    /// `"bind"`, `"connect"`, …).
    #[error("{op} failed")]
    Io {
        /// The system call or socket option that failed.
        op: &'static str,
        /// The error the kernel returned.
        #[source]
        source: io::Error,
    },
    /// The connection did not complete in time. With TCP MD5 this is also
    /// what a key mismatch looks like: the peer drops the SYN silently.
    #[error("connection to {remote} not established within {after:?}")]
    Timeout {
        /// The peer that did not answer.
        remote: SocketAddr,
        /// The timeout that expired.
        after: Duration,
    },
}

impl SocketError {
    fn io(op: &'static str) -> impl FnOnce(io::Error) -> Self {
        move |source| Self::Io { op, source }
    }
}

/// How to open an active BGP connection.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// The peer, usually on port [`BGP_PORT`]. A v4-mapped IPv6 address is
    /// treated as the IPv4 address it carries.
    pub remote: SocketAddr,
    /// Local address to connect from (port chosen by the kernel); must be
    /// of the same family as `remote`.
    pub source: Option<IpAddr>,
    /// Interface to bind to (`SO_BINDTODEVICE`, needs `CAP_NET_RAW`), for
    /// peers reached over a specific link, such as IPv6 link-local ones.
    pub bind_device: Option<String>,
    /// TCP MD5 key (RFC 2385), at most [`MD5_MAX_KEY_LEN`] bytes.
    pub md5_key: Option<Vec<u8>>,
    /// IP TTL / IPv6 hop limit of outgoing packets: 1 for a directly
    /// connected eBGP peer, 255 for multihop eBGP and iBGP. 0 is refused by
    /// the kernel.
    pub ttl: u8,
    /// How long to wait for the handshake.
    pub timeout: Duration,
}

impl ConnectOptions {
    /// Options for a directly connected eBGP peer: no source address, no
    /// key, TTL 1, 10 s to connect.
    pub fn new(remote: SocketAddr) -> Self {
        Self { remote, source: None, bind_device: None, md5_key: None, ttl: 1, timeout: Duration::from_secs(10) }
    }
}

/// Never prints the key.
impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("remote", &self.remote)
            .field("source", &self.source)
            .field("bind_device", &self.bind_device)
            .field("md5_key", &self.md5_key.as_ref().map(|_| "<redacted>"))
            .field("ttl", &self.ttl)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Opens an active BGP connection as `opts` says.
///
/// The socket is configured before the SYN leaves: interface, MD5 key for
/// the remote address, TTL, TOS, `TCP_NODELAY`, source address. Then the
/// handshake runs under `opts.timeout`.
///
/// # Errors
///
/// [`SocketError::Md5KeyTooLong`] and [`SocketError::FamilyMismatch`] before
/// any system call; [`SocketError::Io`] naming the call that failed
/// (`"connect"` for a refusal or an unreachable network);
/// [`SocketError::Timeout`] when the peer does not answer, which includes a
/// TCP MD5 key mismatch.
pub async fn connect(opts: &ConnectOptions) -> Result<TcpStream, SocketError> {
    let remote = SocketAddr::new(opts.remote.ip().to_canonical(), opts.remote.port());
    if let Some(key) = &opts.md5_key {
        check_key(key)?;
    }
    if let Some(source) = opts.source
        && source.is_ipv4() != remote.is_ipv4()
    {
        return Err(SocketError::FamilyMismatch { addr: source });
    }

    let socket = Socket::new(Domain::for_address(remote), Type::STREAM, Some(Protocol::TCP))
        .map_err(SocketError::io("socket"))?;
    if let Some(device) = &opts.bind_device {
        socket.bind_device(Some(device.as_bytes())).map_err(SocketError::io("setsockopt(SO_BINDTODEVICE)"))?;
    }
    if let Some(key) = &opts.md5_key {
        set_md5_key(&socket, remote.ip(), Some(key))?;
    }
    apply_ttl(SockRef::from(&socket), remote.is_ipv6(), false, opts.ttl)?;
    apply_tos(SockRef::from(&socket), remote.is_ipv6(), false);
    socket.set_tcp_nodelay(true).map_err(SocketError::io("setsockopt(TCP_NODELAY)"))?;
    if let Some(source) = opts.source {
        socket.bind(&SockAddr::from(SocketAddr::new(source, 0))).map_err(SocketError::io("bind"))?;
    }
    socket.set_nonblocking(true).map_err(SocketError::io("fcntl(O_NONBLOCK)"))?;

    let socket = TcpSocket::from_std_stream(std::net::TcpStream::from(socket));
    match tokio::time::timeout(opts.timeout, socket.connect(remote)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(source)) => Err(SocketError::Io { op: "connect", source }),
        Err(_elapsed) => Err(SocketError::Timeout { remote, after: opts.timeout }),
    }
}

/// Opens a listening socket for passive BGP sessions on `addr`
/// (`[::]:179` or `0.0.0.0:179` usually).
///
/// Sets `SO_REUSEADDR` (a restarted speaker rebinds while old sessions sit
/// in TIME_WAIT), `IPV6_V6ONLY` for specific IPv6 addresses (`[::]` takes
/// both families, see the module doc), `TCP_NODELAY` and the CS6 TOS, which
/// accepted connections inherit. Add peers' MD5 keys with [`set_md5_key`]
/// and set each accepted connection's TTL with [`set_ttl`].
///
/// # Errors
///
/// [`SocketError::Io`] naming the call that failed (`"bind"` when the port
/// is taken or, for port 179, without `CAP_NET_BIND_SERVICE`).
///
/// # Panics
///
/// Outside a tokio runtime with I/O enabled (from
/// [`TcpListener::from_std`]).
pub fn listen(addr: SocketAddr) -> Result<TcpListener, SocketError> {
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(SocketError::io("socket"))?;
    socket.set_reuse_address(true).map_err(SocketError::io("setsockopt(SO_REUSEADDR)"))?;
    if addr.is_ipv6() {
        // The unspecified address (`[::]`) takes both families, as users
        // expect of it; a specific IPv6 address can only take IPv6.
        let dual_stack = addr.ip().is_unspecified();
        socket.set_only_v6(!dual_stack).map_err(SocketError::io("setsockopt(IPV6_V6ONLY)"))?;
    }
    apply_tos(SockRef::from(&socket), addr.is_ipv6(), false);
    socket.set_tcp_nodelay(true).map_err(SocketError::io("setsockopt(TCP_NODELAY)"))?;
    socket.bind(&SockAddr::from(addr)).map_err(SocketError::io("bind"))?;
    socket.listen(LISTEN_BACKLOG).map_err(SocketError::io("listen"))?;
    socket.set_nonblocking(true).map_err(SocketError::io("fcntl(O_NONBLOCK)"))?;
    TcpListener::from_std(std::net::TcpListener::from(socket)).map_err(SocketError::io("register with tokio"))
}

/// Adds (`Some(key)`) or removes (`None`) the TCP MD5 key (RFC 2385) for
/// segments to and from `peer` on `socket`.
///
/// On a listener this is how passive sessions get their password: the
/// kernel checks the SYN against the key for its source address and copies
/// the key into the accepted socket. On an active socket it must be called
/// before `connect`. An IPv4 peer on an IPv6 socket is given as the
/// v4-mapped address, as the kernel expects; removing a key that is not
/// there succeeds.
///
/// # Errors
///
/// [`SocketError::Md5KeyTooLong`]; [`SocketError::FamilyMismatch`] for an
/// IPv6 peer on an IPv4 socket; [`SocketError::Io`] for
/// `setsockopt(TCP_MD5SIG)` (for example an empty key, which the kernel
/// takes as a removal, on a peer with no key) or for reading the socket's
/// family.
pub fn set_md5_key<S: AsFd>(socket: &S, peer: IpAddr, key: Option<&[u8]>) -> Result<(), SocketError> {
    let key = key.unwrap_or_default();
    check_key(key)?;
    let sock = SockRef::from(socket);
    let domain = sock.domain().map_err(SocketError::io("getsockopt(SO_DOMAIN)"))?;
    let addr = match (peer.to_canonical(), domain) {
        (IpAddr::V4(v4), Domain::IPV6) => IpAddr::V6(v4.to_ipv6_mapped()),
        (IpAddr::V6(_), Domain::IPV4) => return Err(SocketError::FamilyMismatch { addr: peer }),
        (canonical, _) => canonical,
    };
    match crate::sys::set_tcp_md5sig(socket, SocketAddr::new(addr, 0), key) {
        // Deleting a key that is not there: already in the wanted state.
        Err(e) if key.is_empty() && e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        result => result.map_err(SocketError::io("setsockopt(TCP_MD5SIG)")),
    }
}

/// Sets the TTL (IPv4) or hop limit (IPv6) of an established connection,
/// typically one just accepted: 1 for a directly connected eBGP peer, 255
/// for multihop eBGP and iBGP. For an IPv4 peer on an IPv6 socket both are
/// set, since the kernel sends such packets with the IPv4 TTL.
///
/// # Errors
///
/// [`SocketError::Io`] for `setsockopt(IP_TTL)` / `setsockopt(IPV6_UNICAST_HOPS)`
/// (0 is refused) or for reading the socket's addresses.
pub fn set_ttl(stream: &TcpStream, ttl: u8) -> Result<(), SocketError> {
    let (v6, mapped) = families(stream)?;
    apply_ttl(SockRef::from(stream), v6, mapped, ttl)
}

/// Turns Nagle's algorithm off (`TCP_NODELAY`) so KEEPALIVEs and UPDATEs
/// leave at once. Connections from [`connect`] and [`listen`] already have
/// it; this is for streams from elsewhere.
///
/// # Errors
///
/// [`SocketError::Io`] for `setsockopt(TCP_NODELAY)`.
pub fn set_nodelay(stream: &TcpStream) -> Result<(), SocketError> {
    stream.set_nodelay(true).map_err(SocketError::io("setsockopt(TCP_NODELAY)"))
}

fn check_key(key: &[u8]) -> Result<(), SocketError> {
    if key.len() > MD5_MAX_KEY_LEN {
        return Err(SocketError::Md5KeyTooLong { len: key.len() });
    }
    Ok(())
}

/// Whether the stream's socket is IPv6, and whether its peer is an IPv4
/// address seen through it (v4-mapped).
fn families(stream: &TcpStream) -> Result<(bool, bool), SocketError> {
    let local = stream.local_addr().map_err(SocketError::io("getsockname"))?;
    let v6 = local.is_ipv6();
    let mapped = v6 && stream.peer_addr().map_err(SocketError::io("getpeername"))?.ip().to_canonical().is_ipv4();
    Ok((v6, mapped))
}

/// `v6`: the socket is IPv6; `mapped`: it carries IPv4 packets (v4-mapped
/// peer), which use `IP_TTL`.
fn apply_ttl(sock: SockRef<'_>, v6: bool, mapped: bool, ttl: u8) -> Result<(), SocketError> {
    if !v6 || mapped {
        sock.set_ttl_v4(u32::from(ttl)).map_err(SocketError::io("setsockopt(IP_TTL)"))?;
    }
    if v6 {
        sock.set_unicast_hops_v6(u32::from(ttl)).map_err(SocketError::io("setsockopt(IPV6_UNICAST_HOPS)"))?;
    }
    Ok(())
}

/// Marks the socket's traffic CS6; a failure only costs the marking.
fn apply_tos(sock: SockRef<'_>, v6: bool, mapped: bool) {
    if (!v6 || mapped)
        && let Err(error) = sock.set_tos_v4(TOS_INTERNETWORK_CONTROL)
    {
        tracing::debug!(%error, "setsockopt(IP_TOS) failed; BGP traffic left unmarked");
    }
    if v6 && let Err(error) = sock.set_tclass_v6(TOS_INTERNETWORK_CONTROL) {
        tracing::debug!(%error, "setsockopt(IPV6_TCLASS) failed; BGP traffic left unmarked");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::net::{Ipv4Addr, Ipv6Addr};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const KEY: &[u8] = b"bgp-secret";
    /// Long enough for a handshake on loopback, short enough for a test
    /// waiting for one that never comes.
    const SHORT: Duration = Duration::from_secs(1);

    const LOCALHOST_V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const LOCALHOST_V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

    fn options(remote: SocketAddr, ttl: u8, key: Option<&[u8]>) -> ConnectOptions {
        ConnectOptions { ttl, timeout: SHORT, md5_key: key.map(<[u8]>::to_vec), ..ConnectOptions::new(remote) }
    }

    /// A listener on `ip`, port chosen by the kernel, or `None` (with a
    /// message) when the host has no such address, as some containers lack
    /// `::1`.
    fn listener_on(ip: IpAddr) -> Option<TcpListener> {
        match listen(SocketAddr::new(ip, 0)) {
            Ok(listener) => Some(listener),
            Err(error) => {
                eprintln!("skipped: cannot listen on {ip}: {error:?}");
                None
            }
        }
    }

    /// Connects with `opts` while accepting on `listener`.
    async fn connect_and_accept(
        listener: &TcpListener,
        opts: &ConnectOptions,
    ) -> Result<(TcpStream, TcpStream, SocketAddr), SocketError> {
        let (connected, accepted) =
            tokio::join!(connect(opts), async { tokio::time::timeout(opts.timeout, listener.accept()).await });
        let client = connected?;
        let (server, peer) = accepted.unwrap().unwrap();
        Ok((client, server, peer))
    }

    async fn assert_bytes_flow(client: &mut TcpStream, server: &mut TcpStream) {
        client.write_all(b"OPEN").await.unwrap();
        let mut buf = [0; 4];
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"OPEN");
        server.write_all(b"KEEP").await.unwrap();
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"KEEP");
    }

    #[tokio::test]
    async fn connects_v4_without_key_with_ttl_nodelay_and_tos() {
        let listener = listener_on(LOCALHOST_V4).unwrap();
        let opts = options(listener.local_addr().unwrap(), 1, None);
        let (mut client, mut server, _) = connect_and_accept(&listener, &opts).await.unwrap();

        let sock = SockRef::from(&client);
        assert_eq!(sock.ttl_v4().unwrap(), 1);
        assert!(sock.tcp_nodelay().unwrap());
        assert_eq!(sock.tos_v4().unwrap(), 0xC0);
        // The accepted socket inherits the listener's options.
        let accepted = SockRef::from(&server);
        assert!(accepted.tcp_nodelay().unwrap());
        assert_eq!(accepted.tos_v4().unwrap(), 0xC0);

        set_ttl(&server, 255).unwrap();
        assert_eq!(accepted.ttl_v4().unwrap(), 255);
        set_nodelay(&server).unwrap();
        assert_bytes_flow(&mut client, &mut server).await;
    }

    #[tokio::test]
    async fn connects_v6_without_key_with_hop_limit_and_tclass() {
        let Some(listener) = listener_on(LOCALHOST_V6) else {
            return;
        };
        let opts = options(listener.local_addr().unwrap(), 255, None);
        let (mut client, mut server, peer) = connect_and_accept(&listener, &opts).await.unwrap();

        assert_eq!(peer.ip(), LOCALHOST_V6);
        let sock = SockRef::from(&client);
        assert_eq!(sock.unicast_hops_v6().unwrap(), 255);
        assert!(sock.tcp_nodelay().unwrap());
        assert_eq!(sock.tclass_v6().unwrap(), 0xC0);
        assert!(SockRef::from(&listener).only_v6().unwrap());

        set_ttl(&server, 1).unwrap();
        assert_eq!(SockRef::from(&server).unicast_hops_v6().unwrap(), 1);
        assert_bytes_flow(&mut client, &mut server).await;
    }

    #[tokio::test]
    async fn connects_v4_with_the_same_md5_key_on_both_sides() {
        let listener = listener_on(LOCALHOST_V4).unwrap();
        set_md5_key(&listener, LOCALHOST_V4, Some(KEY)).unwrap();
        let opts = options(listener.local_addr().unwrap(), 1, Some(KEY));
        let (mut client, mut server, _) = connect_and_accept(&listener, &opts).await.unwrap();
        assert_bytes_flow(&mut client, &mut server).await;
    }

    #[tokio::test]
    async fn connects_v6_with_the_same_md5_key_on_both_sides() {
        let Some(listener) = listener_on(LOCALHOST_V6) else {
            return;
        };
        set_md5_key(&listener, LOCALHOST_V6, Some(KEY)).unwrap();
        let opts = options(listener.local_addr().unwrap(), 255, Some(KEY));
        let (mut client, mut server, _) = connect_and_accept(&listener, &opts).await.unwrap();
        assert_bytes_flow(&mut client, &mut server).await;
    }

    #[tokio::test]
    async fn md5_key_on_the_connecting_side_only_times_out() {
        let listener = listener_on(LOCALHOST_V4).unwrap();
        let opts = options(listener.local_addr().unwrap(), 1, Some(KEY));
        let error = connect(&opts).await.unwrap_err();
        assert!(matches!(error, SocketError::Timeout { after: SHORT, .. }), "{error:?}");
    }

    #[tokio::test]
    async fn md5_key_on_the_listening_side_only_times_out() {
        let listener = listener_on(LOCALHOST_V4).unwrap();
        set_md5_key(&listener, LOCALHOST_V4, Some(KEY)).unwrap();
        let opts = options(listener.local_addr().unwrap(), 1, None);
        let error = connect(&opts).await.unwrap_err();
        assert!(matches!(error, SocketError::Timeout { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn mismatched_md5_keys_time_out() {
        let listener = listener_on(LOCALHOST_V4).unwrap();
        set_md5_key(&listener, LOCALHOST_V4, Some(b"other-secret")).unwrap();
        let opts = options(listener.local_addr().unwrap(), 1, Some(KEY));
        let error = connect(&opts).await.unwrap_err();
        assert!(matches!(error, SocketError::Timeout { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn removed_md5_key_no_longer_applies() {
        let listener = listener_on(LOCALHOST_V4).unwrap();
        set_md5_key(&listener, LOCALHOST_V4, Some(KEY)).unwrap();
        set_md5_key(&listener, LOCALHOST_V4, None).unwrap();
        // Removing again is not an error.
        set_md5_key(&listener, LOCALHOST_V4, None).unwrap();
        let opts = options(listener.local_addr().unwrap(), 1, None);
        let (mut client, mut server, _) = connect_and_accept(&listener, &opts).await.unwrap();
        assert_bytes_flow(&mut client, &mut server).await;
    }

    #[tokio::test]
    async fn md5_key_longer_than_80_bytes_is_refused() {
        let key = [b'k'; MD5_MAX_KEY_LEN + 1];
        let opts = options(SocketAddr::new(LOCALHOST_V4, BGP_PORT), 1, Some(&key));
        let error = connect(&opts).await.unwrap_err();
        assert!(matches!(error, SocketError::Md5KeyTooLong { len: 81 }), "{error:?}");

        let listener = listener_on(LOCALHOST_V4).unwrap();
        let error = set_md5_key(&listener, LOCALHOST_V4, Some(&key)).unwrap_err();
        assert!(matches!(error, SocketError::Md5KeyTooLong { len: 81 }), "{error:?}");
        // 80 bytes is the limit, not beyond it.
        set_md5_key(&listener, LOCALHOST_V4, Some(&key[..MD5_MAX_KEY_LEN])).unwrap();
    }

    #[tokio::test]
    async fn connects_from_the_source_address() {
        let listener = listen(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
        let opts = ConnectOptions { source: Some(source), ..options(SocketAddr::new(LOCALHOST_V4, port), 1, None) };
        let (client, _server, peer) = connect_and_accept(&listener, &opts).await.unwrap();
        assert_eq!(peer.ip(), source);
        assert_eq!(client.local_addr().unwrap().ip(), source);
    }

    #[tokio::test]
    async fn md5_key_is_per_peer_address() {
        // The listener knows a key for 127.0.0.2 only: a session from there
        // with the key comes up, one from 127.0.0.1 with it does not.
        let listener = listen(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
        set_md5_key(&listener, source, Some(KEY)).unwrap();
        let remote = SocketAddr::new(LOCALHOST_V4, port);

        let keyed = ConnectOptions { source: Some(source), ..options(remote, 1, Some(KEY)) };
        let (mut client, mut server, peer) = connect_and_accept(&listener, &keyed).await.unwrap();
        assert_eq!(peer.ip(), source);
        assert_bytes_flow(&mut client, &mut server).await;

        let error = connect(&options(remote, 1, Some(KEY))).await.unwrap_err();
        assert!(matches!(error, SocketError::Timeout { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn ipv4_peer_on_a_dual_stack_socket_uses_the_mapped_address() {
        let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP)).unwrap();
        socket.set_only_v6(false).unwrap();
        if let Err(error) = socket.bind(&SockAddr::from(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0))) {
            eprintln!("skipped: no IPv6: {error}");
            return;
        }
        socket.listen(8).unwrap();
        socket.set_nonblocking(true).unwrap();
        set_md5_key(&socket, LOCALHOST_V4, Some(KEY)).unwrap();
        let listener = TcpListener::from_std(socket.into()).unwrap();
        let port = listener.local_addr().unwrap().port();

        let opts = options(SocketAddr::new(LOCALHOST_V4, port), 1, Some(KEY));
        let (mut client, mut server, peer) = connect_and_accept(&listener, &opts).await.unwrap();
        assert_eq!(peer.ip(), IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped()));
        set_ttl(&server, 7).unwrap();
        assert_eq!(SockRef::from(&server).ttl_v4().unwrap(), 7);
        assert_bytes_flow(&mut client, &mut server).await;
    }

    #[tokio::test]
    async fn mixed_families_are_refused() {
        let opts =
            ConnectOptions { source: Some(LOCALHOST_V6), ..options(SocketAddr::new(LOCALHOST_V4, BGP_PORT), 1, None) };
        let error = connect(&opts).await.unwrap_err();
        assert!(matches!(error, SocketError::FamilyMismatch { addr } if addr == LOCALHOST_V6));

        let listener = listener_on(LOCALHOST_V4).unwrap();
        let error = set_md5_key(&listener, LOCALHOST_V6, Some(KEY)).unwrap_err();
        assert!(matches!(error, SocketError::FamilyMismatch { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn refused_connection_names_connect() {
        // Bind a port without listening on it: connecting is refused.
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
        socket.bind(&SockAddr::from(SocketAddr::new(LOCALHOST_V4, 0))).unwrap();
        let remote = socket.local_addr().unwrap().as_socket().unwrap();
        let error = connect(&options(remote, 1, None)).await.unwrap_err();
        assert!(
            matches!(&error, SocketError::Io { op: "connect", source }
                if source.kind() == io::ErrorKind::ConnectionRefused),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn ttl_zero_is_refused_by_the_kernel() {
        let opts = options(SocketAddr::new(LOCALHOST_V4, BGP_PORT), 0, None);
        let error = connect(&opts).await.unwrap_err();
        assert!(matches!(error, SocketError::Io { op: "setsockopt(IP_TTL)", .. }), "{error:?}");
    }

    #[test]
    fn debug_output_hides_the_key() {
        let opts = ConnectOptions {
            md5_key: Some(KEY.to_vec()),
            ..ConnectOptions::new(SocketAddr::new(LOCALHOST_V4, BGP_PORT))
        };
        let debug = format!("{opts:?}");
        assert!(debug.contains("<redacted>"), "{debug}");
        assert!(!debug.contains("bgp-secret") && !debug.contains("98, 103, 112"), "{debug}");
    }
}
