//! Our client against our server running the echo application (`fcgi_echo`), over
//! TCP and Unix, with and without multiplexing: the loopback scenarios every runtime runs.

use bytes::Bytes;
use fcgi_driver::client::{ClientError, ClientOptions, ClientRequest, Multiplexing};
use fcgi_driver::fcgi_core::server::RoleSet;
use fcgi_echo as echo;

use super::Harness;
use super::fixture::{Net, Srv, fetch, server_opts};
use super::mock::plan_inert;
use super::util::{Task, spawn, within};

const ECHO_HEAD: &str = "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n";

fn echo_opts(multiplex: bool) -> fcgi_driver::server::ServerOptions {
    let mut opts = server_opts();
    opts.core.multiplex = multiplex;
    opts.core.roles = RoleSet::ALL;
    opts
}

/// Our server running the echo application (all roles) on `net`.
async fn echo_srv<H: Harness>(h: &H, net: Net, multiplex: bool) -> Srv {
    Srv::start(
        h,
        net,
        echo_opts(multiplex),
        echo::handler(h.runtime()),
        plan_inert(),
    )
    .await
}

fn text(out: &Bytes) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// Keep-alive without multiplexing: twenty requests, exact echo output, one connection, and
/// the probe reads `FCGI_MPXS_CONNS=0`.
pub fn echo_keepalive_without_multiplexing<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let srv = echo_srv(&h, Net::Tcp, false).await;
        let (c, _) = srv.client(&h, ClientOptions::default(), plan_inert());
        for _ in 0..20 {
            let req = ClientRequest::responder()
                .param("REQUEST_METHOD", "POST")
                .param("CONTENT_LENGTH", "5")
                .stdin("hello");
            let (out, status) = fetch::<H>(&rt, &c, req).await.expect("echo answers");
            assert_eq!(
                text(&out),
                format!(
                    "{ECHO_HEAD}role: responder\nrequest-id: 1\nparam: REQUEST_METHOD=POST\n\
                     param: CONTENT_LENGTH=5\nstdin-length: 5\n\nhello"
                )
            );
            assert_eq!(status, 0);
        }
        assert_eq!(
            c.multiplexing(),
            Some(1),
            "the server said FCGI_MPXS_CONNS=0"
        );
        assert_eq!(
            srv.net.opened(),
            1,
            "keep-alive: one connection for every request"
        );
    });
}

/// Multiplexing over a Unix socket: 32 concurrent slow requests share one or two
/// connections (the probe reads `FCGI_MPXS_CONNS=1`), each with its own params, app status
/// and stderr.
pub fn echo_multiplexed_unix<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let srv = echo_srv(&h, Net::Unix, true).await;
        let (c, _) = srv.client(&h, ClientOptions::default(), plan_inert());
        let tasks: Vec<Task<()>> = (0..32u32)
            .map(|i| {
                let c = c.clone();
                spawn(&rt, async move {
                    let req = ClientRequest::responder()
                        .param("N", i.to_string())
                        .param("ECHO_SLEEP_MS", "50")
                        .param("ECHO_STATUS", (i % 7).to_string())
                        .param("ECHO_STDERR", format!("err {i}"));
                    let resp = c.send(req).await.expect("send");
                    let (out, end) = resp.collect(1 << 20).await.expect("response");
                    assert!(
                        text(&out).contains(&format!("param: N={i}\n")),
                        "{}",
                        text(&out)
                    );
                    assert_eq!(end.app_status, i % 7);
                    assert_eq!(&end.stderr[..], format!("err {i}").as_bytes());
                })
            })
            .collect();
        for t in tasks {
            within(&rt, "a multiplexed request", t.join()).await;
        }
        assert!(
            c.multiplexing().is_some_and(|n| n > 1),
            "the server said FCGI_MPXS_CONNS=1"
        );
        assert!(
            srv.net.opened() <= 2,
            "multiplexed onto few connections: {}",
            srv.net.opened()
        );
    });
}

