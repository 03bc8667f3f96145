//! The connections to one backend: which one a request may use, and waiting for one.

use std::sync::{Arc, Mutex, Weak};

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
    /// The connection a finished response gave back last: the most recently used free one,
    /// tried before the scan of every connection (which locks each in turn).
    recent: Weak<Mutex<ConnShared>>,
}

/// What `Pool::pick` decided.
pub(crate) enum Pick<'a> {
    /// Use this existing connection.
    Reuse(Arc<Mutex<ConnShared>>),
    /// A slot is reserved: open a new connection in it.
    Connect(Reservation<'a>),
    /// Everything is busy: wait for [`Pool::changed`].
    Wait,
}

/// A connection slot reserved by [`Pool::pick`], and the multiplexing probe if this
/// connection is to run it. Dropped unfilled (the connect failed, or the caller gave up and
/// dropped its future mid-connect), it gives the slot back and lets the next connection
/// probe: a cancelled request never leaves the pool short of a slot or stuck probing.
pub(crate) struct Reservation<'a> {
    pool: &'a Pool,
    /// Ask about multiplexing on this connection.
    pub(crate) probe: bool,
    filled: bool,
    /// The connection opened in the slot, while it is being probed: closed if the
    /// reservation is dropped (nobody would ever use it).
    opened: Option<Arc<Mutex<ConnShared>>>,
}

impl Reservation<'_> {
    /// The connection is open and its task runs; it is not in the pool yet.
    pub(crate) fn opened(&mut self, conn: &Arc<Mutex<ConnShared>>) {
        self.opened = Some(Arc::clone(conn));
    }

    /// The connection is open: it joins the pool, unless it already died (then `false`:
    /// pick again). `mux`: what its probe found, recorded in the same step, so that
    /// nobody sees the answer before the connection it came with (and opens another).
    pub(crate) fn fill(mut self, conn: &Arc<Mutex<ConnShared>>, mux: Option<u16>) -> bool {
        self.filled = true;
        let mut slots = lock(&self.pool.conns);
        slots.connecting -= 1;
        if let Some(n) = mux {
            slots.mux = MuxState::Known(n);
        }
        // Checked under the pool's lock: a driver that ends removes its connection under
        // it too, so a dead connection can never be pushed after its removal.
        let alive = lock(conn).dead.is_none();
        if alive {
            slots.live.push(Arc::clone(conn));
        }
        drop(slots);
        self.pool.notify();
        alive
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.filled {
            return;
        }
        if let Some(conn) = self.opened.take() {
            let mut c = lock(&conn);
            c.kill = true;
            c.wake_driver();
        }
        let mut slots = lock(&self.pool.conns);
        slots.connecting -= 1;
        if self.probe && slots.mux == MuxState::Probing {
            slots.mux = MuxState::Unknown;
        }
        drop(slots);
        self.pool.notify();
    }
}

impl Pool {
    pub(crate) fn new(mux: MuxState) -> Self {
        Self {
            conns: Mutex::new(Slots {
                live: Vec::new(),
                connecting: 0,
                mux,
                recent: Weak::new(),
            }),
            changed: Notify::default(),
        }
    }

    pub(crate) fn notify(&self) {
        self.changed.notify();
    }

    /// A response is done with `conn`: it is the connection to try first, and waiting
    /// requests look again.
    pub(crate) fn given_back(&self, conn: &Arc<Mutex<ConnShared>>) {
        lock(&self.conns).recent = Arc::downgrade(conn);
        self.notify();
    }

    pub(crate) fn pick(&self, max_connections: usize, allow_reuse: bool) -> Pick<'_> {
        let mut slots = lock(&self.conns);
        // The most recently used connection first: it is the likeliest to be alive, and it
        // lets the others reach their idle timeout and give their php-fpm workers back.
        if allow_reuse
            && let Some(recent) = slots.recent.upgrade()
            && lock(&recent).can_take()
        {
            return Pick::Reuse(recent);
        }
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
            return Pick::Connect(Reservation {
                pool: self,
                probe,
                filled: false,
                opened: None,
            });
        }
        Pick::Wait
    }

    /// A connection ended: it is marked dead and leaves the pool (with everything it holds),
    /// under the pool's lock (see [`Reservation::fill`]).
    pub(crate) fn remove(&self, conn: &Arc<Mutex<ConnShared>>, die: impl FnOnce(&mut ConnShared)) {
        let mut slots = lock(&self.conns);
        die(&mut lock(conn));
        slots.live.retain(|c| !Arc::ptr_eq(c, conn));
        drop(slots);
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
