//! The web-server-side connection state machine.

use bytes::{Bytes, BytesMut};

use super::config::ClientConfig;
use super::event::Event;
use crate::error::{ApiError, Error, Violation};
use crate::link::{Input, Link};
use crate::params::{ParamsReader, encode_pair, encoded_pair_len};
use crate::phase::Phase;
use crate::record::{
    BeginRequestBody, EndRequestBody, Header, NULL_REQUEST_ID, RecordType, Role, UnknownTypeBody,
};
use crate::table::{HasId, RequestTable};

#[derive(Debug)]
struct Request {
    id: u16,
    role: Role,
    keep_conn: bool,
    outbound: Phase,
    /// The application ended its `STDOUT` / `STDERR` with an empty record.
    stdout_ended: bool,
    stderr_ended: bool,
}

impl HasId for Request {
    fn id(&self) -> u16 {
        self.id
    }
}

/// One FastCGI connection seen from the web server (what nginx is).
///
/// # Run loop
///
/// As for [`ServerConnection`](crate::server::ServerConnection): after every input and every
/// command, drain [`poll_event`](Self::poll_event) and
/// [`poll_transmit`](Self::poll_transmit) until they return nothing; close when
/// [`should_close`](Self::should_close) is true and the transmit queue is empty.
///
/// # Params
///
/// [`send_param`](Self::send_param) packs pairs into `PARAMS` records of up to 65528 bytes
/// and never splits a pair across records — php-fpm resets the connection when one is split
/// — unless a single pair is larger than a record can carry, which cannot be sent any
/// other way (php-fpm will refuse it; other applications accept it).
///
/// ```
/// use bytes::Bytes;
/// use fcgi_core::client::{ClientConfig, ClientConnection};
/// use fcgi_core::record::Role;
///
/// let mut conn = ClientConnection::new(ClientConfig::default());
/// let id = conn.begin_request(Role::Responder, true)?;
/// conn.send_param(id, b"SCRIPT_FILENAME", b"/var/www/index.php")?;
/// conn.end_params(id)?;
/// conn.send_stdin(id, Bytes::from_static(b"hello"))?;
/// conn.end_stdin(id)?;
/// let mut wire = Vec::new();
/// while let Some(chunk) = conn.poll_transmit() { wire.extend_from_slice(&chunk); }
/// assert_eq!(&wire[..8], &[1, 1, 0, 1, 0, 8, 0, 0]); // BEGIN_REQUEST, id 1
/// # Ok::<(), fcgi_core::Error>(())
/// ```
#[derive(Debug)]
pub struct ClientConnection {
    config: ClientConfig,
    link: Link<Event>,
    requests: RequestTable<Request>,
    /// Pairs waiting to fill a `PARAMS` record of request `stage_id`.
    stage: BytesMut,
    stage_id: u16,
    close_when_idle: bool,
    eof: bool,
    /// Ids whose `EndRequest`/`Truncated` event is queued but not yet polled. They are not
    /// handed out again before the caller has seen that event: otherwise the queued event
    /// would be taken for one of the new request.
    unreported: alloc::vec::Vec<u16>,
}

impl ClientConnection {
    /// A connection in its initial state.
    pub fn new(config: ClientConfig) -> Self {
        Self {
            link: Link::new(config.limits, config.padding, false),
            config,
            requests: RequestTable::default(),
            stage: BytesMut::new(),
            stage_id: NULL_REQUEST_ID,
            close_when_idle: false,
            eof: false,
            unreported: alloc::vec::Vec::new(),
        }
    }

    /// The configuration this connection runs with.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Changes how many requests may be in flight (for example after a `GET_VALUES` probe).
    pub fn set_max_concurrent_requests(&mut self, n: u16) {
        self.config.max_concurrent_requests = n;
    }

    /// Requests in flight (begun, no `END_REQUEST` yet).
    pub fn requests_in_flight(&self) -> usize {
        self.requests.len()
    }

    /// Whether request `id` is in flight.
    pub fn is_in_flight(&self, id: u16) -> bool {
        self.requests.contains(id)
    }

    /// True when another request may begin now.
    pub fn can_begin(&self) -> bool {
        !self.close_when_idle && !self.eof && self.free_id().is_some()
    }

    /// The lowest id in `1..=max_concurrent_requests` neither in flight nor waiting for its
    /// end to be polled.
    fn free_id(&self) -> Option<u16> {
        let max = self.config.max_concurrent_requests;
        if self.unreported.is_empty() {
            return self.requests.lowest_free_id(max);
        }
        (1..=max).find(|id| !self.requests.contains(*id) && !self.unreported.contains(id))
    }

