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

use bytes::Bytes;
use fcgi_core::Params;
use fcgi_core::client::ClientConnection;

pub use backend::Backend;
pub use error::{ClientError, TimeoutKind};
pub use options::{ClientOptions, Multiplexing};
pub use request::{BodyStream, ClientRequest, RequestBody};
pub use response::{ClientResponse, ResponseEnd};

use conn::{ConnShared, Slot};
use driver::ClientDriver;
use pool::{MuxState, Pick, Pool};
use response::{Attached, Resend};

use crate::pump::{Alarm, Pump};
use crate::runtime::{BoxFuture, Runtime, Transport};
use crate::stats::Gauge;
use crate::sync::{NotifyWait, lock};

/// Opens connections to one backend.
pub trait Connector: Send + Sync + 'static {
    /// The connected stream type.
    type Io: Transport;
    /// Connects (the client applies its connect timeout around this).
    fn connect(&self) -> BoxFuture<io::Result<Self::Io>>;
    /// The backend this connects to, if it is one a [`Backend`] names (for logs and
    /// `Debug`); `None` by default.
    fn backend(&self) -> Option<&Backend> {
        None
    }
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
        let mut f = f.debug_struct("Client");
        if let Some(backend) = self.inner.connector.backend() {
            f.field("backend", &format_args!("{backend}"));
        }
        f.field("connections", &self.inner.pool.len()).finish()
    }
}

struct Inner<R, C> {
    rt: R,
    connector: C,
    opts: ClientOptions,
    pool: Arc<Pool>,
    gauges: Gauges,
}

/// Live-object counters of a client (see [`ClientStats`]).
#[derive(Debug, Default)]
struct Gauges {
    connection_tasks: Gauge,
    feeder_tasks: Gauge,
    request_entries: Gauge,
}

