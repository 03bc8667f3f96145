//! The connections to one backend: which one a request may use, and waiting for one.

use std::sync::{Arc, Mutex};

use super::conn::ConnShared;
use crate::sync::{Notify, lock};

/// Outcome of the multiplexing probe, shared by every connection of the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MuxState {
    Unknown,
    Probing,
    Known(u16),
}

#[derive(Debug)]
pub(crate) struct Pool {
    conns: Mutex<Slots>,
    /// A request ended, a connection appeared or went: waiters pick again.
    pub(crate) changed: Notify,
}

#[derive(Debug)]
struct Slots {
    /// Open connections. A connection's driver removes it when it ends.
    live: Vec<Arc<Mutex<ConnShared>>>,
    /// Connections being established (they count against the limit).
    connecting: usize,
    mux: MuxState,
}

/// What `Pool::pick` decided.
pub(crate) enum Pick {
    /// Use this existing connection.
    Reuse(Arc<Mutex<ConnShared>>),
    /// A slot is reserved: open a new connection (`probe` = ask about multiplexing on it).
    Connect { probe: bool },
    /// Everything is busy: wait for [`Pool::changed`].
    Wait,
}

impl Pool {
    pub(crate) fn new(mux: MuxState) -> Self {
        Self {
            conns: Mutex::new(Slots {
                live: Vec::new(),
                connecting: 0,
                mux,
            }),
            changed: Notify::default(),
        }
    }

    pub(crate) fn notify(&self) {
        self.changed.notify();
    }

    pub(crate) fn pick(&self, max_connections: usize, allow_reuse: bool) -> Pick {
        let mut slots = lock(&self.conns);
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
            return Pick::Wait;
        }
        if slots.live.len() + slots.connecting < max_connections.max(1) {
            slots.connecting += 1;
            let probe = slots.mux == MuxState::Unknown;
            if probe {
                slots.mux = MuxState::Probing;
            }
            return Pick::Connect { probe };
        }
        Pick::Wait
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

    /// A connection ended: it leaves the pool (with everything it holds).
    pub(crate) fn remove(&self, conn: &Arc<Mutex<ConnShared>>) {
        lock(&self.conns).live.retain(|c| !Arc::ptr_eq(c, conn));
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
        lock(&self.conns).live.len()
    }

    /// Waiters registered on the pool and on its connections.
    pub(crate) fn waiters(&self) -> usize {
        let slots = lock(&self.conns);
        self.changed.waiters() + slots.live.iter().map(|c| lock(c).waiters()).sum::<usize>()
    }
}
