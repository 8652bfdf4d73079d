//! Wire formats, in the style of smoltcp's `wire`: for each fixed layout a
//! view `Packet<B: AsRef<[u8]>>` (`new_checked`, getters, then setters when
//! `B: AsMut<[u8]>`) and an owned `Repr` with `parse`, `buffer_len` and
//! `emit`.
//!
//! No-panic contract: once `new_checked` (or `check_len`) has succeeded, no
//! getter or setter of a view panics. `new_unchecked` skips the check and
//! its accessors may panic on a short buffer. Code points this crate does
//! not name survive a round trip as `Unknown(n)`.
//!
//! - [`ethernet`]: Ethernet II header and [`EtherType`];
//! - [`arp`]: ARP for IPv4 over Ethernet (RFC 826);
//! - [`ipv6`]: the fixed IPv6 header (RFC 8200 §3);
//! - [`ndp`]: ICMPv6 Neighbor Solicitation and Advertisement (RFC 4861) with
//!   the link-layer address options and the ICMPv6 checksum;
//! - [`frame`]: a whole Ethernet frame carrying ARP or NDP.

pub mod arp;
pub mod ethernet;
pub mod frame;
pub mod ipv6;
pub mod ndp;

use std::fmt;
use std::net::Ipv6Addr;

pub use arp::{ArpPacket, ArpRepr, Operation};
pub use ethernet::{EtherType, EthernetFrame, EthernetRepr};
pub use frame::{Frame, FrameBody, arp_frame, ndp_frame};
pub use ipv6::{Ipv6Packet, Ipv6Repr};
pub use ndp::{ALL_NODES, Ipv6NdpRepr, NdpPacket, NdpRepr, icmpv6_checksum};

/// Why bytes are not a frame this crate accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The buffer is shorter than the format (or a length field in it) requires.
    #[error("truncated")]
    Truncated,
    /// ARP hardware type other than Ethernet (1).
    #[error("ARP hardware type {0} is not Ethernet (1)")]
    ArpHardwareType(u16),
    /// ARP protocol type other than IPv4 (0x0800).
    #[error("ARP protocol type {0:#06x} is not IPv4 (0x0800)")]
    ArpProtocolType(u16),
    /// ARP address lengths other than 6 (hardware) and 4 (protocol).
    #[error("ARP address lengths {hardware}/{protocol} are not 6/4")]
    ArpAddressLength {
        /// The hardware address length field.
        hardware: u8,
        /// The protocol address length field.
        protocol: u8,
    },
    /// The IPv6 version field is not 6.
    #[error("IP version {0} in an IPv6 frame")]
    Ipv6Version(u8),
    /// The IPv6 next header is not ICMPv6 (58); extension headers are not followed.
    #[error("IPv6 next header {0} is not ICMPv6")]
    NotIcmpv6(u8),
    /// The ICMPv6 type is neither Neighbor Solicitation (135) nor Neighbor Advertisement (136).
    #[error("ICMPv6 type {0} is not a neighbor solicitation or advertisement")]
    NotNeighborMessage(u8),
    /// Hop limit other than 255: the message may come from off-link (RFC 4861 §7.1.1, §7.1.2).
    #[error("NDP hop limit {0} is not 255")]
    HopLimit(u8),
    /// ICMPv6 code other than 0 (RFC 4861 §7.1.1, §7.1.2).
    #[error("NDP ICMPv6 code {0} is not 0")]
    IcmpCode(u8),
    /// The ICMPv6 checksum over the pseudo-header does not verify (RFC 4443 §2.3).
    #[error("bad ICMPv6 checksum")]
    Checksum,
    /// The target address is a multicast address (RFC 4861 §7.1.1, §7.1.2).
    #[error("NDP target is a multicast address")]
    MulticastTarget,
    /// An NDP option has length 0 (RFC 4861 §4.6, §7.1).
    #[error("NDP option with length 0")]
    OptionZeroLength,
    /// An NDP option runs past the end of the message.
    #[error("NDP option runs past the end of the message")]
    OptionTruncated,
    /// A solicitation from the unspecified address carries a source link-layer address option (RFC 4861 §7.1.1).
    #[error("DAD solicitation with a source link-layer address option")]
    UnspecifiedSourceWithLinkLayer,
    /// A solicitation from the unspecified address is not sent to a solicited-node address (RFC 4861 §7.1.1).
    #[error("DAD solicitation not sent to a solicited-node multicast address")]
    UnspecifiedSourceNotSolicitedNode,
    /// An advertisement to a multicast address has the Solicited flag set (RFC 4861 §7.1.2).
    #[error("solicited advertisement sent to a multicast address")]
    SolicitedToMulticast,
}

