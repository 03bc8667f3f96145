//! A `ClientConnection` with a few requests begun, fed arbitrary bytes "from the
//! application", with a simulated web server reacting to its events.
//!
//! Input: 8 prefix bytes, then the bytes.
//!
//! | byte | bits | meaning |
//! | --- | --- | --- |
//! | 0 | 0-2 | `max_concurrent_requests`: 1, 1, 2, 3, 4, 8, 64, 65535 |
//! | 0 | 3 | no padding (else 8-byte alignment) |
//! | 0 | 4 | lazy caller: polls events only now and then |
//! | 0 | 5 | slow socket: writes only part of the output now and then |
//! | 0 | 6 | reactive caller: may begin a request between two polled events, and after draining events continues requests and begins new ones |
//! | 0 | 7 | send a `GET_VALUES` first |
//! | 1 | 0-1 | requests begun before any input (1-4) |
//! | 1 | 2 | random roles (else the first request is a Responder) |
//! | 1 | 3 | keep-conn on the first request |
//! | 2 | 0-2, 3-5 | `max_params_bytes`, `max_buffered_input` selectors (see `conf`) |
//! | 3 | 0-2 | `max_buffered_output` selector |
//! | 3 | 3-5 | how the input is split (see `Rng::chunk_len`) |
//! | 3 | 6-7 | how output is written: 0 `poll_transmit`, 1 chunks + advance, else mixed |
//! | 4-7 | | salt: split points and the caller's choices come from a hash of the whole input |
//!
//! Checked: no panic; every command's result matches the observable state (including
//! deliberate misuse: wrong phase, unknown id); input never queues output; `handle_input`
//! consumes everything or stops only under back-pressure; queued events stay within the
//! limit plus one record; events only for requests in flight; after EOF every request begun
//! ended exactly once (`EndRequest` or `Truncated`) and the connection wants to close;
//! everything written is well-framed, phase-ordered, and carries exactly what was sent.
#![no_main]

use bytes::BytesMut;
use fcgi_core::Error;
use fcgi_core::client::{self, ClientConnection};
use fcgi_core::record::Role;
use fcgi_fuzz::drive::{
    ClientDriver, EVENT_COST, MAX_RECORD_CONTENT, Phase, check_input_error, client_event_cost,
    write_all, write_out,
};
use fcgi_fuzz::rng::Rng;
use fcgi_fuzz::wire::check_client_wire;
use fcgi_fuzz::{conf, split_prefix};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| run(data));

const CONCURRENCY: [u16; 8] = [1, 1, 2, 3, 4, 8, 64, 65535];
const NAMES: [&[u8]; 4] = [
    b"FCGI_MAX_CONNS",
    b"FCGI_MAX_REQS",
    b"FCGI_MPXS_CONNS",
    b"X_UNKNOWN",
];

struct Harness {
    conn: ClientConnection,
    drv: ClientDriver,
    rng: Rng,
    out: Vec<u8>,
    pop_mode: u8,
    tag: u32,
    /// Bytes of large payloads still allowed in this run (keeps executions fast).
    big_left: usize,
    begun: usize,
    event_base: usize,
    reactive: bool,
}

