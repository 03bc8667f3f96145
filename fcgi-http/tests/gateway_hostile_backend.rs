//! The gateway in front of scripted (hostile or broken) FastCGI backends on loopback. Each
//! backend is a hand-written record reader/writer so that it can misbehave in ways no real
//! application does: endless heads, garbage records, huge STDERR, a connection cut mid-body,
//! a worker dying after a POST's side effect, a body shorter than its Content-Length.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod mock_backend;
use mock_backend::*;

use std::io;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use fcgi_http::gateway::{GatewayError, Outcome};
use fcgi_http::response::CgiResponseError;
use fcgi_tokio::client::ClientError;
use http::{Request, StatusCode, Version};
use http_body::Frame;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

// ---------------------------------------------------------------------------------------
// Regressions: each of these failed before the fix named in its doc comment
// ---------------------------------------------------------------------------------------

/// A POST that reached the application must never be run twice. Here the pooled connection
/// dies after the application has read the whole POST (a worker crash after its side
/// effect), before any output: the client's retry-once rule replays the buffered body on a
/// fresh connection, so the application sees the POST twice. nginx does not retry
/// non-idempotent requests (`fastcgi_next_upstream ... non_idempotent` is opt-in).
#[tokio::test]
async fn a_post_is_not_replayed_after_the_backend_died_mid_request() {
    let posts = Arc::new(Mutex::new(0usize));
    let counter = Arc::clone(&posts);
    let (addr, task) = backend(
        2,
        Arc::new(move |conn, mut sock| {
            let counter = Arc::clone(&counter);
            Box::pin(async move {
                while let Ok(Some(req)) = read_request(&mut sock).await {
                    if req.params["REQUEST_METHOD"] == "POST" {
                        *counter.lock().unwrap() += 1;
                        if conn == 0 {
                            return; // dies after the side effect, before any output
                        }
                    }
                    let _ = sock.write_all(&full_answer(req.id, b"\r\nok")).await;
                }
            })
        }),
    )
    .await;
    let gw = gateway(addr, |_| {});
    bounded(async {
        // Warm the pool: the POST then runs on a reused connection.
        let r = gw.serve(get("/a.php")).await.unwrap();
        assert_eq!(collect(r.into_body()).await.unwrap(), "ok");
        let post = Request::post("/buy.php")
            .header("host", "gateway.test")
            .header("content-length", "5")
            .body(Full::new(Bytes::from_static(b"qty=1")))
            .unwrap();
        let outcome = gw.serve(post).await;
        let ran = *posts.lock().unwrap();
        assert_eq!(
            ran,
            1,
            "the application ran the POST {ran} times (gateway result: {:?})",
            outcome.map(|r| r.status())
        );
    })
    .await;
    drop(gw);
    task.abort();
}

/// HTTP/2 requests carry the host in `:authority` (the URI), not in a `Host` header. After a
/// local redirect the re-dispatched request has an origin-form URI and no `Host`, so the
/// second script runs without `HTTP_HOST`.
#[tokio::test]
async fn http2_local_redirect_keeps_the_host() {
    let (addr, task) = backend(
        2,
        Arc::new(|_, mut sock| {
            Box::pin(async move {
                while let Ok(Some(req)) = read_request(&mut sock).await {
                    let out = if req.params["SCRIPT_NAME"] == "/a.php" {
                        b"Location: /b.php\r\n\r\n".to_vec()
                    } else {
                        let host = req.params.get("HTTP_HOST").cloned();
                        format!("\r\n{}", host.as_deref().unwrap_or("<no HTTP_HOST>")).into_bytes()
                    };
                    let _ = sock.write_all(&full_answer(req.id, &out)).await;
                }
            })
        }),
    )
    .await;
    let gw = gateway(addr, |_| {});
    bounded(async {
        let request = Request::get("https://example.com/a.php")
            .version(Version::HTTP_2)
            .body(Empty::<Bytes>::new())
            .unwrap();
        let r = gw.serve(request).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(collect(r.into_body()).await.unwrap(), "example.com");
    })
    .await;
    drop(gw);
    task.abort();
}

