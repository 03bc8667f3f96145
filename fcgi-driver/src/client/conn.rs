//! One client connection's state, shared by its driver task, the pool, the requests' body
//! feeders and their responses: the core connection and the connection's one request map.
//! Every method runs under the connection's mutex and never awaits. Dropping it (with the
//! connection) drops every request entry, queue and waker of the connection.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;
use std::io;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use fcgi_core::Params;
use fcgi_core::client::{ClientConnection, Event};

use super::error::ClientError;
use crate::stats::{Gauge, Token};
use crate::sync::{Notify, NotifyWait};

/// App status, kept stderr pieces, stderr bytes dropped.
pub(crate) type Ended = (u32, Vec<Bytes>, usize);

/// A request of the connection: its id, and a serial number that tells it apart from a later
/// request reusing the id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) id: u16,
    pub(crate) serial: u64,
}

/// The map key of a request in flight: its id (the core's events name it by id).
fn live_key(id: u16) -> u64 {
    u64::from(id)
}

/// The map key of a request that has ended while its response is still being read: its id is
/// free for the next request at once (the core may hand it out again), so the entry moves
/// out of the id range.
fn ended_key(serial: u64) -> u64 {
    ENDED | serial
}

const ENDED: u64 = 1 << 63;

/// One request, as seen from the response side: from `begin_request` until its response is
/// finished or dropped (which may be after `END_REQUEST`, once the core has given its id to
/// the next request).
#[derive(Debug)]
struct ReqState {
    serial: u64,
    stdout: VecDeque<Bytes>,
    stderr: VecDeque<Bytes>,
    stderr_kept: usize,
    stderr_dropped: usize,
    end: Option<Result<u32, ClientError>>,
    /// The response's task, while it waits.
    waker: Option<Waker>,
    /// Some response byte (stdout or stderr) has arrived.
    got_output: bool,
    /// The response was dropped while the request ran (multiplexed: it was aborted);
    /// the entry goes at `END_REQUEST`.
    orphaned: bool,
    /// Counts the entry in [`ClientStats::request_entries`](super::ClientStats).
    _live: Token,
}

impl ReqState {
    fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    fn wait(&mut self, cx: &Context<'_>) {
        match &self.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => self.waker = Some(cx.waker().clone()),
        }
    }

    fn unread(&self) -> usize {
        self.stdout.iter().map(Bytes::len).sum()
    }
}

#[derive(Debug)]
pub(crate) struct ConnShared {
    pub(crate) conn: ClientConnection,
    /// The connection's one request map: requests in flight under their id, ended ones
    /// whose response is still being read under [`ended_key`].
    requests: FxHashMap<u64, ReqState>,
    next_serial: u64,
    entries: Gauge,
    /// The driver task (one task: one slot, replaced when it changes).
    driver: Option<Waker>,
    /// Body feeders waiting for transmit room.
    room: Notify,
    /// Body feeders waiting for their body stream, told when a request ends, fails or is
    /// abandoned, or the connection dies (their request may no longer want its body).
    lifecycle: Notify,
    /// The multiplexing probe, while it waits for `GET_VALUES_RESULT`.
    probe_waker: Option<Waker>,
    values: Option<Params>,
    /// Response bytes received and not read yet (the input budget).
    buffered: usize,
    limit: usize,
    stderr_limit: usize,
    /// Why the connection is gone, once it is.
    pub(crate) dead: Option<io::ErrorKind>,
    /// Takes no new request; closes once idle.
    pub(crate) retiring: bool,
    /// Close at once (a non-multiplexed request was abandoned mid-way).
    pub(crate) kill: bool,
    pub(crate) begun: u64,
    max_begun: Option<u64>,
    pub(crate) last_used: Instant,
}

