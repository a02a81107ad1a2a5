//! Every committed group, by id, in memory: what `getGroup` reads.
//!
//! A profile of `getGroup` put a fifth of the server's time in redb's B-tree lookup at 1,000
//! groups and over a third at 1,000,000 (one more level, more page-cache lookups per call). A
//! hash map answers in the same time at any size. Only the writer changes it, after a commit is
//! durable and before anyone is told of the commit, so it never shows a write that could still
//! fail, and a read sees every write acknowledged before it. It costs about 60 bytes per group
//! plus the group's text.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use crate::group::GroupRef;

/// The groups of one committed state: an open-addressing table (linear probing) of slots that
/// each hold a group whole, so that a lookup touches one cache line and can be prefetched; a
/// std `HashMap` reads its control bytes first and offers no way to prefetch.
pub struct Mirror {
    /// A power of two of them, at most 3/4 full.
    slots: Box<[Slot]>,
    len: usize,
    /// Random per process: clients choose which ids they delete, and so which remain; without
    /// it they could keep ids that all start their search at one slot.
    seed: u64,
    /// 64 minus log2 of the number of slots.
    shift: u32,
}

impl Default for Mirror {
    fn default() -> Self {
        Mirror::with_room(0, RandomState::new().hash_one(0x6d69_7272_6f72_u64))
    }
}

/// A group's name and external id, side by side. Most groups' text fits in the row itself, so
/// that a lookup among a million groups misses the cache once (the map entry) rather than also
/// on heap text: a profile at 1,000,000 groups had those misses at a third of the server's time.
#[derive(Clone)]
enum Row {
    Inline {
        name_len: u8,
        len: u8,
        bytes: [u8; INLINE_BYTES],
    },
    Heap {
        name_len: usize,
        text: Box<str>,
    },
}

/// Fills a slot (8-byte id, tag, two lengths) to one 64-byte cache line.
const INLINE_BYTES: usize = 53;

impl Row {
    fn new(name: &str, external_id: &str) -> Row {
        let len = name.len() + external_id.len();
        if let (Ok(short_name), Ok(short_len)) = (u8::try_from(name.len()), u8::try_from(len))
            && len <= INLINE_BYTES
        {
            let mut bytes = [0; INLINE_BYTES];
            bytes[..name.len()].copy_from_slice(name.as_bytes());
            bytes[name.len()..len].copy_from_slice(external_id.as_bytes());
            return Row::Inline {
                name_len: short_name,
                len: short_len,
                bytes,
            };
        }
        let mut text = String::with_capacity(len);
        text.push_str(name);
        text.push_str(external_id);
        Row::Heap {
            name_len: name.len(),
            text: text.into_boxed_str(),
        }
    }

    /// The name and the external id.
    fn text(&self) -> (&str, &str) {
        match self {
            Row::Inline {
                name_len,
                len,
                bytes,
            } => {
                let text = &bytes[..usize::from(*len)];
                let (name, external_id) = text.split_at(usize::from(*name_len));
                // Both halves were copied from `&str`s, so the checks cannot fail.
                (
                    std::str::from_utf8(name).unwrap_or_default(),
                    std::str::from_utf8(external_id).unwrap_or_default(),
                )
            }
            Row::Heap { name_len, text } => text.split_at(*name_len),
        }
    }
}

/// A change a commit made, applied to the mirror once the commit is durable. Built by the
/// writer while it applies the op, so applying it under the lock only moves it in.
pub struct Change {
    id: u64,
    /// `None`: the group was removed.
    row: Option<Row>,
}

impl Change {
    pub fn put(id: u64, name: &str, external_id: &str) -> Change {
        Change {
            id,
            row: Some(Row::new(name, external_id)),
        }
    }

    pub fn remove(id: u64) -> Change {
        Change { id, row: None }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// The group's name and external id after the change; `None` when it removed the group.
    pub fn text(&self) -> Option<(&str, &str)> {
        self.row.as_ref().map(Row::text)
    }
}

impl Mirror {
    pub fn get(&self, id: u64) -> Option<GroupRef<'_>> {
        let slot = &self.slots[self.find(id)?];
        let (name, external_id) = slot.row.text();
        Some(GroupRef {
            id,
            name,
            external_id,
        })
    }

