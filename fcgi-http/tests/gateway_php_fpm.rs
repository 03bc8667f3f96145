//! The HTTP → FastCGI gateway in front of real php-fpm (over fcgi-tokio): params, bodies of
//! every length kind, the response head rules, local redirects, streaming, stderr, and the
//! error → status mapping. php-fpm missing: `SKIPPED:` locally, a failure under `CI=true`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use fcgi_http::gateway::{Gateway, GatewayConfig, GatewayError, LocalRoot, Outcome, UnknownLength};
use fcgi_http::request::{ConnInfo, ScriptResolution};
use fcgi_testkit::php_fpm::{Options, PhpFpm, Socket, parse_lines, sha1_hex};
use fcgi_tokio::client::ClientOptions;
use fcgi_tokio::{Backend, TokioConnector, TokioRuntime};
use http::{Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Full, StreamBody};

type TokioGateway = Gateway<TokioRuntime, TokioConnector>;

fn gateway_with(
    fpm: &PhpFpm,
    opts: ClientOptions,
    edit: impl FnOnce(&mut GatewayConfig),
) -> TokioGateway {
    let mut config = GatewayConfig::new(fpm.docroot(), ScriptResolution::split_path());
    edit(&mut config);
    Gateway::new(fcgi_tokio::client(fpm.addr().backend(), opts), config)
}

fn gateway(fpm: &PhpFpm) -> TokioGateway {
    gateway_with(fpm, ClientOptions::default(), |_| {})
}

fn start(socket: Socket) -> Option<PhpFpm> {
    PhpFpm::start(Options::new(socket, 2))
}

fn write_script(fpm: &PhpFpm, name: &str, source: &str) {
    std::fs::write(format!("{}/{name}", fpm.docroot()), source).unwrap();
}

async fn text(
    response: Response<fcgi_http::gateway::GatewayBody>,
) -> (StatusCode, http::HeaderMap, String, Option<Outcome>) {
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
        parts.extensions.get::<Outcome>().cloned(),
    )
}

fn server_vars(body: &str) -> BTreeMap<String, String> {
    parse_lines(body)
        .into_iter()
        .filter(|((kind, _), _)| kind == "server")
        .map(|((_, k), v)| (k, v))
        .collect()
}

