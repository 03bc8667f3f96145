//! Checked command wrappers for both connection sides, and models of what each side was
//! told to send, to compare with what it actually wrote.
//!
//! Every wrapper asserts the documented outcome of the call from state observable before it
//! (`is_active`, `is_in_flight`, `can_begin`, `transmit_len`, the request's phase) and the
//! exact growth of the transmit queue.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use fcgi_core::client::{self, ClientConnection};
use fcgi_core::record::{Padding, ProtocolStatus, Role};
use fcgi_core::server::{self, Rejection, ServerConnection};
use fcgi_core::{ApiError, Error, Params};

use crate::wire::{
    self, ClientWire, Pair, ServerWire, parse_pairs_prefix, record_wire_len, stream_wire_len,
};

/// Per-event accounting cost used by `fcgi-core` for back-pressure (`limits::EVENT_COST`,
/// crate-private): the bound checks below use the same figure.
pub const EVENT_COST: usize = 64;

/// Largest single content piece of one record.
pub const MAX_RECORD_CONTENT: usize = 65535;

/// What both connection types offer for writing out their transmit queue.
pub trait Endpoint {
    /// `transmit_len()`.
    fn queued(&self) -> usize;
    /// Sum of the lengths of `transmit_chunks()`, and the first `max` bytes of them.
    fn peek(&self, max: usize, out: &mut Vec<u8>) -> usize;
    /// `advance_transmit(n)`.
    fn advance(&mut self, n: usize);
    /// `poll_transmit()`.
    fn pop(&mut self) -> Option<Bytes>;
    /// `send_capacity()`.
    fn capacity(&self) -> usize;
    /// The configured `max_buffered_output`.
    fn max_out(&self) -> usize;
}

fn peek_chunks<'a>(chunks: impl Iterator<Item = &'a [u8]>, max: usize, out: &mut Vec<u8>) -> usize {
    let mut total = 0;
    for c in chunks {
        assert!(!c.is_empty(), "transmit_chunks yielded an empty slice");
        let take = c.len().min(max.saturating_sub(total));
        out.extend_from_slice(&c[..take]);
        total += c.len();
    }
    total
}

impl Endpoint for ServerConnection {
    fn queued(&self) -> usize {
        self.transmit_len()
    }
    fn peek(&self, max: usize, out: &mut Vec<u8>) -> usize {
        peek_chunks(self.transmit_chunks(), max, out)
    }
    fn advance(&mut self, n: usize) {
        self.advance_transmit(n);
    }
    fn pop(&mut self) -> Option<Bytes> {
        self.poll_transmit()
    }
    fn capacity(&self) -> usize {
        self.send_capacity()
    }
    fn max_out(&self) -> usize {
        self.config().limits.max_buffered_output
    }
}

impl Endpoint for ClientConnection {
    fn queued(&self) -> usize {
        self.transmit_len()
    }
    fn peek(&self, max: usize, out: &mut Vec<u8>) -> usize {
        peek_chunks(self.transmit_chunks(), max, out)
    }
    fn advance(&mut self, n: usize) {
        self.advance_transmit(n);
    }
    fn pop(&mut self) -> Option<Bytes> {
        self.poll_transmit()
    }
    fn capacity(&self) -> usize {
        self.send_capacity()
    }
    fn max_out(&self) -> usize {
        self.config().limits.max_buffered_output
    }
}

/// Moves up to `budget` queued bytes (at least one chunk's worth with `pop`) to `out`,
/// either with `poll_transmit` or with `transmit_chunks` + `advance_transmit`, checking the
/// queue's accounting on the way. Returns the number of bytes moved.
pub fn write_out<E: Endpoint>(
    conn: &mut E,
    budget: usize,
    use_pop: bool,
    out: &mut Vec<u8>,
) -> usize {
    let len = conn.queued();
    let mut scratch = Vec::new();
    assert_eq!(
        conn.peek(0, &mut scratch),
        len,
        "transmit_chunks disagree with transmit_len"
    );
    assert_eq!(
        conn.capacity(),
        conn.max_out().saturating_sub(len),
        "send_capacity"
    );
    if use_pop {
        let mut moved = 0;
        while moved < budget {
            let before = conn.queued();
            let Some(chunk) = conn.pop() else {
                assert_eq!(before, 0, "poll_transmit returned None with bytes queued");
                break;
            };
            assert!(!chunk.is_empty(), "poll_transmit returned an empty chunk");
            assert_eq!(
                conn.queued(),
                before - chunk.len(),
                "poll_transmit accounting"
            );
            out.extend_from_slice(&chunk);
            moved += chunk.len();
        }
        moved
    } else {
        let n = budget.min(len);
        let start = out.len();
        conn.peek(n, out);
        assert_eq!(out.len() - start, n);
        conn.advance(n);
        assert_eq!(conn.queued(), len - n, "advance_transmit accounting");
        n
    }
}

