//! Server scenarios: cancellation, shutdown, limits, timeouts, back-pressure, write
//! coalescing, panics, socket options, roles, and fault-injecting streams.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use fcgi_driver::client::{ClientError, ClientRequest, Multiplexing};
use fcgi_driver::fcgi_core::server::RoleSet;
use fcgi_driver::runtime::Runtime;
use fcgi_driver::server::{CANCELLED_APP_STATUS, Request, Response};

use super::Harness;
use super::fixture::{
    HEAD, Net, SMALL, Srv, TOO_LARGE, TestApp, TestClient, client_opts, fetch, fetch_ok,
    raw_request, req, server_opts,
};
use super::mock::{MockConfig, NetStats, Plan, plan_all, plan_inert};
use super::util::{
    Gate, Task, eventually, pattern, pattern_stream, settled, spawn, stalling_stream, within,
};

fn is_cut(e: &ClientError) -> bool {
    matches!(e, ClientError::Truncated | ClientError::Io(_))
}

/// Spawns `n` requests doing `action` (bodies of payload, lengths `100 + i`) on `client`.
fn spawn_requests<H: Harness>(
    rt: &H::Rt,
    client: &TestClient<H>,
    action: &str,
    n: usize,
) -> Vec<Task<Result<(Bytes, u32), ClientError>>> {
    (0..n)
        .map(|i| {
            let client = client.clone();
            let rt2 = rt.clone();
            let request = req(action).stdin(pattern(0, 100 + i));
            spawn(rt, async move { fetch::<H>(&rt2, &client, request).await })
        })
        .collect()
}

/// Joins tasks of [`spawn_requests`] and checks each got its `ok` answer.
async fn expect_all_ok(tasks: Vec<Task<Result<(Bytes, u32), ClientError>>>) {
    for (i, t) in tasks.into_iter().enumerate() {
        let (out, status) = t
            .join()
            .await
            .unwrap_or_else(|e| panic!("request {i} failed: {e:?}"));
        assert_eq!(status, 0, "request {i}");
        let text = String::from_utf8_lossy(&out);
        let want = format!("len={} intact=true", 100 + i);
        assert!(
            text.starts_with(HEAD) && text.contains(&want),
            "request {i}: {text:?}"
        );
    }
}

/// Dropping a response on a multiplexed connection sends `ABORT_REQUEST`: the handler's
/// future is dropped, the request is ended on the wire (empty `STDOUT` + `END_REQUEST`, 24
/// bytes), and the connection keeps serving, reusing the freed request id.
pub fn server_abort_multiplexed<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let srv = Srv::start(&h, Net::Tcp, server_opts(), app.clone(), plan_inert()).await;
        let (client, cnet) = srv.client(&h, client_opts(Multiplexing::On(4)), plan_inert());
        let resp = within(&rt, "send", client.send(req("hang")))
            .await
            .expect("send");
        eventually(&rt, "the handler runs", || app.probe.started() == 1).await;
        drop(resp);
        eventually(&rt, "the handler is cancelled", || {
            app.probe.cancelled() == 1
        })
        .await;
        eventually(&rt, "the request slot is released", || {
            srv.handle.requests() == 0
        })
        .await;
        eventually(&rt, "the client reads STDOUT end + END_REQUEST", || {
            cnet.conn(0).bytes_read.load(Ordering::SeqCst) == 24
        })
        .await;
        assert_eq!(srv.net.conn(0).written(), 24, "empty STDOUT + END_REQUEST");
        assert_eq!(srv.handle.connections(), 1, "the connection stays open");
        let text = fetch_ok::<H>(&rt, &client, req("ok")).await;
        assert!(text.starts_with("ok id=1 "), "id 1 was freed: {text}");
        assert_eq!(srv.net.opened(), 1);
        assert_eq!(cnet.opened(), 1);
        assert_eq!(client.connections(), 1);
        assert_eq!((app.probe.completed(), app.probe.io_errors()), (1, 0));
    });
}

/// A connection's first handler runs inside its driver task; requests that arrive while it
/// runs get handler tasks of their own. So on one multiplexed connection a handler that
/// never returns holds up nothing: later requests are answered beside it (the first of
/// them on the same connection), and once it is cancelled the next request's handler runs
/// in the driver again.
pub fn server_requests_beside_a_running_handler<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let srv = Srv::start(&h, Net::Tcp, server_opts(), app.clone(), plan_inert()).await;
        let (client, _cnet) = srv.client(&h, client_opts(Multiplexing::On(4)), plan_inert());
        let hang = within(&rt, "send", client.send(req("hang")))
            .await
            .expect("send");
        eventually(&rt, "the handler runs", || app.probe.started() == 1).await;
        for _ in 0..3 {
            let text = fetch_ok::<H>(&rt, &client, req("ok")).await;
            assert!(text.starts_with("ok id=2 "), "beside id 1: {text}");
        }
        assert_eq!(srv.net.opened(), 1, "all on one connection");
        drop(hang);
        eventually(&rt, "the hanging handler is cancelled", || {
            app.probe.cancelled() == 1
        })
        .await;
        eventually(&rt, "its slot is released", || srv.handle.requests() == 0).await;
        let text = fetch_ok::<H>(&rt, &client, req("ok")).await;
        assert!(text.starts_with("ok id=1 "), "id 1 again: {text}");
        assert_eq!(srv.net.opened(), 1);
        assert_eq!((app.probe.completed(), app.probe.io_errors()), (4, 0));
    });
}

