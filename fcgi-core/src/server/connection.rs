//! The application-side connection state machine.

use bytes::{Bytes, BytesMut};

use super::config::ServerConfig;
use super::event::{Event, Rejection};
use crate::error::{ApiError, Error, Violation};
use crate::link::{Input, Link};
use crate::params::{Params, ParamsReader, decode_pairs};
use crate::phase::Phase;
use crate::record::{
    BeginRequestBody, EndRequestBody, Header, NULL_REQUEST_ID, ProtocolStatus, RecordType, Role,
    UnknownTypeBody,
};
use crate::table::{HasId, RequestTable};

#[derive(Debug)]
struct Request {
    id: u16,
    role: Role,
    keep_conn: bool,
    inbound: Phase,
    params: Option<ParamsReader>,
    aborted: bool,
    wrote_stderr: bool,
}

impl HasId for Request {
    fn id(&self) -> u16 {
        self.id
    }
}

impl Request {
    /// Whether the inbound stream `rt` has already ended (for `STDIN`, also an Authorizer's,
    /// which never had one once its params are complete).
    fn has_ended(&self, rt: RecordType) -> bool {
        match rt {
            RecordType::Params => self.inbound != Phase::Params,
            RecordType::Stdin => matches!(self.inbound, Phase::Data | Phase::Done),
            RecordType::Data => self.role.reads_data() && self.inbound == Phase::Done,
            _ => false,
        }
    }

    /// The spec's output rules: nothing before `PARAMS` ends; a Filter nothing before
    /// `STDIN` ends.
    fn may_write(&self) -> bool {
        if self.role.writes_after_stdin() {
            matches!(self.inbound, Phase::Data | Phase::Done)
        } else {
            self.inbound != Phase::Params
        }
    }
}

/// One FastCGI connection seen from the application (what php-fpm is).
///
/// # Run loop
///
/// After every input ([`handle_input`](Self::handle_input), [`handle_eof`](Self::handle_eof))
/// and every command ([`send_stdout`](Self::send_stdout), [`end_request`](Self::end_request),
/// ...), drain the outputs until they return nothing: [`poll_event`](Self::poll_event) for
/// the application, [`poll_transmit`](Self::poll_transmit) (or
/// [`transmit_chunks`](Self::transmit_chunks) + [`advance_transmit`](Self::advance_transmit))
/// for the socket. When [`should_close`](Self::should_close) is true and the transmit queue
/// is empty, close the connection.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use fcgi_core::server::{Event, ServerConfig, ServerConnection};
/// use fcgi_core::record::ProtocolStatus;
///
/// let mut conn = ServerConnection::new(ServerConfig::default());
/// // BEGIN_REQUEST(id 1, Responder, keep_conn) + empty PARAMS + empty STDIN.
/// let mut input = BytesMut::from(&[
///     1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0,
///     1, 4, 0, 1, 0, 0, 0, 0,
///     1, 5, 0, 1, 0, 0, 0, 0,
/// ][..]);
/// conn.handle_input(&mut input)?;
/// assert!(matches!(conn.poll_event(), Some(Event::BeginRequest { id: 1, .. })));
/// assert!(matches!(conn.poll_event(), Some(Event::Params { id: 1, .. })));
/// assert_eq!(conn.poll_event(), Some(Event::StdinEnd { id: 1 }));
/// conn.send_stdout(1, Bytes::from_static(b"Status: 204\r\n\r\n"))?;
/// conn.end_request(1, 0, ProtocolStatus::RequestComplete)?;
/// let mut wire = Vec::new();
/// while let Some(chunk) = conn.poll_transmit() { wire.extend_from_slice(&chunk); }
/// assert_eq!(wire.len(), 8 + 16 + 8 + 8 + 8); // STDOUT, empty STDOUT, END_REQUEST
/// assert!(!conn.should_close()); // keep_conn was set
/// # Ok::<(), fcgi_core::Error>(())
/// ```
#[derive(Debug)]
pub struct ServerConnection {
    config: ServerConfig,
    link: Link<Event>,
    requests: RequestTable<Request>,
    close_when_idle: bool,
    shutting_down: bool,
    eof: bool,
}

impl ServerConnection {
    /// A connection in its initial state.
    pub fn new(config: ServerConfig) -> Self {
        Self {
            link: Link::new(config.limits, config.padding, true),
            config,
            requests: RequestTable::default(),
            close_when_idle: false,
            shutting_down: false,
            eof: false,
        }
    }

