//! The one read/write pump both drivers run: it moves bytes between a socket and a core
//! connection and hands the core's events to an [`Endpoint`], and makes no protocol decision.
//!
//! One pass ([`Pump::drive`]) repeats four steps until none makes progress:
//! 1. feed buffered input to the core, as far as its back-pressure and the endpoint's input
//!    budget allow;
//! 2. hand the core's events to the endpoint, while the budget allows;
//! 3. read from the socket, only once the core took everything read before (so the input
//!    buffer never holds more than one read beyond what the core accepted), and, once a read
//!    found nothing, not again before the socket wakes the task;
//! 4. write the whole transmit queue, in as few vectored writes as the socket allows.

use std::io::{self, IoSlice};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::BytesMut;
use fcgi_core::client::ClientConnection;
use fcgi_core::server::ServerConnection;

use crate::runtime::{BoxFuture, Runtime, Transport};
use crate::sync::WakeFlag;

/// At most this many slices per vectored write (Linux accepts 1024; a burst rarely has more
/// than a few dozen chunks).
const MAX_IOVECS: usize = 64;

/// The slices of the usual vectored write (one coalesced chunk, or a few large payloads).
const FEW_IOVECS: usize = 4;

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
    /// How many chunks the transmit queue holds.
    fn chunks(&self) -> usize;
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
            fn chunks(&self) -> usize {
                self.transmit_chunks().count()
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
    /// The last read returned `Pending` and the socket has not woken the task since: it
    /// holds `readable`'s waker and wakes the task when bytes arrive, so asking again before
    /// then would only cost (the driver is woken for other reasons too: its handlers'
    /// output, a request to send; this was up to five readiness checks per request).
    read_pending: bool,
    /// The socket's reads are polled with this waker, which records that they woke the task.
    readable: WakeFlag,
    /// The time of this task poll (see [`Pump::begin_poll`]).
    pub(crate) now: Instant,
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
            read_pending: false,
            readable: WakeFlag::default(),
            now,
        }
    }

    /// Starts a task poll: reads the clock once for everything this poll stamps or compares
    /// (a read, a write, a stall, the deadlines; a clock read is a visible share of a small
    /// request's CPU), and allows a read again if the socket woke the task.
    pub(crate) fn begin_poll(&mut self, cx: &Context<'_>) {
        self.now = Instant::now();
        self.readable.register(cx);
        if self.readable.take_woken() {
            self.read_pending = false;
        }
    }

    /// Reads the clock again within a poll (after running application code, which may have
    /// taken a while).
    pub(crate) fn tick(&mut self) {
        self.now = Instant::now();
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
            if !self.eof
                && !self.read_pending
                && self.input.is_empty()
                && ep.core().wants_input()
                && ep.has_input_room()
            {
                // The rest of the current buffer first: the records read before still
                // hold its front (a request's params, a response's STDOUT pieces), so
                // reserving would allocate a new one for every small message.
                if self.input.capacity() < MIN_READ_ROOM {
                    self.input.reserve(READ_CHUNK);
                }
                let mut read_cx = Context::from_waker(self.readable.waker());
                match self.io.poll_read_buf(&mut read_cx, &mut self.input) {
                    Poll::Ready(Ok(0)) => {
                        self.eof = true;
                        ep.core().handle_eof();
                        progress = true;
                    }
                    Poll::Ready(Ok(_)) => {
                        self.last_read = self.now;
                        progress = true;
                    }
                    Poll::Ready(Err(e)) => return Err(PumpError::Io(e)),
                    Poll::Pending => self.read_pending = true,
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
            // The usual queue is one coalesced chunk: an array for that case, so that
            // filling in the slices costs little more than the slices used.
            let mut few = [IoSlice::new(&[]); FEW_IOVECS];
            let mut many;
            let slices: &mut [IoSlice<'_>] = if out.chunks() <= FEW_IOVECS {
                &mut few
            } else {
                many = [IoSlice::new(&[]); MAX_IOVECS];
                &mut many
            };
            let n = out.fill(slices);
            match self.io.poll_write_vectored(cx, &slices[..n]) {
                Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(written)) => {
                    out.written(written);
                    self.stalled_since = None;
                    progress = true;
                }
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => {
                    self.stalled_since.get_or_insert(self.now);
                    break;
                }
            }
        }
        if progress {
            self.last_write = self.now;
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

/// The one timer a driver keeps: re-armed only when the deadline that applies changes, and
/// polled only when it has fired (a driver is polled several times per request; polling an
/// armed timer each time was a visible share of its CPU).
#[derive(Default)]
pub(crate) struct Alarm {
    armed: Option<Armed>,
}

/// A timer set for `at`, polled with a waker of its own that records that it fired.
struct Armed {
    at: Instant,
    sleep: BoxFuture<()>,
    fired: WakeFlag,
    /// Polled at least once (so it holds `fired`'s waker).
    polled: bool,
}

impl Alarm {
    /// `Ready(what)` once `deadline` has passed; until then the task is woken when it does.
    /// `None` leaves an armed timer as it is: re-arming costs an allocation and a timer
    /// registration (a client connection has no deadline between a response's end and the
    /// next request, so that was once per request), and a timer firing early only makes the
    /// task look again. `now` is the caller's reading of the clock.
    pub(crate) fn poll<R: Runtime, L>(
        &mut self,
        rt: &R,
        cx: &mut Context<'_>,
        deadline: Option<(Instant, L)>,
        now: Instant,
    ) -> Poll<L> {
        let Some((at, what)) = deadline else {
            return Poll::Pending;
        };
        if now >= at {
            self.armed = None;
            return Poll::Ready(what);
        }
        // A timer set for a later time is replaced; one set for an earlier time is kept: when
        // it fires, the task is polled, finds the deadline not reached and re-arms. (Deadlines
        // move later with every read; this keeps that from costing a timer each time.)
        let armed = match &mut self.armed {
            Some(a) if a.at <= at => a,
            slot => slot.insert(Armed {
                at,
                sleep: rt.sleep(at.saturating_duration_since(now)),
                fired: WakeFlag::default(),
                polled: false,
            }),
        };
        armed.fired.register(cx);
        // Holding the flag's waker and not fired since: polling would only register it again.
        if armed.polled && !armed.fired.take_woken() {
            return Poll::Pending;
        }
        armed.polled = true;
        if armed
            .sleep
            .as_mut()
            .poll(&mut Context::from_waker(armed.fired.waker()))
            .is_ready()
        {
            self.armed = None;
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}
