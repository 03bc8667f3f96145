//! Runtime-neutral helpers for the scenarios: tasks with results, bounded waits, a gate, a
//! probe that handlers report to (started / completed / cancelled by drop), and
//! deterministic payloads.
//!
//! Everything here needs only [`Runtime`] (spawn + sleep), so it works on every executor.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use fcgi_driver::client::RequestBody;
use fcgi_driver::runtime::{Peer, Runtime};
use fcgi_driver::server::{Body, Request};

/// Longest any single wait of a scenario may take before the scenario fails. A failure
/// guard only: no scenario asserts on elapsed time.
pub const GUARD: Duration = Duration::from_secs(20);

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A spawned task whose output can be awaited.
#[derive(Debug)]
pub struct Task<T> {
    slot: Arc<Mutex<TaskSlot<T>>>,
}

#[derive(Debug)]
struct TaskSlot<T> {
    value: Option<T>,
    ended: bool,
    waker: Option<Waker>,
}

/// Marks the task ended when dropped, with or without a value (a panic unwinds through it).
struct TaskEnd<T>(Arc<Mutex<TaskSlot<T>>>);

impl<T> Drop for TaskEnd<T> {
    fn drop(&mut self) {
        let mut s = lock(&self.0);
        s.ended = true;
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    }
}

/// Spawns `fut` on `rt`; its output is available through [`Task::join`].
pub fn spawn<R: Runtime, T: Send + 'static>(
    rt: &R,
    fut: impl Future<Output = T> + Send + 'static,
) -> Task<T> {
    let slot = Arc::new(Mutex::new(TaskSlot {
        value: None,
        ended: false,
        waker: None,
    }));
    let end = TaskEnd(Arc::clone(&slot));
    rt.spawn(Box::pin(async move {
        let v = fut.await;
        lock(&end.0).value = Some(v);
        drop(end);
    }));
    Task { slot }
}

impl<T> Task<T> {
    /// Whether the task has ended.
    pub fn is_finished(&self) -> bool {
        lock(&self.slot).ended
    }

    /// The task's output; panics if the task panicked or was dropped by its executor.
    pub async fn join(self) -> T {
        std::future::poll_fn(|cx| {
            let mut s = lock(&self.slot);
            if let Some(v) = s.value.take() {
                return Poll::Ready(v);
            }
            if s.ended {
                panic!("a spawned task of the scenario panicked or was dropped");
            }
            s.waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

/// `None` if `duration` passes before `fut` completes.
pub async fn timeout<R: Runtime, F: Future>(
    rt: &R,
    duration: Duration,
    fut: F,
) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut sleep = rt.sleep(duration);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        sleep.as_mut().poll(cx).map(|()| None)
    })
    .await
}

/// `fut`'s output; panics (naming `what`) if it takes longer than [`GUARD`].
#[track_caller]
pub fn within<'a, R: Runtime, F: Future + 'a>(
    rt: &'a R,
    what: &'a str,
    fut: F,
) -> impl Future<Output = F::Output> + 'a {
    let caller = std::panic::Location::caller();
    async move {
        match timeout(rt, GUARD, fut).await {
            Some(v) => v,
            None => panic!("{caller}: {what}: not done within {GUARD:?}"),
        }
    }
}

/// Waits until `cond` holds, checking every few milliseconds; panics (naming `what`) after
/// [`GUARD`].
#[track_caller]
pub fn eventually<'a, R: Runtime>(
    rt: &'a R,
    what: &'a str,
    mut cond: impl FnMut() -> bool + 'a,
) -> impl Future<Output = ()> + 'a {
    let caller = std::panic::Location::caller();
    async move {
        let start = Instant::now();
        while !cond() {
            if start.elapsed() > GUARD {
                panic!("{caller}: {what}: still false after {GUARD:?}");
            }
            rt.sleep(Duration::from_millis(3)).await;
        }
    }
}

