//! An axum `Router` served by `ServiceHandler` behind REAL web servers: nginx
//! (`fastcgi_pass`, Responder), Apache httpd (mod_authnz_fcgi Authorizer + mod_proxy_fcgi
//! Responder) and lighttpd (Authorizer in front of static files). HTTP requests go to the
//! web server with the testkit's blocking client.
//!
//! A missing web server fails the test under `CI=true` and is skipped with a loud
//! `SKIPPED:` line otherwise (the testkit's `require` rule).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod app_util;

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use fcgi_core::{Params, Role};
use fcgi_http::app::{FcgiRequest, HttpConn, ServiceHandler, authorizer};
use fcgi_testkit::AppAddr;
use fcgi_testkit::http::{IO_TIMEOUT, Request as HttpRequest, read_response};
use fcgi_testkit::peers::{RunningPeer, apache, lighttpd, nginx};
use fcgi_tokio::Listener;
use fcgi_tokio::server::ShutdownHandle;
use http::StatusCode;

/// The application: a few routes, and an Authorizer answer for Authorizer requests (one
/// router serves both roles, told apart by the `FcgiRequest` extension).
fn app() -> Router {
    Router::new()
        .route(
            "/hello",
            get(
                |Query(q): Query<std::collections::HashMap<String, String>>| async move {
                    format!("hello {}\n", q.get("name").map_or("nobody", String::as_str))
                },
            ),
        )
        .route("/echo", post(echo))
        .route("/info", get(info))
        .route(
            "/json",
            get(|| async { axum::Json(serde_json::json!({"items": [1, 2, 3], "ok": true})) }),
        )
        .route(
            "/redirect",
            get(|| async { Redirect::to("/hello?name=again") }),
        )
        .route("/auth/page", get(auth_page))
        .layer(middleware::from_fn(authorize))
}

async fn echo(req: Request) -> Response {
    let ctype = req.headers().get("content-type").cloned();
    let mut resp = Response::new(Body::new(req.into_body()));
    if let Some(t) = ctype {
        resp.headers_mut().insert("content-type", t);
    }
    resp
}

/// What the application saw of the request.
async fn info(req: Request) -> String {
    let conn = req.extensions().get::<HttpConn>().copied().unwrap();
    let custom = req
        .headers()
        .get("x-custom")
        .map_or("-", |v| v.to_str().unwrap());
    format!(
        "uri={} version={:?} x-custom={custom} remote-ip={:?}\n",
        req.uri(),
        req.version(),
        conn.remote_ip,
    )
}

/// The Responder behind the authorizer: shows the variable the authorizer set.
async fn auth_page(req: Request) -> String {
    let params = req.extensions().get::<Params>().unwrap();
    format!("user={}\n", params.get_str("AUTH_USER").unwrap_or("(none)"))
}

async fn authorize(req: Request, next: Next) -> Response {
    let role = req.extensions().get::<FcgiRequest>().map(|r| r.role);
    if role != Some(Role::Authorizer) {
        return next.run(req).await;
    }
    let token = req.headers().get("authorization").map(|v| v.as_bytes());
    if token == Some(b"Bearer let-me-in") {
        return authorizer::allow::<Body, _, _, _>([("AUTH_USER", "alice")]).unwrap();
    }
    (
        StatusCode::FORBIDDEN,
        [("x-denied-by", "axum")],
        "denied by axum\n",
    )
        .into_response()
}

/// The application on a background tokio runtime, stopped when dropped.
struct Running {
    addr: AppAddr,
    handle: ShutdownHandle,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

fn start_app() -> Running {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(Listener::bind_tcp("127.0.0.1:0".parse().unwrap()))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let server = fcgi_tokio::server(app_util::options());
    let handle = server.shutdown_handle();
    runtime.spawn(async move {
        if let Err(e) = server.serve(listener, ServiceHandler::new(app())).await {
            eprintln!("app server: {e}");
        }
    });
    Running {
        addr: AppAddr::Tcp(addr),
        handle,
        runtime: Some(runtime),
    }
}

/// Sends a raw HTTP/1.0 request (the testkit client speaks HTTP/1.1 only).
fn send_http10(peer: &RunningPeer, target: &str) -> fcgi_testkit::http::Response {
    let mut stream = TcpStream::connect_timeout(&peer.addr(), IO_TIMEOUT).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    write!(stream, "GET {target} HTTP/1.0\r\nX-Custom: old\r\n\r\n").unwrap();
    read_response(&mut BufReader::new(stream), false).unwrap()
}

fn nginx_checks(keep_conn: bool) {
    let app = start_app();
    let Some(peer) = nginx::start(&app.addr, nginx::Options { keep_conn }) else {
        return;
    };
    let port = peer.addr().port();

    // GET with a query string.
    let r = peer.send(&HttpRequest::get("/hello?name=nginx%20user"));
    assert_eq!((r.status, r.reason.as_str()), (200, "OK"), "{}", r.text());
    assert_eq!(r.text(), "hello nginx user\n");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    // Our Content-Length reached nginx, which framed the answer with it.
    assert_eq!(r.header("content-length"), Some("17"));

    // POST with a body, echoed back (larger than nginx's in-memory buffers).
    let body = app_util::pattern(300_000);
    let r = peer.send(&HttpRequest::post("/echo", body.clone()));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert!(
        r.body == body,
        "echoed body differs ({} bytes)",
        r.body.len()
    );
    // A chunked upload: nginx buffers it and sends CONTENT_LENGTH.
    let r = peer.send(&HttpRequest::post_chunked(
        "/echo",
        b"chunked body".to_vec(),
        5,
    ));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"chunked body");

