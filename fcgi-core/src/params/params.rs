//! Compact storage of a set of name-value pairs.

use alloc::vec::Vec;

use super::pair::{PairLayout, encoded_pair_len, length_prefix, parse_layout};
use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// Offset of the name in `wire`.
    name: usize,
    name_len: usize,
    value_len: usize,
}

/// An ordered list of name-value pairs (the `PARAMS` of a request, or a `GET_VALUES`
/// answer), held as one buffer in wire format plus one index: two allocations however many
/// pairs there are. Duplicates are kept; [`get`](Self::get) returns the last occurrence
/// (what php-fpm does with its hash table), [`get_all`](Self::get_all) every one.
///
/// Names and values are bytes: CGI variables are not guaranteed to be UTF-8.
///
/// ```
/// use fcgi_core::Params;
/// let mut p = Params::new();
/// p.push(b"REQUEST_METHOD", b"GET")?;
/// p.push(b"HTTP_COOKIE", b"a=1")?;
/// p.push(b"HTTP_COOKIE", b"b=2")?;
/// assert_eq!(p.get(b"REQUEST_METHOD"), Some(&b"GET"[..]));
/// assert_eq!(p.get_str("HTTP_COOKIE"), Some("b=2"));
/// assert_eq!(p.get_all(b"HTTP_COOKIE").count(), 2);
/// assert_eq!(p.iter().next(), Some((&b"REQUEST_METHOD"[..], &b"GET"[..])));
/// # Ok::<(), fcgi_core::Error>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Params {
    wire: Vec<u8>,
    entries: Vec<Entry>,
}

impl core::fmt::Debug for Params {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut m = f.debug_map();
        for (n, v) in self.iter() {
            m.entry(
                &alloc::string::String::from_utf8_lossy(n),
                &alloc::string::String::from_utf8_lossy(v),
            );
        }
        m.finish()
    }
}

impl Params {
    /// An empty list.
    pub const fn new() -> Self {
        Self {
            wire: Vec::new(),
            entries: Vec::new(),
        }
    }

    /// An empty list with room for `bytes` of wire format and `pairs` pairs.
    pub fn with_capacity(bytes: usize, pairs: usize) -> Self {
        Self {
            wire: Vec::with_capacity(bytes),
            entries: Vec::with_capacity(pairs),
        }
    }

    /// Appends a pair. Fails, adding nothing, when a component is 2^31 bytes or longer.
    // Inlined across crates: a gateway pushes a few dozen pairs per request, most with a
    // constant name, whose copy then needs no call.
    #[inline]
    pub fn push(&mut self, name: &[u8], value: &[u8]) -> Result<(), Error> {
        let total = encoded_pair_len(name, value)?;
        self.wire.reserve(total);
        if name.len() < 128 && value.len() < 128 {
            // The usual pair (nearly every CGI variable): one byte per length, one store.
            self.wire
                .extend_from_slice(&[name.len() as u8, value.len() as u8]);
        } else {
            for len in [name.len(), value.len()] {
                let (prefix, used) = length_prefix(len);
                self.wire.extend_from_slice(&prefix[..used]);
            }
        }
        let name_at = self.wire.len();
        self.wire.extend_from_slice(name);
        self.wire.extend_from_slice(value);
        self.entries.push(Entry {
            name: name_at,
            name_len: name.len(),
            value_len: value.len(),
        });
        Ok(())
    }

    /// Number of pairs (duplicates counted).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn pair(&self, e: &Entry) -> (&[u8], &[u8]) {
        let value = e.name + e.name_len;
        (
            &self.wire[e.name..value],
            &self.wire[value..value + e.value_len],
        )
    }

    /// The pairs in the order they were received or pushed.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&[u8], &[u8])> + ExactSizeIterator {
        self.entries.iter().map(|e| self.pair(e))
    }

    /// The value of the last pair named `name`.
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        // Lengths first: most names differ in length, and the slices are only cut for those
        // that do not.
        self.entries
            .iter()
            .rev()
            .filter(|e| e.name_len == name.len())
            .map(|e| self.pair(e))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    /// The value of the last pair named `name`, if it is valid UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        core::str::from_utf8(self.get(name.as_bytes())?).ok()
    }

    /// Every value of pairs named `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a [u8]) -> impl DoubleEndedIterator<Item = &'a [u8]> + 'a {
        self.entries
            .iter()
            .filter(move |e| e.name_len == name.len())
            .map(|e| self.pair(e))
            .filter(move |(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    /// The pairs in wire format, ready to be sent as `PARAMS` content.
    pub fn wire_bytes(&self) -> &[u8] {
        &self.wire
    }

    /// The wire-format bytes of each pair, in order (for writers that must not split a
    /// pair across records).
    pub fn wire_pairs(&self) -> impl Iterator<Item = &[u8]> {
        self.entries.iter().enumerate().map(|(i, _)| {
            let start = if i == 0 {
                0
            } else {
                let p = &self.entries[i - 1];
                p.name + p.name_len + p.value_len
            };
            let e = &self.entries[i];
            &self.wire[start..e.name + e.name_len + e.value_len]
        })
    }

    /// The wire bytes of the indexed pairs (all of them, for a complete `Params`).
    pub(crate) fn indexed_wire(&self) -> &[u8] {
        let end = self
            .entries
            .last()
            .map_or(0, |e| e.name + e.name_len + e.value_len);
        &self.wire[..end]
    }

    /// Appends raw wire bytes (not yet indexed; see `index_from`).
    pub(crate) fn extend_wire(&mut self, bytes: &[u8]) {
        self.wire.extend_from_slice(bytes);
    }

    pub(crate) fn wire_len(&self) -> usize {
        self.wire.len()
    }

    /// Parses pairs starting at `from`; returns where the next unparsed pair starts and,
    /// if the pair there has complete length prefixes, its declared end.
    pub(crate) fn index_from(&mut self, mut from: usize) -> (usize, Option<usize>) {
        let wire = self.wire.as_slice();
        loop {
            let rest = &wire[from..];
            let (layout, end) = match *rest {
                // Fast path: both lengths below 128, one byte each (nearly every CGI
                // variable). `from` is at most `wire.len()`, so plain addition cannot overflow.
                [n, v, ..] if (n | v) & 0x80 == 0 => {
                    let layout = PairLayout {
                        name_at: 2,
                        name_len: usize::from(n),
                        value_len: usize::from(v),
                    };
                    (layout, from + 2 + layout.name_len + layout.value_len)
                }
                _ => match parse_layout(rest) {
                    Some(layout) => (layout, from.saturating_add(layout.total())),
                    None => return (from, None),
                },
            };
            if end > wire.len() {
                return (from, Some(end));
            }
            self.entries.push(Entry {
                name: from + layout.name_at,
                name_len: layout.name_len,
                value_len: layout.value_len,
            });
            from = end;
        }
    }

    pub(crate) fn reserve(&mut self, bytes: usize, pairs: usize) {
        // The usual call is on a new, empty list: allocating directly is cheaper than the
        // amortised-growth path of `reserve`.
        if self.wire.capacity() == 0 {
            self.wire = Vec::with_capacity(bytes);
        } else {
            self.wire.reserve(bytes);
        }
        if self.entries.capacity() == 0 {
            self.entries = Vec::with_capacity(pairs);
        } else {
            self.entries.reserve(pairs);
        }
    }
}