/// Waits until `value()` stops changing (the same for `quiet` consecutive checks `step`
/// apart), bounded by [`GUARD`]; returns the settled value. Used to let a stalled transfer
/// show how far it got; never an assertion on time by itself.
pub async fn settled<R: Runtime>(
    rt: &R,
    step: Duration,
    quiet: usize,
    mut value: impl FnMut() -> usize,
) -> usize {
    let start = Instant::now();
    let mut last = value();
    let mut same = 0;
    while same < quiet && start.elapsed() < GUARD {
        rt.sleep(step).await;
        let now = value();
        if now == last {
            same += 1;
        } else {
            same = 0;
            last = now;
        }
    }
    last
}

/// A one-way gate: tasks wait until the test opens it.
#[derive(Debug, Default)]
pub struct Gate {
    state: Mutex<(bool, Vec<Waker>)>,
}

impl Gate {
    /// Opens the gate for every waiter, present and future.
    pub fn open(&self) {
        let mut s = lock(&self.state);
        s.0 = true;
        for w in s.1.drain(..) {
            w.wake();
        }
    }

    /// Whether the gate is open.
    pub fn is_open(&self) -> bool {
        lock(&self.state).0
    }

    /// Ready once the gate is open.
    pub fn poll_open(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = lock(&self.state);
        if s.0 {
            return Poll::Ready(());
        }
        s.1.push(cx.waker().clone());
        Poll::Pending
    }

    /// Waits until the gate is open.
    pub async fn wait(&self) {
        std::future::poll_fn(|cx| self.poll_open(cx)).await;
    }
}

/// What the handlers of a scenario did. A handler takes a [`ProbeGuard`] when it is called;
/// the guard counts the handler as completed if it returned, as cancelled if its future was
/// dropped first (abort, closed connection, shutdown deadline, panic).
#[derive(Debug, Default)]
pub struct Probe {
    started: AtomicUsize,
    completed: AtomicUsize,
    cancelled: AtomicUsize,
    io_errors: AtomicUsize,
    active: AtomicUsize,
    peak: AtomicUsize,
    peers: Mutex<Vec<(Peer, usize)>>,
}

impl Probe {
    /// Registers a handler call for `req`.
    pub fn enter(self: &Arc<Self>, req: &Request) -> ProbeGuard {
        self.started.fetch_add(1, Ordering::SeqCst);
        let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        let mut peers = lock(&self.peers);
        match peers.iter_mut().find(|(p, _)| p == req.peer()) {
            Some((_, n)) => *n += 1,
            None => peers.push((req.peer().clone(), 1)),
        }
        ProbeGuard {
            probe: Arc::clone(self),
            completed: false,
        }
    }

    /// Handlers called so far.
    pub fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    /// Handlers that returned.
    pub fn completed(&self) -> usize {
        self.completed.load(Ordering::SeqCst)
    }

    /// Handlers whose future was dropped before returning.
    pub fn cancelled(&self) -> usize {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Handlers that saw an IO error on their request streams.
    pub fn io_errors(&self) -> usize {
        self.io_errors.load(Ordering::SeqCst)
    }

    /// Handlers running now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Most handlers running at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// Requests per web-server peer (for TCP: per connection), in order of first request.
    pub fn per_peer(&self) -> Vec<usize> {
        lock(&self.peers).iter().map(|(_, n)| *n).collect()
    }
}

/// Held by a running handler; see [`Probe`].
#[derive(Debug)]
pub struct ProbeGuard {
    probe: Arc<Probe>,
    completed: bool,
}

impl ProbeGuard {
    /// The handler returned normally.
    pub fn complete(mut self) {
        self.completed = true;
        self.probe.completed.fetch_add(1, Ordering::SeqCst);
    }

