//! UPDATE (RFC 4271 §4.3) with the path attributes a load balancer sends
//! and meets, MP-BGP for IPv6 (RFC 4760), and RFC 7606 error handling.
//!
//! ```text
//! +-----------------------------------------------------+
//! |   Withdrawn Routes Length (2 octets)                |
//! +-----------------------------------------------------+
//! |   Withdrawn Routes (variable)                       |
//! +-----------------------------------------------------+
//! |   Total Path Attribute Length (2 octets)            |
//! +-----------------------------------------------------+
//! |   Path Attributes (variable)                        |
//! +-----------------------------------------------------+
//! |   Network Layer Reachability Information (variable) |
//! +-----------------------------------------------------+
//! ```
//!
//! A load balancer never uses received routes, so an error inside an
//! attribute only makes the UPDATE void (RFC 7606 "treat-as-withdraw" or
//! "attribute discard"); errors that lose track of where things are
//! (lengths that do not add up, unparsable NLRI or MP attributes) reset
//! the session. [`UpdateError::resets_session`] tells which.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};

use super::Context;
use super::consts::{Afi, AsSegmentType, Safi, UpdateSubcode as Sub};
use super::notification::{Notification, NotificationError};
use super::prefix::{Prefix, decode_nlri};

/// Path attribute type codes (IANA).
pub mod attr {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MULTI_EXIT_DISC: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const MP_REACH_NLRI: u8 = 14;
    pub const MP_UNREACH_NLRI: u8 = 15;
    /// RFC 6793: the real path, beside an AS_PATH with AS_TRANS, for peers
    /// that only know 2-octet ASNs.
    pub const AS4_PATH: u8 = 17;
    /// RFC 6793: the real AGGREGATOR AS beside one with AS_TRANS.
    pub const AS4_AGGREGATOR: u8 = 18;
    pub const LARGE_COMMUNITY: u8 = 32;
}

/// Attribute flag bits.
pub mod flag {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// ORIGIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Origin {
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

/// One AS_PATH segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AsSegment {
    Set(Vec<u32>),
    Sequence(Vec<u32>),
    /// RFC 5065 confederation segments, kept as read.
    ConfedSequence(Vec<u32>),
    ConfedSet(Vec<u32>),
}

impl AsSegment {
    /// The segment's type on the wire.
    pub fn kind(&self) -> AsSegmentType {
        match self {
            AsSegment::Set(_) => AsSegmentType::AsSet,
            AsSegment::Sequence(_) => AsSegmentType::AsSequence,
            AsSegment::ConfedSequence(_) => AsSegmentType::AsConfedSequence,
            AsSegment::ConfedSet(_) => AsSegmentType::AsConfedSet,
        }
    }

    /// The ASNs of the segment, whatever its type.
    pub fn asns(&self) -> &Vec<u32> {
        match self {
            AsSegment::Set(a) | AsSegment::Sequence(a) | AsSegment::ConfedSequence(a) | AsSegment::ConfedSet(a) => a,
        }
    }
}

/// AGGREGATOR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Aggregator {
    pub asn: u32,
    pub address: Ipv4Addr,
}

/// MP_REACH_NLRI: routes of another family and their next hop(s).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MpReach {
    pub afi: Afi,
    pub safi: Safi,
    /// For IPv6: the global address, then the link-local one if present.
    pub next_hops: Vec<IpAddr>,
    pub nlri: Vec<Prefix>,
}

/// MP_UNREACH_NLRI: withdrawn routes of another family.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MpUnreach {
    pub afi: Afi,
    pub safi: Safi,
    pub withdrawn: Vec<Prefix>,
}

/// An attribute this crate does not interpret, kept as it came.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawAttribute {
    pub flags: u8,
    pub code: u8,
    pub value: Vec<u8>,
}

/// The path attributes of an UPDATE.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Attributes {
    pub origin: Option<Origin>,
    pub as_path: Option<Vec<AsSegment>>,
    pub next_hop: Option<Ipv4Addr>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    pub aggregator: Option<Aggregator>,
    pub communities: Vec<u32>,
    pub large_communities: Vec<[u32; 3]>,
    pub mp_reach: Option<MpReach>,
    pub mp_unreach: Option<MpUnreach>,
    pub unknown: Vec<RawAttribute>,
}

/// An UPDATE message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    /// Withdrawn IPv4 routes.
    pub withdrawn: Vec<Prefix>,
    pub attributes: Attributes,
    /// Announced IPv4 routes.
    pub nlri: Vec<Prefix>,
}

