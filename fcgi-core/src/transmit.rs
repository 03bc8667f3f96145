//! The transmit queue: records waiting to be written, as a list of byte chunks — the
//! record *writer*, counterpart of [`RecordReader`](crate::record::RecordReader). It is
//! public API (and follows semver): both connections write through it, and a program that
//! speaks FastCGI records itself — a conformance tool, a fuzzer, a proxy that rewrites
//! records — gets the same framing, padding and coalescing from it. What it queues is
//! exactly what it is given: it checks no protocol rule (that is the connections' job).
//!
//! Headers, padding and small payloads are coalesced into one growing buffer; payloads of
//! a couple of KiB or more handed in as `Bytes` are queued as their own chunk,
//! without copying. A burst of records therefore leaves in one write (or one vectored write
//! over [`Transmit::chunks`]) rather than one syscall per record.

use alloc::collections::VecDeque;
use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::record::{Header, Padding, RecordType};

/// Payloads at least this long are queued by reference instead of being copied (a tuning
/// of this implementation, not part of the API).
pub(crate) const COPY_THRESHOLD: usize = 2048;

const ZEROS: [u8; 8] = [0; 8];

/// Bytes waiting to be written to the peer.
///
/// ```
/// use bytes::Bytes;
/// use fcgi_core::transmit::Transmit;
/// use fcgi_core::record::{Padding, RecordType};
/// let mut t = Transmit::default();
/// t.push_stream(RecordType::Stdout, 1, Bytes::from_static(b"hi"), Padding::Align8);
/// assert_eq!(t.len(), 16); // header + 2 bytes + 6 padding
/// let mut wire = Vec::new();
/// while let Some(chunk) = t.pop() { wire.extend_from_slice(&chunk); }
/// assert_eq!(&wire[..10], &[1, 6, 0, 1, 0, 2, 6, 0, b'h', b'i']);
/// ```
#[derive(Debug, Default)]
pub struct Transmit {
    chunks: VecDeque<Bytes>,
    tail: BytesMut,
    len: usize,
}

impl Transmit {
    /// Total bytes queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The queued bytes in order, as slices for a vectored write. Follow a write of `n`
    /// bytes with [`advance`](Self::advance)`(n)`.
    pub fn chunks(&self) -> impl Iterator<Item = &[u8]> {
        self.chunks
            .iter()
            .map(|b| &b[..])
            .chain(core::iter::once(&self.tail[..]))
            .filter(|s| !s.is_empty())
    }

    /// Drops the first `n` queued bytes (they were written). `n` beyond
    /// [`len`](Self::len) is clamped.
    pub fn advance(&mut self, mut n: usize) {
        n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            match self.chunks.front_mut() {
                Some(front) => {
                    let take = n.min(front.len());
                    front.advance(take);
                    n -= take;
                    if front.is_empty() {
                        self.chunks.pop_front();
                    }
                }
                None => {
                    self.tail.advance(n);
                    n = 0;
                }
            }
        }
    }

    /// Removes and returns the next chunk of queued bytes.
    pub fn pop(&mut self) -> Option<Bytes> {
        let chunk = match self.chunks.pop_front() {
            Some(c) => c,
            None if !self.tail.is_empty() => self.tail.split().freeze(),
            None => return None,
        };
        self.len -= chunk.len();
        Some(chunk)
    }

    /// Queues one record whose content is copied (fixed bodies, name-value blocks).
    pub fn push_record(&mut self, rt: RecordType, id: u16, content: &[u8], padding: Padding) {
        // Every caller passes at most one record's worth (fixed bodies, name-value blocks
        // built under `max_content_len`, a GET_VALUES query checked against 65535).
        debug_assert!(content.len() <= crate::record::MAX_CONTENT_LEN);
        let pad = padding.padding_for(content.len());
        let header = Header::new(rt, id, content.len() as u16, pad);
        self.tail.reserve(8 + content.len() + usize::from(pad));
        header.encode(&mut self.tail);
        self.tail.put_slice(content);
        self.tail.put_slice(&ZEROS[..usize::from(pad)]);
        self.len += 8 + content.len() + usize::from(pad);
    }

    /// Queues `data` as a run of records of type `rt`, each at most the largest content the
    /// padding policy allows. Large pieces are referenced, not copied. Empty `data` queues
    /// nothing (a stream terminator is [`push_record`](Self::push_record) with no content).
    pub fn push_stream(&mut self, rt: RecordType, id: u16, mut data: Bytes, padding: Padding) {
        let max = padding.max_content_len();
        while !data.is_empty() {
            let piece = data.split_to(data.len().min(max));
            let pad = usize::from(padding.padding_for(piece.len()));
            let header = Header::new(rt, id, piece.len() as u16, pad as u8);
            header.encode(&mut self.tail);
            self.len += 8 + piece.len() + pad;
            if piece.len() >= COPY_THRESHOLD {
                if !self.tail.is_empty() {
                    self.chunks.push_back(self.tail.split().freeze());
                }
                self.chunks.push_back(piece);
            } else {
                self.tail.put_slice(&piece);
            }
            self.tail.put_slice(&ZEROS[..pad]);
        }
    }
}