impl ConnShared {
    pub(crate) fn new(
        conn: ClientConnection,
        stderr_limit: usize,
        max_begun: Option<u64>,
        entries: Gauge,
    ) -> Self {
        let limit = conn.config().limits.max_buffered_input;
        Self {
            conn,
            requests: FxHashMap::default(),
            next_serial: 0,
            entries,
            driver: None,
            room: Notify::default(),
            lifecycle: Notify::default(),
            probe_waker: None,
            values: None,
            buffered: 0,
            limit,
            stderr_limit,
            dead: None,
            retiring: false,
            kill: false,
            begun: 0,
            max_begun,
            last_used: Instant::now(),
        }
    }

    pub(crate) fn set_driver_waker(&mut self, waker: &Waker) {
        match &self.driver {
            Some(w) if w.will_wake(waker) => {}
            _ => self.driver = Some(waker.clone()),
        }
    }

    pub(crate) fn wake_driver(&self) {
        if let Some(w) = &self.driver {
            w.wake_by_ref();
        }
    }

    /// Wakes the body feeders waiting for transmit room.
    pub(crate) fn wake_feeders(&self) {
        self.room.notify();
    }

    /// A request ended, failed or was abandoned, or the connection died: every feeder looks
    /// again at whether its request still wants its body.
    fn requests_changed(&self) {
        self.room.notify();
        self.lifecycle.notify();
    }

    pub(crate) fn has_input_room(&self) -> bool {
        self.buffered < self.limit
    }

    /// No request entry and nothing in flight.
    pub(crate) fn is_idle(&self) -> bool {
        self.requests.is_empty() && self.conn.requests_in_flight() == 0
    }

    /// Whether the pool may start a request here now.
    pub(crate) fn can_take(&self) -> bool {
        self.dead.is_none() && !self.retiring && !self.kill && self.conn.can_begin()
    }

    /// Records a request just begun with `id`.
    pub(crate) fn register(&mut self, id: u16) -> Slot {
        let serial = self.next_serial;
        self.next_serial += 1;
        self.requests.insert(
            live_key(id),
            ReqState {
                serial,
                stdout: VecDeque::new(),
                stderr: VecDeque::new(),
                stderr_kept: 0,
                stderr_dropped: 0,
                end: None,
                waker: None,
                got_output: false,
                orphaned: false,
                _live: self.entries.token(),
            },
        );
        self.begun += 1;
        self.last_used = Instant::now();
        if self.max_begun.is_some_and(|m| self.begun >= m) {
            self.retiring = true;
        }
        Slot { id, serial }
    }

    /// The map key of `slot`'s entry, if it still has one.
    fn key_of(&self, slot: Slot) -> Option<u64> {
        let live = live_key(slot.id);
        if self
            .requests
            .get(&live)
            .is_some_and(|r| r.serial == slot.serial)
        {
            return Some(live);
        }
        let ended = ended_key(slot.serial);
        self.requests.contains_key(&ended).then_some(ended)
    }

    /// The entry of `slot`, if it still has one.
    fn entry(&mut self, slot: Slot) -> Option<&mut ReqState> {
        let key = self.key_of(slot)?;
        self.requests.get_mut(&key)
    }

    /// Hands one of the core's events to the request it is about.
    pub(crate) fn dispatch(&mut self, event: Event) {
        match event {
            Event::Stdout { id, data } => {
                let len = data.len();
                if let Some(r) = self.requests.get_mut(&live_key(id)) {
                    r.got_output = true;
                    if !r.orphaned && r.end.is_none() {
                        r.stdout.push_back(data);
                        r.wake();
                        self.buffered += len;
                    }
                }
            }
            Event::Stderr { id, data } => {
                let limit = self.stderr_limit;
                if let Some(r) = self.requests.get_mut(&live_key(id)) {
                    r.got_output = true;
                    if r.orphaned || r.stderr_kept + data.len() > limit {
                        r.stderr_dropped += data.len();
                    } else {
                        r.stderr_kept += data.len();
                        r.stderr.push_back(data);
                        r.wake();
                    }
                }
            }
            Event::EndRequest {
                id,
                app_status,
                protocol_status,
            } => {
                self.last_used = Instant::now();
                self.end(
                    id,
                    ClientError::from_status(protocol_status).map_or(Ok(app_status), Err),
                );
            }
            Event::Truncated { id } => self.end(id, Err(ClientError::Truncated)),
            Event::AfterStreamEnd { id, stderr, len } => {
                crate::log::warn(
                    "the FastCGI application sent more after ending a stream; dropped",
                    &(id, if stderr { "STDERR" } else { "STDOUT" }, len),
                );
            }
            Event::Values(params) => {
                self.values = Some(params);
                if let Some(w) = self.probe_waker.take() {
                    w.wake();
                }
            }
            _ => {}
        }
    }

