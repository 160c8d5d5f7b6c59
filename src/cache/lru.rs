//! An exact LRU map: a hash map into a slab of nodes on a doubly linked
//! list, so that a hit, an insert and an eviction are O(1). It keeps the
//! sum of its values' [`Weighed::weight`] (bytes held), for byte budgets.

use std::collections::HashMap;

use crate::name::DomainName;

const NIL: u32 = u32::MAX;

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

struct Node<V> {
    key: DomainName,
    value: V,
    prev: u32,
    next: u32,
}

/// Most recently used at `head`, least at `tail`. A removed node stays in
/// the slab with a default value until an insert reuses it.
pub(super) struct Lru<V> {
    map: HashMap<DomainName, u32>,
    nodes: Vec<Node<V>>,
    free: Vec<u32>,
    head: u32,
    tail: u32,
    /// The sum of the held values' weights.
    weight: usize,
}

impl<V: Default + Weighed> Lru<V> {
    pub(super) fn new() -> Self {
        Self { map: HashMap::new(), nodes: Vec::new(), free: Vec::new(), head: NIL, tail: NIL, weight: 0 }
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    /// The sum of the held values' weights.
    pub(super) fn weight(&self) -> usize {
        self.weight
    }

    fn node(&self, i: u32) -> &Node<V> {
        &self.nodes[i as usize]
    }

    fn node_mut(&mut self, i: u32) -> &mut Node<V> {
        &mut self.nodes[i as usize]
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let n = self.node(i);
            (n.prev, n.next)
        };
        match prev {
            NIL => self.head = next,
            p => self.node_mut(p).next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.node_mut(n).prev = prev,
        }
    }

    fn push_front(&mut self, i: u32) {
        let old = self.head;
        {
            let n = self.node_mut(i);
            n.prev = NIL;
            n.next = old;
        }
        match old {
            NIL => self.tail = i,
            o => self.node_mut(o).prev = i,
        }
        self.head = i;
    }

    /// Changes the value for `key` (marked as most recently used) with `f`,
    /// keeping the weight right.
    pub(super) fn modify<R>(&mut self, key: &DomainName, f: impl FnOnce(&mut V) -> R) -> Option<R> {
        let value = self.get_mut(key)?;
        let before = value.weight();
        let result = f(value);
        let after = value.weight();
        self.weight = self.weight - before + after;
        Some(result)
    }

    /// The value for `key`, marked as most recently used. The change made
    /// through it must not change its weight (use [`modify`](Self::modify)).
    pub(super) fn get_mut(&mut self, key: &DomainName) -> Option<&mut V> {
        let i = *self.map.get(key)?;
        if self.head != i {
            self.unlink(i);
            self.push_front(i);
        }
        Some(&mut self.node_mut(i).value)
    }

    /// The value for `key`, leaving the order alone.
    pub(super) fn peek(&self, key: &DomainName) -> Option<&V> {
        self.map.get(key).map(|&i| &self.node(i).value)
    }

    /// Inserts (or replaces) `key` as most recently used.
    pub(super) fn insert(&mut self, key: DomainName, value: V) -> &mut V {
        self.weight += value.weight();
        let i = match self.map.get(&key) {
            Some(&i) => {
                self.unlink(i);
                let old = std::mem::replace(&mut self.node_mut(i).value, value);
                self.weight -= old.weight();
                i
            }
            None => {
                let node = Node { key: key.clone(), value, prev: NIL, next: NIL };
                let i = match self.free.pop() {
                    Some(i) => {
                        self.nodes[i as usize] = node;
                        i
                    }
                    None => {
                        // A shard holds far fewer than 2^32 - 1 entries.
                        self.nodes.push(node);
                        (self.nodes.len() - 1) as u32
                    }
                };
                self.map.insert(key, i);
                i
            }
        };
        self.push_front(i);
        &mut self.node_mut(i).value
    }

    pub(super) fn remove(&mut self, key: &DomainName) -> Option<V> {
        let i = self.map.remove(key)?;
        self.unlink(i);
        self.free.push(i);
        let value = std::mem::take(&mut self.node_mut(i).value);
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
        let mut evicted = 0;
        let mut cursor = self.tail;
        let stop = if keep_head { self.head } else { NIL };
        while (self.map.len() > capacity || self.weight > budget) && cursor != NIL && cursor != stop {
            let (prev, can) = {
                let n = self.node(cursor);
                (n.prev, evictable(&n.value))
            };
            if can {
                let key = self.node(cursor).key.clone();
                self.remove(&key);
                evicted += 1;
            }
            cursor = prev;
        }
        evicted
    }

    /// Entries from most to least recently used.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&DomainName, &V)> {
        let mut cursor = self.head;
        std::iter::from_fn(move || {
            let n = self.nodes.get(cursor as usize)?;
            cursor = n.next;
            Some((&n.key, &n.value))
        })
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
