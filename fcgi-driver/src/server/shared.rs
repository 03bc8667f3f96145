//! One connection's state, shared between its driver task and its requests' handlers: the
//! core connection and the connection's one request map. Every method runs under the
//! connection's mutex and never awaits. Dropping it (with the connection) drops every
//! request entry, queue and waker of the connection.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use fcgi_core::server::ServerConnection;
use fcgi_core::{ApiError, Error, ProtocolStatus, Role};

use crate::stats::Token;
use crate::sync::{Notify, NotifyWait, lock};

/// Which stream of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamKind {
    Stdin,
    Data,
    Stdout,
    Stderr,
}

/// An input stream (`STDIN` or `DATA`) on its way to the handler.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    chunks: VecDeque<Bytes>,
    done: bool,
    /// Bytes received so far, and whether they went beyond the configured cap (the rest of
    /// the stream is then dropped and the reader gets an error).
    received: u64,
    overflow: bool,
    /// The handler's task, while it waits for this stream.
    waker: Option<Waker>,
}

impl Queue {
    fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    fn unread(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum()
    }
}

/// What a handler's `Body` and `Response` hold to find their request: the id, and a serial
/// that tells it apart from a later request reusing the id (a web server may reuse it as soon
/// as it reads our `END_REQUEST`, while a handler may have handed its `Response` to a task
/// of its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket {
    pub(crate) id: u16,
    pub(crate) serial: u64,
}

/// Everything the driver keeps for one request, from `BEGIN_REQUEST` until it ends.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) serial: u64,
    pub(crate) role: Role,
    pub(crate) keep_conn: bool,
    stdin: Queue,
    data: Queue,
    /// Set when the web server aborts the request or the connection goes away: the handler
    /// is cancelled (see [`Shared::poll_cancelled`]).
    aborted: bool,
    /// The handler's task, woken when the request is aborted.
    handler: Option<Waker>,
    /// Whether a handler runs for it (params complete and admitted).
    pub(crate) spawned: bool,
    /// When its `BEGIN_REQUEST` arrived (its params must follow in time).
    pub(crate) begun_at: std::time::Instant,
    /// Counts the entry in [`ServerStats::request_entries`](super::ServerStats).
    _live: Token,
}

impl Slot {
    fn abort(&mut self) {
        self.aborted = true;
        if let Some(w) = self.handler.take() {
            w.wake();
        }
    }
}

/// Write coalescing: while a handler task of the connection is being polled, the driver is
/// woken for its output only once that poll is over, so that what a handler queues in one
/// poll (its writes, then `END_REQUEST` if it returns) leaves in one write call instead of
/// racing the driver task on another thread.
#[derive(Debug, Default)]
pub(crate) struct Cork {
    /// Handler polls in progress.
    polling: AtomicUsize,
    /// Output was queued during one of them: wake the driver when the last one ends.
    wanted: AtomicBool,
}

impl Cork {
    /// Marks a handler poll in progress until the guard drops.
    pub(crate) fn enter<'a>(&'a self, shared: &'a std::sync::Mutex<Shared>) -> Corked<'a> {
        self.polling.fetch_add(1, Ordering::SeqCst);
        Corked { cork: self, shared }
    }
}

/// The driver polling its inline handler (see `Driver::poll_inline`): corked like a handler
/// task's poll, but leaving wakes no one — the driver writes what was queued itself, right
/// after.
pub(crate) struct CorkedByDriver<'a>(&'a Cork);

impl Cork {
    /// Marks the driver's poll of its inline handler in progress until the guard drops.
    pub(crate) fn enter_driver(&self) -> CorkedByDriver<'_> {
        self.polling.fetch_add(1, Ordering::SeqCst);
        CorkedByDriver(self)
    }
}

impl Drop for CorkedByDriver<'_> {
    fn drop(&mut self) {
        // The last poll in progress: output wanted so far is the driver's to write (it
        // flushes next). Handler tasks still polling elsewhere wake it when they end.
        if self.0.polling.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.wanted.store(false, Ordering::SeqCst);
        }
    }
}

/// A handler poll in progress; see [`Cork`].
pub(crate) struct Corked<'a> {
    cork: &'a Cork,
    shared: &'a std::sync::Mutex<Shared>,
}

