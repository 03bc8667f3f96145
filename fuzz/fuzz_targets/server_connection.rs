//! A `ServerConnection` fed arbitrary bytes, with a simulated application reacting to its
//! events.
//!
//! Input: 8 prefix bytes, then the bytes "from the web server".
//!
//! | byte | bits | meaning |
//! | --- | --- | --- |
//! | 0 | 0 | multiplex |
//! | 0 | 1-3 | roles (0 = Responder; else bit 1 Responder, 2 Authorizer, 3 Filter) |
//! | 0 | 4 | no padding (else 8-byte alignment) |
//! | 0 | 5 | `handle_eof` at the end |
//! | 0 | 6 | lazy application: polls events only now and then |
//! | 0 | 7 | slow socket: writes only part of the output now and then |
//! | 1 | all | `max_requests_per_connection` |
//! | 2 | 0-2, 3-5 | `max_params_bytes`, `max_buffered_input` selectors (see `conf`) |
//! | 3 | 0-2 | `max_buffered_output` selector |
//! | 3 | 3-5 | how the input is split (see `Rng::chunk_len`) |
//! | 3 | 6-7 | how output is written: 0 `poll_transmit`, 1 chunks + advance, else mixed |
//! | 4-7 | | salt: split points and the application's choices come from a hash of the whole input |
//!
//! The application answers `Params`, `StdinEnd`, `DataEnd` and `Abort` with output and
//! `end_request`, sometimes writes `STDERR`, sometimes ends early. Checked: no panic; every
//! command's result matches the observable state; `handle_input` consumes everything or
//! stops only under back-pressure, and once events and output are drained it takes input
//! again; queued events and output stay within the limits plus one record (plus what the
//! application may still write or end when the queue is full); a fatal error is latched;
//! `handle_eof` reports a truncated record exactly when the input stopped inside one; after
//! EOF every request is aborted and, once the application ends them, the connection wants to
//! close; everything written is well-framed and carries exactly what the application sent.
#![no_main]

use bytes::BytesMut;
use fcgi_core::record::{ProtocolStatus, Role};
use fcgi_core::server::{Event, ServerConnection};
use fcgi_core::{Error, Malformed};
use fcgi_fuzz::drive::{
    EVENT_COST, MAX_RECORD_CONTENT, ServerApp, check_input_error, server_event_cost, write_all,
    write_out,
};
use fcgi_fuzz::rng::Rng;
use fcgi_fuzz::wire::{check_server_wire, parse_records, stream_wire_len};
use fcgi_fuzz::{conf, split_prefix};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| run(data));

/// Largest single write of the simulated application.
const MAX_WRITE: usize = 66_000;

struct Harness {
    conn: ServerConnection,
    app: ServerApp,
    rng: Rng,
    out: Vec<u8>,
    pop_mode: u8,
    tag: u32,
    /// Bytes of large payloads still allowed in this run (keeps executions fast).
    big_left: usize,
    /// Bound on the events held by the connection at any time.
    event_bound: usize,
    /// Bound on the transmit queue at any time.
    output_bound: usize,
}

impl Harness {
    fn payload(&mut self) -> bytes::Bytes {
        self.tag += 1;
        let len = match self.rng.below(40) {
            0 => 0,
            1..=3 => self.rng.range(2040, 3000),
            4 => self.rng.range(65_520, MAX_WRITE),
            _ => self.rng.range(1, 120),
        };
        Rng::payload(self.tag, self.budget(len))
    }

    /// `len`, or a short length once the run's budget for large payloads is spent.
    fn budget(&mut self, len: usize) -> usize {
        if len <= 1000 {
            len
        } else if self.big_left >= len {
            self.big_left -= len;
            len
        } else {
            self.rng.range(1, 100)
        }
    }

    fn write(&mut self, stderr: bool, id: u16) {
        let data = self.payload();
        let conn = &mut self.conn;
        self.app.send(conn, stderr, id, data);
        self.check_output_bound();
    }

    fn end(&mut self, id: u16) {
        let status = if self.rng.one_in(4) {
            ProtocolStatus::from(self.rng.below(6) as u8)
        } else {
            ProtocolStatus::RequestComplete
        };
        let app_status = if self.rng.one_in(2) {
            0
        } else {
            self.rng.next_u64() as u32
        };
        self.app.end(&mut self.conn, id, app_status, status);
        self.check_output_bound();
    }

