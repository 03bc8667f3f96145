//! An in-memory web server ⇄ application driver for fcgi-core tests, in the style of
//! quinn-proto's test `Pair`.
//!
//! A [`Pair`] wires a [`ClientConnection`] (web-server side) to a [`ServerConnection`]
//! (application side) without sockets. Each [`Pair::step`]:
//!
//! 1. lets the client-side and server-side test applications issue commands
//!    ([`ClientApp::poll`], [`ServerApp::poll`]);
//! 2. "writes" at most [`Chunker::next_len`] bytes of each side's transmit queue into the
//!    other side's input buffer (a partial write, through `transmit_chunks` +
//!    `advance_transmit`), so the byte stream is re-split at arbitrary boundaries in both
//!    directions;
//! 3. feeds that input with `handle_input` (back-pressure is honoured: what a side does not
//!    consume stays in its input buffer for the next step) and hands every event to the
//!    side's application (`on_event`), which may answer with commands at once.
//!
//! [`Pair::run`] steps until a step makes no progress at all (quiescence) or a step bound is
//! hit, so a livelock fails the test instead of hanging it. A fatal `handle_input` error is
//! returned as `Err`. An optional wire tap keeps a copy of every byte moved in each
//! direction, for record-level checks.
//!
//! Two scripted applications come with it: [`ScriptedClient`] begins requests and sends
//! their params/stdin/data/aborts one operation at a time, in an interleaving chosen by a
//! list of choices, recording everything it sent and received; [`ScriptedServer`] records
//! every request incarnation it sees and answers per a [`Reply`] script (output pieces on
//! `STDOUT`/`STDERR`, optional echo of the input, refusal at `BEGIN_REQUEST`), ending each
//! request exactly once. Other test files can reuse all of it with `mod pair;`, or plug in
//! their own [`ClientApp`]/[`ServerApp`].
// Not every test binary that includes this module uses all of it, and its `pub` items are
// only reachable inside that binary.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use fcgi_core::client::{self, ClientConnection};
use fcgi_core::server::{self, Rejection, ServerConnection};
use fcgi_core::{ApiError, Error, Params, ProtocolStatus, Role};
use proptest::test_runner::{Config as ProptestConfig, RngSeed};

/// Proptest configuration for these suites: `default_cases` cases unless `PROPTEST_CASES`
/// is set, a fixed RNG seed unless `PROPTEST_RNG_SEED` is set (runs are reproducible), and
/// no regression files written into the source tree.
pub fn proptest_config(default_cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default_cases;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(0x00FC_6100_2025);
    }
    config.failure_persistence = None;
    config
}

/// Deterministic pseudo-random bytes: distinct seeds give distinct contents, so a byte
/// delivered on the wrong stream or in the wrong order is detected.
pub fn pattern(seed: u64, len: usize) -> Bytes {
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        // splitmix64
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let take = (len - out.len()).min(8);
        out.extend_from_slice(&z.to_le_bytes()[..take]);
    }
    Bytes::from(out)
}

/// Sizes of successive writes: cycles through a list (each at least 1 byte).
#[derive(Debug, Clone)]
pub struct Chunker {
    sizes: Vec<usize>,
    at: usize,
}

impl Chunker {
    /// Cycles through `sizes`; an empty list means "everything at once".
    pub fn new(sizes: Vec<usize>) -> Self {
        Self { sizes, at: 0 }
    }

    /// Everything available, in one write.
    pub fn whole() -> Self {
        Self::new(Vec::new())
    }

    /// One byte per write.
    pub fn bytewise() -> Self {
        Self::new(vec![1])
    }

    /// Size of the next write.
    pub fn next_len(&mut self) -> usize {
        if self.sizes.is_empty() {
            return usize::MAX;
        }
        let n = self.sizes[self.at % self.sizes.len()];
        self.at = self.at.wrapping_add(1);
        n.max(1)
    }