/// A kept-alive connection reads once per request and asks again only when woken: after a
/// read finds nothing, the socket wakes the driver when bytes arrive, so asking again before
/// that (after each of a request's steps: its params, its handler, its writes) is wasted
/// work — it was five reads per request once. Both sides, counted at their streams.
pub fn server_reads_once_per_wakeup<H: Harness>() {
    const REQUESTS: usize = 50;
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let srv = Srv::start(&h, Net::Tcp, server_opts(), app.clone(), plan_inert()).await;
        let (client, cnet) = srv.client(&h, client_opts(Multiplexing::Off), plan_inert());
        for _ in 0..REQUESTS {
            let text = fetch_ok::<H>(&rt, &client, req("ok")).await;
            assert!(text.starts_with("ok "), "{text}");
        }
        assert_eq!(
            (srv.net.opened(), cnet.opened()),
            (1, 1),
            "one kept-alive connection"
        );
        for (side, s) in [("server", srv.net.conn(0)), ("client", cnet.conn(0))] {
            let polls = s.read_polls.load(Ordering::SeqCst);
            // One read that delivers the request (or response) and one that finds nothing and
            // leaves the waker, per request; a few more at the start.
            assert!(
                polls <= 2 * REQUESTS + 4,
                "{side}: {polls} read polls for {REQUESTS} requests"
            );
        }
    });
}

/// Dropping a response on a non-multiplexed connection closes the connection: the server
/// sees end of stream, drops the handler's future and closes its side; the next request
/// gets a new connection.
pub fn server_abort_non_multiplexed<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let mut opts = server_opts();
        opts.core.multiplex = false;
        let srv = Srv::start(&h, Net::Tcp, opts, app.clone(), plan_inert()).await;
        let (client, cnet) = srv.client(&h, client_opts(Multiplexing::Off), plan_inert());
        let resp = within(&rt, "send", client.send(req("hang")))
            .await
            .expect("send");
        eventually(&rt, "the handler runs", || app.probe.started() == 1).await;
        drop(resp);
        eventually(&rt, "the handler is cancelled", || {
            app.probe.cancelled() == 1
        })
        .await;
        eventually(&rt, "the server closes its side", || {
            srv.handle.connections() == 0
        })
        .await;
        eventually(&rt, "the client forgets the connection", || {
            client.connections() == 0
        })
        .await;
        fetch_ok::<H>(&rt, &client, req("ok")).await;
        assert_eq!((srv.net.opened(), cnet.opened()), (2, 2));
        eventually(&rt, "no request left", || srv.handle.requests() == 0).await;
    });
}

/// Graceful shutdown: in-flight requests (one per connection) all complete with their full
/// answers after `shutdown()`; the idle kept-alive connection is closed at once; new
/// connections are refused; `serve` returns only once the last request is done.
pub fn server_graceful_shutdown<H: Harness>() {
    const N: usize = 6;
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let mut srv = Srv::start(&h, Net::Tcp, server_opts(), app.clone(), plan_inert()).await;
        let mut busy = client_opts(Multiplexing::Off);
        busy.max_connections = N;
        let (a, _) = srv.client(&h, busy, plan_inert());
        let (b, _) = srv.client(&h, client_opts(Multiplexing::Off), plan_inert());
        fetch_ok::<H>(&rt, &b, req("ok")).await;
        assert_eq!(b.connections(), 1, "b's connection stays, idle");
        let tasks = spawn_requests::<H>(&rt, &a, "gate", N);
        eventually(&rt, "every slow request runs", || app.probe.active() == N).await;
        assert_eq!(srv.handle.connections(), N + 1);

        srv.handle.shutdown();
        eventually(&rt, "the idle kept-alive connection is closed", || {
            b.connections() == 0
        })
        .await;
        eventually(&rt, "new connections are refused", || {
            super::fixture::RawConn::connect(&srv.addr).is_err()
        })
        .await;
        let (late, _) = srv.client(&h, client_opts(Multiplexing::Off), plan_inert());
        let r = fetch::<H>(&rt, &late, req("ok")).await;
        assert!(matches!(r, Err(ClientError::Connect { .. })), "{r:?}");
        assert!(
            !srv.serve_finished(),
            "serve() returned while requests were in flight"
        );
        eventually(&rt, "only the busy connections stay", || {
            srv.handle.connections() == N
        })
        .await;
        assert_eq!(app.probe.completed(), 1);

        app.gate.open();
        expect_all_ok(tasks).await;
        srv.serve_result(&rt).await.expect("serve() after shutdown");
        assert_eq!(srv.handle.connections(), 0);
        assert_eq!(app.probe.completed(), N + 1);
        assert_eq!(app.probe.cancelled(), 0, "no in-flight request was lost");
        assert_eq!(srv.net.opened(), N + 1, "nothing admitted after shutdown()");
    });
}

