//! A mock [`Transport`] wrapping any real stream, and the [`Listener`] / [`Connector`]
//! wrappers that put it under the driver on either side.
//!
//! With the default [`MockConfig`] the mock is a transparent wrapper (every call is passed
//! straight to the adapter's stream) that counts calls and bytes. Its faults:
//!
//! - `pending_every_other`: every other read and every other write returns `Pending` after
//!   waking its own task — a spurious not-ready, as a real socket may give;
//! - `max_read` / `max_write`: short reads and short writes (at most N bytes per call,
//!   down to 1);
//! - `eof_after_read`: early EOF after K bytes — the peer vanished: reads return end of
//!   stream, whatever else has arrived is drained and discarded, later writes are swallowed,
//!   and shutdown sends the real FIN;
//! - `cut_after_write`: after K bytes written, the real stream is shut down (the peer sees
//!   EOF mid-stream) and later writes are swallowed;
//! - `hang_up_on_write`: the n-th successful write call and all later ones are swallowed,
//!   and reads report end of stream from then on — a connection that died while idle and
//!   whose death is noticed only once a request has been sent on it.

use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::BytesMut;
use fcgi_driver::client::Connector;
use fcgi_driver::runtime::{BoxFuture, Listener, Peer, Transport};

use super::util::lock;

const STASH: usize = 64 * 1024;

/// The faults a [`Mock`] injects (none by default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MockConfig {
    /// Every other read and write call returns `Pending` (waking itself).
    pub pending_every_other: bool,
    /// At most this many bytes per read call.
    pub max_read: Option<usize>,
    /// At most this many bytes per write call.
    pub max_write: Option<usize>,
    /// End of stream after this many bytes read (see the module docs).
    pub eof_after_read: Option<usize>,
    /// Shut the real stream down after this many bytes written (see the module docs).
    pub cut_after_write: Option<usize>,
    /// Swallow the n-th (1-based) successful write call and everything after it, and
    /// report end of stream from then on.
    pub hang_up_on_write: Option<usize>,
}

impl MockConfig {
    /// No faults: a counting, transparent wrapper.
    pub fn inert() -> Self {
        Self::default()
    }

    /// Adds spurious `Pending` on every other call.
    #[must_use]
    pub fn pending(mut self) -> Self {
        self.pending_every_other = true;
        self
    }

    /// Adds short reads of at most `n` bytes.
    #[must_use]
    pub fn max_read(mut self, n: usize) -> Self {
        self.max_read = Some(n);
        self
    }

    /// Adds short writes of at most `n` bytes.
    #[must_use]
    pub fn max_write(mut self, n: usize) -> Self {
        self.max_write = Some(n);
        self
    }

    /// Early EOF after `k` bytes read.
    #[must_use]
    pub fn eof_after_read(mut self, k: usize) -> Self {
        self.eof_after_read = Some(k);
        self
    }

    /// Closes the write side after `k` bytes written.
    #[must_use]
    pub fn cut_after_write(mut self, k: usize) -> Self {
        self.cut_after_write = Some(k);
        self
    }

    /// Silent death noticed at the `n`-th write call.
    #[must_use]
    pub fn hang_up_on_write(mut self, n: usize) -> Self {
        self.hang_up_on_write = Some(n);
        self
    }
}

/// Which faults the `n`-th (0-based) connection of a listener or connector gets.
pub type Plan = Arc<dyn Fn(usize) -> MockConfig + Send + Sync>;

/// The same faults for every connection.
pub fn plan_all(config: MockConfig) -> Plan {
    Arc::new(move |_| config)
}

/// No faults on any connection.
pub fn plan_inert() -> Plan {
    plan_all(MockConfig::inert())
}

/// What one mocked connection did (calls that reached the real stream).
#[derive(Debug, Default)]
pub struct MockStats {
    /// Write calls that wrote at least one byte to the real stream.
    pub write_calls: AtomicUsize,
    /// Bytes written to the real stream.
    pub bytes_written: AtomicUsize,
    /// Read calls that delivered at least one byte.
    pub read_calls: AtomicUsize,
    /// Bytes delivered to the driver.
    pub bytes_read: AtomicUsize,
    /// Spurious `Pending` results injected.
    pub pendings: AtomicUsize,
    /// Read calls of any outcome (the driver's polls of the stream).
    pub read_polls: AtomicUsize,
}

impl MockStats {
    /// `write_calls` now.
    pub fn writes(&self) -> usize {
        self.write_calls.load(Ordering::SeqCst)
    }

    /// `bytes_written` now.
    pub fn written(&self) -> usize {
        self.bytes_written.load(Ordering::SeqCst)
    }
}

/// The connections one listener accepted or one connector opened.
#[derive(Debug, Default)]
pub struct NetStats {
    opened: AtomicUsize,
    open: AtomicUsize,
    peak: AtomicUsize,
    nodelay: Mutex<Vec<Option<bool>>>,
    conns: Mutex<Vec<Arc<MockStats>>>,
}