/// The application announced 10 bytes and ended the request after 3. Known before the head
/// is returned: `GatewayError::ShortBody` (502). Found later (the end comes after a pause):
/// the body ends with an error, never as a clean 3-byte success (GatewayBody's docs promise
/// a short body is never presented as complete; nginx reports "upstream prematurely
/// closed"): a consumer other than hyper (a tower middleware buffering the body, a cache)
/// would take the short body as whole.
#[tokio::test]
async fn a_body_shorter_than_its_content_length_is_an_error() {
    for pause in [None, Some(Duration::from_millis(200))] {
        let (addr, task) = backend(
            1,
            Arc::new(move |_, mut sock| {
                Box::pin(async move {
                    if let Ok(Some(req)) = read_request(&mut sock).await {
                        let head = recs(STDOUT, req.id, b"Content-Length: 10\r\n\r\nabc");
                        let _ = sock.write_all(&head).await;
                        if let Some(pause) = pause {
                            tokio::time::sleep(pause).await;
                        }
                        let _ = sock.write_all(&full_answer(req.id, b"")).await;
                        let _ = read_request(&mut sock).await;
                    }
                })
            }),
        )
        .await;
        let gw = gateway(addr, |_| {});
        bounded(async {
            match gw.serve(get("/a.php")).await {
                Err(GatewayError::ShortBody { expected, received }) if pause.is_none() => {
                    assert_eq!((expected, received), (10, 3));
                }
                Ok(r) if pause.is_some() => {
                    assert_eq!(r.headers()["content-length"], "10");
                    let body = collect(r.into_body()).await;
                    assert!(
                        body.is_err(),
                        "a 3-byte body under Content-Length: 10 ended cleanly: {body:?}"
                    );
                }
                other => panic!("pause {pause:?}: {other:?}"),
            }
        })
        .await;
        drop(gw);
        task.abort();
    }
}

/// A client whose streamed upload (over `buffer_body_up_to`) stops short of its
/// `content-length` is the client's fault: `GatewayError::RequestBody`, 400 — as it is for a
/// buffered body. The gateway reports it as a backend failure (`Backend(Io)`, 502, logged at
/// warn level as a FastCGI gateway error).
#[tokio::test]
async fn a_streamed_upload_cut_short_is_a_client_error() {
    let (addr, task) = backend(
        1,
        Arc::new(|_, mut sock| {
            Box::pin(async move {
                // Read until the gateway gives up on the connection.
                let _ = wait_for_close_or_abort(&mut sock).await;
            })
        }),
    )
    .await;
    let gw = gateway(addr, |_| {});
    bounded(async {
        let first = futures_util::stream::iter([
            Ok::<_, io::Error>(Frame::data(Bytes::from(vec![b'x'; 100_000]))),
            Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "client went away",
            )),
        ]);
        let request = Request::post("/upload.php")
            .header("host", "gateway.test")
            .header("content-length", "200000")
            .body(StreamBody::new(first))
            .unwrap();
        let err = gw.serve(request).await.unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST, "{err:?}");
        assert!(matches!(err, GatewayError::RequestBody(_)), "{err:?}");
    })
    .await;
    drop(gw);
    task.abort();
}

// ---------------------------------------------------------------------------------------
// Properties verified (these pass)
// ---------------------------------------------------------------------------------------

