//! Other people's Rust FastCGI clients against our server, on each of our runtimes, over TCP
//! and a Unix socket: fastcgi-client 0.12 (`execute_once`, a connection per request, and
//! `execute`, keep-alive) and rama-fastcgi 0.4 (`send_on` on a kept stream, and
//! `FastCgiClient` with its TCP / Unix connectors). Each sends 1,000 requests — a GET with
//! an empty body (after which fastcgi-client sends a second, empty `STDIN`) and a POST — to
//! the echo application, and every answer must be complete and right: 0 errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::ops::Range;

use bytes::Bytes;
use fcgi_driver::fcgi_core::server::RoleSet;
use fcgi_testkit::behaviour::Harness;
use fcgi_testkit::behaviour::fixture::{Addr, Net, Srv, server_opts};
use fcgi_testkit::behaviour::mock::plan_inert;
use rama_core::Service;
use rama_fastcgi::client::{
    FastCgiClient, FastCgiClientRequest, FastCgiTcpConnector, FastCgiUnixConnector, send_on,
};

#[path = "../../fcgi-smol/tests/harness_async_std/mod.rs"]
mod harness_async_std;
#[path = "../../fcgi-smol/tests/harness_smol/mod.rs"]
mod harness_smol;
#[path = "../../fcgi-tokio/tests/harness/mod.rs"]
mod harness_tokio;

/// Concurrent clients (each with its own connection or connections), as a web server under
/// load would have.
const CONCURRENCY: usize = 16;
/// Requests per client: 1,008 in all.
const PER_CLIENT: usize = 63;
const REQUESTS: usize = CONCURRENCY * PER_CLIENT;

/// Which client.
#[derive(Debug, Clone, Copy)]
enum Peer {
    FastcgiClientOnce,
    FastcgiClientKeepAlive,
    RamaSendOn,
    RamaClient,
}

/// The `i`th request: even ones a GET without a body, odd ones a POST with `i` bytes.
fn body_of(i: usize) -> Vec<u8> {
    if i.is_multiple_of(2) {
        Vec::new()
    } else {
        (0..i).map(|k| b'a' + (k % 26) as u8).collect()
    }
}

fn params_of(i: usize, body: &[u8]) -> Vec<(String, String)> {
    let method = if body.is_empty() { "GET" } else { "POST" };
    vec![
        ("REQUEST_METHOD".into(), method.into()),
        ("SCRIPT_NAME".into(), "/echo".into()),
        ("REQUEST_URI".into(), format!("/echo?i={i}")),
        ("QUERY_STRING".into(), format!("i={i}")),
        ("CONTENT_LENGTH".into(), body.len().to_string()),
        ("SERVER_PROTOCOL".into(), "HTTP/1.1".into()),
    ]
}

/// What the echo application must answer to request `i`.
fn check(i: usize, body: &[u8], stdout: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(stdout);
    let want_query = format!("param: QUERY_STRING=i={i}\n");
    let want_len = format!("stdin-length: {}\n\n", body.len());
    if !text.starts_with("Status: 200 OK\r\n") || !text.contains(&want_query) {
        return Err(format!("request {i}: unexpected answer {text:?}"));
    }
    if !stdout.ends_with(body) || !text.contains(&want_len) {
        return Err(format!("request {i}: body not echoed: {text:?}"));
    }
    Ok(())
}

fn fastcgi_client_params(i: usize, body: &[u8]) -> fastcgi_client::Params<'static> {
    let mut p = fastcgi_client::Params::default();
    for (n, v) in params_of(i, body) {
        p = p.custom(n, v);
    }
    p
}

fn rama_request(i: usize, body: &[u8]) -> FastCgiClientRequest {
    let params: Vec<(Bytes, Bytes)> = params_of(i, body)
        .into_iter()
        .map(|(n, v)| (Bytes::from(n), Bytes::from(v)))
        .collect();
    FastCgiClientRequest::new(params).with_stdin(Bytes::from(body.to_vec()))
}

/// A connected tokio stream to `addr`.
enum Stream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

async fn connect(addr: &Addr) -> std::io::Result<Stream> {
    Ok(match addr {
        Addr::Tcp(a) => {
            let s = tokio::net::TcpStream::connect(a).await?;
            s.set_nodelay(true)?;
            Stream::Tcp(s)
        }
        Addr::Unix(p) => Stream::Unix(tokio::net::UnixStream::connect(p).await?),
    })
}

