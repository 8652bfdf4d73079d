//! ROUTE-REFRESH (RFC 2918), with the subtypes of enhanced route refresh (RFC 7313).
//!
//! ```text
//! 0       7      15      23      31
//! +-------+-------+-------+-------+
//! |      AFI      | Subtype| SAFI |
//! +-------+-------+-------+-------+
//! ```

use bytes::{BufMut, BytesMut};

use super::DecodeError;

/// A request to re-send (or a marker around a re-sent) Adj-RIB-Out of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRefresh {
    pub afi: u16,
    pub safi: u8,
    /// 0: normal request; 1: beginning and 2: end of a re-sent table (RFC 7313).
    pub subtype: u8,
}

impl RouteRefresh {
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        match *body {
            [a, b, subtype, safi] => Ok(Self { afi: u16::from_be_bytes([a, b]), safi, subtype }),
            _ => Err(DecodeError::BadRouteRefreshLength((body.len() + 19) as u16)),
        }
    }

    pub fn encode(&self, out: &mut BytesMut) {
        out.put_u16(self.afi);
        out.put_u8(self.subtype);
        out.put_u8(self.safi);
    }
}