    fn check_output_bound(&self) {
        assert!(
            self.conn.transmit_len() <= self.output_bound,
            "transmit queue {} beyond bound {}",
            self.conn.transmit_len(),
            self.output_bound
        );
    }

    /// The application's reaction to one event.
    fn react(&mut self, ev: &Event) {
        match *ev {
            Event::Params { id, .. } => {
                if self.rng.one_in(2) {
                    self.write(false, id);
                }
                if self.rng.one_in(5) {
                    self.write(true, id);
                }
                if self.app.roles.get(&id) == Some(&Role::Authorizer) || self.rng.one_in(5) {
                    self.end(id);
                }
            }
            Event::Stdin { id, .. } | Event::Data { id, .. } => {
                if self.rng.one_in(8) {
                    self.write(false, id);
                }
                if self.rng.one_in(40) {
                    self.end(id);
                }
            }
            Event::StdinEnd { id } => {
                self.write(false, id);
                if self.rng.one_in(4) {
                    self.write(true, id);
                }
                if self.app.roles.get(&id) != Some(&Role::Filter) || self.rng.one_in(8) {
                    self.end(id);
                }
            }
            Event::DataEnd { id } => {
                self.write(false, id);
                self.end(id);
            }
            Event::Abort { id } => {
                if self.rng.one_in(3) {
                    let stderr = self.rng.one_in(2);
                    self.write(stderr, id);
                }
                self.end(id);
            }
            _ => {
                if self.rng.one_in(300) {
                    self.conn.shutdown();
                    assert_eq!(self.conn.should_close(), self.conn.active_requests() == 0);
                }
                if self.rng.one_in(300) {
                    self.conn.close_after_active();
                    assert_eq!(self.conn.should_close(), self.conn.active_requests() == 0);
                }
            }
        }
    }

    /// Polls every queued event (checking how much they held) and reacts to each.
    fn drain_events(&mut self) {
        let mut held = 0;
        while let Some(ev) = self.conn.poll_event() {
            held += server_event_cost(&ev);
            self.app.observe(&ev);
            self.react(&ev);
        }
        assert!(
            held <= self.event_bound,
            "connection held {held} bytes of events, bound {}",
            self.event_bound
        );
    }

    fn write_some(&mut self, all: bool) {
        let use_pop = match self.pop_mode {
            0 => true,
            1 => false,
            _ => self.rng.one_in(2),
        };
        if all {
            write_all(&mut self.conn, &mut self.out);
        } else {
            let budget = self.rng.range(1, 5000);
            write_out(&mut self.conn, budget, use_pop, &mut self.out);
        }
    }
}

