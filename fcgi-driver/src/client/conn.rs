//! State shared by one client connection's driver task, the pool, the requests' feeders and
//! their responses. Every method runs under the connection's mutex and never awaits.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use fcgi_core::Params;
use fcgi_core::client::{ClientConnection, Event};

use super::error::ClientError;

/// App status, kept stderr pieces, stderr bytes dropped.
pub(crate) type Ended = (u32, Vec<Bytes>, usize);

/// One request, as seen from the response side: from `begin_request` until its response
/// is finished or dropped (which may be after the core freed its id for another request).
#[derive(Debug, Default)]
pub(crate) struct ReqState {
    /// Its request id while it is in flight.
    id: u16,
    stdout: VecDeque<Bytes>,
    stderr: VecDeque<Bytes>,
    stderr_kept: usize,
    pub(crate) stderr_dropped: usize,
    pub(crate) end: Option<Result<u32, ClientError>>,
    waker: Option<Waker>,
    /// Some response byte (stdout or stderr) has arrived.
    pub(crate) got_output: bool,
    /// The response was dropped: discard output, forget the request at its end.
    orphaned: bool,
}

#[derive(Debug)]
pub(crate) struct ConnShared {
    pub(crate) conn: ClientConnection,
    /// Requests by key (unique on this connection, never reused).
    reqs: HashMap<u64, ReqState>,
    /// Keys of the requests in flight, by request id. The core frees an id at
    /// `END_REQUEST` and hands it to the next request at once, while the previous response
    /// may still be unread: responses therefore find their state by key, not by id.
    in_flight: HashMap<u16, u64>,
    next_key: u64,
    driver: Option<Waker>,
    feeders: Vec<Waker>,
    probe_waker: Option<Waker>,
    pub(crate) values: Option<Params>,
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
    pub(crate) max_begun: Option<u64>,
    pub(crate) last_used: Instant,
}

