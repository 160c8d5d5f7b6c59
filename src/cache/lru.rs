//! The LRU order of one shard: `lru::LruCache` (unbounded: the cache
//! decides what to evict, never the map), and the sum of its values'
//! [`Weighed::weight`] (bytes held), for byte budgets.

use crate::name::DomainName;

/// What a value costs to hold, in bytes (an estimate; 0 for values that
/// are not budgeted).
pub(super) trait Weighed {
    fn weight(&self) -> usize;
}

impl Weighed for u32 {
    fn weight(&self) -> usize {
        0
    }
}

/// Most recently used first. Hits, inserts and removals are O(1); an
/// eviction scans from the least recently used end past the entries it
/// may not evict.
pub(super) struct Lru<V> {
    inner: lru::LruCache<DomainName, V>,
    /// The sum of the held values' weights.
    weight: usize,
}

impl<V: Default + Weighed> Lru<V> {
    pub(super) fn new() -> Self {
        Self { inner: lru::LruCache::unbounded(), weight: 0 }
    }

    pub(super) fn len(&self) -> usize {
        self.inner.len()
    }

    /// The sum of the held values' weights.
    pub(super) fn weight(&self) -> usize {
        self.weight
    }

    /// Changes the value for `key` (marked as most recently used) with `f`,
    /// keeping the weight right.
    pub(super) fn modify<R>(&mut self, key: &DomainName, f: impl FnOnce(&mut V) -> R) -> Option<R> {
        let value = self.inner.get_mut(key)?;
        let before = value.weight();
        let result = f(value);
        let after = value.weight();
        self.weight = self.weight - before + after;
        Some(result)
    }

    /// The value for `key`, marked as most recently used. The change made
    /// through it must not change its weight (use [`modify`](Self::modify)).
    pub(super) fn get_mut(&mut self, key: &DomainName) -> Option<&mut V> {
        self.inner.get_mut(key)
    }

    /// The value for `key`, leaving the order alone.
    pub(super) fn peek(&self, key: &DomainName) -> Option<&V> {
        self.inner.peek(key)
    }

    /// Inserts (or replaces) `key` as most recently used.
    pub(super) fn insert(&mut self, key: DomainName, value: V) {
        self.weight += value.weight();
        if let Some(old) = self.inner.put(key, value) {
            self.weight -= old.weight();
        }
    }

    /// The value for `key` (most recently used), inserted as the default
    /// when absent. The change made through it must not change its weight.
    pub(super) fn get_or_default(&mut self, key: &DomainName) -> &mut V {
        if !self.inner.contains(key) {
            self.weight += V::default().weight();
        }
        self.inner.get_or_insert_mut(key.clone(), V::default)
    }

    pub(super) fn remove(&mut self, key: &DomainName) -> Option<V> {
        let value = self.inner.pop(key)?;
        self.weight -= value.weight();
        Some(value)
    }

    /// Evicts least recently used entries that `evictable` allows until at
    /// most `capacity` remain; returns how many it evicted. Entries it may
    /// not evict are passed over, never dropped; with `keep_head` the most
    /// recently used entry is kept too.
    pub(super) fn evict_to(&mut self, capacity: usize, keep_head: bool, evictable: impl Fn(&V) -> bool) -> usize {
        self.evict_within(capacity, usize::MAX, keep_head, evictable)
    }

    /// [`evict_to`](Self::evict_to), until at most `capacity` entries and
    /// `budget` weight remain.
    pub(super) fn evict_within(
        &mut self,
        capacity: usize,
        budget: usize,
        keep_head: bool,
        evictable: impl Fn(&V) -> bool,
    ) -> usize {
        let (mut len, mut weight) = (self.inner.len(), self.weight);
        if len <= capacity && weight <= budget {
            return 0;
        }
        let skip_head = usize::from(keep_head);
        let mut doomed = Vec::new();
        for (key, value) in self.inner.iter().rev().take(len.saturating_sub(skip_head)) {
            if len <= capacity && weight <= budget {
                break;
            }
            if evictable(value) {
                len -= 1;
                weight -= value.weight();
                doomed.push(key.clone());
            }
        }
        for key in &doomed {
            self.remove(key);
        }
        doomed.len()
    }

    /// Entries from most to least recently used.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&DomainName, &V)> {
        self.inner.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> DomainName {
        DomainName::parse(s).unwrap()
    }

    fn keys(lru: &Lru<u32>) -> Vec<String> {
        lru.iter().map(|(k, _)| k.to_string()).collect()
    }

    #[test]
    fn order_and_eviction() {
        let mut lru = Lru::new();
        for (i, d) in ["a.example", "b.example", "c.example"].iter().enumerate() {
            lru.insert(name(d), i as u32);
        }
        assert_eq!(keys(&lru), ["c.example", "b.example", "a.example"]);
        assert_eq!(lru.get_mut(&name("a.example")), Some(&mut 0));
        assert_eq!(keys(&lru), ["a.example", "c.example", "b.example"]);
        assert_eq!(lru.peek(&name("b.example")), Some(&1));
        assert_eq!(keys(&lru), ["a.example", "c.example", "b.example"]);
        // b is least recently used, but pinned: c goes instead.
        assert_eq!(lru.evict_to(2, true, |&v| v != 1), 1);
        assert_eq!(keys(&lru), ["a.example", "b.example"]);
        assert_eq!(lru.remove(&name("a.example")), Some(0));
        lru.insert(name("d.example"), 3);
        lru.insert(name("b.example"), 9);
        assert_eq!(keys(&lru), ["b.example", "d.example"]);
        assert_eq!(lru.len(), 2);
        assert_eq!(lru.evict_to(0, false, |_| false), 0);
        // With keep_head the most recently used entry stays.
        assert_eq!(lru.evict_to(0, true, |_| true), 1);
        assert_eq!(keys(&lru), ["b.example"]);
        assert_eq!(lru.evict_to(0, false, |_| true), 1);
        assert_eq!(lru.len(), 0);
        assert!(keys(&lru).is_empty());
    }
}
