//! Talking to a FastCGI application (php-fpm or any other): your program is the web server.
//!
//! A [`Client`] owns a pool of connections to one backend. [`Client::send`] starts a request
//! and returns its [`ClientResponse`] at once: the body is streamed in by a background task
//! while the response streams out, so a large upload and a large early response never
//! deadlock.

mod backend;
mod conn;
mod driver;
mod error;
mod options;
mod pool;
mod request;
mod response;

use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use fcgi_core::client::ClientConnection;
use fcgi_core::{Params, Role};

pub use backend::Backend;
pub use error::ClientError;
pub use options::{ClientOptions, Multiplexing};
pub use request::{BodyStream, ClientRequest, RequestBody};
pub use response::{ClientResponse, ResponseEnd};

use conn::ConnShared;
use driver::ClientDriver;
use pool::{MuxState, Pick, Pool};
use response::{Attached, Resend};

use crate::runtime::{BoxFuture, Runtime, Transport};
use crate::sync::lock;

/// Opens connections to one backend.
pub trait Connector: Send + Sync + 'static {
    /// The connected stream type.
    type Io: Transport;
    /// Connects (the client applies its connect timeout around this).
    fn connect(&self) -> BoxFuture<io::Result<Self::Io>>;
}

/// Most concurrent requests we put on one multiplexed connection when the backend does not
/// say (`FCGI_MAX_REQS` missing).
const DEFAULT_MUX_REQUESTS: u16 = 16;
/// New connections in a row that may die before their first use, per request.
const MAX_STILLBORN_CONNECTIONS: u32 = 3;
/// How long the multiplexing probe waits for `GET_VALUES_RESULT`.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// A pooled, optionally multiplexing FastCGI client for one backend.
///
/// Cheap to clone; clones share the pool.
pub struct Client<R: Runtime, C: Connector> {
    inner: Arc<Inner<R, C>>,
}

impl<R: Runtime, C: Connector> Clone for Client<R, C> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<R: Runtime, C: Connector> std::fmt::Debug for Client<R, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("connections", &self.inner.pool.len())
            .finish()
    }
}

struct Inner<R, C> {
    rt: R,
    connector: C,
    opts: ClientOptions,
    pool: Arc<Pool>,
}

impl<R: Runtime, C: Connector> Client<R, C> {
    /// A client for the backend `connector` reaches.
    pub fn new(rt: R, connector: C, opts: ClientOptions) -> Self {
        let mux = match opts.multiplexing {
            Multiplexing::Probe => MuxState::Unknown,
            Multiplexing::Off => MuxState::Known(1),
            Multiplexing::On(n) => MuxState::Known(n.max(1)),
        };
        Self {
            inner: Arc::new(Inner {
                rt,
                connector,
                opts,
                pool: Arc::new(Pool::new(mux)),
            }),
        }
    }

    /// The runtime the client spawns its tasks and timers on.
    pub fn runtime(&self) -> &R {
        &self.inner.rt
    }

    /// Connections currently open to the backend.
    pub fn connections(&self) -> usize {
        self.inner.pool.len()
    }

    /// Requests per connection the pool uses, once known (1 = no multiplexing).
    pub fn multiplexing(&self) -> Option<u16> {
        match self.inner.pool.mux() {
            MuxState::Known(n) => Some(n),
            _ => None,
        }
    }

    /// Starts a request. Returns once it is queued on a connection; read the response from
    /// the returned [`ClientResponse`].
    pub async fn send(&self, request: ClientRequest) -> Result<ClientResponse, ClientError> {
        if let Some(e) = request.error {
            return Err(ClientError::InvalidRequest(e));
        }
        let deadline = self.inner.opts.total_timeout.map(|t| Instant::now() + t);
        let replay = request.replay();
        let attached = self.inner.submit(request, false).await?;
        Ok(ClientResponse {
            attached,
            backend: Arc::clone(&self.inner) as Arc<dyn Resend>,
            replay,
            deadline,
            finished: false,
            timer: None,
        })
    }
}

impl<R: Runtime, C: Connector> Resend for Inner<R, C> {
    fn resend(
        self: Arc<Self>,
        request: ClientRequest,
        fresh: bool,
    ) -> BoxFuture<Result<Attached, ClientError>> {
        Box::pin(async move { self.submit(request, fresh).await })
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        self.rt.sleep(duration)
    }
}