/// The connection closing in the middle of the body, after the head was returned: the body
/// fails with `Truncated` (before it: see `gateway_hostile_http.rs`).
#[tokio::test]
async fn backend_closing_mid_body_fails_the_body() {
    let (addr, task) = backend(
        1,
        Arc::new(|_, mut sock| {
            Box::pin(async move {
                if let Ok(Some(req)) = read_request(&mut sock).await {
                    let _ = sock.write_all(&recs(STDOUT, req.id, b"\r\npartial")).await;
                    // After the head was returned ...
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                // ... dropped: closed before END_REQUEST
            })
        }),
    )
    .await;
    let gw = gateway(addr, |_| {});
    bounded(async {
        let r = gw.serve(get("/a.php")).await.unwrap();
        let err = collect(r.into_body()).await.unwrap_err();
        assert!(
            matches!(
                err,
                fcgi_http::gateway::GatewayBodyError::Backend(ClientError::Truncated)
            ),
            "{err:?}"
        );
    })
    .await;
    task.abort();
}

/// `END_REQUEST` before any head: 502 with `EndedBeforeHead`, whatever the app status.
#[tokio::test]
async fn end_request_before_the_head_is_a_502() {
    let (addr, task) = backend(
        1,
        Arc::new(|_, mut sock| {
            Box::pin(async move {
                if let Ok(Some(req)) = read_request(&mut sock).await {
                    let mut out = recs(STDERR, req.id, b"PHP Fatal error: boom");
                    out.extend(recs(STDOUT, req.id, b"Content-Type: text/ht"));
                    out.extend(recs(STDOUT, req.id, &[]));
                    out.extend(end_request(req.id, 255, 0));
                    let _ = sock.write_all(&out).await;
                    let _ = read_request(&mut sock).await;
                }
            })
        }),
    )
    .await;
    let gw = gateway(addr, |_| {});
    bounded(async {
        let err = gw.serve(get("/a.php")).await.unwrap_err();
        assert!(
            matches!(
                err,
                GatewayError::BadResponse(CgiResponseError::EndedBeforeHead { .. })
            ),
            "{err:?}"
        );
        assert_eq!(err.status(), StatusCode::BAD_GATEWAY);
    })
    .await;
    drop(gw);
    task.abort();
}

/// A head that never ends is refused at `max_head_len`, and the backend connection is
/// given up (closed: the request cannot be finished), not leaked.
#[tokio::test]
async fn an_endless_head_is_refused_and_the_connection_closed() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let (addr, task) = backend(
        1,
        Arc::new(move |_, mut sock| {
            let tx = Arc::clone(&tx);
            Box::pin(async move {
                if let Ok(Some(req)) = read_request(&mut sock).await {
                    let line = b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
                    let head: Vec<u8> = line.iter().copied().cycle().take(200 * 1024).collect();
                    let _ = sock.write_all(&recs(STDOUT, req.id, &head)).await;
                    let seen = wait_for_close_or_abort(&mut sock).await;
                    if let Some(tx) = tx.lock().unwrap().take() {
                        let _ = tx.send(seen);
                    }
                }
            })
        }),
    )
    .await;
    let gw = gateway(addr, |_| {});
    bounded(async {
        let err = gw.serve(get("/a.php")).await.unwrap_err();
        assert!(
            matches!(
                err,
                GatewayError::BadResponse(CgiResponseError::HeadTooLarge { .. })
            ),
            "{err:?}"
        );
        assert_eq!(rx.await.unwrap(), "closed");
    })
    .await;
    task.abort();
}

/// A record with an unknown protocol version: a typed protocol error, 502.
#[tokio::test]
async fn a_garbage_record_is_a_protocol_error() {
    let (addr, task) = backend(
        1,
        Arc::new(|_, mut sock| {
            Box::pin(async move {
                if let Ok(Some(_)) = read_request(&mut sock).await {
                    let _ = sock
                        .write_all(&[9, 6, 0, 1, 0, 4, 0, 0, b'j', b'u', b'n', b'k'])
                        .await;
                    let _ = wait_for_close_or_abort(&mut sock).await;
                }
            })
        }),
    )
    .await;
    let gw = gateway(addr, |_| {});
    bounded(async {
        let err = gw.serve(get("/a.php")).await.unwrap_err();
        assert!(
            matches!(err, GatewayError::Backend(ClientError::Protocol(_))),
            "{err:?}"
        );
        assert_eq!(err.status(), StatusCode::BAD_GATEWAY);
    })
    .await;
    task.abort();
}