    /// The core ended request `id`, whose id is free for the next request from now on.
    fn end(&mut self, id: u16, outcome: Result<u32, ClientError>) {
        let Some(mut r) = self.requests.remove(&live_key(id)) else {
            return;
        };
        if !r.orphaned {
            if r.end.is_none() {
                r.end = Some(outcome);
            }
            r.wake();
            self.requests.insert(ended_key(r.serial), r);
        }
        self.requests_changed();
    }

    /// Removes the entry of `slot`, giving its unread bytes back to the budget.
    fn remove(&mut self, slot: Slot) {
        if let Some(key) = self.key_of(slot)
            && let Some(r) = self.requests.remove(&key)
        {
            self.take_budget(r.unread());
        }
    }

    fn take_budget(&mut self, n: usize) {
        let was_full = !self.has_input_room();
        self.buffered -= n;
        if was_full && self.has_input_room() {
            self.wake_driver();
        }
    }

    /// The connection is gone: every waiting request fails with `error`.
    pub(crate) fn die(&mut self, kind: io::ErrorKind, error: &ClientError) {
        if self.dead.is_none() {
            self.dead = Some(kind);
        }
        self.requests.retain(|_, r| !r.orphaned);
        for r in self.requests.values_mut() {
            if r.end.is_none() {
                r.end = Some(Err(error.duplicate()));
            }
            r.wake();
        }
        if let Some(w) = self.probe_waker.take() {
            w.wake();
        }
        // The driver task is over: its waker (which keeps the task's allocation) goes too.
        self.driver = None;
        self.requests_changed();
    }

    /// The probe stopped waiting (answered or timed out): forget its waker.
    pub(crate) fn stop_probe(&mut self) {
        self.probe_waker = None;
    }