impl<R: Runtime, C: Connector> Inner<R, C> {
    /// Puts the request on a connection (a new one if `fresh`) and starts its body feeder.
    async fn submit(
        self: &Arc<Self>,
        request: ClientRequest,
        fresh: bool,
    ) -> Result<Attached, ClientError> {
        let deadline = Instant::now() + self.opts.pool_timeout;
        loop {
            let shared = self.acquire(fresh, deadline).await?;
            let mut g = lock(&shared);
            let reused = g.begun > 0;
            if !g.can_take() {
                // Between pick and here another request took the last slot, or the
                // connection retired or died (its task gone, nothing would ever answer a
                // request queued on it now): pick again.
                continue;
            }
            let Ok(id) = g.conn.begin_request(request.role, self.opts.keep_alive) else {
                continue;
            };
            let key = g.register(id);
            g.conn
                .send_params(id, &request.params)
                .map_err(ClientError::InvalidRequest)?;
            g.conn.end_params(id).map_err(ClientError::Protocol)?;
            let role = request.role;
            let stdin = (role != Role::Authorizer).then_some(request.stdin);
            let data = (role == Role::Filter).then_some(request.data);
            match (stdin, data) {
                (None, _) => {}
                (Some(RequestBody::Empty), None) => {
                    g.conn.end_stdin(id).map_err(ClientError::Protocol)?;
                }
                (Some(stdin), data) => {
                    let feeder = feed(Arc::clone(&shared), id, key, stdin, data);
                    self.rt.spawn(Box::pin(feeder));
                }
            }
            g.wake_driver();
            drop(g);
            return Ok(Attached {
                shared,
                id,
                key,
                reused,
            });
        }
    }

    async fn acquire(
        self: &Arc<Self>,
        fresh: bool,
        deadline: Instant,
    ) -> Result<Arc<Mutex<ConnShared>>, ClientError> {
        let mut timer: Option<BoxFuture<()>> = None;
        // New connections that died before they could be used: a backend that accepts and
        // closes at once (full, or refusing us) must not make us reconnect forever.
        let mut stillborn = 0;
        loop {
            match self.pool.pick(self.opts.max_connections, !fresh) {
                Pick::Reuse(c) => return Ok(c),
                Pick::Connect { probe } => {
                    if let Some(c) = self.connect(probe).await? {
                        return Ok(c);
                    }
                    stillborn += 1;
                    if stillborn >= MAX_STILLBORN_CONNECTIONS {
                        return Err(ClientError::Connect(io::Error::new(
                            io::ErrorKind::ConnectionReset,
                            "the backend closed every new connection at once",
                        )));
                    }
                }
                Pick::Wait(seen) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(ClientError::Timeout("pool timeout"));
                    }
                    let sleep = timer.get_or_insert_with(|| self.rt.sleep(deadline - now));
                    let changed = std::future::poll_fn(|cx| {
                        if self.pool.poll_changed(seen, cx).is_ready() {
                            return Poll::Ready(true);
                        }
                        sleep.as_mut().poll(cx).map(|()| false)
                    })
                    .await;
                    if !changed {
                        return Err(ClientError::Timeout("pool timeout"));
                    }
                }
            }
        }
    }

    /// Opens a connection in a reserved pool slot. `Ok(None)`: it died at once (for example
    /// the backend closed it after the probe); the caller picks again.
    async fn connect(
        self: &Arc<Self>,
        probe: bool,
    ) -> Result<Option<Arc<Mutex<ConnShared>>>, ClientError> {
        let io = match with_timeout(
            &self.rt,
            self.opts.connect_timeout,
            self.connector.connect(),
        )
        .await
        {
            Some(Ok(io)) => io,
            failed => {
                self.pool.connected(None);
                if probe {
                    self.pool.set_mux(None);
                }
                return Err(match failed {
                    Some(Err(e)) => ClientError::Connect(e),
                    _ => ClientError::Timeout("connect timeout"),
                });
            }
        };
        let capacity = match self.pool.mux() {
            MuxState::Known(n) => n,
            _ => 1,
        };
        let mut config = self.opts.core.clone();
        config.max_concurrent_requests = capacity;
        let shared = Arc::new(Mutex::new(ConnShared::new(
            ClientConnection::new(config),
            self.opts.max_collected_stderr,
            self.opts.max_requests_per_connection,
        )));
        let driver = ClientDriver {
            io,
            rt: self.rt.clone(),
            shared: Arc::clone(&shared),
            pool: Arc::clone(&self.pool),
            read_timeout: self.opts.read_timeout,
            write_timeout: self.opts.write_timeout,
            idle_timeout: self.opts.idle_timeout,
            input: BytesMut::new(),
            eof: false,
            last_activity: Instant::now(),
            writes: crate::pump::WriteState::new(),
            alarm: crate::pump::Alarm::default(),
        };
        self.rt.spawn(Box::pin(driver.run()));
        if probe {
            let capacity = self.probe(&shared).await;
            self.pool.set_mux(Some(capacity));
            lock(&shared).conn.set_max_concurrent_requests(capacity);
        }
        if lock(&shared).dead.is_some() {
            self.pool.connected(None);
            return Ok(None);
        }
        self.pool.connected(Some(Arc::clone(&shared)));
        Ok(Some(shared))
    }

    /// Asks the backend whether it multiplexes: `GET_VALUES` for `FCGI_MPXS_CONNS` and
    /// `FCGI_MAX_REQS`. No answer (php-fpm may close the connection, some applications
    /// ignore management records) means one request per connection.
    async fn probe(&self, shared: &Arc<Mutex<ConnShared>>) -> u16 {
        {
            let mut g = lock(shared);
            if g.conn
                .get_values(&[b"FCGI_MPXS_CONNS", b"FCGI_MAX_REQS"])
                .is_err()
            {
                return 1;
            }
            g.wake_driver();
        }
        let answer = with_timeout(
            &self.rt,
            PROBE_TIMEOUT,
            std::future::poll_fn(|cx| lock(shared).poll_values(cx)),
        )
        .await
        .flatten();
        answer.map_or(1, |values| mux_capacity(&values))
    }
}