/// What went wrong in an UPDATE.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// Withdrawn or attribute lengths that overrun the message, or an MP attribute twice.
    #[error("malformed attribute list")]
    MalformedAttributeList,
    /// An attribute that runs past the end of the attribute list.
    #[error("attribute runs past the attribute list")]
    AttributeOverrun,
    /// A well-known attribute code this speaker does not know.
    #[error("unrecognized well-known attribute {0}")]
    UnrecognizedWellKnown(u8),
    /// ORIGIN, AS_PATH or NEXT_HOP missing from an UPDATE with NLRI.
    #[error("missing well-known attribute {0}")]
    MissingWellKnown(u8),
    /// Flags that contradict the attribute's type.
    #[error("attribute {code} has wrong flags {flags:#04x}")]
    AttributeFlags { code: u8, flags: u8 },
    /// A length the attribute cannot have.
    #[error("attribute {code} has wrong length {len}")]
    AttributeLength { code: u8, len: usize },
    /// ORIGIN above 2.
    #[error("invalid ORIGIN {0}")]
    InvalidOrigin(u8),
    /// NEXT_HOP that is not a usable unicast address.
    #[error("invalid NEXT_HOP {0}")]
    InvalidNextHop(Ipv4Addr),
    /// AS_PATH segments that do not parse.
    #[error("malformed AS_PATH")]
    MalformedAsPath,
    /// NLRI (plain or MP) that do not parse.
    #[error("invalid network field")]
    InvalidNetworkField,
    /// MP_REACH_NLRI / MP_UNREACH_NLRI that do not parse.
    #[error("malformed {0} attribute")]
    MalformedMp(&'static str),
}

impl UpdateError {
    /// RFC 7606: only errors that leave the message unparsable reset the
    /// session; the others void this UPDATE alone.
    pub fn resets_session(&self) -> bool {
        matches!(
            self,
            UpdateError::MalformedAttributeList | UpdateError::InvalidNetworkField | UpdateError::MalformedMp(_)
        )
    }

    /// The NOTIFICATION RFC 4271 names for this error (sent only when the
    /// session is reset).
    pub fn notification(&self) -> Notification {
        let (subcode, data) = match self {
            UpdateError::MalformedAttributeList | UpdateError::MalformedMp(_) | UpdateError::AttributeOverrun => {
                (Sub::MalformedAttributeList, vec![])
            }
            UpdateError::UnrecognizedWellKnown(c) => (Sub::UnrecognizedWellKnownAttribute, vec![*c]),
            UpdateError::MissingWellKnown(c) => (Sub::MissingWellKnownAttribute, vec![*c]),
            UpdateError::AttributeFlags { code, flags } => (Sub::AttributeFlagsError, vec![*flags, *code]),
            UpdateError::AttributeLength { code, .. } => (Sub::AttributeLengthError, vec![*code]),
            UpdateError::InvalidOrigin(_) => (Sub::InvalidOriginAttribute, vec![]),
            UpdateError::InvalidNextHop(ip) => (Sub::InvalidNextHopAttribute, ip.octets().to_vec()),
            UpdateError::InvalidNetworkField => (Sub::InvalidNetworkField, vec![]),
            UpdateError::MalformedAsPath => (Sub::MalformedAsPath, vec![]),
        };
        Notification::with_data(NotificationError::Update(subcode), data)
    }
}

