//! The embedded table's index: partitions by partition key in a hash map,
//! each partition's items by sort key in a B-tree. A point read hashes the
//! partition key once and searches one partition; a query reads one
//! partition in sort-key order, which is all the port asks. (One B-tree
//! over (pk, sk) compared whole keys at every step, most of them sharing a
//! long prefix: 2.5 % of the server's CPU under the deposit bench.)

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use super::{Key, Query, SkRange};

pub struct Partitions<V> {
    parts: HashMap<String, BTreeMap<String, V>>,
}

impl<V> Default for Partitions<V> {
    fn default() -> Self {
        Self {
            parts: HashMap::new(),
        }
    }
}

impl<V> Partitions<V> {
    pub fn get(&self, key: &Key) -> Option<&V> {
        self.parts.get(&key.pk)?.get(&key.sk)
    }

    pub fn insert(&mut self, key: Key, value: V) -> Option<V> {
        self.parts.entry(key.pk).or_default().insert(key.sk, value)
    }

    /// Remove an item; a partition left empty goes too (memory stays
    /// bounded by what is stored, not by what ever was).
    pub fn remove(&mut self, key: &Key) -> Option<V> {
        let part = self.parts.get_mut(&key.pk)?;
        let gone = part.remove(&key.sk);
        if part.is_empty() {
            self.parts.remove(&key.pk);
        }
        gone
    }

    /// The items of `q`'s partition within its sort-key range, in sort-key
    /// order (the caller applies the cursor and the direction). An inverted
    /// range is empty.
    pub fn range<'a>(&'a self, q: &'a Query) -> impl DoubleEndedIterator<Item = (&'a str, &'a V)> {
        let bounds = match &q.range {
            SkRange::Between(a, b) if a > b => None,
            SkRange::Between(a, b) => {
                Some((Bound::Included(a.as_str()), Bound::Included(b.as_str())))
            }
            SkRange::Prefix(p) => Some((Bound::Included(p.as_str()), Bound::Unbounded)),
            SkRange::All => Some((Bound::Unbounded, Bound::Unbounded)),
        };
        self.parts
            .get(&q.pk)
            .zip(bounds)
            .into_iter()
            .flat_map(|(part, bounds)| part.range::<str, _>(bounds))
            .map(|(sk, v)| (sk.as_str(), v))
    }

    /// Every item, partition by partition (for a snapshot: any order).
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.parts.values().flat_map(BTreeMap::values)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.parts.values().map(BTreeMap::len).sum()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sks(p: &Partitions<u32>, q: &Query) -> Vec<String> {
        p.range(q).map(|(sk, _)| sk.to_owned()).collect()
    }

    #[test]
    fn partitions_hold_their_own_items_in_sort_key_order() {
        let mut p = Partitions::default();
        for (i, (pk, sk)) in [
            ("A", "b"),
            ("A", "a"),
            ("AB", "a"),
            ("B", "c"),
            ("A", "c#1"),
        ]
        .into_iter()
        .enumerate()
        {
            assert_eq!(p.insert(Key::new(pk, sk), i as u32), None);
        }
        assert_eq!(p.insert(Key::new("A", "a"), 9), Some(1));
        assert_eq!(p.get(&Key::new("A", "a")), Some(&9));
        assert_eq!(p.get(&Key::new("A", "z")), None);
        assert_eq!(p.get(&Key::new("C", "a")), None);
        let all = Query::new("A", SkRange::All, 10);
        assert_eq!(sks(&p, &all), ["a", "b", "c#1"]);
        let prefix = Query::new("A", SkRange::Prefix("c".into()), 10);
        assert_eq!(sks(&p, &prefix), ["c#1"]);
        let between = Query::new("A", SkRange::Between("b".into(), "c#1".into()), 10);
        assert_eq!(sks(&p, &between), ["b", "c#1"]);
        let inverted = Query::new("A", SkRange::Between("c".into(), "a".into()), 10);
        assert!(sks(&p, &inverted).is_empty());
        assert!(sks(&p, &Query::new("none", SkRange::All, 10)).is_empty());
        assert_eq!(p.len(), 5);
        // The last item of a partition takes the partition with it.
        assert_eq!(p.remove(&Key::new("B", "c")), Some(3));
        assert_eq!(p.remove(&Key::new("B", "c")), None);
        assert!(!p.parts.contains_key("B"));
        assert_eq!(p.values().count(), 4);
    }
}
