//! The addresses of one family of one pool, and which of them are in use.
//!
//! A pool's blocks are laid end to end in the order they are written, so
//! every address has a *position*; "the lowest free address in the order
//! written" is the lowest free position. Used positions are kept as
//! coalesced runs in a `BTreeMap`, so memory and time grow with the number
//! (and fragmentation) of allocations, never with the size of the pool: an
//! IPv6 /64 costs what a /30 costs.

use std::net::IpAddr;

use lb_core::addr::{AddressBlock, Family, ip_to_u128, is_buggy_ip, u128_to_ip};

use crate::runs::{Run, Runs};

/// A block laid out in the space, as integers: the hot paths do no address
/// conversion beyond one at each end.
#[derive(Debug, Clone, Copy)]
struct Laid {
    /// Position of the block's first address.
    position: u128,
    first: u128,
    last: u128,
}

/// One family of one pool.
#[derive(Debug, Clone)]
pub struct AddressSpace {
    family: Family,
    /// Blocks in written order.
    blocks: Vec<Laid>,
    /// The same, ordered by first address, to find an address's block.
    by_address: Vec<Laid>,
    /// The last position, inclusive; `None` for an empty space. Never a
    /// count or an exclusive end: all of IPv6 has 2^128 positions, and
    /// the top one (`u128::MAX`) must stay reachable.
    last_position: Option<u128>,
    avoid_buggy: bool,
    /// Runs of used positions, `start -> end` inclusive. Runs separated only
    /// by buggy positions are merged, so skipping `.255`/`.0` costs nothing.
    used: Runs,
    in_use: u128,
    usable: u128,
}

impl AddressSpace {
    /// The space of `family` over `blocks` (blocks of other families are ignored).
    pub fn new(family: Family, blocks: &[AddressBlock], avoid_buggy: bool) -> Self {
        let mut laid = Vec::new();
        // Where the next block starts; `None` once a block ends at the top
        // position, which only all of IPv6 reaches (pools do not overlap).
        let mut next: Option<u128> = Some(0);
        let mut last_position = None;
        let mut usable: u128 = 0;
        for block in blocks.iter().filter(|b| b.family() == family) {
            let Some(position) = next else { break };
            laid.push(Laid { position, first: ip_to_u128(block.first()), last: ip_to_u128(block.last()) });
            let last = position.saturating_add(block.last_offset());
            last_position = Some(last);
            next = last.checked_add(1);
            usable = usable.saturating_add(block.usable(avoid_buggy));
        }
        let mut by_address = laid.clone();
        by_address.sort_by_key(|b| b.first);
        Self {
            family,
            blocks: laid,
            by_address,
            last_position,
            avoid_buggy: avoid_buggy && family == Family::V4,
            used: Runs::default(),
            in_use: 0,
            usable,
        }
    }

    pub fn family(&self) -> Family {
        self.family
    }

    /// Whether the pool has any address of this family.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Addresses that may be handed out (all of IPv6, 2^128, saturates at
    /// `u128::MAX`; see [`AddressBlock::len`]).
    pub fn usable(&self) -> u128 {
        self.usable
    }

    /// Addresses handed out.
    pub fn in_use(&self) -> u128 {
        self.in_use
    }

    /// Position of `ip`, if it lies in the space.
    #[inline]
    pub fn position(&self, ip: IpAddr) -> Option<u128> {
        if Family::of(ip) != self.family {
            return None;
        }
        let key = ip_to_u128(ip);
        let i = self.by_address.partition_point(|b| b.first <= key).checked_sub(1)?;
        let block = &self.by_address[i];
        let position = block.position.checked_add(key - block.first)?;
        (key <= block.last && self.holds(position)).then_some(position)
    }

    /// Whether `position` is in the space (at or below the last one).
    #[inline(always)]
    fn holds(&self, position: u128) -> bool {
        matches!(self.last_position, Some(last) if position <= last)
    }

    /// The address at `position` (which must be at or below the last position).
    #[inline]
    fn address(&self, position: u128) -> IpAddr {
        let i = self.blocks.partition_point(|b| b.position <= position).saturating_sub(1);
        let block = &self.blocks[i];
        u128_to_ip(self.family, block.first + (position - block.position))
    }

    #[inline]
    fn is_buggy(&self, position: u128) -> bool {
        self.avoid_buggy && self.holds(position) && is_buggy_ip(self.address(position))
    }

    /// The first position at or after `position` that is not buggy.
    #[inline]
    fn skip_buggy(&self, mut position: u128) -> u128 {
        if !self.avoid_buggy {
            return position;
        }
        while self.is_buggy(position) {
            position += 1;
        }
        position
    }

