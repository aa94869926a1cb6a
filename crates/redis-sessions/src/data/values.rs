//! `Values`: the ordered map of a session's values, from key to entry.
//!
//! Why not an `IndexMap` alone: a session holds a handful of keys (a basket, a user id, a CSRF
//! token), and building an `IndexMap` for them on every load cost about 600 of a session read's
//! 34,700 instructions (callgrind, `bash bench/callgrind.sh`: two allocations, and a SipHash of
//! every key), more than finding a key among a few by comparing them. Up to [`FEW`] keys live in
//! a plain vector, searched in order; past that the map becomes an `IndexMap`, so a session with
//! many keys (keys can come from requests, e.g. a basket keyed by product) keeps hashed
//! look-ups, and no operation costs more than a few string comparisons beyond what `IndexMap`
//! costs. Either way the keys keep their order: the order they were stored or first put.

use indexmap::IndexMap;

/// Most keys kept in the plain vector. A comparison of two keys of the same length costs about
/// a fifth of hashing one (keys of other lengths are told apart at once), so past this many a
/// hashed look-up is cheaper.
const FEW: usize = 8;

/// Keys to values, in order; see the module docs.
#[derive(Debug, Clone)]
pub(super) enum Values<V> {
    /// Up to [`FEW`] keys, searched in order.
    Few(Vec<(String, V)>),
    /// More keys than that, hashed (never goes back to `Few`).
    Many(IndexMap<String, V>),
}

impl<V> Default for Values<V> {
    fn default() -> Self {
        Self::Few(Vec::new())
    }
}

impl<V> Values<V> {
    /// An empty map with room for `n` keys.
    pub(super) fn with_capacity(n: usize) -> Self {
        if n > FEW {
            Self::Many(IndexMap::with_capacity(n))
        } else {
            Self::Few(Vec::with_capacity(n))
        }
    }

    pub(super) fn len(&self) -> usize {
        match self {
            Self::Few(few) => few.len(),
            Self::Many(many) => many.len(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The position of `key`, if it is held.
    pub(super) fn index_of(&self, key: &str) -> Option<usize> {
        match self {
            Self::Few(few) => few.iter().position(|(k, _)| k == key),
            Self::Many(many) => many.get_index_of(key),
        }
    }

    /// The value at position `i` (from [`Values::index_of`]).
    pub(super) fn at(&self, i: usize) -> &V {
        match self {
            Self::Few(few) => &few[i].1,
            Self::Many(many) => &many[i],
        }
    }

    /// The value at position `i` (from [`Values::index_of`]), to change.
    pub(super) fn at_mut(&mut self, i: usize) -> &mut V {
        match self {
            Self::Few(few) => &mut few[i].1,
            Self::Many(many) => &mut many[i],
        }
    }

    pub(super) fn get(&self, key: &str) -> Option<&V> {
        self.index_of(key).map(|i| self.at(i))
    }

    pub(super) fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.index_of(key).map(|i| self.at_mut(i))
    }

    pub(super) fn contains_key(&self, key: &str) -> bool {
        self.index_of(key).is_some()
    }

    /// Sets `key` to `value`: in its place when it is held (returning the old value), otherwise
    /// last.
    pub(super) fn insert(&mut self, key: String, value: V) -> Option<V> {
        if let Some(i) = self.index_of(&key) {
            return Some(std::mem::replace(self.at_mut(i), value));
        }
        match self {
            Self::Few(few) if few.len() < FEW => few.push((key, value)),
            Self::Few(few) => {
                let mut many = IndexMap::with_capacity(FEW * 2);
                many.extend(few.drain(..));
                many.insert(key, value);
                *self = Self::Many(many);
            }
            Self::Many(many) => {
                many.insert(key, value);
            }
        }
        None
    }

    /// Removes `key`, keeping the order of the others; returns its value.
    pub(super) fn shift_remove(&mut self, key: &str) -> Option<V> {
        let i = self.index_of(key)?;
        match self {
            Self::Few(few) => Some(few.remove(i).1),
            Self::Many(many) => many.shift_remove_index(i).map(|(_, v)| v),
        }
    }

    /// The keys and values, in order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        let (few, many) = match self {
            Self::Few(few) => (few.as_slice(), None),
            Self::Many(many) => (&[][..], Some(many)),
        };
        let many = many.into_iter().flatten();
        (few.iter().map(|(k, v)| (k.as_str(), v))).chain(many.map(|(k, v)| (k.as_str(), v)))
    }

    /// The keys and values, in order, the values to change.
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut V)> {
        let (few, many) = match self {
            Self::Few(few) => (few.as_mut_slice(), None),
            Self::Many(many) => (<&mut [(String, V)]>::default(), Some(many)),
        };
        let many = many.into_iter().flatten();
        (few.iter_mut().map(|(k, v)| (k.as_str(), v))).chain(many.map(|(k, v)| (k.as_str(), v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the same operations on `Values` and on an `IndexMap` and compares every answer and
    /// the order of the keys after each step, across the switch from `Few` to `Many`.
    #[test]
    fn behaves_as_an_index_map_below_and_above_the_switch() {
        let mut ours: Values<u32> = Values::with_capacity(2);
        let mut model: IndexMap<String, u32> = IndexMap::new();
        // A fixed pseudo-random sequence of puts and removes over 24 keys of two lengths.
        let mut seed = 0x9e37_79b9_u32;
        for step in 0..2_000 {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let n = seed % 24;
            let key = if n.is_multiple_of(2) {
                format!("k{n}")
            } else {
                format!("key-{n}")
            };
            if seed.is_multiple_of(5) {
                assert_eq!(
                    ours.shift_remove(&key),
                    model.shift_remove(&key),
                    "step {step}"
                );
            } else {
                assert_eq!(
                    ours.insert(key.clone(), step),
                    model.insert(key.clone(), step)
                );
            }
            assert_eq!(ours.index_of(&key), model.get_index_of(&key));
            assert_eq!(ours.get(&key), model.get(&key));
            assert_eq!(ours.len(), model.len());
            let ours_keys: Vec<(&str, &u32)> = ours.iter().collect();
            let model_keys: Vec<(&str, &u32)> = model.iter().map(|(k, v)| (&k[..], v)).collect();
            assert_eq!(ours_keys, model_keys, "step {step}");
        }
        assert!(
            matches!(ours, Values::Many(_)),
            "the test never crossed FEW"
        );
    }

    #[test]
    fn stays_a_vector_up_to_few_keys_and_keeps_order_when_it_grows() {
        let mut values = Values::with_capacity(0);
        for i in 0..FEW {
            values.insert(format!("{i}"), i);
        }
        assert!(matches!(values, Values::Few(_)));
        values.insert("last".to_owned(), 99);
        assert!(matches!(values, Values::Many(_)));
        let keys: Vec<&str> = values.iter().map(|(k, _)| k).collect();
        assert_eq!(keys[..3], ["0", "1", "2"]);
        assert_eq!(keys.last(), Some(&"last"));
        for (_, v) in values.iter_mut() {
            *v += 1;
        }
        assert_eq!(values.get("last"), Some(&100));
        assert_eq!(values.at(0), &1);
    }
}