    /// The configuration this connection runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Number of active requests (begun and not yet ended by the application).
    pub fn active_requests(&self) -> usize {
        self.requests.len()
    }

    /// Whether request `id` is active.
    pub fn is_active(&self, id: u16) -> bool {
        self.requests.contains(id)
    }

    /// Whether active request `id` still expects input from the web server: its `PARAMS`,
    /// `STDIN` (Responder, Filter) or `DATA` (Filter) stream has not ended yet. False for an
    /// inactive id.
    pub fn expects_input(&self, id: u16) -> bool {
        self.requests
            .get(id)
            .is_some_and(|r| r.inbound != Phase::Done)
    }

    /// Whether any active request still expects input (see
    /// [`expects_input`](Self::expects_input)): while one does, silence from the web server
    /// is a stall, not an idle connection.
    pub fn awaiting_input(&self) -> bool {
        self.requests.iter().any(|r| r.inbound != Phase::Done)
    }

    /// True while the connection can take more input: false once queued events or queued
    /// output reach their limits (poll events / write output, then feed input again), after
    /// a fatal error, or after [`handle_eof`](Self::handle_eof).
    pub fn wants_input(&self) -> bool {
        !self.eof && self.link.wants_input()
    }

    /// True when the connection should be closed once the transmit queue is written: a
    /// request without `FCGI_KEEP_CONN` ended, [`shutdown`](Self::shutdown) was called, or
    /// the peer closed — and no request is active any more.
    pub fn should_close(&self) -> bool {
        self.close_when_idle && self.requests.is_empty()
    }

    /// Stops accepting requests: new ones get `OVERLOADED`; active ones run to their end,
    /// after which [`should_close`](Self::should_close) turns true. For graceful shutdown.
    pub fn shutdown(&mut self) {
        self.shutting_down = true;
        self.close_when_idle = true;
    }

    /// Closes the connection once no request is active, without refusing anything: requests
    /// that begin before then are still served. For "at most N requests per connection" and
    /// graceful shutdown of kept-alive connections (a web server retries a request on a
    /// kept-alive connection that closed before answering; it cannot retry an `OVERLOADED`).
    pub fn close_after_active(&mut self) {
        self.close_when_idle = true;
    }

    /// Consumes input from the front of `input`, as far as back-pressure allows (what is
    /// left in `input` must be fed again later, before new bytes). Stream payloads in the
    /// resulting events share `input`'s allocation instead of being copied.
    ///
    /// An error is fatal: the connection is unusable and should be closed (write out any
    /// queued output first if you like); later calls return the same error.
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

    /// The peer closed its side. Every active request that was not already aborted gets an
    /// [`Event::Abort`]; the connection closes once they are ended. Returns
    /// [`Malformed::TruncatedRecord`](crate::Malformed::TruncatedRecord) if the peer stopped
    /// in the middle of a record (the aborts are reported all the same).
    pub fn handle_eof(&mut self) -> Result<(), Error> {
        if self.eof {
            return Ok(());
        }
        self.eof = true;
        self.close_when_idle = true;
        let ids: alloc::vec::Vec<u16> = self
            .requests
            .iter()
            .filter(|r| !r.aborted)
            .map(|r| r.id)
            .collect();
        for id in ids {
            if let Some(r) = self.requests.get_mut(id) {
                r.aborted = true;
            }
            self.link.push_event(Event::Abort { id }, 0);
        }
        if self.link.is_at_boundary() {
            Ok(())
        } else {
            Err(crate::Malformed::TruncatedRecord.into())
        }
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.link.poll_event()
    }

    /// The next chunk of bytes to write to the peer.
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

    /// Queues response bytes on the request's `STDOUT` stream (split into records as
    /// needed, large pieces not copied). Empty `data` queues nothing.
    pub fn send_stdout(&mut self, id: u16, data: Bytes) -> Result<(), Error> {
        self.send_stream(RecordType::Stdout, id, data)
    }

    /// Queues bytes on the request's `STDERR` stream; may interleave freely with `STDOUT`.
    pub fn send_stderr(&mut self, id: u16, data: Bytes) -> Result<(), Error> {
        self.send_stream(RecordType::Stderr, id, data)
    }