    /// Splits `data` into consecutive non-empty pieces of the next sizes.
    pub fn split<'a>(&mut self, mut data: &'a [u8]) -> Vec<&'a [u8]> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let n = self.next_len().min(data.len());
            let (head, tail) = data.split_at(n);
            out.push(head);
            data = tail;
        }
        out
    }
}

/// Copies at most `limit` bytes from `chunks` into `out`; returns how many.
fn write_some<'a>(
    chunks: impl Iterator<Item = &'a [u8]>,
    limit: usize,
    out: &mut BytesMut,
) -> usize {
    let mut moved = 0;
    for chunk in chunks {
        if moved == limit {
            break;
        }
        let take = chunk.len().min(limit - moved);
        out.extend_from_slice(&chunk[..take]);
        moved += take;
    }
    moved
}

/// The web-server-side test application.
pub trait ClientApp {
    /// Receives every client event, in order; may issue commands.
    fn on_event(&mut self, conn: &mut ClientConnection, event: client::Event);
    /// Called once per step; returns true if it issued any command.
    fn poll(&mut self, _conn: &mut ClientConnection) -> bool {
        false
    }
}

/// The application-side test application.
pub trait ServerApp {
    /// Receives every server event, in order; may issue commands.
    fn on_event(&mut self, conn: &mut ServerConnection, event: server::Event);
    /// Called once per step; returns true if it issued any command.
    fn poll(&mut self, _conn: &mut ServerConnection) -> bool {
        false
    }
}

/// A client and a server connection joined by two in-memory byte pipes.
pub struct Pair<C, S> {
    /// Web-server side.
    pub client: ClientConnection,
    /// Application side.
    pub server: ServerConnection,
    /// Drives `client`.
    pub client_app: C,
    /// Drives `server`.
    pub server_app: S,
    /// Write sizes client → server.
    pub to_server: Chunker,
    /// Write sizes server → client.
    pub to_client: Chunker,
    /// Bytes written to the server but not yet consumed by it.
    pub server_input: BytesMut,
    /// Bytes written to the client but not yet consumed by it.
    pub client_input: BytesMut,
    /// When set, every byte moved: (client → server, server → client).
    pub tap: Option<(Vec<u8>, Vec<u8>)>,
    /// Steps run so far.
    pub steps: usize,
}

impl<C: ClientApp, S: ServerApp> Pair<C, S> {
    /// Joins two connections.
    pub fn new(
        client: ClientConnection,
        server: ServerConnection,
        client_app: C,
        server_app: S,
        to_server: Chunker,
        to_client: Chunker,
    ) -> Self {
        Self {
            client,
            server,
            client_app,
            server_app,
            to_server,
            to_client,
            server_input: BytesMut::new(),
            client_input: BytesMut::new(),
            tap: None,
            steps: 0,
        }
    }

    /// Keeps a copy of every byte moved from now on.
    pub fn with_tap(mut self) -> Self {
        self.tap = Some((Vec::new(), Vec::new()));
        self
    }

    /// One round: apps poll, one write each way, both sides fed and their events handled.
    /// Returns whether anything happened.
    pub fn step(&mut self) -> Result<bool, String> {
        self.steps += 1;
        let mut progress = self.client_app.poll(&mut self.client);
        progress |= self.server_app.poll(&mut self.server);

        // client → server
        let n = self.to_server.next_len();
        let start = self.server_input.len();
        let moved = write_some(self.client.transmit_chunks(), n, &mut self.server_input);
        self.client.advance_transmit(moved);
        if let Some((c2s, _)) = &mut self.tap {
            c2s.extend_from_slice(&self.server_input[start..]);
        }
        progress |= moved > 0;
        let before = self.server_input.len();
        self.server
            .handle_input(&mut self.server_input)
            .map_err(|e| format!("server handle_input: {e}"))?;
        progress |= self.server_input.len() != before;
        while let Some(event) = self.server.poll_event() {
            self.server_app.on_event(&mut self.server, event);
            progress = true;
        }

        // server → client
        let n = self.to_client.next_len();
        let start = self.client_input.len();
        let moved = write_some(self.server.transmit_chunks(), n, &mut self.client_input);
        self.server.advance_transmit(moved);
        if let Some((_, s2c)) = &mut self.tap {
            s2c.extend_from_slice(&self.client_input[start..]);
        }
        progress |= moved > 0;
        let before = self.client_input.len();
        self.client
            .handle_input(&mut self.client_input)
            .map_err(|e| format!("client handle_input: {e}"))?;
        progress |= self.client_input.len() != before;
        while let Some(event) = self.client.poll_event() {
            self.client_app.on_event(&mut self.client, event);
            progress = true;
        }
        Ok(progress)
    }

