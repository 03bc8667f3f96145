//! A `ClientConnection` and a `ServerConnection` wired together in memory, driven by an
//! `arbitrary` sequence of API calls on both, with bytes moved between them in chunks of
//! fuzzer-chosen size.
//!
//! API errors are expected (wrong phase, unknown id, full queue) and are checked against the
//! observable state; panics and protocol errors are not: neither side may ever see a
//! malformed or out-of-order record from the other (the client may only hit its
//! `max_params_bytes` cap on a `GET_VALUES_RESULT`). At the end both sides are driven to idle
//! (the application ends whatever still runs, bytes flow until nothing moves), then:
//! every request begun on the client ended exactly once (or was reported truncated, after a
//! fatal client error or a final EOF); the server saw exactly the params, body and data the
//! client sent for each request; the client received exactly the output, errors and end
//! status the server sent; `GET_VALUES` answers carry the server's configuration.
#![no_main]

use arbitrary::Arbitrary;
use bytes::{Bytes, BytesMut};
use fcgi_core::client::ClientConnection;
use fcgi_core::record::ProtocolStatus;
use fcgi_core::server::ServerConnection;
use fcgi_core::{Error, Params};
use fcgi_fuzz::conf;
use fcgi_fuzz::drive::{ClientDriver, ServerApp, check_input_error, write_out};
use fcgi_fuzz::rng::Rng;
use fcgi_fuzz::wire::{check_client_wire, check_server_wire};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Setup {
    multiplex: bool,
    max_requests: u8,
    roles: u8,
    server_limits: [u8; 3],
    server_padding_none: bool,
    client_concurrency: u8,
    client_limits: [u8; 3],
    client_padding_none: bool,
}

/// A request, by position among the ones in flight (or, with the high bit, a raw id 0-7).
#[derive(Debug, Arbitrary, Clone, Copy)]
struct Req(u8);

#[derive(Debug, Arbitrary, Clone, Copy)]
enum Len {
    Small(u8),
    Medium(u16),
    Large(u16),
}

