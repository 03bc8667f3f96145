//! The name-value pair wire format (spec section 3.4): each length is one byte when below
//! 128, otherwise four bytes big-endian with the high bit set.

use bytes::BufMut;

use crate::error::{ApiError, Error, Malformed};

/// Largest name or value length the 4-byte form can express (2^31 - 1).
pub const MAX_PAIR_COMPONENT_LEN: usize = 0x7FFF_FFFF;

/// Bytes the length prefix of a component of `len` bytes takes (1 or 4).
pub const fn length_prefix_len(len: usize) -> usize {
    if len < 128 { 1 } else { 4 }
}

/// Wire size of a pair, or an error when a component cannot be encoded.
#[inline]
pub fn encoded_pair_len(name: &[u8], value: &[u8]) -> Result<usize, Error> {
    for part in [name, value] {
        if part.len() > MAX_PAIR_COMPONENT_LEN {
            return Err(ApiError::PairTooLong(part.len()).into());
        }
    }
    Ok(length_prefix_len(name.len()) + length_prefix_len(value.len()) + name.len() + value.len())
}

/// The length prefix of a component of `len` bytes (at most
/// [`MAX_PAIR_COMPONENT_LEN`]): the buffer and how many of its bytes are used.
#[inline]
pub(crate) fn length_prefix(len: usize) -> ([u8; 4], usize) {
    if len < 128 {
        ([len as u8, 0, 0, 0], 1)
    } else {
        ((len as u32 | 0x8000_0000).to_be_bytes(), 4)
    }
}

fn put_length(out: &mut impl BufMut, len: usize) {
    let (prefix, used) = length_prefix(len);
    out.put_slice(&prefix[..used]);
}

/// Appends one encoded pair to `out`. A component of 2^31 bytes or more is refused with
/// [`ApiError::PairTooLong`] before anything is written.
///
/// ```
/// let mut out = Vec::new();
/// fcgi_core::params::encode_pair(&mut out, b"A", &[b'x'; 128]).unwrap();
/// assert_eq!(&out[..6], &[1, 0x80, 0, 0, 128, b'A']);
/// ```
pub fn encode_pair(out: &mut impl BufMut, name: &[u8], value: &[u8]) -> Result<(), Error> {
    encoded_pair_len(name, value)?;
    put_length(out, name.len());
    put_length(out, value.len());
    out.put_slice(name);
    out.put_slice(value);
    Ok(())
}

/// Decodes one length at the front of `buf`: `Ok(None)` when more bytes are needed,
/// otherwise `(length, prefix bytes used)`.
pub(crate) fn parse_length(buf: &[u8]) -> Option<(usize, usize)> {
    let first = *buf.first()?;
    if first & 0x80 == 0 {
        return Some((usize::from(first), 1));
    }
    let b: [u8; 4] = buf.get(..4)?.try_into().ok()?;
    Some(((u32::from_be_bytes(b) & 0x7FFF_FFFF) as usize, 4))
}

/// The layout of one pair found at the front of a buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PairLayout {
    /// Offset of the name from the start of the pair.
    pub(crate) name_at: usize,
    pub(crate) name_len: usize,
    pub(crate) value_len: usize,
}

impl PairLayout {
    /// Total wire size of the pair (saturating: a hostile length cannot overflow).
    pub(crate) fn total(&self) -> usize {
        self.name_at
            .saturating_add(self.name_len)
            .saturating_add(self.value_len)
    }
}

/// Reads both length prefixes at the front of `buf`; `None` when they are incomplete.
pub(crate) fn parse_layout(buf: &[u8]) -> Option<PairLayout> {
    let (name_len, a) = parse_length(buf)?;
    let (value_len, b) = parse_length(&buf[a..])?;
    Some(PairLayout {
        name_at: a + b,
        name_len,
        value_len,
    })
}

/// Decodes a complete name-value block (e.g. one `GET_VALUES` record) into pairs,
/// calling `f` for each; a block that ends inside a pair is [`Malformed::TruncatedPair`].
pub fn decode_pairs<'a>(
    mut block: &'a [u8],
    mut f: impl FnMut(&'a [u8], &'a [u8]),
) -> Result<(), Error> {
    while !block.is_empty() {
        let layout = parse_layout(block).ok_or(Malformed::TruncatedPair)?;
        if layout.total() > block.len() {
            return Err(Malformed::TruncatedPair.into());
        }
        let name_end = layout.name_at + layout.name_len;
        f(
            &block[layout.name_at..name_end],
            &block[name_end..layout.total()],
        );
        block = &block[layout.total()..];
    }
    Ok(())
}
