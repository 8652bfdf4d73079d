//! Disjoint runs of positions, `[start, end]` inclusive, ordered.
//!
//! The lowest run lives outside the tree: allocation keeps extending it
//! (the lowest free address is right after it) and releasing the newest
//! address shrinks it, so the common operations touch no tree node at all,
//! and an empty pool does not allocate and free a node on every cycle.

use std::collections::BTreeMap;
use std::ops::Bound;

/// A run of used positions, `(start, end)` inclusive.
pub(crate) type Run = (u128, u128);

#[derive(Debug, Clone, Default)]
pub(crate) struct Runs {
    /// The lowest run; `None` only when there are no runs at all.
    head: Option<Run>,
    /// The other runs by start, all after `head`.
    tail: BTreeMap<u128, u128>,
}

impl Runs {
    /// The lowest run.
    #[inline]
    pub(crate) fn first(&self) -> Option<Run> {
        self.head
    }

    /// The second lowest run.
    #[inline]
    pub(crate) fn second(&self) -> Option<Run> {
        self.tail.first_key_value().map(|(s, e)| (*s, *e))
    }

    /// The run with the greatest start at or before `position`.
    #[inline]
    pub(crate) fn at_or_before(&self, position: u128) -> Option<Run> {
        if !self.tail.is_empty()
            && let Some((s, e)) = self.tail.range(..=position).next_back()
        {
            return Some((*s, *e));
        }
        self.head.filter(|(start, _)| *start <= position)
    }

    /// The run with the least start after `position`.
    #[inline]
    pub(crate) fn after(&self, position: u128) -> Option<Run> {
        match self.head {
            Some(head) if head.0 > position => Some(head),
            _ if self.tail.is_empty() => None,
            _ => self.tail.range((Bound::Excluded(position), Bound::Unbounded)).next().map(|(s, e)| (*s, *e)),
        }
    }

    /// The run holding `position`.
    #[inline]
    pub(crate) fn containing(&self, position: u128) -> Option<Run> {
        match self.head {
            Some((start, end)) if start <= position && position <= end => self.head,
            Some((start, _)) if position > start && !self.tail.is_empty() => {
                let (start, end) = self.tail.range(..=position).next_back()?;
                (*end >= position).then_some((*start, *end))
            }
            _ => None,
        }
    }

    /// Takes `position` out of the run holding it (shrinking, splitting or
    /// removing that run); false if no run holds it. Releasing the newest
    /// address shrinks the head in place, touching no tree node.
    #[inline]
    pub(crate) fn free(&mut self, position: u128) -> bool {
        let end = match &mut self.head {
            Some(head) if head.0 <= position && position <= head.1 => {
                let (start, end) = *head;
                if start < position {
                    head.1 = position - 1;
                } else if position < end {
                    head.0 = position + 1;
                    return true;
                } else {
                    self.head = self.tail.pop_first();
                    return true;
                }
                end
            }
            Some(head) if head.0 < position && !self.tail.is_empty() => {
                let Some((&start, end)) = self.tail.range_mut(..=position).next_back() else { return false };
                let old_end = *end;
                if old_end < position {
                    return false;
                }
                if start < position {
                    *end = position - 1;
                } else {
                    self.tail.remove(&start);
                }
                old_end
            }
            _ => return false,
        };
        // What was after `position` in its run becomes a run of its own.
        if position < end {
            self.tail.insert(position + 1, end);
        }
        true
    }

    /// Adds a run that overlaps none.
    #[inline]
    pub(crate) fn insert(&mut self, run: Run) {
        match self.head {
            None => self.head = Some(run),
            Some(head) if run.0 < head.0 => {
                self.tail.insert(head.0, head.1);
                self.head = Some(run);
            }
            Some(_) => {
                self.tail.insert(run.0, run.1);
            }
        }
    }

    /// Removes the run starting at `start`.
    #[inline]
    pub(crate) fn remove(&mut self, start: u128) {
        match self.head {
            Some(head) if head.0 == start => self.head = self.tail.pop_first(),
            _ => {
                self.tail.remove(&start);
            }
        }
    }

    /// Moves the end of the run starting at `start`.
    #[inline]
    pub(crate) fn set_end(&mut self, start: u128, end: u128) {
        match &mut self.head {
            Some(head) if head.0 == start => head.1 = end,
            _ => {
                if let Some(e) = self.tail.get_mut(&start) {
                    *e = end;
                }
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        usize::from(self.head.is_some()) + self.tail.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_stays_the_lowest_run() {
        let mut runs = Runs::default();
        runs.insert((10, 12));
        runs.insert((20, 20));
        runs.insert((1, 3));
        assert_eq!(runs.first(), Some((1, 3)));
        assert_eq!(runs.at_or_before(15), Some((10, 12)));
        assert_eq!(runs.after(3), Some((10, 12)));
        assert_eq!(runs.after(0), Some((1, 3)));
        assert_eq!(runs.containing(11), Some((10, 12)));
        assert_eq!(runs.containing(13), None);
        runs.remove(1);
        assert_eq!(runs.first(), Some((10, 12)));
        runs.set_end(10, 14);
        runs.set_end(20, 25);
        assert_eq!(runs.containing(24), Some((20, 25)));
        assert_eq!(runs.len(), 2);
        runs.remove(10);
        runs.remove(20);
        assert_eq!((runs.first(), runs.len()), (None, 0));
    }

    #[test]
    fn free_shrinks_splits_and_removes() {
        let mut runs = Runs::default();
        runs.insert((0, 9));
        runs.insert((20, 29));
        assert_eq!(runs.second(), Some((20, 29)));
        assert!(runs.free(9));
        assert!(!runs.free(9));
        assert_eq!(runs.first(), Some((0, 8)));
        assert!(runs.free(0));
        assert_eq!(runs.first(), Some((1, 8)));
        assert!(runs.free(4));
        assert_eq!((runs.first(), runs.second()), (Some((1, 3)), Some((5, 8))));
        assert!(runs.free(25));
        assert!(runs.free(20));
        assert_eq!(runs.containing(24), Some((21, 24)));
        assert_eq!(runs.containing(25), None);
        assert_eq!(runs.containing(27), Some((26, 29)));
        assert!(!runs.free(15));
        for p in [1, 2, 3] {
            assert!(runs.free(p));
        }
        assert_eq!(runs.first(), Some((5, 8)));
        assert_eq!(runs.len(), 3);
    }
}
