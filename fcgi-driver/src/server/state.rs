//! Server-wide state shared by the accept loop, every connection and the shutdown handle.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use crate::sync::{Flag, lock};

#[derive(Debug, Default)]
pub(crate) struct ServerState {
    /// Graceful shutdown began: stop accepting, close connections once idle.
    pub(crate) draining: Flag,
    /// The grace period is over: close everything now.
    pub(crate) force: Flag,
    pub(crate) connections: AtomicUsize,
    pub(crate) requests: AtomicUsize,
    idle_waiters: Mutex<Vec<Waker>>,
}

impl ServerState {
    /// Takes a request slot if fewer than `max` are in use.
    pub(crate) fn try_acquire_request(&self, max: usize) -> bool {
        self.requests
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    pub(crate) fn release_request(&self) {
        self.requests.fetch_sub(1, Ordering::SeqCst);
    }

    pub(crate) fn try_acquire_connection(&self, max: usize) -> bool {
        self.connections
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    pub(crate) fn release_connection(&self) {
        if self.connections.fetch_sub(1, Ordering::SeqCst) == 1 {
            for w in lock(&self.idle_waiters).drain(..) {
                w.wake();
            }
        }
    }

    /// Ready when no connection is open.
    pub(crate) fn poll_no_connections(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.connections.load(Ordering::SeqCst) == 0 {
            return Poll::Ready(());
        }
        lock(&self.idle_waiters).push(cx.waker().clone());
        if self.connections.load(Ordering::SeqCst) == 0 {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}