/// The flags each known attribute must carry (optional and transitive bits).
fn expected_flags(code: u8) -> Option<u8> {
    Some(match code {
        attr::ORIGIN | attr::AS_PATH | attr::NEXT_HOP | attr::LOCAL_PREF | attr::ATOMIC_AGGREGATE => flag::TRANSITIVE,
        attr::MULTI_EXIT_DISC | attr::MP_REACH_NLRI | attr::MP_UNREACH_NLRI => flag::OPTIONAL,
        attr::AGGREGATOR | attr::COMMUNITIES | attr::LARGE_COMMUNITY => flag::OPTIONAL | flag::TRANSITIVE,
        _ => return None,
    })
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

impl Update {
    /// An End-of-RIB marker for IPv4 unicast (RFC 4724): an empty UPDATE.
    pub fn end_of_rib_ipv4() -> Self {
        Self::default()
    }

    /// An End-of-RIB marker for another family: an empty MP_UNREACH_NLRI.
    pub fn end_of_rib(afi: Afi, safi: Safi) -> Self {
        let attributes =
            Attributes { mp_unreach: Some(MpUnreach { afi, safi, withdrawn: vec![] }), ..Default::default() };
        Self { attributes, ..Default::default() }
    }

    /// Decodes the message body (after the header).
    pub fn decode(body: &[u8], ctx: &Context) -> Result<Self, UpdateError> {
        let bad_list = UpdateError::MalformedAttributeList;
        let [w0, w1, rest @ ..] = body else { return Err(bad_list) };
        let withdrawn_len = usize::from(u16::from_be_bytes([*w0, *w1]));
        let withdrawn_bytes = rest.get(..withdrawn_len).ok_or(bad_list.clone())?;
        let [a0, a1, rest @ ..] = &rest[withdrawn_len..] else { return Err(bad_list) };
        let attrs_len = usize::from(u16::from_be_bytes([*a0, *a1]));
        let attr_bytes = rest.get(..attrs_len).ok_or(bad_list)?;
        let nlri_bytes = &rest[attrs_len..];

        let mut update = Update::default();
        decode_nlri(withdrawn_bytes, false, &mut update.withdrawn).map_err(|_| UpdateError::InvalidNetworkField)?;
        decode_nlri(nlri_bytes, false, &mut update.nlri).map_err(|_| UpdateError::InvalidNetworkField)?;
        update.attributes = Attributes::decode(attr_bytes, ctx)?;

        let a = &update.attributes;
        let announces = !update.nlri.is_empty() || a.mp_reach.as_ref().is_some_and(|m| !m.nlri.is_empty());
        if announces {
            if a.origin.is_none() {
                return Err(UpdateError::MissingWellKnown(attr::ORIGIN));
            }
            if a.as_path.is_none() {
                return Err(UpdateError::MissingWellKnown(attr::AS_PATH));
            }
            if !update.nlri.is_empty() && a.next_hop.is_none() {
                return Err(UpdateError::MissingWellKnown(attr::NEXT_HOP));
            }
        }
        Ok(update)
    }

    /// Octets [`Self::encode`] appends in `ctx`: a caller budgets a message
    /// in the context the session negotiated (a 2-octet peer gets AS4_PATH
    /// beside AS_PATH) without encoding it first.
    pub fn encoded_len(&self, ctx: &Context) -> usize {
        let prefixes = |v: &[Prefix]| v.iter().map(Prefix::encoded_len).sum::<usize>();
        2 + prefixes(&self.withdrawn) + 2 + self.attributes.encoded_len(ctx) + prefixes(&self.nlri)
    }

    /// Appends the message body.
    pub fn encode(&self, ctx: &Context, out: &mut BytesMut) {
        let withdrawn_len: usize = self.withdrawn.iter().map(Prefix::encoded_len).sum();
        out.put_u16(withdrawn_len as u16);
        for p in &self.withdrawn {
            p.encode(out);
        }
        let len_at = out.len();
        out.put_u16(0);
        self.attributes.encode(ctx, out);
        let attrs_len = (out.len() - len_at - 2) as u16;
        out[len_at..len_at + 2].copy_from_slice(&attrs_len.to_be_bytes());
        for p in &self.nlri {
            p.encode(out);
        }
    }
}

impl Attributes {
    fn decode(mut bytes: &[u8], ctx: &Context) -> Result<Self, UpdateError> {
        let mut a = Attributes::default();
        let mut seen = [false; 256];
        while !bytes.is_empty() {
            let [flags, code, rest @ ..] = bytes else { return Err(UpdateError::MalformedAttributeList) };
            let (len, rest) = if flags & flag::EXTENDED_LENGTH != 0 {
                let [l0, l1, rest @ ..] = rest else { return Err(UpdateError::MalformedAttributeList) };
                (usize::from(u16::from_be_bytes([*l0, *l1])), rest)
            } else {
                let [l, rest @ ..] = rest else { return Err(UpdateError::MalformedAttributeList) };
                (usize::from(*l), rest)
            };
            // RFC 7606 §4: an attribute running past the attribute list voids the UPDATE.
            let value = rest.get(..len).ok_or(UpdateError::AttributeOverrun)?;
            bytes = &rest[len..];
            // The extended-length bit describes this encoding, not the attribute.
            let (flags, code) = (*flags & !flag::EXTENDED_LENGTH, *code);
            // RFC 7606 §3(g): a repeated MP attribute resets the session;
            // other repeats are discarded.
            if std::mem::replace(&mut seen[usize::from(code)], true) {
                if matches!(code, attr::MP_REACH_NLRI | attr::MP_UNREACH_NLRI) {
                    return Err(UpdateError::MalformedAttributeList);
                }
                continue;
            }
            a.decode_one(flags, code, value, ctx)?;
        }
        Ok(a)
    }

    fn decode_one(&mut self, flags: u8, code: u8, v: &[u8], ctx: &Context) -> Result<(), UpdateError> {
        if let Some(expected) = expected_flags(code)
            && flags & (flag::OPTIONAL | flag::TRANSITIVE) != expected
        {
            // RFC 7606 §5.3: without its MP attributes the UPDATE cannot be read.
            if matches!(code, attr::MP_REACH_NLRI | attr::MP_UNREACH_NLRI) {
                return Err(UpdateError::MalformedMp("MP_REACH_NLRI or MP_UNREACH_NLRI flags"));
            }
            return Err(UpdateError::AttributeFlags { code, flags });
        }
        let length = |ok: bool| if ok { Ok(()) } else { Err(UpdateError::AttributeLength { code, len: v.len() }) };
        match code {
            attr::ORIGIN => {
                length(v.len() == 1)?;
                self.origin = Some(match v[0] {
                    0 => Origin::Igp,
                    1 => Origin::Egp,
                    2 => Origin::Incomplete,
                    other => return Err(UpdateError::InvalidOrigin(other)),
                });
            }
            attr::AS_PATH => self.as_path = Some(decode_as_path(v, ctx.four_octet_asn)?),
            attr::NEXT_HOP => {
                length(v.len() == 4)?;
                let ip = Ipv4Addr::from(u32_at(v, 0));
                if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
                    return Err(UpdateError::InvalidNextHop(ip));
                }
                self.next_hop = Some(ip);
            }
            attr::MULTI_EXIT_DISC => {
                length(v.len() == 4)?;
                self.med = Some(u32_at(v, 0));
            }
            attr::LOCAL_PREF => {
                length(v.len() == 4)?;
                self.local_pref = Some(u32_at(v, 0));
            }
            attr::ATOMIC_AGGREGATE => {
                length(v.is_empty())?;
                self.atomic_aggregate = true;
            }
            attr::AGGREGATOR => {
                let asn_len = if ctx.four_octet_asn { 4 } else { 2 };
                length(v.len() == asn_len + 4)?;
                let asn = if ctx.four_octet_asn { u32_at(v, 0) } else { u32::from(u16::from_be_bytes([v[0], v[1]])) };
                self.aggregator = Some(Aggregator { asn, address: Ipv4Addr::from(u32_at(v, asn_len)) });
            }
            attr::COMMUNITIES => {
                length(v.len().is_multiple_of(4))?;
                self.communities = v.chunks_exact(4).map(|c| u32_at(c, 0)).collect();
            }
            attr::LARGE_COMMUNITY => {
                length(!v.is_empty() && v.len().is_multiple_of(12))?;
                self.large_communities =
                    v.chunks_exact(12).map(|c| [u32_at(c, 0), u32_at(c, 4), u32_at(c, 8)]).collect();
            }
            // Families other than IPv4 and IPv6 unicast are kept raw.
            attr::MP_REACH_NLRI => match decode_mp_reach(v)? {
                Some(mp) => self.mp_reach = Some(mp),
                None => self.unknown.push(RawAttribute { flags, code, value: v.to_vec() }),
            },
            attr::MP_UNREACH_NLRI => match decode_mp_unreach(v)? {
                Some(mp) => self.mp_unreach = Some(mp),
                None => self.unknown.push(RawAttribute { flags, code, value: v.to_vec() }),
            },
            code if flags & flag::OPTIONAL == 0 => return Err(UpdateError::UnrecognizedWellKnown(code)),
            code => self.unknown.push(RawAttribute { flags, code, value: v.to_vec() }),
        }
        Ok(())
    }

    /// RFC 6793 §4.2.2: towards a 2-octet peer, ASNs that needed AS_TRANS
    /// travel in AS4_PATH too (confederation segments excepted), unless
    /// the attributes already carry one.
    fn needs_as4_path(&self, ctx: &Context) -> bool {
        let wide = |a: &u32| *a > 0xffff;
        !ctx.four_octet_asn
            && self.as_path.as_ref().is_some_and(|path| {
                path.iter().any(|seg| matches!(seg, AsSegment::Sequence(a) | AsSegment::Set(a) if a.iter().any(wide)))
            })
            && !self.unknown.iter().any(|u| u.code == attr::AS4_PATH)
    }

    /// RFC 6793: towards a 2-octet peer, a wide AGGREGATOR AS travels in
    /// AS4_AGGREGATOR too, unless the attributes already carry one.
    fn needs_as4_aggregator(&self, ctx: &Context) -> bool {
        !ctx.four_octet_asn
            && self.aggregator.is_some_and(|agg| agg.asn > 0xffff)
            && !self.unknown.iter().any(|u| u.code == attr::AS4_AGGREGATOR)
    }

    /// Octets [`Self::encode`] appends in `ctx`, exactly: what the
    /// Adj-RIB-Out budgets an UPDATE with, in the context negotiated.
    pub fn encoded_len(&self, ctx: &Context) -> usize {
        // Flags, code and a 1-octet length, or a 2-octet one past 255 octets.
        let attr = |value: usize| value + if value > 255 { 4 } else { 3 };
        // Segments of at most 255 ASNs, each with a type and a count.
        let path_len = |segments: &mut dyn Iterator<Item = &Vec<u32>>, width: usize| -> usize {
            segments.flat_map(|asns| asns.chunks(255)).map(|chunk| 2 + chunk.len() * width).sum()
        };
        let mut len = 0;
        if self.origin.is_some() {
            len += attr(1);
        }
        if let Some(path) = &self.as_path {
            let width = if ctx.four_octet_asn { 4 } else { 2 };
            len += attr(path_len(&mut path.iter().map(AsSegment::asns), width));
            if self.needs_as4_path(ctx) {
                let mut plain = path.iter().filter_map(|seg| match seg {
                    AsSegment::Set(a) | AsSegment::Sequence(a) => Some(a),
                    AsSegment::ConfedSequence(_) | AsSegment::ConfedSet(_) => None,
                });
                len += attr(path_len(&mut plain, 4));
            }
        }
        len +=
            [self.next_hop.is_some(), self.med.is_some(), self.local_pref.is_some()].into_iter().filter(|x| *x).count()
                * attr(4);
        if self.atomic_aggregate {
            len += attr(0);
        }
        if self.aggregator.is_some() {
            len += attr(if ctx.four_octet_asn { 8 } else { 6 });
            if self.needs_as4_aggregator(ctx) {
                len += attr(8);
            }
        }
        if !self.communities.is_empty() {
            len += attr(4 * self.communities.len());
        }
        if let Some(mp) = &self.mp_reach {
            let next_hops: usize = mp.next_hops.iter().map(|ip| if ip.is_ipv4() { 4 } else { 16 }).sum();
            let nlri: usize = mp.nlri.iter().map(Prefix::encoded_len).sum();
            len += attr(2 + 1 + 1 + next_hops + 1 + nlri);
        }
        if let Some(mp) = &self.mp_unreach {
            len += attr(2 + 1 + mp.withdrawn.iter().map(Prefix::encoded_len).sum::<usize>());
        }
        if !self.large_communities.is_empty() {
            len += attr(12 * self.large_communities.len());
        }
        len + self.unknown.iter().map(|raw| attr(raw.value.len())).sum::<usize>()
    }

    /// Appends the attributes in type code order.
    pub fn encode(&self, ctx: &Context, out: &mut BytesMut) {
        let mut value = BytesMut::new();
        let put = |out: &mut BytesMut, value: &mut BytesMut, flags: u8, code: u8| {
            if value.len() > 255 {
                out.put_u8(flags | flag::EXTENDED_LENGTH);
                out.put_u8(code);
                out.put_u16(value.len() as u16);
            } else {
                out.put_u8(flags);
                out.put_u8(code);
                out.put_u8(value.len() as u8);
            }
            out.put_slice(value);
            value.clear();
        };
        if let Some(origin) = self.origin {
            value.put_u8(origin as u8);
            put(out, &mut value, flag::TRANSITIVE, attr::ORIGIN);
        }
        if let Some(path) = &self.as_path {
            for segment in path {
                // A segment holds at most 255 ASNs; longer paths take several.
                for chunk in segment.asns().chunks(255) {
                    value.put_u8(segment.kind().into());
                    value.put_u8(chunk.len() as u8);
                    for asn in chunk {
                        if ctx.four_octet_asn {
                            value.put_u32(*asn);
                        } else {
                            value.put_u16(u16::try_from(*asn).unwrap_or(super::open::AS_TRANS));
                        }
                    }
                }
            }
            put(out, &mut value, flag::TRANSITIVE, attr::AS_PATH);
            // The real path rides along for a 2-octet peer.
            if self.needs_as4_path(ctx) {
                for segment in path {
                    if matches!(segment, AsSegment::ConfedSequence(_) | AsSegment::ConfedSet(_)) {
                        continue;
                    }
                    for chunk in segment.asns().chunks(255) {
                        value.put_u8(segment.kind().into());
                        value.put_u8(chunk.len() as u8);
                        for asn in chunk {
                            value.put_u32(*asn);
                        }
                    }
                }
                put(out, &mut value, flag::OPTIONAL | flag::TRANSITIVE, attr::AS4_PATH);
            }
        }
        if let Some(nh) = self.next_hop {
            value.put_slice(&nh.octets());
            put(out, &mut value, flag::TRANSITIVE, attr::NEXT_HOP);
        }
        if let Some(med) = self.med {
            value.put_u32(med);
            put(out, &mut value, flag::OPTIONAL, attr::MULTI_EXIT_DISC);
        }
        if let Some(lp) = self.local_pref {
            value.put_u32(lp);
            put(out, &mut value, flag::TRANSITIVE, attr::LOCAL_PREF);
        }
        if self.atomic_aggregate {
            put(out, &mut value, flag::TRANSITIVE, attr::ATOMIC_AGGREGATE);
        }
        if let Some(agg) = self.aggregator {
            if ctx.four_octet_asn {
                value.put_u32(agg.asn);
            } else {
                value.put_u16(u16::try_from(agg.asn).unwrap_or(super::open::AS_TRANS));
            }
            value.put_slice(&agg.address.octets());
            put(out, &mut value, flag::OPTIONAL | flag::TRANSITIVE, attr::AGGREGATOR);
            if self.needs_as4_aggregator(ctx) {
                value.put_u32(agg.asn);
                value.put_slice(&agg.address.octets());
                put(out, &mut value, flag::OPTIONAL | flag::TRANSITIVE, attr::AS4_AGGREGATOR);
            }
        }
        if !self.communities.is_empty() {
            for c in &self.communities {
                value.put_u32(*c);
            }
            put(out, &mut value, flag::OPTIONAL | flag::TRANSITIVE, attr::COMMUNITIES);
        }
        if let Some(mp) = &self.mp_reach {
            value.put_u16(mp.afi.into());
            value.put_u8(mp.safi.into());
            let nh_len: usize = mp.next_hops.iter().map(|ip| if ip.is_ipv4() { 4 } else { 16 }).sum();
            value.put_u8(nh_len as u8);
            for ip in &mp.next_hops {
                match ip {
                    IpAddr::V4(a) => value.put_slice(&a.octets()),
                    IpAddr::V6(a) => value.put_slice(&a.octets()),
                }
            }
            value.put_u8(0);
            for p in &mp.nlri {
                p.encode(&mut value);
            }
            put(out, &mut value, flag::OPTIONAL, attr::MP_REACH_NLRI);
        }
        if let Some(mp) = &self.mp_unreach {
            value.put_u16(mp.afi.into());
            value.put_u8(mp.safi.into());
            for p in &mp.withdrawn {
                p.encode(&mut value);
            }
            put(out, &mut value, flag::OPTIONAL, attr::MP_UNREACH_NLRI);
        }
        if !self.large_communities.is_empty() {
            for c in &self.large_communities {
                c.iter().for_each(|v| value.put_u32(*v));
            }
            put(out, &mut value, flag::OPTIONAL | flag::TRANSITIVE, attr::LARGE_COMMUNITY);
        }
        for raw in &self.unknown {
            value.put_slice(&raw.value);
            put(out, &mut value, raw.flags & !flag::EXTENDED_LENGTH, raw.code);
        }
    }
}

