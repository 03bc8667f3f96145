//! Reassembly of a name-value stream whose pairs may be split across records.

use super::params::Params;
use crate::error::{Error, LimitExceeded, Malformed};

/// Collects a `PARAMS` stream (or any name-value block) piece by piece, under a byte cap.
///
/// Pieces may split a pair anywhere, even inside a length prefix. A pair whose declared
/// length would take the block beyond the cap is refused as soon as its length prefixes are
/// complete, before its bytes arrive and before anything is allocated for them.
///
/// ```
/// use fcgi_core::params::ParamsReader;
/// let mut r = ParamsReader::new(1024);
/// r.push(&[4, 3, b'H', b'O'])?; // a pair split mid-name
/// r.push(&[b'S', b'T', b'a', b'.', b'b'])?;
/// let params = r.finish()?;
/// assert_eq!(params.get(b"HOST"), Some(&b"a.b"[..]));
/// # Ok::<(), fcgi_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ParamsReader {
    params: Params,
    parsed: usize,
    limit: usize,
}

impl ParamsReader {
    /// A reader that refuses blocks larger than `limit` wire bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            params: Params::new(),
            parsed: 0,
            limit,
        }
    }

    /// Pre-sizes the buffers for a block of about `bytes` (capped by the limit), so that a
    /// typical request costs one allocation per buffer.
    pub fn reserve_hint(&mut self, bytes: usize) {
        let bytes = bytes.min(self.limit);
        self.params.reserve(bytes, bytes / 24 + 4);
    }

    /// Adds the next piece of the block.
    pub fn push(&mut self, piece: &[u8]) -> Result<(), Error> {
        let limit_error = Error::Limit(LimitExceeded::Params { limit: self.limit });
        if self.params.wire_len().saturating_add(piece.len()) > self.limit {
            return Err(limit_error);
        }
        self.params.extend_wire(piece);
        let (parsed, pending_end) = self.params.index_from(self.parsed);
        self.parsed = parsed;
        match pending_end {
            Some(end) if end > self.limit => Err(limit_error),
            _ => Ok(()),
        }
    }

    /// Wire bytes received so far.
    pub fn len(&self) -> usize {
        self.params.wire_len()
    }

    /// True when nothing was received.
    pub fn is_empty(&self) -> bool {
        self.params.wire_len() == 0
    }

    /// Ends the block: every byte must belong to a complete pair.
    pub fn finish(self) -> Result<Params, Error> {
        if self.parsed != self.params.wire_len() {
            return Err(Malformed::TruncatedPair.into());
        }
        Ok(self.params)
    }
}
