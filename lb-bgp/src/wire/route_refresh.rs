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
use super::consts::{Afi, RouteRefreshSubtype, Safi};

/// A request to re-send (or a marker around a re-sent) Adj-RIB-Out of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRefresh {
    pub afi: Afi,
    pub safi: Safi,
    /// A request, or the beginning or end of a re-sent table (RFC 7313).
    pub subtype: RouteRefreshSubtype,
}

impl RouteRefresh {
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        match *body {
            [a, b, subtype, safi] => {
                Ok(Self { afi: u16::from_be_bytes([a, b]).into(), safi: safi.into(), subtype: subtype.into() })
            }
            _ => Err(DecodeError::BadRouteRefreshLength((body.len() + 19) as u16)),
        }
    }

    pub fn encode(&self, out: &mut BytesMut) {
        out.put_u16(self.afi.into());
        out.put_u8(self.subtype.into());
        out.put_u8(self.safi.into());
    }
}