/// Drains the whole transmit queue into `out` (alternating both ways of writing).
pub fn write_all<E: Endpoint>(conn: &mut E, out: &mut Vec<u8>) {
    let mut pop = true;
    while conn.queued() > 0 {
        write_out(conn, 1 << 20, pop, out);
        pop = !pop;
    }
    assert!(conn.pop().is_none());
}

/// Accounting cost of a server event, as the connection counts it.
pub fn server_event_cost(ev: &server::Event) -> usize {
    EVENT_COST
        + match ev {
            server::Event::Params { params, .. } => params.wire_bytes().len(),
            server::Event::Stdin { data, .. } | server::Event::Data { data, .. } => data.len(),
            _ => 0,
        }
}

/// Accounting cost of a client event.
pub fn client_event_cost(ev: &client::Event) -> usize {
    EVENT_COST
        + match ev {
            client::Event::Values(params) => params.wire_bytes().len(),
            client::Event::Stdout { data, .. } | client::Event::Stderr { data, .. } => data.len(),
            _ => 0,
        }
}

/// Checks the error a connection returned from `handle_input`: fatal kinds only, and latched.
pub fn check_input_error(e: Error, latched: &mut Option<Error>) {
    assert!(
        !matches!(e, Error::Api(_)),
        "handle_input returned an API error: {e:?}"
    );
    if let Some(prev) = latched {
        assert_eq!(*prev, e, "a fatal error changed on a later call");
    }
    *latched = Some(e);
}

/// A simulated application on top of a `ServerConnection`, with a record of everything it
/// asked the connection to write.
#[derive(Debug, Default)]
pub struct ServerApp {
    /// The connection's padding policy.
    pub padding: Padding,
    /// `STDOUT` bytes accepted per id, in order, across the id's requests.
    pub stdout: BTreeMap<u16, Vec<u8>>,
    /// `STDERR` bytes accepted per id.
    pub stderr: BTreeMap<u16, Vec<u8>>,
    /// `END_REQUEST`s expected per id: the application's and the connection's own.
    pub ends: BTreeMap<u16, Vec<(u32, u8)>>,
    /// Role of the latest request begun per id.
    pub roles: BTreeMap<u16, Role>,
    /// Ids the application knows it may write to (its `Params`, or a Filter's `StdinEnd`,
    /// was seen, and it has not ended the request since).
    pub writable: BTreeSet<u16>,
    /// Ids whose current request wrote to `STDERR`.
    pub wrote_stderr: BTreeSet<u16>,
    /// Per id, how many `BEGIN_REQUEST`s the connection accepted or refused so far.
    pub begins: BTreeMap<u16, usize>,
    /// What each request received, keyed by (id, index of its `BEGIN_REQUEST`).
    pub received: BTreeMap<(u16, usize), Received>,
}

/// What the application received for one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Received {
    /// Its params, once complete.
    pub params: Option<Vec<Pair>>,
    /// `STDIN` bytes.
    pub stdin: Vec<u8>,
    /// `StdinEnd` seen.
    pub stdin_ended: bool,
    /// `DATA` bytes.
    pub data: Vec<u8>,
    /// `DataEnd` seen.
    pub data_ended: bool,
    /// `Abort` seen.
    pub aborted: bool,
}

impl ServerApp {
    /// An application writing with `padding`.
    pub fn new(padding: Padding) -> Self {
        Self {
            padding,
            ..Self::default()
        }
    }

    fn current(&mut self, id: u16) -> &mut Received {
        let k = self.begins.get(&id).copied().unwrap_or(0);
        self.received.entry((id, k)).or_default()
    }

