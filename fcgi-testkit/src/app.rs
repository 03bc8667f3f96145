//! The application under test: where it listens, how an adapter starts it, and what it saw.
//!
//! The adapter's test binds a listener, wraps it with [`Stats::listener`] and the echo
//! handler with [`Stats::handler`], and serves them on its runtime. Both wrappers only use
//! `fcgi_driver`'s runtime-neutral traits, so every adapter reports the same facts: accepted
//! and open FastCGI connections, and per request the web server's socket address, the role,
//! the keep-connection flag, the params, the app status, and when it started and ended
//! relative to the others (a sequence number, not a clock).

use std::any::Any;
use std::future::Future;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::BytesMut;
use fcgi_driver::fcgi_core::Role;
use fcgi_driver::runtime::{Listener, Peer, Transport};
use fcgi_driver::server::{Handler, Request, Response};

use crate::process::wait_for;

/// Where the FastCGI application listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppAddr {
    /// A loopback TCP address.
    Tcp(SocketAddr),
    /// A Unix socket path.
    Unix(PathBuf),
}

impl AppAddr {
    /// The address as `cgi-fcgi -connect` and spawn-fcgi want it (`host:port` or a path).
    pub fn plain(&self) -> String {
        match self {
            Self::Tcp(a) => a.to_string(),
            Self::Unix(p) => p.display().to_string(),
        }
    }

    /// The address as a client [`Backend`](fcgi_driver::client::Backend).
    pub fn backend(&self) -> fcgi_driver::client::Backend {
        match self {
            Self::Tcp(a) => fcgi_driver::client::Backend::Tcp(*a),
            Self::Unix(p) => fcgi_driver::client::Backend::Unix(p.clone()),
        }
    }

    /// Whether this is a Unix socket.
    pub fn is_unix(&self) -> bool {
        matches!(self, Self::Unix(_))
    }
}

/// Where the adapter should bind.
#[derive(Debug, Clone)]
pub enum Listen {
    /// Bind this TCP address (`127.0.0.1:0`: any free loopback port).
    Tcp(SocketAddr),
    /// Bind a Unix socket at this path (in a fresh temporary directory).
    Unix(PathBuf),
}

/// What an adapter returns after starting the application.
pub struct AppParts {
    /// Where it actually listens (the bound port for TCP).
    pub addr: AppAddr,
    /// Dropping this stops the server (and its runtime).
    pub guard: Box<dyn Any + Send>,
}

impl std::fmt::Debug for AppParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppParts")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// How an adapter starts the echo application: bind per [`Listen`], wrap the listener and
/// the handler with the given [`Stats`], serve in the background.
pub type StartApp = fn(Listen, Arc<Stats>) -> AppParts;

/// A running application under test; stops it when dropped.
pub struct App {
    // Dropped first: the server stops before its socket directory goes.
    guard: Option<Box<dyn Any + Send>>,
    /// Where it listens.
    pub addr: AppAddr,
    /// What it saw.
    pub stats: Arc<Stats>,
    _dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Starts the application on a free loopback TCP port.
    pub fn start_tcp(start: StartApp) -> Self {
        let stats = Arc::new(Stats::default());
        let listen = Listen::Tcp(SocketAddr::from(([127, 0, 0, 1], 0)));
        let parts = start(listen, Arc::clone(&stats));
        Self {
            guard: Some(parts.guard),
            addr: parts.addr,
            stats,
            _dir: None,
        }
    }

    /// Starts the application on a Unix socket in a fresh temporary directory. The directory
    /// and the socket are opened to everyone, so that peers whose workers drop root
    /// privileges (Apache) can connect.
    pub fn start_unix(start: StartApp) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("fcgi-app-")
            .tempdir()
            .expect("temporary directory");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod socket directory");
        let path = dir.path().join("echo.sock");
        let stats = Arc::new(Stats::default());
        let parts = start(Listen::Unix(path.clone()), Arc::clone(&stats));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777))
            .expect("chmod socket");
        Self {
            guard: Some(parts.guard),
            addr: parts.addr,
            stats,
            _dir: Some(dir),
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        drop(self.guard.take());
    }
}

/// One request the application handled.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// The web server's end of the FastCGI connection (for TCP, its address and port
    /// identify the connection).
    pub peer: Peer,
    /// The FastCGI request id.
    pub id: u16,
    /// The role.
    pub role: Role,
    /// Whether `FCGI_KEEP_CONN` was set.
    pub keep_conn: bool,
    /// The params, lossily as text.
    pub params: Vec<(String, String)>,
    /// Sequence number of the handler's start.
    pub started: u64,
    /// Sequence number of the handler's end, once it ended.
    pub finished: Option<u64>,
    /// What the handler returned (`None` if it was cancelled or is still running).
    pub app_status: Option<u32>,
}

