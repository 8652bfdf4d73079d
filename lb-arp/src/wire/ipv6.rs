//! The fixed IPv6 header (RFC 8200 §3).
//!
//! ```text
//!  0       4               12                              32
//! +-------+---------------+-------------------------------+
//! |version| traffic class |          flow label           |
//! +-------+---------------+---------------+---------------+
//! |        payload length | next header   |  hop limit    |
//! +-----------------------+---------------+---------------+
//! |                source address (16 octets)             |
//! |             destination address (16 octets)           |
//! +-------------------------------------------------------+
//! ```
//!
//! Extension headers are not followed.

use std::net::Ipv6Addr;

use super::WireError;

/// Length of the fixed header.
pub const HEADER_LEN: usize = 40;
/// Next header value of ICMPv6.
pub const NEXT_HEADER_ICMPV6: u8 = 58;

mod field {
    use std::ops::Range;
    pub const VERSION: usize = 0;
    pub const PAYLOAD_LEN: Range<usize> = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
}

fn addr(b: &[u8]) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&b[..16]);
    Ipv6Addr::from(o)
}

/// A view over an IPv6 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Packet<B> {
    buffer: B,
}

impl<B: AsRef<[u8]>> Ipv6Packet<B> {
    /// Wraps `buffer` without checking its length.
    pub const fn new_unchecked(buffer: B) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: B) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Whether the buffer holds the header and the payload length it
    /// announces; afterwards no accessor panics. Bytes past the payload
    /// (Ethernet padding) are allowed and ignored.
    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN || b.len() < HEADER_LEN + usize::from(self.payload_len()) {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> B {
        self.buffer
    }

    /// Version field (6 for IPv6).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION] >> 4
    }

    /// Payload length.
    pub fn payload_len(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::PAYLOAD_LEN];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Next header.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    pub fn src(&self) -> Ipv6Addr {
        addr(&self.buffer.as_ref()[field::SRC])
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv6Addr {
        addr(&self.buffer.as_ref()[field::DST])
    }

    /// The payload, as long as the payload length says.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())]
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<B> {
    /// Sets version 6, traffic class 0 and flow label 0.
    pub fn set_version_class_flow(&mut self) {
        self.buffer.as_mut()[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
    }

    /// Sets the payload length.
    pub fn set_payload_len(&mut self, len: u16) {
        self.buffer.as_mut()[field::PAYLOAD_LEN].copy_from_slice(&len.to_be_bytes());
    }

    /// Sets the next header.
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = v;
    }

    /// Sets the hop limit.
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = v;
    }

    /// Sets the source address.
    pub fn set_src(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.octets());
    }

    /// Sets the destination address.
    pub fn set_dst(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.octets());
    }

    /// The payload, writable, as long as the payload length says.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = usize::from(self.payload_len());
        &mut self.buffer.as_mut()[HEADER_LEN..HEADER_LEN + len]
    }
}

/// The fixed IPv6 header (traffic class and flow label are emitted as 0 and not kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Repr {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Next header.
    pub next_header: u8,
    /// Payload length.
    pub payload_len: u16,
    /// Hop limit.
    pub hop_limit: u8,
}

impl Ipv6Repr {
    /// Reads the header, refusing a version other than 6.
    pub fn parse<B: AsRef<[u8]>>(p: &Ipv6Packet<B>) -> Result<Self, WireError> {
        p.check_len()?;
        if p.version() != 6 {
            return Err(WireError::Ipv6Version(p.version()));
        }
        Ok(Ipv6Repr {
            src: p.src(),
            dst: p.dst(),
            next_header: p.next_header(),
            payload_len: p.payload_len(),
            hop_limit: p.hop_limit(),
        })
    }

    /// Bytes [`emit`](Self::emit) writes: [`HEADER_LEN`].
    #[must_use]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into a buffer of at least [`HEADER_LEN`] bytes.
    pub fn emit<B: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Ipv6Packet<B>) {
        p.set_version_class_flow();
        p.set_payload_len(self.payload_len);
        p.set_next_header(self.next_header);
        p.set_hop_limit(self.hop_limit);
        p.set_src(self.src);
        p.set_dst(self.dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn truncated_and_version() {
        let mut b = [0u8; 42];
        b[0] = 0x60;
        b[5] = 3; // payload 3 > 2
        assert_eq!(Ipv6Packet::new_checked(&b[..]), Err(WireError::Truncated));
        b[5] = 2;
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.payload().len(), 2);
        b[0] = 0x40;
        assert_eq!(Ipv6Repr::parse(&Ipv6Packet::new_checked(&b[..]).unwrap()), Err(WireError::Ipv6Version(4)));
        assert_eq!(Ipv6Packet::new_checked(&b[..39]), Err(WireError::Truncated));
    }

    proptest! {
        #[test]
        fn round_trip(src: [u8; 16], dst: [u8; 16], nh: u8, hl: u8, len in 0u16..64) {
            let repr = Ipv6Repr { src: src.into(), dst: dst.into(), next_header: nh, payload_len: len, hop_limit: hl };
            let mut buf = vec![0u8; HEADER_LEN + usize::from(len)];
            repr.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..]));
            prop_assert_eq!(Ipv6Repr::parse(&Ipv6Packet::new_checked(&buf[..]).unwrap()), Ok(repr));
        }
    }
}
