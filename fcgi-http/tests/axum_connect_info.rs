//! The `axum` feature over loopback.
//!
//! Gateway side: a raw HTTP/1.1 client → `axum::serve` (a `Router` whose fallback is the
//! `Gateway`) → our FastCGI client → our FastCGI server running a service that answers with
//! the address params it received. The gateway's fallback connection facts are TEST-NET
//! addresses, so a test that silently fell back to them cannot pass.
//!
//! Application side: an axum handler using the `ConnectInfo<SocketAddr>` extractor, served
//! as a FastCGI application by `ServiceHandler`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod app_util;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Debug;
use std::future::Future;
use std::net::SocketAddr;

use app_util::{GUARD, TestServer, request, send};
use axum::Router;
use axum::extract::ConnectInfo;
use axum::extract::connect_info::Connected;
use axum::routing::get;
use axum::serve::{IncomingStream, Listener};
use fcgi_core::Params;
use fcgi_http::ConnInfo;
use fcgi_http::app::RequestBody;
use fcgi_http::gateway::{Gateway, GatewayConfig, LocalRoot};
use fcgi_http::request::ScriptResolution;
use fcgi_tokio::Backend;
use fcgi_tokio::client::{ClientOptions, ClientRequest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The gateway's fallback: what PHP would see if the connection facts were lost.
const FALLBACK_LOCAL: &str = "192.0.2.1:8081";
const FALLBACK_REMOTE: &str = "192.0.2.2:1";

async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, f)
        .await
        .expect("test took too long")
}

/// The FastCGI application: one `NAME=value` line per address param it received.
async fn echo_addresses(
    req: http::Request<RequestBody>,
) -> Result<http::Response<String>, Infallible> {
    let params = req
        .extensions()
        .get::<Params>()
        .expect("ServiceHandler adds the params");
    let mut body = String::new();
    for name in [
        "REMOTE_ADDR",
        "REMOTE_PORT",
        "SERVER_ADDR",
        "SERVER_PORT",
        "HTTPS",
    ] {
        if let Some(value) = params.get_str(name) {
            body.push_str(&format!("{name}={value}\n"));
        }
    }
    Ok(http::Response::new(body))
}

/// The FastCGI application on loopback, and a router whose fallback is a gateway to it.
async fn php_router() -> (TestServer, Router) {
    let backend = app_util::serve(tower::service_fn(echo_addresses)).await;
    let mut config = GatewayConfig::new("/srv", ScriptResolution::split_path());
    config.local_root = LocalRoot::None;
    config.fallback_conn_info = ConnInfo::new(
        FALLBACK_LOCAL.parse().unwrap(),
        FALLBACK_REMOTE.parse().unwrap(),
        false,
    );
    let client = fcgi_tokio::client(Backend::Tcp(backend.addr), ClientOptions::default());
    let gateway = Gateway::new(client, config).errors_as_responses();
    (backend, Router::new().fallback_service(gateway))
}

/// Runs `axum::serve(listener, router.into_make_service_with_connect_info::<C>())` in the
/// background (for as long as the test's runtime lives).
fn serve_with<C, L>(listener: L, router: Router)
where
    L: Listener,
    L::Addr: Debug,
    C: for<'a> Connected<IncomingStream<'a, L>>,
{
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<C>()).await
    });
}

/// What the client saw: its own local address, and the params the application printed.
struct Seen {
    client: SocketAddr,
    params: BTreeMap<String, String>,
}

impl Seen {
    fn get(&self, name: &str) -> &str {
        self.params.get(name).map_or("(absent)", String::as_str)
    }
}

/// One raw HTTP/1.1 `GET /index.php` to `server`; the response must be a 200.
async fn get_params(server: SocketAddr) -> Seen {
    bounded(async {
        let mut stream = TcpStream::connect(server).await.unwrap();
        let client = stream.local_addr().unwrap();
        stream
            .write_all(b"GET /index.php HTTP/1.1\r\nHost: axum.test\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").expect("a complete response");
        assert!(head.starts_with("HTTP/1.1 200 "), "{raw}");
        let params = body
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        Seen { client, params }
    })
    .await
}