fn kv(body: &str) -> BTreeMap<String, String> {
    body.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A body that announces no length (as a chunked upload does), in pieces of `piece` bytes.
fn chunked(
    data: Vec<u8>,
    piece: usize,
) -> StreamBody<impl futures_core::Stream<Item = Result<Frame<Bytes>, Infallible>>> {
    let pieces: Vec<Result<Frame<Bytes>, Infallible>> = data
        .chunks(piece)
        .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    StreamBody::new(futures_util::stream::iter(pieces))
}

/// `builder`'s request with the test Host and an empty body.
fn empty(builder: http::request::Builder) -> Request<Full<Bytes>> {
    builder
        .header("host", "gateway.test")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[tokio::test]
async fn get_maps_request_like_nginx_and_streams_the_answer() {
    let Some(fpm) = start(Socket::Tcp) else {
        return;
    };
    let gw = gateway(&fpm);
    let local = "127.0.0.1:8080".parse().unwrap();
    let remote = "127.0.0.1:54321".parse().unwrap();
    let mut req = Request::get("/server.php/extra/path?a=1&b=%20x")
        .header("host", "example.test:8080")
        .header("proxy", "http://evil.test")
        .header("x_forwarded_for", "spoofed")
        .header("x-forwarded-for", "10.0.0.1")
        .header("cookie", "a=1")
        .header("cookie", "b=2")
        .body(Full::new(Bytes::new()))
        .unwrap();
    req.extensions_mut()
        .insert(ConnInfo::new(local, remote, false));
    let (status, headers, body, _) = text(gw.serve(req).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/plain;charset=UTF-8");
    let vars = server_vars(&body);
    let root = fpm.docroot();
    assert_eq!(vars["REQUEST_URI"], "/server.php/extra/path?a=1&b=%20x");
    assert_eq!(vars["SCRIPT_NAME"], "/server.php");
    assert_eq!(vars["PATH_INFO"], "/extra/path");
    assert_eq!(vars["SCRIPT_FILENAME"], format!("{root}/server.php"));
    assert_eq!(vars["PATH_TRANSLATED"], format!("{root}/extra/path"));
    assert_eq!(vars["QUERY_STRING"], "a=1&b=%20x");
    assert_eq!(vars["REQUEST_METHOD"], "GET");
    assert_eq!(vars["HTTP_HOST"], "example.test:8080");
    assert_eq!(vars["HTTP_X_FORWARDED_FOR"], "10.0.0.1");
    assert_eq!(vars["HTTP_COOKIE"], "a=1; b=2");
    assert_eq!(vars["REMOTE_ADDR"], "127.0.0.1");
    assert_eq!(vars["REMOTE_PORT"], "54321");
    assert_eq!(vars["SERVER_PORT"], "8080");
    assert_eq!(vars["REDIRECT_STATUS"], "200");
    assert!(!vars.contains_key("HTTP_PROXY"), "httpoxy: {vars:?}");
    assert!(!vars.contains_key("HTTPS"));
    assert!(body.contains("get b= x\n"), "{body}");
}

#[tokio::test]
async fn known_length_bodies_small_buffered_and_large_streamed() {
    let Some(fpm) = start(Socket::Unix) else {
        return;
    };
    let gw = gateway(&fpm);
    for len in [0usize, 1, 65_536, 3 * 1024 * 1024 + 5] {
        let data = pattern(len);
        let req = Request::post("/post.php")
            .header("host", "gateway.test")
            .header("content-type", "application/octet-stream")
            .header("content-length", len.to_string())
            .body(Full::new(Bytes::from(data.clone())))
            .unwrap();
        let (status, _, body, _) = text(gw.serve(req).await.unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        let got = kv(&body);
        assert_eq!(got["content_length"], len.to_string(), "{body}");
        assert_eq!(got["len"], len.to_string());
        assert_eq!(got["sha1"], sha1_hex(&data));
        assert_eq!(got["content_type"], "application/octet-stream");
    }
}

#[tokio::test]
async fn unknown_length_body_is_buffered_then_spilled_so_content_length_is_exact() {
    let Some(fpm) = start(Socket::Tcp) else {
        return;
    };
    let spill = tempfile::tempdir().unwrap();
    let gw = gateway_with(&fpm, ClientOptions::default(), |c| {
        c.unknown_length = UnknownLength::Buffer {
            memory: 4096,
            spill_dir: Some(spill.path().to_owned()),
            max_bytes: 8 * 1024 * 1024,
        };
    });
    for len in [10usize, 4096, 300_000] {
        let data = pattern(len);
        let req = Request::post("/post.php")
            .header("host", "gateway.test")
            .body(chunked(data.clone(), 1000))
            .unwrap();
        let (status, _, body, _) = text(gw.serve(req).await.unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        let got = kv(&body);
        assert_eq!(got["content_length"], len.to_string(), "{body}");
        assert_eq!(got["sha1"], sha1_hex(&data));
    }
    // The spill file is unnamed: nothing is left behind in the directory.
    assert_eq!(std::fs::read_dir(spill.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn unknown_length_body_refused_411_or_413_without_reaching_php() {
    let Some(fpm) = start(Socket::Tcp) else {
        return;
    };
    let reject = gateway_with(&fpm, ClientOptions::default(), |c| {
        c.unknown_length = UnknownLength::Reject
    });
    let err = reject
        .serve(
            Request::post("/post.php")
                .header("host", "gateway.test")
                .body(chunked(pattern(10), 3))
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, GatewayError::LengthRequired), "{err:?}");
    assert_eq!(err.status(), StatusCode::LENGTH_REQUIRED);

    let small = gateway_with(&fpm, ClientOptions::default(), |c| {
        c.unknown_length = UnknownLength::Buffer {
            memory: 1000,
            spill_dir: None,
            max_bytes: 1 << 20,
        };
    });
    let err = small
        .serve(
            Request::post("/post.php")
                .header("host", "gateway.test")
                .body(chunked(pattern(5000), 700))
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE, "{err:?}");

    let capped = gateway_with(&fpm, ClientOptions::default(), |c| {
        c.max_body_bytes = Some(100)
    });
    let err = capped
        .serve(
            Request::post("/post.php")
                .header("host", "gateway.test")
                .header("content-length", "101")
                .body(Full::new(Bytes::from(pattern(101))))
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let err = capped
        .serve(
            Request::post("/post.php")
                .header("host", "gateway.test")
                .header("content-length", "abc")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    assert!(fpm.hits("post").is_empty(), "php ran a refused request");
}

#[tokio::test]
async fn refused_paths_never_reach_php() {
    let Some(fpm) = start(Socket::Tcp) else {
        return;
    };
    let gw = gateway(&fpm);
    for (target, status) in [
        ("/../etc/passwd.php", StatusCode::BAD_REQUEST),
        ("/%2e%2e/post.php", StatusCode::BAD_REQUEST),
        ("/post.php%00.jpg", StatusCode::BAD_REQUEST),
        ("/uploads/x.jpg", StatusCode::NOT_FOUND),
    ] {
        let err = gw.serve(empty(Request::get(target))).await.unwrap_err();
        assert_eq!(err.status(), status, "{target}: {err:?}");
    }
    assert!(fpm.hits("post").is_empty());
}

/// With the document root visible here (the default local root), a script that is not a
/// regular file inside it is refused with 404 before php-fpm is asked: a missing script, a
/// directory named like one, a link out of the root, and php-fpm's "uploads hole"
/// (`/uploads/x.jpg/y.php`, which `cgi.fix_pathinfo=1` would run as `x.jpg`). A root reached
/// through a symbolic link (`current -> releases/N`) works.
#[tokio::test]
async fn scripts_are_checked_in_the_local_root_before_php_fpm_is_asked() {
    let Some(fpm) = start(Socket::Tcp) else {
        return;
    };
    let root = fpm.docroot();
    write_script(&fpm, "hit.php", "<?php echo 'ran';");
    std::fs::create_dir_all(format!("{root}/uploads")).unwrap();
    std::fs::write(format!("{root}/uploads/x.jpg"), "<?php echo 'HOLE';").unwrap();
    std::fs::create_dir_all(format!("{root}/dir.php")).unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.php"), "<?php echo 'OUT';").unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.php"),
        format!("{root}/link.php"),
    )
    .unwrap();
    let gw = gateway(&fpm);
    for target in [
        "/missing.php",
        "/dir.php",
        "/link.php",
        "/uploads/x.jpg/y.php",
    ] {
        let err = gw.serve(empty(Request::get(target))).await.unwrap_err();
        assert!(
            matches!(err, GatewayError::NoSuchScript(_)),
            "{target}: {err:?}"
        );
        assert_eq!(err.status(), StatusCode::NOT_FOUND, "{target}");
    }
    let response = gw.serve(empty(Request::get("/hit.php"))).await.unwrap();
    let (status, _, body, _) = text(response).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ran"));

    // The same files through a symbolic link to the root, as the gateway's local root.
    let links = tempfile::tempdir().unwrap();
    let current = links.path().join("current");
    std::os::unix::fs::symlink(root, &current).unwrap();
    let gw = gateway_with(&fpm, ClientOptions::default(), |c| {
        c.local_root = LocalRoot::Path(current.clone());
    });
    let response = gw.serve(empty(Request::get("/hit.php"))).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let err = gw
        .serve(empty(Request::get("/link.php")))
        .await
        .unwrap_err();
    assert!(matches!(err, GatewayError::NoSuchScript(_)), "{err:?}");
}

#[tokio::test]
async fn primary_script_unknown_is_php_fpms_404_with_stderr_in_the_outcome() {
    let Some(fpm) = start(Socket::Tcp) else {
        return;
    };
    // Without a local root the gateway sends every script: php-fpm answers for itself.
    let gw = gateway_with(&fpm, ClientOptions::default(), |c| {
        c.local_root = LocalRoot::None;
    });
    let response = gw.serve(empty(Request::get("/missing.php"))).await.unwrap();
    let (status, _, body, outcome) = text(response).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("File not found"), "{body}");
    let end = outcome
        .unwrap()
        .end()
        .expect("filled at the end of the body");
    assert!(
        String::from_utf8_lossy(&end.stderr).contains("Primary script unknown"),
        "{end:?}"
    );
}

#[tokio::test]
async fn status_and_headers_from_php_pass_through() {
    let Some(fpm) = start(Socket::Tcp) else {
        return;
    };
    write_script(
        &fpm,
        "created.php",
        "<?php\nheader('Status: 201 Created');\nheader('X-Custom: one');\nheader('X-Custom: two', false);\nheader('Location: https://elsewhere.test/x');\necho 'made';\n",
    );
    write_script(
        &fpm,
        "away.php",
        "<?php\nheader('Location: https://elsewhere.test/y');\n",
    );
    let gw = gateway(&fpm);
    let (status, headers, body, _) =
        text(gw.serve(empty(Request::get("/created.php"))).await.unwrap()).await;
    assert_eq!(status, StatusCode::CREATED);
    let custom: Vec<_> = headers
        .get_all("x-custom")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(custom, ["one", "two"]);
    assert_eq!(headers["location"], "https://elsewhere.test/x");
    assert_eq!(body, "made");
    let (status, headers, _, _) =
        text(gw.serve(empty(Request::get("/away.php"))).await.unwrap()).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(headers["location"], "https://elsewhere.test/y");
}

#[tokio::test]
async fn local_redirect_is_served_as_a_get_of_the_new_path() {
    let Some(fpm) = start(Socket::Tcp) else {
        return;
    };
    write_script(
        &fpm,
        "redir.php",
        "<?php\nheader('Location: /server.php/p?via=redirect');\n// PHP adds `Status: 302` to a Location unless the code is 200 again: then it sends a\n// bare local Location, the CGI local redirect.\nhttp_response_code(200);\necho 'ignored body';\n",
    );
    write_script(
        &fpm,
        "loop.php",
        "<?php\nheader('Location: /loop.php?again=1');\nhttp_response_code(200);\n",
    );
    let gw = gateway(&fpm);
    let req = Request::post("/redir.php?orig=1")
        .header("host", "gateway.test")
        .header("content-type", "text/plain")
        .header("content-length", "5")
        .header("x-trace", "t1")
        .body(Full::new(Bytes::from_static(b"hello")))
        .unwrap();
    let (status, _, body, _) = text(gw.serve(req).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let vars = server_vars(&body);
    assert_eq!(vars["REQUEST_METHOD"], "GET");
    assert_eq!(vars["REQUEST_URI"], "/server.php/p?via=redirect");
    assert_eq!(vars["PATH_INFO"], "/p");
    assert_eq!(vars["HTTP_X_TRACE"], "t1");
    assert_eq!(vars["CONTENT_LENGTH"], "");
    assert!(!body.contains("ignored body"));

    let err = gw
        .serve(empty(Request::get("/loop.php")))
        .await
        .unwrap_err();
    assert!(matches!(err, GatewayError::RedirectLoop(10)), "{err:?}");
    assert_eq!(err.status(), StatusCode::BAD_GATEWAY);

    // The 302 policy hands the local Location to the client instead.
    let gw302 = gateway_with(&fpm, ClientOptions::default(), |c| {
        c.response.local_redirect = fcgi_http::response::LocalRedirect::Found302;
    });
    let (status, headers, _, _) = text(
        gw302
            .serve(empty(Request::get("/redir.php")))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(headers["location"], "/server.php/p?via=redirect");
}

#[tokio::test]
async fn response_body_streams_before_php_finishes() {
    let Some(fpm) = start(Socket::Tcp) else {
        return;
    };
    let gw = gateway(&fpm);
    let response = gw
        .serve(empty(Request::get(
            "/stream.php?chunks=3&size=1000&marker=go&wait_at=1",
        )))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    // Chunk 0 arrives while PHP is blocked on the marker: the body is not buffered whole.
    let mut got = Vec::new();
    while got.len() < 1000 {
        let frame = body.frame().await.unwrap().unwrap();
        got.extend_from_slice(&frame.into_data().unwrap());
    }
    assert_eq!(got, vec![0u8; 1000]);
    fpm.set_marker("go");
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(rest.len(), 2000);
    assert!(rest[..1000].iter().all(|&b| b == 1) && rest[1000..].iter().all(|&b| b == 2));
}

#[tokio::test]
async fn backend_failures_map_to_502_and_504() {
    let Some(fpm) = start(Socket::Tcp) else {
        return;
    };
    // Unreachable: a port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let gw = Gateway::new(
        fcgi_tokio::client(Backend::Tcp(addr), ClientOptions::default()),
        mock_config(ScriptResolution::split_path()),
    );
    let err = gw.serve(empty(Request::get("/x.php"))).await.unwrap_err();
    assert!(matches!(err, GatewayError::Backend(_)), "{err:?}");
    assert_eq!(err.status(), StatusCode::BAD_GATEWAY);
    let response = gw.clone().errors_as_responses();
    let mut svc = response;
    let answered = tower_service::Service::call(&mut svc, empty(Request::get("/x.php")))
        .await
        .unwrap();
    assert_eq!(answered.status(), StatusCode::BAD_GATEWAY);

    // Timeout: php sleeps longer than the read timeout.
    let mut opts = ClientOptions::default();
    opts.read_timeout = Duration::from_millis(300);
    let slow = gateway_with(&fpm, opts, |_| {});
    let err = slow
        .serve(empty(Request::get("/sleep.php?ms=3000")))
        .await
        .unwrap_err();
    assert_eq!(err.status(), StatusCode::GATEWAY_TIMEOUT, "{err:?}");
}

#[tokio::test]
async fn overloaded_maps_to_503() {
    // A FastCGI application that refuses every request with OVERLOADED.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 8];
        sock.read_exact(&mut buf).await.unwrap(); // BEGIN_REQUEST's header
        assert_eq!(buf[1], 1, "BEGIN_REQUEST first");
        let id = [buf[2], buf[3]];
        let end = [1, 3, id[0], id[1], 0, 8, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0];
        sock.write_all(&end).await.unwrap();
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), sock.read_to_end(&mut rest)).await;
    });
    let mut opts = ClientOptions::default();
    opts.multiplexing = fcgi_tokio::client::Multiplexing::Off;
    let gw = Gateway::new(
        fcgi_tokio::client(Backend::Tcp(addr), opts),
        mock_config(ScriptResolution::split_path()),
    );
    let err = gw.serve(empty(Request::get("/x.php"))).await.unwrap_err();
    assert!(
        matches!(
            err,
            GatewayError::Backend(fcgi_tokio::client::ClientError::Overloaded)
        ),
        "{err:?}"
    );
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    drop(gw);
    app.await.unwrap();
}

#[tokio::test]
async fn a_stalled_body_the_gateway_reads_first_is_408() {
    // No backend is needed: the body is read before anything is sent.
    let mut config = mock_config(ScriptResolution::split_path());
    config.body_read_timeout = Duration::from_millis(200);
    let gw = Gateway::new(
        fcgi_tokio::client(
            Backend::Tcp("127.0.0.1:9".parse().unwrap()),
            ClientOptions::default(),
        ),
        config,
    );
    // One piece, then nothing ever again (a client that stopped sending).
    fn stalled() -> impl http_body::Body<Data = Bytes, Error = Infallible> + Send + 'static {
        use futures_util::StreamExt;
        let first = futures_util::stream::iter([Ok(Frame::data(Bytes::from_static(b"partial")))]);
        StreamBody::new(first.chain(futures_util::stream::pending()))
    }
    for builder in [
        Request::post("/x.php").header("host", "gateway.test"), // unknown length: buffered
        Request::post("/x.php")
            .header("host", "gateway.test")
            .header("content-length", "100"), // small: buffered
    ] {
        let err = gw
            .serve(builder.body(stalled()).unwrap())
            .await
            .unwrap_err();
        assert!(matches!(err, GatewayError::BodyTimeout), "{err:?}");
        assert_eq!(err.status(), StatusCode::REQUEST_TIMEOUT);
    }
}

#[tokio::test]
async fn a_streamed_body_that_goes_idle_is_408_and_frees_the_worker() {
    let Some(fpm) = start(Socket::Tcp) else {
        return;
    };
    let gw = gateway_with(&fpm, ClientOptions::default(), |c| {
        c.body_read_timeout = Duration::from_millis(300);
    });
    // 100 kB (over the 64 KiB read-first limit: streamed) of a declared 200 kB, then nothing.
    let first = futures_util::stream::iter([Ok::<_, Infallible>(Frame::data(Bytes::from(vec![
            b'x';
            100_000
        ])))]);
    let stalled = StreamBody::new(futures_util::StreamExt::chain(
        first,
        futures_util::stream::pending(),
    ));
    let request = Request::post("/post.php")
        .header("host", "gateway.test")
        .header("content-length", "200000")
        .body(stalled)
        .unwrap();
    let err = gw.serve(request).await.unwrap_err();
    assert!(matches!(err, GatewayError::BodyTimeout), "{err:?}");
    assert_eq!(err.status(), StatusCode::REQUEST_TIMEOUT);
    // The worker it held is free again: both workers answer at once.
    let (a, b) = tokio::join!(
        gw.serve(empty(Request::get("/server.php"))),
        gw.serve(empty(Request::get("/server.php"))),
    );
    assert_eq!(a.unwrap().status(), StatusCode::OK);
    assert_eq!(b.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn a_head_response_is_finished_in_the_background_with_its_outcome() {
    let Some(fpm) = start(Socket::Tcp) else {
        return;
    };
    // php-fpm's own 404 is wanted here: no local root check.
    let gw = gateway_with(&fpm, ClientOptions::default(), |c| {
        c.local_root = LocalRoot::None;
    });
    for (path, status, stderr) in [
        ("/server.php", StatusCode::OK, ""),
        (
            "/missing.php",
            StatusCode::NOT_FOUND,
            "Primary script unknown",
        ),
    ] {
        let response = gw.serve(empty(Request::head(path))).await.unwrap();
        assert_eq!(response.status(), status);
        let outcome = response.extensions().get::<Outcome>().cloned().unwrap();
        // Nobody reads a HEAD response's body (hyper drops it): drop it unread.
        drop(response);
        let mut end = None;
        for _ in 0..500 {
            end = outcome.end();
            if end.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let end = end.expect("the request was finished in the background");
        assert_eq!(end.app_status, 0);
        assert!(
            String::from_utf8_lossy(&end.stderr).contains(stderr),
            "{end:?}"
        );
    }
    // Both ran on one kept connection.
    assert_eq!(gw.client().connections(), 1);
}

/// A gateway configuration for a test backend that runs no files (no local root checks).
fn mock_config(script: ScriptResolution) -> GatewayConfig {
    let mut config = GatewayConfig::new("/srv", script);
    config.local_root = LocalRoot::None;
    config
}