    /// True while the connection can take more input (see
    /// [`ServerConnection::wants_input`](crate::server::ServerConnection::wants_input)).
    pub fn wants_input(&self) -> bool {
        !self.eof && self.link.wants_input()
    }

    /// True when the connection should be closed once the transmit queue is written: a
    /// request without keep-conn ended (the application expects us to close; php-fpm
    /// half-closes and waits), or the peer closed — and nothing is in flight.
    pub fn should_close(&self) -> bool {
        (self.close_when_idle || self.eof) && self.requests.is_empty()
    }

    /// Starts a request and returns its id: the lowest id not in flight. An id is reused
    /// only after its [`Event::EndRequest`] (or [`Event::Truncated`]) has been polled.
    pub fn begin_request(&mut self, role: Role, keep_conn: bool) -> Result<u16, Error> {
        if self.close_when_idle || self.eof {
            return Err(ApiError::Closing.into());
        }
        let max = self.config.max_concurrent_requests;
        let id = self.free_id().ok_or(ApiError::NoFreeRequestId(max))?;
        let body = BeginRequestBody { role, keep_conn };
        let padding = self.link.padding;
        self.link
            .transmit
            .push_record(RecordType::BeginRequest, id, &body.to_array(), padding);
        self.requests.insert(Request {
            id,
            role,
            keep_conn,
            outbound: Phase::Params,
            stdout_ended: false,
            stderr_ended: false,
        });
        if !keep_conn {
            // One request, then we close: no other request may start on this connection.
            self.close_when_idle = true;
        }
        Ok(id)
    }

    fn request_in(&self, id: u16, phase: Phase) -> Result<(), Error> {
        let req = self.requests.get(id).ok_or(ApiError::UnknownRequest(id))?;
        if req.outbound != phase {
            return Err(ApiError::WrongPhase { request_id: id }.into());
        }
        Ok(())
    }

    fn flush_stage(&mut self) {
        if !self.stage.is_empty() {
            let padding = self.link.padding;
            self.link
                .transmit
                .push_record(RecordType::Params, self.stage_id, &self.stage, padding);
            self.stage.clear();
        }
    }

    /// Adds one CGI variable to the request's `PARAMS` stream.
    pub fn send_param(&mut self, id: u16, name: &[u8], value: &[u8]) -> Result<(), Error> {
        self.request_in(id, Phase::Params)?;
        let len = encoded_pair_len(name, value)?;
        let max = self.link.padding.max_content_len();
        if self.stage_id != id || self.stage.len() + len > max {
            self.flush_stage();
            self.stage_id = id;
        }
        if len <= max {
            encode_pair(&mut self.stage, name, value)?;
            return Ok(());
        }
        // A pair larger than one record: split it, the only way to send it at all.
        let mut pair = BytesMut::with_capacity(len);
        encode_pair(&mut pair, name, value)?;
        for piece in pair.chunks(max) {
            let padding = self.link.padding;
            self.link
                .transmit
                .push_record(RecordType::Params, id, piece, padding);
        }
        Ok(())
    }

    /// Adds every pair of `params`, in order. The pairs are already in wire format, so they
    /// are copied as they are (in one piece when they fit in the record being filled), never
    /// re-encoded; a pair is still never split across records unless it is larger than one.
    pub fn send_params(&mut self, id: u16, params: &crate::Params) -> Result<(), Error> {
        self.request_in(id, Phase::Params)?;
        let max = self.link.padding.max_content_len();
        if self.stage_id != id {
            self.flush_stage();
            self.stage_id = id;
        }
        let wire = params.indexed_wire();
        if self.stage.len() + wire.len() <= max {
            self.stage.extend_from_slice(wire);
            return Ok(());
        }
        for pair in params.wire_pairs() {
            if self.stage.len() + pair.len() > max {
                self.flush_stage();
                self.stage_id = id;
            }
            if pair.len() <= max {
                self.stage.extend_from_slice(pair);
                continue;
            }
            // A pair larger than one record: split it, the only way to send it at all.
            for piece in pair.chunks(max) {
                let padding = self.link.padding;
                self.link
                    .transmit
                    .push_record(RecordType::Params, id, piece, padding);
            }
        }
        Ok(())
    }