    fn send_stream(&mut self, rt: RecordType, id: u16, data: Bytes) -> Result<(), Error> {
        let req = self
            .requests
            .get_mut(id)
            .ok_or(ApiError::UnknownRequest(id))?;
        if !req.may_write() {
            return Err(ApiError::WrongPhase { request_id: id }.into());
        }
        self.link.check_output_room()?;
        if data.is_empty() {
            return Ok(());
        }
        if rt == RecordType::Stderr {
            req.wrote_stderr = true;
        }
        self.link
            .transmit
            .push_stream(rt, id, data, self.link.padding);
        Ok(())
    }

    /// Ends the request: terminates its `STDOUT` (and `STDERR`, if used) and queues
    /// `END_REQUEST`. The id becomes inactive: events still queued for it are dropped, later
    /// records for it are ignored, and the web server may reuse it. Allowed in any phase (for example after an abort, or to
    /// refuse a request with `OVERLOADED` from a global limit).
    pub fn end_request(
        &mut self,
        id: u16,
        app_status: u32,
        protocol_status: ProtocolStatus,
    ) -> Result<(), Error> {
        let req = self
            .requests
            .remove(id)
            .ok_or(ApiError::UnknownRequest(id))?;
        // The id is inactive from here on: events still queued for it are not reported
        // (a web server may reuse the id as soon as it reads our END_REQUEST).
        self.link.purge_events(|e| e.request_id() == id);
        let padding = self.link.padding;
        let t = &mut self.link.transmit;
        if protocol_status == ProtocolStatus::RequestComplete || req.may_write() {
            t.push_record(RecordType::Stdout, id, &[], padding);
        }
        if req.wrote_stderr {
            t.push_record(RecordType::Stderr, id, &[], padding);
        }
        let body = EndRequestBody {
            app_status,
            protocol_status,
        };
        t.push_record(RecordType::EndRequest, id, &body.to_array(), padding);
        if !req.keep_conn {
            self.close_when_idle = true;
        }
        Ok(())
    }

    fn reject(&mut self, id: u16, keep_conn: bool, reason: Rejection) {
        let body = EndRequestBody {
            app_status: 0,
            protocol_status: reason.protocol_status(),
        };
        let padding = self.link.padding;
        self.link
            .transmit
            .push_record(RecordType::EndRequest, id, &body.to_array(), padding);
        if !keep_conn {
            self.close_when_idle = true;
        }
        self.link.push_event(Event::Rejected { id, reason }, 0);
    }

    fn on_input(&mut self, item: Input) -> Result<(), Error> {
        let header = item.header();
        let id = header.request_id;
        if id == NULL_REQUEST_ID
            && let Input::Record { content, .. } = &item
        {
            return self.on_management(header, content);
        }
        if header.record_type == RecordType::BeginRequest
            && let Input::Record { content, .. } = &item
        {
            return self.on_begin(id, content);
        }
        let Some(req) = self.requests.get_mut(id) else {
            // Spec 3.3: records for an inactive id are ignored (a late ABORT_REQUEST after
            // our END_REQUEST, or the rest of a request we refused).
            return Ok(());
        };
        let unexpected = Violation::UnexpectedRecord {
            record_type: u8::from(header.record_type),
            request_id: id,
        };
        match (header.record_type, item) {
            (RecordType::AbortRequest, _) => {
                if !req.aborted {
                    req.aborted = true;
                    self.link.push_event(Event::Abort { id }, 0);
                }
            }
            (RecordType::Params, Input::Stream { data, .. }) if req.inbound == Phase::Params => {
                let Some(reader) = req.params.as_mut() else {
                    return Err(unexpected.into());
                };
                if reader.is_empty() {
                    reader.reserve_hint(usize::from(header.content_length));
                }
                if reader.push(&data).is_err() {
                    let keep_conn = req.keep_conn;
                    self.requests.remove(id);
                    self.reject(id, keep_conn, Rejection::ParamsTooLarge);
                }
            }
            (RecordType::Params, Input::StreamEnd { .. }) if req.inbound == Phase::Params => {
                let reader = req.params.take().ok_or(unexpected)?;
                let params = reader.finish()?;
                req.inbound = Phase::after(req.role, Phase::Params);
                let cost = params.wire_bytes().len();
                self.link.push_event(Event::Params { id, params }, cost);
            }
            (RecordType::Stdin, Input::Stream { data, .. }) if req.inbound == Phase::Stdin => {
                let len = data.len();
                self.link.push_event(Event::Stdin { id, data }, len);
            }
            (RecordType::Stdin, Input::StreamEnd { .. }) if req.inbound == Phase::Stdin => {
                req.inbound = Phase::after(req.role, Phase::Stdin);
                self.link.push_event(Event::StdinEnd { id }, 0);
            }
            // An empty record for a stream that has already ended, on a request still
            // active, ends nothing new and is harmless: ignored, as C libfcgi and php-fpm
            // do. fastcgi-client 0.12 sends a second empty STDIN after the first; some web
            // servers send an Authorizer (which has no STDIN) an empty one.
            (rt, Input::StreamEnd { .. }) if req.has_ended(rt) => {}
            (RecordType::Data, Input::Stream { data, .. }) if req.inbound == Phase::Data => {
                let len = data.len();
                self.link.push_event(Event::Data { id, data }, len);
            }
            (RecordType::Data, Input::StreamEnd { .. }) if req.inbound == Phase::Data => {
                req.inbound = Phase::Done;
                self.link.push_event(Event::DataEnd { id }, 0);
            }
            // Unknown record types for an active request: ignored, for forward compatibility.
            (RecordType::Unknown(_), _) => {}
            _ => return Err(unexpected.into()),
        }
        Ok(())
    }

