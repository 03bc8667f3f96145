//! The socket half of both drivers: writing a connection's transmit queue with vectored
//! writes. (Reading is one `poll_read_buf` call; what to do with the bytes differs per side.)

use std::io::{self, IoSlice};
use std::task::{Context, Poll};
use std::time::Instant;

use fcgi_core::client::ClientConnection;
use fcgi_core::server::ServerConnection;

use crate::runtime::{BoxFuture, Runtime, Transport};

/// At most this many slices per vectored write (Linux accepts 1024; a burst rarely has more
/// than a few dozen chunks).
const MAX_IOVECS: usize = 64;

/// A core connection's transmit queue.
pub(crate) trait Outgoing {
    fn queued(&self) -> usize;
    fn fill<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize;
    fn written(&mut self, n: usize);
}

macro_rules! outgoing {
    ($conn:ty) => {
        impl Outgoing for $conn {
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

outgoing!(ServerConnection);
outgoing!(ClientConnection);

/// Progress of a write pass.
pub(crate) struct WriteState {
    /// When the socket last refused more bytes while some were queued.
    pub(crate) stalled_since: Option<Instant>,
}

impl WriteState {
    pub(crate) fn new() -> Self {
        Self {
            stalled_since: None,
        }
    }

    /// Writes as much of `out`'s queue as the socket takes. `Ok(true)` if any byte went out.
    pub(crate) fn flush<T: Transport>(
        &mut self,
        io: &mut T,
        cx: &mut Context<'_>,
        out: &mut impl Outgoing,
    ) -> io::Result<bool> {
        let mut progress = false;
        while out.queued() > 0 {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let n = out.fill(&mut slices);
            match io.poll_write_vectored(cx, &slices[..n]) {
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
        Ok(progress)
    }
}

/// The one timer a driver keeps: re-armed only when the deadline that applies changes.
#[derive(Default)]
pub(crate) struct Alarm {
    armed: Option<(Instant, BoxFuture<()>)>,
}

impl Alarm {
    /// Makes sure the task is woken at `at` (before `at`, the caller checks it passed).
    pub(crate) fn set<R: Runtime>(&mut self, rt: &R, cx: &mut Context<'_>, at: Instant) {
        let now = Instant::now();
        if self.armed.as_ref().is_none_or(|(t, _)| *t != at) {
            self.armed = Some((at, rt.sleep(at.saturating_duration_since(now))));
        }
        if let Some((_, sleep)) = &mut self.armed {
            if sleep.as_mut().poll(cx).is_ready() {
                self.armed = None;
                cx.waker().wake_by_ref();
            }
        }
    }

    /// No deadline applies.
    pub(crate) fn clear(&mut self) {
        self.armed = None;
    }
}
