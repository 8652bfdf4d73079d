//! Address blocks as pools write them: a CIDR (`192.0.2.0/24`) or an
//! inclusive range (`192.0.2.10-192.0.2.20`, spaces around `-` allowed).
//!
//! Both become a contiguous run of addresses `[first, last]` of one family;
//! arithmetic is done on `u128` so IPv4 and IPv6 share one code path.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnetwork::IpNetwork;

/// IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// Address width in bits.
    pub fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// The name Kubernetes uses in `spec.ipFamilies`.
    pub fn k8s_name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.k8s_name())
    }
}

/// The address as an integer, IPv4 in the low 32 bits.
pub fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Inverse of [`ip_to_u128`]; IPv4 values are truncated to 32 bits.
pub fn u128_to_ip(family: Family, value: u128) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(value as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(value)),
    }
}

/// MetalLB's `avoid-buggy-ips`: IPv4 addresses ending in `.0` or `.255`,
/// which some old client firmware mistakes for network or broadcast addresses.
pub fn is_buggy_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => matches!(v4.octets()[3], 0 | 255),
        IpAddr::V6(_) => false,
    }
}

/// Why an address block could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Neither a CIDR nor a range.
    #[error("{text:?} is neither a CIDR (192.0.2.0/24) nor a range (192.0.2.1-192.0.2.9)")]
    Invalid { text: String },
    /// A range whose first address is above its last.
    #[error("range {text:?} is reversed: {first} is above {last}")]
    Reversed { text: String, first: IpAddr, last: IpAddr },
    /// A range from an IPv4 to an IPv6 address, or back.
    #[error("range {text:?} mixes IPv4 and IPv6")]
    MixedFamilies { text: String },
}

/// A contiguous run of addresses of one family, inclusive at both ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressBlock {
    first: IpAddr,
    last: IpAddr,
}

impl AddressBlock {
    /// The block `[first, last]`; both of one family, `first <= last`.
    pub fn new(first: IpAddr, last: IpAddr) -> Option<Self> {
        (Family::of(first) == Family::of(last) && ip_to_u128(first) <= ip_to_u128(last)).then_some(Self { first, last })
    }

    /// The block of a CIDR, host bits cleared (`192.0.2.7/24` is `192.0.2.0/24`).
    pub fn from_cidr(net: IpNetwork) -> Self {
        Self { first: net.network(), last: net.broadcast_or_last() }
    }

    pub fn first(&self) -> IpAddr {
        self.first
    }

    pub fn last(&self) -> IpAddr {
        self.last
    }

    pub fn family(&self) -> Family {
        Family::of(self.first)
    }

    /// Number of addresses. Exact for every block but one: all of IPv6
    /// (`::/0`, or a range from `::` to the top) holds 2^128 addresses,
    /// one more than a `u128` holds, and saturates at `u128::MAX`. Code
    /// that walks or indexes a block uses [`Self::last_offset`], which is
    /// always exact, so no address (the top one included) is lost to that.
    pub fn len(&self) -> u128 {
        self.last_offset().saturating_add(1)
    }

    /// Offset of the last address from the first: `len - 1`, exact for
    /// every block, `u128::MAX` for all of IPv6.
    pub fn last_offset(&self) -> u128 {
        ip_to_u128(self.last) - ip_to_u128(self.first)
    }

    /// Whether this block is all of its family (`0.0.0.0/0`, `::/0`): the
    /// one case where [`Self::len`] of an IPv6 block is not exact.
    pub fn is_whole_family(&self) -> bool {
        ip_to_u128(self.first) == 0 && ip_to_u128(self.last) == max_of(self.family())
    }