/// A handler that never ends is cancelled once `shutdown_timeout` has passed after
/// `shutdown()`, and `serve` returns; its client sees a cut connection.
pub fn server_shutdown_deadline<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let mut opts = server_opts();
        opts.shutdown_timeout = Duration::from_millis(200);
        let mut srv = Srv::start(&h, Net::Tcp, opts, app.clone(), plan_inert()).await;
        let (client, _) = srv.client(&h, client_opts(Multiplexing::Off), plan_inert());
        let task = {
            let (rt2, c) = (rt.clone(), client.clone());
            spawn(&rt, async move { fetch::<H>(&rt2, &c, req("hang")).await })
        };
        eventually(&rt, "the handler runs", || app.probe.started() == 1).await;
        srv.handle.shutdown();
        srv.serve_result(&rt)
            .await
            .expect("serve() after the deadline");
        eventually(&rt, "the handler is cancelled", || {
            app.probe.cancelled() == 1
        })
        .await;
        let r = within(&rt, "the client's answer", task.join()).await;
        assert!(r.as_ref().is_err_and(is_cut), "{r:?}");
        assert_eq!(srv.handle.connections(), 0);
        eventually(&rt, "no request left", || srv.handle.requests() == 0).await;
    });
}

/// Beyond `max_connections` a new connection is closed at once, never queued: its request
/// fails while the admitted ones are still running, and a raw connection is closed without
/// a byte. Once a slot frees up, new connections are served.
pub fn server_max_connections<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let mut opts = server_opts();
        opts.max_connections = 2;
        let srv = Srv::start(&h, Net::Tcp, opts, app.clone(), plan_inert()).await;
        let mut two = client_opts(Multiplexing::Off);
        two.max_connections = 2;
        two.idle_timeout = Duration::from_millis(100);
        let (a, _) = srv.client(&h, two, plan_inert());
        let tasks = spawn_requests::<H>(&rt, &a, "gate", 2);
        eventually(&rt, "both admitted requests run", || {
            app.probe.active() == 2
        })
        .await;
        assert_eq!(srv.handle.connections(), 2);

        let (b, _) = srv.client(&h, client_opts(Multiplexing::Off), plan_inert());
        let r = fetch::<H>(&rt, &b, req("ok")).await;
        // Cut, or refused: when the client sees the close before it sends (each time it
        // tries), it reports that the backend closes every new connection.
        assert!(
            r.as_ref()
                .is_err_and(|e| is_cut(e) || matches!(e, ClientError::Connect { .. })),
            "{r:?}"
        );
        let mut raw = srv.raw();
        // The server may already have closed it: a failed write is part of the answer.
        let _ = raw.send(&raw_request(&[("DO", "ok")], true, None));
        assert_eq!(raw.read_to_close(), Vec::<u8>::new());
        assert!(!app.gate.is_open());
        assert_eq!(
            app.probe.started(),
            2,
            "no handler ran for the refused ones"
        );
        assert_eq!(srv.handle.connections(), 2);
        // Two admitted, the raw one, and b's: one or more, as the pool opens another
        // connection when one dies before it could be used.
        assert!(
            srv.net.opened() >= 4,
            "the extra connections were accepted, then closed: {}",
            srv.net.opened()
        );

        app.gate.open();
        expect_all_ok(tasks).await;
        eventually(&rt, "a's idle connections close", || {
            srv.handle.connections() == 0
        })
        .await;
        fetch_ok::<H>(&rt, &b, req("ok")).await;
        assert_eq!(app.probe.started(), 3);
    });
}

/// Beyond `max_requests` (across connections) a request is refused with `OVERLOADED`
/// without running a handler; after the others end, requests are served again.
pub fn server_max_requests<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let mut opts = server_opts();
        opts.max_requests = 2;
        let srv = Srv::start(&h, Net::Tcp, opts, app.clone(), plan_inert()).await;
        let mut mux = client_opts(Multiplexing::On(8));
        mux.max_connections = 1;
        let (c, _) = srv.client(&h, mux, plan_inert());
        let tasks = spawn_requests::<H>(&rt, &c, "gate", 2);
        eventually(&rt, "two requests run", || app.probe.active() == 2).await;
        let r = fetch::<H>(&rt, &c, req("ok")).await;
        assert!(matches!(r, Err(ClientError::Overloaded)), "{r:?}");
        assert_eq!(app.probe.started(), 2);
        app.gate.open();
        expect_all_ok(tasks).await;
        fetch_ok::<H>(&rt, &c, req("ok")).await;
        assert_eq!(srv.net.opened(), 1, "refusals do not cost the connection");
    });
}

