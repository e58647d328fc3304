//! A bounded map in two generations, for the crate's small in-memory caches (verified
//! tokens, keys derived from cookie salts).
//!
//! New entries go into the current generation; when it is full it becomes the previous one
//! and the old previous one is dropped. A hit in the previous generation moves the entry
//! back into the current one. That approximates LRU with O(1) work and no per-entry
//! bookkeeping, and holds at most twice the capacity. Hand-written because the LRU crates
//! keep a linked list per entry, which costs more on every hit than this does; the caller
//! supplies the locking (a `Mutex`, or one per shard).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

pub(crate) struct Generations<K, V, S> {
    current: HashMap<K, V, S>,
    previous: HashMap<K, V, S>,
    /// Entries per generation (at least 1).
    capacity: usize,
}

impl<K: Hash + Eq, V, S: BuildHasher + Default> Generations<K, V, S> {
    /// Holds up to `capacity` entries per generation (0 is taken as 1).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            current: HashMap::default(),
            previous: HashMap::default(),
            capacity: capacity.max(1),
        }
    }

    /// `f` of the entry for `key`, which a hit keeps (or makes) current.
    #[inline(always)]
    pub(crate) fn get_with<Q, R>(&mut self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get_if(key, |value| Some(f(value)))
    }

    /// `f` of the entry for `key` when `f` accepts it (`Some`). Only an accepted entry is
    /// kept (or made) current: a lookup `f` refuses leaves the map as it was.
    // Inlined into the verifier's cache-hit path, where a call measured ~5 ns.
    #[inline(always)]
    pub(crate) fn get_if<Q, R>(&mut self, key: &Q, f: impl FnOnce(&V) -> Option<R>) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(value) = self.current.get(key) {
            return f(value);
        }
        let found = f(self.previous.get(key)?)?;
        if let Some((key, value)) = self.previous.remove_entry(key) {
            self.insert(key, value);
        }
        Some(found)
    }

    /// The entry for `key` when it is in the current generation (where a hit just put it).
    pub(crate) fn current_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.current.get_mut(key)
    }

    pub(crate) fn insert(&mut self, key: K, value: V) {
        if self.current.len() >= self.capacity && !self.current.contains_key(&key) {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(key, value);
    }

    /// Removes the entry for `key` when `keep` refuses it.
    pub(crate) fn remove_unless<Q>(&mut self, key: &Q, keep: impl Fn(&V) -> bool)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        for generation in [&mut self.current, &mut self.previous] {
            if generation.get(key).is_some_and(|v| !keep(v)) {
                generation.remove(key);
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::hash_map::RandomState;

    use super::*;

    fn map(capacity: usize) -> Generations<u32, u32, RandomState> {
        Generations::new(capacity)
    }

    #[test]
    fn holds_at_most_two_generations_and_drops_the_oldest() {
        let mut m = map(4);
        for i in 0..20 {
            m.insert(i, i * 10);
            assert!(m.len() <= 8, "after {i}");
        }
        // The newest generation is whole; the first entries are long gone.
        for i in 16..20 {
            assert_eq!(m.get_with(&i, |v| *v), Some(i * 10));
        }
        assert_eq!(m.get_with(&0, |v| *v), None);
    }

    #[test]
    fn a_hit_in_the_previous_generation_survives_the_next_rotation() {
        let mut m = map(2);
        m.insert(1, 10);
        m.insert(2, 20);
        m.insert(3, 30); // {1, 2} become the previous generation
        assert_eq!(m.get_with(&1, |v| *v), Some(10)); // promoted: current {3, 1}
        assert!(m.current_mut(&1).is_some());
        m.insert(4, 40); // current {3, 1} becomes previous; 2 is dropped
        assert_eq!(m.get_with(&1, |v| *v), Some(10));
        assert_eq!(m.get_with(&2, |v| *v), None);
    }

    #[test]
    fn an_entry_refused_by_get_if_stays_where_it_was() {
        let mut m = map(2);
        m.insert(1, 10);
        m.insert(2, 20);
        m.insert(3, 30); // {1, 2} become the previous generation
        assert_eq!(m.get_if(&1, |_| None::<u32>), None);
        assert!(m.current_mut(&1).is_none(), "refused, so not promoted");
        assert_eq!(m.get_if(&3, |v| (*v == 30).then_some(*v)), Some(30));
        assert_eq!(m.get_if(&1, |v| Some(*v)), Some(10)); // accepted: promoted
        assert!(m.current_mut(&1).is_some());
    }

    #[test]
    fn remove_unless_removes_only_what_it_refuses() {
        let mut m = map(2);
        m.insert(1, 10);
        m.insert(2, 20);
        m.insert(3, 30); // previous {1, 2}, current {3}
        m.remove_unless(&1, |v| *v == 10);
        m.remove_unless(&3, |v| *v == 30);
        assert_eq!(m.len(), 3, "both kept");
        m.remove_unless(&1, |v| *v == 11);
        m.remove_unless(&3, |v| *v == 31);
        assert_eq!(m.get_with(&1, |v| *v), None);
        assert_eq!(m.get_with(&3, |v| *v), None);
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn replacing_a_current_key_does_not_rotate_and_a_removal_clears_both() {
        let mut m = map(2);
        m.insert(1, 10);
        m.insert(2, 20);
        m.insert(2, 21);
        assert_eq!(m.len(), 2);
        assert_eq!(m.get_with(&1, |v| *v), Some(10));
        m.insert(3, 30);
        m.remove_unless(&1, |_| false);
        m.remove_unless(&3, |_| false);
        assert_eq!(m.get_with(&1, |v| *v), None);
        assert_eq!(m.get_with(&3, |v| *v), None);
        assert_eq!(m.get_with(&2, |v| *v), Some(21));
    }
}
