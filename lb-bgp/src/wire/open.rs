//! OPEN (RFC 4271 §4.2) with capabilities (RFC 5492) and extended optional
//! parameters length (RFC 9072).
//!
//! ```text
//! +-+-+-+-+-+-+-+-+
//! |    Version    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     My Autonomous System      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Hold Time           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         BGP Identifier                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Opt Parm Len  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |             Optional Parameters (variable)                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::net::Ipv4Addr;

use bytes::{BufMut, BytesMut};

use super::DecodeError;
use super::consts::{Afi, Safi};

/// `AS_TRANS` (RFC 6793): the 2-octet stand-in for a 4-octet ASN.
pub const AS_TRANS: u16 = 23456;

const PARAM_CAPABILITIES: u8 = 2;
/// RFC 9072: an Opt Parm Len of 255 followed by this type announces 2-octet lengths.
const PARAM_EXTENDED_LENGTH: u8 = 255;

/// One family in a graceful restart capability, with its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartFamily {
    pub afi: Afi,
    pub safi: Safi,
    /// Bit 0x80: forwarding state preserved.
    pub flags: u8,
}

/// A capability (RFC 5492); unknown ones are kept so they can be logged.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Capability {
    /// RFC 4760, code 1.
    Multiprotocol {
        afi: Afi,
        safi: Safi,
    },
    /// RFC 2918, code 2.
    RouteRefresh,
    /// RFC 8654, code 6.
    ExtendedMessage,
    /// RFC 4724, code 64: restart flags (high 4 bits) and time (12 bits).
    GracefulRestart {
        flags: u8,
        time: u16,
        families: Vec<RestartFamily>,
    },
    /// RFC 6793, code 65.
    FourOctetAsn(u32),
    /// RFC 7313, code 70.
    EnhancedRouteRefresh,
    Unknown {
        code: u8,
        value: Vec<u8>,
    },
}

impl Capability {
    fn decode(code: u8, value: &[u8]) -> Result<Self, DecodeError> {
        let malformed = DecodeError::MalformedOpen;
        Ok(match (code, value) {
            (1, &[a, b, _, safi]) => {
                Capability::Multiprotocol { afi: u16::from_be_bytes([a, b]).into(), safi: safi.into() }
            }
            (2, []) => Capability::RouteRefresh,
            (6, []) => Capability::ExtendedMessage,
            (64, [a, b, rest @ ..]) if rest.len() % 4 == 0 => Capability::GracefulRestart {
                flags: a >> 4,
                time: u16::from_be_bytes([a & 0x0f, *b]),
                families: rest
                    .chunks_exact(4)
                    .map(|c| RestartFamily {
                        afi: u16::from_be_bytes([c[0], c[1]]).into(),
                        safi: c[2].into(),
                        flags: c[3],
                    })
                    .collect(),
            },
            (65, &[a, b, c, d]) => Capability::FourOctetAsn(u32::from_be_bytes([a, b, c, d])),
            (70, []) => Capability::EnhancedRouteRefresh,
            (1 | 2 | 6 | 64 | 65 | 70, _) => return Err(malformed),
            (code, value) => Capability::Unknown { code, value: value.to_vec() },
        })
    }

    /// Octets of the value (after code and length).
    fn value_len(&self) -> usize {
        match self {
            Capability::Multiprotocol { .. } | Capability::FourOctetAsn(_) => 4,
            Capability::RouteRefresh | Capability::ExtendedMessage | Capability::EnhancedRouteRefresh => 0,
            Capability::GracefulRestart { families, .. } => 2 + 4 * families.len(),
            Capability::Unknown { value, .. } => value.len(),
        }
    }

    fn encode(&self, out: &mut BytesMut) {
        let mut value = BytesMut::new();
        let code = match self {
            Capability::Multiprotocol { afi, safi } => {
                value.put_u16((*afi).into());
                value.put_u8(0);
                value.put_u8((*safi).into());
                1
            }
            Capability::RouteRefresh => 2,
            Capability::ExtendedMessage => 6,
            Capability::GracefulRestart { flags, time, families } => {
                value.put_u16((u16::from(*flags) << 12) | (time & 0x0fff));
                for f in families {
                    value.put_u16(f.afi.into());
                    value.put_u8(f.safi.into());
                    value.put_u8(f.flags);
                }
                64
            }
            Capability::FourOctetAsn(asn) => {
                value.put_u32(*asn);
                65
            }
            Capability::EnhancedRouteRefresh => 70,
            Capability::Unknown { code, value: v } => {
                value.put_slice(v);
                *code
            }
        };
        out.put_u8(code);
        out.put_u8(value.len() as u8);
        out.put_slice(&value);
    }
}

/// An OPEN message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    /// The 2-octet AS field: the ASN, or [`AS_TRANS`] when it needs 4 octets.
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    pub capabilities: Vec<Capability>,
}

