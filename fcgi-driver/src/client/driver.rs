//! The per-connection task of the client: the shared [`Pump`] between a socket and a
//! `ClientConnection`, plus the connection's timeouts. No protocol decision is made here.

use std::io;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use fcgi_core::client::{ClientConnection, Event};

use super::conn::ConnShared;
use super::error::{ClientError, TimeoutKind};
use super::pool::Pool;
use crate::pump::{Alarm, Endpoint, Pump, PumpError};
use crate::runtime::{Runtime, Transport};
use crate::stats::Token;
use crate::sync::lock;

pub(crate) struct ClientDriver<T, R> {
    pub(crate) pump: Pump<T>,
    pub(crate) rt: R,
    pub(crate) shared: Arc<Mutex<ConnShared>>,
    pub(crate) pool: Arc<Pool>,
    pub(crate) read_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) alarm: Alarm,
    /// The last round held its writes back (see `poll_drive`).
    pub(crate) held: bool,
    /// Counts the task in [`ClientStats::connection_tasks`](super::ClientStats).
    pub(crate) _live: Token,
}

impl<T: Transport, R: Runtime> ClientDriver<T, R> {
    pub(crate) async fn run(mut self) {
        let result = std::future::poll_fn(|cx| self.poll_drive(cx)).await;
        let (kind, error) = match result {
            Ok(()) => (io::ErrorKind::NotConnected, ClientError::Truncated),
            Err(e) => e,
        };
        self.pool.remove(&self.shared, |c| c.die(kind, &error));
    }

    fn poll_drive(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), (io::ErrorKind, ClientError)>> {
        self.pump.begin_poll(cx);
        let shared = Arc::clone(&self.shared);
        let mut g = lock(&shared);
        g.set_driver_waker(cx.waker());
        if g.kill {
            return Poll::Ready(Ok(()));
        }
        // Writes are batched on a multiplexed connection: requests queued while others are
        // in flight wait one pass of the scheduler (this task wakes itself, which puts it
        // behind the tasks ready now), so that what those tasks queue meanwhile leaves in the
        // same write — one `writev` per batch instead of one per request. A connection with
        // one request at a time writes at once.
        let hold = !self.held && g.conn.transmit_len() > 0 && g.conn.requests_in_flight() > 1;
        self.pump.hold_writes = hold;
        let mut ep = Conn {
            g: &mut g,
            ended_any: false,
        };
        let driven = self.pump.drive(cx, &mut ep);
        self.pump.hold_writes = false;
        self.held = hold;
        if ep.ended_any {
            self.pool.notify();
        }
        if hold && driven.is_ok() {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match driven {
            Ok(()) => {}
            Err(PumpError::Protocol(e)) => {
                return Poll::Ready(Err((io::ErrorKind::InvalidData, ClientError::Protocol(e))));
            }
            Err(PumpError::Io(e)) => return Poll::Ready(Err((e.kind(), ClientError::Io(e)))),
        }
        let eof = self.pump.eof();
        let idle = g.is_idle();
        let done = g.conn.transmit_len() == 0
            && (g.conn.should_close() || (g.retiring && idle) || (eof && idle));
        if done {
            // Mark it unusable before the socket goes, so the pool never picks it.
            g.retiring = true;
            drop(g);
            return self.pump.poll_shutdown(cx).map(Ok);
        }
        let last_activity = self.pump.last_read.max(self.pump.last_write);
        let deadline = if g.conn.transmit_len() > 0 {
            self.pump.stalled_since.map(|t| {
                (
                    t + self.write_timeout,
                    Deadline::Timeout(TimeoutKind::Write),
                )
            })
        } else if g.conn.requests_in_flight() > 0 && !eof && g.has_input_room() {
            // (With the input budget spent, a caller reading slowly, the silence is ours.)
            Some((
                last_activity + self.read_timeout,
                Deadline::Timeout(TimeoutKind::Read),
            ))
        } else if idle {
            Some((
                g.last_used.max(last_activity) + self.idle_timeout,
                Deadline::Idle,
            ))
        } else {
            None
        };
        let idle_over =
            deadline.is_some_and(|(at, what)| what == Deadline::Idle && self.pump.now >= at);
        if idle_over {
            // Under the lock: the pool cannot hand this connection out any more.
            g.retiring = true;
            return Poll::Ready(Ok(()));
        }
        drop(g);
        match self.alarm.poll(&self.rt, cx, deadline, self.pump.now) {
            Poll::Ready(Deadline::Timeout(kind)) => {
                Poll::Ready(Err((io::ErrorKind::TimedOut, ClientError::Timeout(kind))))
            }
            // The idle deadline passed between the check above and the alarm: the next
            // poll retires the connection.
            Poll::Ready(Deadline::Idle) => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The pump's view of the connection during one pass.
struct Conn<'a> {
    g: &'a mut ConnShared,
    /// A request ended during the pass: the pool's waiters may find room.
    ended_any: bool,
}

impl Endpoint for Conn<'_> {
    type Core = ClientConnection;

    fn core(&mut self) -> &mut ClientConnection {
        &mut self.g.conn
    }

    fn has_input_room(&self) -> bool {
        self.g.has_input_room()
    }

    fn dispatch(&mut self, event: Event) {
        self.ended_any |= matches!(event, Event::EndRequest { .. } | Event::Truncated { .. });
        self.g.dispatch(event);
    }

    fn after_write(&mut self) {
        if super::body_room(&self.g.conn) > 0 {
            self.g.wake_feeders();
        }
    }
}

/// What a client connection's deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deadline {
    /// A request's timeout: its end fails the requests in flight.
    Timeout(TimeoutKind),
    /// The idle timeout: the connection retires, nothing fails.
    Idle,
}
