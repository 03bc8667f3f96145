//! The set of active requests of one connection, kept sorted by id.
//!
//! Both sides use it: the server to find the state of an incoming record's id, the client to
//! hand out the lowest free id. A sorted `Vec` keeps lookups `O(log n)` and the whole table
//! in one allocation; connections have at most a few hundred concurrent requests.

use alloc::vec::Vec;

/// Something that lives in the table under a request id.
pub(crate) trait HasId {
    fn id(&self) -> u16;
}

#[derive(Debug)]
pub(crate) struct RequestTable<T> {
    entries: Vec<T>,
}

impl<T> Default for RequestTable<T> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
}

impl<T: HasId> RequestTable<T> {
    fn position(&self, id: u16) -> Result<usize, usize> {
        self.entries.binary_search_by_key(&id, HasId::id)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn contains(&self, id: u16) -> bool {
        self.position(id).is_ok()
    }

    pub(crate) fn get(&self, id: u16) -> Option<&T> {
        self.position(id).ok().map(|i| &self.entries[i])
    }

    pub(crate) fn get_mut(&mut self, id: u16) -> Option<&mut T> {
        self.position(id).ok().map(|i| &mut self.entries[i])
    }

    /// Inserts an entry whose id is not present (callers check first).
    pub(crate) fn insert(&mut self, entry: T) {
        match self.position(entry.id()) {
            Ok(i) => self.entries[i] = entry,
            Err(i) => self.entries.insert(i, entry),
        }
    }

    pub(crate) fn remove(&mut self, id: u16) -> Option<T> {
        self.position(id).ok().map(|i| self.entries.remove(i))
    }

    /// The lowest id in `1..=max` not in the table.
    pub(crate) fn lowest_free_id(&self, max: u16) -> Option<u16> {
        let mut candidate: u16 = 1;
        for e in &self.entries {
            if e.id() > candidate {
                break;
            }
            if e.id() == candidate {
                candidate = candidate.checked_add(1)?;
            }
        }
        (candidate <= max).then_some(candidate)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.entries.iter()
    }

    pub(crate) fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.entries.drain(..)
    }
}