fn decode_as_path(mut v: &[u8], four_octet: bool) -> Result<Vec<AsSegment>, UpdateError> {
    let width = if four_octet { 4 } else { 2 };
    let mut segments = Vec::new();
    while !v.is_empty() {
        let [kind, count, rest @ ..] = v else { return Err(UpdateError::MalformedAsPath) };
        let n = usize::from(*count);
        let asn_bytes = rest.get(..n * width).ok_or(UpdateError::MalformedAsPath)?;
        if n == 0 {
            return Err(UpdateError::MalformedAsPath);
        }
        let asns: Vec<u32> = asn_bytes
            .chunks_exact(width)
            .map(|c| if four_octet { u32_at(c, 0) } else { u32::from(u16::from_be_bytes([c[0], c[1]])) })
            .collect();
        segments.push(match AsSegmentType::from(*kind) {
            AsSegmentType::AsSet => AsSegment::Set(asns),
            AsSegmentType::AsSequence => AsSegment::Sequence(asns),
            AsSegmentType::AsConfedSequence => AsSegment::ConfedSequence(asns),
            AsSegmentType::AsConfedSet => AsSegment::ConfedSet(asns),
            _ => return Err(UpdateError::MalformedAsPath),
        });
        v = &rest[n * width..];
    }
    Ok(segments)
}

