//! System calls that no maintained crate wraps, behind safe functions.
//!
//! This is the only module of the crate allowed `unsafe` (the crate's lint
//! denies it elsewhere); each block says why it is sound. It holds:
//!
//! - `setsockopt(IPPROTO_TCP, TCP_MD5SIG)` (RFC 2385), which neither
//!   socket2 nor nix exposes and whose argument, the kernel's
//!   `struct tcp_md5sig`, libc does not define;
//! - for the layer 2 driver's `AF_PACKET` sockets, what takes a
//!   `struct sockaddr_ll` or a `struct packet_mreq`, which neither socket2
//!   nor nix builds safely: binding to an interface ([`bind_packet`]) and
//!   joining a link-layer multicast group ([`packet_multicast`]). (Frames
//!   are received with nix's safe `recvfrom::<LinkAddr>`.)
//! - registering a socket with tokio's reactor ([`register_readable`]):
//!   `AsyncFd::register` is `unsafe` since tokio 1.54 because it cannot
//!   know that its argument owns its descriptor; here it only takes
//!   socket types that do.
#![allow(unsafe_code)]

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};

use socket2::{SockAddr, SockAddrStorage};

/// Longest key the kernel accepts (`TCP_MD5SIG_MAXKEYLEN`).
pub const TCP_MD5SIG_MAXKEYLEN: usize = 80;

/// The kernel's `struct tcp_md5sig` (`include/uapi/linux/tcp.h`).
///
/// `SockAddrStorage` is socket2's `repr(transparent)` wrapper over
/// `sockaddr_storage`, so the layout is the kernel's.
#[repr(C)]
struct TcpMd5Sig {
    /// Peer address; the port is ignored.
    tcpm_addr: SockAddrStorage,
    /// `TCP_MD5SIG_FLAG_PREFIX` / `_IFINDEX`, only read by `TCP_MD5SIG_EXT`.
    tcpm_flags: u8,
    /// Address prefix length, only read with `TCP_MD5SIG_FLAG_PREFIX`.
    tcpm_prefixlen: u8,
    /// Key length; 0 deletes the key for `tcpm_addr`.
    tcpm_keylen: u16,
    /// Interface index, only read with `TCP_MD5SIG_FLAG_IFINDEX`.
    tcpm_ifindex: u32,
    /// The key, `tcpm_keylen` bytes used.
    tcpm_key: [u8; TCP_MD5SIG_MAXKEYLEN],
}

const _: () = assert!(size_of::<SockAddrStorage>() == size_of::<libc::sockaddr_storage>());
const _: () = assert!(size_of::<TcpMd5Sig>() == 216);

/// Sets the TCP MD5 key for segments to and from `peer` on `socket`; an
/// empty key removes it. `peer` must be of the socket's family (v4-mapped
/// for an IPv4 peer on an IPv6 socket): the caller decides that.
///
/// # Errors
///
/// `InvalidInput` for a key over [`TCP_MD5SIG_MAXKEYLEN`] bytes; otherwise
/// what the kernel returns (`ENOENT` when removing a key that is not set).
pub fn set_tcp_md5sig<S: AsFd>(socket: &S, peer: SocketAddr, key: &[u8]) -> io::Result<()> {
    let keylen = u16::try_from(key.len())
        .ok()
        .filter(|len| usize::from(*len) <= TCP_MD5SIG_MAXKEYLEN)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "TCP MD5 key over 80 bytes"))?;
    let mut sig = TcpMd5Sig {
        tcpm_addr: SockAddr::from(peer).as_storage(),
        tcpm_flags: 0,
        tcpm_prefixlen: 0,
        tcpm_keylen: keylen,
        tcpm_ifindex: 0,
        tcpm_key: [0; TCP_MD5SIG_MAXKEYLEN],
    };
    sig.tcpm_key[..key.len()].copy_from_slice(key);
    let fd = socket.as_fd().as_raw_fd();
    // SAFETY: `fd` is a socket borrowed for the duration of the call, and the
    // pointer and length describe `sig`, a live `repr(C)` value with the
    // kernel's `struct tcp_md5sig` layout (checked above and in the tests),
    // which the kernel only reads.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_MD5SIG,
            std::ptr::from_ref(&sig).cast::<libc::c_void>(),
            size_of::<TcpMd5Sig>() as libc::socklen_t,
        )
    };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// An interface index as the kernel's `int`.
fn ifindex_c(ifindex: u32) -> io::Result<libc::c_int> {
    libc::c_int::try_from(ifindex).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface index over i32"))
}