    /// Steps until nothing happens any more; fails after `max_steps` steps in total.
    pub fn run(&mut self, max_steps: usize) -> Result<(), String> {
        loop {
            if self.steps >= max_steps {
                return Err(format!("no quiescence after {max_steps} steps"));
            }
            if !self.step()? {
                return Ok(());
            }
        }
    }

    /// No request in flight on either side, nothing queued and nothing unconsumed.
    pub fn is_idle(&self) -> bool {
        self.client.requests_in_flight() == 0
            && self.server.active_requests() == 0
            && self.client.transmit_len() == 0
            && self.server.transmit_len() == 0
            && self.server_input.is_empty()
            && self.client_input.is_empty()
    }
}

// ---------------------------------------------------------------------------------------
// Scripted server application
// ---------------------------------------------------------------------------------------

/// One write of the server application.
#[derive(Debug, Clone)]
pub enum Piece {
    /// Bytes for `STDOUT`.
    Stdout(Bytes),
    /// Bytes for `STDERR`.
    Stderr(Bytes),
}

/// How the server application answers one request (requests are matched to replies by the
/// order of their `BEGIN_REQUEST`).
#[derive(Debug, Clone, Default)]
pub struct Reply {
    /// End the request at once on `BEGIN_REQUEST` with app status 0 and this status.
    pub refuse: Option<ProtocolStatus>,
    /// Output written one piece per step, as soon as the role allows writing.
    pub pieces: Vec<Piece>,
    /// After the input is complete and every piece is written, write the received
    /// `STDIN` followed by the received `DATA` back on `STDOUT`.
    pub echo: bool,
    /// App status of the final `END_REQUEST`.
    pub app_status: u32,
}

impl Reply {
    /// What a complete answer writes on `STDOUT` and `STDERR` for the given input.
    pub fn expected_output(&self, stdin: &[u8], data: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut out = Vec::new();
        let mut err = Vec::new();
        for p in &self.pieces {
            match p {
                Piece::Stdout(b) => out.extend_from_slice(b),
                Piece::Stderr(b) => err.extend_from_slice(b),
            }
        }
        if self.echo {
            out.extend_from_slice(stdin);
            out.extend_from_slice(data);
        }
        (out, err)
    }
}

/// App status the scripted server uses when it ends an aborted request.
pub const ABORTED_APP_STATUS: u32 = 0x0AB0_0AB0;

/// Everything the server application saw and did for one request incarnation.
#[derive(Debug, Clone)]
pub struct Served {
    /// Position of its `BEGIN_REQUEST` among all accepted ones.
    pub seq: usize,
    /// Request id.
    pub id: u16,
    /// Role from `BEGIN_REQUEST`.
    pub role: Role,
    /// Keep-conn flag from `BEGIN_REQUEST`.
    pub keep_conn: bool,
    /// The params, once the stream ended.
    pub params: Option<Params>,
    /// `STDIN` bytes received.
    pub stdin: Vec<u8>,
    /// `STDIN` terminator received.
    pub stdin_ended: bool,
    /// `DATA` bytes received.
    pub data: Vec<u8>,
    /// `DATA` terminator received.
    pub data_ended: bool,
    /// An `Abort` event arrived.
    pub aborted: bool,
    /// `STDOUT` bytes accepted by `send_stdout`.
    pub stdout: Vec<u8>,
    /// `STDERR` bytes accepted by `send_stderr`.
    pub stderr: Vec<u8>,
    /// Arguments of the one successful `end_request`.
    pub end: Option<(u32, ProtocolStatus)>,
    next_piece: usize,
}