    /// The used run containing `position`, if any.
    fn run_containing(&self, position: u128) -> Option<(u128, u128)> {
        self.used.containing(position)
    }

    /// Whether `(from, to)` (exclusive at both ends) holds only buggy positions.
    #[inline]
    fn gap_is_buggy(&self, from: u128, to: u128) -> bool {
        // Where blocks meet, more than two buggy positions can follow each
        // other (`…0.255` ending one block, `…3.255`, `…4.0` starting the next).
        self.skip_buggy(from + 1) >= to
    }

    /// Whether `ip` is handed out.
    pub fn is_used(&self, ip: IpAddr) -> bool {
        self.position(ip).is_some_and(|p| !self.is_buggy(p) && self.run_containing(p).is_some())
    }

    /// The lowest free address in written order, skipping buggy ones if asked.
    pub fn first_free(&self) -> Option<IpAddr> {
        self.lowest_free().map(|(position, ..)| self.address(position))
    }

    /// Marks the lowest free address used and returns it: [`first_free`]
    /// then [`insert`] in one step, without finding the address's position
    /// again or checking that it is free and usable (it is, by construction).
    ///
    ///
    /// This and the other `#[inline(always)]` functions on the allocation
    /// path are small but pass runs and addresses by value: inlined, those
    /// stay in registers instead of going through the stack and being read
    /// back before the stores land (about a tenth of an allocate+release).
    ///
    /// [`first_free`]: AddressSpace::first_free
    /// [`insert`]: AddressSpace::insert
    #[inline(always)]
    pub fn take_first_free(&mut self) -> Option<IpAddr> {
        let (position, left, right) = self.lowest_free()?;
        self.join(position, left, right);
        Some(self.address(position))
    }

    /// The lowest free position, with the runs just before and after it.
    ///
    /// Runs separated only by buggy positions are always merged, so between
    /// two runs lies a free, usable position: the lowest free one is either
    /// the lowest usable position (before the first run) or the first usable
    /// one after the first run (before the second).
    #[inline(always)]
    fn lowest_free(&self) -> Option<(u128, Option<Run>, Option<Run>)> {
        let lowest = self.skip_buggy(0);
        let first = self.used.first();
        let (position, left, right) = match first {
            // A run ending at the top position leaves nothing free after it.
            Some((start, end)) if start <= lowest && lowest <= end => {
                (self.skip_buggy(end.checked_add(1)?), first, self.used.second())
            }
            _ => (lowest, None, first),
        };
        debug_assert!(!self.holds(position) || self.run_containing(position).is_none());
        self.holds(position).then_some((position, left, right))
    }

    /// Marks `ip` used; false if it is outside, buggy, or already used.
    pub fn insert(&mut self, ip: IpAddr) -> bool {
        let Some(position) = self.position(ip) else { return false };
        if self.is_buggy(position) || self.run_containing(position).is_some() {
            return false;
        }
        self.mark(position);
        true
    }

    /// Marks a free, usable `position` used, merging its run with the runs
    /// beside it when only buggy positions lie between.
    fn mark(&mut self, position: u128) {
        self.join(position, self.used.at_or_before(position), self.used.after(position));
    }

    /// [`AddressSpace::mark`] given the runs just before and after `position`.
    #[inline(always)]
    fn join(&mut self, position: u128, left: Option<Run>, right: Option<Run>) {
        let joins_left = left.filter(|&(_, end)| self.gap_is_buggy(end, position));
        let joins_right = right.filter(|&(start, _)| self.gap_is_buggy(position, start));
        match (joins_left, joins_right) {
            (Some((start, _)), Some((right_start, right_end))) => {
                self.used.remove(right_start);
                self.used.set_end(start, right_end);
            }
            (Some((start, _)), None) => self.used.set_end(start, position),
            (None, Some((right_start, right_end))) => {
                self.used.remove(right_start);
                self.used.insert((position, right_end));
            }
            (None, None) => self.used.insert((position, position)),
        }
        self.in_use += 1;
    }

    /// Marks `ip` free; false if it was not used.
    #[inline(always)]
    pub fn remove(&mut self, ip: IpAddr) -> bool {
        let Some(position) = self.position(ip) else { return false };
        if self.is_buggy(position) {
            return false;
        }
        if !self.used.free(position) {
            return false;
        }
        self.in_use -= 1;
        true
    }

