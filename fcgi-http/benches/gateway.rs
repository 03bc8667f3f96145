//! What the FastCGI hop costs an HTTP server: requests per second of a hyper server answering
//! directly, next to the same hyper server answering through our [`Gateway`] to a FastCGI
//! application (our tokio server) over a Unix socket, measured in the same run.
//!
//! ```text
//! cargo bench -p fcgi-http --bench gateway                    # ~3 s per scenario
//! FCGI_BENCH_SECS=1 cargo bench -p fcgi-http --bench gateway  # quick look
//! ```
//!
//! Everything (HTTP client, HTTP server, gateway, FastCGI application) runs on one
//! current-thread tokio runtime, so requests per second is the inverse of the total CPU per
//! request, and the ratio is the cost of the whole gateway path (HTTP → CGI params, FastCGI
//! client and server, CGI head parsing) relative to answering in process.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a bench binary: failing loudly is the point

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fcgi_http::gateway::{Gateway, GatewayConfig, LocalRoot};
use fcgi_http::request::{ConnInfo, ScriptResolution};
use fcgi_tokio::client::ClientOptions;
use fcgi_tokio::server::{Request as FcgiRequest, Response as FcgiResponse, ServerOptions};
use fcgi_tokio::{Backend, Listener};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{UnixListener, UnixStream};

const HELLO: &[u8] = b"Hello, world!";
const CGI_HELLO: &[u8] =
    b"Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!";

fn secs() -> f64 {
    std::env::var("FCGI_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0)
}

async fn fcgi_hello(_req: FcgiRequest, mut out: FcgiResponse) -> u32 {
    match out.stdout(Bytes::from_static(CGI_HELLO)).await {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

/// Serves HTTP/1.1 on `path` with `service`, one task per connection.
fn serve_http<S>(path: &Path, service: S)
where
    S: tower_service::Service<
            http::Request<hyper::body::Incoming>,
            Response = http::Response<fcgi_http::gateway::GatewayBody>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let listener = UnixListener::bind(path).unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let service = service.clone();
            tokio::spawn(async move {
                let conn = ConnInfo::new(
                    "127.0.0.1:80".parse().unwrap(),
                    "127.0.0.1:40000".parse().unwrap(),
                    false,
                );
                let service =
                    tower::ServiceExt::map_request(service, move |mut r: http::Request<_>| {
                        r.extensions_mut().insert(conn);
                        r
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                    .await;
            });
        }
    });
}

/// Runs `in_flight` keep-alive HTTP/1.1 connections to `path` for `secs`; requests/s.
async fn load(path: &Path, in_flight: usize) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(secs());
    let mut tasks = Vec::new();
    for _ in 0..in_flight {
        let stream = UnixStream::connect(path).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let done = Arc::clone(&done);
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let request = http::Request::get("/index.php?a=1&b=two")
                    .header("host", "localhost")
                    .header(
                        "user-agent",
                        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                    )
                    .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
                    .header("accept-language", "en-US,en;q=0.5")
                    .header("accept-encoding", "gzip, deflate, br")
                    .body(Empty::<Bytes>::new())
                    .unwrap();
                let response = sender.send_request(request).await.unwrap();
                assert_eq!(response.status(), 200);
                let body = response.into_body().collect().await.unwrap().to_bytes();
                assert_eq!(&body[..], HELLO);
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let start = Instant::now();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let direct = dir.path().join("direct.sock");
        let via = dir.path().join("gateway.sock");
        let app = dir.path().join("app.sock");

        // The FastCGI application.
        let listener = Listener::bind_unix(&app).unwrap();
        tokio::spawn(async move {
            let _ = fcgi_tokio::server(ServerOptions::default())
                .serve(listener, fcgi_hello)
                .await;
        });

        // HTTP answered in process.
        let hello = tower::service_fn(|_req: http::Request<hyper::body::Incoming>| async {
            let mut r = http::Response::new(fcgi_http::gateway::GatewayBody::full(HELLO));
            r.headers_mut()
                .insert("content-type", http::HeaderValue::from_static("text/plain"));
            Ok::<_, Infallible>(r)
        });
        serve_http(&direct, hello);

        // HTTP through the gateway.
        let gateway = Gateway::new(
            fcgi_tokio::client(Backend::Unix(app.clone()), ClientOptions::default()),
            {
                let mut config = GatewayConfig::new(
                    "/var/www/html",
                    ScriptResolution::FrontController("index.php".into()),
                );
                // The backend is a Rust test app, not files.
                config.local_root = LocalRoot::None;
                config
            },
        )
        .errors_as_responses();
        serve_http(&via, gateway);

        println!("scenario                         requests/s   cost vs direct");
        for in_flight in [1usize, 16] {
            let base = load(&direct, in_flight).await;
            let through = load(&via, in_flight).await;
            println!("direct hyper,  {in_flight:>2} in flight      {base:>10.0}   1.00×");
            println!(
                "via gateway,   {in_flight:>2} in flight      {through:>10.0}   {:.2}×",
                base / through
            );
        }
    });
}
