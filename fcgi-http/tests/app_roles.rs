//! The Authorizer and Filter roles through `ServiceHandler`, end to end over loopback with
//! our tokio client (`ClientRequest::authorizer()` / `ClientRequest::filter()`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod app_util;

use std::time::SystemTime;

use app_util::{pattern, send, serve};
use axum::Router;
use axum::body::Body;
use axum::extract::{Extension, Request};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use fcgi_core::Role;
use fcgi_http::app::{APP_STATUS_OK, FcgiRequest, FilterData, authorizer};
use fcgi_tokio::client::ClientRequest;
use http::StatusCode;
use http_body::Body as _;
use http_body_util::BodyExt;

/// Grants `Bearer good` (as alice), denies anything else with a 403 page. Also reports what
/// an Authorizer's body looks like: empty, whatever CONTENT_LENGTH said.
async fn authorize(req: Request) -> Response {
    let role = req.extensions().get::<FcgiRequest>().unwrap().role;
    assert_eq!(role, Role::Authorizer);
    let token = req
        .headers()
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned());
    let path = req.uri().path().to_owned();
    let body = req.into_body();
    assert!(body.is_end_stream());
    let bytes = body.collect().await.unwrap().to_bytes();
    assert!(bytes.is_empty());
    match token.as_deref() {
        Some("Bearer good") => {
            authorizer::allow::<Body, _, _, _>([("REMOTE_USER", "alice"), ("AUTH_PATH", &path)])
                .unwrap()
        }
        // A 200 with a body: the body of a grant is not sent.
        Some("Bearer chatty") => (
            [("x-info", "granted")],
            "this body is ignored by the web server",
        )
            .into_response(),
        _ => (StatusCode::FORBIDDEN, "denied\n").into_response(),
    }
}