/// 10 MiB up (echoed back intact) and 10 MiB down (`ECHO_BODY_BYTES`, streamed).
pub fn echo_large_bodies_both_ways<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let srv = echo_srv(&h, Net::Tcp, true).await;
        let (c, _) = srv.client(&h, ClientOptions::default(), plan_inert());
        let body: Vec<u8> = (0..10 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let req = ClientRequest::responder()
            .param("CONTENT_LENGTH", body.len().to_string())
            .stdin(body.clone());
        let (out, _) = fetch::<H>(&rt, &c, req).await.expect("upload echoed");
        assert!(out.ends_with(&body), "the 10 MiB body comes back intact");
        let req = ClientRequest::responder().param("ECHO_BODY_BYTES", "10485760");
        let mut resp = c.send(req).await.expect("send");
        let (mut total, mut pieces) = (0, 0);
        while let Some(piece) = within(&rt, "a response piece", resp.chunk()).await {
            let piece = piece.expect("piece");
            total += piece.len();
            pieces += 1;
        }
        assert_eq!(total, 10 * 1024 * 1024 + ECHO_HEAD.len());
        assert!(
            pieces > 1,
            "the response arrives as a stream, not one buffer"
        );
    });
}

/// A backend nobody listens on is a `Connect` error, not a hang or a truncation.
pub fn client_connect_error<H: Harness>() {
    let h = H::new();
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let rt = h.runtime();
    h.block_on(async {
        let mut opts = ClientOptions::default();
        opts.connect_timeout = std::time::Duration::from_secs(5);
        opts.multiplexing = Multiplexing::Off;
        let c = fcgi_driver::client::Client::new(rt.clone(), h.tcp_connector(addr), opts);
        let r = within(&rt, "a refused connect", c.send(ClientRequest::responder())).await;
        assert!(matches!(r, Err(ClientError::Connect { .. })), "{r:?}");
    });
}

/// The echo application answers params byte for byte, UTF-8 or not (a web server passes
/// header bytes through; a lossy echo would hide what the application really received).
pub fn echo_params_byte_exact<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let srv = echo_srv(&h, Net::Unix, false).await;
        let (c, _) = srv.client(&h, ClientOptions::default(), plan_inert());
        let value: &[u8] = b"caf\xe9 \xff\xfe\x00end";
        let req = ClientRequest::responder()
            .param(b"HTTP_X_RAW", value)
            .param(b"N\xc3\xa4me", b"ok");
        let (out, _) = fetch::<H>(&rt, &c, req).await.expect("echo answers");
        let mut expected =
            format!("{ECHO_HEAD}role: responder\nrequest-id: 1\nparam: HTTP_X_RAW=").into_bytes();
        expected.extend_from_slice(value);
        expected.extend_from_slice(b"\nparam: N\xc3\xa4me=ok\nstdin-length: 0\n\n");
        assert_eq!(out.as_ref(), &expected[..], "{:?}", text(&out));
    });
}

/// A backend given by name (`localhost:PORT`, as `php:9000` in docker-compose) is resolved
/// on each connect and served like an address.
pub fn client_backend_by_name<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let srv = echo_srv(&h, Net::Tcp, false).await;
        let super::fixture::Addr::Tcp(addr) = srv.addr else {
            panic!("a TCP server");
        };
        let backend: fcgi_driver::client::Backend = format!("localhost:{}", addr.port())
            .parse()
            .expect("a name");
        assert!(
            matches!(backend, fcgi_driver::client::Backend::Name { .. }),
            "{backend:?}"
        );
        let mut opts = ClientOptions::default();
        opts.keep_alive = false; // a new connection, so a new resolution, per request
        let c = fcgi_driver::client::Client::new(rt.clone(), h.connector(backend), opts);
        for _ in 0..3 {
            let req = ClientRequest::responder().param("VIA", "name");
            let resp = within(&rt, "send", c.send(req)).await.expect("send");
            let (out, _) = within(&rt, "collect", resp.collect(1 << 20))
                .await
                .expect("answer");
            assert!(text(&out).contains("param: VIA=name\n"), "{}", text(&out));
        }
    });
}
