//! The per-Service table: `ServiceKey -> V`, built for the allocator's
//! access pattern (look a Service up, then insert it; later remove it).
//!
//! Entries live in a dense vector (a slab), each with its key's hash; a
//! hash table of `u32` positions in that vector finds them. So:
//! - a lookup followed by an insert hashes the key's text once;
//! - growing the table moves 4-byte positions and re-hashes no text (that,
//!   and cache misses in a table of large entries, were most of the cost of
//!   filling a large pool from empty);
//! - the index of a /16's worth of Services stays small enough for the
//!   cache, and inserts append to the vector in order.

use hashbrown::HashTable;
use lb_core::service::ServiceKey;

#[derive(Debug, Clone)]
struct Held<V> {
    hash: u64,
    key: ServiceKey,
    value: V,
}

/// A map `ServiceKey -> V`, in no particular order.
#[derive(Debug, Clone)]
pub(crate) struct Services<V> {
    /// Positions in `held`, by the hash of their key.
    index: HashTable<u32>,
    held: Vec<Held<V>>,
    /// foldhash: several times faster than SipHash on short keys, and its
    /// per-process random seed still resists crafted collisions.
    state: foldhash::fast::RandomState,
}

impl<V> Default for Services<V> {
    fn default() -> Self {
        Self { index: HashTable::new(), held: Vec::new(), state: foldhash::fast::RandomState::default() }
    }
}

impl<V> Services<V> {
    /// The hash of `key` for the `*_hashed` methods.
    #[inline]
    pub(crate) fn hash(&self, key: &ServiceKey) -> u64 {
        use std::hash::BuildHasher;
        self.state.hash_one(key)
    }

    /// Position in `held` of `key`, whose hash is `hash`.
    #[inline(always)]
    fn find(&self, hash: u64, key: &ServiceKey) -> Option<usize> {
        let held = &self.held;
        let eq = |&i: &u32| {
            let h = &held[i as usize];
            h.hash == hash && h.key == *key
        };
        self.index.find(hash, eq).map(|&i| i as usize)
    }

    #[inline]
    pub(crate) fn get(&self, key: &ServiceKey) -> Option<&V> {
        self.get_hashed(self.hash(key), key)
    }

    /// [`Services::get`] with the hash from [`Services::hash`].
    #[inline]
    pub(crate) fn get_hashed(&self, hash: u64, key: &ServiceKey) -> Option<&V> {
        self.find(hash, key).map(|i| &self.held[i].value)
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, key: &ServiceKey) -> Option<&mut V> {
        let i = self.find(self.hash(key), key)?;
        Some(&mut self.held[i].value)
    }

    /// Inserts a key that is not in the table (checked in debug builds
    /// only): no search for an equal key, only for a free slot.
    #[inline(always)]
    pub(crate) fn insert_new_hashed(&mut self, hash: u64, key: ServiceKey, value: V) {
        debug_assert!(self.find(hash, &key).is_none(), "{key} inserted twice");
        let Ok(position) = u32::try_from(self.held.len()) else {
            panic!("more than 2^32 Services");
        };
        self.held.push(Held { hash, key, value });
        let held = &self.held;
        self.index.insert_unique(hash, position, |&i| held[i as usize].hash);
    }

    /// Removes `key`, moving the last entry into its place. Always inlined,
    /// like the allocation path (see [`crate::space::AddressSpace::take_first_free`]).
    #[inline(always)]
    pub(crate) fn remove(&mut self, key: &ServiceKey) -> Option<V> {
        let hash = self.hash(key);
        let held = &self.held;
        let eq = |&i: &u32| {
            let h = &held[i as usize];
            h.hash == hash && h.key == *key
        };
        let (position, _) = self.index.find_entry(hash, eq).ok()?.remove();
        let removed = self.held.swap_remove(position as usize);
        // The last entry moved into the hole: point its index slot there.
        if let Some(moved) = self.held.get(position as usize) {
            let last = self.held.len() as u32;
            if let Some(slot) = self.index.find_mut(moved.hash, |&i| i == last) {
                *slot = position;
            }
        }
        Some(removed.value)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&ServiceKey, &V)> {
        self.held.iter().map(|h| (&h.key, &h.value))
    }

    /// Empties the table (keeping its memory and seed), yielding the entries.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = (ServiceKey, V)> + '_ {
        self.index.clear();
        self.held.drain(..).map(|h| (h.key, h.value))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Against a `HashMap`, whatever the order of inserts and removes
        /// (removes move the last entry into the hole).
        #[test]
        fn matches_a_hash_map(ops in proptest::collection::vec((any::<bool>(), 0u8..24), 0..200)) {
            let keys: Vec<ServiceKey> = (0..24).map(|i| ServiceKey::new("ns", &format!("s{i}"))).collect();
            let mut table: Services<u32> = Services::default();
            let mut model: HashMap<ServiceKey, u32> = HashMap::new();
            for (n, (insert, k)) in ops.into_iter().enumerate() {
                let key = &keys[usize::from(k)];
                let value = n as u32;
                if insert && !model.contains_key(key) {
                    table.insert_new_hashed(table.hash(key), key.clone(), value);
                    model.insert(key.clone(), value);
                } else {
                    prop_assert_eq!(table.remove(key), model.remove(key));
                }
                for key in &keys {
                    prop_assert_eq!(table.get(key), model.get(key));
                }
                prop_assert_eq!(table.iter().count(), model.len());
            }
            if let Some(key) = model.keys().next().cloned() {
                *table.get_mut(&key).unwrap() += 1;
                prop_assert_eq!(table.get(&key).copied(), model.get(&key).map(|v| v + 1));
            }
            let drained: HashMap<ServiceKey, u32> = table.drain().collect();
            prop_assert_eq!(drained.len(), model.len());
            prop_assert_eq!(table.iter().count(), 0);
        }
    }
}
