//! What the scenarios are built from: a server under test on a [`Harness`] (with mockable
//! accepted streams), clients for it (with mockable connections), a scriptable test
//! application, and a raw blocking FastCGI client for bytes the driver's client would never
//! send.

use std::future::Future;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fcgi_driver::client::{Client, ClientError, ClientOptions, ClientRequest, Multiplexing};
use fcgi_driver::fcgi_core::Role;
use fcgi_driver::fcgi_core::client::{ClientConfig, ClientConnection};
use fcgi_driver::runtime::Runtime;
use fcgi_driver::server::{Handler, Request, Response, Server, ServerOptions, ShutdownHandle};

use super::Harness;
use super::mock::{MockConnector, MockListener, NetStats, Plan};
use super::util::{GUARD, Gate, Probe, Task, pattern, read_pattern, spawn};

/// Which kind of socket a scenario runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Net {
    /// Loopback TCP.
    Tcp,
    /// A Unix socket in a fresh temporary directory.
    Unix,
}

/// Where the server under test listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    /// A loopback TCP address.
    Tcp(SocketAddr),
    /// A Unix socket path.
    Unix(PathBuf),
}

/// The client type of the scenarios: the driver's client on the harness's runtime, over
/// mockable connections.
pub type TestClient<H> = Client<<H as Harness>::Rt, MockConnector<<H as Harness>::Connector>>;

/// A server under test, serving in a background task.
pub struct Srv {
    /// Where it listens.
    pub addr: Addr,
    /// Its shutdown handle (also counts connections and requests).
    pub handle: ShutdownHandle,
    /// The connections it accepted.
    pub net: Arc<NetStats>,
    serve: Option<Task<io::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Srv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Srv").field("addr", &self.addr).finish()
    }
}

/// Longer than any wait of a scenario: the timeouts a scenario does not test are set to
/// this, so that none of them can end a connection (and rescue a broken behaviour) while a
/// scenario waits.
pub const NEVER: Duration = Duration::from_secs(600);

/// Server options for the scenarios: any peer address allowed, every timeout [`NEVER`].
pub fn server_opts() -> ServerOptions {
    let mut o = ServerOptions::default();
    o.web_server_addrs = fcgi_driver::server::WebServerAddrs::Any;
    o.read_timeout = NEVER;
    o.write_timeout = NEVER;
    o.keepalive_timeout = NEVER;
    o.first_request_timeout = NEVER;
    o.shutdown_timeout = NEVER;
    o
}

/// Client options for the scenarios: this multiplexing policy, every timeout but the
/// connect timeout [`NEVER`].
pub fn client_opts(mux: Multiplexing) -> ClientOptions {
    let mut o = ClientOptions::default();
    o.multiplexing = mux;
    o.idle_timeout = NEVER;
    o.pool_timeout = NEVER;
    o.read_timeout = NEVER;
    o.write_timeout = NEVER;
    o
}

impl Srv {
    /// Binds per `net`, and serves `handler` with `opts` in a background task; accepted
    /// streams get the faults `plan` says.
    pub async fn start<H: Harness, A: Handler>(
        h: &H,
        net: Net,
        opts: ServerOptions,
        handler: A,
        plan: Plan,
    ) -> Self {
        let rt = h.runtime();
        let (listener, addr, dir) = match net {
            Net::Tcp => {
                let (l, a) = h.bind_tcp().await.expect("bind a loopback TCP listener");
                (l, Addr::Tcp(a), None)
            }
            Net::Unix => {
                let dir = tempfile::Builder::new()
                    .prefix("fcgi-behaviour-")
                    .tempdir()
                    .expect("temporary directory");
                let path = dir.path().join("app.sock");
                let l = h.bind_unix(&path).await.expect("bind a Unix listener");
                (l, Addr::Unix(path), Some(dir))
            }
        };
        let listener = MockListener::new(listener, plan, H::nodelay);
        let stats = listener.stats();
        let server = Server::new(rt.clone(), opts);
        let handle = server.shutdown_handle();
        let serve = spawn(&rt, async move { server.serve(listener, handler).await });
        Self {
            addr,
            handle,
            net: stats,
            serve: Some(serve),
            _dir: dir,
        }
    }

