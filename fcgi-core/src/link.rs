//! What both connection sides share: decoding input into records and stream pieces, the
//! event queue with its back-pressure budget, the transmit queue, and fatal-error latching.

use alloc::collections::VecDeque;
use bytes::{Bytes, BytesMut};

use crate::error::{Error, Malformed};
use crate::limits::{EVENT_COST, Limits};
use crate::record::{Decoder, Fragment, Header, Padding, RecordType, VERSION_1};
use crate::transmit::Transmit;

/// One unit of decoded input, as the connection state machines consume it.
#[derive(Debug)]
pub(crate) enum Input {
    /// A non-empty piece of a stream record (record boundaries carry no meaning).
    Stream { header: Header, data: Bytes },
    /// An empty stream record: the stream's terminator.
    StreamEnd { header: Header },
    /// A whole non-stream record.
    Record { header: Header, content: Bytes },
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
    body: BytesMut,
    pub(crate) transmit: Transmit,
    pub(crate) padding: Padding,
    pub(crate) limits: Limits,
    events: VecDeque<(E, usize)>,
    buffered: usize,
    error: Option<Error>,
}

impl<E> Link<E> {
    pub(crate) fn new(limits: Limits, padding: Padding) -> Self {
        Self {
            decoder: Decoder::new(),
            current: Header::new(RecordType::Unknown(0), 0, 0, 0),
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
            && self.transmit.len() < self.limits.max_buffered_output
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
        self.decoder.is_at_boundary()
    }

    /// The next unit of input, or `None` when input is exhausted or back-pressure applies.
    pub(crate) fn next_input(&mut self, input: &mut BytesMut) -> Result<Option<Input>, Error> {
        while self.wants_input() {
            let Some(fragment) = self.decoder.decode(input) else {
                return Ok(None);
            };
            match fragment {
                Fragment::Header(h) => {
                    if h.version != VERSION_1 {
                        return Err(Malformed::UnsupportedVersion(h.version).into());
                    }
                    self.current = h;
                }
                Fragment::Content(data) => {
                    let header = self.current;
                    if is_stream(&header) {
                        return Ok(Some(Input::Stream { header, data }));
                    }
                    self.body.extend_from_slice(&data);
                }
                Fragment::End(header) => {
                    if !is_stream(&header) {
                        let content = self.body.split().freeze();
                        return Ok(Some(Input::Record { header, content }));
                    }
                    if header.content_length == 0 {
                        return Ok(Some(Input::StreamEnd { header }));
                    }
                }
            }
        }
        Ok(None)
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

    /// Refuses a stream send when the transmit queue is full.
    pub(crate) fn check_output_room(&self) -> Result<(), Error> {
        if self.transmit.len() >= self.limits.max_buffered_output {
            return Err(crate::error::ApiError::OutputFull.into());
        }
        Ok(())
    }
}
