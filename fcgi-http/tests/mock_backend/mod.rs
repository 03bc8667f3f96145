//! A scripted FastCGI backend on loopback for the gateway's tests: a hand-written record
//! reader/writer, so that a test can make it misbehave in ways no real application does.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fcgi_http::gateway::{Gateway, GatewayBody, GatewayConfig, LocalRoot};
use fcgi_http::request::ScriptResolution;
use fcgi_tokio::client::{ClientOptions, Multiplexing};
use fcgi_tokio::{Backend, TokioConnector, TokioRuntime};
use http::Request;
use http_body_util::{BodyExt, Empty};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

pub(crate) type TokioGateway = Gateway<TokioRuntime, TokioConnector>;

pub(crate) const BEGIN: u8 = 1;
pub(crate) const ABORT: u8 = 2;
pub(crate) const END: u8 = 3;
pub(crate) const PARAMS: u8 = 4;
pub(crate) const STDIN: u8 = 5;
pub(crate) const STDOUT: u8 = 6;
pub(crate) const STDERR: u8 = 7;

/// Every test is bounded by this.
pub(crate) const LIMIT: Duration = Duration::from_secs(20);

pub(crate) async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("test took too long")
}

/// One record read from the gateway.
pub(crate) struct Rec {
    pub(crate) ty: u8,
    pub(crate) id: u16,
    pub(crate) content: Vec<u8>,
}

pub(crate) async fn read_rec(sock: &mut TcpStream) -> io::Result<Option<Rec>> {
    let mut h = [0u8; 8];
    match sock.read_exact(&mut h).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
    let mut content = vec![0u8; len + usize::from(h[6])];
    sock.read_exact(&mut content).await?;
    content.truncate(len);
    Ok(Some(Rec {
        ty: h[1],
        id: u16::from_be_bytes([h[2], h[3]]),
        content,
    }))
}

/// Records of type `ty` carrying `data` (split at 65535 bytes); an empty `data` gives one
/// empty record (the end of a stream).
pub(crate) fn recs(ty: u8, id: u16, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut push = |piece: &[u8]| {
        let len = u16::try_from(piece.len()).unwrap().to_be_bytes();
        let id = id.to_be_bytes();
        out.extend_from_slice(&[1, ty, id[0], id[1], len[0], len[1], 0, 0]);
        out.extend_from_slice(piece);
    };
    if data.is_empty() {
        push(&[]);
    }
    for piece in data.chunks(65535) {
        push(piece);
    }
    out
}

pub(crate) fn end_request(id: u16, app_status: u32, protocol_status: u8) -> Vec<u8> {
    let s = app_status.to_be_bytes();
    let body = [s[0], s[1], s[2], s[3], protocol_status, 0, 0, 0];
    recs(END, id, &body)
}

/// `STDOUT` with `data`, the end of `STDOUT`, and `END_REQUEST` (status 0).
pub(crate) fn full_answer(id: u16, data: &[u8]) -> Vec<u8> {
    let mut out = recs(STDOUT, id, data);
    out.extend(recs(STDOUT, id, &[]));
    out.extend(end_request(id, 0, 0));
    out
}

pub(crate) fn decode_params(mut b: &[u8]) -> BTreeMap<String, String> {
    fn len(b: &mut &[u8]) -> usize {
        if b[0] & 0x80 == 0 {
            let n = usize::from(b[0]);
            *b = &b[1..];
            n
        } else {
            let n = u32::from_be_bytes([b[0] & 0x7f, b[1], b[2], b[3]]) as usize;
            *b = &b[4..];
            n
        }
    }
    let mut out = BTreeMap::new();
    while !b.is_empty() {
        let n = len(&mut b);
        let v = len(&mut b);
        let name = String::from_utf8_lossy(&b[..n]).into_owned();
        let value = String::from_utf8_lossy(&b[n..n + v]).into_owned();
        b = &b[n + v..];
        out.insert(name, value);
    }
    out
}

