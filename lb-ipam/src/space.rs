//! The addresses of one family of one pool, and which of them are in use.
//!
//! A pool's blocks are laid end to end in the order they are written, so
//! every address has a *position*; "the lowest free address in the order
//! written" is the lowest free position. Used positions are kept as
//! coalesced runs in a `BTreeMap`, so memory and time grow with the number
//! (and fragmentation) of allocations, never with the size of the pool: an
//! IPv6 /64 costs what a /30 costs.

use std::collections::BTreeMap;
use std::net::IpAddr;

use lb_core::addr::{AddressBlock, Family, is_buggy_ip};

/// One family of one pool.
#[derive(Debug, Clone)]
pub struct AddressSpace {
    family: Family,
    /// Blocks in written order, with the position of each block's first address.
    blocks: Vec<(AddressBlock, u128)>,
    /// Indices into `blocks`, ordered by first address, to find an address's block.
    by_address: Vec<usize>,
    positions: u128,
    avoid_buggy: bool,
    /// Runs of used positions, `start -> end` inclusive. Runs separated only
    /// by buggy positions are merged, so skipping `.255`/`.0` costs nothing.
    used: BTreeMap<u128, u128>,
    in_use: u128,
    usable: u128,
}

impl AddressSpace {
    /// The space of `family` over `blocks` (blocks of other families are ignored).
    pub fn new(family: Family, blocks: &[AddressBlock], avoid_buggy: bool) -> Self {
        let mut laid = Vec::new();
        let mut positions: u128 = 0;
        let mut usable: u128 = 0;
        for block in blocks.iter().filter(|b| b.family() == family) {
            laid.push((*block, positions));
            positions = positions.saturating_add(block.len());
            let buggy = if avoid_buggy { block.buggy_count() } else { 0 };
            usable = usable.saturating_add(block.len() - buggy);
        }
        let mut by_address: Vec<usize> = (0..laid.len()).collect();
        by_address.sort_by_key(|&i| lb_core::addr::ip_to_u128(laid[i].0.first()));
        Self {
            family,
            blocks: laid,
            by_address,
            positions,
            avoid_buggy: avoid_buggy && family == Family::V4,
            used: BTreeMap::new(),
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

    /// Addresses that may be handed out.
    pub fn usable(&self) -> u128 {
        self.usable
    }

    /// Addresses handed out.
    pub fn in_use(&self) -> u128 {
        self.in_use
    }

    /// Position of `ip`, if it lies in the space.
    pub fn position(&self, ip: IpAddr) -> Option<u128> {
        let key = lb_core::addr::ip_to_u128(ip);
        let i = self
            .by_address
            .partition_point(|&b| lb_core::addr::ip_to_u128(self.blocks[b].0.first()) <= key)
            .checked_sub(1)?;
        let (block, start) = &self.blocks[self.by_address[i]];
        block.offset_of(ip).map(|offset| start + offset)
    }

    /// The address at `position` (which must be below the space's size).
    fn address(&self, position: u128) -> IpAddr {
        let i = self.blocks.partition_point(|(_, start)| *start <= position) - 1;
        let (block, start) = &self.blocks[i];
        block.nth(position - start).unwrap_or(block.last())
    }

    fn is_buggy(&self, position: u128) -> bool {
        self.avoid_buggy && position < self.positions && is_buggy_ip(self.address(position))
    }

    /// The first position at or after `position` that is not buggy.
    fn skip_buggy(&self, mut position: u128) -> u128 {
        while self.is_buggy(position) {
            position += 1;
        }
        position
    }

    /// The used run containing `position`, if any.
    fn run_containing(&self, position: u128) -> Option<(u128, u128)> {
        self.used.range(..=position).next_back().filter(|(_, end)| **end >= position).map(|(s, e)| (*s, *e))
    }

    /// Whether `(from, to)` (exclusive at both ends) holds only buggy positions.
    fn gap_is_buggy(&self, from: u128, to: u128) -> bool {
        to == from + 1 || (self.avoid_buggy && to - from <= 3 && (from + 1..to).all(|p| self.is_buggy(p)))
    }

    /// Whether `ip` is handed out.
    pub fn is_used(&self, ip: IpAddr) -> bool {
        self.position(ip).is_some_and(|p| !self.is_buggy(p) && self.run_containing(p).is_some())
    }

    /// The lowest free address in written order, skipping buggy ones if asked.
    pub fn first_free(&self) -> Option<IpAddr> {
        let mut position = self.skip_buggy(0);
        while let Some((_, end)) = self.run_containing(position) {
            position = self.skip_buggy(end + 1);
        }
        (position < self.positions).then(|| self.address(position))
    }

    /// Marks `ip` used; false if it is outside, buggy, or already used.
    pub fn insert(&mut self, ip: IpAddr) -> bool {
        let Some(position) = self.position(ip) else { return false };
        if self.is_buggy(position) || self.run_containing(position).is_some() {
            return false;
        }
        let left = self.used.range(..position).next_back().map(|(s, e)| (*s, *e));
        let right = self.used.range(position + 1..).next().map(|(s, e)| (*s, *e));
        let mut start = position;
        let mut end = position;
        if let Some((ls, le)) = left
            && self.gap_is_buggy(le, position)
        {
            start = ls;
        }
        if let Some((rs, re)) = right
            && self.gap_is_buggy(position, rs)
        {
            self.used.remove(&rs);
            end = re;
        }
        self.used.insert(start, end);
        self.in_use += 1;
        true
    }

    /// Marks `ip` free; false if it was not used.
    pub fn remove(&mut self, ip: IpAddr) -> bool {
        let Some(position) = self.position(ip) else { return false };
        if self.is_buggy(position) {
            return false;
        }
        let Some((start, end)) = self.run_containing(position) else { return false };
        self.used.remove(&start);
        if start < position {
            self.used.insert(start, position - 1);
        }
        if position < end {
            self.used.insert(position + 1, end);
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