/// 1 MiB of `STDERR` around the answer: the answer is intact, the kept stderr capped at the
/// client's `max_collected_stderr` and the rest counted.
#[tokio::test]
async fn huge_stderr_is_capped_and_counted() {
    let (addr, task) = backend(
        1,
        Arc::new(|_, mut sock| {
            Box::pin(async move {
                if let Ok(Some(req)) = read_request(&mut sock).await {
                    let noise = vec![b'e'; 1024 * 1024];
                    let mut out = recs(STDERR, req.id, &noise);
                    out.extend(full_answer(req.id, b"Status: 201\r\n\r\nbody"));
                    let _ = sock.write_all(&out).await;
                    let _ = read_request(&mut sock).await;
                }
            })
        }),
    )
    .await;
    let gw = gateway(addr, |_| {});
    bounded(async {
        let r = gw.serve(get("/a.php")).await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let outcome = r.extensions().get::<Outcome>().cloned().unwrap();
        assert_eq!(collect(r.into_body()).await.unwrap(), "body");
        let end = outcome.end().unwrap();
        assert!(end.stderr.len() <= 64 * 1024, "{}", end.stderr.len());
        assert_eq!(end.stderr.len() + end.stderr_dropped, 1024 * 1024);
    })
    .await;
    drop(gw);
    task.abort();
}

/// The HTTP client going away mid-download (its response body dropped) gives the FastCGI
/// request up: on a one-request connection the connection is closed, so the worker is
/// released.
#[tokio::test]
async fn dropping_the_body_mid_download_releases_the_backend() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let (addr, task) = backend(
        1,
        Arc::new(move |_, mut sock| {
            let tx = Arc::clone(&tx);
            Box::pin(async move {
                if let Ok(Some(req)) = read_request(&mut sock).await {
                    let _ = sock.write_all(&recs(STDOUT, req.id, b"\r\nfirst")).await;
                    let seen = wait_for_close_or_abort(&mut sock).await;
                    if let Some(tx) = tx.lock().unwrap().take() {
                        let _ = tx.send(seen);
                    }
                }
            })
        }),
    )
    .await;
    let gw = gateway(addr, |_| {});
    bounded(async {
        let r = gw.serve(get("/a.php")).await.unwrap();
        let mut body = r.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first, "first");
        drop(body);
        assert_eq!(rx.await.unwrap(), "closed");
    })
    .await;
    task.abort();
}

/// Local redirect after a POST: the second request is a `GET` without body or
/// `CONTENT_LENGTH`/`CONTENT_TYPE`, and the backend is asked at most
/// `max_internal_redirects + 1` times for a loop.
#[tokio::test]
async fn local_redirects_drop_the_body_and_stop_loops() {
    let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
    let log = Arc::clone(&seen);
    let (addr, task) = backend(
        2,
        Arc::new(move |_, mut sock| {
            let log = Arc::clone(&log);
            Box::pin(async move {
                while let Ok(Some(req)) = read_request(&mut sock).await {
                    let out = if req.params["SCRIPT_NAME"] == "/loop.php" {
                        b"Location: /loop.php\r\n\r\n".to_vec()
                    } else if req.params["SCRIPT_NAME"] == "/a.php" {
                        b"Location: /b.php?x=1\r\n\r\nignored body".to_vec()
                    } else {
                        b"\r\ndone".to_vec()
                    };
                    log.lock().unwrap().push(req.clone());
                    let _ = sock.write_all(&full_answer(req.id, &out)).await;
                }
            })
        }),
    )
    .await;
    let gw = gateway(addr, |_| {});
    bounded(async {
        let post = Request::post("/a.php")
            .header("host", "gateway.test")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("content-length", "3")
            .body(Full::new(Bytes::from_static(b"a=1")))
            .unwrap();
        let r = gw.serve(post).await.unwrap();
        assert_eq!(collect(r.into_body()).await.unwrap(), "done");
        {
            let log = seen.lock().unwrap();
            assert_eq!(log.len(), 2);
            assert_eq!(log[0].stdin, b"a=1");
            let second = &log[1];
            assert_eq!(second.params["REQUEST_METHOD"], "GET");
            assert_eq!(second.params["QUERY_STRING"], "x=1");
            assert_eq!(second.params["CONTENT_LENGTH"], "");
            assert_eq!(second.params["CONTENT_TYPE"], "");
            assert_eq!(second.params["HTTP_HOST"], "gateway.test");
            assert!(second.stdin.is_empty());
        }
        seen.lock().unwrap().clear();
        let err = gw.serve(get("/loop.php")).await.unwrap_err();
        assert!(matches!(err, GatewayError::RedirectLoop(10)), "{err:?}");
        assert_eq!(seen.lock().unwrap().len(), 11);
    })
    .await;
    drop(gw);
    task.abort();
}