    /// Ends the `PARAMS` stream. The request's body (`STDIN`) may follow; an Authorizer
    /// request is then complete on our side.
    pub fn end_params(&mut self, id: u16) -> Result<(), Error> {
        self.request_in(id, Phase::Params)?;
        if self.stage_id == id {
            self.flush_stage();
        }
        let padding = self.link.padding;
        self.link
            .transmit
            .push_record(RecordType::Params, id, &[], padding);
        if let Some(req) = self.requests.get_mut(id) {
            req.outbound = Phase::after(req.role, Phase::Params);
        }
        Ok(())
    }

    fn send_stream(&mut self, phase: Phase, id: u16, data: Bytes) -> Result<(), Error> {
        self.request_in(id, phase)?;
        self.link.check_output_room()?;
        let rt = if phase == Phase::Stdin {
            RecordType::Stdin
        } else {
            RecordType::Data
        };
        let padding = self.link.padding;
        self.link.transmit.push_stream(rt, id, data, padding);
        Ok(())
    }

    fn end_stream(&mut self, phase: Phase, id: u16) -> Result<(), Error> {
        self.request_in(id, phase)?;
        let rt = if phase == Phase::Stdin {
            RecordType::Stdin
        } else {
            RecordType::Data
        };
        let padding = self.link.padding;
        self.link.transmit.push_record(rt, id, &[], padding);
        if let Some(req) = self.requests.get_mut(id) {
            req.outbound = Phase::after(req.role, phase);
        }
        Ok(())
    }

    /// Queues request-body bytes (`STDIN`; not for Authorizer requests). Large pieces are
    /// referenced, not copied. Empty `data` queues nothing.
    pub fn send_stdin(&mut self, id: u16, data: Bytes) -> Result<(), Error> {
        self.send_stream(Phase::Stdin, id, data)
    }

    /// Ends the request body. A Filter request's `DATA` follows.
    pub fn end_stdin(&mut self, id: u16) -> Result<(), Error> {
        self.end_stream(Phase::Stdin, id)
    }

    /// Queues bytes of the file to filter (`DATA`; Filter requests only, after `STDIN`).
    pub fn send_data(&mut self, id: u16, data: Bytes) -> Result<(), Error> {
        self.send_stream(Phase::Data, id, data)
    }

    /// Ends the `DATA` stream.
    pub fn end_data(&mut self, id: u16) -> Result<(), Error> {
        self.end_stream(Phase::Data, id)
    }

    /// Asks the application to abort the request (`ABORT_REQUEST`). The request stays in
    /// flight until the application's `END_REQUEST`. (On a connection without
    /// multiplexing, simply closing the connection is the cheaper way to abort.)
    pub fn abort(&mut self, id: u16) -> Result<(), Error> {
        if !self.requests.contains(id) {
            return Err(ApiError::UnknownRequest(id).into());
        }
        if self.stage_id == id {
            self.flush_stage();
        }
        let padding = self.link.padding;
        self.link
            .transmit
            .push_record(RecordType::AbortRequest, id, &[], padding);
        if let Some(req) = self.requests.get_mut(id) {
            req.outbound = Phase::Done;
        }
        Ok(())
    }

    /// Queues a `GET_VALUES` query for the given variable names (for example
    /// `FCGI_MPXS_CONNS`); the answer arrives as [`Event::Values`].
    pub fn get_values(&mut self, names: &[&[u8]]) -> Result<(), Error> {
        let mut block = BytesMut::new();
        for name in names {
            encode_pair(&mut block, name, b"")?;
        }
        if block.len() > crate::record::MAX_CONTENT_LEN {
            return Err(ApiError::PairTooLong(block.len()).into());
        }
        let padding = self.link.padding;
        self.link
            .transmit
            .push_record(RecordType::GetValues, NULL_REQUEST_ID, &block, padding);
        Ok(())
    }

    /// Consumes input from the front of `input`, as far as back-pressure allows (see
    /// [`ServerConnection::handle_input`](crate::server::ServerConnection::handle_input)).
    /// An error is fatal to the connection.
    pub fn handle_input(&mut self, input: &mut BytesMut) -> Result<(), Error> {
        self.link.check_error()?;
        if self.eof {
            return Ok(());
        }
        loop {
            let item = match self.link.next_input(input) {
                Ok(Some(item)) => item,
                Ok(None) => return Ok(()),
                Err(e) => return Err(self.link.fail(e)),
            };
            if let Err(e) = self.on_input(item) {
                return Err(self.link.fail(e));
            }
        }
    }