    /// A client for this server; its connections get the faults `plan` says.
    pub fn client<H: Harness>(
        &self,
        h: &H,
        opts: ClientOptions,
        plan: Plan,
    ) -> (TestClient<H>, Arc<NetStats>) {
        let inner = match &self.addr {
            Addr::Tcp(a) => h.tcp_connector(*a),
            Addr::Unix(p) => h.unix_connector(p),
        };
        let connector = MockConnector::new(inner, plan, H::nodelay);
        let stats = connector.stats();
        (Client::new(h.runtime(), connector, opts), stats)
    }

    /// Whether `serve` has returned.
    pub fn serve_finished(&self) -> bool {
        self.serve.as_ref().is_none_or(Task::is_finished)
    }

    /// Waits (bounded) for `serve` to return and returns its result.
    pub async fn serve_result<R: Runtime>(&mut self, rt: &R) -> io::Result<()> {
        let task = self.serve.take().expect("serve result taken twice");
        super::util::within(rt, "serve() returning", task.join()).await
    }

    /// A blocking raw connection to the server (socket timeouts of [`GUARD`]).
    pub fn raw(&self) -> RawConn {
        RawConn::connect(&self.addr).expect("raw connection to the server")
    }
}

/// A blocking socket to the server, for bytes the driver's client would never send.
#[derive(Debug)]
pub enum RawConn {
    /// TCP.
    Tcp(std::net::TcpStream),
    /// Unix.
    Unix(std::os::unix::net::UnixStream),
}

impl RawConn {
    /// Connects, with read and write timeouts of [`GUARD`].
    pub fn connect(addr: &Addr) -> io::Result<Self> {
        Ok(match addr {
            Addr::Tcp(a) => {
                let s = std::net::TcpStream::connect_timeout(a, GUARD)?;
                s.set_read_timeout(Some(GUARD))?;
                s.set_write_timeout(Some(GUARD))?;
                Self::Tcp(s)
            }
            Addr::Unix(p) => {
                let s = std::os::unix::net::UnixStream::connect(p)?;
                s.set_read_timeout(Some(GUARD))?;
                s.set_write_timeout(Some(GUARD))?;
                Self::Unix(s)
            }
        })
    }

    /// Writes all of `bytes`.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.write_all(bytes),
            Self::Unix(s) => s.write_all(bytes),
        }
    }

    /// Reads until the server closes the connection; returns what came before. Panics if
    /// the connection is still open after [`GUARD`]. A reset counts as closed.
    #[track_caller]
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            let r = match self {
                Self::Tcp(s) => s.read(&mut buf),
                Self::Unix(s) => s.read(&mut buf),
            };
            match r {
                Ok(0) => return out,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    panic!("the server did not close the connection within {GUARD:?}")
                }
                Err(_) => return out, // reset: closed all the same
            }
        }
    }
}

/// The bytes of one whole Responder request: `BEGIN_REQUEST` (with `keep_conn`), `params`,
/// the body (when not empty) and the end of `STDIN`.
pub fn whole_request(params: &[(&str, &str)], keep_conn: bool, body: &[u8]) -> Vec<u8> {
    let mut conn = ClientConnection::new(ClientConfig::default());
    let id = conn
        .begin_request(Role::Responder, keep_conn)
        .expect("begin");
    for (n, v) in params {
        conn.send_param(id, n.as_bytes(), v.as_bytes())
            .expect("param");
    }
    conn.end_params(id).expect("end params");
    if !body.is_empty() {
        conn.send_stdin(id, Bytes::copy_from_slice(body))
            .expect("stdin");
    }
    conn.end_stdin(id).expect("end stdin");
    let mut wire = Vec::new();
    while let Some(chunk) = conn.poll_transmit() {
        wire.extend_from_slice(&chunk);
    }
    wire
}

/// Reads records from `s` until `END_REQUEST`; returns the `STDOUT` bytes. An error if the
/// stream ends or fails first.
pub fn read_answer(s: &mut impl Read) -> io::Result<Vec<u8>> {
    read_answer_and_status(s).map(|(stdout, _)| stdout)
}

