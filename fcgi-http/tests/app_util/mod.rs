//! Shared by the `app_*` tests: a `ServiceHandler` served on loopback by our tokio server,
//! driven by our tokio client.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use fcgi_core::server::RoleSet;
use fcgi_http::app::ServiceHandler;
use fcgi_tokio::client::{ClientOptions, ClientRequest, ResponseEnd};
use fcgi_tokio::fcgi_driver::server::Handler;
use fcgi_tokio::server::{ServerOptions, ShutdownHandle, WebServerAddrs};
use fcgi_tokio::{Backend, Client, Listener};

/// Upper bound for anything a test waits for: a guard against hanging, not a timing check.
pub const GUARD: Duration = Duration::from_secs(20);

/// A server running a handler on loopback, stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub client: Client,
    handle: ShutdownHandle,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// Server options for the tests: all roles, multiplexing, any peer.
pub fn options() -> ServerOptions {
    let mut opts = ServerOptions::default();
    opts.core.roles = RoleSet::ALL;
    opts.core.multiplex = true;
    opts.web_server_addrs = WebServerAddrs::Any;
    opts
}

/// Serves `handler` on a fresh loopback port (inside the current tokio runtime).
pub async fn serve_handler<H: Handler>(handler: H, opts: ServerOptions) -> TestServer {
    let listener = Listener::bind_tcp("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let server = fcgi_tokio::server(opts);
    let handle = server.shutdown_handle();
    tokio::spawn(async move {
        if let Err(e) = server.serve(listener, handler).await {
            eprintln!("test server: {e}");
        }
    });
    let client = fcgi_tokio::client(Backend::Tcp(addr), ClientOptions::default());
    TestServer {
        addr,
        client,
        handle,
    }
}

/// Serves a service through `ServiceHandler`.
pub async fn serve<S>(service: S) -> TestServer
where
    ServiceHandler<S>: Handler,
{
    serve_handler(ServiceHandler::new(service), options()).await
}

/// A Responder request with the params nginx would send for `method target`.
pub fn request(method: &str, target: &str) -> ClientRequest {
    ClientRequest::responder()
        .param("REQUEST_METHOD", method)
        .param("REQUEST_URI", target)
        .param("SERVER_PROTOCOL", "HTTP/1.1")
        .param("HTTP_HOST", "app.test")
        .param("REMOTE_ADDR", "192.0.2.9")
        .param("REMOTE_PORT", "40001")
        .param("SERVER_ADDR", "127.0.0.1")
        .param("SERVER_PORT", "8080")
        .param("SCRIPT_NAME", "")
        .param("DOCUMENT_ROOT", "/srv/www")
}

/// A CGI response split into its head (text) and body.
#[derive(Debug)]
pub struct Output {
    pub head: String,
    pub body: Bytes,
    pub end: ResponseEnd,
}

impl Output {
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.end.stderr).into_owned()
    }
}

/// Splits at the first empty line.
pub fn split(stdout: &Bytes) -> (String, Bytes) {
    let at = stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {stdout:?}"));
    (
        String::from_utf8(stdout[..at + 4].to_vec()).unwrap(),
        stdout.slice(at + 4..),
    )
}

/// Sends a request and collects the whole answer (bounded in size and time).
pub async fn send(server: &TestServer, req: ClientRequest) -> Output {
    let fut = async {
        let resp = server.client.send(req).await.unwrap();
        resp.collect(64 << 20).await.unwrap()
    };
    let (stdout, end) = tokio::time::timeout(GUARD, fut)
        .await
        .expect("response in time");
    let (head, body) = split(&stdout);
    Output { head, body, end }
}

/// A deterministic test pattern of `len` bytes.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// A response body fed through a channel: each message is one frame; an `Err` fails the
/// body; dropping the sender ends it. Its size is unknown.
pub struct ChannelBody(pub tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        self.get_mut()
            .0
            .poll_recv(cx)
            .map(|o| o.map(|r| r.map(http_body::Frame::data)))
    }
}