impl RequestRecord {
    /// The value of param `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the application saw; shared by the listener and handler wrappers.
#[derive(Debug, Default)]
pub struct Stats {
    seq: AtomicU64,
    accepted: AtomicUsize,
    open: AtomicUsize,
    requests: Mutex<Vec<RequestRecord>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Stats {
    /// Wraps a listener: counts accepted connections and tracks open ones.
    pub fn listener<L: Listener>(self: &Arc<Self>, inner: L) -> CountingListener<L> {
        CountingListener {
            inner,
            stats: Arc::clone(self),
        }
    }

    /// Wraps a handler: records every request.
    pub fn handler<H: Handler>(self: &Arc<Self>, inner: H) -> Observed<H> {
        Observed {
            inner,
            stats: Arc::clone(self),
        }
    }

    /// Connections accepted so far (including ones closed at once by admission rules).
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Connections currently open.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Every request so far, in start order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.requests).clone()
    }

    /// Requests whose handler runs now.
    pub fn in_flight(&self) -> usize {
        lock(&self.requests)
            .iter()
            .filter(|r| r.finished.is_none())
            .count()
    }

    /// Waits (bounded) until `pred` holds for these stats.
    pub fn wait_until(&self, what: &str, timeout: Duration, pred: impl Fn(&Self) -> bool) {
        if let Err(e) = wait_for(what, timeout, || Ok(pred(self))) {
            panic!(
                "{e}; accepted {}, open {}, requests {:#?}",
                self.accepted(),
                self.open_connections(),
                self.requests()
            );
        }
    }

    fn begin(&self, req: &Request) -> usize {
        let params = req
            .params()
            .iter()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect();
        let mut requests = lock(&self.requests);
        requests.push(RequestRecord {
            peer: req.peer().clone(),
            id: req.id(),
            role: req.role(),
            keep_conn: req.keep_conn(),
            params,
            started: self.seq.fetch_add(1, Ordering::SeqCst),
            finished: None,
            app_status: None,
        });
        requests.len() - 1
    }

    fn finish(&self, index: usize, app_status: Option<u32>) {
        let mut requests = lock(&self.requests);
        if let Some(r) = requests.get_mut(index) {
            r.finished = Some(self.seq.fetch_add(1, Ordering::SeqCst));
            r.app_status = app_status;
        }
    }
}

/// The largest number of `records` that ran at the same time on one FastCGI connection.
/// Connections are told apart by the peer address, so this is meaningful for TCP only
/// (all Unix-socket peers look alike).
pub fn max_concurrent_per_connection(records: &[RequestRecord]) -> usize {
    let mut best = 0;
    for r in records {
        // Requests on r's connection running at r's start (r included).
        let overlapping = records
            .iter()
            .filter(|o| o.peer == r.peer)
            .filter(|o| o.started <= r.started && o.finished.unwrap_or(u64::MAX) > r.started)
            .count();
        best = best.max(overlapping);
    }
    best
}

/// A listener that counts what it accepts.
#[derive(Debug)]
pub struct CountingListener<L> {
    inner: L,
    stats: Arc<Stats>,
}

impl<L: Listener> Listener for CountingListener<L> {
    type Io = Counted<L::Io>;

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<(Self::Io, Peer)>> {
        let (io, peer) = ready!(self.inner.poll_accept(cx))?;
        self.stats.accepted.fetch_add(1, Ordering::SeqCst);
        self.stats.open.fetch_add(1, Ordering::SeqCst);
        Poll::Ready(Ok((
            Counted {
                io,
                stats: Arc::clone(&self.stats),
            },
            peer,
        )))
    }
}

/// An accepted connection; counted as open until dropped.
#[derive(Debug)]
pub struct Counted<T> {
    io: T,
    stats: Arc<Stats>,
}

impl<T> Drop for Counted<T> {
    fn drop(&mut self) {
        self.stats.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<T: Transport> Transport for Counted<T> {
    fn poll_read_buf(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        self.io.poll_read_buf(cx, buf)
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.io.poll_write_vectored(cx, bufs)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_shutdown(cx)
    }
}

/// A handler that records each request in [`Stats`] around the wrapped handler.
#[derive(Debug)]
pub struct Observed<H> {
    inner: H,
    stats: Arc<Stats>,
}

struct Finish {
    stats: Arc<Stats>,
    index: usize,
    status: Option<u32>,
}

impl Drop for Finish {
    fn drop(&mut self) {
        self.stats.finish(self.index, self.status);
    }
}

impl<H: Handler> Handler for Observed<H> {
    fn handle(&self, request: Request, response: Response) -> impl Future<Output = u32> + Send {
        let index = self.stats.begin(&request);
        let finish = Finish {
            stats: Arc::clone(&self.stats),
            index,
            status: None,
        };
        let work = self.inner.handle(request, response);
        async move {
            // Owned by the future (not just its field), so a cancelled handler is recorded
            // as ended when the future is dropped.
            let mut finish = finish;
            let status = work.await;
            finish.status = Some(status);
            status
        }
    }
}