impl Served {
    fn may_write(&self) -> bool {
        match self.role {
            Role::Filter => self.stdin_ended,
            _ => self.params.is_some(),
        }
    }

    fn input_complete(&self) -> bool {
        match self.role {
            Role::Responder => self.stdin_ended,
            Role::Filter => self.data_ended,
            _ => self.params.is_some(),
        }
    }
}

/// A server application that answers per a list of [`Reply`]s and records everything.
#[derive(Debug, Default)]
pub struct ScriptedServer {
    /// Replies by `BEGIN_REQUEST` order; requests beyond the list get `Reply::default()`.
    pub replies: Vec<Reply>,
    active: BTreeMap<u16, Served>,
    /// Ended incarnations, in the order they were ended.
    pub finished: Vec<Served>,
    /// `Rejected` events.
    pub rejected: Vec<(u16, Rejection)>,
    /// Events that arrived for a request the application had already ended (they were
    /// queued before `end_request`; the connection does not withdraw queued events).
    pub stale_events: usize,
    /// Anything that should not have happened.
    pub errors: Vec<String>,
    begun: usize,
    /// Ids ended by the application and not begun again since.
    ended: std::collections::BTreeSet<u16>,
}

impl ScriptedServer {
    /// An application answering per `replies`.
    pub fn new(replies: Vec<Reply>) -> Self {
        Self {
            replies,
            ..Self::default()
        }
    }

    /// Requests begun and not yet ended by the application.
    pub fn active_len(&self) -> usize {
        self.active.len()
    }

    fn end(&mut self, conn: &mut ServerConnection, id: u16, app_status: u32, ps: ProtocolStatus) {
        let Some(mut served) = self.active.remove(&id) else {
            self.errors.push(format!("end of inactive request {id}"));
            return;
        };
        if let Err(e) = conn.end_request(id, app_status, ps) {
            self.errors.push(format!("end_request({id}): {e}"));
        }
        // The id is inactive now: a second end_request must be refused.
        if conn.end_request(id, app_status, ps) != Err(Error::Api(ApiError::UnknownRequest(id))) {
            self.errors
                .push(format!("second end_request({id}) was not refused"));
        }
        served.end = Some((app_status, ps));
        self.finished.push(served);
        self.ended.insert(id);
    }
}