/// Beyond the per-connection multiplexing limit a request is refused with `OVERLOADED`.
pub fn server_per_connection_mux_limit<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let mut opts = server_opts();
        opts.core.limits.max_concurrent_requests = 2;
        let srv = Srv::start(&h, Net::Tcp, opts, app.clone(), plan_inert()).await;
        let mut mux = client_opts(Multiplexing::On(4));
        mux.max_connections = 1;
        let (c, _) = srv.client(&h, mux, plan_inert());
        let tasks = spawn_requests::<H>(&rt, &c, "gate", 2);
        eventually(&rt, "two requests run", || app.probe.active() == 2).await;
        let r = fetch::<H>(&rt, &c, req("ok")).await;
        assert!(matches!(r, Err(ClientError::Overloaded)), "{r:?}");
        assert_eq!(app.probe.started(), 2);
        app.gate.open();
        expect_all_ok(tasks).await;
        fetch_ok::<H>(&rt, &c, req("ok")).await;
        assert_eq!(srv.net.opened(), 1);
    });
}

/// A server without multiplexing refuses a second concurrent request on a connection with
/// `CANT_MPX_CONN` (the client forced `Multiplexing::On(4)`), and keeps serving the first.
pub fn server_cant_mpx_conn<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let mut opts = server_opts();
        opts.core.multiplex = false;
        let srv = Srv::start(&h, Net::Tcp, opts, app.clone(), plan_inert()).await;
        let mut mux = client_opts(Multiplexing::On(4));
        mux.max_connections = 1;
        let (c, _) = srv.client(&h, mux, plan_inert());
        let tasks = spawn_requests::<H>(&rt, &c, "gate", 1);
        eventually(&rt, "the first request runs", || app.probe.active() == 1).await;
        let r = fetch::<H>(&rt, &c, req("ok")).await;
        assert!(matches!(r, Err(ClientError::CantMpxConn)), "{r:?}");
        app.gate.open();
        expect_all_ok(tasks).await;
        fetch_ok::<H>(&rt, &c, req("ok")).await;
        assert_eq!(srv.net.opened(), 1);
        assert_eq!(app.probe.started(), 2);
    });
}

/// Roles the server does not play get `UNKNOWN_ROLE` (the Filter one with large bodies in
/// flight); the connection then serves a Responder request whose body arrives intact.
pub fn server_unknown_role<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let srv = Srv::start(&h, Net::Tcp, server_opts(), app.clone(), plan_inert()).await;
        let mut one = client_opts(Multiplexing::Off);
        one.max_connections = 1;
        let (c, _) = srv.client(&h, one, plan_inert());
        let r = fetch::<H>(&rt, &c, ClientRequest::authorizer().param("DO", "ok")).await;
        assert!(matches!(r, Err(ClientError::UnknownRole)), "{r:?}");
        let filter = ClientRequest::filter()
            .param("DO", "ok")
            .stdin(pattern(0, 3 << 20))
            .data(pattern(5, 3 << 20));
        let r = fetch::<H>(&rt, &c, filter).await;
        assert!(matches!(r, Err(ClientError::UnknownRole)), "{r:?}");
        let text = fetch_ok::<H>(&rt, &c, req("ok").stdin(pattern(0, 10_000))).await;
        assert!(text.contains("len=10000 intact=true"), "{text}");
        assert_eq!(app.probe.started(), 1);
        assert_eq!(srv.net.opened(), 1);
    });
}

/// A request whose params exceed `max_params_bytes` gets `OVERLOADED` without running a
/// handler, even with a large body still being sent; the next request on the connection is
/// served with its own body intact.
pub fn server_params_over_limit<H: Harness>() {
    const ROUNDS: usize = 20;
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let mut opts = server_opts();
        opts.core.limits.max_params_bytes = 1024;
        let srv = Srv::start(&h, Net::Tcp, opts, app.clone(), plan_inert()).await;
        let mut one = client_opts(Multiplexing::Off);
        one.max_connections = 1;
        let (c, _) = srv.client(&h, one, plan_inert());
        for round in 1..=ROUNDS {
            let big = req("ok")
                .param("BIG", "x".repeat(4000))
                .stdin(pattern(0, 4 << 20));
            let r = fetch::<H>(&rt, &c, big).await;
            assert!(matches!(r, Err(ClientError::Overloaded)), "{r:?}");
            let text = fetch_ok::<H>(&rt, &c, req("ok").stdin(pattern(0, 10_000))).await;
            assert!(text.contains("len=10000"), "round {round}: {text}");
            assert_eq!(app.probe.started(), round);
        }
        assert_eq!(srv.net.opened(), 1);
        // A refused request leaves no entry on the kept-alive connection (a stale one would
        // also keep its keep-alive timer from ever starting).
        let big = req("ok").param("BIG", "x".repeat(4000));
        let r = fetch::<H>(&rt, &c, big).await;
        assert!(matches!(r, Err(ClientError::Overloaded)), "{r:?}");
        eventually(&rt, "no request entry is left", || {
            srv.handle.stats().request_entries == 0
        })
        .await;
        assert_eq!(srv.handle.stats().connections, 1);
    });
}