impl Open {
    /// An OPEN for `asn`, with AS_TRANS in the 2-octet field where needed
    /// and the 4-octet ASN capability always present.
    pub fn new(asn: u32, hold_time: u16, bgp_id: Ipv4Addr, mut capabilities: Vec<Capability>) -> Self {
        let my_as = u16::try_from(asn).unwrap_or(AS_TRANS);
        if !capabilities.iter().any(|c| matches!(c, Capability::FourOctetAsn(_))) {
            capabilities.push(Capability::FourOctetAsn(asn));
        }
        Self { my_as, hold_time, bgp_id, capabilities }
    }

    /// The sender's ASN: from the 4-octet capability if present.
    pub fn asn(&self) -> u32 {
        self.capabilities
            .iter()
            .find_map(|c| match c {
                Capability::FourOctetAsn(asn) => Some(*asn),
                _ => None,
            })
            .unwrap_or(u32::from(self.my_as))
    }

    pub fn has(&self, wanted: &Capability) -> bool {
        self.capabilities.contains(wanted)
    }

    /// Decodes the message body (after the header).
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let [version, a0, a1, h0, h1, i0, i1, i2, i3, param_len, params @ ..] = body else {
            return Err(DecodeError::BadLength { len: (body.len() + 19) as u16, kind: 1 });
        };
        if *version != 4 {
            return Err(DecodeError::UnsupportedVersion(*version));
        }
        let hold_time = u16::from_be_bytes([*h0, *h1]);
        if hold_time == 1 || hold_time == 2 {
            return Err(DecodeError::UnacceptableHoldTime(hold_time));
        }
        let bgp_id = Ipv4Addr::new(*i0, *i1, *i2, *i3);
        if bgp_id.is_unspecified() {
            return Err(DecodeError::BadBgpIdentifier);
        }
        // RFC 9072: 255 then type 255 means the real length follows in 2 octets,
        // and every parameter's length is 2 octets too.
        let (params, wide) = match (*param_len, params) {
            (255, [PARAM_EXTENDED_LENGTH, l0, l1, rest @ ..]) => {
                (take(rest, usize::from(u16::from_be_bytes([*l0, *l1])))?, true)
            }
            (len, rest) => (take(rest, usize::from(len))?, false),
        };
        let mut capabilities = Vec::new();
        let mut rest = params;
        while !rest.is_empty() {
            let (kind, len, after) = match (wide, rest) {
                (false, [kind, len, after @ ..]) => (*kind, usize::from(*len), after),
                (true, [kind, l0, l1, after @ ..]) => (*kind, usize::from(u16::from_be_bytes([*l0, *l1])), after),
                _ => return Err(DecodeError::MalformedOpen),
            };
            let value = after.get(..len).ok_or(DecodeError::MalformedOpen)?;
            rest = &after[len..];
            if kind != PARAM_CAPABILITIES {
                return Err(DecodeError::UnsupportedOptionalParameter(kind));
            }
            let mut caps = value;
            while !caps.is_empty() {
                let [code, len, after @ ..] = caps else { return Err(DecodeError::MalformedOpen) };
                let value = after.get(..usize::from(*len)).ok_or(DecodeError::MalformedOpen)?;
                capabilities.push(Capability::decode(*code, value)?);
                caps = &after[usize::from(*len)..];
            }
        }
        Ok(Self { my_as: u16::from_be_bytes([*a0, *a1]), hold_time, bgp_id, capabilities })
    }

    /// Octets [`Self::encode`] appends.
    pub fn encoded_len(&self) -> usize {
        let short_len: usize = self.capabilities.iter().map(|c| 2 + 2 + c.value_len()).sum();
        if short_len <= 255 {
            10 + short_len
        } else {
            10 + 3 + self.capabilities.iter().map(|c| 3 + 2 + c.value_len()).sum::<usize>()
        }
    }

    /// Appends the message body; each capability in its own parameter, as
    /// BIRD and FRR do, switching to RFC 9072's 2-octet lengths when the
    /// parameters outgrow 255 octets.
    pub fn encode(&self, out: &mut BytesMut) {
        let values: Vec<BytesMut> = self
            .capabilities
            .iter()
            .map(|c| {
                let mut value = BytesMut::new();
                c.encode(&mut value);
                value
            })
            .collect();
        let short_len: usize = values.iter().map(|v| 2 + v.len()).sum();
        out.put_u8(4);
        out.put_u16(self.my_as);
        out.put_u16(self.hold_time);
        out.put_slice(&self.bgp_id.octets());
        if short_len <= 255 {
            out.put_u8(short_len as u8);
            for v in &values {
                out.put_u8(PARAM_CAPABILITIES);
                out.put_u8(v.len() as u8);
                out.put_slice(v);
            }
        } else {
            let long_len: usize = values.iter().map(|v| 3 + v.len()).sum();
            out.put_u8(255);
            out.put_u8(PARAM_EXTENDED_LENGTH);
            out.put_u16(long_len as u16);
            for v in &values {
                out.put_u8(PARAM_CAPABILITIES);
                out.put_u16(v.len() as u16);
                out.put_slice(v);
            }
        }
    }
}