/// What a client holds right now, from [`Client::stats`].
///
/// Every figure is a count of live objects: each falls back to zero once the connections
/// and requests that made them are gone (tests and soak runs read them to prove it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ClientStats {
    /// Connections open in the pool.
    pub connections: usize,
    /// Connection tasks alive (one per open connection, until its socket is closed).
    pub connection_tasks: usize,
    /// Body feeder tasks alive (one per request whose body is still being sent).
    pub feeder_tasks: usize,
    /// Entries in the connections' request maps (requests begun whose response is not
    /// finished or dropped yet).
    pub request_entries: usize,
    /// Tasks registered to be woken by the pool or a connection (requests waiting for a
    /// connection, feeders waiting for transmit room, the multiplexing probe).
    pub waiters: usize,
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
                gauges: Gauges::default(),
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

    /// Live counts of what the client holds: connections, tasks, request entries and
    /// registered waiters. Each falls back to zero once what made it is gone.
    ///
    /// ```
    /// # fn demo<R: fcgi_driver::runtime::Runtime, C: fcgi_driver::client::Connector>(
    /// #     client: &fcgi_driver::client::Client<R, C>) {
    /// let stats = client.stats();
    /// println!("{} connections, {} requests", stats.connections, stats.request_entries);
    /// # }
    /// ```
    pub fn stats(&self) -> ClientStats {
        let g = &self.inner.gauges;
        ClientStats {
            connections: self.inner.pool.len(),
            connection_tasks: g.connection_tasks.get(),
            feeder_tasks: g.feeder_tasks.get(),
            request_entries: g.request_entries.get(),
            waiters: self.inner.pool.waiters(),
        }
    }

    /// Opens a connection to the backend (within the connect timeout) and closes it again:
    /// whether the backend accepts connections now. A health check for a backend found dead
    /// (see `fcgi_http::balance`); the connection does not enter the pool, so it pins no
    /// php-fpm worker.
    ///
    /// ```
    /// # async fn demo<R: fcgi_driver::runtime::Runtime, C: fcgi_driver::client::Connector>(
    /// #     client: &fcgi_driver::client::Client<R, C>) {
    /// if client.connect_check().await.is_err() {
    ///     eprintln!("the backend refuses connections");
    /// }
    /// # }
    /// ```
    pub async fn connect_check(&self) -> Result<(), ClientError> {
        let inner = &self.inner;
        match with_timeout(
            &inner.rt,
            inner.opts.connect_timeout,
            inner.connector.connect(),
        )
        .await
        {
            Some(Ok(io)) => {
                drop(io);
                Ok(())
            }
            Some(Err(e)) => Err(ClientError::Connect {
                backend: inner.connector.backend().cloned(),
                source: e,
            }),
            None => Err(ClientError::Timeout(TimeoutKind::Connect)),
        }
    }

    /// Asks the backend what it declares (`FCGI_GET_VALUES`, spec 4.1): `FCGI_MAX_CONNS`,
    /// `FCGI_MAX_REQS`, `FCGI_MPXS_CONNS`, or other names; the answer holds those it knows.
    /// Sent on a new connection of the pool; an answer must come within the read timeout.
    ///
    /// ```no_run
    /// # async fn demo<R: fcgi_driver::runtime::Runtime, C: fcgi_driver::client::Connector>(
    /// #     client: &fcgi_driver::client::Client<R, C>) -> Result<(), fcgi_driver::client::ClientError> {
    /// let values = client.get_values(&[b"FCGI_MPXS_CONNS", b"FCGI_MAX_REQS"]).await?;
    /// println!("multiplexes: {:?}", values.get_str("FCGI_MPXS_CONNS"));
    /// # Ok(()) }
    /// ```
    pub async fn get_values(&self, names: &[&[u8]]) -> Result<Params, ClientError> {
        let inner = &self.inner;
        let shared = inner
            .acquire(true, Instant::now() + inner.opts.pool_timeout)
            .await?;
        {
            let mut g = lock(&shared);
            g.conn
                .get_values(names)
                .map_err(ClientError::InvalidRequest)?;
            g.wake_driver();
        }
        let answer = with_timeout(
            &inner.rt,
            inner.opts.read_timeout,
            std::future::poll_fn(|cx| lock(&shared).poll_values(cx)),
        )
        .await;
        // No answer in time: the waker it registered must not stay behind.
        lock(&shared).stop_probe();
        match answer {
            Some(Some(values)) => Ok(values),
            Some(None) => Err(ClientError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the connection closed without an answer to GET_VALUES",
            ))),
            None => Err(ClientError::Timeout(TimeoutKind::Read)),
        }
    }

    /// Starts a request. Returns once it is queued on a connection; read the response from
    /// the returned [`ClientResponse`]. A body of known length (`RequestBody::Full`) without
    /// a `CONTENT_LENGTH` param gets one, so that CGI applications read it.
    pub async fn send(&self, mut request: ClientRequest) -> Result<ClientResponse, ClientError> {
        if let Some(e) = request.error {
            return Err(ClientError::InvalidRequest(e));
        }
        request.declare_body_length();
        let deadline = self.inner.opts.total_timeout.map(|t| Instant::now() + t);
        let (attached, replay) = self.inner.submit(request, false).await?;
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
    ) -> BoxFuture<Result<(Attached, Option<ClientRequest>), ClientError>> {
        Box::pin(async move { self.submit(request, fresh).await })
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        self.rt.sleep(duration)
    }
}

