//! A minimal MRT TABLE_DUMP_V2 writer (RFC 6396), enough for
//! `gobgp mrt inject global FILE`: one peer, one RIB entry per prefix with
//! ORIGIN IGP, an empty AS_PATH and the given next hop.
//!
//! GoBGP 3.10 deviates from RFC 6396 §4.3.4 in one place: it parses the
//! MP_REACH_NLRI of an IPv6 RIB entry in the full UPDATE form (AFI, SAFI,
//! next hop length, next hop, reserved; here without NLRI), not the
//! abbreviated one (which it rejects as "unknown route family. AFI: 4128").

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const TABLE_DUMP_V2: u16 = 13;
const PEER_INDEX_TABLE: u16 = 1;
const RIB_IPV4_UNICAST: u16 = 2;
const RIB_IPV6_UNICAST: u16 = 4;

/// Encodes `prefixes` (`addr/len`, either family) as a TABLE_DUMP_V2 dump
/// from one peer, the whole list `copies` times over. IPv4 routes carry
/// NEXT_HOP `next_hop_v4`; IPv6 routes an MP_REACH_NLRI with `next_hop_v6`.
pub fn table_dump_v2(
    prefixes: &[String],
    next_hop_v4: Ipv4Addr,
    next_hop_v6: Ipv6Addr,
    timestamp: u32,
    copies: usize,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(prefixes.len() * 40 + 64);

    // PEER_INDEX_TABLE: collector id, empty view name, one IPv4/AS4 peer.
    let mut body = Vec::new();
    body.extend_from_slice(&next_hop_v4.octets());
    body.extend_from_slice(&0u16.to_be_bytes());
    body.extend_from_slice(&1u16.to_be_bytes());
    body.push(0b10); // AS4, IPv4 peer address
    body.extend_from_slice(&next_hop_v4.octets());
    body.extend_from_slice(&next_hop_v4.octets());
    body.extend_from_slice(&0u32.to_be_bytes());
    record(&mut out, timestamp, PEER_INDEX_TABLE, &body)?;

    for (seq, prefix) in std::iter::repeat_n(prefixes, copies).flatten().enumerate() {
        let (addr, len) = prefix.split_once('/').ok_or_else(|| format!("{prefix:?}: want addr/len"))?;
        let addr: IpAddr = addr.parse().map_err(|e| format!("{prefix:?}: {e}"))?;
        let len: u8 = len.parse().map_err(|e| format!("{prefix:?}: {e}"))?;
        let mut body = Vec::with_capacity(48);
        body.extend_from_slice(&u32::try_from(seq).map_err(|_| "too many prefixes")?.to_be_bytes());
        body.push(len);
        let octets: Vec<u8> = match addr {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        body.extend_from_slice(&octets[..usize::from(len).div_ceil(8)]);
        body.extend_from_slice(&1u16.to_be_bytes()); // entry count

        let mut attrs = Vec::with_capacity(32);
        attrs.extend_from_slice(&[0x40, 1, 1, 0]); // ORIGIN IGP
        attrs.extend_from_slice(&[0x40, 2, 0]); // AS_PATH, empty
        let subtype = match addr {
            IpAddr::V4(_) => {
                attrs.extend_from_slice(&[0x40, 3, 4]);
                attrs.extend_from_slice(&next_hop_v4.octets());
                RIB_IPV4_UNICAST
            }
            IpAddr::V6(_) => {
                // AFI 2, SAFI 1, next hop length 16, next hop, reserved.
                attrs.extend_from_slice(&[0x80, 14, 21, 0, 2, 1, 16]);
                attrs.extend_from_slice(&next_hop_v6.octets());
                attrs.push(0);
                RIB_IPV6_UNICAST
            }
        };
        body.extend_from_slice(&0u16.to_be_bytes()); // peer index
        body.extend_from_slice(&timestamp.to_be_bytes());
        body.extend_from_slice(&u16::try_from(attrs.len()).map_err(|_| "attributes too long")?.to_be_bytes());
        body.extend_from_slice(&attrs);
        record(&mut out, timestamp, subtype, &body)?;
    }
    Ok(out)
}

fn record(out: &mut Vec<u8>, timestamp: u32, subtype: u16, body: &[u8]) -> Result<(), String> {
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&TABLE_DUMP_V2.to_be_bytes());
    out.extend_from_slice(&subtype.to_be_bytes());
    out.extend_from_slice(&u32::try_from(body.len()).map_err(|_| "MRT record too long")?.to_be_bytes());
    out.extend_from_slice(body);
    Ok(())
}
