//! The per-connection task: the shared [`Pump`] between a socket and a `ServerConnection`,
//! handing requests to handler tasks, plus the connection's timeouts and its part in a
//! graceful shutdown. No protocol decision is made here.

use std::io;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use fcgi_core::ProtocolStatus;
use fcgi_core::server::{Event, ServerConnection};

use super::handler::{Body, Handler, Request, Response};
use super::options::ServerOptions;
use super::registry::{Member, Standing};
use super::shared::{Cork, Shared, StreamKind, Ticket};
use super::state::ServerState;
use super::task::{CANCELLED_APP_STATUS, HandlerTask};
use crate::pump::{Alarm, Endpoint, Pump, PumpError};
use crate::runtime::{BoxFuture, Peer, Runtime, Transport};
use crate::stats::Token;
use crate::sync::{SignalWait, lock};

/// What the driver needs besides the socket and the shared state: the server's context and
/// the connection's own counters.
struct ConnContext<R, H> {
    rt: R,
    handler: Arc<H>,
    opts: Arc<ServerOptions>,
    state: Arc<ServerState>,
    shared: Arc<Mutex<Shared>>,
    peer: Peer,
    /// Requests begun on this connection.
    begun: u64,
    /// Whether a request's params have been complete yet (its handler started).
    served_first: bool,
    /// The connection's write coalescing (the one in `shared`).
    cork: Arc<Cork>,
    /// The handler run inside this task rather than spawned (see [`Driver::poll_inline`]).
    inline: Option<BoxFuture<()>>,
    /// `inline` was set and not polled yet.
    inline_fresh: bool,
    /// A handler was started in this round of the pump.
    handler_started: bool,
}

pub(crate) struct Driver<T, R, H> {
    pump: Pump<T>,
    cx: ConnContext<R, H>,
    draining: SignalWait,
    force: SignalWait,
    drained: bool,
    accepted: Instant,
    idle_since: Instant,
    alarm: Alarm,
    /// The connection's entry in the server's registry (its place under the cap).
    member: Member,
    /// Told to make room for a new connection.
    evicted: bool,
    /// The lingering close, once begun.
    closing: Option<Lingering>,
    /// The last poll held its writes back (see `poll_drive`).
    held: bool,
    /// Counts the task in [`ServerStats::connection_tasks`](super::ServerStats).
    _live: Token,
}

impl<T: Transport, R: Runtime, H: Handler> Driver<T, R, H> {
    pub(crate) fn new(
        io: T,
        peer: Peer,
        member: Member,
        rt: R,
        handler: Arc<H>,
        opts: Arc<ServerOptions>,
        state: Arc<ServerState>,
    ) -> Self {
        let shared = Shared::new(ServerConnection::new(opts.core.clone()));
        let cork = Arc::clone(&shared.cork);
        let live = state.connection_tasks.token();
        Self {
            pump: Pump::new(io),
            cx: ConnContext {
                rt,
                handler,
                shared: Arc::new(Mutex::new(shared)),
                cork,
                opts,
                state,
                peer,
                begun: 0,
                served_first: false,
                inline: None,
                inline_fresh: false,
                handler_started: false,
            },
            draining: SignalWait::default(),
            force: SignalWait::default(),
            drained: false,
            accepted: Instant::now(),
            idle_since: Instant::now(),
            alarm: Alarm::default(),
            member,
            evicted: false,
            closing: None,
            held: false,
            _live: live,
        }
    }

    /// Runs the connection to its end, then cancels whatever still runs on it.
    pub(crate) async fn run(mut self) -> io::Result<()> {
        let result = std::future::poll_fn(|cx| self.poll_drive(cx)).await;
        let kind = match &result {
            Ok(()) => io::ErrorKind::NotConnected,
            Err(e) => e.kind(),
        };
        lock(&self.cx.shared).close(kind);
        result
    }

    fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.pump.begin_poll(cx);
        let state = Arc::clone(&self.cx.state);
        // The deadline only follows the start of a shutdown: wait for it from then on.
        if self.drained && self.force.poll(&state.force, cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "shutdown deadline reached",
            )));
        }
        if self.closing.is_some() {
            // A shutdown's deadline ends a lingering close too.
            if !self.drained && self.draining.poll(&state.draining, cx).is_ready() {
                self.drained = true;
            }
            if self.drained && self.force.poll(&state.force, cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
            return self.poll_linger(cx);
        }
        let shared = Arc::clone(&self.cx.shared);
        let mut g = lock(&shared);
        g.set_driver_waker(cx.waker());
        if !self.evicted && self.member.entry.evicted.poll_wait(cx).is_ready() {
            self.evicted = true;
            if !busy(&g) {
                // Nothing of value runs here (at most a request whose params are not
                // complete): close at once, the place is already someone else's.
                return Poll::Ready(Ok(()));
            }
            // Work arrived meanwhile: it is finished (and the connection closed, lingering)
            // first.
            g.conn.close_after_active();
        }
        if !self.drained && self.draining.poll(&state.draining, cx).is_ready() {
            self.drained = true;
            g.conn.close_after_active();
            if self.force.poll(&state.force, cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "shutdown deadline reached",
                )));
            }
        }
        // Writes are batched while handler tasks of this connection still run (a multiplexed
        // connection): a handler that ends wakes this task, and writing its response at once
        // would be one write per response, each handler task's wake-up running this task
        // right after it. Instead the write waits one pass of the scheduler (this task wakes
        // itself, which puts it behind the tasks ready now), so the responses the other
        // handlers queue meanwhile leave in the same write. A connection whose only handler
        // runs inside this task writes at once.
        let held_before = std::mem::take(&mut self.held);
        if let Err(e) = self.drive_batched(cx, &mut g, held_before) {
            return Poll::Ready(Err(e));
        }
        if std::mem::take(&mut self.cx.handler_started) {
            // Busy before the handler can end: the registry must not see this connection as
            // expendable while its response is still on its way (the standing below comes
            // only after the inline handler and the writes).
            self.member.set(Standing::Busy, self.pump.now);
        }
        if self.cx.inline.is_some() {
            drop(g);
            self.poll_inline(cx);
            self.pump.tick();
            g = lock(&shared);
            // What it queued leaves now, in this poll (and input it made room for comes in).
            if let Err(e) = self.drive_batched(cx, &mut g, held_before) {
                return Poll::Ready(Err(e));
            }
            if self.cx.inline_fresh {
                // That started the next request's handler: it runs on the next poll.
                cx.waker().wake_by_ref();
            }
        }
        if g.slots.is_empty() && g.conn.active_requests() == 0 {
            if self.pump.eof() {
                g.conn.close_after_active();
            }
        } else {
            self.idle_since = self.pump.now;
        }
        if g.conn.should_close() && g.conn.transmit_len() == 0 {
            drop(g);
            if self.pump.eof() || self.cx.opts.linger_timeout.is_zero() {
                return self.pump.poll_shutdown(cx).map(Ok);
            }
            let now = self.pump.now;
            self.closing = Some(Lingering {
                shut: false,
                until: later(now, self.cx.opts.linger_timeout),
                discarded: 0,
            });
            self.member.set(Standing::Lingering, now);
            return self.poll_linger(cx);
        }
        // Busy only while a handler runs or a response is on its way: a request whose
        // params are still trickling in is nothing of value yet.
        let (standing, since) = if busy(&g) {
            (Standing::Busy, self.idle_since)
        } else if !self.cx.served_first {
            (Standing::Fresh, self.accepted)
        } else {
            (Standing::Idle, self.idle_since)
        };
        self.member.set(standing, since);
        let deadline = self.deadline(&g);
        drop(g);
        match self.alarm.poll(&self.cx.rt, cx, deadline, self.pump.now) {
            Poll::Ready(what) => Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, what))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// A round of the pump whose writes wait for the next poll when handler tasks of the
    /// connection still run and the last poll did not wait already (see `poll_drive`).
    fn drive_batched(
        &mut self,
        cx: &mut Context<'_>,
        g: &mut Shared,
        held_before: bool,
    ) -> io::Result<()> {
        let hold = !held_before
            && g.conn.transmit_len() > 0
            && handler_tasks_running(g, self.cx.inline.is_some());
        if hold && !self.held {
            self.held = true;
            cx.waker().wake_by_ref();
        }
        self.pump.hold_writes = self.held;
        let driven = self.drive_pump(cx, g);
        self.pump.hold_writes = false;
        driven
    }

    /// One round of the pump: reads, the core's events dispatched, queued output written.
    fn drive_pump(&mut self, cx: &mut Context<'_>, g: &mut Shared) -> io::Result<()> {
        let mut ep = Conn {
            g,
            cx: &mut self.cx,
            now: self.pump.now,
        };
        self.pump.drive(cx, &mut ep).map_err(|e| match e {
            PumpError::Protocol(e) => io::Error::new(io::ErrorKind::InvalidData, e),
            PumpError::Io(e) => e,
        })
    }

    /// Polls the handler that runs inside this task (the connection's lock not held: the
    /// handler takes it). A connection's first handler runs here rather than in a task of its
    /// own — one task poll per request instead of three (driver, handler, driver again), the
    /// request read, answered and written in one go; while it runs, further requests of a
    /// multiplexed connection get tasks of their own, so they run in parallel. Its wake-ups
    /// (input, transmit room, whatever it awaits) wake this task, which polls it after each
    /// round of the pump. When the connection ends, dropping it cancels it, as a spawned
    /// handler is cancelled.
    fn poll_inline(&mut self, cx: &mut Context<'_>) {
        let Some(handler) = self.cx.inline.as_mut() else {
            return;
        };
        self.cx.inline_fresh = false;
        let _corked = self.cx.cork.enter_driver();
        if handler.as_mut().poll(cx).is_ready() {
            self.cx.inline = None;
        }
    }

    /// The earliest timeout that applies now: a stalled write, an idle kept-alive
    /// connection, a request waiting for input that does not come, or a new connection that
    /// has not sent a complete request yet.
    fn deadline(&self, g: &Shared) -> Option<(Instant, &'static str)> {
        let opts = &self.cx.opts;
        let mut earliest: Option<(Instant, &'static str)> = None;
        let mut consider = |at: Instant, what| {
            if earliest.is_none_or(|(t, _)| at < t) {
                earliest = Some((at, what));
            }
        };
        if g.conn.transmit_len() > 0 {
            if let Some(since) = self.pump.stalled_since {
                consider(later(since, opts.write_timeout), "write timeout");
            }
        } else if g.slots.is_empty() {
            consider(
                later(self.idle_since, opts.keepalive_timeout),
                "keep-alive timeout",
            );
        }
        // Only while we read: with the input budget spent (a handler reading slowly), the
        // silence is ours, not the peer's.
        if !self.pump.eof() && g.conn.awaiting_input() && g.has_input_room() {
            consider(
                later(self.pump.last_read, opts.read_timeout),
                "read timeout",
            );
        }
        if !self.pump.eof() {
            if !self.cx.served_first {
                consider(
                    later(self.accepted, opts.first_request_timeout),
                    "first-request timeout",
                );
            }
            // A later request's params get as long, from its BEGIN_REQUEST: trickling them
            // in cannot keep a connection forever.
            if let Some(begun) = g
                .slots
                .values()
                .filter(|s| !s.spawned)
                .map(|s| s.begun_at)
                .min()
            {
                consider(
                    later(begun, opts.first_request_timeout),
                    "request params timeout",
                );
            }
        }
        earliest
    }

    /// The lingering close: our side shut down, the peer's bytes read and dropped until it
    /// closes too, the time is up, [`linger_bytes`](ServerOptions::linger_bytes) were
    /// dropped, or the place is needed for a new connection.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.member.entry.evicted.poll_wait(cx).is_ready() {
            return Poll::Ready(Ok(()));
        }
        let Some(l) = self.closing.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        // The timer first, so that nothing below can keep the connection past it.
        if self
            .alarm
            .poll(
                &self.cx.rt,
                cx,
                Some((l.until, "lingering close")),
                self.pump.now,
            )
            .is_ready()
        {
            return Poll::Ready(Ok(()));
        }
        if !l.shut {
            if self.pump.poll_shutdown(cx).is_pending() {
                return Poll::Pending;
            }
            l.shut = true;
        }
        while l.discarded < self.cx.opts.linger_bytes && Instant::now() < l.until {
            match self.pump.poll_discard(cx) {
                Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(n)) => l.discarded += n,
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// Whether handlers of the connection run in tasks of their own (beyond the one this task
/// runs, when `inline`).
fn handler_tasks_running(g: &Shared, inline: bool) -> bool {
    g.slots.values().filter(|s| s.spawned).count() > usize::from(inline)
}

/// Whether the connection does work of value: a handler runs, or a response is on its way.
fn busy(g: &Shared) -> bool {
    g.conn.transmit_len() > 0 || g.slots.values().any(|s| s.spawned)
}

/// `t + d`, or (for a "never" timeout like `Duration::MAX`) a year from `t`.
fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .unwrap_or_else(|| t + Duration::from_secs(365 * 24 * 3600))
}