fn auth_request(token: Option<&str>) -> ClientRequest {
    let mut r = ClientRequest::authorizer()
        .param("REQUEST_METHOD", "POST")
        .param("REQUEST_URI", "/private/report")
        .param("CONTENT_LENGTH", "1234")
        .param("HTTP_HOST", "app.test");
    if let Some(t) = token {
        r = r.param("HTTP_AUTHORIZATION", t);
    }
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorizer_allows_with_variables() {
    let server = serve(Router::new().fallback(authorize)).await;
    let out = send(&server, auth_request(Some("Bearer good"))).await;
    assert_eq!(out.end.app_status, APP_STATUS_OK, "{}", out.stderr());
    assert_eq!(
        out.head,
        "Status: 200 OK\r\nVariable-REMOTE_USER: alice\r\n\
         Variable-AUTH_PATH: /private/report\r\n\r\n"
    );
    assert!(out.body.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorizer_grant_bodies_are_not_sent() {
    let server = serve(Router::new().fallback(authorize)).await;
    let out = send(&server, auth_request(Some("Bearer chatty"))).await;
    assert_eq!(out.end.app_status, APP_STATUS_OK);
    // Neither the body nor the Content-Length that announced it.
    assert_eq!(
        out.head,
        "Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nX-Info: granted\r\n\r\n"
    );
    assert!(out.body.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorizer_denies_with_a_full_response() {
    let server = serve(Router::new().fallback(authorize)).await;
    for token in [None, Some("Bearer bad")] {
        let out = send(&server, auth_request(token)).await;
        assert_eq!(out.end.app_status, APP_STATUS_OK);
        assert_eq!(
            out.head,
            "Status: 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 7\r\n\r\n"
        );
        assert_eq!(out.body, "denied\n");
    }
}

/// Reads the body, then the data file; answers with both and the file's metadata.
async fn filter_both(Extension(data): Extension<FilterData>, req: Request) -> Response {
    let role = req.extensions().get::<FcgiRequest>().unwrap().role;
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let meta = format!(
        "role={role:?} body={} length={:?} mtime={:?}\n",
        String::from_utf8_lossy(&body),
        data.length(),
        data.last_modified()
            .map(|t| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()),
    );
    let file = data.take().unwrap();
    assert_eq!(file.size_hint().exact(), data.length());
    assert!(data.take().is_none(), "the data stream is handed out once");
    let file = file.collect().await.unwrap().to_bytes();
    let mut out = meta.into_bytes();
    out.extend_from_slice(&file.to_ascii_uppercase());
    out.into_response()
}

fn filter_request(stdin: impl Into<Bytes>, data: impl Into<Bytes>) -> ClientRequest {
    let stdin = stdin.into();
    let data = data.into();
    ClientRequest::filter()
        .param("REQUEST_METHOD", "POST")
        .param("REQUEST_URI", "/doc.txt")
        .param("CONTENT_LENGTH", stdin.len().to_string())
        .param("FCGI_DATA_LENGTH", data.len().to_string())
        .param("FCGI_DATA_LAST_MOD", "1700000000")
        .stdin(stdin)
        .data(data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_reads_body_then_data() {
    let server = serve(Router::new().fallback(filter_both)).await;
    let out = send(&server, filter_request("opts", "hello filter")).await;
    assert_eq!(out.end.app_status, APP_STATUS_OK, "{}", out.stderr());
    assert_eq!(
        out.body,
        "role=Filter body=opts length=Some(12) mtime=Some(1700000000)\nHELLO FILTER"
    );
    // A large data file streams through (beyond every buffer of the server).
    let data = pattern(3 << 20);
    let out = send(&server, filter_request("x", data.clone())).await;
    let head_len = out.body.iter().position(|&b| b == b'\n').unwrap() + 1;
    assert_eq!(
        &out.body[..head_len],
        format!(
            "role=Filter body=x length=Some({}) mtime=Some(1700000000)\n",
            data.len()
        )
        .as_bytes()
    );
    assert!(out.body[head_len..] == data.to_ascii_uppercase()[..]);
}

/// Never looks at the body: reads only the data file.
async fn filter_data_only(Extension(data): Extension<FilterData>) -> Response {
    let file = data.take().unwrap().collect().await.unwrap().to_bytes();
    format!("data={}", file.len()).into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_data_is_reachable_when_a_large_body_is_ignored() {
    // 1 MiB of STDIN is more than the server buffers for an idle reader (256 KiB): the data
    // stream must discard it to reach the file, or the request would stall.
    let server = serve(Router::new().fallback(filter_data_only)).await;
    let out = send(&server, filter_request(pattern(1 << 20), pattern(70_000))).await;
    assert_eq!(out.end.app_status, APP_STATUS_OK, "{}", out.stderr());
    assert_eq!(out.body, "data=70000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_that_reads_neither_body_nor_data_still_answers() {
    let server = serve(Router::new().fallback(|| async { "ignored\n" })).await;
    let out = send(&server, filter_request(pattern(600_000), "d")).await;
    assert_eq!(out.end.app_status, APP_STATUS_OK, "{}", out.stderr());
    assert_eq!(out.body, "ignored\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_data_shorter_than_announced_is_an_error() {
    let server = serve(Router::new().fallback(
        |Extension(data): Extension<FilterData>| async move {
            match data.take().unwrap().collect().await {
                Ok(c) => format!("ok {}", c.to_bytes().len()),
                Err(e) => format!("err {:?}", e.kind()),
            }
        },
    ))
    .await;
    let req = ClientRequest::filter()
        .param("REQUEST_METHOD", "GET")
        .param("REQUEST_URI", "/f")
        .param("FCGI_DATA_LENGTH", "100")
        .data("only 13 bytes");
    let out = send(&server, req).await;
    assert_eq!(out.body, "err UnexpectedEof");
    // A bad FCGI_DATA_LENGTH is refused up front; a bad FCGI_DATA_LAST_MOD is ignored.
    let req = ClientRequest::filter()
        .param("REQUEST_METHOD", "GET")
        .param("REQUEST_URI", "/f")
        .param("FCGI_DATA_LENGTH", "ten")
        .data("x");
    let out = send(&server, req).await;
    assert!(out.head.starts_with("Status: 400 "), "{}", out.head);
    assert!(
        out.stderr().contains("FCGI_DATA_LENGTH"),
        "{}",
        out.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_metadata_that_does_not_parse() {
    let server = serve(Router::new().fallback(
        |Extension(data): Extension<FilterData>| async move {
            format!("{:?} {:?}", data.length(), data.last_modified())
        },
    ))
    .await;
    let req = ClientRequest::filter()
        .param("REQUEST_METHOD", "GET")
        .param("REQUEST_URI", "/f")
        .param("FCGI_DATA_LAST_MOD", "yesterday")
        .data("abc");
    let out = send(&server, req).await;
    assert_eq!(out.body, "None None");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responders_have_no_filter_data() {
    let server = serve(Router::new().fallback(|req: Request| async move {
        format!("{}", req.extensions().get::<FilterData>().is_some())
    }))
    .await;
    let out = send(
        &server,
        ClientRequest::responder()
            .param("REQUEST_METHOD", "GET")
            .param("REQUEST_URI", "/"),
    )
    .await;
    assert_eq!(out.body, "false");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_errors_are_written_once_stdin_has_ended() {
    // A Filter may write nothing before STDIN ends: the 400 for bad params and the 500 for
    // a failing service both wait for (and discard) a large unread body first.
    let server = serve(tower::service_fn(
        |_req: http::Request<fcgi_http::app::RequestBody>| async {
            Err::<http::Response<Body>, _>(std::io::Error::other("filter broke"))
        },
    ))
    .await;
    for _ in 0..5 {
        let out = send(&server, filter_request(pattern(700_000), "data")).await;
        assert!(out.head.starts_with("Status: 500 "), "{}", out.head);
        assert!(out.stderr().contains("filter broke"), "{}", out.stderr());

        let req = filter_request(pattern(700_000), "data").param("FCGI_DATA_LENGTH", "ten");
        let out = send(&server, req).await;
        assert!(out.head.starts_with("Status: 400 "), "{}", out.head);
        assert!(
            out.stderr().contains("FCGI_DATA_LENGTH"),
            "{}",
            out.stderr()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_may_keep_a_body_it_has_read_to_the_end() {
    // The body stays inside the request while the service answers; it was read in full, so
    // the rest of STDIN (its end marker) is read for it before the answer is written.
    let server = serve(Router::new().fallback(|mut req: Request| async move {
        let mut n = 0;
        while let Some(frame) = req.body_mut().frame().await {
            n += frame.unwrap().into_data().unwrap().len();
        }
        let data = req
            .extensions()
            .get::<FilterData>()
            .unwrap()
            .take()
            .unwrap();
        let data = data.collect().await.unwrap().to_bytes();
        format!("body={n} data={}", data.len())
    }))
    .await;
    let out = send(&server, filter_request(pattern(500_000), pattern(1000))).await;
    assert_eq!(out.end.app_status, APP_STATUS_OK, "{}", out.stderr());
    assert_eq!(out.body, "body=500000 data=1000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_answering_with_its_unread_body_is_refused() {
    // Echoing the request body as the response would write before STDIN ends, which the
    // protocol forbids: the request ends with the service-error status and no output.
    let server =
        serve(Router::new().fallback(|req: Request| async move { Response::new(req.into_body()) }))
            .await;
    let resp = server
        .client
        .send(filter_request(pattern(400_000), "d"))
        .await
        .unwrap();
    let (stdout, end) = tokio::time::timeout(app_util::GUARD, resp.collect(1 << 20))
        .await
        .unwrap()
        .unwrap();
    assert!(stdout.is_empty(), "{stdout:?}");
    assert_eq!(end.app_status, fcgi_http::app::APP_STATUS_SERVICE_ERROR);
}
