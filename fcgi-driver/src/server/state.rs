//! Server-wide state shared by the accept loop, every connection and the shutdown handle.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::registry::Registry;
use crate::stats::Gauge;
use crate::sync::{Notify, Signal};

#[derive(Debug, Default)]
pub(crate) struct ServerState {
    /// Graceful shutdown began: stop accepting, close connections once idle.
    pub(crate) draining: Signal,
    /// The grace period is over: close everything now.
    pub(crate) force: Signal,
    /// Admitted connections (the `max_connections` budget).
    pub(crate) connections: AtomicUsize,
    /// Requests being handled (the `max_requests` budget).
    pub(crate) requests: AtomicUsize,
    /// The last connection closed (for the end of a graceful shutdown).
    pub(crate) no_connections: Notify,
    /// Live connection driver tasks.
    pub(crate) connection_tasks: Gauge,
    /// Live handler tasks.
    pub(crate) handler_tasks: Gauge,
    /// Live request entries in the connections' request maps.
    pub(crate) request_entries: Gauge,
    /// The open connections, for eviction at the cap.
    pub(crate) registry: Registry,
}

/// What a server holds right now, from [`ShutdownHandle::stats`](super::ShutdownHandle::stats).
///
/// Every figure is a count of live objects: each falls back to zero once the connections
/// and requests that made them are gone (tests and soak runs read them to prove it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ServerStats {
    /// Connections holding a place under `max_connections` (admitted, not yet closed, and
    /// not evicted to make room for another).
    pub connections: usize,
    /// Entries in the server's connection registry (one per connection task).
    pub registered_connections: usize,
    /// Connection tasks alive (one per open connection).
    pub connection_tasks: usize,
    /// Requests admitted to a handler and not yet ended.
    pub requests: usize,
    /// Handler tasks alive (one per request being handled).
    pub handler_tasks: usize,
    /// Entries in the connections' request maps (requests begun and not yet ended).
    pub request_entries: usize,
    /// Tasks registered to be woken by the server's shutdown signals (the accept loop and
    /// the connection tasks that have been polled while the server runs).
    pub waiters: usize,
}

impl ServerState {
    pub(crate) fn stats(&self) -> ServerStats {
        ServerStats {
            connections: self.connections.load(Ordering::SeqCst),
            registered_connections: self.registry.len(),
            connection_tasks: self.connection_tasks.get(),
            requests: self.requests.load(Ordering::SeqCst),
            handler_tasks: self.handler_tasks.get(),
            request_entries: self.request_entries.get(),
            waiters: self.draining.waiters() + self.force.waiters() + self.no_connections.waiters(),
        }
    }

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
            self.no_connections.notify();
        }
    }
}