impl Drop for Corked<'_> {
    fn drop(&mut self) {
        if self.cork.polling.fetch_sub(1, Ordering::SeqCst) == 1
            && self.cork.wanted.swap(false, Ordering::SeqCst)
        {
            lock(self.shared).wake_driver();
        }
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) conn: ServerConnection,
    pub(crate) cork: Arc<Cork>,
    /// The connection's one request map, by request id.
    pub(crate) slots: FxHashMap<u16, Slot>,
    next_serial: u64,
    /// The driver task (one task: one slot, replaced when it changes).
    driver: Option<Waker>,
    /// Handlers waiting for transmit room.
    room: Notify,
    /// Payload bytes queued for handlers that have not read them yet.
    pub(crate) buffered: usize,
    pub(crate) buffer_limit: usize,
    /// Why the connection is gone, once it is.
    pub(crate) closed: Option<io::ErrorKind>,
}

fn core_error(e: Error) -> io::Error {
    let kind = match e {
        Error::Api(ApiError::OutputFull) => io::ErrorKind::WouldBlock,
        Error::Api(ApiError::UnknownRequest(_)) => io::ErrorKind::NotConnected,
        Error::Api(_) => io::ErrorKind::InvalidInput,
        _ => io::ErrorKind::InvalidData,
    };
    io::Error::new(kind, e)
}

impl Shared {
    pub(crate) fn new(conn: ServerConnection) -> Self {
        let buffer_limit = conn.config().limits.max_buffered_input;
        Self {
            conn,
            cork: Arc::default(),
            slots: FxHashMap::default(),
            next_serial: 0,
            driver: None,
            room: Notify::default(),
            buffered: 0,
            buffer_limit,
            closed: None,
        }
    }

    pub(crate) fn set_driver_waker(&mut self, waker: &Waker) {
        match &self.driver {
            Some(w) if w.will_wake(waker) => {}
            _ => self.driver = Some(waker.clone()),
        }
    }

    /// Wakes the driver to write queued output: at once, or when the handler polls in
    /// progress are over (see [`Cork`]).
    pub(crate) fn wake_driver_for_output(&mut self) {
        self.cork.wanted.store(true, Ordering::SeqCst);
        if self.cork.polling.load(Ordering::SeqCst) == 0
            && self.cork.wanted.swap(false, Ordering::SeqCst)
        {
            self.wake_driver();
        }
    }

    pub(crate) fn wake_driver(&mut self) {
        if let Some(w) = &self.driver {
            w.wake_by_ref();
        }
    }

    /// Whether handlers hold less unread input than the budget allows.
    pub(crate) fn has_input_room(&self) -> bool {
        self.buffered < self.buffer_limit
    }

    /// Wakes the handlers waiting for transmit room, if there is some.
    pub(crate) fn wake_writers(&mut self) {
        if self.conn.send_capacity() > 0 {
            self.room.notify();
        }
    }

    pub(crate) fn open_slot(
        &mut self,
        id: u16,
        role: Role,
        keep_conn: bool,
        now: std::time::Instant,
        live: Token,
    ) {
        let serial = self.next_serial;
        self.next_serial += 1;
        self.slots.insert(
            id,
            Slot {
                serial,
                role,
                keep_conn,
                stdin: Queue::default(),
                data: Queue::default(),
                aborted: false,
                handler: None,
                spawned: false,
                begun_at: now,
                _live: live,
            },
        );
    }