    /// Starts loading the slot where `id` would be, so that a [`Mirror::get`] soon after finds
    /// it in the cache: a lookup among a million groups otherwise waits for memory.
    pub fn prefetch(&self, id: u64) {
        if self.slots.is_empty() {
            return;
        }
        let slot: *const Slot = &self.slots[self.home(id)];
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint: it never faults and changes nothing that Rust can
        // observe, and SSE, which provides it, is part of every x86_64 processor.
        unsafe {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            _mm_prefetch::<_MM_HINT_T0>(slot.cast());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = slot;
    }

    pub fn put(&mut self, id: u64, name: &str, external_id: &str) {
        self.insert(id, Row::new(name, external_id));
    }

    pub fn apply(&mut self, changes: Vec<Change>) {
        for Change { id, row } in changes {
            match row {
                Some(row) => self.insert(id, row),
                None => self.remove(id),
            }
        }
    }

    /// A copy with room for `more` groups, when this one has not.
    pub fn grown_for(&self, more: usize) -> Option<Mirror> {
        let needed = self.len + more;
        if needed <= self.capacity() {
            return None;
        }
        let mut grown = Mirror::with_room(needed.max(self.capacity() * 2), self.seed);
        for slot in self.slots.iter().filter(|s| s.id != EMPTY) {
            grown.insert(slot.id, slot.row.clone());
        }
        Some(grown)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Every group, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = GroupRef<'_>> {
        self.slots.iter().filter(|s| s.id != EMPTY).map(|slot| {
            let (name, external_id) = slot.row.text();
            GroupRef {
                id: slot.id,
                name,
                external_id,
            }
        })
    }

    pub fn reserve(&mut self, additional: usize) {
        if let Some(grown) = self.grown_for(additional) {
            *self = grown;
        }
    }

    /// An empty mirror with room for `groups` groups.
    fn with_room(groups: usize, seed: u64) -> Mirror {
        // At most 3/4 full, and a power of two so that a slot index is a shift away.
        let slots = (groups.saturating_mul(4) / 3 + 1)
            .next_power_of_two()
            .max(8);
        Mirror {
            slots: vec![Slot::empty(); slots].into_boxed_slice(),
            len: 0,
            seed,
            shift: 64 - slots.trailing_zeros(),
        }
    }

    /// Groups it holds before it must grow.
    fn capacity(&self) -> usize {
        self.slots.len() / 4 * 3
    }

    /// Where the search for `id` starts: Fibonacci hashing of the seeded id (the top bits of
    /// the product spread ids that differ anywhere).
    fn home(&self, id: u64) -> usize {
        ((id ^ self.seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    fn next(&self, i: usize) -> usize {
        (i + 1) & (self.slots.len() - 1)
    }

    /// The slot holding `id`. The table is never full, so the probe ends at an empty slot.
    fn find(&self, id: u64) -> Option<usize> {
        if self.slots.is_empty() || id == EMPTY {
            return None;
        }
        let mut i = self.home(id);
        loop {
            match self.slots[i].id {
                found if found == id => return Some(i),
                EMPTY => return None,
                _ => i = self.next(i),
            }
        }
    }

    fn insert(&mut self, id: u64, row: Row) {
        if id == EMPTY {
            return;
        }
        if self.len + 1 > self.capacity() {
            self.reserve(1);
        }
        let mut i = self.home(id);
        loop {
            let slot = &mut self.slots[i];
            if slot.id == id {
                slot.row = row;
                return;
            }
            if slot.id == EMPTY {
                *slot = Slot { id, row };
                self.len += 1;
                return;
            }
            i = self.next(i);
        }
    }

    /// Linear probing's deletion by backward shift: later members of the probe run move back
    /// into the hole when that is still on their way from their home slot, so no tombstones.
    fn remove(&mut self, id: u64) {
        let Some(mut hole) = self.find(id) else {
            return;
        };
        let mask = self.slots.len() - 1;
        let mut i = self.next(hole);
        while self.slots[i].id != EMPTY {
            let home = self.home(self.slots[i].id);
            if (i.wrapping_sub(home) & mask) >= (i.wrapping_sub(hole) & mask) {
                self.slots.swap(hole, i);
                hole = i;
            }
            i = self.next(i);
        }
        self.slots[hole] = Slot::empty();
        self.len -= 1;
    }
}

/// Ids start at 1, so 0 marks an empty slot.
const EMPTY: u64 = 0;

/// One group: its id and its text in one 64-byte cache line, aligned to the line.
#[derive(Clone)]
#[repr(align(64))]
struct Slot {
    id: u64,
    row: Row,
}

impl Slot {
    fn empty() -> Slot {
        Slot {
            id: EMPTY,
            row: Row::new("", ""),
        }
    }
}

/// Hashes ids with one seeded multiply, folded: a fraction of SipHash's cost. The seed is
/// random per process: clients choose which ids they delete, and so which ids remain, and
/// without it they could pick ids that all land in one bucket chain.
#[derive(Clone)]
pub struct IdHashing {
    seed: u64,
}

impl Default for IdHashing {
    fn default() -> Self {
        IdHashing {
            seed: RandomState::new().hash_one(0x6772_6f75_7064_u64),
        }
    }
}

impl BuildHasher for IdHashing {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher(self.seed)
    }
}

pub struct IdHasher(u64);

impl IdHasher {
    fn mix(&mut self, word: u64) {
        let product = u128::from(self.0 ^ word) * 0x9E37_79B9_7F4A_7C15_u128;
        // Both halves, so that the low bits (the bucket) depend on every bit of the id.
        self.0 = (product as u64) ^ ((product >> 64) as u64);
    }
}

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.mix(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_one_residue_class_spread_over_the_buckets() {
        let hashing = IdHashing::default();
        let buckets: std::collections::HashSet<u64> = (1..=1024_u64)
            .map(|k| hashing.hash_one(k << 20) & 0x3ff)
            .collect();
        assert!(
            buckets.len() > 512,
            "{} of 1024 buckets used",
            buckets.len()
        );
    }

    #[test]
    fn a_slot_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Slot>(), 64);
        assert_eq!(std::mem::align_of::<Slot>(), 64);
    }

    proptest::proptest! {
        /// Whatever is put and removed, in any order, the mirror answers as a `HashMap` would,
        /// through growth and backward-shift deletions.
        #[test]
        fn behaves_as_a_map(ops in proptest::collection::vec((0u64..64, proptest::bool::ANY), 0..400)) {
            let mut mirror = Mirror::default();
            let mut model = std::collections::HashMap::new();
            for (step, (id, put)) in ops.into_iter().enumerate() {
                if put {
                    let name = format!("g{step}");
                    mirror.put(id, &name, "");
                    if id != EMPTY {
                        model.insert(id, name);
                    }
                } else {
                    mirror.apply(vec![Change::remove(id)]);
                    model.remove(&id);
                }
                proptest::prop_assert_eq!(mirror.len(), model.len());
            }
            let listed: std::collections::HashMap<u64, String> =
                mirror.iter().map(|g| (g.id, g.name.to_owned())).collect();
            proptest::prop_assert_eq!(&listed, &model);
            for id in 0..64 {
                proptest::prop_assert_eq!(mirror.get(id).map(|g| g.name), model.get(&id).map(String::as_str));
            }
        }
    }

    #[test]
    fn long_text_is_kept_whole() {
        let mut mirror = Mirror::default();
        let (name, external_id) = ("n".repeat(100), "é".repeat(255));
        mirror.put(7, &name, &external_id);
        mirror.put(8, "ab", &"c".repeat(INLINE_BYTES - 2));
        let seven = mirror.get(7).map(|g| (g.name, g.external_id));
        assert_eq!(seven, Some((name.as_str(), external_id.as_str())));
        let eight = mirror.get(8).map(|g| (g.name.len(), g.external_id.len()));
        assert_eq!(eight, Some((2, INLINE_BYTES - 2)));
    }

    #[test]
    fn holds_the_last_put_and_forgets_removed_groups() {
        let mut mirror = Mirror::default();
        mirror.apply(vec![
            Change::put(1, "Ops", "x1"),
            Change::put(2, "Dev", ""),
            Change::put(1, "Opérations", "x1"),
            Change::remove(2),
        ]);
        let one = mirror.get(1).map(GroupRef::to_owned);
        assert_eq!(
            one.map(|g| (g.name, g.external_id)),
            Some(("Opérations".into(), "x1".into()))
        );
        assert!(mirror.get(2).is_none());
        assert_eq!(mirror.len(), 1);
    }

    #[test]
    fn a_grown_copy_holds_the_same_groups_and_room_for_more() {
        let mut mirror = Mirror::default();
        for id in 1..=100 {
            mirror.put(id, &format!("g{id}"), &"x".repeat(id as usize));
        }
        let capacity = mirror.capacity();
        assert!(mirror.grown_for(capacity - 100).is_none());
        let grown = mirror.grown_for(capacity).unwrap();
        assert!(grown.capacity() >= 100 + capacity);
        for id in 1..=101 {
            assert_eq!(grown.get(id), mirror.get(id));
        }
    }
}