    /// Updates the model with an event (call for every event, in order).
    pub fn observe(&mut self, ev: &server::Event) {
        match ev {
            server::Event::BeginRequest { id, role, .. } => {
                *self.begins.entry(*id).or_default() += 1;
                self.roles.insert(*id, *role);
                self.writable.remove(id);
                self.wrote_stderr.remove(id);
            }
            server::Event::Params { id, params } => {
                let pairs = params
                    .iter()
                    .map(|(n, v)| (n.to_vec(), v.to_vec()))
                    .collect();
                let r = self.current(*id);
                assert!(r.params.is_none(), "second Params event for one request");
                r.params = Some(pairs);
                if self.roles.get(id) != Some(&Role::Filter) {
                    self.writable.insert(*id);
                }
            }
            server::Event::Stdin { id, data } => {
                assert!(!data.is_empty(), "empty Stdin event");
                self.current(*id).stdin.extend_from_slice(data);
            }
            server::Event::StdinEnd { id } => {
                let r = self.current(*id);
                assert!(!r.stdin_ended, "second StdinEnd");
                r.stdin_ended = true;
                if self.roles.get(id) == Some(&Role::Filter) {
                    self.writable.insert(*id);
                }
            }
            server::Event::Data { id, data } => {
                assert!(!data.is_empty(), "empty Data event");
                self.current(*id).data.extend_from_slice(data);
            }
            server::Event::DataEnd { id } => {
                let r = self.current(*id);
                assert!(!r.data_ended, "second DataEnd");
                r.data_ended = true;
            }
            server::Event::Abort { id } => {
                let r = self.current(*id);
                assert!(!r.aborted, "second Abort for one request");
                r.aborted = true;
            }
            server::Event::Rejected { id, reason } => {
                if *reason != Rejection::ParamsTooLarge {
                    *self.begins.entry(*id).or_default() += 1;
                }
                self.writable.remove(id);
                self.wrote_stderr.remove(id);
                self.ends
                    .entry(*id)
                    .or_default()
                    .push((0, u8::from(reason.protocol_status())));
            }
            _ => {}
        }
    }

    /// `send_stdout` / `send_stderr`, checked. Returns whether the bytes were accepted.
    pub fn send(
        &mut self,
        conn: &mut ServerConnection,
        stderr: bool,
        id: u16,
        data: Bytes,
    ) -> bool {
        let active = conn.is_active(id);
        let before = conn.transmit_len();
        let max_out = conn.config().limits.max_buffered_output;
        let r = if stderr {
            conn.send_stderr(id, data.clone())
        } else {
            conn.send_stdout(id, data.clone())
        };
        match r {
            Ok(()) => {
                assert!(active, "send accepted for inactive request {id}");
                assert!(before < max_out, "send accepted with a full transmit queue");
                assert_eq!(
                    conn.transmit_len(),
                    before + stream_wire_len(data.len(), self.padding),
                    "stream send queued an unexpected number of bytes"
                );
                let sink = if stderr {
                    &mut self.stderr
                } else {
                    &mut self.stdout
                };
                sink.entry(id).or_default().extend_from_slice(&data);
                if stderr && !data.is_empty() {
                    self.wrote_stderr.insert(id);
                }
                return true;
            }
            Err(Error::Api(ApiError::UnknownRequest(x))) => {
                assert_eq!(x, id);
                assert!(!active, "UnknownRequest for active request {id}");
            }
            Err(Error::Api(ApiError::WrongPhase { request_id })) => {
                assert_eq!(request_id, id);
                assert!(active, "WrongPhase for inactive request");
                assert!(
                    !self.writable.contains(&id),
                    "WrongPhase once writing is allowed"
                );
            }
            Err(Error::Api(ApiError::OutputFull)) => {
                assert!(active, "OutputFull for inactive request");
                assert!(before >= max_out, "OutputFull below the output cap");
            }
            Err(e) => panic!("unexpected send error {e:?}"),
        }
        assert_eq!(conn.transmit_len(), before, "a failed send queued bytes");
        false
    }

