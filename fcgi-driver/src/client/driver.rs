//! The per-connection task of the client: a read/write pump between a socket and a
//! `ClientConnection`. No protocol decision is made here.

use std::io;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::conn::ConnShared;
use super::error::ClientError;
use super::pool::Pool;
use crate::pump::{Alarm, WriteState};
use crate::runtime::{Runtime, Transport};
use crate::sync::lock;

const READ_CHUNK: usize = 64 * 1024;

pub(crate) struct ClientDriver<T, R> {
    pub(crate) io: T,
    pub(crate) rt: R,
    pub(crate) shared: Arc<Mutex<ConnShared>>,
    pub(crate) pool: Arc<Pool>,
    pub(crate) read_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) input: BytesMut,
    pub(crate) eof: bool,
    pub(crate) last_activity: Instant,
    pub(crate) writes: WriteState,
    pub(crate) alarm: Alarm,
}

impl<T: Transport, R: Runtime> ClientDriver<T, R> {
    pub(crate) async fn run(mut self) {
        let result = std::future::poll_fn(|cx| self.poll_drive(cx)).await;
        let (kind, error) = match result {
            Ok(()) => (io::ErrorKind::NotConnected, ClientError::Truncated),
            Err(e) => e,
        };
        lock(&self.shared).die(kind, &error);
        self.pool.notify();
    }

    fn poll_drive(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), (io::ErrorKind, ClientError)>> {
        let shared = Arc::clone(&self.shared);
        let mut g = lock(&shared);
        g.set_driver_waker(cx.waker());
        if g.kill {
            return Poll::Ready(Ok(()));
        }
        let mut ended_any = false;
        loop {
            let mut progress = false;
            if !self.input.is_empty() && g.conn.wants_input() && g.has_input_room() {
                let before = self.input.len();
                if let Err(e) = g.conn.handle_input(&mut self.input) {
                    return Poll::Ready(Err((
                        io::ErrorKind::InvalidData,
                        ClientError::Protocol(e),
                    )));
                }
                progress |= self.input.len() != before;
            }
            while g.has_input_room() {
                let Some(event) = g.conn.poll_event() else {
                    break;
                };
                ended_any |= matches!(
                    event,
                    fcgi_core::client::Event::EndRequest { .. }
                        | fcgi_core::client::Event::Truncated { .. }
                );
                g.dispatch(event);
                progress = true;
            }
            if !self.eof && self.input.is_empty() && g.conn.wants_input() && g.has_input_room() {
                self.input.reserve(READ_CHUNK);
                match self.io.poll_read_buf(cx, &mut self.input) {
                    Poll::Ready(Ok(0)) => {
                        self.eof = true;
                        g.conn.handle_eof();
                        progress = true;
                    }
                    Poll::Ready(Ok(_)) => {
                        self.last_activity = Instant::now();
                        progress = true;
                    }
                    Poll::Ready(Err(e)) => {
                        return Poll::Ready(Err((e.kind(), ClientError::Io(e))));
                    }
                    Poll::Pending => {}
                }
            }
            match self.writes.flush(&mut self.io, cx, &mut g.conn) {
                Ok(true) => {
                    self.last_activity = Instant::now();
                    progress = true;
                }
                Ok(false) => {}
                Err(e) => return Poll::Ready(Err((e.kind(), ClientError::Io(e)))),
            }
            if super::body_room(&g.conn) > 0 {
                g.wake_feeders();
            }
            if !progress {
                break;
            }
        }
        if ended_any {
            self.pool.notify();
        }
        let idle = g.is_idle();
        let done = g.conn.transmit_len() == 0
            && (g.conn.should_close() || (g.retiring && idle) || (self.eof && idle));
        if done {
            // Mark it unusable before the socket goes, so the pool never picks it.
            g.retiring = true;
            drop(g);
            return match self.io.poll_shutdown(cx) {
                Poll::Ready(_) => Poll::Ready(Ok(())),
                Poll::Pending => Poll::Pending,
            };
        }
        let now = Instant::now();
        let deadline = if g.conn.transmit_len() > 0 {
            self.writes
                .stalled_since
                .map(|t| (t + self.write_timeout, "write timeout"))
        } else if g.waiting() && !self.eof {
            Some((self.last_activity + self.read_timeout, "read timeout"))
        } else if idle {
            Some((
                g.last_used.max(self.last_activity) + self.idle_timeout,
                "idle timeout",
            ))
        } else {
            None
        };
        let Some((at, what)) = deadline else {
            self.alarm.clear();
            return Poll::Pending;
        };
        if now >= at {
            if what == "idle timeout" {
                // Under the lock: the pool cannot hand this connection out any more.
                g.retiring = true;
                return Poll::Ready(Ok(()));
            }
            let e = io::Error::new(io::ErrorKind::TimedOut, what);
            return Poll::Ready(Err((e.kind(), ClientError::Timeout(what))));
        }
        drop(g);
        self.alarm.set(&self.rt, cx, at);
        Poll::Pending
    }
}
