//! The connections to one backend: which one a request may use, and waiting for one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::conn::ConnShared;
use crate::sync::lock;

/// Outcome of the multiplexing probe, shared by every connection of the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MuxState {
    Unknown,
    Probing,
    Known(u16),
}

#[derive(Debug)]
pub(crate) struct Pool {
    pub(crate) conns: Mutex<Slots>,
    generation: AtomicU64,
    waiters: Mutex<Vec<Waker>>,
}

#[derive(Debug)]
pub(crate) struct Slots {
    pub(crate) live: Vec<Arc<Mutex<ConnShared>>>,
    /// Connections being established (they count against the limit).
    pub(crate) connecting: usize,
    pub(crate) mux: MuxState,
}

/// What `Pool::pick` decided.
pub(crate) enum Pick {
    /// Use this existing connection.
    Reuse(Arc<Mutex<ConnShared>>),
    /// A slot is reserved: open a new connection (`probe` = ask about multiplexing on it).
    Connect { probe: bool },
    /// Everything is busy: wait for `notify`, having seen this generation.
    Wait(u64),
}

impl Pool {
    pub(crate) fn new(mux: MuxState) -> Self {
        Self {
            conns: Mutex::new(Slots {
                live: Vec::new(),
                connecting: 0,
                mux,
            }),
            generation: AtomicU64::new(0),
            waiters: Mutex::new(Vec::new()),
        }
    }

    /// Something changed (a request ended, a connection died or appeared): waiters re-check.
    pub(crate) fn notify(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        for w in lock(&self.waiters).drain(..) {
            w.wake();
        }
    }

    pub(crate) fn pick(&self, max_connections: usize, allow_reuse: bool) -> Pick {
        let generation = self.generation.load(Ordering::SeqCst);
        let mut slots = lock(&self.conns);
        slots.live.retain(|c| lock(c).dead.is_none());
        // The most recently used connection first: it is the likeliest to be alive, and it
        // lets the others reach their idle timeout and give their php-fpm workers back.
        let mut best: Option<(&Arc<Mutex<ConnShared>>, std::time::Instant)> = None;
        for c in slots.live.iter().filter(|_| allow_reuse) {
            let s = lock(c);
            if s.can_take() && best.as_ref().is_none_or(|(_, t)| s.last_used > *t) {
                best = Some((c, s.last_used));
            }
        }
        if let Some((c, _)) = best {
            return Pick::Reuse(Arc::clone(c));
        }
        // While the first connection probes, others wait for the answer rather than open
        // connections the backend may not want.
        if slots.mux == MuxState::Probing {
            return Pick::Wait(generation);
        }
        if slots.live.len() + slots.connecting < max_connections.max(1) {
            slots.connecting += 1;
            let probe = slots.mux == MuxState::Unknown;
            if probe {
                slots.mux = MuxState::Probing;
            }
            return Pick::Connect { probe };
        }
        Pick::Wait(generation)
    }

    /// Ready once `notify` was called after generation `seen`.
    pub(crate) fn poll_changed(&self, seen: u64, cx: &mut Context<'_>) -> Poll<()> {
        if self.generation.load(Ordering::SeqCst) != seen {
            return Poll::Ready(());
        }
        lock(&self.waiters).push(cx.waker().clone());
        if self.generation.load(Ordering::SeqCst) != seen {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// A reserved connection slot was filled (`Some`) or given up (`None`).
    pub(crate) fn connected(&self, conn: Option<Arc<Mutex<ConnShared>>>) {
        let mut slots = lock(&self.conns);
        slots.connecting -= 1;
        if let Some(c) = conn {
            slots.live.push(c);
        }
        drop(slots);
        self.notify();
    }

    /// Records the probe's outcome (`None`: unknown yet, probe again on the next connection).
    pub(crate) fn set_mux(&self, capacity: Option<u16>) {
        lock(&self.conns).mux = capacity.map_or(MuxState::Unknown, MuxState::Known);
        self.notify();
    }

    pub(crate) fn mux(&self) -> MuxState {
        lock(&self.conns).mux
    }

    /// Open connections.
    pub(crate) fn len(&self) -> usize {
        let mut slots = lock(&self.conns);
        slots.live.retain(|c| lock(c).dead.is_none());
        slots.live.len()
    }
}