impl Len {
    fn get(self) -> usize {
        match self {
            Len::Small(n) => usize::from(n % 64),
            Len::Medium(n) => usize::from(n % 4096),
            Len::Large(n) => 65_000 + usize::from(n % 2048),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Op {
    Begin {
        role: u8,
        keep_conn: bool,
    },
    Param {
        req: Req,
        name: Vec<u8>,
        value: Len,
    },
    EndParams {
        req: Req,
    },
    Stdin {
        req: Req,
        len: Len,
    },
    EndStdin {
        req: Req,
    },
    Data {
        req: Req,
        len: Len,
    },
    EndData {
        req: Req,
    },
    Abort {
        req: Req,
    },
    GetValues {
        mask: u8,
    },
    SendStdout {
        req: Req,
        len: Len,
    },
    SendStderr {
        req: Req,
        len: Len,
    },
    EndRequest {
        req: Req,
        app_status: u32,
        status: u8,
    },
    ToServer {
        max: u16,
        pop: bool,
    },
    ToClient {
        max: u16,
        pop: bool,
    },
    /// Everything the client queued to the server, then everything back.
    Exchange,
    Shutdown,
}

#[derive(Debug, Arbitrary)]
struct Scenario {
    setup: Setup,
    ops: Vec<Op>,
    final_eof: bool,
}

fuzz_target!(|s: Scenario| run(s));

const NAMES: [&[u8]; 4] = [
    b"FCGI_MAX_CONNS",
    b"FCGI_MAX_REQS",
    b"FCGI_MPXS_CONNS",
    b"NOT_A_VARIABLE",
];

struct World {
    client: ClientConnection,
    server: ServerConnection,
    drv: ClientDriver,
    app: ServerApp,
    /// Everything the client wrote / the server wrote.
    c2s: Vec<u8>,
    s2c: Vec<u8>,
    /// Bytes in flight towards each side, not yet consumed.
    to_server: BytesMut,
    to_client: BytesMut,
    client_error: Option<Error>,
    server_error: Option<Error>,
    get_values_sent: usize,
    tag: u32,
}

impl World {
    fn pick(ids: Vec<u16>, req: Req) -> u16 {
        if req.0 & 0x80 != 0 || ids.is_empty() {
            u16::from(req.0 & 7)
        } else {
            ids[usize::from(req.0) % ids.len()]
        }
    }

    fn client_id(&self, req: Req) -> u16 {
        Self::pick(self.drv.in_flight.iter().copied().collect(), req)
    }

    fn server_id(&self, req: Req) -> u16 {
        let ids = self
            .app
            .roles
            .keys()
            .copied()
            .filter(|id| self.server.is_active(*id))
            .collect();
        Self::pick(ids, req)
    }

    fn payload(&mut self, len: usize) -> Bytes {
        self.tag += 1;
        Rng::payload(self.tag, len)
    }

    /// Moves up to `max` bytes from the client to the server and lets the server read.
    fn move_to_server(&mut self, max: usize, pop: bool) -> usize {
        let start = self.c2s.len();
        let n = write_out(&mut self.client, max.max(1), pop, &mut self.c2s);
        self.to_server.extend_from_slice(&self.c2s[start..]);
        self.server_read();
        n
    }

    fn server_read(&mut self) {
        if self.server_error.is_some() {
            return;
        }
        loop {
            let queued = self.to_server.len();
            if let Err(e) = self.server.handle_input(&mut self.to_server) {
                check_input_error(e, &mut self.server_error);
                panic!("server rejected the client's bytes: {e:?}");
            }
            while let Some(ev) = self.server.poll_event() {
                self.app.observe(&ev);
            }
            // Output the server queued on its own (rejections, answers) stays queued: only
            // `ToClient` moves it. Stop when nothing more is consumed.
            if self.to_server.is_empty() || self.to_server.len() == queued {
                break;
            }
        }
    }

    /// Moves up to `max` bytes from the server to the client and lets the client read.
    fn move_to_client(&mut self, max: usize, pop: bool) -> usize {
        let start = self.s2c.len();
        let n = write_out(&mut self.server, max.max(1), pop, &mut self.s2c);
        self.to_client.extend_from_slice(&self.s2c[start..]);
        self.client_read();
        n
    }

    fn client_read(&mut self) {
        if self.client_error.is_some() {
            return;
        }
        loop {
            let queued = self.to_client.len();
            if let Err(e) = self.client.handle_input(&mut self.to_client) {
                check_input_error(e, &mut self.client_error);
                assert!(
                    matches!(e, Error::Limit(_)),
                    "client rejected the server's bytes: {e:?}"
                );
            }
            while let Some(ev) = self.client.poll_event() {
                self.drv.observe(&ev);
            }
            if self.client_error.is_some()
                || self.to_client.is_empty()
                || self.to_client.len() == queued
            {
                break;
            }
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Begin { role, keep_conn } => {
                let role = conf::role(role, u16::from(role >> 2));
                self.drv.begin(&mut self.client, role, keep_conn);
            }
            Op::Param {
                req,
                ref name,
                value,
            } => {
                let id = self.client_id(req);
                let value = self.payload(value.get());
                let name: Vec<u8> = name.iter().copied().take(300).collect();
                self.drv.param(&mut self.client, id, &name, &value);
            }
            Op::EndParams { req } => {
                let id = self.client_id(req);
                self.drv.end_params(&mut self.client, id);
            }
            Op::Stdin { req, len } | Op::Data { req, len } => {
                let id = self.client_id(req);
                let bytes = self.payload(len.get());
                let data = matches!(op, Op::Data { .. });
                self.drv.stream(&mut self.client, data, id, bytes);
            }
            Op::EndStdin { req } | Op::EndData { req } => {
                let id = self.client_id(req);
                let data = matches!(op, Op::EndData { .. });
                self.drv.end_stream(&mut self.client, data, id);
            }
            Op::Abort { req } => {
                let id = self.client_id(req);
                self.drv.abort(&mut self.client, id);
            }
            Op::GetValues { mask } => {
                let names: Vec<&[u8]> = (0..4)
                    .filter(|i| mask & (1 << i) != 0)
                    .map(|i| NAMES[i])
                    .collect();
                self.drv.get_values(&mut self.client, &names);
                self.get_values_sent += 1;
            }
            Op::SendStdout { req, len } | Op::SendStderr { req, len } => {
                let id = self.server_id(req);
                let bytes = self.payload(len.get());
                let stderr = matches!(op, Op::SendStderr { .. });
                self.app.send(&mut self.server, stderr, id, bytes);
            }
            Op::EndRequest {
                req,
                app_status,
                status,
            } => {
                let id = self.server_id(req);
                let status = ProtocolStatus::from(status % 5);
                self.app.end(&mut self.server, id, app_status, status);
            }
            Op::ToServer { max, pop } => {
                self.move_to_server(usize::from(max), pop);
            }
            Op::ToClient { max, pop } => {
                self.move_to_client(usize::from(max), pop);
            }
            Op::Exchange => {
                self.move_to_server(usize::MAX, true);
                self.move_to_client(usize::MAX, false);
            }
            Op::Shutdown => self.server.shutdown(),
        }
    }

    /// Ends whatever the server still runs and moves bytes until nothing moves.
    ///
    /// Stops on lack of progress, not after a number of rounds: with a small output cap the
    /// server takes one record per round (say, one `GET_VALUES` of many queued), so the number
    /// of rounds needed has no useful fixed bound. A round makes progress when it ends a
    /// request, moves bytes in either direction, or lets either side consume bytes it had
    /// left unread. The loop terminates: every progressing round uses up some of a finite
    /// amount of work (the client queues nothing in response to input, so its output is
    /// what the ops queued; the server writes only in answer to the client's finite input
    /// and to the ends of the finitely many requests it accepted; each byte is moved and
    /// consumed once). A round without progress while the sides are not idle is a deadlock.
    fn drive_to_idle(&mut self) {
        loop {
            let mut ended = 0;
            let ids: Vec<u16> = self.app.roles.keys().copied().collect();
            for id in ids {
                if self.server.is_active(id)
                    && self
                        .app
                        .end(&mut self.server, id, 7, ProtocolStatus::RequestComplete)
                {
                    ended += 1;
                }
            }
            let unread_server = self.to_server.len();
            let unread_client = self.to_client.len();
            let a = self.move_to_server(usize::MAX, true);
            let consumed_s = unread_server + a - self.to_server.len();
            let b = self.move_to_client(usize::MAX, false);
            let consumed_c = unread_client + b - self.to_client.len();
            let idle = self.server.active_requests() == 0
                && self.client.transmit_len() == 0
                && self.server.transmit_len() == 0;
            if ended + a + b + consumed_s + consumed_c > 0 {
                continue;
            }
            assert!(
                idle,
                "no progress but not idle: {} active on the server, {} bytes queued by the \
                 client, {} by the server, {} and {} unread by the server and the client",
                self.server.active_requests(),
                self.client.transmit_len(),
                self.server.transmit_len(),
                self.to_server.len(),
                self.to_client.len()
            );
            return;
        }
    }
}

fn run(s: Scenario) {
    let st = &s.setup;
    let server_padding = conf::padding(st.server_padding_none);
    let client_padding = conf::padding(st.client_padding_none);
    let [sp, si, so] = st.server_limits;
    let server_config = conf::server_config(
        st.multiplex,
        u16::from(st.max_requests),
        conf::role_set(st.roles),
        conf::limits(sp, si, so),
        server_padding,
    );
    let [cp, ci, co] = st.client_limits;
    let concurrency = [1u16, 2, 3, 4, 8, 64, 300, 65535][usize::from(st.client_concurrency & 7)];
    let client_config = conf::client_config(concurrency, conf::limits(cp, ci, co), client_padding);

    let mut w = World {
        client: ClientConnection::new(client_config),
        server: ServerConnection::new(server_config.clone()),
        drv: ClientDriver::new(client_padding),
        app: ServerApp::new(server_padding),
        c2s: Vec::new(),
        s2c: Vec::new(),
        to_server: BytesMut::new(),
        to_client: BytesMut::new(),
        client_error: None,
        server_error: None,
        get_values_sent: 0,
        tag: 0,
    };
    for op in s.ops.iter().take(256) {
        w.apply(op);
    }
    w.drive_to_idle();
    assert!(w.to_server.is_empty(), "server left input unread");
    assert_eq!(w.server.active_requests(), 0);

    if w.client_error.is_some() || s.final_eof {
        w.drv.eof = true;
        w.client.handle_eof();
        while let Some(ev) = w.client.poll_event() {
            w.drv.observe(&ev);
        }
    } else {
        assert!(w.to_client.is_empty(), "client left input unread");
    }
    w.drv.check_all_ended(&w.client);
    let clean = w.client_error.is_none();
    if clean {
        assert!(
            w.drv.incs.values().flatten().all(|i| i.ended.is_some()),
            "a request ended as truncated with both sides at rest"
        );
    }

    // What each side wrote is well-framed and is what it was told to write.
    let cw = check_client_wire(&w.c2s, client_padding);
    w.drv.check_wire(&cw);
    let sw = check_server_wire(&w.s2c, server_padding);
    w.app.check_wire(&sw);
    assert!(
        sw.unknown_types.is_empty(),
        "server did not understand the client"
    );

    // The server saw what the client sent, request by request.
    for (&(id, k), got) in &w.app.received {
        let inc = &w.drv.incs[&id][k - 1];
        if let Some(params) = &got.params {
            assert!(
                inc.params_ended,
                "{id}#{k}: params event without end_params"
            );
            assert_eq!(params, &inc.params, "{id}#{k}: params differ");
        }
        assert!(
            inc.stdin.starts_with(&got.stdin),
            "{id}#{k}: stdin is not a prefix"
        );
        if got.stdin_ended {
            assert!(
                inc.stdin_ended && got.stdin == inc.stdin,
                "{id}#{k}: stdin differs"
            );
        }
        assert!(
            inc.data.starts_with(&got.data),
            "{id}#{k}: data is not a prefix"
        );
        if got.data_ended {
            assert!(
                inc.data_ended && got.data == inc.data,
                "{id}#{k}: data differs"
            );
        }
        if got.aborted {
            assert!(inc.aborted, "{id}#{k}: abort the client never sent");
        }
    }
    // The client received what the server sent, request by request.
    if clean {
        for (id, incs) in &w.drv.incs {
            let stdout: Vec<u8> = incs
                .iter()
                .map(|i| &i.stdout[..])
                .collect::<Vec<_>>()
                .concat();
            let stderr: Vec<u8> = incs
                .iter()
                .map(|i| &i.stderr[..])
                .collect::<Vec<_>>()
                .concat();
            let ends: Vec<(u32, u8)> = incs.iter().filter_map(|i| i.ended).collect();
            let none = Vec::new();
            assert_eq!(
                &stdout,
                w.app.stdout.get(id).unwrap_or(&none),
                "stdout of {id}"
            );
            assert_eq!(
                &stderr,
                w.app.stderr.get(id).unwrap_or(&none),
                "stderr of {id}"
            );
            assert_eq!(
                &ends,
                w.app.ends.get(id).unwrap_or(&Vec::new()),
                "END_REQUESTs of {id}"
            );
        }
        assert_eq!(w.drv.values.len(), w.get_values_sent, "GET_VALUES answers");
        for values in &w.drv.values {
            check_values(values, &server_config);
        }
    }
}

fn check_values(values: &Params, config: &fcgi_core::server::ServerConfig) {
    for (name, value) in values.iter() {
        let want = match name {
            b"FCGI_MAX_CONNS" => config.max_conns.to_string(),
            b"FCGI_MAX_REQS" => config.max_reqs.to_string(),
            b"FCGI_MPXS_CONNS" => u8::from(config.multiplex).to_string(),
            other => panic!("answer for {other:?}"),
        };
        assert_eq!(value, want.as_bytes());
    }
}