/// A request as the backend received it.
#[derive(Debug, Default, Clone)]
pub(crate) struct Seen {
    pub(crate) id: u16,
    pub(crate) params: BTreeMap<String, String>,
    pub(crate) stdin: Vec<u8>,
}

/// Reads one whole request (`BEGIN_REQUEST`, params, stdin to its end). `None` when the
/// gateway closed the connection first.
pub(crate) async fn read_request(sock: &mut TcpStream) -> io::Result<Option<Seen>> {
    let mut seen = Seen::default();
    let mut raw_params = Vec::new();
    loop {
        let Some(r) = read_rec(sock).await? else {
            return Ok(None);
        };
        match r.ty {
            BEGIN => seen.id = r.id,
            PARAMS => raw_params.extend_from_slice(&r.content),
            STDIN if r.content.is_empty() => {
                seen.params = decode_params(&raw_params);
                return Ok(Some(seen));
            }
            STDIN => seen.stdin.extend_from_slice(&r.content),
            _ => {}
        }
    }
}

/// What the backend noticed after it stopped answering: the gateway closed the connection,
/// or sent `ABORT_REQUEST`.
pub(crate) async fn wait_for_close_or_abort(sock: &mut TcpStream) -> &'static str {
    loop {
        match read_rec(sock).await {
            Ok(None) | Err(_) => return "closed",
            Ok(Some(r)) if r.ty == ABORT => return "aborted",
            Ok(Some(_)) => {}
        }
    }
}

pub(crate) type ConnFn =
    Arc<dyn Fn(usize, TcpStream) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Accepts up to `conns` connections, each served by `f(index, socket)` on its own task.
pub(crate) async fn backend(
    conns: usize,
    f: ConnFn,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut tasks = Vec::new();
        for i in 0..conns {
            let Ok(Ok((sock, _))) = tokio::time::timeout(LIMIT, listener.accept()).await else {
                break;
            };
            tasks.push(tokio::spawn(f(i, sock)));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    (addr, task)
}

pub(crate) fn gateway(
    addr: std::net::SocketAddr,
    edit: impl FnOnce(&mut ClientOptions),
) -> TokioGateway {
    let mut opts = ClientOptions::default();
    opts.multiplexing = Multiplexing::Off;
    opts.read_timeout = Duration::from_secs(10);
    opts.idle_timeout = Duration::from_millis(500);
    edit(&mut opts);
    Gateway::new(
        fcgi_tokio::client(Backend::Tcp(addr), opts),
        mock_config(ScriptResolution::split_path()),
    )
}

pub(crate) fn get(target: &str) -> Request<Empty<Bytes>> {
    Request::get(target)
        .header("host", "gateway.test")
        .body(Empty::new())
        .unwrap()
}

pub(crate) async fn collect(
    body: GatewayBody,
) -> Result<Bytes, fcgi_http::gateway::GatewayBodyError> {
    Ok(body.collect().await?.to_bytes())
}

/// The gateway's configuration for the mock: no local root (the scripts do not exist).
pub(crate) fn mock_config(script: ScriptResolution) -> GatewayConfig {
    let mut config = GatewayConfig::new("/srv", script);
    config.local_root = LocalRoot::None;
    config
}

/// Serves `gateway` (errors as responses) over HTTP/1.1 with hyper on a loopback port, one
/// task per connection, until the returned task is aborted.
pub(crate) async fn serve_http(
    gateway: TokioGateway,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = gateway.errors_as_responses();
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((stream, _)) = listener.accept().await {
            let service = TowerToHyperService::new(service.clone());
            conns.spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, task)
}

/// Sends `request` (raw HTTP/1.1) to `addr` and returns everything received until the server
/// closed the connection.
pub(crate) async fn http_exchange(addr: std::net::SocketAddr, request: &str) -> Vec<u8> {
    use tokio::io::AsyncWriteExt;
    let mut sock = TcpStream::connect(addr).await.unwrap();
    sock.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// A `GET` of `target` that asks the server to close the connection after the response.
pub(crate) fn raw_get(target: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: gateway.test\r\nConnection: close\r\n\r\n")
}