/// Whether a unicast family is IPv6; `None` for families kept raw.
fn family_is_ipv6(afi: Afi, safi: Safi) -> Option<bool> {
    match (afi, safi) {
        (Afi::Ipv4, Safi::Unicast) => Some(false),
        (Afi::Ipv6, Safi::Unicast) => Some(true),
        _ => None,
    }
}

fn decode_mp_reach(v: &[u8]) -> Result<Option<MpReach>, UpdateError> {
    let bad = UpdateError::MalformedMp("MP_REACH_NLRI");
    let [a0, a1, safi_value, nh_len, rest @ ..] = v else { return Err(bad) };
    let (afi, safi) = (Afi::from(u16::from_be_bytes([*a0, *a1])), Safi::from(*safi_value));
    let nh = rest.get(..usize::from(*nh_len)).ok_or(bad.clone())?;
    let [_reserved, nlri @ ..] = &rest[usize::from(*nh_len)..] else { return Err(bad) };
    let next_hops = match nh.len() {
        4 => vec![IpAddr::V4(Ipv4Addr::from(u32_at(nh, 0)))],
        16 | 32 => nh
            .chunks_exact(16)
            .map(|c| IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(c).unwrap_or_default())))
            .collect(),
        _ => return Err(bad),
    };
    let Some(ipv6) = family_is_ipv6(afi, safi) else { return Ok(None) };
    let mut prefixes = Vec::new();
    decode_nlri(nlri, ipv6, &mut prefixes).map_err(|_| UpdateError::InvalidNetworkField)?;
    Ok(Some(MpReach { afi, safi, next_hops, nlri: prefixes }))
}