impl NetStats {
    fn register(&self, nodelay: Option<bool>) -> (usize, Arc<MockStats>) {
        let n = self.opened.fetch_add(1, Ordering::SeqCst);
        let now = self.open.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        lock(&self.nodelay).push(nodelay);
        let stats = Arc::new(MockStats::default());
        lock(&self.conns).push(Arc::clone(&stats));
        (n, stats)
    }

    /// Connections accepted or opened so far (a server counts those its admission rules
    /// closed at once too).
    pub fn opened(&self) -> usize {
        self.opened.load(Ordering::SeqCst)
    }

    /// Connections whose stream is not dropped yet.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Most connections open at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// `TCP_NODELAY` of every connection when it was handed over (`None`: not TCP).
    pub fn nodelay(&self) -> Vec<Option<bool>> {
        lock(&self.nodelay).clone()
    }

    /// The stats of the `n`-th (0-based) connection.
    pub fn conn(&self, n: usize) -> Arc<MockStats> {
        Arc::clone(&lock(&self.conns)[n])
    }
}

/// A [`Transport`] wrapping a real stream, injecting the faults of its [`MockConfig`].
#[derive(Debug)]
pub struct Mock<T> {
    inner: T,
    cfg: MockConfig,
    stats: Arc<MockStats>,
    net: Option<Arc<NetStats>>,
    read_tick: bool,
    write_tick: bool,
    /// The waker of the last read call (woken when a fault makes the stream readable).
    read_waker: Option<std::task::Waker>,
    stash: BytesMut,
    delivered: usize,
    written: usize,
    writes: usize,
    read_eof: bool,
    swallow: bool,
    shut: bool,
}

impl<T: Transport> Mock<T> {
    /// Wraps `inner`.
    pub fn new(inner: T, cfg: MockConfig) -> Self {
        Self::with_stats(inner, cfg, Arc::new(MockStats::default()), None)
    }

    fn with_stats(
        inner: T,
        cfg: MockConfig,
        stats: Arc<MockStats>,
        net: Option<Arc<NetStats>>,
    ) -> Self {
        Self {
            inner,
            cfg,
            stats,
            net,
            read_tick: false,
            read_waker: None,
            write_tick: false,
            stash: BytesMut::new(),
            delivered: 0,
            written: 0,
            writes: 0,
            read_eof: false,
            swallow: false,
            shut: false,
        }
    }