    /// `end_request`, checked. Returns whether the request was ended.
    pub fn end(
        &mut self,
        conn: &mut ServerConnection,
        id: u16,
        app: u32,
        st: ProtocolStatus,
    ) -> bool {
        let active = conn.is_active(id);
        let before = conn.transmit_len();
        match conn.end_request(id, app, st) {
            Ok(()) => {
                assert!(active, "end_request accepted for inactive request {id}");
                assert!(!conn.is_active(id));
                let grown = conn.transmit_len() - before;
                let end = record_wire_len(8, self.padding);
                let term = record_wire_len(0, self.padding);
                let stderr_term = if self.wrote_stderr.contains(&id) {
                    term
                } else {
                    0
                };
                let must_stdout =
                    st == ProtocolStatus::RequestComplete || self.writable.contains(&id);
                if must_stdout {
                    assert_eq!(grown, end + term + stderr_term, "end_request bytes");
                } else {
                    assert!(
                        grown == end + stderr_term || grown == end + term + stderr_term,
                        "end_request queued {grown} bytes"
                    );
                }
                self.writable.remove(&id);
                self.wrote_stderr.remove(&id);
                self.ends.entry(id).or_default().push((app, u8::from(st)));
                true
            }
            Err(Error::Api(ApiError::UnknownRequest(x))) => {
                assert_eq!(x, id);
                assert!(!active, "end_request refused for active request {id}");
                assert_eq!(conn.transmit_len(), before);
                false
            }
            Err(e) => panic!("unexpected end_request error {e:?}"),
        }
    }

    /// Compares the checked server output with what the application and the connection's own
    /// refusals asked for.
    pub fn check_wire(&self, w: &ServerWire) {
        let ids: BTreeSet<u16> = self
            .stdout
            .keys()
            .chain(self.stderr.keys())
            .chain(self.ends.keys())
            .chain(w.segments.keys())
            .copied()
            .collect();
        for id in ids {
            let none = Vec::new();
            assert_eq!(
                &w.stdout(id),
                self.stdout.get(&id).unwrap_or(&none),
                "STDOUT of {id} differs from what was sent"
            );
            assert_eq!(
                &w.stderr(id),
                self.stderr.get(&id).unwrap_or(&none),
                "STDERR of {id}"
            );
            let mut got = w.ends(id);
            let mut want = self.ends.get(&id).cloned().unwrap_or_default();
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "END_REQUESTs of {id}");
        }
    }
}

/// Which stream of a client request the caller writes next (mirrors the documented phases).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `PARAMS` open.
    Params,
    /// `STDIN` open.
    Stdin,
    /// `DATA` open.
    Data,
    /// Nothing more to send.
    Done,
}

/// One request begun on a client, and everything about it.
#[derive(Debug, Clone)]
pub struct Incarnation {
    /// Role asked for.
    pub role: Role,
    /// Keep-conn flag.
    pub keep_conn: bool,
    /// Pairs accepted by `send_param`.
    pub params: Vec<Pair>,
    /// `end_params` succeeded.
    pub params_ended: bool,
    /// `STDIN` bytes accepted.
    pub stdin: Vec<u8>,
    /// `end_stdin` succeeded.
    pub stdin_ended: bool,
    /// `DATA` bytes accepted.
    pub data: Vec<u8>,
    /// `end_data` succeeded.
    pub data_ended: bool,
    /// `abort` succeeded.
    pub aborted: bool,
    /// Phase of the caller's side.
    pub phase: Phase,
    /// `STDOUT` received.
    pub stdout: Vec<u8>,
    /// `STDERR` received.
    pub stderr: Vec<u8>,
    /// `EndRequest` received.
    pub ended: Option<(u32, u8)>,
    /// `Truncated` received.
    pub truncated: bool,
}

/// A simulated web server on top of a `ClientConnection`.
#[derive(Debug, Default)]
pub struct ClientDriver {
    /// The connection's padding policy.
    pub padding: Padding,
    /// Every request begun, per id, in order.
    pub incs: BTreeMap<u16, Vec<Incarnation>>,
    /// Ids in flight as far as the events seen so far tell.
    pub in_flight: BTreeSet<u16>,
    /// `Values` answers received.
    pub values: Vec<Params>,
    /// Type bytes received in `UnknownType` events.
    pub unknown_types: Vec<u8>,
    /// `handle_eof` was called.
    pub eof: bool,
}

impl ClientDriver {
    /// A driver for a connection writing with `padding`.
    pub fn new(padding: Padding) -> Self {
        Self {
            padding,
            ..Self::default()
        }
    }

