//! ICMPv6 Neighbor Solicitation and Neighbor Advertisement (RFC 4861 §4.3,
//! §4.4) with the source / target link-layer address options (§4.6.1), and
//! the ICMPv6 checksum over the IPv6 pseudo-header (RFC 4443 §2.3).
//!
//! ```text
//!  0       1       2               4                               8
//! +-------+-------+---------------+-------------------------------+
//! | type  | code  |   checksum    | NS: reserved                  |
//! |       |       |               | NA: R S O, reserved           |
//! +-------+-------+---------------+-------------------------------+
//! |                 target address (16 octets)                    |
//! +---------------------------------------------------------------+
//! | options: type (1), length in units of 8 octets (1), data ...  |
//! +---------------------------------------------------------------+
//! ```
//!
//! [`Ipv6NdpRepr::parse`] performs the receiver's checks of RFC 4861 §7.1.1
//! and §7.1.2 that need only the packet: hop limit 255, valid checksum,
//! code 0, ICMP length at least 24, every option longer than zero, target
//! not multicast; for a solicitation from the unspecified address, no
//! source link-layer option and a solicited-node destination; for an
//! advertisement to a multicast address, the Solicited flag clear.
//! Options other than the link-layer address for the message (source for
//! NS, target for NA) are skipped; when the option repeats, the first wins.

use std::net::Ipv6Addr;

use super::ipv6::{self, Ipv6Packet, Ipv6Repr, NEXT_HEADER_ICMPV6};
use super::{MacAddr, WireError, is_solicited_node};

/// Length of an NS or NA without options.
pub const MESSAGE_LEN: usize = 24;
/// ICMPv6 type of a Neighbor Solicitation.
pub const TYPE_NEIGHBOR_SOLICIT: u8 = 135;
/// ICMPv6 type of a Neighbor Advertisement.
pub const TYPE_NEIGHBOR_ADVERT: u8 = 136;
/// Option type: source link-layer address.
pub const OPT_SOURCE_LL: u8 = 1;
/// Option type: target link-layer address.
pub const OPT_TARGET_LL: u8 = 2;
/// Hop limit every NDP message is sent and must be received with.
pub const HOP_LIMIT: u8 = 255;
/// Length of a link-layer address option for Ethernet (RFC 2464 §6).
const LL_OPTION_LEN: usize = 8;

const FLAG_ROUTER: u8 = 0x80;
const FLAG_SOLICITED: u8 = 0x40;
const FLAG_OVERRIDE: u8 = 0x20;

mod field {
    use std::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const FLAGS: usize = 4;
    pub const RESERVED: Range<usize> = 4..8;
    pub const TARGET: Range<usize> = 8..24;
    pub const OPTIONS: usize = 24;
}

/// The ICMPv6 checksum (RFC 4443 §2.3) of `message` sent from `src` to
/// `dst`: the one's complement of the one's complement sum over the IPv6
/// pseudo-header (addresses, upper-layer length, next header 58) and the
/// message as given. With the checksum field zeroed this is the value to
/// write; over a received message it is 0 when the checksum is right.
#[must_use]
pub fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, message: &[u8]) -> u16 {
    fn add(mut sum: u32, bytes: &[u8]) -> u32 {
        let mut chunks = bytes.chunks_exact(2);
        for c in &mut chunks {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        if let [last] = chunks.remainder() {
            sum += u32::from(*last) << 8;
        }
        // Fold now and then so long messages cannot overflow.
        (sum & 0xffff) + (sum >> 16)
    }
    let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
    let mut sum = add(0, &src.octets());
    sum = add(sum, &dst.octets());
    sum = add(sum, &len.to_be_bytes());
    sum = add(sum, &[0, 0, 0, NEXT_HEADER_ICMPV6]);
    for chunk in message.chunks(4096) {
        sum = add(sum, chunk);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A view over an ICMPv6 Neighbor Solicitation or Advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdpPacket<B> {
    buffer: B,
}

impl<B: AsRef<[u8]>> NdpPacket<B> {
    /// Wraps `buffer` without checking its length.
    pub const fn new_unchecked(buffer: B) -> Self {
        NdpPacket { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: B) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Whether the buffer holds at least [`MESSAGE_LEN`] bytes; afterwards no accessor panics.
    pub fn check_len(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < MESSAGE_LEN { Err(WireError::Truncated) } else { Ok(()) }
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> B {
        self.buffer
    }

    /// ICMPv6 type.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// ICMPv6 code.
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::CHECKSUM];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// NA Router flag.
    pub fn router_flag(&self) -> bool {
        self.buffer.as_ref()[field::FLAGS] & FLAG_ROUTER != 0
    }

    /// NA Solicited flag.
    pub fn solicited_flag(&self) -> bool {
        self.buffer.as_ref()[field::FLAGS] & FLAG_SOLICITED != 0
    }

    /// NA Override flag.
    pub fn override_flag(&self) -> bool {
        self.buffer.as_ref()[field::FLAGS] & FLAG_OVERRIDE != 0
    }

    /// Target address.
    pub fn target(&self) -> Ipv6Addr {
        let mut o = [0u8; 16];
        o.copy_from_slice(&self.buffer.as_ref()[field::TARGET]);
        Ipv6Addr::from(o)
    }

    /// The options, unparsed.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::OPTIONS..]
    }

    /// Whether the checksum verifies for a message from `src` to `dst`.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        icmpv6_checksum(src, dst, self.buffer.as_ref()) == 0
    }

    /// The link-layer address carried in the first option of type `kind`
    /// (its first six data octets), checking every option's length.
    pub fn link_layer_option(&self, kind: u8) -> Result<Option<MacAddr>, WireError> {
        let mut rest = self.options();
        let mut found = None;
        while !rest.is_empty() {
            let [t, len, ..] = *rest else { return Err(WireError::OptionTruncated) };
            if len == 0 {
                return Err(WireError::OptionZeroLength);
            }
            let bytes = usize::from(len) * 8;
            if bytes > rest.len() {
                return Err(WireError::OptionTruncated);
            }
            if t == kind && found.is_none() {
                found = Some(MacAddr::read(&rest[2..8]));
            }
            rest = &rest[bytes..];
        }
        Ok(found)
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> NdpPacket<B> {
    /// Sets the ICMPv6 type.
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::TYPE] = v;
    }

    /// Sets the ICMPv6 code.
    pub fn set_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the flags (NA) and clears the reserved bits.
    pub fn set_flags(&mut self, router: bool, solicited: bool, override_flag: bool) {
        let b = &mut self.buffer.as_mut()[field::RESERVED];
        b.fill(0);
        b[0] = (if router { FLAG_ROUTER } else { 0 })
            | (if solicited { FLAG_SOLICITED } else { 0 })
            | (if override_flag { FLAG_OVERRIDE } else { 0 });
    }

    /// Sets the target address.
    pub fn set_target(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::TARGET].copy_from_slice(&a.octets());
    }

    /// The options, writable.
    pub fn options_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::OPTIONS..]
    }

    /// Computes and writes the checksum for a message from `src` to `dst`.
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let c = icmpv6_checksum(src, dst, self.buffer.as_ref());
        self.set_checksum(c);
    }
}