/// Runs `f` for the requests in `range`; collects the failures.
async fn each<F, Fut>(range: Range<usize>, mut f: F) -> Vec<String>
where
    F: FnMut(usize, Vec<u8>) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut errors = Vec::new();
    for i in range {
        if let Err(e) = f(i, body_of(i)).await {
            errors.push(e);
        }
    }
    errors
}

async fn fastcgi_client_once(addr: &Addr, range: Range<usize>) -> Vec<String> {
    each(range, |i, body| async move {
        let stream = connect(addr).await.map_err(|e| format!("connect: {e}"))?;
        let params = fastcgi_client_params(i, &body);
        let stdin = fastcgi_client::io::Cursor::new(body.clone());
        let out = match stream {
            Stream::Tcp(s) => {
                fastcgi_client::Client::new_tokio(s)
                    .execute_once(fastcgi_client::Request::new(params, stdin))
                    .await
            }
            Stream::Unix(s) => {
                fastcgi_client::Client::new_tokio(s)
                    .execute_once(fastcgi_client::Request::new(params, stdin))
                    .await
            }
        }
        .map_err(|e| format!("request {i}: {e:?}"))?;
        check(i, &body, &out.stdout.unwrap_or_default())
    })
    .await
}

async fn fastcgi_client_keep_alive(addr: &Addr, range: Range<usize>) -> Vec<String> {
    macro_rules! run {
        ($s:expr) => {{
            let mut client = fastcgi_client::Client::new_keep_alive_tokio($s);
            let mut errors = Vec::new();
            for i in range.clone() {
                let body = body_of(i);
                let params = fastcgi_client_params(i, &body);
                let stdin = fastcgi_client::io::Cursor::new(body.clone());
                match client
                    .execute(fastcgi_client::Request::new(params, stdin))
                    .await
                {
                    Ok(out) => {
                        if let Err(e) = check(i, &body, &out.stdout.unwrap_or_default()) {
                            errors.push(e);
                        }
                    }
                    Err(e) => {
                        errors.push(format!("request {i}: {e:?}"));
                        break;
                    }
                }
            }
            errors
        }};
    }
    match connect(addr).await {
        Ok(Stream::Tcp(s)) => run!(s),
        Ok(Stream::Unix(s)) => run!(s),
        Err(e) => vec![format!("connect: {e}")],
    }
}

async fn rama_send_on(addr: &Addr, range: Range<usize>) -> Vec<String> {
    macro_rules! run {
        ($s:expr) => {{
            let mut s = $s;
            let mut errors = Vec::new();
            for i in range.clone() {
                let body = body_of(i);
                match send_on(&mut s, 1, rama_request(i, &body), true).await {
                    Ok(out) => {
                        if let Err(e) = check(i, &body, &out.stdout) {
                            errors.push(e);
                        }
                    }
                    Err(e) => {
                        errors.push(format!("request {i}: {e:?}"));
                        break;
                    }
                }
            }
            errors
        }};
    }
    match connect(addr).await {
        Ok(Stream::Tcp(s)) => run!(s),
        Ok(Stream::Unix(s)) => run!(s),
        Err(e) => vec![format!("connect: {e}")],
    }
}

async fn rama_client(addr: &Addr, range: Range<usize>) -> Vec<String> {
    async fn run<S>(client: &FastCgiClient<S>, range: Range<usize>) -> Vec<String>
    where
        FastCgiClient<S>: Service<
                FastCgiClientRequest,
                Output = rama_fastcgi::client::FastCgiClientResponse,
                Error = rama_core::error::BoxError,
            >,
    {
        each(range, |i, body| async move {
            let out = client
                .serve(rama_request(i, &body))
                .await
                .map_err(|e| format!("request {i}: {e:?}"))?;
            check(i, &body, &out.stdout)
        })
        .await
    }
    match addr {
        Addr::Tcp(a) => {
            run(
                &FastCgiClient::new(FastCgiTcpConnector::new((*a).into())),
                range,
            )
            .await
        }
        Addr::Unix(p) => {
            run(
                &FastCgiClient::new(FastCgiUnixConnector::new(p.clone())),
                range,
            )
            .await
        }
    }
}