/// A lingering close in progress.
struct Lingering {
    /// Our write side is shut down.
    shut: bool,
    until: Instant,
    discarded: usize,
}

/// The pump's view of the connection during one pass.
struct Conn<'a, R, H> {
    g: &'a mut Shared,
    cx: &'a mut ConnContext<R, H>,
    /// The pump's clock reading for this poll.
    now: Instant,
}

impl<R: Runtime, H: Handler> Endpoint for Conn<'_, R, H> {
    type Core = ServerConnection;

    fn core(&mut self) -> &mut ServerConnection {
        &mut self.g.conn
    }

    fn has_input_room(&self) -> bool {
        self.g.has_input_room()
    }

    fn after_write(&mut self) {
        self.g.wake_writers();
    }

    fn dispatch(&mut self, event: Event) {
        let g = &mut *self.g;
        let opts = &self.cx.opts;
        match event {
            Event::BeginRequest {
                id,
                role,
                keep_conn,
            } => {
                g.open_slot(
                    id,
                    role,
                    keep_conn,
                    self.now,
                    self.cx.state.request_entries.token(),
                );
                self.cx.begun += 1;
                if opts
                    .max_requests_per_connection
                    .is_some_and(|max| self.cx.begun >= max)
                {
                    g.conn.close_after_active();
                }
            }
            Event::Params { id, params } => self.start_handler(id, params),
            Event::Stdin { id, data } => {
                g.push_input(id, StreamKind::Stdin, Some(data), opts.max_stdin_bytes);
            }
            Event::StdinEnd { id } => g.push_input(id, StreamKind::Stdin, None, None),
            Event::Data { id, data } => {
                g.push_input(id, StreamKind::Data, Some(data), opts.max_data_bytes);
            }
            Event::DataEnd { id } => g.push_input(id, StreamKind::Data, None, None),
            // Aborted before its handler started: end it here (a running handler is
            // cancelled, and its task ends the request).
            Event::Abort { id } if g.abort(id) == Some(false) => {
                g.finish(id, CANCELLED_APP_STATUS, ProtocolStatus::RequestComplete);
            }
            // The core ended the request itself (params over the limit): its entry goes.
            Event::Rejected { id, .. } => g.rejected(id),
            _ => {}
        }
    }
}