fn decode_mp_unreach(v: &[u8]) -> Result<Option<MpUnreach>, UpdateError> {
    let [a0, a1, safi_value, nlri @ ..] = v else { return Err(UpdateError::MalformedMp("MP_UNREACH_NLRI")) };
    let (afi, safi) = (Afi::from(u16::from_be_bytes([*a0, *a1])), Safi::from(*safi_value));
    let Some(ipv6) = family_is_ipv6(afi, safi) else { return Ok(None) };
    let mut withdrawn = Vec::new();
    decode_nlri(nlri, ipv6, &mut withdrawn).map_err(|_| UpdateError::InvalidNetworkField)?;
    Ok(Some(MpUnreach { afi, safi, withdrawn }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        let (a, l) = s.split_once('/').expect("prefix");
        Prefix::new(a.parse().expect("addr"), l.parse().expect("len")).expect("valid")
    }

    fn ctx() -> Context {
        Context { four_octet_asn: true, extended_messages: false }
    }

    fn round_trip(u: &Update, ctx: &Context) -> Update {
        let mut out = BytesMut::new();
        u.encode(ctx, &mut out);
        Update::decode(&out, ctx).expect("valid")
    }

    /// An eBGP announcement of two /32s, as a speaker in AS 64512 sends it:
    /// ORIGIN IGP, AS_PATH [64512], NEXT_HOP, COMMUNITIES 65535:65281.
    #[test]
    fn byte_exact_ipv4_announcement() {
        let body: &[u8] = &[
            0, 0, // no withdrawn routes
            0, 27, // attributes
            0x40, 1, 1, 0, // ORIGIN IGP
            0x40, 2, 6, 2, 1, 0, 0, 0xfc, 0x00, // AS_PATH SEQUENCE [64512]
            0x40, 3, 4, 192, 0, 2, 1, // NEXT_HOP 192.0.2.1
            0xc0, 8, 4, 0xff, 0xff, 0xff, 0x01, // COMMUNITIES 65535:65281
            32, 198, 51, 100, 10, 32, 198, 51, 100, 11, // NLRI
        ];
        let u = Update::decode(body, &ctx()).expect("valid");
        assert_eq!(u.nlri, [p("198.51.100.10/32"), p("198.51.100.11/32")]);
        assert_eq!(u.attributes.as_path, Some(vec![AsSegment::Sequence(vec![64512])]));
        assert_eq!(u.attributes.communities, [0xffff_ff01]);
        let mut out = BytesMut::new();
        u.encode(&ctx(), &mut out);
        assert_eq!(out.as_ref(), body);
    }

    #[test]
    fn ipv6_via_mp_reach_with_link_local_next_hop() {
        let u = Update {
            attributes: Attributes {
                origin: Some(Origin::Igp),
                as_path: Some(vec![]),
                local_pref: Some(100),
                large_communities: vec![[64512, 1, 2]],
                mp_reach: Some(MpReach {
                    afi: Afi::Ipv6,
                    safi: Safi::Unicast,
                    next_hops: vec!["2001:db8::1".parse().expect("v6"), "fe80::1".parse().expect("v6")],
                    nlri: vec![p("2001:db8:1::5/128"), p("2001:db8:2::/64")],
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(round_trip(&u, &ctx()), u);
        let eor = Update::end_of_rib(Afi::Ipv6, Safi::Unicast);
        assert_eq!(round_trip(&eor, &ctx()), eor);
    }

    #[test]
    fn two_octet_sessions_write_as_trans() {
        let u = Update {
            attributes: Attributes {
                origin: Some(Origin::Igp),
                as_path: Some(vec![AsSegment::Sequence(vec![65001, 4_200_000_000])]),
                next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
                ..Default::default()
            },
            nlri: vec![p("203.0.113.0/24")],
            ..Default::default()
        };
        let two = Context::default();
        let back = round_trip(&u, &two);
        assert_eq!(back.attributes.as_path, Some(vec![AsSegment::Sequence(vec![65001, 23456])]));
        // The real path rides along in AS4_PATH (RFC 6793), kept as an
        // attribute this codec passes through, and not doubled on re-encoding.
        let as4 = back.attributes.unknown.iter().find(|a| a.code == attr::AS4_PATH).expect("AS4_PATH");
        assert_eq!(as4.flags & (flag::OPTIONAL | flag::TRANSITIVE), flag::OPTIONAL | flag::TRANSITIVE);
        assert_eq!(as4.value, [2, 2, 0, 0, 0xfd, 0xe9, 0xfa, 0x56, 0xea, 0x00]);
        assert_eq!(round_trip(&back, &two), back);
        // Nothing to add when every ASN fits, or towards 4-octet peers.
        let small = Update {
            attributes: Attributes { as_path: Some(vec![AsSegment::Sequence(vec![65001])]), ..u.attributes.clone() },
            ..u.clone()
        };
        assert!(round_trip(&small, &two).attributes.unknown.is_empty());
        assert!(round_trip(&u, &ctx()).attributes.unknown.is_empty());
    }

    #[test]
    fn long_attributes_use_the_extended_length_flag() {
        let u = Update {
            attributes: Attributes { communities: (0..100).collect(), ..Default::default() },
            withdrawn: vec![p("192.0.2.0/24")],
            ..Default::default()
        };
        let mut out = BytesMut::new();
        u.encode(&ctx(), &mut out);
        assert_eq!(out[2 + 4 + 2] & flag::EXTENDED_LENGTH, flag::EXTENDED_LENGTH);
        assert_eq!(Update::decode(&out, &ctx()), Ok(u));
    }

    #[test]
    fn rfc7606_decides_what_resets_the_session() {
        // Attribute errors void the UPDATE only.
        let bad_origin = [0, 0, 0, 4, 0x40, 1, 1, 7];
        let e = Update::decode(&bad_origin, &ctx()).expect_err("bad origin");
        assert_eq!((e.clone(), e.resets_session()), (UpdateError::InvalidOrigin(7), false));
        assert_eq!(e.notification().error, NotificationError::Update(Sub::InvalidOriginAttribute));
        let bad_flags = [0, 0, 0, 4, 0xc0, 1, 1, 0];
        assert!(matches!(Update::decode(&bad_flags, &ctx()), Err(UpdateError::AttributeFlags { code: 1, .. })));
        let missing_next_hop = [0, 0, 0, 4, 0x40, 1, 1, 0, 8, 10];
        let e = Update::decode(&missing_next_hop, &ctx()).expect_err("missing");
        assert_eq!(e, UpdateError::MissingWellKnown(attr::AS_PATH));
        // Lengths that do not add up lose the framing of the rest.
        let overrun = [0, 9, 0, 0];
        let e = Update::decode(&overrun, &ctx()).expect_err("overrun");
        assert!(e.resets_session());
        // A repeated attribute is discarded, a repeated MP attribute is fatal.
        let duplicate = [0, 0, 0, 8, 0x40, 1, 1, 0, 0x40, 1, 1, 2];
        assert_eq!(Update::decode(&duplicate, &ctx()).map(|u| u.attributes.origin), Ok(Some(Origin::Igp)));
        let duplicate_mp = [0, 0, 0, 12, 0x80, 15, 3, 0, 1, 1, 0x80, 15, 3, 0, 1, 1];
        assert_eq!(Update::decode(&duplicate_mp, &ctx()), Err(UpdateError::MalformedAttributeList));
        let overrun = [0, 0, 0, 4, 0x40, 1, 5, 0];
        assert_eq!(Update::decode(&overrun, &ctx()).map_err(|e| e.resets_session()), Err(false));
        let bad_nlri = [0, 0, 0, 0, 40, 1, 2, 3, 4, 5];
        assert_eq!(Update::decode(&bad_nlri, &ctx()), Err(UpdateError::InvalidNetworkField));
        // An unknown optional attribute is kept and written back.
        let unknown = [0, 0, 0, 5, 0xc0, 99, 2, 1, 2];
        let u = Update::decode(&unknown, &ctx()).expect("kept");
        assert_eq!(u.attributes.unknown, [RawAttribute { flags: 0xc0, code: 99, value: vec![1, 2] }]);
        let mut out = BytesMut::new();
        u.encode(&ctx(), &mut out);
        assert_eq!(out.as_ref(), unknown);
        // An unknown well-known one is an error.
        let unknown_well_known = [0, 0, 0, 3, 0x40, 99, 0];
        assert_eq!(Update::decode(&unknown_well_known, &ctx()), Err(UpdateError::UnrecognizedWellKnown(99)));
    }
}