/// A Neighbor Solicitation or Advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NdpRepr {
    /// "Who has `target`?" (RFC 4861 §4.3).
    NeighborSolicit {
        /// The address being resolved.
        target: Ipv6Addr,
        /// The sender's link-layer address (absent in duplicate address detection).
        source_ll: Option<MacAddr>,
    },
    /// "`target` is at `target_ll`" (RFC 4861 §4.4).
    NeighborAdvert {
        /// R: the sender is a router.
        router: bool,
        /// S: an answer to a solicitation.
        solicited: bool,
        /// O: replace a cached link-layer address.
        override_flag: bool,
        /// The address advertised.
        target: Ipv6Addr,
        /// The target's link-layer address.
        target_ll: Option<MacAddr>,
    },
}

impl NdpRepr {
    /// The target address.
    #[must_use]
    pub const fn target(&self) -> Ipv6Addr {
        match *self {
            NdpRepr::NeighborSolicit { target, .. } | NdpRepr::NeighborAdvert { target, .. } => target,
        }
    }

    fn link_layer(&self) -> Option<(u8, MacAddr)> {
        match *self {
            NdpRepr::NeighborSolicit { source_ll, .. } => source_ll.map(|m| (OPT_SOURCE_LL, m)),
            NdpRepr::NeighborAdvert { target_ll, .. } => target_ll.map(|m| (OPT_TARGET_LL, m)),
        }
    }

    /// Bytes of the ICMPv6 message [`emit`](Self::emit) writes.
    #[must_use]
    pub fn buffer_len(&self) -> usize {
        MESSAGE_LEN + if self.link_layer().is_some() { LL_OPTION_LEN } else { 0 }
    }

    /// Writes the message, with the checksum for `src` to `dst`, into a
    /// buffer of exactly [`buffer_len`](Self::buffer_len) bytes.
    pub fn emit<B: AsRef<[u8]> + AsMut<[u8]>>(&self, src: Ipv6Addr, dst: Ipv6Addr, p: &mut NdpPacket<B>) {
        match *self {
            NdpRepr::NeighborSolicit { .. } => {
                p.set_msg_type(TYPE_NEIGHBOR_SOLICIT);
                p.set_flags(false, false, false);
            }
            NdpRepr::NeighborAdvert { router, solicited, override_flag, .. } => {
                p.set_msg_type(TYPE_NEIGHBOR_ADVERT);
                p.set_flags(router, solicited, override_flag);
            }
        }
        p.set_code(0);
        p.set_target(self.target());
        if let Some((kind, mac)) = self.link_layer() {
            let o = p.options_mut();
            o[0] = kind;
            o[1] = 1;
            o[2..8].copy_from_slice(&mac.0);
        }
        p.fill_checksum(src, dst);
    }
}

