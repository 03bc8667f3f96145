//! The server's open connections, as the accept loop sees them when the connection cap is
//! reached: which one can go so that a new one gets in, as nginx does when it runs out of
//! connections. Most expendable first: a connection in its lingering close, then one that
//! never sent a request (the oldest first), then the least recently used kept-alive one with
//! no active request. A connection with an active request is never chosen.
//!
//! Each connection's entry is a [`Member`], removed from the registry when the connection's
//! task ends (nothing stays behind per closed connection).

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use slab::Slab;

use super::state::ServerState;
use crate::sync::{OneWaiter, lock};

/// How expendable a connection is, most expendable first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(crate) enum Standing {
    /// Closing: its response is out, it reads and discards what the peer still sends.
    Lingering = 0,
    /// Has not sent a complete request yet.
    Fresh = 1,
    /// Kept alive, no active request.
    Idle = 2,
    /// Serving a request: never evicted.
    Busy = 3,
}

impl Standing {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Lingering,
            1 => Self::Fresh,
            2 => Self::Idle,
            _ => Self::Busy,
        }
    }
}

/// One connection's entry.
#[derive(Debug)]
pub(crate) struct Entry {
    standing: AtomicU8,
    /// When it entered its standing, in nanoseconds since the registry's epoch (for "oldest"
    /// and "least recently used").
    since: AtomicU64,
    /// It counts against `max_connections` (until it ends, or gives its place to a new
    /// connection by being evicted).
    holds_slot: AtomicBool,
    /// Set by the accept loop: close now.
    pub(crate) evicted: OneWaiter,
}

#[derive(Debug)]
pub(crate) struct Registry {
    epoch: Instant,
    entries: Mutex<Slab<Arc<Entry>>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            entries: Mutex::new(Slab::new()),
        }
    }
}

impl Registry {
    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Entries right now.
    pub(crate) fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    /// Chooses the most expendable connection, takes its slot and tells it to close. `false`
    /// if every connection is busy.
    pub(crate) fn evict_one(&self) -> bool {
        let entries = lock(&self.entries);
        let mut best: Option<(Standing, u64, &Arc<Entry>)> = None;
        for (_, e) in entries.iter() {
            let standing = Standing::from_u8(e.standing.load(Ordering::Acquire));
            if standing == Standing::Busy || !e.holds_slot.load(Ordering::Acquire) {
                continue;
            }
            let since = e.since.load(Ordering::Relaxed);
            if best
                .as_ref()
                .is_none_or(|(s, t, _)| (standing, since) < (*s, *t))
            {
                best = Some((standing, since, e));
            }
        }
        let Some((_, _, victim)) = best else {
            return false;
        };
        if !victim.holds_slot.swap(false, Ordering::AcqRel) {
            return false;
        }
        victim.evicted.set();
        true
    }
}

/// A connection's membership: its entry, removed (and its slot given back, if it still holds
/// one) when dropped.
#[derive(Debug)]
pub(crate) struct Member {
    state: Arc<ServerState>,
    key: usize,
    pub(crate) entry: Arc<Entry>,
    last: Standing,
}

impl Member {
    /// Registers a connection that holds a slot (taken by the caller).
    pub(crate) fn join(state: &Arc<ServerState>) -> Self {
        let entry = Arc::new(Entry {
            standing: AtomicU8::new(Standing::Fresh as u8),
            since: AtomicU64::new(state.registry.nanos(Instant::now())),
            holds_slot: AtomicBool::new(true),
            evicted: OneWaiter::default(),
        });
        let key = lock(&state.registry.entries).insert(Arc::clone(&entry));
        Self {
            state: Arc::clone(state),
            key,
            entry,
            last: Standing::Fresh,
        }
    }

    /// Records the connection's standing (`since`: when it entered it).
    pub(crate) fn set(&mut self, standing: Standing, since: Instant) {
        if standing == self.last {
            return;
        }
        self.last = standing;
        self.entry
            .since
            .store(self.state.registry.nanos(since), Ordering::Relaxed);
        self.entry.standing.store(standing as u8, Ordering::Release);
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let empty = {
            let mut entries = lock(&self.state.registry.entries);
            entries.try_remove(self.key);
            entries.is_empty()
        };
        if self.entry.holds_slot.swap(false, Ordering::AcqRel) {
            self.state.release_connection();
        }
        if empty {
            // A graceful shutdown waits for every connection task, evicted ones included.
            self.state.no_connections.notify();
        }
    }
}