impl ServerApp for ScriptedServer {
    fn on_event(&mut self, conn: &mut ServerConnection, event: server::Event) {
        use server::Event as E;
        let id = match &event {
            E::BeginRequest { id, .. }
            | E::Params { id, .. }
            | E::Stdin { id, .. }
            | E::StdinEnd { id }
            | E::Data { id, .. }
            | E::DataEnd { id }
            | E::Abort { id }
            | E::Rejected { id, .. } => *id,
            other => {
                self.errors.push(format!("unexpected event {other:?}"));
                return;
            }
        };
        if let E::BeginRequest {
            role, keep_conn, ..
        } = event
        {
            if self.active.contains_key(&id) {
                self.errors.push(format!("BeginRequest for active id {id}"));
            }
            self.ended.remove(&id);
            let seq = self.begun;
            self.begun += 1;
            self.active.insert(
                id,
                Served {
                    seq,
                    id,
                    role,
                    keep_conn,
                    params: None,
                    stdin: Vec::new(),
                    stdin_ended: false,
                    data: Vec::new(),
                    data_ended: false,
                    aborted: false,
                    stdout: Vec::new(),
                    stderr: Vec::new(),
                    end: None,
                    next_piece: 0,
                },
            );
            if let Some(ps) = self.replies.get(seq).and_then(|r| r.refuse) {
                self.end(conn, id, 0, ps);
            }
            return;
        }
        if let E::Rejected { reason, .. } = event {
            self.rejected.push((id, reason));
            return;
        }
        let Some(s) = self.active.get_mut(&id) else {
            if self.ended.contains(&id) {
                self.stale_events += 1;
            } else {
                self.errors
                    .push(format!("event for never-begun id {id}: {event:?}"));
            }
            return;
        };
        match event {
            E::Params { params, .. } => {
                if s.params.is_some() {
                    self.errors.push(format!("second Params for {id}"));
                }
                s.params = Some(params);
            }
            E::Stdin { data, .. } => {
                if data.is_empty() || s.stdin_ended || s.params.is_none() {
                    self.errors.push(format!("bad Stdin event for {id}"));
                }
                s.stdin.extend_from_slice(&data);
            }
            E::StdinEnd { .. } => {
                if s.stdin_ended || s.params.is_none() {
                    self.errors.push(format!("bad StdinEnd for {id}"));
                }
                s.stdin_ended = true;
            }
            E::Data { data, .. } => {
                if data.is_empty() || s.data_ended || !s.stdin_ended {
                    self.errors.push(format!("bad Data event for {id}"));
                }
                s.data.extend_from_slice(&data);
            }
            E::DataEnd { .. } => {
                if s.data_ended || !s.stdin_ended {
                    self.errors.push(format!("bad DataEnd for {id}"));
                }
                s.data_ended = true;
            }
            E::Abort { .. } => {
                if s.aborted {
                    self.errors.push(format!("second Abort for {id}"));
                }
                s.aborted = true;
                self.end(
                    conn,
                    id,
                    ABORTED_APP_STATUS,
                    ProtocolStatus::RequestComplete,
                );
            }
            _ => {}
        }
    }

    fn poll(&mut self, conn: &mut ServerConnection) -> bool {
        let mut did = false;
        let ids: Vec<u16> = self.active.keys().copied().collect();
        let default = Reply::default();
        for id in ids {
            let Some(s) = self.active.get_mut(&id) else {
                continue;
            };
            if !s.may_write() {
                continue;
            }
            let reply = self.replies.get(s.seq).unwrap_or(&default);
            if let Some(piece) = reply.pieces.get(s.next_piece) {
                let result = match piece {
                    Piece::Stdout(b) => conn.send_stdout(id, b.clone()),
                    Piece::Stderr(b) => conn.send_stderr(id, b.clone()),
                };
                match result {
                    Ok(()) => {
                        match piece {
                            Piece::Stdout(b) => s.stdout.extend_from_slice(b),
                            Piece::Stderr(b) => s.stderr.extend_from_slice(b),
                        }
                        s.next_piece += 1;
                        did = true;
                    }
                    Err(Error::Api(ApiError::OutputFull)) => {}
                    Err(e) => self.errors.push(format!("send on {id}: {e}")),
                }
                continue;
            }
            if !s.input_complete() {
                continue;
            }
            if reply.echo {
                let mut echo = s.stdin.clone();
                echo.extend_from_slice(&s.data);
                match conn.send_stdout(id, Bytes::from(echo.clone())) {
                    Ok(()) => s.stdout.extend_from_slice(&echo),
                    Err(Error::Api(ApiError::OutputFull)) => continue,
                    Err(e) => self.errors.push(format!("echo on {id}: {e}")),
                }
            }
            let status = reply.app_status;
            self.end(conn, id, status, ProtocolStatus::RequestComplete);
            did = true;
        }
        did
    }
}

// ---------------------------------------------------------------------------------------
// Scripted client application
// ---------------------------------------------------------------------------------------