fn run(data: &[u8]) {
    let (p, stream) = split_prefix::<8>(data);
    let multiplex = p[0] & 1 != 0;
    let padding = conf::padding(p[0] & 0x10 != 0);
    let final_eof = p[0] & 0x20 != 0;
    let lazy = p[0] & 0x40 != 0;
    let slow = p[0] & 0x80 != 0;
    let limits = conf::limits(p[2], p[2] >> 3, p[3]);
    let config = conf::server_config(
        multiplex,
        u16::from(p[1]),
        conf::role_set(p[0] >> 1),
        limits,
        padding,
    );
    let concurrent = usize::from(config.concurrent_requests());
    let mut rng = Rng::new(data);
    let chunks = rng.chunks((p[3] >> 3) & 7, stream.len());

    let biggest_event = MAX_RECORD_CONTENT.max(limits.max_params_bytes) + EVENT_COST;
    let mut h = Harness {
        conn: ServerConnection::new(config.clone()),
        app: ServerApp::new(padding),
        rng,
        out: Vec::new(),
        pop_mode: p[3] >> 6,
        tag: 0,
        big_left: 200_000,
        event_bound: limits.max_buffered_input.saturating_sub(1)
            + biggest_event
            + EVENT_COST * concurrent,
        // One record accepted below the cap, one application write, and the `end_request`s
        // of every active request (allowed on a full queue so that requests can finish).
        output_bound: limits.max_buffered_output
            + 128
            + stream_wire_len(MAX_WRITE, padding)
            + 32 * (concurrent + 1),
    };
    assert_eq!(h.conn.config(), &config);
    assert!(h.conn.wants_input() && !h.conn.should_close());

    let mut pending = BytesMut::new();
    let mut latched: Option<Error> = None;
    let mut fed = 0;
    'feed: for n in chunks {
        pending.extend_from_slice(&stream[fed..fed + n]);
        fed += n;
        // Whether the connection's events and output were all drained since its last
        // `handle_input`: from then on it must take at least one byte each round (a round
        // without progress would be a deadlock, and this loop could spin for ever).
        let mut drained = false;
        loop {
            let before = pending.len();
            match h.conn.handle_input(&mut pending) {
                Ok(()) => {
                    assert!(latched.is_none(), "handle_input Ok after a fatal error");
                    assert!(
                        pending.is_empty() || !h.conn.wants_input(),
                        "handle_input stopped early without back-pressure"
                    );
                }
                Err(e) => check_input_error(e, &mut latched),
            }
            assert!(pending.len() <= before);
            h.check_output_bound();
            if latched.is_some() {
                // The adapter stops reading; call once more to see the error is latched.
                let e = h
                    .conn
                    .handle_input(&mut pending)
                    .expect_err("latched error");
                check_input_error(e, &mut latched);
                assert!(!h.conn.wants_input());
                break 'feed;
            }
            assert!(
                !drained || pending.len() < before,
                "no progress on input: {before} bytes pending, events and output drained"
            );
            let stuck = !pending.is_empty();
            if stuck || !lazy || h.rng.one_in(3) {
                h.drain_events();
            }
            if stuck || !slow || h.rng.one_in(2) {
                h.write_some(stuck || !slow);
            }
            if pending.is_empty() {
                break;
            }
            // Stuck: every event was polled and all output written just above.
            drained = true;
            assert!(
                h.conn.wants_input(),
                "drained but the connection takes no input"
            );
        }
    }

    // The end of the input: EOF (always after a fatal error, as an adapter would close).
    h.drain_events();
    if final_eof || latched.is_some() {
        let consumed = fed - pending.len();
        let r = h.conn.handle_eof();
        if latched.is_none() {
            let at_boundary = parse_records(&stream[..consumed]).at_boundary;
            let want = if at_boundary {
                Ok(())
            } else {
                Err(Error::Malformed(Malformed::TruncatedRecord))
            };
            assert_eq!(r, want, "handle_eof after {consumed} bytes");
        }
        assert!(!h.conn.wants_input());
        assert_eq!(h.conn.handle_eof(), Ok(()), "second handle_eof");
        h.drain_events();
        assert_eq!(
            h.conn.active_requests(),
            0,
            "a request survived EOF and its Abort"
        );
        assert!(h.conn.should_close(), "idle after EOF but not closing");
    } else {
        // Drive to idle: the application ends whatever is still running.
        let ids: Vec<u16> = h.app.roles.keys().copied().collect();
        for id in ids {
            if h.conn.is_active(id) {
                h.end(id);
            }
        }
        assert_eq!(h.conn.active_requests(), 0);
        h.drain_events();
    }
    h.write_some(true);
    assert_eq!(h.conn.transmit_len(), 0);

    let wire = check_server_wire(&h.out, padding);
    h.app.check_wire(&wire);
    for answer in &wire.values {
        let mut last = None;
        for (name, value) in answer {
            let (rank, want) = match &name[..] {
                b"FCGI_MAX_CONNS" => (0, config.max_conns.to_string()),
                b"FCGI_MAX_REQS" => (1, config.max_reqs.to_string()),
                b"FCGI_MPXS_CONNS" => (2, u8::from(multiplex).to_string()),
                other => panic!("GET_VALUES_RESULT with unasked-for name {other:?}"),
            };
            assert_eq!(value, want.as_bytes(), "value of {name:?}");
            assert!(last < Some(rank), "duplicate or out-of-order answer");
            last = Some(rank);
        }
    }
    // Types the server answered as unknown were never ones it understands.
    for t in &wire.unknown_types {
        assert!(*t != 9, "GET_VALUES answered with UNKNOWN_TYPE");
    }
}
