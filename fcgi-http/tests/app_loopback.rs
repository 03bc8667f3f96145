//! `ServiceHandler` end to end over loopback: an axum `Router` (and a few raw tower
//! services) served by our tokio FastCGI server, driven by our tokio FastCGI client with the
//! params a web server would send. Exact CGI output is asserted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod app_util;

use std::convert::Infallible;
use std::io;
use std::sync::Arc;

use app_util::{ChannelBody, GUARD, Output, pattern, request, send, serve};
use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use fcgi_core::Params;
use fcgi_http::app::{
    APP_STATUS_BODY_ERROR, APP_STATUS_OK, APP_STATUS_SERVICE_ERROR, FcgiRequest, HttpConn,
    RequestBody,
};
use http::StatusCode;
use http_body::Body as _;
use http_body_util::BodyExt;
use tokio::sync::{Notify, mpsc};
use tower::service_fn;

async fn whoami(req: Request) -> String {
    let conn = req.extensions().get::<HttpConn>().copied().unwrap();
    let fcgi = req.extensions().get::<FcgiRequest>().copied().unwrap();
    let params = req.extensions().get::<Params>().unwrap();
    format!(
        "remote={:?} local={:?} https={} role={:?} root={} uri={} version={:?}\n",
        conn.remote(),
        conn.local(),
        conn.https,
        fcgi.role,
        params.get_str("DOCUMENT_ROOT").unwrap_or("-"),
        req.uri(),
        req.version(),
    )
}

/// Streams the request body back, with its content type.
async fn echo(req: Request) -> Response {
    let ctype = req.headers().get("content-type").cloned();
    let mut resp = Response::new(Body::new(req.into_body()));
    if let Some(t) = ctype {
        resp.headers_mut().insert("content-type", t);
    }
    resp
}

/// Sends `part1`, waits for the gate, sends `part2`.
async fn stream(gate: Arc<Notify>) -> Response {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        tx.send(Ok(Bytes::from_static(b"part1\n"))).await.unwrap();
        gate.notified().await;
        tx.send(Ok(Bytes::from_static(b"part2\n"))).await.unwrap();
    });
    Response::new(Body::new(ChannelBody(rx)))
}

fn router(gate: Arc<Notify>) -> Router {
    Router::new()
        .route("/hello", get(|| async { "hello\n" }))
        .route("/echo", post(echo))
        .route("/whoami", get(whoami))
        .route(
            "/json",
            get(|| async { axum::Json(serde_json::json!({"ok": true, "n": 3})) }),
        )
        .route("/redirect", get(|| async { Redirect::to("/hello") }))
        .route(
            "/query",
            get(
                |Query(q): Query<std::collections::BTreeMap<String, String>>| async move {
                    format!("{q:?}")
                },
            ),
        )
        .route(
            "/cookies",
            get(|| async {
                (
                    StatusCode::CREATED,
                    axum::response::AppendHeaders([("set-cookie", "a=1"), ("set-cookie", "b=2")]),
                    "made",
                )
            }),
        )
        .route("/stream", get(move || stream(Arc::clone(&gate))))
}

async fn serve_router() -> (app_util::TestServer, Arc<Notify>) {
    let gate = Arc::new(Notify::new());
    (serve(router(Arc::clone(&gate))).await, gate)
}

