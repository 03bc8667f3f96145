//! The one read/write pump both drivers run: it moves bytes between a socket and a core
//! connection and hands the core's events to an [`Endpoint`], and makes no protocol decision.
//!
//! One pass ([`Pump::drive`]) repeats four steps until none makes progress:
//! 1. feed buffered input to the core, as far as its back-pressure and the endpoint's input
//!    budget allow;
//! 2. hand the core's events to the endpoint, while the budget allows;
//! 3. read from the socket, only once the core took everything read before (so the input
//!    buffer never holds more than one read beyond what the core accepted);
//! 4. write the whole transmit queue, in as few vectored writes as the socket allows.

use std::io::{self, IoSlice};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::BytesMut;
use fcgi_core::client::ClientConnection;
use fcgi_core::server::ServerConnection;

use crate::runtime::{BoxFuture, Runtime, Transport};

/// At most this many slices per vectored write (Linux accepts 1024; a burst rarely has more
/// than a few dozen chunks).
const MAX_IOVECS: usize = 64;

/// How much spare room a read asks for.
const READ_CHUNK: usize = 64 * 1024;

/// Below this much room left in the input buffer, a read gets a fresh [`READ_CHUNK`].
const MIN_READ_ROOM: usize = READ_CHUNK / 8;

/// What the pump needs from a core connection: input in, events out, transmit queue out.
pub(crate) trait Core {
    type Event;
    fn handle_input(&mut self, input: &mut BytesMut) -> Result<(), fcgi_core::Error>;
    /// The peer closed its side.
    fn handle_eof(&mut self);
    fn poll_event(&mut self) -> Option<Self::Event>;
    fn wants_input(&self) -> bool;
    fn queued(&self) -> usize;
    fn fill<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize;
    fn written(&mut self, n: usize);
}

macro_rules! core_impl {
    ($conn:ty, $event:ty, |$c:ident| $eof:expr) => {
        impl Core for $conn {
            type Event = $event;
            fn handle_input(&mut self, input: &mut BytesMut) -> Result<(), fcgi_core::Error> {
                <$conn>::handle_input(self, input)
            }
            fn handle_eof(&mut self) {
                let $c = self;
                $eof
            }
            fn poll_event(&mut self) -> Option<$event> {
                <$conn>::poll_event(self)
            }
            fn wants_input(&self) -> bool {
                <$conn>::wants_input(self)
            }
            fn queued(&self) -> usize {
                self.transmit_len()
            }
            fn fill<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
                let mut n = 0;
                for (slot, chunk) in slices.iter_mut().zip(self.transmit_chunks()) {
                    *slot = IoSlice::new(chunk);
                    n += 1;
                }
                n
            }
            fn written(&mut self, n: usize) {
                self.advance_transmit(n);
            }
        }
    };
}

// A record cut in half at EOF is worth a log line, not more: the requests are aborted
// either way.
core_impl!(ServerConnection, fcgi_core::server::Event, |c| {
    if let Err(e) = c.handle_eof() {
        crate::log::debug("connection closed inside a record", &e);
    }
});
core_impl!(ClientConnection, fcgi_core::client::Event, |c| c
    .handle_eof());

/// The connection state a pump drives: a core connection and the receivers of its events.
pub(crate) trait Endpoint {
    type Core: Core;
    fn core(&mut self) -> &mut Self::Core;
    /// Whether the receivers hold less unread input than their budget.
    fn has_input_room(&self) -> bool;
    fn dispatch(&mut self, event: <Self::Core as Core>::Event);
    /// After a write pass: wake whoever waits for transmit room.
    fn after_write(&mut self);
}

/// Why a pass failed: the peer broke the protocol, or the socket failed.
#[derive(Debug)]
pub(crate) enum PumpError {
    Protocol(fcgi_core::Error),
    Io(io::Error),
}

/// A socket and what the pump knows about it.
pub(crate) struct Pump<T> {
    io: T,
    input: BytesMut,
    eof: bool,
    /// When bytes last arrived.
    pub(crate) last_read: Instant,
    /// When bytes last left.
    pub(crate) last_write: Instant,
    /// When the socket last refused more bytes while some were queued.
    pub(crate) stalled_since: Option<Instant>,
    /// Read and dispatch, but write nothing this round (the endpoint batches writes).
    pub(crate) hold_writes: bool,
}

impl<T: Transport> Pump<T> {
    pub(crate) fn new(io: T) -> Self {
        let now = Instant::now();
        Self {
            io,
            input: BytesMut::new(),
            eof: false,
            last_read: now,
            last_write: now,
            stalled_since: None,
            hold_writes: false,
        }
    }