impl<R: Runtime, H: Handler> Conn<'_, R, H> {
    /// The request's params are complete: admit it and spawn its handler.
    fn start_handler(&mut self, id: u16, params: fcgi_core::Params) {
        let g = &mut *self.g;
        let cx = &mut *self.cx;
        if !cx.state.try_acquire_request(cx.opts.max_requests) {
            g.finish(id, 0, ProtocolStatus::Overloaded);
            return;
        }
        let Some(slot) = g.slots.get_mut(&id) else {
            cx.state.release_request();
            return;
        };
        slot.spawned = true;
        cx.served_first = true;
        cx.handler_started = true;
        let role = slot.role;
        let ticket = Ticket {
            id,
            serial: slot.serial,
        };
        let body = |kind, has: bool| Body {
            shared: has.then(|| Arc::clone(&cx.shared)),
            ticket,
            kind,
        };
        let request = Request {
            id,
            role,
            keep_conn: slot.keep_conn,
            params,
            peer: cx.peer.clone(),
            stdin: body(StreamKind::Stdin, role.reads_stdin()),
            data: body(StreamKind::Data, role.reads_data()),
        };
        let response = Response {
            shared: Arc::clone(&cx.shared),
            ticket,
        };
        let task = HandlerTask {
            shared: Arc::clone(&cx.shared),
            cork: Arc::clone(&g.cork),
            state: Arc::clone(&cx.state),
            ticket,
            done: false,
            _live: cx.state.handler_tasks.token(),
        };
        let span = crate::log::request_span(id, &role);
        let work: BoxFuture<()> = Box::pin(crate::log::in_span(
            span,
            task.run(Arc::clone(&cx.handler), request, response),
        ));
        // The first handler runs in the connection's task (see `Driver::poll_inline`); one
        // started while it still runs gets a task of its own.
        if cx.inline.is_none() {
            cx.inline = Some(work);
            cx.inline_fresh = true;
        } else {
            cx.rt.spawn(work);
        }
    }
}