/// With `max_stdin_bytes`, a body over the cap is cut off (never buffered) and the handler
/// learns it from its next read, so it can answer 413; a body within the cap is untouched,
/// on the same connection.
pub fn server_stdin_cap<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let mut opts = server_opts();
        opts.max_stdin_bytes = Some(100_000);
        let srv = Srv::start(&h, Net::Tcp, opts, app.clone(), plan_inert()).await;
        let mut one = client_opts(Multiplexing::Off);
        one.max_connections = 1;
        let (c, _) = srv.client(&h, one, plan_inert());
        for _ in 0..3 {
            let (out, _) = fetch::<H>(&rt, &c, req("cap").stdin(pattern(0, 1 << 20)))
                .await
                .expect("the handler answers an oversized body");
            assert_eq!(&out[..], TOO_LARGE.as_bytes());
            let (out, _) = fetch::<H>(&rt, &c, req("cap").stdin(pattern(0, 100_000)))
                .await
                .expect("a body at the cap is served");
            assert!(out.ends_with(b"ok len=100000"), "{out:?}");
        }
        assert_eq!(
            srv.net.opened(),
            1,
            "the connection survives oversized bodies"
        );
    });
}

/// A web server that stops sending mid-request (params unfinished; or body unfinished with
/// the handler running) is disconnected after `read_timeout`, and the handler is cancelled.
pub fn server_read_timeout<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    let app = TestApp::new(rt.clone());
    let srv = h.block_on(async {
        let mut opts = server_opts();
        opts.read_timeout = Duration::from_millis(200);
        Srv::start(&h, Net::Tcp, opts, app.clone(), plan_inert()).await
    });
    let mut raw = srv.raw();
    raw.send(&raw_request(&[("DO", "ok")], false, None))
        .expect("send BEGIN + partial PARAMS");
    assert_eq!(raw.read_to_close(), Vec::<u8>::new());
    assert_eq!(app.probe.started(), 0);

    let mut raw = srv.raw();
    raw.send(&raw_request(&[("DO", "ok")], true, Some(&pattern(0, 100))))
        .expect("send a request with a partial body");
    assert_eq!(raw.read_to_close(), Vec::<u8>::new());
    h.block_on(async {
        eventually(&rt, "the handler is cancelled", || {
            app.probe.cancelled() == 1
        })
        .await;
        eventually(&rt, "connections closed", || srv.handle.connections() == 0).await;
    });
    assert_eq!((app.probe.started(), app.probe.completed()), (1, 0));
}

/// An idle kept-alive connection is closed after `keepalive_timeout` (over a Unix socket);
/// a connection whose request runs longer than that is not.
pub fn server_keepalive_timeout<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let mut opts = server_opts();
        opts.keepalive_timeout = Duration::from_millis(150);
        let srv = Srv::start(&h, Net::Unix, opts, app.clone(), plan_inert()).await;
        let (c, cnet) = srv.client(&h, client_opts(Multiplexing::Off), plan_inert());
        fetch_ok::<H>(&rt, &c, req("ok")).await;
        eventually(&rt, "the server closes the idle connection", || {
            srv.handle.connections() == 0
        })
        .await;
        eventually(&rt, "the client notices", || c.connections() == 0).await;

        let tasks = spawn_requests::<H>(&rt, &c, "gate", 1);
        eventually(&rt, "a slow request runs", || app.probe.active() == 1).await;
        // Several keep-alive periods pass while the request runs: it must not matter.
        rt.sleep(Duration::from_millis(600)).await;
        app.gate.open();
        expect_all_ok(tasks).await;
        assert_eq!(cnet.opened(), 2);
        assert_eq!(app.probe.cancelled(), 0);
    });
}

/// A client that never reads a 50 MiB response is disconnected after `write_timeout`, and
/// the handler is cancelled; what the client then reads is never a complete response.
pub fn server_write_timeout<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let mut opts = server_opts();
        opts.write_timeout = Duration::from_millis(300);
        let srv = Srv::start(&h, Net::Tcp, opts, app.clone(), plan_inert()).await;
        let (c, _) = srv.client(&h, client_opts(Multiplexing::Off), plan_inert());
        let resp = within(
            &rt,
            "send",
            c.send(req("stream").param("RESP_BYTES", (50usize << 20).to_string())),
        )
        .await
        .expect("send");
        eventually(&rt, "the server gives up on the stalled write", || {
            srv.handle.connections() == 0
        })
        .await;
        eventually(&rt, "the handler is cancelled", || {
            app.probe.cancelled() == 1
        })
        .await;
        assert_eq!(app.probe.completed(), 0);
        let r = within(&rt, "reading the rest", resp.collect(64 << 20)).await;
        assert!(
            r.as_ref().is_err_and(is_cut),
            "{:?}",
            r.map(|(b, _)| b.len())
        );
    });
}

/// With `max_requests_per_connection = 3`, a connection closes (once idle) after three
/// requests, and the client carries on transparently on new connections.
pub fn server_max_requests_per_connection<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let mut opts = server_opts();
        opts.max_requests_per_connection = Some(3);
        let srv = Srv::start(&h, Net::Tcp, opts, app.clone(), plan_inert()).await;
        let mut one = client_opts(Multiplexing::Off);
        one.max_connections = 1;
        let (c, _) = srv.client(&h, one, plan_inert());
        for i in 0..7 {
            fetch_ok::<H>(&rt, &c, req("ok").stdin(pattern(0, 1000 + i))).await;
        }
        let per = app.probe.per_peer();
        assert_eq!(per.iter().sum::<usize>(), 7, "{per:?}");
        assert!(per.len() >= 2, "connections were rotated: {per:?}");
        assert!(
            per[..per.len() - 1].iter().all(|&n| n >= 3),
            "each closed connection served its 3 requests: {per:?}"
        );
        assert_eq!(srv.net.opened(), per.len());
    });
}