    /// The handler saw an IO error (it then waits to be cancelled).
    pub fn io_error(&self) {
        self.probe.io_errors.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for ProbeGuard {
    fn drop(&mut self) {
        self.probe.active.fetch_sub(1, Ordering::SeqCst);
        if !self.completed {
            self.probe.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Period of the deterministic payload (a prime, so that it never lines up with record or
/// buffer sizes).
const PERIOD: usize = 1_048_573;

fn base() -> &'static Bytes {
    static BASE: OnceLock<Bytes> = OnceLock::new();
    BASE.get_or_init(|| {
        (0..PERIOD)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ (i as u8))
            .collect::<Vec<u8>>()
            .into()
    })
}

/// `len` bytes of the deterministic payload starting at `offset` (zero-copy when the range
/// does not wrap around the period).
pub fn pattern(offset: usize, len: usize) -> Bytes {
    let start = offset % PERIOD;
    if start + len <= PERIOD {
        return base().slice(start..start + len);
    }
    let mut out = BytesMut::with_capacity(len);
    let mut pos = offset;
    while out.len() < len {
        let s = pos % PERIOD;
        let take = (PERIOD - s).min(len - out.len());
        out.extend_from_slice(&base()[s..s + take]);
        pos += take;
    }
    out.freeze()
}

/// Whether `data` equals the payload at `offset`.
pub fn pattern_matches(offset: usize, data: &[u8]) -> bool {
    let mut pos = offset;
    let mut rest = data;
    while !rest.is_empty() {
        let s = pos % PERIOD;
        let take = (PERIOD - s).min(rest.len());
        if rest[..take] != base()[s..s + take] {
            return false;
        }
        pos += take;
        rest = &rest[take..];
    }
    true
}

/// Reads a request stream to its end, checking it against the payload. `None` on an IO
/// error; otherwise the length and whether every byte matched.
pub async fn read_pattern(body: &mut Body) -> Option<(usize, bool)> {
    let mut len = 0;
    let mut intact = true;
    while let Some(piece) = body.chunk().await {
        let piece = piece.ok()?;
        intact &= pattern_matches(len, &piece);
        len += piece.len();
    }
    Some((len, intact))
}

/// A streamed request body of `total` payload bytes in pieces of `piece` bytes; `pulled`
/// counts the bytes the client has taken from it so far.
pub fn pattern_stream(total: usize, piece: usize, pulled: Arc<AtomicUsize>) -> RequestBody {
    RequestBody::stream(PatternStream {
        offset: 0,
        total,
        piece,
        pulled,
    })
}

struct PatternStream {
    offset: usize,
    total: usize,
    piece: usize,
    pulled: Arc<AtomicUsize>,
}

impl futures_core::Stream for PatternStream {
    type Item = io::Result<Bytes>;
    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.offset >= self.total {
            return Poll::Ready(None);
        }
        let n = self.piece.min(self.total - self.offset);
        let b = pattern(self.offset, n);
        self.offset += n;
        self.pulled.fetch_add(n, Ordering::SeqCst);
        Poll::Ready(Some(Ok(b)))
    }
}

/// A streamed request body that yields `pieces` and then never ends (nor wakes anyone): a
/// client whose upload stalls mid-way.
pub fn stalling_stream(pieces: Vec<Bytes>) -> RequestBody {
    RequestBody::stream(Stalling {
        pieces: pieces.into(),
    })
}

struct Stalling {
    pieces: VecDeque<Bytes>,
}

impl futures_core::Stream for Stalling {
    type Item = io::Result<Bytes>;
    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.pieces.pop_front() {
            Some(b) => Poll::Ready(Some(Ok(b))),
            None => Poll::Pending,
        }
    }
}

/// A streamed request body: `before`, then (once `gate` is open) `after`, then its end.
pub fn gated_stream(before: Vec<Bytes>, gate: Arc<Gate>, after: Vec<Bytes>) -> RequestBody {
    RequestBody::stream(Gated {
        before: before.into(),
        gate,
        after: after.into(),
    })
}

struct Gated {
    before: VecDeque<Bytes>,
    gate: Arc<Gate>,
    after: VecDeque<Bytes>,
}

impl futures_core::Stream for Gated {
    type Item = io::Result<Bytes>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(b) = self.before.pop_front() {
            return Poll::Ready(Some(Ok(b)));
        }
        if self.gate.poll_open(cx).is_pending() {
            return Poll::Pending;
        }
        Poll::Ready(self.after.pop_front().map(Ok))
    }
}