/// Requests per connection a `GET_VALUES` answer allows.
fn mux_capacity(values: &Params) -> u16 {
    if values.get(b"FCGI_MPXS_CONNS") != Some(b"1") {
        return 1;
    }
    values
        .get_str("FCGI_MAX_REQS")
        .and_then(|v| v.trim().parse::<u32>().ok())
        .map_or(DEFAULT_MUX_REQUESTS, |n| {
            n.clamp(1, u32::from(u16::MAX)) as u16
        })
}

/// `None` if `duration` passes first.
async fn with_timeout<R: Runtime, T>(
    rt: &R,
    duration: Duration,
    fut: impl Future<Output = T>,
) -> Option<T> {
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

/// Streams a request's body (then, for a Filter, its data file) into the connection, with
/// back-pressure. A failing body stream fails the request.
async fn feed(
    shared: Arc<Mutex<ConnShared>>,
    id: u16,
    key: u64,
    stdin: RequestBody,
    data: Option<RequestBody>,
) {
    let mut streams = vec![(Kind::Stdin, stdin)];
    if let Some(d) = data {
        streams.push((Kind::Data, d));
    }
    for (kind, body) in streams {
        if let Err(e) = feed_one(&shared, id, key, kind, body).await {
            if let Some(e) = e {
                lock(&shared).fail_body(key, e);
            }
            return;
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Stdin,
    Data,
}

/// `Err(None)`: the request no longer wants its body; `Err(Some(e))`: the body failed.
async fn feed_one(
    shared: &Arc<Mutex<ConnShared>>,
    id: u16,
    key: u64,
    kind: Kind,
    body: RequestBody,
) -> Result<(), Option<io::Error>> {
    match body {
        RequestBody::Empty => {}
        RequestBody::Full(b) => write_all(shared, id, key, kind, b).await?,
        RequestBody::Stream(mut s) => loop {
            match std::future::poll_fn(|cx| s.as_mut().poll_next(cx)).await {
                None => break,
                Some(Ok(b)) => write_all(shared, id, key, kind, b).await?,
                Some(Err(e)) => return Err(Some(e)),
            }
        },
    }
    let mut g = lock(shared);
    if !g.wants_body(key) {
        return Err(None);
    }
    let ended = match kind {
        Kind::Stdin => g.conn.end_stdin(id),
        Kind::Data => g.conn.end_data(id),
    };
    g.wake_driver();
    ended.map_err(|e| Some(io::Error::new(io::ErrorKind::InvalidInput, e)))
}

/// Transmit room for request-body bytes. Bodies leave a reserve below the core's output
/// limit: the core stops consuming input while its transmit queue is at that limit, so a
/// queue filled with body bytes the application does not read yet would stop us reading the
/// response it is writing meanwhile — a deadlock whenever an application answers before it
/// has read its body. The reserve also covers record headers and padding, the stream ends
/// and other requests' `BEGIN_REQUEST` and `PARAMS`.
pub(crate) fn body_room(conn: &ClientConnection) -> usize {
    let limit = conn.config().limits.max_buffered_output;
    let reserve = (limit / 4).min(64 * 1024);
    conn.send_capacity().saturating_sub(reserve)
}

async fn write_all(
    shared: &Arc<Mutex<ConnShared>>,
    id: u16,
    key: u64,
    kind: Kind,
    mut b: Bytes,
) -> Result<(), Option<io::Error>> {
    while !b.is_empty() {
        std::future::poll_fn(|cx| {
            let mut g = lock(shared);
            if !g.wants_body(key) {
                return Poll::Ready(Err(None));
            }
            let room = body_room(&g.conn);
            if room == 0 {
                g.wait_room(cx);
                g.wake_driver();
                return Poll::Pending;
            }
            let piece = b.split_to(b.len().min(room));
            let sent = match kind {
                Kind::Stdin => g.conn.send_stdin(id, piece),
                Kind::Data => g.conn.send_data(id, piece),
            };
            g.wake_driver();
            Poll::Ready(sent.map_err(|e| Some(io::Error::new(io::ErrorKind::InvalidInput, e))))
        })
        .await?;
    }
    Ok(())
}
