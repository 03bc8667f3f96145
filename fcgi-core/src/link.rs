//! What both connection sides share: decoding input into records and stream pieces, the
//! event queue with its back-pressure budget, the transmit queue, and fatal-error latching.

use alloc::collections::VecDeque;
use bytes::{Buf, Bytes, BytesMut};

use crate::error::{Error, Malformed};
use crate::limits::{EVENT_COST, Limits};
use crate::record::{Decoder, Fragment, Header, Padding, RawFragment, RecordType, VERSION_1};
use crate::transmit::Transmit;

/// One unit of decoded input, as the connection state machines consume it.
#[derive(Debug)]
pub(crate) enum Input {
    /// A non-empty piece of a stream record (record boundaries carry no meaning).
    Stream { header: Header, data: Bytes },
    /// An empty stream record: the stream's terminator.
    StreamEnd { header: Header },
    /// A whole non-stream record.
    Record {
        header: Header,
        content: RecordContent,
    },
}

impl Input {
    /// The header of the record this input came from.
    pub(crate) fn header(&self) -> Header {
        match self {
            Self::Stream { header, .. }
            | Self::StreamEnd { header }
            | Self::Record { header, .. } => *header,
        }
    }
}

/// Largest record content copied inline rather than shared with the input buffer: the
/// fixed 8-byte bodies (`BEGIN_REQUEST`, `END_REQUEST`, `UNKNOWN_TYPE`). Copying 8 bytes
/// is cheaper than the reference counting of a shared `Bytes`.
const INLINE_CONTENT: usize = 8;

/// The content of a whole non-stream record; reads as a byte slice.
#[derive(Debug)]
pub(crate) enum RecordContent {
    /// Up to [`INLINE_CONTENT`] bytes, copied.
    Inline {
        bytes: [u8; INLINE_CONTENT],
        len: usize,
    },
    /// Longer content: split off the input when it arrived in one piece, else joined.
    Shared(Bytes),
}

impl core::ops::Deref for RecordContent {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            Self::Inline { bytes, len } => &bytes[..*len],
            Self::Shared(b) => b,
        }
    }
}

/// Stream records are passed on piece by piece; everything else, and every record of the
/// management id 0 (which carries no streams), is collected whole (at most 65535 bytes).
fn is_stream(header: &Header) -> bool {
    header.record_type.is_stream() && header.request_id != crate::record::NULL_REQUEST_ID
}

#[derive(Debug)]
pub(crate) struct Link<E> {
    decoder: Decoder,
    /// Header of the record being decoded (content fragments belong to it).
    current: Header,
    /// Content of the current non-stream record when it arrived in one piece.
    whole: Option<RecordContent>,
    /// Content of the current non-stream record when it arrived in several pieces.
    body: BytesMut,
    pub(crate) transmit: Transmit,
    pub(crate) padding: Padding,
    pub(crate) limits: Limits,
    events: VecDeque<(E, usize)>,
    answers_input: bool,
    buffered: usize,
    error: Option<Error>,
}

impl<E> Link<E> {
    /// `answers_input`: whether input can make this side write (the application side answers
    /// `GET_VALUES`, unknown types and refused requests). Only then does a full transmit
    /// queue hold input back: the web-server side never writes because of what it reads,
    /// and holding its input back while its upload waits would deadlock a full-duplex
    /// exchange.
    pub(crate) fn new(limits: Limits, padding: Padding, answers_input: bool) -> Self {
        Self {
            answers_input,
            decoder: Decoder::new(),
            current: Header::new(RecordType::Unknown(0), 0, 0, 0),
            whole: None,
            body: BytesMut::new(),
            transmit: Transmit::default(),
            padding,
            limits,
            events: VecDeque::new(),
            buffered: 0,
            error: None,
        }
    }

    /// True while the connection may consume more input (back-pressure budget not spent).
    pub(crate) fn wants_input(&self) -> bool {
        self.error.is_none()
            && self.buffered < self.limits.max_buffered_input
            && (!self.answers_input || self.transmit.len() < self.limits.max_buffered_output)
    }

    pub(crate) fn check_error(&self) -> Result<(), Error> {
        self.error.map_or(Ok(()), Err)
    }