/// Our echo server on runtime `H`, over `net`, and `peer` against it.
fn peer_against<H: Harness>(net: Net, peer: Peer) {
    let h = H::new();
    let rt = h.runtime();
    let srv = h.block_on(async {
        let mut opts = server_opts();
        opts.core.roles = RoleSet::ALL;
        Srv::start(&h, net, opts, fcgi_echo::handler(rt.clone()), plan_inert()).await
    });
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime for the clients");
    let errors = clients.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..CONCURRENCY {
            let addr = srv.addr.clone();
            let range = c * PER_CLIENT..(c + 1) * PER_CLIENT;
            tasks.spawn(async move {
                match peer {
                    Peer::FastcgiClientOnce => fastcgi_client_once(&addr, range).await,
                    Peer::FastcgiClientKeepAlive => fastcgi_client_keep_alive(&addr, range).await,
                    Peer::RamaSendOn => rama_send_on(&addr, range).await,
                    Peer::RamaClient => rama_client(&addr, range).await,
                }
            });
        }
        let all = async {
            let mut errors = Vec::new();
            while let Some(r) = tasks.join_next().await {
                errors.extend(r.unwrap_or_else(|e| vec![format!("client task: {e}")]));
            }
            errors
        };
        tokio::time::timeout(std::time::Duration::from_secs(300), all)
            .await
            .unwrap_or_else(|_| vec!["not done within 300 s".into()])
    });
    assert!(
        errors.is_empty(),
        "{peer:?} over {net:?}: {} of {REQUESTS} requests failed; first: {:?}",
        errors.len(),
        &errors[..errors.len().min(3)]
    );
    drop(srv);
}

macro_rules! peers {
    ($($name:ident: $harness:ty, $net:expr, $peer:expr;)*) => {
        $(
            #[test]
            fn $name() {
                peer_against::<$harness>($net, $peer);
            }
        )*
    };
}

use Net::{Tcp, Unix};
use Peer::*;
use harness_async_std::AsyncStdHarness as AsyncStd;
use harness_smol::SmolHarness as Smol;
use harness_tokio::TokioHarness as Tokio;

peers! {
    tokio_tcp_fastcgi_client_once: Tokio, Tcp, FastcgiClientOnce;
    tokio_tcp_fastcgi_client_keep_alive: Tokio, Tcp, FastcgiClientKeepAlive;
    tokio_tcp_rama_send_on: Tokio, Tcp, RamaSendOn;
    tokio_tcp_rama_client: Tokio, Tcp, RamaClient;
    tokio_unix_fastcgi_client_once: Tokio, Unix, FastcgiClientOnce;
    tokio_unix_fastcgi_client_keep_alive: Tokio, Unix, FastcgiClientKeepAlive;
    tokio_unix_rama_send_on: Tokio, Unix, RamaSendOn;
    tokio_unix_rama_client: Tokio, Unix, RamaClient;
    smol_tcp_fastcgi_client_once: Smol, Tcp, FastcgiClientOnce;
    smol_tcp_fastcgi_client_keep_alive: Smol, Tcp, FastcgiClientKeepAlive;
    smol_tcp_rama_send_on: Smol, Tcp, RamaSendOn;
    smol_tcp_rama_client: Smol, Tcp, RamaClient;
    smol_unix_fastcgi_client_once: Smol, Unix, FastcgiClientOnce;
    smol_unix_fastcgi_client_keep_alive: Smol, Unix, FastcgiClientKeepAlive;
    smol_unix_rama_send_on: Smol, Unix, RamaSendOn;
    smol_unix_rama_client: Smol, Unix, RamaClient;
    async_std_tcp_fastcgi_client_once: AsyncStd, Tcp, FastcgiClientOnce;
    async_std_tcp_fastcgi_client_keep_alive: AsyncStd, Tcp, FastcgiClientKeepAlive;
    async_std_tcp_rama_send_on: AsyncStd, Tcp, RamaSendOn;
    async_std_tcp_rama_client: AsyncStd, Tcp, RamaClient;
    async_std_unix_fastcgi_client_once: AsyncStd, Unix, FastcgiClientOnce;
    async_std_unix_fastcgi_client_keep_alive: AsyncStd, Unix, FastcgiClientKeepAlive;
    async_std_unix_rama_send_on: AsyncStd, Unix, RamaSendOn;
    async_std_unix_rama_client: AsyncStd, Unix, RamaClient;
}
