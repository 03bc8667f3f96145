//! Our tokio client against our tokio server, over TCP and Unix, with and without
//! multiplexing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bytes::Bytes;
use fcgi_core::server::RoleSet;
use fcgi_tokio::client::{ClientError, ClientOptions, ClientRequest, Multiplexing};
use fcgi_tokio::server::ServerOptions;
use fcgi_tokio::{Backend, Listener, TokioRuntime};

async fn start_echo(
    multiplex: bool,
    unix: Option<&std::path::Path>,
) -> (Backend, fcgi_tokio::server::ShutdownHandle) {
    let mut opts = ServerOptions::default();
    opts.core.multiplex = multiplex;
    opts.core.roles = RoleSet::ALL;
    let server = fcgi_tokio::server(opts);
    let handle = server.shutdown_handle();
    let (listener, backend) = match unix {
        Some(path) => (
            Listener::bind_unix(path).unwrap(),
            Backend::Unix(path.into()),
        ),
        None => {
            let l = Listener::bind_tcp("127.0.0.1:0".parse().unwrap())
                .await
                .unwrap();
            let addr = l.local_addr().unwrap();
            (l, Backend::Tcp(addr))
        }
    };
    tokio::spawn(async move {
        server
            .serve(
                listener,
                fcgi_tokio::fcgi_driver::echo::handler(TokioRuntime),
            )
            .await
            .unwrap();
    });
    (backend, handle)
}

fn echo_request(body: &'static [u8]) -> ClientRequest {
    ClientRequest::responder()
        .param("REQUEST_METHOD", "POST")
        .param("CONTENT_LENGTH", body.len().to_string())
        .stdin(Bytes::from_static(body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responder_roundtrip_tcp_non_mux() {
    let (backend, _h) = start_echo(false, None).await;
    let mut opts = ClientOptions::default();
    opts.multiplexing = Multiplexing::Probe;
    let client = fcgi_tokio::client(backend, opts);
    for _ in 0..20 {
        let (out, end) = client
            .send(echo_request(b"hello"))
            .await
            .unwrap()
            .collect(1 << 20)
            .await
            .unwrap();
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(
            text.starts_with(
                "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nrole: responder\nrequest-id: 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "param: REQUEST_METHOD=POST\nparam: CONTENT_LENGTH=5\nstdin-length: 5\n\nhello"
            ),
            "{text}"
        );
        assert_eq!(end.app_status, 0);
    }
    assert_eq!(
        client.multiplexing(),
        Some(1),
        "the server said FCGI_MPXS_CONNS=0"
    );
    assert_eq!(
        client.connections(),
        1,
        "keep-alive: one connection for all requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multiplexed_concurrent_requests_unix() {
    let dir = std::env::temp_dir().join(format!("fcgi-loopback-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("echo.sock");
    let (backend, _h) = start_echo(true, Some(&path)).await;
    let client = fcgi_tokio::client(backend, ClientOptions::default());
    let mut tasks = Vec::new();
    for i in 0..32u32 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let req = ClientRequest::responder()
                .param("N", i.to_string())
                .param("ECHO_SLEEP_MS", "50")
                .param("ECHO_STATUS", (i % 7).to_string())
                .param("ECHO_STDERR", format!("err {i}"));
            let resp = client.send(req).await.unwrap();
            let (out, end) = resp.collect(1 << 20).await.unwrap();
            let text = String::from_utf8(out.to_vec()).unwrap();
            assert!(text.contains(&format!("param: N={i}\n")), "{text}");
            assert_eq!(end.app_status, i % 7);
            assert_eq!(&end.stderr[..], format!("err {i}").as_bytes());
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert!(
        client.multiplexing().unwrap() > 1,
        "the server said FCGI_MPXS_CONNS=1"
    );
    assert!(
        client.connections() <= 2,
        "multiplexed onto few connections: {}",
        client.connections()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_upload_and_large_response_full_duplex() {
    let (backend, _h) = start_echo(true, None).await;
    let client = fcgi_tokio::client(backend, ClientOptions::default());
    let body: Vec<u8> = (0..10 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let req = ClientRequest::responder()
        .param("CONTENT_LENGTH", body.len().to_string())
        .stdin(body.clone());
    let (out, _) = client
        .send(req)
        .await
        .unwrap()
        .collect(32 << 20)
        .await
        .unwrap();
    assert!(out.ends_with(&body));
    let req = ClientRequest::responder().param("ECHO_BODY_BYTES", "10485760");
    let mut resp = client.send(req).await.unwrap();
    let mut total = 0;
    while let Some(piece) = resp.chunk().await {
        total += piece.unwrap().len();
    }
    assert_eq!(
        total,
        10 * 1024 * 1024 + "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n".len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorizer_and_filter_roles() {
    let (backend, _h) = start_echo(true, None).await;
    let client = fcgi_tokio::client(backend, ClientOptions::default());
    let ok = client
        .send(ClientRequest::authorizer().param("HTTP_AUTHORIZATION", "Bearer let-me-in"))
        .await
        .unwrap();
    let (out, _) = ok.collect(1 << 16).await.unwrap();
    assert_eq!(
        &out[..],
        b"Status: 200 OK\r\nVariable-AUTH_USER: echo\r\n\r\n"
    );
    let no = client.send(ClientRequest::authorizer()).await.unwrap();
    let (out, _) = no.collect(1 << 16).await.unwrap();
    assert!(out.ends_with(b"\r\n\r\ndenied") && out.starts_with(b"Status: 403 Forbidden\r\n"));
    let f = client
        .send(
            ClientRequest::filter()
                .stdin("ignored")
                .data("the data file"),
        )
        .await
        .unwrap();
    let (out, _) = f.collect(1 << 16).await.unwrap();
    assert!(
        out.ends_with(b"data-length: 13\n\nthe data file"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_backend_is_a_connect_error() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let mut opts = ClientOptions::default();
    opts.connect_timeout = Duration::from_secs(2);
    let client = fcgi_tokio::client(Backend::Tcp(addr), opts);
    let err = client.send(ClientRequest::responder()).await.unwrap_err();
    assert!(matches!(err, ClientError::Connect(_)), "{err:?}");
}
