//! One `AF_PACKET` raw socket per interface: whole Ethernet frames in and
//! out, ARP and Neighbor Solicitations / Advertisements only.
//!
//! The socket is opened with protocol 0 (it receives nothing), given the
//! classic BPF [`FILTER`], and only then bound to its interface with
//! `ETH_P_ALL`: no frame the filter would refuse is ever queued. Frames
//! the host itself sends (`PACKET_OUTGOING`) are skipped on receipt. For
//! each owned IPv6 address the socket joins its solicited-node multicast
//! MAC (`33:33:ff:xx:xx:xx`), so a NIC that filters multicast passes the
//! solicitations up.

use std::collections::BTreeSet;
use std::io;
use std::os::fd::AsRawFd;
use std::task::{Context, Poll, ready};

use lb_arp::wire::MacAddr;
use nix::sys::socket::{LinkAddr, MsgFlags, recvfrom};
use socket2::{Domain, SockFilter, Socket, Type};
use tokio::io::unix::AsyncFd;

use crate::sys;

/// `PACKET_OUTGOING`: a frame this host sent, seen on its way out.
const PACKET_OUTGOING: u8 = 4;
/// `ETH_P_ALL`: every EtherType.
const ETH_P_ALL: u16 = 0x0003;

// Classic BPF opcodes (`linux/filter.h`).
const LD_H_ABS: u16 = 0x28;
const LD_B_ABS: u16 = 0x30;
const JEQ_K: u16 = 0x15;
const RET_K: u16 = 0x06;

/// Bytes of an accepted frame passed up (all of any Ethernet frame).
const ACCEPT: u32 = 0x0004_0000;

/// One classic BPF instruction: opcode, jump-if-true, jump-if-false, constant.
type Insn = (u16, u8, u8, u32);

/// The socket filter: ARP (EtherType 0x0806), and IPv6 (0x86dd) whose next
/// header is ICMPv6 (58, directly after the fixed header) of type 135
/// (Neighbor Solicitation) or 136 (Neighbor Advertisement). Offsets are
/// from the start of the Ethernet header.
pub const FILTER: [Insn; 10] = [
    // 0: EtherType.
    (LD_H_ABS, 0, 0, 12),
    // 1: ARP: accept.
    (JEQ_K, 6, 0, 0x0806),
    // 2: not IPv6: drop.
    (JEQ_K, 0, 6, 0x86dd),
    // 3: IPv6 next header.
    (LD_B_ABS, 0, 0, 14 + 6),
    // 4: not ICMPv6: drop.
    (JEQ_K, 0, 4, 58),
    // 5: ICMPv6 type.
    (LD_B_ABS, 0, 0, 14 + 40),
    // 6: Neighbor Solicitation: accept.
    (JEQ_K, 1, 0, 135),
    // 7: Neighbor Advertisement: accept, else drop.
    (JEQ_K, 0, 1, 136),
    // 8: accept.
    (RET_K, 0, 0, ACCEPT),
    // 9: drop.
    (RET_K, 0, 0, 0),
];

/// A raw socket bound to one interface, registered with the tokio reactor.
#[derive(Debug)]
pub struct PacketSocket {
    fd: AsyncFd<Socket>,
    ifindex: u32,
    /// Multicast MACs joined.
    groups: BTreeSet<MacAddr>,
}

impl PacketSocket {
    /// Opens a socket on interface `ifindex`. Must be called inside a tokio
    /// runtime (the socket registers with its reactor).
    ///
    /// # Errors
    ///
    /// Creating the socket (`EPERM` without `CAP_NET_RAW`), attaching the
    /// filter, binding (`ENODEV` once the interface is gone), registering.
    pub fn open(ifindex: u32) -> io::Result<Self> {
        let socket = Socket::new(Domain::PACKET, Type::RAW.cloexec(), None)?;
        socket.attach_filter(&FILTER.map(|(code, jt, jf, k)| SockFilter::new(code, jt, jf, k)))?;
        sys::bind_packet(&socket, ifindex, ETH_P_ALL)?;
        socket.set_nonblocking(true)?;
        Ok(Self { fd: sys::register_readable(socket)?, ifindex, groups: BTreeSet::new() })
    }