    /// A piece of input (`Some`) or the end (`None`) of one of the request's streams.
    pub(crate) fn push_input(
        &mut self,
        id: u16,
        kind: StreamKind,
        data: Option<Bytes>,
        cap: Option<u64>,
    ) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        let q = if kind == StreamKind::Data {
            &mut slot.data
        } else {
            &mut slot.stdin
        };
        match data {
            Some(_) if q.overflow => return,
            Some(d) => {
                q.received += d.len() as u64;
                if cap.is_some_and(|cap| q.received > cap) {
                    q.overflow = true;
                } else {
                    self.buffered += d.len();
                    q.chunks.push_back(d);
                }
            }
            None => q.done = true,
        }
        q.wake();
    }

    /// Forgets a request's entry (its unread input leaves the budget; readers learn it).
    fn remove_slot(&mut self, id: u16) {
        if let Some(mut slot) = self.slots.remove(&id) {
            for q in [&mut slot.stdin, &mut slot.data] {
                self.buffered -= q.unread();
                q.wake();
            }
            // Its handler (if any) is not woken: the request ends because that handler
            // ended, or before one started.
        }
    }

    /// The web server aborted request `id`: its handler is cancelled. Returns whether a
    /// handler runs for it (`None`: no such request).
    pub(crate) fn abort(&mut self, id: u16) -> Option<bool> {
        let slot = self.slots.get_mut(&id)?;
        slot.abort();
        Some(slot.spawned)
    }

    /// Ready when the handler of `ticket`'s request must stop: the request was aborted, the
    /// connection is gone, or the request is over. Otherwise the calling task is woken when
    /// that happens. (Under the connection's lock, as everything else of the request: no
    /// allocation of its own per request.)
    pub(crate) fn poll_cancelled(&mut self, ticket: Ticket, cx: &mut Context<'_>) -> Poll<()> {
        let Some(slot) = self.slot(ticket) else {
            return Poll::Ready(());
        };
        if slot.aborted {
            return Poll::Ready(());
        }
        match &slot.handler {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => slot.handler = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// The slot `ticket` names, if its request is still the one with that id.
    fn slot(&mut self, ticket: Ticket) -> Option<&mut Slot> {
        self.slots
            .get_mut(&ticket.id)
            .filter(|s| s.serial == ticket.serial)
    }

    /// Ends the request `ticket` names, if it has not ended yet (see [`finish`](Self::finish)).
    pub(crate) fn finish_ticket(&mut self, ticket: Ticket, app_status: u32) {
        if self.slot(ticket).is_some() {
            self.finish(ticket.id, app_status, ProtocolStatus::RequestComplete);
        }
    }

    /// Ends a request on the wire (if the connection still can) and forgets it.
    pub(crate) fn finish(&mut self, id: u16, app_status: u32, status: ProtocolStatus) {
        self.remove_slot(id);
        // Fails only if the core already ended it, which cannot happen for a live slot.
        let _ = self.conn.end_request(id, app_status, status);
        self.wake_driver_for_output();
    }

    /// The core ended a request on its own (`Event::Rejected`): forget its entry.
    pub(crate) fn rejected(&mut self, id: u16) {
        self.remove_slot(id);
    }

    /// Marks the connection gone: every reader, writer and handler learns it.
    pub(crate) fn close(&mut self, kind: io::ErrorKind) {
        if self.closed.is_none() {
            self.closed = Some(kind);
        }
        // The driver task is over: its waker (which keeps the task's allocation) goes too.
        self.driver = None;
        for slot in self.slots.values_mut() {
            slot.abort();
            slot.stdin.wake();
            slot.data.wake();
        }
        self.room.notify();
    }

    pub(crate) fn poll_chunk(
        &mut self,
        ticket: Ticket,
        kind: StreamKind,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Bytes>>> {
        let closed = self.closed;
        let Some(slot) = self.slot(ticket) else {
            return Poll::Ready(Some(Err(io::ErrorKind::ConnectionAborted.into())));
        };
        let aborted = slot.aborted;
        let q = if kind == StreamKind::Data {
            &mut slot.data
        } else {
            &mut slot.stdin
        };
        if let Some(piece) = q.chunks.pop_front() {
            let was_full = !self.has_input_room();
            self.buffered -= piece.len();
            if was_full && self.has_input_room() {
                self.wake_driver();
            }
            return Poll::Ready(Some(Ok(piece)));
        }
        if q.overflow {
            return Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request stream exceeds the server's limit",
            ))));
        }
        if q.done {
            return Poll::Ready(None);
        }
        if let Some(kind) = closed {
            return Poll::Ready(Some(Err(kind.into())));
        }
        if aborted {
            return Poll::Ready(Some(Err(io::ErrorKind::ConnectionAborted.into())));
        }
        match &q.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => q.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Queues `data` on the request's `STDOUT` or `STDERR`, waiting (through `wait`) while
    /// the transmit queue is full.
    pub(crate) fn poll_write(
        &mut self,
        ticket: Ticket,
        kind: StreamKind,
        data: &mut Option<Bytes>,
        wait: &mut NotifyWait,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if let Some(kind) = self.closed {
                return Poll::Ready(Err(kind.into()));
            }
            if self.slot(ticket).is_none() {
                return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
            }
            if self.conn.send_capacity() > 0 {
                break;
            }
            // Full: register, then wait for the driver to write some out. The driver
            // notifies under this same lock, so no notification can fall in between.
            wait.arm(&self.room);
            self.wake_driver();
            if wait.poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        let Some(bytes) = data.take() else {
            return Poll::Ready(Ok(()));
        };
        let sent = if kind == StreamKind::Stderr {
            self.conn.send_stderr(ticket.id, bytes)
        } else {
            self.conn.send_stdout(ticket.id, bytes)
        };
        self.wake_driver_for_output();
        Poll::Ready(sent.map_err(core_error))
    }
}
