//! IP prefixes as NLRI carries them: a length in bits and just enough
//! octets of address (RFC 4271 §4.3, RFC 4760 §5).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};

/// An IPv4 or IPv6 prefix, host bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

impl Prefix {
    /// The prefix of `addr` of `len` bits (host bits cleared); `None` if
    /// `len` is longer than the address.
    pub fn new(addr: IpAddr, len: u8) -> Option<Self> {
        let addr = match addr {
            IpAddr::V4(a) if len <= 32 => IpAddr::V4(Ipv4Addr::from(mask32(u32::from(a), len))),
            IpAddr::V6(a) if len <= 128 => IpAddr::V6(Ipv6Addr::from(mask128(u128::from(a), len))),
            _ => return None,
        };
        Some(Self { addr, len })
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn len(&self) -> u8 {
        self.len
    }

    /// A /0 is a prefix too; it is not empty in any useful sense.
    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// Octets this prefix takes in NLRI.
    pub fn encoded_len(&self) -> usize {
        1 + usize::from(self.len).div_ceil(8)
    }

    pub fn encode(&self, out: &mut BytesMut) {
        let n = usize::from(self.len).div_ceil(8);
        out.put_u8(self.len);
        match self.addr {
            IpAddr::V4(a) => out.put_slice(&a.octets()[..n]),
            IpAddr::V6(a) => out.put_slice(&a.octets()[..n]),
        }
    }
}

fn mask32(v: u32, len: u8) -> u32 {
    if len == 0 { 0 } else { v & (u32::MAX << (32 - u32::from(len))) }
}

fn mask128(v: u128, len: u8) -> u128 {
    if len == 0 { 0 } else { v & (u128::MAX << (128 - u32::from(len))) }
}

/// Why NLRI bytes are not a list of prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidNlri;

/// Reads a whole NLRI field of one family into `out`. Host bits that are
/// set are cleared (RFC 4271 leaves them undefined; they are not an error).
pub fn decode_nlri(mut bytes: &[u8], ipv6: bool, out: &mut Vec<Prefix>) -> Result<(), InvalidNlri> {
    let max = if ipv6 { 128 } else { 32 };
    while let [len, rest @ ..] = bytes {
        if *len > max {
            return Err(InvalidNlri);
        }
        let n = usize::from(*len).div_ceil(8);
        let addr = rest.get(..n).ok_or(InvalidNlri)?;
        let prefix = if ipv6 {
            let mut octets = [0u8; 16];
            octets[..n].copy_from_slice(addr);
            Prefix { addr: IpAddr::V6(Ipv6Addr::from(mask128(u128::from_be_bytes(octets), *len))), len: *len }
        } else {
            let mut octets = [0u8; 4];
            octets[..n].copy_from_slice(addr);
            Prefix { addr: IpAddr::V4(Ipv4Addr::from(mask32(u32::from_be_bytes(octets), *len))), len: *len }
        };
        out.push(prefix);
        bytes = &rest[n..];
    }
    Ok(())
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        let (a, l) = s.split_once('/').expect("prefix");
        Prefix::new(a.parse().expect("addr"), l.parse().expect("len")).expect("valid")
    }

    #[test]
    fn nlri_round_trip() {
        let prefixes = [p("192.0.2.1/32"), p("198.51.100.0/24"), p("0.0.0.0/0"), p("203.0.113.128/25")];
        let mut out = BytesMut::new();
        for x in &prefixes {
            x.encode(&mut out);
        }
        assert_eq!(out.len(), prefixes.iter().map(Prefix::encoded_len).sum::<usize>());
        let mut back = Vec::new();
        decode_nlri(&out, false, &mut back).expect("valid");
        assert_eq!(back, prefixes);
    }

    #[test]
    fn host_bits_are_cleared_and_bad_lengths_refused() {
        assert_eq!(p("192.0.2.77/24").to_string(), "192.0.2.0/24");
        let mut v = Vec::new();
        decode_nlri(&[24, 192, 0, 2], false, &mut v).expect("valid");
        assert_eq!(v, [p("192.0.2.0/24")]);
        assert_eq!(decode_nlri(&[33, 1, 2, 3, 4, 5], false, &mut v), Err(InvalidNlri));
        assert_eq!(decode_nlri(&[24, 192, 0], false, &mut v), Err(InvalidNlri));
        let mut v6 = Vec::new();
        decode_nlri(&[64, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1], true, &mut v6).expect("valid");
        assert_eq!(v6, [p("2001:db8:0:1::/64")]);
        assert_eq!(Prefix::new("2001:db8::".parse().expect("v6"), 129), None);
    }
}
