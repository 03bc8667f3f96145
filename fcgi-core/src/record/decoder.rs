//! Streaming record decoding: input may arrive in chunks of any size, down to one byte.

use bytes::{Buf, Bytes, BytesMut};

use super::header::{HEADER_LEN, Header};

/// One step of decoding: a header, a piece of its content, or the end of its content.
///
/// Content pieces are split off the input buffer without copying (`BytesMut::split_to` +
/// `freeze`), so a stream payload reaches the application in the very allocation it was
/// read into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fragment {
    /// A complete header was read.
    Header(Header),
    /// A non-empty piece of the current record's content.
    Content(Bytes),
    /// The current record's content is complete (its padding is skipped silently).
    End(Header),
}

/// A [`Fragment`] whose content has not been taken out of the input yet (see
/// [`Decoder::decode_raw`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RawFragment {
    Header(Header),
    /// The next this-many bytes of the input are content of the current record.
    Content(usize),
    End(Header),
}

#[derive(Debug, Clone, Copy)]
enum State {
    Header,
    Content { header: Header, remaining: usize },
    Padding { remaining: usize },
}

/// Turns a byte stream into [`Fragment`]s. Holds at most 8 bytes of its own (a partial
/// header); everything else is handed out or skipped as soon as it arrives.
///
/// ```
/// use bytes::BytesMut;
/// use fcgi_core::record::{Decoder, Fragment, RecordType};
/// let mut d = Decoder::new();
/// // STDIN record, id 1, 3 content bytes, 5 padding bytes, fed in two pieces.
/// let mut input = BytesMut::from(&[1u8, 5, 0, 1, 0, 3, 5][..]);
/// assert_eq!(d.decode(&mut input), None);
/// input.extend_from_slice(&[0, b'a', b'b', b'c', 0, 0, 0, 0, 0]);
/// let Some(Fragment::Header(h)) = d.decode(&mut input) else { panic!() };
/// assert_eq!(h.record_type, RecordType::Stdin);
/// assert_eq!(d.decode(&mut input), Some(Fragment::Content("abc".into())));
/// assert!(matches!(d.decode(&mut input), Some(Fragment::End(_))));
/// assert_eq!(d.decode(&mut input), None);
/// assert!(d.is_at_boundary() && input.is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct Decoder {
    state: State,
    header: [u8; HEADER_LEN],
    header_len: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder at a record boundary.
    pub const fn new() -> Self {
        Self {
            state: State::Header,
            header: [0; HEADER_LEN],
            header_len: 0,
        }
    }

    /// True when no partial record has been consumed: a clean place for the stream to end.
    pub fn is_at_boundary(&self) -> bool {
        matches!(self.state, State::Header) && self.header_len == 0
    }

    /// Decodes the next fragment from the front of `input`, consuming what it uses.
    /// Returns `None` when `input` holds nothing more to decode yet.
    #[inline]
    pub fn decode(&mut self, input: &mut BytesMut) -> Option<Fragment> {
        Some(match self.decode_raw(input)? {
            RawFragment::Header(header) => Fragment::Header(header),
            RawFragment::Content(len) => Fragment::Content(input.split_to(len).freeze()),
            RawFragment::End(header) => Fragment::End(header),
        })
    }

    /// [`decode`](Self::decode) without taking content out of `input`: a content piece is
    /// reported as its length, and the caller must remove exactly that many bytes from the
    /// front of `input` (by splitting or advancing) before the next call. This lets the
    /// connections read small and copied content in place instead of sharing the buffer.
    #[inline(always)]
    pub(crate) fn decode_raw(&mut self, input: &mut BytesMut) -> Option<RawFragment> {
        loop {
            match self.state {
                State::Header => {
                    // Fast path: a whole header at the front of the input, none held back.
                    if self.header_len == 0
                        && let Some(bytes) = input.first_chunk::<HEADER_LEN>()
                    {
                        let header = Header::from_array(bytes);
                        input.advance(HEADER_LEN);
                        self.state = State::Content {
                            header,
                            remaining: usize::from(header.content_length),
                        };
                        return Some(RawFragment::Header(header));
                    }
                    let take = (HEADER_LEN - self.header_len).min(input.len());
                    self.header[self.header_len..self.header_len + take]
                        .copy_from_slice(&input[..take]);
                    input.advance(take);
                    self.header_len += take;
                    if self.header_len < HEADER_LEN {
                        return None;
                    }
                    self.header_len = 0;
                    let header = Header::from_array(&self.header);
                    self.state = State::Content {
                        header,
                        remaining: usize::from(header.content_length),
                    };
                    return Some(RawFragment::Header(header));
                }
                State::Content { header, remaining } => {
                    if remaining == 0 {
                        self.state = State::Padding {
                            remaining: usize::from(header.padding_length),
                        };
                        return Some(RawFragment::End(header));
                    }
                    if input.is_empty() {
                        return None;
                    }
                    let take = remaining.min(input.len());
                    self.state = State::Content {
                        header,
                        remaining: remaining - take,
                    };
                    return Some(RawFragment::Content(take));
                }
                State::Padding { remaining } => {
                    let take = remaining.min(input.len());
                    if take > 0 {
                        input.advance(take);
                    }
                    if take < remaining {
                        self.state = State::Padding {
                            remaining: remaining - take,
                        };
                        return None;
                    }
                    self.state = State::Header;
                }
            }
        }
    }
}

/// A whole record: header and complete content (padding dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The record header as received.
    pub header: Header,
    /// The content bytes.
    pub content: Bytes,
}

/// Reassembles whole [`Record`]s from a byte stream, for tools, tests and fuzzing. Content
/// that arrives in one piece is not copied; content split across inputs is joined (at most
/// 65535 bytes). The connections do not use this: they stream content without waiting for
/// the end of a record.
///
/// ```
/// use bytes::BytesMut;
/// use fcgi_core::record::{RecordReader, RecordType};
/// let mut r = RecordReader::new();
/// let mut input = BytesMut::from(&[1u8, 2, 0, 7, 0, 0, 0, 0][..]);
/// let rec = r.read(&mut input).unwrap();
/// assert_eq!((rec.header.record_type, rec.header.request_id), (RecordType::AbortRequest, 7));
/// ```
#[derive(Debug, Clone, Default)]
pub struct RecordReader {
    decoder: Decoder,
    first: Option<Bytes>,
    joined: BytesMut,
}

impl RecordReader {
    /// A reader at a record boundary.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when no partial record is held.
    pub fn is_at_boundary(&self) -> bool {
        self.decoder.is_at_boundary()
    }

    /// The next complete record at the front of `input`, if there is one.
    pub fn read(&mut self, input: &mut BytesMut) -> Option<Record> {
        while let Some(fragment) = self.decoder.decode(input) {
            match fragment {
                Fragment::Header(_) => {}
                Fragment::Content(piece) => match self.first.take() {
                    None if self.joined.is_empty() => self.first = Some(piece),
                    None => self.joined.extend_from_slice(&piece),
                    Some(first) => {
                        self.joined.extend_from_slice(&first);
                        self.joined.extend_from_slice(&piece);
                    }
                },
                Fragment::End(header) => {
                    let content = match self.first.take() {
                        Some(b) => b,
                        None => self.joined.split().freeze(),
                    };
                    return Some(Record { header, content });
                }
            }
        }
        None
    }
}