    fn live(&mut self, id: u16) -> &mut Incarnation {
        self.incs
            .get_mut(&id)
            .and_then(|v| v.last_mut())
            .unwrap_or_else(|| panic!("no request was begun with id {id}"))
    }

    /// The phase of the request the connection has in flight under `id`, if any.
    fn phase_of(&self, conn: &ClientConnection, id: u16) -> Option<Phase> {
        if !conn.is_in_flight(id) {
            return None;
        }
        let inc = self.incs.get(&id).and_then(|v| v.last());
        Some(inc.expect("in flight but never begun").phase)
    }

    /// Updates the model with an event (call for every event, in order).
    pub fn observe(&mut self, ev: &client::Event) {
        match ev {
            client::Event::Stdout { id, data } => {
                assert!(
                    self.in_flight.contains(id),
                    "Stdout for id {id} not in flight"
                );
                assert!(!data.is_empty(), "empty Stdout event");
                self.live(*id).stdout.extend_from_slice(data);
            }
            client::Event::Stderr { id, data } => {
                assert!(
                    self.in_flight.contains(id),
                    "Stderr for id {id} not in flight"
                );
                assert!(!data.is_empty(), "empty Stderr event");
                self.live(*id).stderr.extend_from_slice(data);
            }
            client::Event::EndRequest {
                id,
                app_status,
                protocol_status,
            } => {
                assert!(
                    self.in_flight.remove(id),
                    "EndRequest for id {id} not in flight"
                );
                let inc = self.live(*id);
                assert!(inc.ended.is_none() && !inc.truncated);
                inc.ended = Some((*app_status, u8::from(*protocol_status)));
            }
            client::Event::Truncated { id } => {
                assert!(self.eof, "Truncated before handle_eof");
                assert!(
                    self.in_flight.remove(id),
                    "Truncated for id {id} not in flight"
                );
                let inc = self.live(*id);
                assert!(inc.ended.is_none() && !inc.truncated);
                inc.truncated = true;
            }
            client::Event::Values(p) => self.values.push(p.clone()),
            client::Event::UnknownType { record_type } => self.unknown_types.push(*record_type),
            _ => {}
        }
    }

    /// `begin_request`, checked. May be called while events are still queued: the id must
    /// not be one whose `EndRequest`/`Truncated` the caller has not polled yet.
    pub fn begin(
        &mut self,
        conn: &mut ClientConnection,
        role: Role,
        keep_conn: bool,
    ) -> Option<u16> {
        let can = conn.can_begin();
        let before = conn.transmit_len();
        let max = conn.config().max_concurrent_requests;
        match conn.begin_request(role, keep_conn) {
            Ok(id) => {
                assert!(can, "begin_request succeeded while can_begin() is false");
                assert!(id >= 1 && id <= max, "id {id} outside 1..={max}");
                assert!(conn.is_in_flight(id));
                assert!(!self.in_flight.contains(&id), "id {id} handed out twice");
                // The lowest id that is neither in flight nor ended without the caller having
                // polled that end yet.
                for lower in 1..id {
                    assert!(
                        conn.is_in_flight(lower) || self.in_flight.contains(&lower),
                        "id {id} given while {lower} is free"
                    );
                }
                assert_eq!(
                    conn.transmit_len(),
                    before + record_wire_len(8, self.padding)
                );
                self.in_flight.insert(id);
                self.incs.entry(id).or_default().push(Incarnation {
                    role,
                    keep_conn,
                    params: Vec::new(),
                    params_ended: false,
                    stdin: Vec::new(),
                    stdin_ended: false,
                    data: Vec::new(),
                    data_ended: false,
                    aborted: false,
                    phase: Phase::Params,
                    stdout: Vec::new(),
                    stderr: Vec::new(),
                    ended: None,
                    truncated: false,
                });
                Some(id)
            }
            Err(Error::Api(ApiError::Closing | ApiError::NoFreeRequestId(_))) => {
                assert!(!can, "begin_request refused while can_begin() is true");
                assert_eq!(conn.transmit_len(), before);
                None
            }
            Err(e) => panic!("unexpected begin_request error {e:?}"),
        }
    }