/// [`read_answer`], with the app status of the `END_REQUEST`.
pub fn read_answer_and_status(s: &mut impl Read) -> io::Result<(Vec<u8>, u32)> {
    let mut buf = Vec::new();
    let mut stdout = Vec::new();
    let mut at = 0;
    let mut chunk = [0u8; 16 * 1024];
    loop {
        while buf.len() >= at + 8 {
            let len = usize::from(u16::from_be_bytes([buf[at + 4], buf[at + 5]]));
            let total = 8 + len + usize::from(buf[at + 6]);
            if buf.len() < at + total {
                break;
            }
            match buf[at + 1] {
                6 => stdout.extend_from_slice(&buf[at + 8..at + 8 + len]),
                3 => {
                    // (An END_REQUEST body too short for a status reads as status 0.)
                    let status = buf
                        .get(at + 8..at + 8 + len.min(4))
                        .and_then(|c| <[u8; 4]>::try_from(c).ok())
                        .map_or(0, u32::from_be_bytes);
                    return Ok((stdout, status));
                }
                _ => {}
            }
            at += total;
        }
        match s.read(&mut chunk)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The bytes a client sends for a Responder request with `params`: `BEGIN_REQUEST`
/// (keep-conn) and the `PARAMS` records. `end_params`: with the empty record ending the
/// stream. `stdin`: followed by one `STDIN` record with these bytes (stream not ended).
pub fn raw_request(params: &[(&str, &str)], end_params: bool, stdin: Option<&[u8]>) -> Vec<u8> {
    let mut conn = ClientConnection::new(ClientConfig::default());
    let id = conn.begin_request(Role::Responder, true).expect("begin");
    for (n, v) in params {
        conn.send_param(id, n.as_bytes(), v.as_bytes())
            .expect("param");
    }
    conn.end_params(id).expect("end params");
    let mut wire = Vec::new();
    while let Some(c) = conn.poll_transmit() {
        wire.extend_from_slice(&c);
    }
    if !end_params {
        // The last record is the empty PARAMS that ends the stream: leave it out.
        wire.truncate(wire.len() - 8);
        return wire;
    }
    if let Some(body) = stdin {
        conn.send_stdin(id, Bytes::copy_from_slice(body))
            .expect("stdin");
        while let Some(c) = conn.poll_transmit() {
            wire.extend_from_slice(&c);
        }
    }
    wire
}

/// The response head the test application writes before its body.
pub const HEAD: &str = "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n";

/// The answer of the `cap` action to a body over the server's limit.
pub const TOO_LARGE: &str = "Status: 413 Payload Too Large\r\n\r\ntoo large";

/// The complete response of the `small` action.
pub const SMALL: &str = "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nsmall and complete";

/// The scriptable application under test. The `DO` param picks what it does:
///
/// - `ok` (default): reads the body, checks it against the payload, answers
///   `ok id=ID len=N intact=BOOL keep=BOOL` (after [`HEAD`]);
/// - `gate`: waits for the test to open [`TestApp::gate`], then as `ok`;
/// - `hang`: never answers;
/// - `panic`: panics;
/// - `small`: answers [`SMALL`] in one write without reading the body;
/// - `stream`: answers `RESP_BYTES` bytes of payload (after [`HEAD`]) in 64 KiB writes;
/// - `duplex`: as `stream`, then reads and checks the body, then `\nverified=N intact=BOOL`;
/// - `trickle`: writes one byte every 20 ms forever;
/// - `cap`: reads the body; if the server refuses it as too large (`InvalidData`), answers
///   [`TOO_LARGE`], else as `ok`.
///
/// `STATUS=n` sets the app status. On an IO error it records it in the probe and waits to be
/// cancelled, so that ending it is always the driver's doing.
pub struct TestApp<R> {
    /// What the handlers did.
    pub probe: Arc<Probe>,
    /// Opened by the test to release `gate` requests.
    pub gate: Arc<Gate>,
    rt: R,
}

impl<R: Runtime> TestApp<R> {
    /// A fresh application (gate closed).
    pub fn new(rt: R) -> Self {
        Self {
            probe: Arc::new(Probe::default()),
            gate: Arc::new(Gate::default()),
            rt,
        }
    }
}

impl<R: Runtime> Clone for TestApp<R> {
    fn clone(&self) -> Self {
        Self {
            probe: Arc::clone(&self.probe),
            gate: Arc::clone(&self.gate),
            rt: self.rt.clone(),
        }
    }
}

impl<R: Runtime> Handler for TestApp<R> {
    fn handle(&self, mut req: Request, mut out: Response) -> impl Future<Output = u32> + Send {
        // Taken before the future first runs, so that dropping it unpolled counts too.
        let guard = self.probe.enter(&req);
        let gate = Arc::clone(&self.gate);
        let rt = self.rt.clone();
        async move {
            match act(&rt, &gate, &mut req, &mut out).await {
                Some(status) => {
                    guard.complete();
                    status
                }
                None => {
                    guard.io_error();
                    std::future::pending::<()>().await;
                    unreachable!("pending() never completes")
                }
            }
        }
    }
}

fn param_usize(req: &Request, name: &str) -> usize {
    req.params()
        .get_str(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn act<R: Runtime>(
    rt: &R,
    gate: &Gate,
    req: &mut Request,
    out: &mut Response,
) -> Option<u32> {
    let action = req.params().get_str("DO").unwrap_or("ok").to_owned();
    let status = u32::try_from(param_usize(req, "STATUS")).unwrap_or(0);
    let bytes = param_usize(req, "RESP_BYTES");
    match action.as_str() {
        "hang" => std::future::pending::<()>().await,
        "panic" => panic!("the test asked this handler to panic"),
        "small" => out.stdout(SMALL).await.ok()?,
        "stream" => {
            out.stdout(HEAD).await.ok()?;
            stream_out(out, bytes).await?;
        }
        "duplex" => {
            out.stdout(HEAD).await.ok()?;
            stream_out(out, bytes).await?;
            let (n, intact) = read_pattern(req.stdin()).await?;
            out.stdout(format!("\nverified={n} intact={intact}"))
                .await
                .ok()?;
        }
        "trickle" => {
            out.stdout(HEAD).await.ok()?;
            loop {
                out.stdout(".").await.ok()?;
                rt.sleep(Duration::from_millis(20)).await;
            }
        }
        "gate" => {
            gate.wait().await;
            reply_ok(req, out).await?;
        }
        "cap" => {
            let mut len = 0;
            loop {
                match req.stdin().chunk().await {
                    None => break,
                    Some(Ok(piece)) => len += piece.len(),
                    Some(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                        out.stdout(TOO_LARGE).await.ok()?;
                        return Some(status);
                    }
                    Some(Err(_)) => return None,
                }
            }
            out.stdout(format!("{HEAD}ok len={len}")).await.ok()?;
        }
        _ => reply_ok(req, out).await?,
    }
    Some(status)
}

async fn stream_out(out: &mut Response, bytes: usize) -> Option<()> {
    let mut sent = 0;
    while sent < bytes {
        let n = (bytes - sent).min(64 * 1024);
        out.stdout(pattern(sent, n)).await.ok()?;
        sent += n;
    }
    Some(())
}

async fn reply_ok(req: &mut Request, out: &mut Response) -> Option<()> {
    let (n, intact) = read_pattern(req.stdin()).await?;
    let text = format!(
        "{HEAD}ok id={} len={n} intact={intact} keep={}",
        req.id(),
        req.keep_conn()
    );
    out.stdout(text).await.ok()
}

/// A Responder request for the test application doing `action`.
pub fn req(action: &str) -> ClientRequest {
    ClientRequest::responder().param("DO", action)
}

/// Sends `request` and collects the whole response (bounded by [`GUARD`]).
pub async fn fetch<H: Harness>(
    rt: &H::Rt,
    client: &TestClient<H>,
    request: ClientRequest,
) -> Result<(Bytes, u32), ClientError> {
    super::util::within(rt, "a request", async {
        let resp = client.send(request).await?;
        let (out, end) = resp.collect(256 << 20).await?;
        Ok((out, end.app_status))
    })
    .await
}

/// Sends `request` and expects the `ok` answer; returns the text after [`HEAD`].
#[track_caller]
pub fn fetch_ok<'a, H: Harness>(
    rt: &'a H::Rt,
    client: &'a TestClient<H>,
    request: ClientRequest,
) -> impl Future<Output = String> + 'a {
    let caller = std::panic::Location::caller();
    async move {
        let (out, status) = fetch::<H>(rt, client, request)
            .await
            .unwrap_or_else(|e| panic!("{caller}: request failed: {e:?}"));
        assert_eq!(status, 0, "{caller}: app status");
        let text = String::from_utf8_lossy(&out).into_owned();
        let body = text
            .strip_prefix(HEAD)
            .unwrap_or_else(|| panic!("{caller}: unexpected response {text:?}"));
        assert!(body.starts_with("ok id="), "{caller}: {body:?}");
        assert!(body.contains("intact=true"), "{caller}: {body:?}");
        body.to_owned()
    }
}