    fn on_begin(&mut self, id: u16, content: &[u8]) -> Result<(), Error> {
        let body = BeginRequestBody::parse(content)?;
        if self.requests.contains(id) {
            return Err(Violation::DuplicateBegin(id).into());
        }
        let reason = if self.shutting_down {
            Some(Rejection::ShuttingDown)
        } else if self.requests.len() >= usize::from(self.config.concurrent_requests()) {
            Some(if self.config.multiplex {
                Rejection::TooManyRequests
            } else {
                Rejection::CantMpxConn
            })
        } else if !self.config.roles.contains(body.role) {
            Some(Rejection::UnknownRole)
        } else {
            None
        };
        if let Some(reason) = reason {
            self.reject(id, body.keep_conn, reason);
            return Ok(());
        }
        self.requests.insert(Request {
            id,
            role: body.role,
            keep_conn: body.keep_conn,
            inbound: Phase::Params,
            params: Some(ParamsReader::new(self.config.limits.max_params_bytes)),
            aborted: false,
            wrote_stderr: false,
        });
        self.link.push_event(
            Event::BeginRequest {
                id,
                role: body.role,
                keep_conn: body.keep_conn,
            },
            0,
        );
        Ok(())
    }

    fn on_management(&mut self, header: Header, content: &[u8]) -> Result<(), Error> {
        let padding = self.link.padding;
        if header.record_type != RecordType::GetValues {
            let body = UnknownTypeBody {
                record_type: u8::from(header.record_type),
            };
            self.link
                .transmit
                .push_record(RecordType::UnknownType, 0, &body.to_array(), padding);
            return Ok(());
        }
        let mut wanted = [false; 3];
        decode_pairs(content, |name, _| {
            if let Some(i) = VALUE_NAMES.iter().position(|n| *n == name) {
                wanted[i] = true;
            }
        })?;
        let mut answer = Params::new();
        let mut number = NumberBuf::default();
        for (i, name) in VALUE_NAMES.iter().enumerate() {
            if !wanted[i] {
                continue;
            }
            let value = match i {
                0 => number.format(self.config.max_conns),
                1 => number.format(self.config.max_reqs),
                _ => {
                    if self.config.multiplex {
                        b"1"
                    } else {
                        b"0"
                    }
                }
            };
            answer.push(name, value)?;
        }
        self.link.transmit.push_record(
            RecordType::GetValuesResult,
            0,
            answer.wire_bytes(),
            padding,
        );
        Ok(())
    }
}

/// The variables of `GET_VALUES` (spec 4.1), answered in this order.
const VALUE_NAMES: [&[u8]; 3] = [b"FCGI_MAX_CONNS", b"FCGI_MAX_REQS", b"FCGI_MPXS_CONNS"];

/// Decimal formatting without `alloc::format!`.
#[derive(Default)]
struct NumberBuf([u8; 10]);

impl NumberBuf {
    fn format(&mut self, mut n: u32) -> &[u8] {
        let mut i = self.0.len();
        loop {
            i -= 1;
            self.0[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                return &self.0[i..];
            }
        }
    }
}