    /// Latches a fatal error: every later `handle_input` returns it.
    pub(crate) fn fail(&mut self, e: Error) -> Error {
        self.error = Some(e);
        e
    }

    pub(crate) fn is_at_boundary(&self) -> bool {
        // Back-pressure may have stopped decoding right after a stream record's last content
        // byte, or before its empty padding: steps that need no more bytes and yield nothing.
        // Look ahead on a copy so that such a complete record is not taken for a truncated one.
        let mut decoder = self.decoder.clone();
        let mut nothing = BytesMut::new();
        while let Some(fragment) = decoder.decode(&mut nothing) {
            if let Fragment::End(h) = fragment
                && (!is_stream(&h) || h.content_length == 0)
            {
                // A record that would still produce input: not a clean end.
                return false;
            }
        }
        decoder.is_at_boundary()
    }

    /// The next unit of input, or `None` when input is exhausted or back-pressure applies.
    #[inline(always)]
    pub(crate) fn next_input(&mut self, input: &mut BytesMut) -> Result<Option<Input>, Error> {
        // Nothing below changes the back-pressure budget (only the caller's handling of what
        // is returned does), so one check per call is enough.
        if !self.wants_input() {
            return Ok(None);
        }
        loop {
            let Some(fragment) = self.decoder.decode_raw(input) else {
                return Ok(None);
            };
            match fragment {
                RawFragment::Header(h) => {
                    if h.version != VERSION_1 {
                        return Err(Malformed::UnsupportedVersion(h.version).into());
                    }
                    self.current = h;
                }
                RawFragment::Content(len) => {
                    let header = self.current;
                    if is_stream(&header) {
                        let data = input.split_to(len).freeze();
                        return Ok(Some(Input::Stream { header, data }));
                    }
                    if self.body.is_empty() && len == usize::from(header.content_length) {
                        // The whole content in one piece (the usual case): copy a small one
                        // inline, share a larger one with the input; no joining either way.
                        self.whole = Some(if len <= INLINE_CONTENT {
                            let mut bytes = [0; INLINE_CONTENT];
                            bytes[..len].copy_from_slice(&input[..len]);
                            input.advance(len);
                            RecordContent::Inline { bytes, len }
                        } else {
                            RecordContent::Shared(input.split_to(len).freeze())
                        });
                    } else {
                        self.body.extend_from_slice(&input[..len]);
                        input.advance(len);
                    }
                }
                RawFragment::End(header) => {
                    if !is_stream(&header) {
                        let content = match self.whole.take() {
                            Some(content) => content,
                            None => RecordContent::Shared(if self.body.is_empty() {
                                Bytes::new()
                            } else {
                                self.body.split().freeze()
                            }),
                        };
                        return Ok(Some(Input::Record { header, content }));
                    }
                    if header.content_length == 0 {
                        return Ok(Some(Input::StreamEnd { header }));
                    }
                }
            }
        }
    }

    pub(crate) fn push_event(&mut self, event: E, payload: usize) {
        let cost = payload + EVENT_COST;
        self.buffered += cost;
        self.events.push_back((event, cost));
    }

    pub(crate) fn poll_event(&mut self) -> Option<E> {
        let (event, cost) = self.events.pop_front()?;
        self.buffered -= cost;
        Some(event)
    }

    /// Drops every queued event `stale` matches (the events of a request the application
    /// already ended: its id is inactive, so nothing more may be reported for it).
    pub(crate) fn purge_events(&mut self, mut stale: impl FnMut(&E) -> bool) {
        let mut freed = 0;
        self.events.retain(|(event, cost)| {
            let drop = stale(event);
            if drop {
                freed += *cost;
            }
            !drop
        });
        self.buffered -= freed;
    }

    /// How many more bytes stream sends may queue before they are refused.
    pub(crate) fn send_capacity(&self) -> usize {
        self.limits
            .max_buffered_output
            .saturating_sub(self.transmit.len())
    }

    /// Refuses a stream send when the transmit queue is full.
    pub(crate) fn check_output_room(&self) -> Result<(), Error> {
        if self.transmit.len() >= self.limits.max_buffered_output {
            return Err(crate::error::ApiError::OutputFull.into());
        }
        Ok(())
    }
}
