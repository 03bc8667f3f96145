//! The per-connection task: a read/write pump between a socket and a `ServerConnection`,
//! dispatching events to handler tasks. No protocol decision is made here.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::BytesMut;
use fcgi_core::ProtocolStatus;
use fcgi_core::server::{Event, ServerConnection};

use super::handler::{Body, Handler, Request, Response};
use super::options::ServerOptions;
use super::shared::{Shared, StreamKind};
use super::state::ServerState;
use crate::pump::{Alarm, WriteState};
use crate::runtime::{Peer, Runtime, Transport};
use crate::sync::{Flag, lock};

/// Application status reported for a request whose handler was cancelled (abort, closed
/// connection, shutdown deadline) or panicked: what a shell reports for a process killed by
/// SIGTERM (128 + 15).
pub const CANCELLED_APP_STATUS: u32 = 143;

const READ_CHUNK: usize = 64 * 1024;

pub(crate) struct Driver<T, R, H> {
    io: T,
    rt: R,
    handler: Arc<H>,
    opts: Arc<ServerOptions>,
    state: Arc<ServerState>,
    shared: Arc<Mutex<Shared>>,
    peer: Peer,
    input: BytesMut,
    eof: bool,
    draining: bool,
    begun: u64,
    last_read: Instant,
    writes: WriteState,
    idle_since: Instant,
    alarm: Alarm,
}

impl<T: Transport, R: Runtime, H: Handler> Driver<T, R, H> {
    pub(crate) fn new(
        io: T,
        peer: Peer,
        rt: R,
        handler: Arc<H>,
        opts: Arc<ServerOptions>,
        state: Arc<ServerState>,
    ) -> Self {
        let conn = ServerConnection::new(opts.core.clone());
        let now = Instant::now();
        Self {
            io,
            rt,
            handler,
            shared: Arc::new(Mutex::new(Shared::new(conn))),
            opts,
            state,
            peer,
            input: BytesMut::new(),
            eof: false,
            draining: false,
            begun: 0,
            last_read: now,
            writes: WriteState::new(),
            idle_since: now,
            alarm: Alarm::default(),
        }
    }

    /// Runs the connection to its end, then cancels whatever still runs on it.
    pub(crate) async fn run(mut self) -> io::Result<()> {
        let result = std::future::poll_fn(|cx| self.poll_drive(cx)).await;
        let kind = match &result {
            Ok(()) => io::ErrorKind::NotConnected,
            Err(e) => e.kind(),
        };
        lock(&self.shared).close(kind);
        result
    }

    fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.state.force.poll_wait(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "shutdown deadline reached",
            )));
        }
        let shared = Arc::clone(&self.shared);
        let mut g = lock(&shared);
        g.set_driver_waker(cx.waker());
        if !self.draining && self.state.draining.poll_wait(cx).is_ready() {
            self.draining = true;
            g.conn.close_after_active();
        }
        loop {
            let mut progress = false;
            // 1. Feed buffered input, as far as both budgets allow.
            if !self.input.is_empty() && g.conn.wants_input() && g.has_input_room() {
                let before = self.input.len();
                g.conn
                    .handle_input(&mut self.input)
                    .map_err(protocol_error)?;
                progress |= self.input.len() != before;
            }
            // 2. Hand events to handlers.
            while g.has_input_room() {
                let Some(event) = g.conn.poll_event() else {
                    break;
                };
                self.dispatch(&mut g, event);
                progress = true;
            }
            // 3. Read more only once the core took everything we had.
            if !self.eof && self.input.is_empty() && g.conn.wants_input() && g.has_input_room() {
                self.input.reserve(READ_CHUNK);
                match self.io.poll_read_buf(cx, &mut self.input) {
                    Poll::Ready(Ok(0)) => {
                        self.eof = true;
                        // A record cut in half is worth a log line, not more: the requests
                        // are aborted either way.
                        let _ = g.conn.handle_eof();
                        progress = true;
                    }
                    Poll::Ready(Ok(_)) => {
                        self.last_read = Instant::now();
                        progress = true;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {}
                }
            }
            // 4. Write everything queued, in as few syscalls as the socket allows.
            progress |= self.writes.flush(&mut self.io, cx, &mut g.conn)?;
            if g.conn.send_capacity() > 0 {
                g.wake_writers();
            }
            if !progress {
                break;
            }
        }
        if g.slots.is_empty() && g.conn.active_requests() == 0 {
            if self.eof {
                g.conn.close_after_active();
            }
        } else {
            self.idle_since = Instant::now();
        }
        if g.conn.should_close() && g.conn.transmit_len() == 0 {
            drop(g);
            return match self.io.poll_shutdown(cx) {
                Poll::Ready(_) => Poll::Ready(Ok(())),
                Poll::Pending => Poll::Pending,
            };
        }
        let deadline = self.deadline(&g);
        drop(g);
        self.poll_timer(cx, deadline)
    }

    /// The one timeout that applies now: a stalled write, an idle kept-alive connection, or a
    /// request waiting for input that does not come.
    fn deadline(&self, g: &Shared) -> Option<(Instant, &'static str)> {
        if g.conn.transmit_len() > 0 {
            let since = self.writes.stalled_since?;
            return Some((since + self.opts.write_timeout, "write timeout"));
        }
        if g.slots.is_empty() {
            return Some((
                self.idle_since + self.opts.keepalive_timeout,
                "keep-alive timeout",
            ));
        }
        if !self.eof && g.slots.values().any(|s| !s.input_done) {
            return Some((self.last_read + self.opts.read_timeout, "read timeout"));
        }
        None
    }

    fn poll_timer(
        &mut self,
        cx: &mut Context<'_>,
        deadline: Option<(Instant, &'static str)>,
    ) -> Poll<io::Result<()>> {
        let Some((at, what)) = deadline else {
            self.alarm.clear();
            return Poll::Pending;
        };
        if Instant::now() >= at {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, what)));
        }
        self.alarm.set(&self.rt, cx, at);
        Poll::Pending
    }

    fn dispatch(&mut self, g: &mut Shared, event: Event) {
        match event {
            Event::BeginRequest {
                id,
                role,
                keep_conn,
            } => {
                g.open_slot(id, role, keep_conn);
                self.begun += 1;
                if self
                    .opts
                    .max_requests_per_connection
                    .is_some_and(|max| self.begun >= max)
                {
                    g.conn.close_after_active();
                }
            }
            Event::Params { id, params } => {
                if !self.state.try_acquire_request(self.opts.max_requests) {
                    g.finish(id, 0, ProtocolStatus::Overloaded);
                    return;
                }
                let Some(slot) = g.slots.get_mut(&id) else {
                    self.state.release_request();
                    return;
                };
                slot.spawned = true;
                let role = slot.role;
                if role == fcgi_core::Role::Authorizer {
                    slot.input_done = true;
                }
                let request = Request {
                    id,
                    role,
                    keep_conn: slot.keep_conn,
                    params,
                    peer: self.peer.clone(),
                    stdin: self.body(id, role, StreamKind::Stdin),
                    data: self.body(id, role, StreamKind::Data),
                };
                let response = Response {
                    shared: Arc::clone(&self.shared),
                    id,
                };
                let task = HandlerTask {
                    shared: Arc::clone(&self.shared),
                    state: Arc::clone(&self.state),
                    id,
                    done: false,
                };
                let abort = Arc::clone(&slot.abort);
                let handler = Arc::clone(&self.handler);
                let shared = Arc::clone(&self.shared);
                let cork = Arc::clone(&g.cork);
                let span = crate::log::request_span(id, &role);
                self.rt
                    .spawn(Box::pin(crate::log::in_span(span, async move {
                        let mut run = std::pin::pin!(task.run(handler, request, response, abort));
                        std::future::poll_fn(|cx| {
                            let _corked = cork.enter(&shared);
                            run.as_mut().poll(cx)
                        })
                        .await;
                    })));
            }
            Event::Stdin { id, data } => {
                g.push_input(id, StreamKind::Stdin, Some(data), self.opts.max_stdin_bytes);
            }
            Event::StdinEnd { id } => g.push_input(id, StreamKind::Stdin, None, None),
            Event::Data { id, data } => {
                g.push_input(id, StreamKind::Data, Some(data), self.opts.max_data_bytes);
            }
            Event::DataEnd { id } => g.push_input(id, StreamKind::Data, None, None),
            Event::Abort { id } => {
                let spawned = g.slots.get(&id).map(|s| {
                    s.abort.set();
                    s.spawned
                });
                if spawned == Some(false) {
                    // Aborted before its handler started: end it here.
                    g.finish(id, CANCELLED_APP_STATUS, ProtocolStatus::RequestComplete);
                }
            }
            Event::Rejected { .. } => {}
            _ => {}
        }
    }

    fn body(&self, id: u16, role: fcgi_core::Role, kind: StreamKind) -> Body {
        let has_stream = match kind {
            StreamKind::Stdin => role != fcgi_core::Role::Authorizer,
            _ => role == fcgi_core::Role::Filter,
        };
        Body {
            shared: has_stream.then(|| Arc::clone(&self.shared)),
            id,
            kind,
        }
    }
}

fn protocol_error(e: fcgi_core::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Runs one handler and ends its request exactly once — when it returns, when it is
/// cancelled, when it panics, or when the runtime drops the task.
struct HandlerTask {
    shared: Arc<Mutex<Shared>>,
    state: Arc<ServerState>,
    id: u16,
    done: bool,
}

impl HandlerTask {
    async fn run<H: Handler>(
        mut self,
        handler: Arc<H>,
        request: Request,
        response: Response,
        abort: Arc<Flag>,
    ) {
        let work = CatchUnwind(Box::pin(handler.handle(request, response)));
        let outcome = Cancellable {
            work,
            abort: &abort,
        }
        .await;
        let status = match outcome {
            Some(Ok(status)) => status,
            Some(Err(())) | None => CANCELLED_APP_STATUS,
        };
        self.end(status);
    }

    fn end(&mut self, app_status: u32) {
        if self.done {
            return;
        }
        self.done = true;
        lock(&self.shared).finish(self.id, app_status, ProtocolStatus::RequestComplete);
        self.state.release_request();
    }
}

impl Drop for HandlerTask {
    fn drop(&mut self) {
        self.end(CANCELLED_APP_STATUS);
    }
}

/// Polls `work` unless `abort` is set; then drops it (cancellation by drop).
struct Cancellable<'a, F> {
    work: F,
    abort: &'a Flag,
}

impl<F: Future + Unpin> Future for Cancellable<'_, F> {
    type Output = Option<F::Output>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.abort.poll_wait(cx).is_ready() {
            return Poll::Ready(None);
        }
        Pin::new(&mut self.work).poll(cx).map(Some)
    }
}

/// Turns a panic in the handler into `Err(())`, so that one bad request cannot take an
/// executor thread (smol, async-std) down with it.
struct CatchUnwind<F>(F);

impl<F: Future> Future for CatchUnwind<Pin<Box<F>>> {
    type Output = Result<F::Output, ()>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = self.0.as_mut();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.poll(cx)))
            .map_or(Poll::Ready(Err(())), |p| p.map(Ok))
    }
}