    fn expect_phase(
        &self,
        r: &Result<(), Error>,
        phase: Option<Phase>,
        want: Phase,
        id: u16,
    ) -> bool {
        match (r, phase) {
            (Ok(()), Some(p)) => {
                assert_eq!(p, want, "call accepted in phase {p:?}");
                true
            }
            (Ok(()), None) => panic!("call accepted for request {id} not in flight"),
            (Err(Error::Api(ApiError::UnknownRequest(x))), None) if *x == id => false,
            (Err(Error::Api(ApiError::WrongPhase { request_id })), Some(p))
                if *request_id == id && p != want =>
            {
                false
            }
            (Err(Error::Api(ApiError::OutputFull)), Some(p)) if p == want => false,
            (Err(e), p) => panic!("unexpected error {e:?} in phase {p:?} (wanted {want:?})"),
        }
    }

    /// `send_param`, checked.
    pub fn param(
        &mut self,
        conn: &mut ClientConnection,
        id: u16,
        name: &[u8],
        value: &[u8],
    ) -> bool {
        let phase = self.phase_of(conn, id);
        let before = conn.transmit_len();
        let r = conn.send_param(id, name, value);
        assert!(!matches!(r, Err(Error::Api(ApiError::OutputFull))));
        let ok = self.expect_phase(&r, phase, Phase::Params, id);
        if ok {
            self.live(id).params.push((name.to_vec(), value.to_vec()));
        } else {
            assert_eq!(conn.transmit_len(), before);
        }
        ok
    }

    /// `end_params`, checked.
    pub fn end_params(&mut self, conn: &mut ClientConnection, id: u16) -> bool {
        let phase = self.phase_of(conn, id);
        let before = conn.transmit_len();
        let r = conn.end_params(id);
        assert!(!matches!(r, Err(Error::Api(ApiError::OutputFull))));
        let ok = self.expect_phase(&r, phase, Phase::Params, id);
        if ok {
            assert!(conn.transmit_len() >= before + record_wire_len(0, self.padding));
            let inc = self.live(id);
            inc.params_ended = true;
            inc.phase = if inc.role == Role::Authorizer {
                Phase::Done
            } else {
                Phase::Stdin
            };
        } else {
            assert_eq!(conn.transmit_len(), before);
        }
        ok
    }

    /// `send_stdin` (or `send_data` when `data`), checked.
    pub fn stream(
        &mut self,
        conn: &mut ClientConnection,
        data: bool,
        id: u16,
        bytes: Bytes,
    ) -> bool {
        let phase = self.phase_of(conn, id);
        let before = conn.transmit_len();
        let max_out = conn.config().limits.max_buffered_output;
        let (r, want) = if data {
            (conn.send_data(id, bytes.clone()), Phase::Data)
        } else {
            (conn.send_stdin(id, bytes.clone()), Phase::Stdin)
        };
        if let Err(Error::Api(ApiError::OutputFull)) = r {
            assert!(before >= max_out, "OutputFull below the output cap");
        }
        let ok = self.expect_phase(&r, phase, want, id);
        if ok {
            assert!(before < max_out, "stream send accepted with a full queue");
            assert_eq!(
                conn.transmit_len(),
                before + stream_wire_len(bytes.len(), self.padding)
            );
            let inc = self.live(id);
            if data {
                inc.data.extend_from_slice(&bytes);
            } else {
                inc.stdin.extend_from_slice(&bytes);
            }
        } else {
            assert_eq!(conn.transmit_len(), before);
        }
        ok
    }

    /// `end_stdin` (or `end_data`), checked.
    pub fn end_stream(&mut self, conn: &mut ClientConnection, data: bool, id: u16) -> bool {
        let phase = self.phase_of(conn, id);
        let before = conn.transmit_len();
        let (r, want) = if data {
            (conn.end_data(id), Phase::Data)
        } else {
            (conn.end_stdin(id), Phase::Stdin)
        };
        assert!(!matches!(r, Err(Error::Api(ApiError::OutputFull))));
        let ok = self.expect_phase(&r, phase, want, id);
        if ok {
            assert_eq!(
                conn.transmit_len(),
                before + record_wire_len(0, self.padding)
            );
            let inc = self.live(id);
            if data {
                inc.data_ended = true;
                inc.phase = Phase::Done;
            } else {
                inc.stdin_ended = true;
                inc.phase = if inc.role == Role::Filter {
                    Phase::Data
                } else {
                    Phase::Done
                };
            }
        } else {
            assert_eq!(conn.transmit_len(), before);
        }
        ok
    }