/// A Neighbor Solicitation or Advertisement with the IPv6 header it travels in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6NdpRepr {
    /// IPv6 source (`::` in duplicate address detection).
    pub src: Ipv6Addr,
    /// IPv6 destination.
    pub dst: Ipv6Addr,
    /// IPv6 hop limit; [`parse`](Self::parse) accepts only [`HOP_LIMIT`].
    pub hop_limit: u8,
    /// The ICMPv6 message.
    pub message: NdpRepr,
}

/// The link-local all-nodes multicast address `ff02::1`.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

impl Ipv6NdpRepr {
    /// An unsolicited Neighbor Advertisement (RFC 4861 §7.2.6) announcing
    /// that `ip` is at `mac`: from `ip` to [`ALL_NODES`], Solicited clear,
    /// Override set, with the target link-layer address; to be sent to
    /// `MacAddr::from_ipv6_multicast(ALL_NODES)`.
    #[must_use]
    pub const fn unsolicited_advert(mac: MacAddr, ip: Ipv6Addr) -> Ipv6NdpRepr {
        Ipv6NdpRepr {
            src: ip,
            dst: ALL_NODES,
            hop_limit: HOP_LIMIT,
            message: NdpRepr::NeighborAdvert {
                router: false,
                solicited: false,
                override_flag: true,
                target: ip,
                target_ll: Some(mac),
            },
        }
    }

    /// Reads an IPv6 packet carrying an NS or NA, with the receiver's checks
    /// of RFC 4861 §7.1.1 / §7.1.2 (see the module doc). A packet that is
    /// not ICMPv6 gives [`WireError::NotIcmpv6`], another ICMPv6 type
    /// [`WireError::NotNeighborMessage`].
    pub fn parse<B: AsRef<[u8]>>(p: &Ipv6Packet<B>) -> Result<Self, WireError> {
        let ip = Ipv6Repr::parse(p)?;
        if ip.next_header != NEXT_HEADER_ICMPV6 {
            return Err(WireError::NotIcmpv6(ip.next_header));
        }
        let payload = p.payload();
        let Some(&msg_type) = payload.first() else { return Err(WireError::Truncated) };
        if msg_type != TYPE_NEIGHBOR_SOLICIT && msg_type != TYPE_NEIGHBOR_ADVERT {
            return Err(WireError::NotNeighborMessage(msg_type));
        }
        let icmp = NdpPacket::new_checked(payload)?;
        if ip.hop_limit != HOP_LIMIT {
            return Err(WireError::HopLimit(ip.hop_limit));
        }
        if !icmp.verify_checksum(ip.src, ip.dst) {
            return Err(WireError::Checksum);
        }
        if icmp.code() != 0 {
            return Err(WireError::IcmpCode(icmp.code()));
        }
        let target = icmp.target();
        if target.is_multicast() {
            return Err(WireError::MulticastTarget);
        }
        let message = if msg_type == TYPE_NEIGHBOR_SOLICIT {
            let source_ll = icmp.link_layer_option(OPT_SOURCE_LL)?;
            if ip.src.is_unspecified() {
                if source_ll.is_some() {
                    return Err(WireError::UnspecifiedSourceWithLinkLayer);
                }
                if !is_solicited_node(ip.dst) {
                    return Err(WireError::UnspecifiedSourceNotSolicitedNode);
                }
            }
            NdpRepr::NeighborSolicit { target, source_ll }
        } else {
            let target_ll = icmp.link_layer_option(OPT_TARGET_LL)?;
            let solicited = icmp.solicited_flag();
            if solicited && ip.dst.is_multicast() {
                return Err(WireError::SolicitedToMulticast);
            }
            NdpRepr::NeighborAdvert {
                router: icmp.router_flag(),
                solicited,
                override_flag: icmp.override_flag(),
                target,
                target_ll,
            }
        };
        Ok(Ipv6NdpRepr { src: ip.src, dst: ip.dst, hop_limit: ip.hop_limit, message })
    }

    /// Bytes [`emit`](Self::emit) writes: the IPv6 header and the message.
    #[must_use]
    pub fn buffer_len(&self) -> usize {
        ipv6::HEADER_LEN + self.message.buffer_len()
    }

    /// Writes the IPv6 header and the message, with its checksum, into a
    /// buffer of at least [`buffer_len`](Self::buffer_len) bytes. Nothing
    /// is checked: a value [`parse`](Self::parse) would refuse (hop limit
    /// other than 255, a DAD solicitation with a link-layer option, ...) is
    /// written as it is.
    pub fn emit<B: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Ipv6Packet<B>) {
        let len = self.message.buffer_len();
        let ip = Ipv6Repr {
            src: self.src,
            dst: self.dst,
            next_header: NEXT_HEADER_ICMPV6,
            payload_len: u16::try_from(len).unwrap_or(u16::MAX),
            hop_limit: self.hop_limit,
        };
        ip.emit(p);
        self.message.emit(self.src, self.dst, &mut NdpPacket::new_unchecked(p.payload_mut()));
    }
}
