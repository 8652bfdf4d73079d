//! BGP communities as MetalLB writes them: `65000:100` (RFC 1997) and
//! `large:65000:1:2` (RFC 8092). Aliases (`bgp-communities`, the Community
//! CRD) are resolved by the configuration loader, not here.

use std::fmt;
use std::str::FromStr;

/// A standard or large community value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Community {
    /// RFC 1997: two 16-bit halves, `ASN:value`.
    Standard(u32),
    /// RFC 8092: global administrator and two local data parts.
    Large(u32, u32, u32),
}

/// Why a community string is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommunityError {
    /// Neither `a:b` nor `large:a:b:c`; might be an alias that is not defined.
    #[error("{0:?} is not a community (a:b with 16-bit parts, or large:a:b:c with 32-bit parts) nor a defined alias")]
    Format(String),
    /// The shape is right but a part does not fit its width.
    #[error("community {0:?} has a part out of range (16 bits each in a:b, 32 bits each in large:a:b:c)")]
    Range(String),
}

impl FromStr for Community {
    type Err = CommunityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = text.split(':').collect();
        let numeric = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        match parts.as_slice() {
            [a, b] if numeric(a) && numeric(b) => {
                let hi: u16 = a.parse().map_err(|_| CommunityError::Range(text.into()))?;
                let lo: u16 = b.parse().map_err(|_| CommunityError::Range(text.into()))?;
                Ok(Community::Standard((u32::from(hi) << 16) | u32::from(lo)))
            }
            [tag, a, b, c] if tag.eq_ignore_ascii_case("large") && [a, b, c].iter().all(|p| numeric(p)) => {
                let part = |p: &str| p.parse::<u32>().map_err(|_| CommunityError::Range(text.into()));
                Ok(Community::Large(part(a)?, part(b)?, part(c)?))
            }
            _ => Err(CommunityError::Format(text.into())),
        }
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Community::Standard(v) => write!(f, "{}:{}", v >> 16, v & 0xffff),
            Community::Large(a, b, c) => write!(f, "large:{a}:{b}:{c}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_and_large() {
        assert_eq!("65000:100".parse(), Ok(Community::Standard((65000 << 16) | 100)));
        assert_eq!("large:4200000000:1:2".parse(), Ok(Community::Large(4_200_000_000, 1, 2)));
        assert_eq!(Community::Standard((65535 << 16) | 65281).to_string(), "65535:65281");
        assert_eq!(Community::Large(1, 2, 3).to_string(), "large:1:2:3");
    }

    #[test]
    fn bad_communities() {
        assert!(matches!("65536:1".parse::<Community>(), Err(CommunityError::Range(_))));
        assert!(matches!("large:1:2:4294967296".parse::<Community>(), Err(CommunityError::Range(_))));
        assert!(matches!("1:2:3".parse::<Community>(), Err(CommunityError::Format(_))));
        assert!(matches!("no-export".parse::<Community>(), Err(CommunityError::Format(_))));
        assert!(matches!("-1:2".parse::<Community>(), Err(CommunityError::Format(_))));
    }
}