    /// What this connection did.
    pub fn stats(&self) -> &Arc<MockStats> {
        &self.stats
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    fn spurious(tick: &mut bool, on: bool, stats: &MockStats, cx: &mut Context<'_>) -> bool {
        if !on {
            return false;
        }
        *tick = !*tick;
        if *tick {
            stats.pendings.fetch_add(1, Ordering::SeqCst);
            cx.waker().wake_by_ref();
        }
        *tick
    }

    /// The peer "vanished": drop what arrived and what is still readable (bounded).
    fn vanish(&mut self, cx: &mut Context<'_>) {
        self.read_eof = true;
        self.swallow = true;
        self.stash.clear();
        for _ in 0..1024 {
            let mut junk = BytesMut::with_capacity(STASH);
            match self.inner.poll_read_buf(cx, &mut junk) {
                Poll::Ready(Ok(n)) if n > 0 => {}
                _ => break,
            }
        }
    }
}

impl<T: Transport> Transport for Mock<T> {
    fn poll_read_buf(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        self.stats.read_polls.fetch_add(1, Ordering::SeqCst);
        if !self
            .read_waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            self.read_waker = Some(cx.waker().clone());
        }
        if Self::spurious(
            &mut self.read_tick,
            self.cfg.pending_every_other,
            &self.stats,
            cx,
        ) {
            return Poll::Pending;
        }
        if self.read_eof {
            return Poll::Ready(Ok(0));
        }
        if let Some(k) = self.cfg.eof_after_read
            && self.delivered >= k
        {
            self.vanish(cx);
            return Poll::Ready(Ok(0));
        }
        let direct = self.cfg.max_read.is_none()
            && self.cfg.eof_after_read.is_none()
            && self.stash.is_empty();
        if direct {
            let before = buf.len();
            let r = ready!(self.inner.poll_read_buf(cx, buf));
            if r.as_ref().is_ok_and(|n| *n > 0) {
                self.stats.read_calls.fetch_add(1, Ordering::SeqCst);
                self.stats
                    .bytes_read
                    .fetch_add(buf.len() - before, Ordering::SeqCst);
            }
            return Poll::Ready(r);
        }
        if self.stash.is_empty() {
            self.stash.reserve(STASH);
            match ready!(self.inner.poll_read_buf(cx, &mut self.stash)) {
                Ok(0) => return Poll::Ready(Ok(0)),
                Ok(_) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        let mut n = self.stash.len();
        if let Some(m) = self.cfg.max_read {
            n = n.min(m.max(1));
        }
        if let Some(k) = self.cfg.eof_after_read {
            n = n.min(k - self.delivered);
        }
        buf.extend_from_slice(&self.stash.split_to(n));
        self.delivered += n;
        self.stats.read_calls.fetch_add(1, Ordering::SeqCst);
        self.stats.bytes_read.fetch_add(n, Ordering::SeqCst);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if Self::spurious(
            &mut self.write_tick,
            self.cfg.pending_every_other,
            &self.stats,
            cx,
        ) {
            return Poll::Pending;
        }
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if self.swallow {
            return Poll::Ready(Ok(total));
        }
        if self.cfg.hang_up_on_write == Some(self.writes + 1) {
            self.writes += 1;
            self.read_eof = true;
            self.swallow = true;
            // The end of stream is readable now: wake the reader, as the kernel would (a
            // read that returned `Pending` is not retried before its waker is woken).
            if let Some(w) = self.read_waker.take() {
                w.wake();
            }
            return Poll::Ready(Ok(total));
        }
        let mut limit = self.cfg.max_write.map_or(usize::MAX, |m| m.max(1));
        if let Some(k) = self.cfg.cut_after_write {
            if self.written >= k {
                if !self.shut {
                    // The peer sees end of stream; an error here changes nothing for it.
                    let _ = ready!(self.inner.poll_shutdown(cx));
                    self.shut = true;
                }
                self.swallow = true;
                return Poll::Ready(Ok(total));
            }
            limit = limit.min(k - self.written);
        }
        let r = if limit >= total {
            ready!(self.inner.poll_write_vectored(cx, bufs))
        } else {
            let mut left = limit;
            let mut short: Vec<IoSlice<'_>> = Vec::new();
            for b in bufs {
                if left == 0 {
                    break;
                }
                let take = b.len().min(left);
                if take > 0 {
                    short.push(IoSlice::new(&b[..take]));
                }
                left -= take;
            }
            ready!(self.inner.poll_write_vectored(cx, &short))
        };
        if let Ok(n) = &r
            && *n > 0
        {
            self.writes += 1;
            self.written += n;
            self.stats.write_calls.fetch_add(1, Ordering::SeqCst);
            self.stats.bytes_written.fetch_add(*n, Ordering::SeqCst);
        }
        Poll::Ready(r)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.shut {
            return Poll::Ready(Ok(()));
        }
        let r = ready!(self.inner.poll_shutdown(cx));
        self.shut = true;
        Poll::Ready(r)
    }
}

impl<T> Drop for Mock<T> {
    fn drop(&mut self) {
        if let Some(net) = &self.net {
            net.open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// A [`Listener`] whose accepted streams are wrapped in [`Mock`]s per a [`Plan`], counting
/// connections and recording `TCP_NODELAY` of each accepted stream.
pub struct MockListener<L: Listener> {
    inner: L,
    plan: Plan,
    stats: Arc<NetStats>,
    nodelay: fn(&L::Io) -> Option<bool>,
}

impl<L: Listener> MockListener<L> {
    /// Wraps `inner`; `nodelay` reads `TCP_NODELAY` of an accepted stream.
    pub fn new(inner: L, plan: Plan, nodelay: fn(&L::Io) -> Option<bool>) -> Self {
        Self {
            inner,
            plan,
            stats: Arc::new(NetStats::default()),
            nodelay,
        }
    }

    /// The accepted connections.
    pub fn stats(&self) -> Arc<NetStats> {
        Arc::clone(&self.stats)
    }
}

impl<L: Listener> Listener for MockListener<L> {
    type Io = Mock<L::Io>;

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<(Self::Io, Peer)>> {
        let (io, peer) = ready!(self.inner.poll_accept(cx))?;
        let (n, stats) = self.stats.register((self.nodelay)(&io));
        let cfg = (self.plan)(n);
        Poll::Ready(Ok((
            Mock::with_stats(io, cfg, stats, Some(Arc::clone(&self.stats))),
            peer,
        )))
    }
}

/// A [`Connector`] whose connections are wrapped in [`Mock`]s per a [`Plan`], counting
/// connections and recording `TCP_NODELAY` of each connected stream.
pub struct MockConnector<C: Connector> {
    inner: C,
    plan: Plan,
    stats: Arc<NetStats>,
    nodelay: fn(&C::Io) -> Option<bool>,
}

impl<C: Connector> MockConnector<C> {
    /// Wraps `inner`; `nodelay` reads `TCP_NODELAY` of a connected stream.
    pub fn new(inner: C, plan: Plan, nodelay: fn(&C::Io) -> Option<bool>) -> Self {
        Self {
            inner,
            plan,
            stats: Arc::new(NetStats::default()),
            nodelay,
        }
    }

    /// The opened connections.
    pub fn stats(&self) -> Arc<NetStats> {
        Arc::clone(&self.stats)
    }
}

impl<C: Connector> Connector for MockConnector<C> {
    type Io = Mock<C::Io>;

    fn backend(&self) -> Option<&fcgi_driver::client::Backend> {
        self.inner.backend()
    }

    fn connect(&self) -> BoxFuture<io::Result<Self::Io>> {
        let connecting = self.inner.connect();
        let plan = Arc::clone(&self.plan);
        let stats = Arc::clone(&self.stats);
        let nodelay = self.nodelay;
        Box::pin(async move {
            let io = connecting.await?;
            let (n, conn_stats) = stats.register(nodelay(&io));
            Ok(Mock::with_stats(io, plan(n), conn_stats, Some(stats)))
        })
    }
}