    /// Never true: a block holds at least one address.
    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        Family::of(ip) == self.family() && (ip_to_u128(self.first)..=ip_to_u128(self.last)).contains(&ip_to_u128(ip))
    }

    pub fn overlaps(&self, other: &AddressBlock) -> bool {
        self.family() == other.family()
            && ip_to_u128(self.first) <= ip_to_u128(other.last)
            && ip_to_u128(other.first) <= ip_to_u128(self.last)
    }

    /// The address at `offset` from the first one; the last one is at
    /// [`Self::last_offset`] (comparing with `len` would lose the top of IPv6).
    pub fn nth(&self, offset: u128) -> Option<IpAddr> {
        (offset <= self.last_offset()).then(|| u128_to_ip(self.family(), ip_to_u128(self.first) + offset))
    }

    /// Offset of `ip` from the first address, if inside.
    pub fn offset_of(&self, ip: IpAddr) -> Option<u128> {
        self.contains(ip).then(|| ip_to_u128(ip) - ip_to_u128(self.first))
    }

    /// The smallest list of CIDRs that covers exactly this block, in order.
    pub fn cidrs(&self) -> Vec<IpNetwork> {
        let bits = u32::from(self.family().bits());
        let mut out = Vec::new();
        let mut start = ip_to_u128(self.first);
        let end = ip_to_u128(self.last);
        loop {
            // Largest aligned block starting at `start` that does not pass `end`.
            let mut size_log = if start == 0 { bits } else { start.trailing_zeros().min(bits) };
            while size_log > 0 && end - start < 1u128.checked_shl(size_log).map_or(u128::MAX, |n| n - 1) {
                size_log -= 1;
            }
            if size_log == 128 {
                // Only `::/0` gets here; `1 << 128` does not exist.
                out.push(cidr(self.family(), start, 0));
                return out;
            }
            out.push(cidr(self.family(), start, (bits - size_log) as u8));
            let next = start + ((1u128 << size_log) - 1);
            if next >= end {
                return out;
            }
            start = next + 1;
        }
    }

    /// The shortest prefix length among [`Self::cidrs`]: the widest CIDR in the block.
    pub fn widest_prefix_len(&self) -> u8 {
        self.cidrs().iter().map(IpNetwork::prefix).min().unwrap_or(self.family().bits())
    }

    /// Number of addresses that may be handed out, with or without `avoid-buggy-ips`.
    pub fn usable(&self, avoid_buggy: bool) -> u128 {
        self.len() - if avoid_buggy { self.buggy_count() } else { 0 }
    }

    /// Number of addresses MetalLB's `avoid-buggy-ips` removes from this block.
    pub fn buggy_count(&self) -> u128 {
        if self.family() == Family::V6 {
            return 0;
        }
        let (first, last) = (ip_to_u128(self.first), ip_to_u128(self.last));
        // Count x with x % 256 == r in [first, last], for r = 0 and r = 255.
        let count = |r: u128| -> u128 {
            let upto = |n: u128| if n < r { 0 } else { (n - r) / 256 + 1 };
            upto(last) - if first == 0 { 0 } else { upto(first - 1) }
        };
        count(0) + count(255)
    }
}

/// The highest address of `family` as an integer.
fn max_of(family: Family) -> u128 {
    match family {
        Family::V4 => u128::from(u32::MAX),
        Family::V6 => u128::MAX,
    }
}

fn cidr(family: Family, start: u128, prefix: u8) -> IpNetwork {
    let ip = u128_to_ip(family, start);
    // The prefix never exceeds the family's width, so construction cannot fail.
    IpNetwork::new(ip, prefix).unwrap_or_else(|_| IpNetwork::from(ip))
}

trait BroadcastOrLast {
    fn broadcast_or_last(&self) -> IpAddr;
}

impl BroadcastOrLast for IpNetwork {
    fn broadcast_or_last(&self) -> IpAddr {
        let family = Family::of(self.ip());
        let host_bits = u32::from(family.bits() - self.prefix());
        let mask = if host_bits >= 128 { u128::MAX } else { (1u128 << host_bits) - 1 };
        u128_to_ip(family, ip_to_u128(self.network()) | mask)
    }
}

impl FromStr for AddressBlock {
    type Err = AddressError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || AddressError::Invalid { text: text.to_string() };
        let trimmed = text.trim();
        if let Some((a, b)) = trimmed.split_once('-') {
            let first: IpAddr = a.trim().parse().map_err(|_| invalid())?;
            let last: IpAddr = b.trim().parse().map_err(|_| invalid())?;
            if Family::of(first) != Family::of(last) {
                return Err(AddressError::MixedFamilies { text: text.to_string() });
            }
            return AddressBlock::new(first, last).ok_or(AddressError::Reversed {
                text: text.to_string(),
                first,
                last,
            });
        }
        if !trimmed.contains('/') {
            return Err(invalid());
        }
        let net: IpNetwork = trimmed.parse().map_err(|_| invalid())?;
        Ok(AddressBlock::from_cidr(net))
    }
}

impl fmt::Display for AddressBlock {
    /// A CIDR when the block is exactly one, otherwise `first-last`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cidrs().as_slice() {
            [one] => write!(f, "{}/{}", one.network(), one.prefix()),
            _ => write!(f, "{}-{}", self.first, self.last),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(s: &str) -> AddressBlock {
        s.parse().expect("address block")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("IP address")
    }

    #[test]
    fn cidr_is_normalised() {
        let b = block("192.0.2.77/24");
        assert_eq!(b.first(), ip("192.0.2.0"));
        assert_eq!(b.last(), ip("192.0.2.255"));
        assert_eq!(b.len(), 256);
        assert_eq!(b.to_string(), "192.0.2.0/24");
    }

    #[test]
    fn ranges_allow_spaces_and_reject_reversal() {
        let b = block("192.0.2.10 - 192.0.2.20");
        assert_eq!(b.len(), 11);
        assert!(matches!("192.0.2.20-192.0.2.10".parse::<AddressBlock>(), Err(AddressError::Reversed { .. })));
        assert!(matches!("192.0.2.1-2001:db8::1".parse::<AddressBlock>(), Err(AddressError::MixedFamilies { .. })));
        assert!("192.0.2.1".parse::<AddressBlock>().is_err());
        assert!("nonsense/24".parse::<AddressBlock>().is_err());
        assert!("192.0.2.0/33".parse::<AddressBlock>().is_err());
    }