fn assert_ok(out: &Output) {
    assert_eq!(
        out.end.app_status,
        APP_STATUS_OK,
        "stderr: {}",
        out.stderr()
    );
    assert!(out.end.stderr.is_empty(), "stderr: {}", out.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_hello_exact_output_in_one_record() {
    let (server, _) = serve_router().await;
    let mut resp = server.client.send(request("GET", "/hello")).await.unwrap();
    let first = tokio::time::timeout(GUARD, resp.chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let expected = "Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\
                    Content-Length: 6\r\n\r\nhello\n";
    // Head and a small body leave in one write, so they arrive as one STDOUT record.
    assert_eq!(String::from_utf8_lossy(&first), expected);
    assert!(resp.chunk().await.is_none());
    let end = resp.finish().await.unwrap();
    assert_eq!(end.app_status, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_echo_and_a_5_mib_roundtrip() {
    let (server, _) = serve_router().await;
    let out = send(
        &server,
        request("POST", "/echo")
            .param("CONTENT_TYPE", "text/plain")
            .param("CONTENT_LENGTH", "11")
            .stdin("hello world"),
    )
    .await;
    assert_ok(&out);
    assert_eq!(
        out.head,
        "Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\n"
    );
    assert_eq!(out.body, "hello world");

    let big = pattern(5 << 20);
    let out = send(
        &server,
        request("POST", "/echo")
            .param("CONTENT_TYPE", "application/octet-stream")
            .param("CONTENT_LENGTH", big.len().to_string())
            .stdin(big.clone()),
    )
    .await;
    assert_ok(&out);
    assert!(
        out.head.contains("Content-Length: 5242880\r\n"),
        "{}",
        out.head
    );
    assert_eq!(out.body.len(), big.len());
    assert!(out.body == big, "5 MiB body differs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_redirect_json_query_and_repeated_headers() {
    let (server, _) = serve_router().await;
    let out = send(&server, request("GET", "/nope")).await;
    assert_ok(&out);
    assert_eq!(
        out.head,
        "Status: 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    );
    assert!(out.body.is_empty());

    let out = send(&server, request("GET", "/redirect")).await;
    assert_ok(&out);
    assert_eq!(
        out.head,
        "Status: 303 See Other\r\nLocation: /hello\r\nContent-Length: 0\r\n\r\n"
    );

    let out = send(&server, request("GET", "/json")).await;
    assert_ok(&out);
    assert_eq!(
        out.head,
        "Status: 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.body).unwrap();
    assert_eq!(v, serde_json::json!({"ok": true, "n": 3}));

    let out = send(&server, request("GET", "/query?b=2&a=%C3%A9+x")).await;
    assert_ok(&out);
    assert_eq!(out.body, r#"{"a": "é x", "b": "2"}"#);

    let out = send(&server, request("GET", "/cookies")).await;
    assert_ok(&out);
    assert_eq!(
        out.head,
        "Status: 201 Created\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 4\r\n\r\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_sees_addresses_role_params_and_the_absolute_uri() {
    let (server, _) = serve_router().await;
    let out = send(
        &server,
        request("GET", "/whoami?x=1")
            .param("HTTPS", "on")
            .param("SERVER_PROTOCOL", "HTTP/2.0"),
    )
    .await;
    assert_ok(&out);
    assert_eq!(
        out.body,
        "remote=Some(192.0.2.9:40001) local=Some(127.0.0.1:8080) https=true role=Responder \
         root=/srv/www uri=https://app.test/whoami?x=1 version=HTTP/2.0\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_response_is_sent_as_it_is_produced() {
    let (server, gate) = serve_router().await;
    let mut resp = server.client.send(request("GET", "/stream")).await.unwrap();
    // The second part is only produced once we open the gate: receiving the first part
    // before that proves the response is streamed, not collected.
    let mut got = Vec::new();
    while !got.ends_with(b"part1\n") {
        let piece = tokio::time::timeout(GUARD, resp.chunk())
            .await
            .expect("first part streamed before the body ended")
            .expect("more output")
            .unwrap();
        got.extend_from_slice(&piece);
    }
    assert_eq!(
        String::from_utf8_lossy(&got),
        // Unknown length: no Content-Length, the web server frames it.
        "Status: 200 OK\r\n\r\npart1\n"
    );
    gate.notify_one();
    while let Some(piece) = tokio::time::timeout(GUARD, resp.chunk()).await.unwrap() {
        got.extend_from_slice(&piece.unwrap());
    }
    assert!(got.ends_with(b"part1\npart2\n"), "{got:?}");
    assert_eq!(resp.finish().await.unwrap().app_status, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_on_a_multiplexed_connection() {
    let (server, _) = serve_router().await;
    let server = Arc::new(server);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..24 {
        let server = Arc::clone(&server);
        tasks.spawn(async move {
            let body = format!("request {i}");
            let out = send(
                &server,
                request("POST", "/echo")
                    .param("CONTENT_LENGTH", body.len().to_string())
                    .stdin(body.clone().into_bytes()),
            )
            .await;
            assert_eq!(out.body, body);
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_service_gets_a_500_and_a_stderr_line() {
    let server = serve(service_fn(|_req: http::Request<RequestBody>| async {
        Err::<http::Response<Body>, _>(io::Error::other("database unreachable"))
    }))
    .await;
    let out = send(&server, request("GET", "/x")).await;
    assert_eq!(out.end.app_status, APP_STATUS_SERVICE_ERROR);
    assert_eq!(
        out.head,
        "Status: 500 Internal Server Error\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: 22\r\n\r\n"
    );
    assert_eq!(out.body, "Internal Server Error\n");
    let stderr = out.stderr();
    assert!(
        stderr.starts_with("fcgi-http: GET /x: the service failed"),
        "{stderr}"
    );
    assert!(stderr.contains("database unreachable"), "{stderr}");
    assert!(stderr.ends_with('\n'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_failing_before_its_first_byte_becomes_a_500() {
    let server = serve(service_fn(|_req: http::Request<RequestBody>| async {
        let (tx, rx) = mpsc::channel(1);
        tx.send(Err(io::Error::other("render failed")))
            .await
            .unwrap();
        Ok::<_, Infallible>(http::Response::new(ChannelBody(rx)))
    }))
    .await;
    let out = send(&server, request("GET", "/x")).await;
    assert_eq!(out.end.app_status, APP_STATUS_BODY_ERROR);
    assert!(
        out.head
            .starts_with("Status: 500 Internal Server Error\r\n")
    );
    assert!(out.stderr().contains("render failed"), "{}", out.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_failing_midway_truncates_the_response() {
    let gate = Arc::new(Notify::new());
    let service_gate = Arc::clone(&gate);
    let server = serve(service_fn(move |_req: http::Request<RequestBody>| {
        let gate = Arc::clone(&service_gate);
        async move {
            let (tx, rx) = mpsc::channel(1);
            tokio::spawn(async move {
                tx.send(Ok(Bytes::from_static(b"partial"))).await.unwrap();
                gate.notified().await;
                tx.send(Err(io::Error::other("disk gone"))).await.unwrap();
            });
            Ok::<_, Infallible>(http::Response::new(ChannelBody(rx)))
        }
    }))
    .await;
    let mut resp = server.client.send(request("GET", "/x")).await.unwrap();
    let mut got = Vec::new();
    while !got.ends_with(b"partial") {
        let piece = tokio::time::timeout(GUARD, resp.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        got.extend_from_slice(&piece);
    }
    gate.notify_one();
    while let Some(piece) = tokio::time::timeout(GUARD, resp.chunk()).await.unwrap() {
        got.extend_from_slice(&piece.unwrap());
    }
    assert_eq!(got, b"Status: 200 OK\r\n\r\npartial");
    let end = resp.finish().await.unwrap();
    assert_eq!(end.app_status, APP_STATUS_BODY_ERROR);
    let stderr = String::from_utf8_lossy(&end.stderr);
    assert!(stderr.contains("after 25 bytes"), "{stderr}");
    assert!(stderr.contains("truncated"), "{stderr}");
    assert!(stderr.contains("disk gone"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interim_status_is_a_service_error() {
    let server = serve(service_fn(|_req: http::Request<RequestBody>| async {
        let mut r = http::Response::new(Body::empty());
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        Ok::<_, Infallible>(r)
    }))
    .await;
    let out = send(&server, request("GET", "/ws")).await;
    assert_eq!(out.end.app_status, APP_STATUS_SERVICE_ERROR);
    assert!(out.head.starts_with("Status: 500 "), "{}", out.head);
    assert!(
        out.stderr().contains("101 Switching Protocols"),
        "{}",
        out.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn params_that_make_no_request_get_a_400() {
    let (server, _) = serve_router().await;
    let req = fcgi_tokio::client::ClientRequest::responder().param("REQUEST_URI", "/hello");
    let out = send(&server, req).await;
    assert_eq!(out.end.app_status, APP_STATUS_OK);
    assert!(
        out.head.starts_with("Status: 400 Bad Request\r\n"),
        "{}",
        out.head
    );
    assert_eq!(out.body, "Bad Request\n");
    assert!(
        out.stderr().contains("REQUEST_METHOD is missing"),
        "{}",
        out.stderr()
    );

    let out = send(
        &server,
        request("POST", "/echo").param("CONTENT_LENGTH", "lots"),
    )
    .await;
    assert!(out.head.starts_with("Status: 400 "), "{}", out.head);
    assert!(out.stderr().contains("CONTENT_LENGTH"), "{}", out.stderr());
}

/// Reads the whole body and reports what happened.
async fn body_report(
    req: http::Request<RequestBody>,
) -> Result<http::Response<String>, Infallible> {
    let hint = req.body().size_hint().exact();
    let text = match req.into_body().collect().await {
        Ok(c) => format!("ok {hint:?} {:?}", c.to_bytes()),
        Err(e) => format!("err {hint:?} {:?}", e.kind()),
    };
    Ok(http::Response::new(text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_body_is_framed_by_content_length() {
    let server = serve(service_fn(body_report)).await;
    let post = |len: &str, body: &'static str| {
        request("POST", "/b")
            .param("CONTENT_LENGTH", len)
            .stdin(body)
    };
    let out = send(&server, post("5", "hello")).await;
    assert_eq!(out.body, "ok Some(5) b\"hello\"");
    // Bytes beyond CONTENT_LENGTH are not read (RFC 3875 §4.2).
    let out = send(&server, post("3", "abcdef")).await;
    assert_eq!(out.body, "ok Some(3) b\"abc\"");
    // A body that ends short is an error, not a short success.
    let out = send(&server, post("10", "abcd")).await;
    assert_eq!(out.body, "err Some(10) UnexpectedEof");
    // No CONTENT_LENGTH: whatever STDIN carries. (A streamed body: a whole one would get
    // its CONTENT_LENGTH from the client.)
    let free = futures_util::stream::once(async { Ok(Bytes::from_static(b"free")) });
    let out = send(
        &server,
        request("POST", "/b").stdin(fcgi_tokio::client::RequestBody::stream(free)),
    )
    .await;
    assert_eq!(out.body, "ok None b\"free\"");
    // A GET with no body at all.
    let out = send(&server, request("GET", "/b").param("CONTENT_LENGTH", "")).await;
    assert_eq!(out.body, "ok None b\"\"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_stdin_limit_reaches_the_service_as_invalid_data() {
    let mut opts = app_util::options();
    opts.max_stdin_bytes = Some(1000);
    let server = app_util::serve_handler(
        fcgi_http::app::ServiceHandler::new(service_fn(body_report)),
        opts,
    )
    .await;
    let out = send(
        &server,
        request("POST", "/b")
            .param("CONTENT_LENGTH", "5000")
            .stdin(pattern(5000)),
    )
    .await;
    assert_eq!(out.body, "err Some(5000) InvalidData");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_but_not_sync_service_is_served() {
    // tower's BoxCloneService is Send but not Sync; the handler must not ask for Sync.
    let svc = tower::util::BoxCloneService::new(service_fn(
        |req: http::Request<RequestBody>| async move {
            Ok::<_, Infallible>(http::Response::new(format!("boxed {}", req.uri().path())))
        },
    ));
    let server = serve(svc).await;
    let out = send(&server, request("GET", "/b")).await;
    assert_ok(&out);
    assert_eq!(out.body, "boxed /b");
}
