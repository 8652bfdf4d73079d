//! A whole Ethernet frame carrying ARP or NDP: what a responder reads from
//! and writes to an `AF_PACKET` socket.

use super::arp::ArpPacket;
use super::ethernet::{self, EthernetFrame};
use super::ipv6::Ipv6Packet;
use super::{ArpRepr, EtherType, EthernetRepr, Ipv6NdpRepr, MacAddr, WireError};

/// Minimum Ethernet frame length without the FCS; shorter frames are padded with zeros.
pub const MIN_FRAME_LEN: usize = 60;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FrameBody {
    /// An ARP packet (IPv4 over Ethernet).
    Arp(ArpRepr),
    /// An IPv6 Neighbor Solicitation or Advertisement.
    Ndp(Ipv6NdpRepr),
    /// Anything else: another EtherType, or IPv6 that is not an NS or NA.
    Other(EtherType),
}

/// A parsed Ethernet frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Frame {
    /// The Ethernet header.
    pub ethernet: EthernetRepr,
    /// The payload.
    pub body: FrameBody,
}

impl Frame {
    /// Parses a frame (without FCS). Total: any bytes give a frame or an
    /// error, never a panic. IPv6 that is not ICMPv6, or ICMPv6 other than
    /// NS/NA, is [`FrameBody::Other`]; a malformed ARP packet, IPv6 header
    /// or NS/NA is an error.
    pub fn parse(bytes: &[u8]) -> Result<Frame, WireError> {
        let eth = EthernetFrame::new_checked(bytes)?;
        let ethernet = EthernetRepr::parse(&eth)?;
        let body = match ethernet.ethertype {
            EtherType::Arp => FrameBody::Arp(ArpRepr::parse(&ArpPacket::new_checked(eth.payload())?)?),
            EtherType::Ipv6 => match Ipv6NdpRepr::parse(&Ipv6Packet::new_checked(eth.payload())?) {
                Ok(ndp) => FrameBody::Ndp(ndp),
                Err(WireError::NotIcmpv6(_) | WireError::NotNeighborMessage(_)) => FrameBody::Other(EtherType::Ipv6),
                Err(e) => return Err(e),
            },
            other => FrameBody::Other(other),
        };
        Ok(Frame { ethernet, body })
    }

    /// Bytes [`emit`](Self::emit) writes, padding included.
    #[must_use]
    pub fn buffer_len(&self) -> usize {
        let body = match &self.body {
            FrameBody::Arp(a) => a.buffer_len(),
            FrameBody::Ndp(n) => n.buffer_len(),
            FrameBody::Other(_) => return ethernet::HEADER_LEN,
        };
        (ethernet::HEADER_LEN + body).max(MIN_FRAME_LEN)
    }

    /// The frame's bytes, padded to [`MIN_FRAME_LEN`]. The EtherType written
    /// is the body's (ARP, IPv6); for [`FrameBody::Other`] only the Ethernet
    /// header is written.
    #[must_use]
    pub fn emit(&self) -> Vec<u8> {
        let mut buf = vec![0u8; self.buffer_len()];
        let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
        let ethertype = match &self.body {
            FrameBody::Arp(a) => {
                a.emit(&mut ArpPacket::new_unchecked(eth.payload_mut()));
                EtherType::Arp
            }
            FrameBody::Ndp(n) => {
                n.emit(&mut Ipv6Packet::new_unchecked(eth.payload_mut()));
                EtherType::Ipv6
            }
            FrameBody::Other(t) => *t,
        };
        EthernetRepr { ethertype, ..self.ethernet }.emit(&mut eth);
        buf
    }
}

/// A complete Ethernet frame carrying `arp` from `src` to `dst`, padded to [`MIN_FRAME_LEN`].
#[must_use]
pub fn arp_frame(dst: MacAddr, src: MacAddr, arp: &ArpRepr) -> Vec<u8> {
    Frame { ethernet: EthernetRepr { dst, src, ethertype: EtherType::Arp }, body: FrameBody::Arp(*arp) }.emit()
}

/// A complete Ethernet + IPv6 + ICMPv6 frame carrying `ndp` from `src` to
/// `dst`, with the ICMPv6 checksum computed.
#[must_use]
pub fn ndp_frame(dst: MacAddr, src: MacAddr, ndp: &Ipv6NdpRepr) -> Vec<u8> {
    Frame { ethernet: EthernetRepr { dst, src, ethertype: EtherType::Ipv6 }, body: FrameBody::Ndp(*ndp) }.emit()
}

#[cfg(test)]
mod tests;