/// One command of a client request script (after its implicit `begin_request`).
#[derive(Debug, Clone)]
pub enum Op {
    /// `send_param`.
    Param(Bytes, Bytes),
    /// `send_params`.
    Params(Params),
    /// `end_params`.
    EndParams,
    /// `send_stdin`.
    Stdin(Bytes),
    /// `end_stdin`.
    EndStdin,
    /// `send_data`.
    Data(Bytes),
    /// `end_data`.
    EndData,
    /// `abort` (skipped if the request already ended).
    Abort,
}

/// A request the scripted client sends.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Role asked for.
    pub role: Role,
    /// Keep-conn flag.
    pub keep_conn: bool,
    /// Commands after `begin_request`, in order.
    pub ops: Vec<Op>,
}

/// Everything the client application did and received for one request.
#[derive(Debug, Clone, Default)]
pub struct Sent {
    /// The id `begin_request` returned.
    pub id: Option<u16>,
    /// Ops done so far.
    pub next_op: usize,
    /// Params accepted by the connection.
    pub params: Params,
    /// `end_params` done.
    pub params_ended: bool,
    /// `STDIN` bytes accepted.
    pub stdin: Vec<u8>,
    /// `end_stdin` done.
    pub stdin_ended: bool,
    /// `DATA` bytes accepted.
    pub data: Vec<u8>,
    /// `end_data` done.
    pub data_ended: bool,
    /// `abort` done.
    pub abort_sent: bool,
    /// `STDOUT` bytes received.
    pub stdout: Vec<u8>,
    /// `STDERR` bytes received.
    pub stderr: Vec<u8>,
    /// Every `EndRequest` received: (app status, protocol status).
    pub ends: Vec<(u32, ProtocolStatus)>,
}

/// A client application that runs [`Plan`]s in an interleaving picked by `choices`.
#[derive(Debug, Default)]
pub struct ScriptedClient {
    /// The requests, begun in this order.
    pub plans: Vec<Plan>,
    /// Per plan: what happened.
    pub sent: Vec<Sent>,
    /// Scheduling choices: each step advances the request `choice % actionable`.
    /// Round-robin once exhausted.
    pub choices: Vec<u8>,
    at: usize,
    in_flight: BTreeMap<u16, usize>,
    next_begin: usize,
    /// Names for one `get_values` query issued on the first poll.
    pub get_values: Option<Vec<Vec<u8>>>,
    /// `Values` events received.
    pub values: Vec<Params>,
    /// `UnknownType` events received.
    pub unknown_types: Vec<u8>,
    /// Anything that should not have happened.
    pub errors: Vec<String>,
}

impl ScriptedClient {
    /// A client running `plans`, scheduled by `choices`.
    pub fn new(plans: Vec<Plan>, choices: Vec<u8>) -> Self {
        let sent = vec![Sent::default(); plans.len()];
        Self {
            plans,
            sent,
            choices,
            ..Self::default()
        }
    }

    /// True when every request was begun and ended.
    pub fn all_done(&self) -> bool {
        self.next_begin == self.plans.len() && self.in_flight.is_empty()
    }