async fn loopback_listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_info_conn_info_gives_php_both_real_addresses() {
    let (_backend, router) = php_router().await;
    let (listener, server) = loopback_listener().await;
    serve_with::<ConnInfo, _>(listener, router);

    let seen = get_params(server).await;
    assert_eq!(seen.get("REMOTE_ADDR"), "127.0.0.1");
    assert_eq!(seen.get("REMOTE_PORT"), seen.client.port().to_string());
    assert_eq!(seen.get("SERVER_ADDR"), "127.0.0.1");
    assert_eq!(seen.get("SERVER_PORT"), server.port().to_string());
    assert_eq!(seen.get("HTTPS"), "(absent)");
}

/// axum's plain `ConnectInfo<SocketAddr>` names the client; the local side stays the
/// configured fallback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_info_socket_addr_gives_php_the_remote_address() {
    let (_backend, router) = php_router().await;
    let (listener, server) = loopback_listener().await;
    serve_with::<SocketAddr, _>(listener, router);

    let seen = get_params(server).await;
    assert_eq!(seen.get("REMOTE_ADDR"), "127.0.0.1");
    assert_eq!(seen.get("REMOTE_PORT"), seen.client.port().to_string());
    let fallback: SocketAddr = FALLBACK_LOCAL.parse().unwrap();
    assert_eq!(seen.get("SERVER_ADDR"), fallback.ip().to_string());
    assert_eq!(seen.get("SERVER_PORT"), fallback.port().to_string());
}

/// Our own `ConnInfo` extension (inserted by glue that knows more, such as TLS) comes first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conn_info_extension_wins_over_connect_info() {
    let (_backend, router) = php_router().await;
    let ours = ConnInfo::new(
        "203.0.113.1:443".parse().unwrap(),
        "203.0.113.2:4444".parse().unwrap(),
        true,
    );
    let router = router.layer(axum::Extension(ours));
    let (listener, server) = loopback_listener().await;
    serve_with::<ConnInfo, _>(listener, router);

    let seen = get_params(server).await;
    assert_eq!(seen.get("REMOTE_ADDR"), "203.0.113.2");
    assert_eq!(seen.get("REMOTE_PORT"), "4444");
    assert_eq!(seen.get("SERVER_ADDR"), "203.0.113.1");
    assert_eq!(seen.get("SERVER_PORT"), "443");
    assert_eq!(seen.get("HTTPS"), "on");
}

/// The control: `axum::serve` without connect info leaves only the fallback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_connect_info_php_sees_the_fallback() {
    let (_backend, router) = php_router().await;
    let (listener, server) = loopback_listener().await;
    tokio::spawn(async move { axum::serve(listener, router).await });

    let seen = get_params(server).await;
    let remote: SocketAddr = FALLBACK_REMOTE.parse().unwrap();
    let local: SocketAddr = FALLBACK_LOCAL.parse().unwrap();
    assert_eq!(seen.get("REMOTE_ADDR"), remote.ip().to_string());
    assert_eq!(seen.get("REMOTE_PORT"), remote.port().to_string());
    assert_eq!(seen.get("SERVER_ADDR"), local.ip().to_string());
    assert_eq!(seen.get("SERVER_PORT"), local.port().to_string());
}

/// An axum application behind a web server: `ConnectInfo<SocketAddr>` is the client the web
/// server reported in `REMOTE_ADDR`/`REMOTE_PORT`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_side_connect_info_extractor_gets_remote_addr_and_port() {
    let app = Router::new().route(
        "/peer",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { format!("peer={peer}") }),
    );
    let server = app_util::serve(app).await;

    // app_util's request: REMOTE_ADDR 192.0.2.9, REMOTE_PORT 40001.
    let out = send(&server, request("GET", "/peer")).await;
    assert!(out.head.starts_with("Status: 200 "), "{}", out.head);
    assert_eq!(&out.body[..], b"peer=192.0.2.9:40001");

    // Without a port there is no address to give: the extractor refuses (axum's 500), rather
    // than the handler seeing a made-up one.
    let no_port = ClientRequest::responder()
        .param("REQUEST_METHOD", "GET")
        .param("REQUEST_URI", "/peer")
        .param("SERVER_PROTOCOL", "HTTP/1.1")
        .param("HTTP_HOST", "app.test")
        .param("REMOTE_ADDR", "192.0.2.9");
    let out = send(&server, no_port).await;
    assert!(out.head.starts_with("Status: 500 "), "{}", out.head);
}
