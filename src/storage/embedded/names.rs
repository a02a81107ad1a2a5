//! Every group's id by name: the writer's index for unique names.
//!
//! Names are hashed once, with a per-process random key (clients choose names, so they must not
//! be able to aim them at one bucket), and the table is keyed by that hash. When the table grows
//! it moves the stored hashes instead of hashing every name again: a profile of batched creates
//! had re-hashing names with SipHash at a seventh of the writer's time while the index grew.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use super::mirror::{IdHashing, Mirror};

#[derive(Default)]
pub struct NameIndex {
    keys: RandomState,
    by_hash: HashMap<u64, Names, IdHashing>,
}

/// The names that share one hash: nearly always exactly one.
enum Names {
    One(Box<str>, u64),
    Several(Vec<(Box<str>, u64)>),
}

impl NameIndex {
    #[cfg(test)]
    fn get(&self, name: &str) -> Option<u64> {
        match self.by_hash.get(&self.keys.hash_one(name))? {
            Names::One(held, id) => (**held == *name).then_some(*id),
            Names::Several(all) => all.iter().find(|(n, _)| **n == *name).map(|(_, id)| *id),
        }
    }

    /// Records `name` as group `id`'s, replacing any id it had.
    pub fn insert(&mut self, name: &str, id: u64) {
        self.put(name, id, true);
    }

    /// Records `name` as group `id`'s unless it is taken; whether it was free.
    pub fn insert_new(&mut self, name: &str, id: u64) -> bool {
        self.put(name, id, false)
    }

    /// One hash of `name` for both the look-up and the insert.
    fn put(&mut self, name: &str, id: u64, replace: bool) -> bool {
        let hash = self.keys.hash_one(name);
        let Some(names) = self.by_hash.get_mut(&hash) else {
            self.by_hash.insert(hash, Names::One(name.into(), id));
            return true;
        };
        if let Names::One(held, held_id) = names
            && **held == *name
        {
            if replace {
                *held_id = id;
            }
            return replace;
        }
        if let Names::One(held, held_id) = names {
            let first = (std::mem::take(held), *held_id);
            *names = Names::Several(vec![first]);
        }
        let Names::Several(all) = names else {
            return false;
        };
        match all.iter_mut().find(|(n, _)| **n == *name) {
            Some((_, held_id)) if replace => *held_id = id,
            Some(_) => return false,
            None => all.push((name.into(), id)),
        }
        true
    }

    pub fn remove(&mut self, name: &str) {
        let hash = self.keys.hash_one(name);
        let gone = match self.by_hash.get_mut(&hash) {
            None => return,
            Some(Names::One(held, _)) => **held == *name,
            Some(Names::Several(all)) => {
                all.retain(|(n, _)| **n != *name);
                all.is_empty()
            }
        };
        if gone {
            self.by_hash.remove(&hash);
        }
    }

    pub fn reserve(&mut self, additional: usize) {
        self.by_hash.reserve(additional);
    }

    /// The names of the groups in `mirror`.
    pub fn of(mirror: &Mirror) -> NameIndex {
        let mut index = NameIndex::default();
        index.reserve(mirror.len());
        for group in mirror.iter() {
            index.insert(group.name, group.id);
        }
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_exact_and_unique() {
        let mut index = NameIndex::default();
        index.insert("Ops", 1);
        index.insert("ops", 2);
        index.insert("Ops ", 3);
        assert_eq!(
            ["Ops", "ops", "Ops ", "OPS"].map(|n| index.get(n)),
            [Some(1), Some(2), Some(3), None]
        );
        assert!(!index.insert_new("Ops", 9));
        assert!(index.insert_new("OPS", 9));
        index.remove("ops");
        index.insert("Ops", 4);
        assert_eq!(["Ops", "ops"].map(|n| index.get(n)), [Some(4), None]);
    }

    /// Names whose hashes collide are told apart by the names themselves. A collision of the
    /// real 64-bit hash cannot be produced on purpose, so this builds one by hand.
    #[test]
    fn colliding_hashes_keep_every_name() {
        let mut index = NameIndex::default();
        let hash = index.keys.hash_one("a");
        index
            .by_hash
            .insert(hash, Names::Several(vec![("b".into(), 2), ("a".into(), 1)]));
        assert_eq!(index.get("a"), Some(1));
        index.insert("a", 5);
        assert_eq!(index.get("a"), Some(5));
        assert!(!index.insert_new("a", 7));
        index.remove("a");
        assert_eq!(index.get("a"), None);
        assert!(index.by_hash.contains_key(&hash));
        index.by_hash.insert(hash, Names::One("c".into(), 3));
        index.insert("a", 6);
        assert_eq!((index.get("a"), index.by_hash.len()), (Some(6), 1));
        let several = |index: &NameIndex| match index.by_hash.get(&hash) {
            Some(Names::Several(all)) => all.iter().map(|(n, _)| n.to_string()).collect(),
            _ => Vec::new(),
        };
        assert_eq!(several(&index), ["c", "a"]);
        index.remove("a");
        assert_eq!(several(&index), ["c"]);
    }
}