    fn run_op(&mut self, conn: &mut ClientConnection, r: usize, id: u16) -> bool {
        let op = self.plans[r].ops[self.sent[r].next_op].clone();
        let s = &mut self.sent[r];
        let result = match &op {
            Op::Param(n, v) => conn.send_param(id, n, v),
            Op::Params(p) => conn.send_params(id, p),
            Op::EndParams => conn.end_params(id),
            Op::Stdin(b) => conn.send_stdin(id, b.clone()),
            Op::EndStdin => conn.end_stdin(id),
            Op::Data(b) => conn.send_data(id, b.clone()),
            Op::EndData => conn.end_data(id),
            Op::Abort => conn.abort(id),
        };
        match result {
            Ok(()) => {}
            Err(Error::Api(ApiError::OutputFull)) => return false,
            Err(e) => {
                self.errors.push(format!("request {r} op {op:?}: {e}"));
                s.next_op += 1;
                return true;
            }
        }
        match op {
            Op::Param(n, v) => s.params.push(&n, &v).unwrap(),
            Op::Params(p) => {
                for (n, v) in p.iter() {
                    s.params.push(n, v).unwrap();
                }
            }
            Op::EndParams => s.params_ended = true,
            Op::Stdin(b) => s.stdin.extend_from_slice(&b),
            Op::EndStdin => s.stdin_ended = true,
            Op::Data(b) => s.data.extend_from_slice(&b),
            Op::EndData => s.data_ended = true,
            Op::Abort => s.abort_sent = true,
        }
        s.next_op += 1;
        true
    }
}

impl ClientApp for ScriptedClient {
    fn on_event(&mut self, _conn: &mut ClientConnection, event: client::Event) {
        use client::Event as E;
        match event {
            E::Stdout { id, data } | E::Stderr { id, data } if data.is_empty() => {
                self.errors.push(format!("empty stream event for {id}"));
            }
            E::Stdout { id, data } => match self.in_flight.get(&id) {
                Some(&r) => self.sent[r].stdout.extend_from_slice(&data),
                None => self
                    .errors
                    .push(format!("Stdout for id {id} not in flight")),
            },
            E::Stderr { id, data } => match self.in_flight.get(&id) {
                Some(&r) => self.sent[r].stderr.extend_from_slice(&data),
                None => self
                    .errors
                    .push(format!("Stderr for id {id} not in flight")),
            },
            E::EndRequest {
                id,
                app_status,
                protocol_status,
            } => match self.in_flight.remove(&id) {
                Some(r) => self.sent[r].ends.push((app_status, protocol_status)),
                None => self
                    .errors
                    .push(format!("EndRequest for id {id} not in flight")),
            },
            E::Values(p) => self.values.push(p),
            E::UnknownType { record_type } => self.unknown_types.push(record_type),
            other => self.errors.push(format!("unexpected event {other:?}")),
        }
    }

    fn poll(&mut self, conn: &mut ClientConnection) -> bool {
        if let Some(names) = self.get_values.take() {
            let refs: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
            if let Err(e) = conn.get_values(&refs) {
                self.errors.push(format!("get_values: {e}"));
            }
            return true;
        }
        let mut actionable = Vec::new();
        for r in 0..self.plans.len() {
            let ok = match self.sent[r].id {
                None => r == self.next_begin && conn.can_begin(),
                Some(id) => {
                    self.in_flight.get(&id) == Some(&r)
                        && self.sent[r].next_op < self.plans[r].ops.len()
                }
            };
            if ok {
                actionable.push(r);
            }
        }
        if actionable.is_empty() {
            return false;
        }
        let choice = self
            .choices
            .get(self.at)
            .map_or(self.at, |&c| usize::from(c));
        self.at += 1;
        let r = actionable[choice % actionable.len()];
        match self.sent[r].id {
            None => {
                let plan = &self.plans[r];
                match conn.begin_request(plan.role, plan.keep_conn) {
                    Ok(id) => {
                        let lowest = (1..=u16::MAX)
                            .find(|i| !self.in_flight.contains_key(i))
                            .unwrap_or(0);
                        if id != lowest {
                            self.errors
                                .push(format!("begin_request gave {id}, lowest free is {lowest}"));
                        }
                        if self.in_flight.insert(id, r).is_some() {
                            self.errors.push(format!("id {id} reused while in flight"));
                        }
                        self.sent[r].id = Some(id);
                        self.next_begin += 1;
                    }
                    Err(e) => self.errors.push(format!("begin_request: {e}")),
                }
                true
            }
            Some(id) => self.run_op(conn, r, id),
        }
    }
}