    #[test]
    fn ipv6_blocks() {
        let b = block("2001:db8::/64");
        assert_eq!(b.len(), 1u128 << 64);
        assert_eq!(b.nth(5), Some(ip("2001:db8::5")));
        assert_eq!(b.offset_of(ip("2001:db8::ff")), Some(255));
        assert_eq!(block("::/0").cidrs().len(), 1);
    }

    const TOP: &str = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";

    #[test]
    fn the_top_of_ipv6_is_in_every_block_that_reaches_it() {
        for text in [
            "::/0",
            "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "8000::/1",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            let b = block(text);
            assert_eq!(b.last(), ip(TOP), "{text}");
            assert!(b.contains(ip(TOP)), "{text}");
            assert_eq!(b.nth(b.last_offset()), Some(ip(TOP)), "{text}");
            assert_eq!(b.offset_of(ip(TOP)), Some(b.last_offset()), "{text}");
            assert_eq!(b.cidrs().last().map(|c| c.broadcast_or_last()), Some(ip(TOP)), "{text}");
        }
        let all = block("::/0");
        assert_eq!(all.last_offset(), u128::MAX);
        assert_eq!(all.nth(u128::MAX), Some(ip(TOP)));
        assert_eq!(all.len(), u128::MAX, "2^128 saturates");
        assert!(all.is_whole_family());
        assert_eq!(block("::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff").to_string(), "::/0");
        assert!(!block("8000::/1").is_whole_family());
        assert_eq!(block("8000::/1").len(), 1u128 << 127);
    }

    #[test]
    fn the_whole_of_ipv4() {
        let all = block("0.0.0.0/0");
        assert_eq!(all.len(), 1u128 << 32);
        assert_eq!(all.last_offset(), u128::from(u32::MAX));
        assert_eq!(all.nth(u128::from(u32::MAX)), Some(ip("255.255.255.255")));
        assert_eq!(all.nth(1u128 << 32), None);
        assert!(all.contains(ip("255.255.255.255")));
        assert!(all.is_whole_family());
        assert_eq!(all.buggy_count(), 2 * (1 << 24));
        assert_eq!(block("0.0.0.0-255.255.255.255").to_string(), "0.0.0.0/0");
    }

    #[test]
    fn range_cover_is_minimal() {
        let cidrs: Vec<String> = block("192.0.2.1-192.0.2.9").cidrs().iter().map(|c| c.to_string()).collect();
        assert_eq!(cidrs, ["192.0.2.1/32", "192.0.2.2/31", "192.0.2.4/30", "192.0.2.8/31"]);
        assert_eq!(block("192.0.2.0-192.0.2.255").widest_prefix_len(), 24);
        assert_eq!(block("192.0.2.1-192.0.2.9").widest_prefix_len(), 30);
        assert_eq!(block("0.0.0.0/0").cidrs().len(), 1);
    }

    #[test]
    fn buggy_counts() {
        assert_eq!(block("192.0.2.0/24").buggy_count(), 2);
        assert_eq!(block("10.0.0.0/16").buggy_count(), 512);
        assert_eq!(block("192.0.2.254/31").buggy_count(), 1);
        assert_eq!(block("192.0.2.4/30").buggy_count(), 0);
        assert_eq!(block("0.0.0.0/31").buggy_count(), 1);
        assert_eq!(block("2001:db8::/120").buggy_count(), 0);
    }
}

#[cfg(test)]
mod edges {
    use proptest::prelude::*;

    use super::*;

    /// Integers near both ends of the space as well as anywhere.
    fn edge_biased() -> impl Strategy<Value = u128> {
        prop_oneof![any::<u128>(), (0u128..64), (0u128..64).prop_map(|d| u128::MAX - d),]
    }

    fn v6_block() -> impl Strategy<Value = AddressBlock> {
        (edge_biased(), edge_biased()).prop_map(|(a, b)| {
            let (lo, hi) = (a.min(b), a.max(b));
            AddressBlock::new(u128_to_ip(Family::V6, lo), u128_to_ip(Family::V6, hi)).expect("ordered")
        })
    }

    proptest! {
        /// Both ends are addressable, nothing past the last one is, and the
        /// CIDR cover runs contiguously from the first address to the last.
        #[test]
        fn ends_are_inclusive(b in v6_block()) {
            let (first, last) = (ip_to_u128(b.first()), ip_to_u128(b.last()));
            prop_assert_eq!(b.nth(0), Some(b.first()));
            prop_assert_eq!(b.nth(b.last_offset()), Some(b.last()));
            prop_assert_eq!(b.offset_of(b.last()), Some(b.last_offset()));
            if let Some(past) = b.last_offset().checked_add(1) {
                prop_assert_eq!(b.nth(past), None);
            }
            prop_assert_eq!(b.len(), (last - first).saturating_add(1));
            let mut next = Some(first);
            for c in b.cidrs() {
                prop_assert_eq!(Some(ip_to_u128(c.network())), next);
                next = ip_to_u128(c.broadcast_or_last()).checked_add(1);
            }
            prop_assert_eq!(next, last.checked_add(1));
        }
    }
}