/// Back-pressure: while the handler does not read its body, a 64 MiB upload stalls (the
/// client's body stream is not drained), bounded by the buffers in between; once the
/// handler reads, everything arrives intact.
pub fn server_back_pressure<H: Harness>() {
    const TOTAL: usize = 64 << 20;
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let srv = Srv::start(&h, Net::Tcp, server_opts(), app.clone(), plan_inert()).await;
        let (c, _) = srv.client(&h, client_opts(Multiplexing::Off), plan_inert());
        let pulled = Arc::new(AtomicUsize::new(0));
        let body = pattern_stream(TOTAL, 64 * 1024, Arc::clone(&pulled));
        let resp = within(&rt, "send", c.send(req("gate").stdin(body)))
            .await
            .expect("send");
        eventually(&rt, "the handler runs", || app.probe.started() == 1).await;
        let stalled = settled(&rt, Duration::from_millis(100), 5, || {
            pulled.load(Ordering::SeqCst)
        })
        .await;
        assert!(
            stalled < TOTAL / 2,
            "the upload did not stall: {stalled} of {TOTAL} bytes taken"
        );
        app.gate.open();
        let (out, end) = within(&rt, "the upload", resp.collect(1 << 20))
            .await
            .expect("response");
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains(&format!("len={TOTAL} intact=true")), "{text}");
        assert_eq!(end.app_status, 0);
        assert_eq!(pulled.load(Ordering::SeqCst), TOTAL);
    });
}

fn record_len(content: usize) -> usize {
    8 + content + (8 - content % 8) % 8
}

/// A small complete response — `STDOUT` with headers and body, the empty `STDOUT`, and
/// `END_REQUEST` — leaves the server in one write call; the client's request (`BEGIN`,
/// `PARAMS`, empty `STDIN`) in one too.
pub fn server_coalesces_small_response<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let srv = Srv::start(&h, Net::Tcp, server_opts(), app.clone(), plan_inert()).await;
        let (c, cnet) = srv.client(&h, client_opts(Multiplexing::Off), plan_inert());
        for round in 1..=3 {
            let (out, status) = fetch::<H>(&rt, &c, req("small")).await.expect("small");
            assert_eq!((&out[..], status), (SMALL.as_bytes(), 0));
            let wire = round * (record_len(SMALL.len()) + 8 + 16);
            eventually(&rt, "the server wrote the response", || {
                srv.net.conn(0).written() == wire
            })
            .await;
            assert_eq!(srv.net.conn(0).writes(), round, "one write per response");
            assert_eq!(cnet.conn(0).writes(), round, "one write per request");
        }
    });
}

/// A panicking handler ends its request with `CANCELLED_APP_STATUS`, and the connection
/// keeps serving.
pub fn server_handler_panic<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let srv = Srv::start(&h, Net::Tcp, server_opts(), app.clone(), plan_inert()).await;
        let (c, _) = srv.client(&h, client_opts(Multiplexing::Off), plan_inert());
        // More panics than the harness has worker threads: none may take a thread down.
        for _ in 0..4 {
            let (out, status) = fetch::<H>(&rt, &c, req("panic")).await.expect("ended");
            assert_eq!((&out[..], status), (&b""[..], CANCELLED_APP_STATUS));
            fetch_ok::<H>(&rt, &c, req("ok")).await;
        }
        assert_eq!(srv.net.opened(), 1);
        eventually(&rt, "no request left", || srv.handle.requests() == 0).await;
    });
}

/// `TCP_NODELAY` is set on accepted and on connected TCP sockets (and Unix sockets have no
/// such option).
pub fn tcp_nodelay<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        for (net, want) in [(Net::Tcp, Some(true)), (Net::Unix, None)] {
            let app = TestApp::new(rt.clone());
            let srv = Srv::start(&h, net, server_opts(), app.clone(), plan_inert()).await;
            let (c, cnet) = srv.client(&h, client_opts(Multiplexing::Off), plan_inert());
            fetch_ok::<H>(&rt, &c, req("ok")).await;
            assert_eq!(srv.net.nodelay(), vec![want], "accepted, {net:?}");
            assert_eq!(cnet.nodelay(), vec![want], "connected, {net:?}");
        }
    });
}