    /// Number of runs kept: the memory this space uses.
    pub fn runs(&self) -> usize {
        self.used.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn blocks(list: &[&str]) -> Vec<AddressBlock> {
        list.iter().map(|b| b.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn lowest_free_in_written_order() {
        let mut s = AddressSpace::new(Family::V4, &blocks(&["192.0.2.8/30", "192.0.2.0/30"]), false);
        assert_eq!(s.usable(), 8);
        let mut got = Vec::new();
        while let Some(a) = s.first_free() {
            assert!(s.insert(a));
            got.push(a.to_string());
        }
        assert_eq!(
            got,
            ["192.0.2.8", "192.0.2.9", "192.0.2.10", "192.0.2.11", "192.0.2.0", "192.0.2.1", "192.0.2.2", "192.0.2.3"]
        );
        assert_eq!(s.runs(), 1);
        assert!(s.remove(ip("192.0.2.10")));
        assert_eq!(s.first_free(), Some(ip("192.0.2.10")));
        assert_eq!(s.runs(), 2);
        assert!(!s.remove(ip("192.0.2.10")));
        assert!(s.insert(ip("192.0.2.10")));
        assert_eq!(s.runs(), 1);
        assert_eq!(s.in_use(), 8);
    }

    #[test]
    fn buggy_ips_are_skipped_and_runs_stay_merged() {
        let mut s = AddressSpace::new(Family::V4, &blocks(&["10.0.0.0/22"]), true);
        assert_eq!(s.usable(), 1024 - 8);
        assert_eq!(s.first_free(), Some(ip("10.0.0.1")));
        for _ in 0..600 {
            let a = s.first_free().unwrap();
            assert!(!is_buggy_ip(a));
            assert!(s.insert(a));
        }
        assert_eq!(s.runs(), 1);
        assert!(!s.insert(ip("10.0.1.0")));
        assert!(!s.is_used(ip("10.0.0.255")));
        assert!(s.is_used(ip("10.0.1.1")));
    }

    #[test]
    fn buggy_slash31() {
        let mut s = AddressSpace::new(Family::V4, &blocks(&["192.0.2.254/31"]), true);
        assert_eq!(s.usable(), 1);
        assert_eq!(s.first_free(), Some(ip("192.0.2.254")));
        assert!(s.insert(ip("192.0.2.254")));
        assert_eq!(s.first_free(), None);
    }

    #[test]
    fn runs_merge_across_buggy_addresses_between_blocks() {
        let mut s = AddressSpace::new(Family::V4, &blocks(&["10.0.0.254-10.0.0.255", "10.0.2.255-10.0.3.1"]), true);
        assert_eq!(s.usable(), 2);
        assert!(s.insert(ip("10.0.3.1")));
        assert_eq!(s.first_free(), Some(ip("10.0.0.254")));
        assert!(s.insert(ip("10.0.0.254")));
        assert_eq!(s.first_free(), None);
        assert_eq!(s.runs(), 1);
    }

    const TOP: &str = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";

    #[test]
    fn the_last_address_of_everything() {
        for spaces in [&["::/0"][..], &["::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"], &["::/1", "8000::/1"]] {
            let mut s = AddressSpace::new(Family::V6, &blocks(spaces), false);
            assert_eq!(s.usable(), u128::MAX, "2^128 saturates");
            let top = ip(TOP);
            assert_eq!(s.position(top), Some(u128::MAX), "{spaces:?}");
            assert!(s.insert(top), "{spaces:?}");
            assert!(s.is_used(top));
            assert!(!s.insert(top));
            assert!(s.insert(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe")));
            assert_eq!(s.runs(), 1);
            assert_eq!(s.first_free(), Some(ip("::")));
            assert!(s.remove(top));
            assert!(!s.is_used(top));
            assert!(!s.remove(top));
            assert_eq!(s.in_use(), 1);
        }
    }

    #[test]
    fn a_block_ending_at_the_top_fills_and_empties() {
        let mut s = AddressSpace::new(
            Family::V6,
            &blocks(&["2001:db8::/127", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127"]),
            false,
        );
        let got: Vec<String> = std::iter::from_fn(|| s.take_first_free()).map(|a| a.to_string()).collect();
        assert_eq!(got, ["2001:db8::", "2001:db8::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", TOP]);
        assert!(s.remove(ip(TOP)));
        assert_eq!(s.first_free(), Some(ip(TOP)));
        assert_eq!(s.take_first_free(), Some(ip(TOP)));
        assert_eq!(s.first_free(), None);
    }

    #[test]
    fn the_whole_of_ipv4() {
        let mut s = AddressSpace::new(Family::V4, &blocks(&["0.0.0.0/0"]), false);
        assert_eq!(s.usable(), 1 << 32);
        assert!(s.insert(ip("255.255.255.255")));
        assert_eq!(s.take_first_free(), Some(ip("0.0.0.0")));
        let careful = AddressSpace::new(Family::V4, &blocks(&["0.0.0.0/0"]), true);
        assert_eq!(careful.usable(), (1 << 32) - 2 * (1 << 24));
        assert_eq!(careful.first_free(), Some(ip("0.0.0.1")));
    }

    #[test]
    fn huge_pools_cost_nothing() {
        let mut s = AddressSpace::new(Family::V6, &blocks(&["2001:db8::/64"]), false);
        assert_eq!(s.usable(), 1 << 64);
        assert!(s.insert(ip("2001:db8::ffff:ffff:ffff:fff0")));
        assert_eq!(s.first_free(), Some(ip("2001:db8::")));
        let mut v4 = AddressSpace::new(Family::V4, &blocks(&["10.0.0.0/8"]), true);
        assert_eq!(v4.first_free(), Some(ip("10.0.0.1")));
        assert!(v4.insert(ip("10.255.255.254")));
        assert_eq!(v4.position(ip("11.0.0.0")), None);
        assert!(!v4.insert(ip("11.0.0.0")));
    }
}

#[cfg(test)]
mod model {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    /// Blocks with `.0`/`.255` inside and at their edges, in an unsorted order.
    fn blocks() -> Vec<AddressBlock> {
        [
            "192.0.2.250-192.0.3.5",
            "198.51.100.0/31",
            "192.0.2.0/30",
            "203.0.113.255/32",
            "203.0.113.253-203.0.113.254",
            // Three buggy addresses in a row across a block boundary.
            "10.0.0.254-10.0.0.255",
            "10.0.2.255-10.0.3.1",
        ]
        .iter()
        .map(|b| b.parse().expect("block"))
        .collect()
    }

    proptest! {
        /// Against a plain set of used addresses: the lowest free address,
        /// membership and counts always agree, whatever the order of
        /// inserts, takes of the lowest free address and removes.
        #[test]
        fn runs_match_a_plain_set(avoid in any::<bool>(), ops in proptest::collection::vec((0u8..5, 0usize..40), 0..300)) {
            check(Family::V4, &blocks(), avoid, ops)?;
        }

        /// The same at the top of IPv6, where the last position is `u128::MAX`.
        #[test]
        fn runs_match_a_plain_set_at_the_top(ops in proptest::collection::vec((0u8..5, 0usize..40), 0..300)) {
            let top: Vec<AddressBlock> = ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff8/125", "::/126", "8000::-8000::3"]
                .iter()
                .map(|b| b.parse().expect("block"))
                .collect();
            check(Family::V6, &top, false, ops)?;
        }
    }

    /// Runs `ops` on a space over `blocks` and on a plain set of used addresses side by side.
    fn check(family: Family, blocks: &[AddressBlock], avoid: bool, ops: Vec<(u8, usize)>) -> Result<(), TestCaseError> {
        let all: Vec<IpAddr> =
            blocks.iter().flat_map(|b| (0..=b.last_offset()).filter_map(move |i| b.nth(i))).collect();
        let usable: Vec<IpAddr> = all.iter().copied().filter(|ip| !(avoid && is_buggy_ip(*ip))).collect();
        let mut space = AddressSpace::new(family, blocks, avoid);
        let mut used: BTreeSet<IpAddr> = BTreeSet::new();
        prop_assert_eq!(space.usable(), usable.len() as u128);
        for (op, index) in ops {
            // Four inserts or takes to one remove, so pools fill up and
            // the boundaries between runs get exercised.
            let ip = all[index % all.len()];
            let lowest = usable.iter().copied().find(|ip| !used.contains(ip));
            if op < 3 {
                let expected = usable.contains(&ip) && !used.contains(&ip);
                prop_assert_eq!(space.insert(ip), expected);
                if expected {
                    used.insert(ip);
                }
            } else if op == 3 {
                prop_assert_eq!(space.take_first_free(), lowest);
                used.extend(lowest);
            } else {
                prop_assert_eq!(space.remove(ip), used.remove(&ip));
            }
            let lowest = usable.iter().copied().find(|ip| !used.contains(ip));
            prop_assert_eq!(space.first_free(), lowest);
            prop_assert_eq!(space.in_use(), used.len() as u128);
            for ip in &all {
                prop_assert_eq!(space.is_used(*ip), used.contains(ip));
            }
        }
        Ok(())
    }
}