    /// The interface it is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Polls for the next frame: `Some(len)` of the frame now in `buf`, or
    /// `None` for a frame that was skipped (one this host sent).
    ///
    /// # Errors
    ///
    /// What `recvfrom` returns (`ENETDOWN` once the interface went down).
    pub fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<Option<usize>>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let received = guard.try_io(|fd| {
                let (len, from) = recvfrom::<LinkAddr>(fd.get_ref().as_raw_fd(), buf).map_err(io::Error::from)?;
                let outgoing = from.is_some_and(|a| a.pkttype() == PACKET_OUTGOING);
                Ok((!outgoing).then_some(len.min(buf.len())))
            });
            if let Ok(result) = received {
                return Poll::Ready(result);
            }
        }
    }

    /// Sends one whole Ethernet frame out of the interface, without waiting:
    /// a full send queue is an error (`WouldBlock`), the frame is not kept.
    ///
    /// # Errors
    ///
    /// What `send` returns.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        let sent = self.fd.get_ref().send_with_flags(frame, MsgFlags::MSG_DONTWAIT.bits())?;
        if sent == frame.len() { Ok(()) } else { Err(io::Error::new(io::ErrorKind::WriteZero, "frame cut short")) }
    }

    /// Makes the joined multicast groups `wanted`: joins the new ones, leaves
    /// the others. Returns the MACs that failed, with why.
    pub fn set_groups(&mut self, wanted: &BTreeSet<MacAddr>) -> Vec<(MacAddr, io::Error)> {
        let mut failed = Vec::new();
        let leave: Vec<MacAddr> = self.groups.difference(wanted).copied().collect();
        for mac in leave {
            self.groups.remove(&mac);
            if let Err(e) = sys::packet_multicast(self.fd.get_ref(), self.ifindex, mac.octets(), false) {
                failed.push((mac, e));
            }
        }
        for mac in wanted.difference(&self.groups.clone()) {
            match sys::packet_multicast(self.fd.get_ref(), self.ifindex, mac.octets(), true) {
                Ok(()) => {
                    self.groups.insert(*mac);
                }
                Err(e) => failed.push((*mac, e)),
            }
        }
        failed
    }

    /// The multicast groups joined.
    pub fn groups(&self) -> &BTreeSet<MacAddr> {
        &self.groups
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use lb_arp::wire::{ArpRepr, Ipv6NdpRepr, NdpRepr, arp_frame, ndp_frame, solicited_node, solicited_node_mac};

    use super::*;

    /// A classic BPF interpreter for the instructions [`FILTER`] uses: the
    /// bytes of the frame kept (0: dropped). An out-of-range load drops, as
    /// in the kernel.
    fn run(program: &[Insn], frame: &[u8]) -> u32 {
        let (mut pc, mut a) = (0usize, 0u32);
        loop {
            let (code, jt, jf, k) = program[pc];
            let at = k as usize;
            match code {
                LD_H_ABS => match frame.get(at..at + 2) {
                    Some(b) => a = u32::from(u16::from_be_bytes([b[0], b[1]])),
                    None => return 0,
                },
                LD_B_ABS => match frame.get(at) {
                    Some(b) => a = u32::from(*b),
                    None => return 0,
                },
                JEQ_K => pc += usize::from(if a == k { jt } else { jf }),
                RET_K => return k,
                other => panic!("opcode {other:#x} not interpreted"),
            }
            pc += 1;
        }
    }

    const MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 1]);

    fn ns(target: Ipv6Addr) -> Vec<u8> {
        let ns = Ipv6NdpRepr {
            src: "2001:db8::1".parse().expect("IPv6"),
            dst: solicited_node(target),
            hop_limit: 255,
            message: NdpRepr::NeighborSolicit { target, source_ll: Some(MAC) },
        };
        ndp_frame(solicited_node_mac(target), MAC, &ns)
    }

    #[test]
    fn the_filter_passes_arp_and_neighbor_discovery_only() {
        let vip6: Ipv6Addr = "2001:db8::10".parse().expect("IPv6");
        let arp = arp_frame(MacAddr::BROADCAST, MAC, &ArpRepr::announcement(MAC, Ipv4Addr::new(192, 0, 2, 10)));
        let solicitation = ns(vip6);
        let advert = ndp_frame(MAC, MAC, &Ipv6NdpRepr::unsolicited_advert(MAC, vip6));
        for pass in [&arp, &solicitation, &advert] {
            assert_eq!(run(&FILTER, pass), ACCEPT);
        }

        // IPv4; IPv6 UDP; ICMPv6 echo request (128); router advertisement (134); runts.
        let mut ipv4 = arp.clone();
        ipv4[12..14].copy_from_slice(&[0x08, 0x00]);
        let mut udp = solicitation.clone();
        udp[20] = 17;
        let mut echo = solicitation.clone();
        echo[54] = 128;
        let mut ra = solicitation.clone();
        ra[54] = 134;
        for drop in [&ipv4, &udp, &echo, &ra, &solicitation[..40].to_vec(), &arp[..13].to_vec()] {
            assert_eq!(run(&FILTER, drop), 0, "{drop:02x?}");
        }
    }
}