/// The Authorizer and Filter roles (and a Responder) end to end against the echo
/// application, exact bytes, multiplexed over a Unix socket.
pub fn roles_end_to_end<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let mut opts = server_opts();
        opts.core.roles = RoleSet::ALL;
        let echo = fcgi_echo::handler(rt.clone());
        let srv = Srv::start(&h, Net::Unix, opts, echo, plan_inert()).await;
        let (c, _) = srv.client(&h, client_opts(Multiplexing::Probe), plan_inert());
        let granted = ClientRequest::authorizer().param("HTTP_AUTHORIZATION", "Bearer let-me-in");
        let (out, status) = fetch::<H>(&rt, &c, granted).await.expect("authorizer");
        assert_eq!(
            (&out[..], status),
            (
                &b"Status: 200 OK\r\nVariable-AUTH_USER: echo\r\n\r\n"[..],
                0
            )
        );
        let denied = ClientRequest::authorizer().param("HTTP_AUTHORIZATION", "Bearer nope");
        let (out, _) = fetch::<H>(&rt, &c, denied).await.expect("authorizer");
        assert_eq!(
            &out[..],
            b"Status: 403 Forbidden\r\nContent-Type: text/plain\r\n\r\ndenied"
        );
        let data = pattern(3, 100_000);
        let filter = ClientRequest::filter()
            .param("FCGI_DATA_LENGTH", "100000")
            .stdin(pattern(0, 5000))
            .data(data.clone());
        let (out, status) = fetch::<H>(&rt, &c, filter).await.expect("filter");
        let mut want = BytesMut::from(
            &b"Status: 200 OK\r\nContent-Type: text/plain\r\n\r\ndata-length: 100000\n\n"[..],
        );
        want.extend_from_slice(&data);
        assert_eq!((out, status), (want.freeze(), 0));
        let responder = ClientRequest::responder()
            .param("A", "b")
            .param("ECHO_STATUS", "3")
            .stdin("hello");
        let (out, status) = fetch::<H>(&rt, &c, responder).await.expect("responder");
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.starts_with("Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nrole: responder\n"),
            "{text}"
        );
        assert!(
            // CONTENT_LENGTH: declared by the client for a body of known length.
            text.ends_with(
                "param: A=b\nparam: ECHO_STATUS=3\nparam: CONTENT_LENGTH=5\nstdin-length: 5\n\nhello"
            ),
            "{text}"
        );
        assert_eq!(status, 3);
    });
}

/// One response as the echo application gave it: stdout, app status, stderr.
type Outcome = (Bytes, u32, Bytes);

fn workload(small: bool) -> Vec<ClientRequest> {
    let (body, resp, data) = if small {
        (3000, 4000, 2000)
    } else {
        (100_000, 300_000, 70_000)
    };
    vec![
        ClientRequest::responder().param("A", "1").param("B", "two"),
        ClientRequest::responder()
            .param("ECHO_STDERR", "a warning")
            .stdin(pattern(1, body)),
        ClientRequest::responder().param("ECHO_BODY_BYTES", resp.to_string()),
        ClientRequest::authorizer().param("HTTP_AUTHORIZATION", "Bearer let-me-in"),
        ClientRequest::filter()
            .stdin(pattern(7, 1000))
            .data(pattern(11, data)),
        ClientRequest::responder()
            .param("ECHO_STATUS", "7")
            .stdin(pattern(2, 10)),
    ]
}

async fn run_workload<H: Harness>(
    h: &H,
    net: Net,
    server_plan: Plan,
    client_plan: Plan,
    small: bool,
) -> (Vec<Outcome>, Srv, Arc<NetStats>) {
    let rt = h.runtime();
    let mut opts = server_opts();
    opts.core.roles = RoleSet::ALL;
    let srv = Srv::start(h, net, opts, fcgi_echo::handler(rt.clone()), server_plan).await;
    let (c, cnet) = srv.client(h, client_opts(Multiplexing::Off), client_plan);
    let mut outcomes = Vec::new();
    for request in workload(small) {
        let r = within(&rt, "a workload request", async {
            c.send(request).await?.collect(16 << 20).await
        })
        .await;
        let (out, end) = r.unwrap_or_else(|e| panic!("workload request over {net:?}: {e:?}"));
        outcomes.push((out, end.app_status, end.stderr));
    }
    (outcomes, srv, cnet)
}

/// Streams that return spurious `Pending`, and short reads and writes (down to one byte)
/// on both sides give exactly the results of plain streams, over TCP and Unix sockets.
pub fn mock_streams_give_identical_results<H: Harness>() {
    let h = H::new();
    h.block_on(async {
        for small in [true, false] {
            let (want, _, _) = run_workload(&h, Net::Tcp, plan_inert(), plan_inert(), small).await;
            let configs: Vec<(Net, MockConfig)> = if small {
                vec![
                    (
                        Net::Tcp,
                        MockConfig::inert().pending().max_write(1).max_read(1),
                    ),
                    (
                        Net::Unix,
                        MockConfig::inert().pending().max_write(7).max_read(5),
                    ),
                ]
            } else {
                vec![(
                    Net::Tcp,
                    MockConfig::inert().pending().max_write(1000).max_read(997),
                )]
            };
            for (net, cfg) in configs {
                let (got, srv, cnet) =
                    run_workload(&h, net, plan_all(cfg), plan_all(cfg), small).await;
                assert_eq!(got, want, "{net:?} {cfg:?}");
                for (side, s) in [("server", srv.net.conn(0)), ("client", cnet.conn(0))] {
                    let pendings = s.pendings.load(Ordering::SeqCst);
                    assert!(pendings > 0, "{side}: no spurious Pending injected");
                    let reads = s.read_calls.load(Ordering::SeqCst);
                    let read = s.bytes_read.load(Ordering::SeqCst);
                    let (max_r, max_w) = (cfg.max_read.unwrap_or(0), cfg.max_write.unwrap_or(0));
                    assert!(
                        read <= reads * max_r,
                        "{side}: a read exceeded {max_r} bytes"
                    );
                    assert!(
                        s.written() <= s.writes() * max_w,
                        "{side}: a write exceeded {max_w} bytes"
                    );
                }
            }
        }
    });
}