    /// `abort`, checked.
    pub fn abort(&mut self, conn: &mut ClientConnection, id: u16) -> bool {
        let in_flight = conn.is_in_flight(id);
        let before = conn.transmit_len();
        match conn.abort(id) {
            Ok(()) => {
                assert!(in_flight, "abort accepted for request not in flight");
                assert!(conn.transmit_len() >= before + record_wire_len(0, self.padding));
                let inc = self.live(id);
                inc.aborted = true;
                inc.phase = Phase::Done;
                true
            }
            Err(Error::Api(ApiError::UnknownRequest(x))) => {
                assert_eq!(x, id);
                assert!(!in_flight, "abort refused for request in flight");
                assert_eq!(conn.transmit_len(), before);
                false
            }
            Err(e) => panic!("unexpected abort error {e:?}"),
        }
    }

    /// `get_values`, checked (names must be short).
    pub fn get_values(&mut self, conn: &mut ClientConnection, names: &[&[u8]]) {
        let before = conn.transmit_len();
        conn.get_values(names).expect("get_values with short names");
        let block: usize = names.iter().map(|n| wire::encoded_pair_len(n, b"")).sum();
        assert_eq!(
            conn.transmit_len(),
            before + record_wire_len(block, self.padding)
        );
    }

    /// Compares the checked client output with what the driver asked for.
    pub fn check_wire(&self, w: &ClientWire) {
        for (id, incs) in &self.incs {
            let segs = w.segments.get(id).map(Vec::as_slice).unwrap_or(&[]);
            assert_eq!(segs.len(), incs.len(), "BEGIN_REQUESTs written for id {id}");
            for (k, (seg, inc)) in segs.iter().zip(incs).enumerate() {
                let at = format!("request {id}#{k}");
                assert_eq!(seg.role, u16::from(inc.role), "{at}: role");
                assert_eq!(seg.keep_conn, inc.keep_conn, "{at}: keep_conn");
                let (pairs, _) = parse_pairs_prefix(&seg.params);
                let pairs: Vec<Pair> = pairs
                    .iter()
                    .map(|(n, v)| (n.to_vec(), v.to_vec()))
                    .collect();
                if inc.params_ended {
                    assert!(seg.params_closed, "{at}: PARAMS not terminated");
                    assert_eq!(pairs, inc.params, "{at}: PARAMS differ from what was sent");
                } else {
                    assert!(
                        !seg.params_closed,
                        "{at}: PARAMS terminated without end_params"
                    );
                    assert!(
                        pairs.len() <= inc.params.len() && pairs[..] == inc.params[..pairs.len()],
                        "{at}: PARAMS written are not a prefix of what was sent"
                    );
                }
                assert_eq!(seg.stdin, inc.stdin, "{at}: STDIN differs");
                assert_eq!(seg.stdin_closed, inc.stdin_ended, "{at}: STDIN terminator");
                assert_eq!(seg.data, inc.data, "{at}: DATA differs");
                assert_eq!(seg.data_closed, inc.data_ended, "{at}: DATA terminator");
                assert_eq!(seg.aborted, inc.aborted, "{at}: ABORT_REQUEST");
            }
        }
        for id in w.segments.keys() {
            assert!(
                self.incs.contains_key(id),
                "records written for never-begun id {id}"
            );
        }
    }

    /// After `handle_eof` and a full drain: every request ended exactly once (by
    /// `END_REQUEST` or as truncated) and the connection is idle.
    pub fn check_all_ended(&self, conn: &ClientConnection) {
        assert!(
            self.in_flight.is_empty(),
            "requests still in flight: {:?}",
            self.in_flight
        );
        assert_eq!(conn.requests_in_flight(), 0);
        for (id, incs) in &self.incs {
            for (k, inc) in incs.iter().enumerate() {
                assert!(
                    inc.ended.is_some() != inc.truncated,
                    "request {id}#{k} ended {:?} / truncated {}",
                    inc.ended,
                    inc.truncated
                );
            }
        }
    }
}