/// A gateway configuration for a test backend that runs no files (no local root checks).
/// `STDOUT` after the application's empty `STDOUT` record is not part of the response (the
/// stream ended there, spec 3.3): the client gets the body up to the terminator, never the
/// bytes after it (the core drops and reports them).
#[tokio::test]
async fn stdout_after_its_terminator_never_reaches_the_client() {
    let (addr, task) = backend(
        1,
        Arc::new(|_, mut sock| {
            Box::pin(async move {
                if let Ok(Some(req)) = read_request(&mut sock).await {
                    let mut out =
                        recs(STDOUT, req.id, b"Content-Type: text/plain\r\n\r\nreal body");
                    out.extend(recs(STDOUT, req.id, &[]));
                    out.extend(recs(STDOUT, req.id, b"<script>INJECTED</script>"));
                    out.extend(end_request(req.id, 0, 0));
                    let _ = sock.write_all(&out).await;
                    let _ = read_request(&mut sock).await;
                }
            })
        }),
    )
    .await;
    let gw = gateway(addr, |_| {});
    bounded(async {
        let response = gw.serve(get("/a.php")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = collect(response.into_body()).await.unwrap();
        assert_eq!(&body[..], b"real body");
    })
    .await;
    drop(gw);
    task.abort();
}

/// A response that ended during the read-ahead (the whole body is in hand) has an exact
/// length, so an HTTP server sends `Content-Length` rather than chunks (as Go's server, and
/// so Caddy, does for a small complete answer); one still streaming when its head is
/// returned does not (chunks, as nginx sends them).
#[tokio::test]
async fn a_complete_answer_has_an_exact_length_a_streaming_one_does_not() {
    use http_body::Body as _;
    for pause in [None, Some(Duration::from_millis(200))] {
        let (addr, task) = backend(
            1,
            Arc::new(move |_, mut sock| {
                Box::pin(async move {
                    if let Ok(Some(req)) = read_request(&mut sock).await {
                        let head = recs(STDOUT, req.id, b"Content-Type: text/plain\r\n\r\nhello");
                        let _ = sock.write_all(&head).await;
                        if let Some(pause) = pause {
                            tokio::time::sleep(pause).await;
                        }
                        let _ = sock.write_all(&full_answer(req.id, b" world")).await;
                        let _ = read_request(&mut sock).await;
                    }
                })
            }),
        )
        .await;
        let gw = gateway(addr, |_| {});
        bounded(async {
            let r = gw.serve(get("/a.php")).await.unwrap();
            assert!(!r.headers().contains_key("content-length"));
            let exact = r.body().size_hint().exact();
            match pause {
                None => assert_eq!(exact, Some(11), "complete: the length is known"),
                Some(_) => assert_eq!(exact, None, "streaming: no length yet"),
            }
            assert_eq!(collect(r.into_body()).await.unwrap(), "hello world");
        })
        .await;
        drop(gw);
        task.abort();
    }
}