fn take(bytes: &[u8], len: usize) -> Result<&[u8], DecodeError> {
    // Parameters must fill the message exactly.
    (bytes.len() == len).then_some(bytes).ok_or(DecodeError::MalformedOpen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Context, Message};

    fn round_trip(open: Open) {
        let mut out = BytesMut::new();
        let msg = Message::Open(open);
        msg.encode(&Context::default(), &mut out);
        assert_eq!(Message::decode(&out, &Context::default()), Ok(msg));
    }

    #[test]
    fn four_octet_asns_use_as_trans() {
        let open = Open::new(4_200_000_000, 90, Ipv4Addr::new(192, 0, 2, 1), vec![Capability::RouteRefresh]);
        assert_eq!(open.my_as, AS_TRANS);
        assert_eq!(open.asn(), 4_200_000_000);
        round_trip(open);
        assert_eq!(Open::new(64512, 90, Ipv4Addr::new(192, 0, 2, 1), vec![]).my_as, 64512);
    }

    #[test]
    fn every_capability_round_trips() {
        round_trip(Open::new(
            64512,
            9,
            Ipv4Addr::new(198, 51, 100, 7),
            vec![
                Capability::Multiprotocol { afi: Afi::Ipv4, safi: Safi::Unicast },
                Capability::Multiprotocol { afi: Afi::Ipv6, safi: Safi::Unicast },
                Capability::RouteRefresh,
                Capability::EnhancedRouteRefresh,
                Capability::ExtendedMessage,
                Capability::GracefulRestart {
                    flags: 0x8,
                    time: 120,
                    families: vec![RestartFamily { afi: Afi::Ipv4, safi: Safi::Unicast, flags: 0x80 }],
                },
                Capability::Unknown { code: 73, value: b"hostname".to_vec() },
            ],
        ));
    }

    /// An OPEN as RFC 4271 lays it out, byte for byte: AS 65001, hold 180,
    /// identifier 192.0.2.1, one capability parameter holding MP IPv4 unicast.
    #[test]
    fn byte_exact() {
        let body = [4, 0xfd, 0xe9, 0, 180, 192, 0, 2, 1, 8, 2, 6, 1, 4, 0, 1, 0, 1];
        let open = Open::decode(&body).expect("valid");
        assert_eq!(open.asn(), 65001);
        assert_eq!(open.hold_time, 180);
        assert_eq!(open.capabilities, [Capability::Multiprotocol { afi: Afi::Ipv4, safi: Safi::Unicast }]);
        let mut out = BytesMut::new();
        open.encode(&mut out);
        assert_eq!(out.as_ref(), body);
    }

    #[test]
    fn open_errors_carry_their_notification() {
        let good = [4, 0xfd, 0xe9, 0, 180, 192, 0, 2, 1, 0];
        let with = |i: usize, v: u8| {
            let mut b = good.to_vec();
            b[i] = v;
            Open::decode(&b)
        };
        assert_eq!(with(0, 3), Err(DecodeError::UnsupportedVersion(3)));
        assert_eq!(with(4, 2), Err(DecodeError::UnacceptableHoldTime(2)));
        let zero_id = [4, 0xfd, 0xe9, 0, 180, 0, 0, 0, 0, 0];
        assert_eq!(Open::decode(&zero_id), Err(DecodeError::BadBgpIdentifier));
        let auth_param = [4, 0xfd, 0xe9, 0, 180, 192, 0, 2, 1, 3, 1, 1, 0];
        assert_eq!(Open::decode(&auth_param), Err(DecodeError::UnsupportedOptionalParameter(1)));
        let overrun = [4, 0xfd, 0xe9, 0, 180, 192, 0, 2, 1, 4, 2, 9, 1, 0];
        assert_eq!(Open::decode(&overrun), Err(DecodeError::MalformedOpen));
        assert_eq!(DecodeError::UnsupportedVersion(3).notification().data, [0, 4]);
        assert_eq!(
            DecodeError::UnacceptableHoldTime(2).notification().error,
            crate::wire::NotificationError::Open(crate::wire::OpenSubcode::UnacceptableHoldTime)
        );
    }

    #[test]
    fn many_capabilities_switch_to_extended_lengths() {
        let caps = (0..40).map(|i| Capability::Unknown { code: 200, value: vec![i; 10] }).collect();
        round_trip(Open::new(64512, 90, Ipv4Addr::new(192, 0, 2, 1), caps));
    }

    #[test]
    fn extended_optional_parameters_length() {
        // RFC 9072: 255, type 255, 2-octet length, then 2-octet parameter lengths.
        let body = [4, 0xfd, 0xe9, 0, 180, 192, 0, 2, 1, 255, 255, 0, 5, 2, 0, 2, 2, 0];
        assert_eq!(Open::decode(&body).expect("valid").capabilities, [Capability::RouteRefresh]);
    }
}