    pub(crate) fn poll_values(&mut self, cx: &mut Context<'_>) -> Poll<Option<Params>> {
        if let Some(v) = self.values.take() {
            return Poll::Ready(Some(v));
        }
        if self.dead.is_some() {
            return Poll::Ready(None);
        }
        self.probe_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Next stdout piece, or the end (`None` = success) of the response.
    pub(crate) fn poll_stdout(
        &mut self,
        slot: Slot,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, ClientError>>> {
        let Some(r) = self.entry(slot) else {
            return Poll::Ready(Some(Err(ClientError::Truncated)));
        };
        if let Some(piece) = r.stdout.pop_front() {
            self.take_budget(piece.len());
            return Poll::Ready(Some(Ok(piece)));
        }
        match &r.end {
            Some(Ok(_)) => Poll::Ready(None),
            Some(Err(e)) => Poll::Ready(Some(Err(e.duplicate()))),
            None => {
                r.wait(cx);
                Poll::Pending
            }
        }
    }

    /// Next stderr piece received so far; `Ready(None)` once the request ended and all
    /// kept stderr was taken.
    pub(crate) fn poll_stderr(&mut self, slot: Slot, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let Some(r) = self.entry(slot) else {
            return Poll::Ready(None);
        };
        if let Some(piece) = r.stderr.pop_front() {
            return Poll::Ready(Some(piece));
        }
        if r.end.is_some() {
            return Poll::Ready(None);
        }
        r.wait(cx);
        Poll::Pending
    }

    /// Waits for `END_REQUEST`, discarding unread stdout; returns the status and the kept
    /// stderr, and forgets the request.
    pub(crate) fn poll_end(
        &mut self,
        slot: Slot,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Ended, ClientError>> {
        let Some(r) = self.entry(slot) else {
            return Poll::Ready(Err(ClientError::Truncated));
        };
        let dropped: usize = r.stdout.drain(..).map(|b| b.len()).sum();
        let result = match &r.end {
            None => {
                r.wait(cx);
                None
            }
            Some(Err(e)) => Some(Err(e.duplicate())),
            Some(Ok(status)) => Some(Ok((
                *status,
                r.stderr.drain(..).collect(),
                r.stderr_dropped,
            ))),
        };
        self.take_budget(dropped);
        match result {
            None => Poll::Pending,
            Some(result) => {
                self.release(slot);
                Poll::Ready(result)
            }
        }
    }

    pub(crate) fn got_output(&mut self, slot: Slot) -> bool {
        self.entry(slot).is_some_and(|r| r.got_output)
    }

    /// The response is done with its request: a finished request is forgotten; an
    /// unfinished one is aborted (multiplexed connection) or its connection is closed
    /// (otherwise).
    pub(crate) fn release(&mut self, slot: Slot) {
        let multiplexed = self.conn.config().max_concurrent_requests > 1;
        let Some(key) = self.key_of(slot) else {
            return;
        };
        // A request of a dead connection is over, whatever the core last knew of it.
        let in_flight = key == live_key(slot.id) && self.dead.is_none();
        let Some(r) = self.requests.get_mut(&key) else {
            return;
        };
        if !in_flight {
            self.remove(slot);
        } else if multiplexed {
            r.orphaned = true;
            let unread = r.unread();
            r.stdout.clear();
            self.take_budget(unread);
            // A request whose body failed was aborted already; a second abort is harmless.
            let _ = self.conn.abort(slot.id);
        } else {
            self.kill = true;
            self.remove(slot);
        }
        self.requests_changed();
        self.wake_driver();
    }

    /// The request's body failed on our side: the request fails with that error and is
    /// aborted (multiplexed connection) or its connection closed (otherwise) — if it is
    /// still in flight. (Once its `END_REQUEST` came, the application has answered: the
    /// answer stands, and the id may already belong to the next request.)
    pub(crate) fn fail_body(&mut self, slot: Slot, e: io::Error) {
        if !self.in_flight(slot) {
            return;
        }
        let multiplexed = self.conn.config().max_concurrent_requests > 1;
        let Some(r) = self.requests.get_mut(&live_key(slot.id)) else {
            return;
        };
        if r.end.is_none() {
            r.end = Some(Err(ClientError::Io(e)));
            r.wake();
        }
        if multiplexed {
            // The application's END_REQUEST will free the id; the failure stays recorded.
            let _ = self.conn.abort(slot.id);
        } else {
            self.kill = true;
        }
        self.requests_changed();
        self.wake_driver();
    }

    /// Whether `slot` is a request of a live connection that the core still has in flight.
    fn in_flight(&self, slot: Slot) -> bool {
        self.dead.is_none()
            && !self.kill
            && self.conn.is_in_flight(slot.id)
            && self
                .requests
                .get(&live_key(slot.id))
                .is_some_and(|r| r.serial == slot.serial)
    }

    /// Whether the request still wants its body: in flight (for the core too: its
    /// `END_REQUEST` may be parsed and not yet dispatched), not abandoned, not failed.
    pub(crate) fn wants_body(&self, slot: Slot) -> bool {
        self.in_flight(slot)
            && self
                .requests
                .get(&live_key(slot.id))
                .is_some_and(|r| !r.orphaned && r.end.is_none())
    }

    /// Registers a feeder waiting for transmit room (see [`NotifyWait`]).
    pub(crate) fn wait_room(&self, wait: &mut NotifyWait) {
        wait.arm(&self.room);
    }

    /// Registers a feeder waiting for its body stream (see [`NotifyWait`]).
    pub(crate) fn wait_lifecycle(&self, wait: &mut NotifyWait) {
        wait.arm(&self.lifecycle);
    }

    /// Registered waiters on this connection (feeders and the probe).
    pub(crate) fn waiters(&self) -> usize {
        self.room.waiters() + self.lifecycle.waiters() + usize::from(self.probe_waker.is_some())
    }
}