    // Headers reach axum; the URI is absolute from Host; the client address is nginx's view.
    let r = peer.send(&HttpRequest::get("/info?q=1").header("X-Custom", "from the client"));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text(),
        format!(
            "uri=http://127.0.0.1:{port}/info?q=1 version=HTTP/1.1 x-custom=from the client \
             remote-ip=Some(127.0.0.1)\n"
        )
    );

    // JSON.
    let r = peer.send(&HttpRequest::get("/json"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v, serde_json::json!({"items": [1, 2, 3], "ok": true}));

    // axum's 404 passes through nginx as it is.
    let r = peer.send(&HttpRequest::get("/no/such/route"));
    assert_eq!((r.status, r.reason.as_str()), (404, "Not Found"));
    assert!(r.body.is_empty(), "{}", r.text());

    // A redirect.
    let r = peer.send(&HttpRequest::get("/redirect"));
    assert_eq!((r.status, r.reason.as_str()), (303, "See Other"));
    assert_eq!(r.header("location"), Some("/hello?name=again"));

    // HTTP/1.0: no Host, so the URI stays origin-form; the version reaches the service.
    let r = send_http10(&peer, "/info");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.text(),
        "uri=/info version=HTTP/1.0 x-custom=old remote-ip=Some(127.0.0.1)\n"
    );
    // With our Content-Length, nginx answers a 1.0 client with a length, not a close.
    assert_eq!(r.header("content-length"), Some("66"));
}

#[test]
fn nginx_serves_an_axum_router() {
    nginx_checks(false);
}

#[test]
fn nginx_serves_an_axum_router_on_kept_connections() {
    nginx_checks(true);
}

/// Apache: mod_authnz_fcgi asks our Authorizer about `/auth/`, then mod_proxy_fcgi sends the
/// granted request to our Responder with the variable the Authorizer set.
#[test]
fn apache_uses_the_authorizer_answer() {
    let app = start_app();
    let Some(peer) = apache::start(
        &app.addr,
        apache::Options {
            reuse: false,
            authorizer: true,
        },
    ) else {
        return;
    };
    let r = peer.send(&HttpRequest::get("/auth/page").header("Authorization", "Bearer let-me-in"));
    assert_eq!(r.status, 200, "{}\n{}", r.text(), peer.logs());
    // `Variable-AUTH_USER` (upper case, as Apache wants it) became the variable AUTH_USER.
    assert_eq!(r.text(), "user=alice\n");

    let r = peer.send(&HttpRequest::get("/auth/page").header("Authorization", "Bearer nope"));
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.text(), "denied by axum\n");
    assert_eq!(r.header("x-denied-by"), Some("axum"));

    // Outside /auth/ the Responder answers directly.
    let r = peer.send(&HttpRequest::get("/hello?name=apache"));
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "hello apache\n");
}

/// lighttpd: our Authorizer guards static files.
#[test]
fn lighttpd_uses_the_authorizer_answer() {
    let app = start_app();
    let Some(peer) = lighttpd::start(
        &app.addr,
        &lighttpd::Options {
            authorizer: true,
            ..Default::default()
        },
    ) else {
        return;
    };
    let r = peer
        .send(&HttpRequest::get(lighttpd::AUTH_FILE).header("Authorization", "Bearer let-me-in"));
    assert_eq!(r.status, 200, "{}\n{}", r.text(), peer.logs());
    assert_eq!(r.text(), lighttpd::AUTH_FILE_BODY);

    let r = peer.send(&HttpRequest::get(lighttpd::AUTH_FILE));
    assert_eq!(r.status, 403);
    assert_eq!(r.text(), "denied by axum\n");
}