/// Binds an `AF_PACKET` socket to interface `ifindex`, receiving frames of
/// EtherType `protocol` (host order; `ETH_P_ALL` for every frame) from it
/// only, and sending out of it.
///
/// # Errors
///
/// What `bind(2)` returns (`ENODEV` for an interface that is gone).
pub fn bind_packet<S: AsFd>(socket: &S, ifindex: u32, protocol: u16) -> io::Result<()> {
    let addr = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as libc::c_ushort,
        sll_protocol: protocol.to_be(),
        sll_ifindex: ifindex_c(ifindex)?,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    // SAFETY: the fd is borrowed for the call; the pointer and length
    // describe `addr`, a live `sockaddr_ll` that the kernel only reads.
    let rc = unsafe {
        libc::bind(
            socket.as_fd().as_raw_fd(),
            std::ptr::from_ref(&addr).cast::<libc::sockaddr>(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Joins (`join`) or leaves the Ethernet multicast group `mac` on
/// interface `ifindex` for an `AF_PACKET` socket (`PACKET_ADD_MEMBERSHIP`
/// / `PACKET_DROP_MEMBERSHIP` with `PACKET_MR_MULTICAST`): the NIC then
/// passes frames sent to `mac` up. The kernel counts joins per socket;
/// closing the socket leaves every group.
///
/// # Errors
///
/// What `setsockopt(2)` returns (`EADDRNOTAVAIL` when leaving a group not joined).
pub fn packet_multicast<S: AsFd>(socket: &S, ifindex: u32, mac: [u8; 6], join: bool) -> io::Result<()> {
    let mut address = [0u8; 8];
    address[..6].copy_from_slice(&mac);
    let mreq = libc::packet_mreq {
        mr_ifindex: ifindex_c(ifindex)?,
        mr_type: libc::PACKET_MR_MULTICAST as libc::c_ushort,
        mr_alen: 6,
        mr_address: address,
    };
    let option = if join { libc::PACKET_ADD_MEMBERSHIP } else { libc::PACKET_DROP_MEMBERSHIP };
    // SAFETY: the fd is borrowed for the call; the pointer and length
    // describe `mreq`, a live `packet_mreq` that the kernel only reads.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_fd().as_raw_fd(),
            libc::SOL_PACKET,
            option,
            std::ptr::from_ref(&mreq).cast::<libc::c_void>(),
            size_of::<libc::packet_mreq>() as libc::socklen_t,
        )
    };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// A socket type that owns its descriptor: open from creation to drop,
/// always the same one. Sealed: only the types below.
pub trait OwnedSocket: AsRawFd + sealed::Sealed {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for socket2::Socket {}
    impl Sealed for netlink_sys::Socket {}
}

impl OwnedSocket for socket2::Socket {}
impl OwnedSocket for netlink_sys::Socket {}

/// Registers `socket` with the current tokio runtime's reactor for
/// readiness to read. Must be called inside a runtime.
///
/// # Errors
///
/// What the reactor returns (`epoll_ctl`).
pub fn register_readable<S: OwnedSocket>(socket: S) -> io::Result<tokio::io::unix::AsyncFd<S>> {
    // SAFETY: `S` is one of the sealed socket types, each of which owns its
    // descriptor (created with the value, closed only by its `Drop`) and
    // returns that same descriptor from every `as_raw_fd`; the `AsyncFd`
    // owns the value, so the descriptor stays open and the same for the
    // `AsyncFd`'s whole life.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(socket, tokio::io::Interest::READABLE) }
        .map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_md5sig_has_the_kernel_layout() {
        assert_eq!(size_of::<TcpMd5Sig>(), 216);
        assert_eq!(std::mem::offset_of!(TcpMd5Sig, tcpm_flags), 128);
        assert_eq!(std::mem::offset_of!(TcpMd5Sig, tcpm_keylen), 130);
        assert_eq!(std::mem::offset_of!(TcpMd5Sig, tcpm_ifindex), 132);
        assert_eq!(std::mem::offset_of!(TcpMd5Sig, tcpm_key), 136);
    }

    #[test]
    fn a_key_over_the_limit_is_refused_before_the_kernel() {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let peer: SocketAddr = "127.0.0.1:0".parse().expect("address");
        let error = set_tcp_md5sig(&socket, peer, &[b'k'; 81]).expect_err("81 bytes");
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        set_tcp_md5sig(&socket, peer, &[b'k'; 80]).expect("80 bytes");
    }
}