impl ConnShared {
    pub(crate) fn new(conn: ClientConnection, stderr_limit: usize, max_begun: Option<u64>) -> Self {
        let limit = conn.config().limits.max_buffered_input;
        Self {
            conn,
            reqs: HashMap::new(),
            in_flight: HashMap::new(),
            next_key: 0,
            driver: None,
            feeders: Vec::new(),
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

    pub(crate) fn wake_feeders(&mut self) {
        for w in self.feeders.drain(..) {
            w.wake();
        }
    }

    pub(crate) fn has_input_room(&self) -> bool {
        self.buffered < self.limit
    }

    /// Requests whose response is still awaited.
    pub(crate) fn waiting(&self) -> bool {
        self.reqs.values().any(|r| r.end.is_none())
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.reqs.is_empty() && self.conn.requests_in_flight() == 0
    }

    /// Whether the pool may start a request here now.
    pub(crate) fn can_take(&self) -> bool {
        self.dead.is_none() && !self.retiring && !self.kill && self.conn.can_begin()
    }

    /// Records a request just begun with `id`; returns its key.
    pub(crate) fn register(&mut self, id: u16) -> u64 {
        let key = self.next_key;
        self.next_key += 1;
        self.reqs.insert(
            key,
            ReqState {
                id,
                ..ReqState::default()
            },
        );
        self.in_flight.insert(id, key);
        self.begun += 1;
        self.last_used = Instant::now();
        if self.max_begun.is_some_and(|m| self.begun >= m) {
            self.retiring = true;
        }
        key
    }

    /// The state of the request in flight with `id`.
    fn in_flight_mut(&mut self, id: u16) -> Option<&mut ReqState> {
        let key = self.in_flight.get(&id)?;
        self.reqs.get_mut(key)
    }

    pub(crate) fn dispatch(&mut self, event: Event) {
        match event {
            Event::Stdout { id, data } => {
                let len = data.len();
                let mut kept = false;
                if let Some(r) = self.in_flight_mut(id) {
                    r.got_output = true;
                    if !r.orphaned {
                        r.stdout.push_back(data);
                        wake(&mut r.waker);
                        kept = true;
                    }
                }
                if kept {
                    self.buffered += len;
                }
            }
            Event::Stderr { id, data } => {
                let limit = self.stderr_limit;
                if let Some(r) = self.in_flight_mut(id) {
                    r.got_output = true;
                    if r.orphaned || r.stderr_kept + data.len() > limit {
                        r.stderr_dropped += data.len();
                    } else {
                        r.stderr_kept += data.len();
                        r.stderr.push_back(data);
                        wake(&mut r.waker);
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
            Event::Values(params) => {
                self.values = Some(params);
                wake(&mut self.probe_waker);
            }
            _ => {}
        }
    }

    fn end(&mut self, id: u16, outcome: Result<u32, ClientError>) {
        // The core has freed the id: the next request may take it.
        let Some(key) = self.in_flight.remove(&id) else {
            return;
        };
        let Some(r) = self.reqs.get_mut(&key) else {
            return;
        };
        if r.orphaned {
            let r = self.reqs.remove(&key);
            self.forget(r);
        } else if r.end.is_none() {
            r.end = Some(outcome);
            wake(&mut r.waker);
        }
        self.wake_feeders();
    }

    fn forget(&mut self, r: Option<ReqState>) {
        if let Some(r) = r {
            self.buffered -= r.stdout.iter().map(Bytes::len).sum::<usize>();
        }
    }

    /// The connection is gone: every waiting request fails with `error`.
    pub(crate) fn die(&mut self, kind: io::ErrorKind, error: &ClientError) {
        if self.dead.is_none() {
            self.dead = Some(kind);
        }
        for r in self.reqs.values_mut() {
            if r.end.is_none() {
                r.end = Some(Err(error.duplicate()));
            }
            wake(&mut r.waker);
        }
        self.reqs.retain(|_, r| !r.orphaned);
        self.in_flight.clear();
        wake(&mut self.probe_waker);
        self.wake_feeders();
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
        key: u64,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, ClientError>>> {
        let was_full = !self.has_input_room();
        let Some(r) = self.reqs.get_mut(&key) else {
            return Poll::Ready(Some(Err(ClientError::Truncated)));
        };
        if let Some(piece) = r.stdout.pop_front() {
            self.buffered -= piece.len();
            if was_full && self.has_input_room() {
                self.wake_driver();
            }
            return Poll::Ready(Some(Ok(piece)));
        }
        match &r.end {
            Some(Ok(_)) => Poll::Ready(None),
            Some(Err(e)) => Poll::Ready(Some(Err(e.duplicate()))),
            None => {
                r.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Next stderr piece received so far; `Ready(None)` once the request ended and all
    /// kept stderr was taken.
    pub(crate) fn poll_stderr(&mut self, key: u64, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let Some(r) = self.reqs.get_mut(&key) else {
            return Poll::Ready(None);
        };
        if let Some(piece) = r.stderr.pop_front() {
            return Poll::Ready(Some(piece));
        }
        if r.end.is_some() {
            return Poll::Ready(None);
        }
        r.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Waits for `END_REQUEST`, discarding unread stdout; returns the status and the kept stderr.
    pub(crate) fn poll_end(
        &mut self,
        key: u64,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Ended, ClientError>> {
        let Some(r) = self.reqs.get_mut(&key) else {
            return Poll::Ready(Err(ClientError::Truncated));
        };
        let dropped: usize = r.stdout.drain(..).map(|b| b.len()).sum();
        self.buffered -= dropped;
        if dropped > 0 {
            self.wake_driver();
        }
        let Some(r) = self.reqs.get_mut(&key) else {
            return Poll::Ready(Err(ClientError::Truncated));
        };
        match &r.end {
            None => {
                r.waker = Some(cx.waker().clone());
                Poll::Pending
            }
            Some(Err(e)) => Poll::Ready(Err(e.duplicate())),
            Some(Ok(status)) => {
                let status = *status;
                let stderr = r.stderr.drain(..).collect();
                Poll::Ready(Ok((status, stderr, r.stderr_dropped)))
            }
        }
    }

    pub(crate) fn got_output(&self, key: u64) -> bool {
        self.reqs.get(&key).is_some_and(|r| r.got_output)
    }

    /// The response was dropped. A finished request is forgotten; an unfinished one is
    /// aborted (multiplexed connection) or its connection is closed (otherwise).
    pub(crate) fn abandon(&mut self, key: u64) {
        let Some(r) = self.reqs.get_mut(&key) else {
            return;
        };
        if r.end.is_some() {
            let r = self.reqs.remove(&key);
            self.forget(r);
        } else if self.conn.config().max_concurrent_requests > 1 {
            r.orphaned = true;
            let id = r.id;
            let dropped: usize = r.stdout.drain(..).map(|b| b.len()).sum();
            self.buffered -= dropped;
            // Fails only if the id is no longer in flight, which `end` rules out.
            let _ = self.conn.abort(id);
        } else {
            self.kill = true;
            let r = self.reqs.remove(&key);
            self.forget(r);
        }
        self.wake_feeders();
        self.wake_driver();
    }

    /// The request's body failed on our side: the request fails with that error and is
    /// aborted (multiplexed connection) or its connection closed (otherwise).
    pub(crate) fn fail_body(&mut self, key: u64, e: io::Error) {
        let Some(r) = self.reqs.get_mut(&key) else {
            return;
        };
        let id = r.id;
        if r.end.is_none() {
            r.end = Some(Err(ClientError::Io(e)));
            wake(&mut r.waker);
        }
        if self.conn.config().max_concurrent_requests > 1 {
            // The application's END_REQUEST will free the id; the failure stays recorded.
            let _ = self.conn.abort(id);
        } else {
            self.kill = true;
        }
        self.wake_driver();
    }

    /// Whether the request still wants its body (it is in flight and not abandoned).
    pub(crate) fn wants_body(&self, key: u64) -> bool {
        self.dead.is_none()
            && !self.kill
            && self
                .reqs
                .get(&key)
                .is_some_and(|r| !r.orphaned && r.end.is_none())
    }

    /// Registers a feeder waiting for transmit room.
    pub(crate) fn wait_room(&mut self, cx: &mut Context<'_>) {
        self.feeders.push(cx.waker().clone());
    }
}

fn wake(slot: &mut Option<Waker>) {
    if let Some(w) = slot.take() {
        w.wake();
    }
}