/// A 48-bit IEEE 802 MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// `00:00:00:00:00:00`, the target hardware address of an ARP request.
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// The six octets.
    #[must_use]
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// Whether the group bit (least significant bit of the first octet) is set; true of broadcast.
    #[must_use]
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    /// Whether this is `ff:ff:ff:ff:ff:ff`.
    #[must_use]
    pub const fn is_broadcast(&self) -> bool {
        matches!(self.0, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
    }

    /// The Ethernet multicast address of an IPv6 multicast group: `33:33`
    /// followed by the group's last four octets (RFC 2464 §7).
    #[must_use]
    pub const fn from_ipv6_multicast(group: Ipv6Addr) -> MacAddr {
        let o = group.octets();
        MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
    }

    pub(crate) fn read(bytes: &[u8]) -> MacAddr {
        let mut m = [0; 6];
        m.copy_from_slice(&bytes[..6]);
        MacAddr(m)
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(octets: [u8; 6]) -> Self {
        MacAddr(octets)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// The solicited-node multicast address of `ip`: `ff02::1:ff00:0/104`
/// followed by the low 24 bits of `ip` (RFC 4291 §2.7.1).
#[must_use]
pub const fn solicited_node(ip: Ipv6Addr) -> Ipv6Addr {
    let o = ip.octets();
    Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00 | o[13] as u16, (o[14] as u16) << 8 | o[15] as u16)
}

/// Whether `ip` is in `ff02::1:ff00:0/104`.
#[must_use]
pub fn is_solicited_node(ip: Ipv6Addr) -> bool {
    ip.octets()[..13] == solicited_node(Ipv6Addr::UNSPECIFIED).octets()[..13]
}

/// The Ethernet multicast address a solicitation for `ip` is sent to:
/// `33:33:ff:xx:xx:xx`.
#[must_use]
pub const fn solicited_node_mac(ip: Ipv6Addr) -> MacAddr {
    MacAddr::from_ipv6_multicast(solicited_node(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_display_and_kinds() {
        let m = MacAddr([0xaa, 0xbb, 0xcc, 0x0d, 0xee, 0xff]);
        assert_eq!(m.to_string(), "aa:bb:cc:0d:ee:ff");
        assert!(MacAddr::BROADCAST.is_multicast());
        assert!(MacAddr::BROADCAST.is_broadcast());
        assert!(!MacAddr([0x02, 0, 0, 0, 0, 1]).is_multicast());
        assert!(MacAddr([0x33, 0x33, 0, 0, 0, 1]).is_multicast());
    }

    #[test]
    fn solicited_node_address_and_mac() {
        let ip: Ipv6Addr = "2001:db8::abcd:1234:5678".parse().unwrap_or(Ipv6Addr::UNSPECIFIED);
        assert_eq!(solicited_node(ip), "ff02::1:ff34:5678".parse::<Ipv6Addr>().unwrap_or(Ipv6Addr::UNSPECIFIED));
        assert_eq!(solicited_node_mac(ip), MacAddr([0x33, 0x33, 0xff, 0x34, 0x56, 0x78]));
        assert!(is_solicited_node(solicited_node(ip)));
        assert!(!is_solicited_node(ip));
        assert!(!is_solicited_node("ff02::1".parse().unwrap_or(Ipv6Addr::UNSPECIFIED)));
    }
}