impl<R: Runtime, C: Connector> Inner<R, C> {
    /// Puts the request on a connection (a new one if `fresh`) and starts its body feeder.
    /// Returns where it runs and, if the retry-once rule may send it again, the request
    /// itself (its params moved, not copied; full bodies shared).
    async fn submit(
        self: &Arc<Self>,
        mut request: ClientRequest,
        fresh: bool,
    ) -> Result<(Attached, Option<ClientRequest>), ClientError> {
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
            let slot = g.register(id);
            g.conn
                .send_params(id, &request.params)
                .map_err(ClientError::InvalidRequest)?;
            g.conn.end_params(id).map_err(ClientError::Protocol)?;
            let role = request.role;
            // Decided before the bodies are taken: a stream leaves `Empty` behind.
            let replayable = request.replayable();
            let stdin = role.reads_stdin().then(|| request.stdin.take_for_send());
            let data = role.reads_data().then(|| request.data.take_for_send());
            match (stdin, data) {
                (None, _) => {}
                (Some(RequestBody::Empty), None) => {
                    g.conn.end_stdin(id).map_err(ClientError::Protocol)?;
                }
                (Some(stdin), data) => {
                    let live = self.gauges.feeder_tasks.token();
                    let feeder = feed(Arc::clone(&shared), slot, stdin, data);
                    self.rt.spawn(Box::pin(async move {
                        feeder.await;
                        drop(live);
                    }));
                }
            }
            g.wake_driver();
            drop(g);
            let replay = replayable.then_some(request);
            return Ok((
                Attached {
                    shared,
                    pool: Arc::clone(&self.pool),
                    slot,
                    reused,
                },
                replay,
            ));
        }
    }

    async fn acquire(
        self: &Arc<Self>,
        fresh: bool,
        deadline: Instant,
    ) -> Result<Arc<Mutex<ConnShared>>, ClientError> {
        let mut timer: Option<BoxFuture<()>> = None;
        let mut changed = NotifyWait::default();
        // New connections that died before they could be used: a backend that accepts and
        // closes at once (full, or refusing us) must not make us reconnect forever.
        let mut stillborn = 0;
        loop {
            let pick = match self.pool.pick(self.opts.max_connections, !fresh) {
                // Nothing free: listen, then look again, so that a change between the two
                // is not missed (listening only when needed: it takes the event's lock).
                Pick::Wait => {
                    changed.arm(&self.pool.changed);
                    self.pool.pick(self.opts.max_connections, !fresh)
                }
                pick => pick,
            };
            match pick {
                Pick::Reuse(c) => return Ok(c),
                Pick::Connect(reservation) => {
                    if let Some(c) = self.connect(reservation).await? {
                        return Ok(c);
                    }
                    stillborn += 1;
                    if stillborn >= MAX_STILLBORN_CONNECTIONS {
                        return Err(ClientError::Connect {
                            backend: self.connector.backend().cloned(),
                            source: io::Error::new(
                                io::ErrorKind::ConnectionReset,
                                "the backend closed every new connection at once",
                            ),
                        });
                    }
                }
                Pick::Wait => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(ClientError::Timeout(TimeoutKind::Pool));
                    }
                    let sleep = timer.get_or_insert_with(|| self.rt.sleep(deadline - now));
                    let changed = std::future::poll_fn(|cx| {
                        if changed.poll(cx).is_ready() {
                            return Poll::Ready(true);
                        }
                        sleep.as_mut().poll(cx).map(|()| false)
                    })
                    .await;
                    if !changed {
                        return Err(ClientError::Timeout(TimeoutKind::Pool));
                    }
                }
            }
        }
    }

    /// Opens a connection in a reserved pool slot. `Ok(None)`: it died at once (for example
    /// the backend closed it after the probe); the caller picks again.
    async fn connect(
        self: &Arc<Self>,
        mut reservation: pool::Reservation<'_>,
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
                // Dropping the reservation gives the slot back (and the probe to the next
                // connection).
                drop(reservation);
                return Err(match failed {
                    Some(Err(e)) => ClientError::Connect {
                        backend: self.connector.backend().cloned(),
                        source: e,
                    },
                    _ => ClientError::Timeout(TimeoutKind::Connect),
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
            self.gauges.request_entries.clone(),
        )));
        let driver = ClientDriver {
            pump: Pump::new(io),
            rt: self.rt.clone(),
            shared: Arc::clone(&shared),
            pool: Arc::clone(&self.pool),
            read_timeout: self.opts.read_timeout,
            write_timeout: self.opts.write_timeout,
            idle_timeout: self.opts.idle_timeout,
            alarm: Alarm::default(),
            held: false,
            _live: self.gauges.connection_tasks.token(),
        };
        self.rt.spawn(Box::pin(driver.run()));
        reservation.opened(&shared);
        let mut mux = None;
        if reservation.probe {
            let capacity = self.probe(&shared).await;
            lock(&shared).conn.set_max_concurrent_requests(capacity);
            mux = Some(capacity);
        }
        Ok(reservation.fill(&shared, mux).then_some(shared))
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
        // No answer in time: the waker it registered must not stay behind.
        lock(shared).stop_probe();
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
    slot: Slot,
    stdin: RequestBody,
    data: Option<RequestBody>,
) {
    let streams = [(Kind::Stdin, Some(stdin)), (Kind::Data, data)];
    for (kind, body) in streams {
        let Some(body) = body else { continue };
        if let Err(e) = feed_one(&shared, slot, kind, body).await {
            if let Some(e) = e {
                lock(&shared).fail_body(slot, e);
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
    slot: Slot,
    kind: Kind,
    body: RequestBody,
) -> Result<(), Option<io::Error>> {
    match body {
        RequestBody::Empty => {}
        RequestBody::Full(b) => write_all(shared, slot, kind, b).await?,
        RequestBody::Stream(mut s) => {
            let mut wait = NotifyWait::default();
            loop {
                // The next piece — unless the request stops wanting its body meanwhile (its
                // response dropped, its END_REQUEST, the connection's death): a stalled
                // upload must not keep the feeder, its stream and the connection alive.
                let next = std::future::poll_fn(|cx| {
                    loop {
                        {
                            let g = lock(shared);
                            if !g.wants_body(slot) {
                                return Poll::Ready(None);
                            }
                            g.wait_lifecycle(&mut wait);
                        }
                        if let Poll::Ready(item) = s.as_mut().poll_next(cx) {
                            return Poll::Ready(Some(item));
                        }
                        if wait.poll(cx).is_pending() {
                            return Poll::Pending;
                        }
                    }
                })
                .await;
                match next {
                    None => return Err(None),
                    Some(None) => break,
                    Some(Some(Ok(b))) => write_all(shared, slot, kind, b).await?,
                    Some(Some(Err(e))) => return Err(Some(e)),
                }
            }
        }
    }
    let mut g = lock(shared);
    if !g.wants_body(slot) {
        return Err(None);
    }
    let ended = match kind {
        Kind::Stdin => g.conn.end_stdin(slot.id),
        Kind::Data => g.conn.end_data(slot.id),
    };
    g.wake_driver();
    ended.map_err(send_error)
}

/// What a failed send of body bytes means: the request is gone (ended or aborted since the
/// check; `None`, nothing to report), or our own misuse (an error for the request).
fn send_error(e: fcgi_core::Error) -> Option<io::Error> {
    match e {
        fcgi_core::Error::Api(
            fcgi_core::ApiError::UnknownRequest(_) | fcgi_core::ApiError::WrongPhase { .. },
        ) => None,
        e => Some(io::Error::new(io::ErrorKind::InvalidInput, e)),
    }
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
    slot: Slot,
    kind: Kind,
    mut b: Bytes,
) -> Result<(), Option<io::Error>> {
    let mut wait = NotifyWait::default();
    while !b.is_empty() {
        std::future::poll_fn(|cx| {
            loop {
                let mut g = lock(shared);
                if !g.wants_body(slot) {
                    return Poll::Ready(Err(None));
                }
                let room = body_room(&g.conn);
                if room == 0 {
                    // Listen under the lock the driver notifies under: nothing is missed.
                    g.wait_room(&mut wait);
                    g.wake_driver();
                    drop(g);
                    if wait.poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    continue;
                }
                let piece = b.split_to(b.len().min(room));
                let sent = match kind {
                    Kind::Stdin => g.conn.send_stdin(slot.id, piece),
                    Kind::Data => g.conn.send_data(slot.id, piece),
                };
                g.wake_driver();
                return Poll::Ready(sent.map_err(send_error));
            }
        })
        .await?;
    }
    Ok(())
}