    /// The application closed the connection. Every request still in flight is reported as
    /// [`Event::Truncated`] and its id freed.
    pub fn handle_eof(&mut self) {
        if self.eof {
            return;
        }
        self.eof = true;
        let ids: alloc::vec::Vec<u16> = self.requests.drain().map(|r| r.id).collect();
        for id in ids {
            self.unreported.push(id);
            self.link.push_event(Event::Truncated { id }, 0);
        }
    }

    /// The next event for the caller.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.link.poll_event()?;
        if let Event::EndRequest { id, .. } | Event::Truncated { id } = event
            && let Some(i) = self.unreported.iter().position(|u| *u == id)
        {
            self.unreported.swap_remove(i);
        }
        Some(event)
    }

    /// The next chunk of bytes to write to the application.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.link.transmit.pop()
    }

    /// All queued output as slices, for a vectored write; follow with
    /// [`advance_transmit`](Self::advance_transmit).
    pub fn transmit_chunks(&self) -> impl Iterator<Item = &[u8]> {
        self.link.transmit.chunks()
    }

    /// Marks `n` bytes of queued output as written.
    pub fn advance_transmit(&mut self, n: usize) {
        self.link.transmit.advance(n);
    }

    /// Bytes of queued output.
    pub fn transmit_len(&self) -> usize {
        self.link.transmit.len()
    }

    /// How many more bytes stream sends may queue before they get
    /// [`ApiError::OutputFull`].
    pub fn send_capacity(&self) -> usize {
        self.link.send_capacity()
    }

    fn on_input(&mut self, item: Input) -> Result<(), Error> {
        let header = item.header();
        if header.request_id == NULL_REQUEST_ID {
            if let Input::Record { content, .. } = item {
                return self.on_management(header, &content);
            }
            return Ok(());
        }
        let id = header.request_id;
        let Some(req) = self.requests.get_mut(id) else {
            // Not in flight: a stray record, or a second END_REQUEST. Ignored.
            return Ok(());
        };
        match (header.record_type, item) {
            // A stream ends at its empty record (spec 3.3): what an application sends on it
            // afterwards is not part of the response. Dropped, and reported.
            (rt @ (RecordType::Stdout | RecordType::Stderr), Input::Stream { data, .. })
                if (rt == RecordType::Stdout && req.stdout_ended)
                    || (rt == RecordType::Stderr && req.stderr_ended) =>
            {
                self.link.push_event(
                    Event::AfterStreamEnd {
                        id,
                        stderr: rt == RecordType::Stderr,
                        len: data.len(),
                    },
                    0,
                );
            }
            (RecordType::Stdout, Input::Stream { data, .. }) => {
                let len = data.len();
                self.link.push_event(Event::Stdout { id, data }, len);
            }
            (RecordType::Stderr, Input::Stream { data, .. }) => {
                let len = data.len();
                self.link.push_event(Event::Stderr { id, data }, len);
            }
            (RecordType::Stdout, Input::StreamEnd { .. }) => req.stdout_ended = true,
            (RecordType::Stderr, Input::StreamEnd { .. }) => req.stderr_ended = true,
            (RecordType::EndRequest, Input::Record { content, .. }) => {
                let body = EndRequestBody::parse(&content)?;
                if let Some(req) = self.requests.remove(id)
                    && !req.keep_conn
                {
                    self.close_when_idle = true;
                }
                self.unreported.push(id);
                // Pairs still staged for this request (the application ended it before
                // its PARAMS stream did) must not leak into a later request reusing the id.
                if self.stage_id == id {
                    self.stage.clear();
                }
                self.link.push_event(
                    Event::EndRequest {
                        id,
                        app_status: body.app_status,
                        protocol_status: body.protocol_status,
                    },
                    0,
                );
            }
            (RecordType::Unknown(_), _) => {}
            (rt, _) => {
                return Err(Violation::UnexpectedRecord {
                    record_type: u8::from(rt),
                    request_id: id,
                }
                .into());
            }
        }
        Ok(())
    }

    fn on_management(&mut self, header: Header, content: &[u8]) -> Result<(), Error> {
        match header.record_type {
            RecordType::GetValuesResult => {
                let mut reader = ParamsReader::new(self.config.limits.max_params_bytes);
                reader.push(content)?;
                let params = reader.finish()?;
                let cost = params.wire_bytes().len();
                self.link.push_event(Event::Values(params), cost);
            }
            RecordType::UnknownType => {
                let body = UnknownTypeBody::parse(content)?;
                self.link.push_event(
                    Event::UnknownType {
                        record_type: body.record_type,
                    },
                    0,
                );
            }
            // Anything else on id 0 is not addressed to a request in flight: ignored.
            _ => {}
        }
        Ok(())
    }
}