impl Harness {
    fn payload(&mut self) -> bytes::Bytes {
        self.tag += 1;
        let len = match self.rng.below(30) {
            0 => 0,
            1 => self.rng.range(2040, 3000),
            2 => self.rng.range(65_520, 66_000),
            _ => self.rng.range(1, 100),
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

    fn param(&mut self, id: u16) {
        self.tag += 1;
        let name = format!("HTTP_X_{}", self.tag).into_bytes();
        let len = match self.rng.below(60) {
            0 => 70_000,
            1..=6 => self.rng.range(128, 400),
            _ => self.rng.below(40),
        };
        let len = self.budget(len);
        let value = Rng::payload(self.tag, len);
        self.drv.param(&mut self.conn, id, &name, &value);
    }

    /// One step of request `id` in its current phase.
    fn advance(&mut self, id: u16) {
        if !self.conn.is_in_flight(id) {
            return;
        }
        let phase = self.drv.incs[&id].last().map(|i| i.phase);
        match phase {
            Some(Phase::Params) => {
                for _ in 0..self.rng.below(4) {
                    self.param(id);
                }
                if self.rng.below(3) != 0 {
                    self.drv.end_params(&mut self.conn, id);
                }
            }
            Some(Phase::Stdin | Phase::Data) => {
                let data = phase == Some(Phase::Data);
                if self.rng.one_in(2) {
                    let bytes = self.payload();
                    self.drv.stream(&mut self.conn, data, id, bytes);
                }
                if self.rng.below(3) != 0 {
                    self.drv.end_stream(&mut self.conn, data, id);
                }
            }
            _ => {}
        }
        if self.rng.one_in(25) {
            self.drv.abort(&mut self.conn, id);
        }
    }

    /// A call that may well be misuse: random id, random operation.
    fn misuse(&mut self) {
        let id = self.rng.below(5) as u16;
        match self.rng.below(7) {
            0 => self.param(id),
            1 => {
                self.drv.end_params(&mut self.conn, id);
            }
            2 | 3 => {
                let bytes = self.payload();
                self.drv
                    .stream(&mut self.conn, self.rng.one_in(2), id, bytes);
            }
            4 | 5 => {
                self.drv.end_stream(&mut self.conn, self.rng.one_in(2), id);
            }
            _ => {
                self.drv.abort(&mut self.conn, id);
            }
        }
    }

    fn begin(&mut self, role: Role, keep_conn: bool) -> Option<u16> {
        let id = self.drv.begin(&mut self.conn, role, keep_conn)?;
        self.begun += 1;
        Some(id)
    }

    fn random_role(&mut self) -> Role {
        let bits = self.rng.below(4) as u8;
        let extra = self.rng.below(1000) as u16;
        conf::role(bits, extra)
    }

    /// The caller's reaction once every event was seen.
    fn react(&mut self) {
        let ids: Vec<u16> = self.drv.in_flight.iter().copied().collect();
        for id in ids {
            if self.rng.one_in(6) {
                self.advance(id);
            }
        }
        if self.rng.one_in(8) {
            self.misuse();
        }
        if self.begun < 12 && self.rng.one_in(2) {
            let role = self.random_role();
            let keep = !self.rng.one_in(4);
            if let Some(id) = self.begin(role, keep) {
                self.advance(id);
            }
        }
    }

    fn drain_events(&mut self) {
        let mut held = 0;
        while let Some(ev) = self.conn.poll_event() {
            held += client_event_cost(&ev);
            self.drv.observe(&ev);
            // A caller may start a request in the middle of the queue (say, as soon as one
            // ends, or whenever a slot looks free): the id it gets must not be one whose end
            // is still queued, or that queued end would be taken for the new request's.
            let eager = matches!(ev, client::Event::EndRequest { .. }) || self.rng.one_in(4);
            if self.reactive && eager && self.begun < 12 && self.rng.one_in(2) {
                let keep = !self.rng.one_in(4);
                if let Some(id) = self.begin(Role::Responder, keep) {
                    self.advance(id);
                }
            }
        }
        let bound = self.event_base + EVENT_COST * self.begun;
        assert!(
            held <= bound,
            "connection held {held} bytes of events, bound {bound}"
        );
    }

    fn write_some(&mut self, all: bool) {
        if all {
            write_all(&mut self.conn, &mut self.out);
            return;
        }
        let use_pop = match self.pop_mode {
            0 => true,
            1 => false,
            _ => self.rng.one_in(2),
        };
        let budget = self.rng.range(1, 5000);
        write_out(&mut self.conn, budget, use_pop, &mut self.out);
    }
}

fn run(data: &[u8]) {
    let (p, stream) = split_prefix::<8>(data);
    let padding = conf::padding(p[0] & 8 != 0);
    let lazy = p[0] & 0x10 != 0;
    let slow = p[0] & 0x20 != 0;
    let reactive = p[0] & 0x40 != 0;
    let limits = conf::limits(p[2], p[2] >> 3, p[3]);
    let config = conf::client_config(CONCURRENCY[usize::from(p[0] & 7)], limits, padding);
    let mut rng = Rng::new(data);
    let chunks = rng.chunks((p[3] >> 3) & 7, stream.len());

    let mut h = Harness {
        conn: ClientConnection::new(config.clone()),
        drv: ClientDriver::new(padding),
        rng,
        out: Vec::new(),
        pop_mode: p[3] >> 6,
        tag: 0,
        big_left: 200_000,
        begun: 0,
        event_base: limits.max_buffered_input.saturating_sub(1)
            + MAX_RECORD_CONTENT.max(limits.max_params_bytes)
            + EVENT_COST,
        reactive,
    };
    assert_eq!(h.conn.config(), &config);
    assert!(h.conn.wants_input() && !h.conn.should_close());

    if p[0] & 0x80 != 0 {
        let mask = h.rng.below(16);
        let names: Vec<&[u8]> = (0..4)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| NAMES[i])
            .collect();
        h.drv.get_values(&mut h.conn, &names);
    }
    for i in 0..=(p[1] & 3) {
        let role = if i == 0 && p[1] & 4 == 0 {
            Role::Responder
        } else {
            h.random_role()
        };
        let keep = if i == 0 {
            p[1] & 8 != 0
        } else {
            h.rng.one_in(2)
        };
        if let Some(id) = h.begin(role, keep) {
            h.advance(id);
        }
    }

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
            let queued = h.conn.transmit_len();
            match h.conn.handle_input(&mut pending) {
                Ok(()) => {
                    assert!(
                        pending.is_empty() || !h.conn.wants_input(),
                        "handle_input stopped early without back-pressure"
                    );
                }
                Err(e) => check_input_error(e, &mut latched),
            }
            assert_eq!(h.conn.transmit_len(), queued, "input queued output");
            if latched.is_some() {
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
                if reactive {
                    h.react();
                }
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

    // The application closes the connection.
    h.drain_events();
    let in_flight = h.conn.requests_in_flight();
    assert_eq!(in_flight, h.drv.in_flight.len(), "requests_in_flight");
    for id in &h.drv.in_flight {
        assert!(h.conn.is_in_flight(*id));
    }
    h.drv.eof = true;
    h.conn.handle_eof();
    h.conn.handle_eof();
    assert!(!h.conn.wants_input() && !h.conn.can_begin());
    let mut more = BytesMut::from(&b"\x01\x06\x00\x01\x00\x00\x00\x00"[..]);
    match h.conn.handle_input(&mut more) {
        Ok(()) => assert_eq!(more.len(), 8, "input consumed after EOF"),
        Err(e) => assert_eq!(Some(e), latched),
    }
    h.drain_events();
    h.drv.check_all_ended(&h.conn);
    assert!(h.conn.should_close(), "idle after EOF but not closing");
    assert!(h.drv.begin(&mut h.conn, Role::Responder, true).is_none());

    h.write_some(true);
    let wire = check_client_wire(&h.out, padding);
    h.drv.check_wire(&wire);
}