    /// Whether the peer closed its side.
    pub(crate) fn eof(&self) -> bool {
        self.eof
    }

    /// One pass (see the module documentation).
    pub(crate) fn drive<E: Endpoint>(
        &mut self,
        cx: &mut Context<'_>,
        ep: &mut E,
    ) -> Result<(), PumpError> {
        loop {
            let mut progress = false;
            // 1. Feed buffered input.
            if !self.input.is_empty() && ep.core().wants_input() && ep.has_input_room() {
                let before = self.input.len();
                ep.core()
                    .handle_input(&mut self.input)
                    .map_err(PumpError::Protocol)?;
                progress |= self.input.len() != before;
            }
            // 2. Hand out events.
            while ep.has_input_room() {
                let Some(event) = ep.core().poll_event() else {
                    break;
                };
                ep.dispatch(event);
                progress = true;
            }
            // 3. Read more only once the core took everything we had.
            if !self.eof && self.input.is_empty() && ep.core().wants_input() && ep.has_input_room()
            {
                // The rest of the current buffer first: the records read before still
                // hold its front (a request's params, a response's STDOUT pieces), so
                // reserving would allocate a new one for every small message.
                if self.input.capacity() < MIN_READ_ROOM {
                    self.input.reserve(READ_CHUNK);
                }
                match self.io.poll_read_buf(cx, &mut self.input) {
                    Poll::Ready(Ok(0)) => {
                        self.eof = true;
                        ep.core().handle_eof();
                        progress = true;
                    }
                    Poll::Ready(Ok(_)) => {
                        self.last_read = Instant::now();
                        progress = true;
                    }
                    Poll::Ready(Err(e)) => return Err(PumpError::Io(e)),
                    Poll::Pending => {}
                }
            }
            // 4. Write everything queued.
            progress |= self.flush(cx, ep.core()).map_err(PumpError::Io)?;
            ep.after_write();
            if !progress {
                return Ok(());
            }
        }
    }

    /// Writes as much of the queue as the socket takes. `Ok(true)` if any byte went out.
    fn flush(&mut self, cx: &mut Context<'_>, out: &mut impl Core) -> io::Result<bool> {
        let mut progress = false;
        if self.hold_writes {
            return Ok(false);
        }
        while out.queued() > 0 {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let n = out.fill(&mut slices);
            match self.io.poll_write_vectored(cx, &slices[..n]) {
                Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(written)) => {
                    out.written(written);
                    self.stalled_since = None;
                    progress = true;
                }
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => {
                    self.stalled_since.get_or_insert_with(Instant::now);
                    break;
                }
            }
        }
        if progress {
            self.last_write = Instant::now();
        }
        Ok(progress)
    }

    /// Reads and drops whatever arrives (a lingering close): `Ok(0)` at end of stream.
    pub(crate) fn poll_discard(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        self.input.clear();
        self.input.reserve(READ_CHUNK);
        let r = self.io.poll_read_buf(cx, &mut self.input);
        self.input.clear();
        if let Poll::Ready(Ok(0)) = r {
            self.eof = true;
        }
        r
    }

    /// Shuts the write side down (the peer sees end of stream).
    pub(crate) fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.io.poll_shutdown(cx).map(|_| ())
    }
}

/// The one timer a driver keeps: re-armed only when the deadline that applies changes.
#[derive(Default)]
pub(crate) struct Alarm {
    armed: Option<(Instant, BoxFuture<()>)>,
}

impl Alarm {
    /// `Ready(what)` once `deadline` has passed; until then the task is woken when it does.
    /// `None` leaves an armed timer as it is: re-arming costs an allocation and a timer
    /// registration (a client connection has no deadline between a response's end and the
    /// next request, so that was once per request), and a timer firing early only makes the
    /// task look again.
    pub(crate) fn poll<R: Runtime, L>(
        &mut self,
        rt: &R,
        cx: &mut Context<'_>,
        deadline: Option<(Instant, L)>,
    ) -> Poll<L> {
        let Some((at, what)) = deadline else {
            return Poll::Pending;
        };
        let now = Instant::now();
        if now >= at {
            self.armed = None;
            return Poll::Ready(what);
        }
        // A timer set for a later time is replaced; one set for an earlier time is kept: when
        // it fires, the task is polled, finds the deadline not reached and re-arms. (Deadlines
        // move later with every read; this keeps that from costing a timer each time.)
        if self.armed.as_ref().is_none_or(|(t, _)| *t > at) {
            self.armed = Some((at, rt.sleep(at.saturating_duration_since(now))));
        }
        if let Some((_, sleep)) = &mut self.armed
            && sleep.as_mut().poll(cx).is_ready()
        {
            self.armed = None;
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}