/// The web server's stream ends in the middle of a request body (the server reads end of
/// stream after part of a `STDIN` record): the handler is cancelled and the client, whose
/// connection is closed before `END_REQUEST`, gets `Truncated`.
pub fn server_early_eof_mid_request<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let head = raw_request(&[("DO", "ok")], true, None).len();
        let cut = head + 8 + 500;
        let plan = plan_all(MockConfig::inert().eof_after_read(cut));
        let srv = Srv::start(&h, Net::Tcp, server_opts(), app.clone(), plan).await;
        let (c, _) = srv.client(&h, client_opts(Multiplexing::Off), plan_inert());
        let request = req("ok").stdin(stalling_stream(vec![pattern(0, 1000)]));
        let r = fetch::<H>(&rt, &c, request).await;
        assert!(matches!(r, Err(ClientError::Truncated)), "{r:?}");
        eventually(&rt, "the handler is cancelled", || {
            app.probe.cancelled() == 1
        })
        .await;
        assert_eq!((app.probe.started(), app.probe.completed()), (1, 0));
        assert_eq!(srv.net.conn(0).bytes_read.load(Ordering::SeqCst), cut);
        eventually(&rt, "the server closed", || srv.handle.connections() == 0).await;
    });
}

/// A handler that hands its `Response` to a task of its own and returns: once the request
/// has ended and the web server has reused its id for the next request, a late write
/// through that `Response` fails — it never lands in the next request's output.
pub fn server_response_outliving_its_request<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let late = Arc::new(Gate::default());
        let second_may_answer = Arc::new(Gate::default());
        let second_running = Arc::new(AtomicUsize::new(0));
        let late_write: Arc<std::sync::Mutex<Option<io::Result<()>>>> = Arc::default();
        let handler = {
            let (rt, late, second_may_answer, second_running, late_write) = (
                rt.clone(),
                Arc::clone(&late),
                Arc::clone(&second_may_answer),
                Arc::clone(&second_running),
                Arc::clone(&late_write),
            );
            move |req: Request, mut out: Response| {
                let (rt, late, second_may_answer, second_running, late_write) = (
                    rt.clone(),
                    Arc::clone(&late),
                    Arc::clone(&second_may_answer),
                    Arc::clone(&second_running),
                    Arc::clone(&late_write),
                );
                async move {
                    let head = "Content-Type: text/plain\r\n\r\n";
                    if req.params().get_str("DO") == Some("keep-response") {
                        if out.stdout(format!("{head}first")).await.is_err() {
                            return 1;
                        }
                        spawn(&rt, async move {
                            late.wait().await;
                            let r = out.stdout("LEAKED").await;
                            *late_write.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                        });
                        return 0;
                    }
                    second_running.fetch_add(1, Ordering::SeqCst);
                    second_may_answer.wait().await;
                    match out.stdout(format!("{head}second")).await {
                        Ok(()) => 0,
                        Err(_) => 1,
                    }
                }
            }
        };
        let srv = Srv::start(&h, Net::Tcp, server_opts(), handler, plan_inert()).await;
        let mut one = client_opts(Multiplexing::Off);
        one.max_connections = 1;
        let (c, cnet) = srv.client(&h, one, plan_inert());
        let (first, _) = fetch::<H>(&rt, &c, req("keep-response"))
            .await
            .expect("first");
        assert_eq!(&first[..], b"Content-Type: text/plain\r\n\r\nfirst");
        let second = within(&rt, "send", c.send(req("answer-later")))
            .await
            .expect("send");
        eventually(&rt, "the second request runs", || {
            second_running.load(Ordering::SeqCst) == 1
        })
        .await;
        late.open();
        eventually(&rt, "the late write is done", || {
            late_write
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some()
        })
        .await;
        let r = late_write.lock().unwrap_or_else(|e| e.into_inner()).take();
        assert!(
            r.as_ref().is_some_and(|r| r
                .as_ref()
                .is_err_and(|e| e.kind() == io::ErrorKind::ConnectionAborted)),
            "{r:?}"
        );
        second_may_answer.open();
        let (out, _) = within(&rt, "second", second.collect(1 << 20))
            .await
            .expect("second");
        assert_eq!(&out[..], b"Content-Type: text/plain\r\n\r\nsecond");
        assert_eq!(cnet.opened(), 1, "both on one connection, with the same id");
    });
}
