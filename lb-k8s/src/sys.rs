//! System calls that no maintained crate wraps, behind safe functions.
//!
//! This is the only module of the crate allowed `unsafe` (the crate's lint
//! denies it elsewhere); each block says why it is sound. Today it holds
//! one call: `setsockopt(IPPROTO_TCP, TCP_MD5SIG)` (RFC 2385), which
//! neither socket2 nor nix exposes and whose argument, the kernel's
//! `struct tcp_md5sig`, libc does not define.
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
