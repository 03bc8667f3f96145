//! Client and pool scenarios: connection limits, pool and idle timeouts, rotation, the
//! retry-once rule, abandoned responses, truncation, full duplex, request timeouts and
//! keep-alive off.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use bytes::BytesMut;
use fcgi_driver::client::{Client, ClientError, Multiplexing, TimeoutKind};

use super::Harness;
use super::fixture::{HEAD, Net, Srv, TestApp, client_opts, fetch, fetch_ok, req, server_opts};
use super::mock::{MockConfig, Plan, plan_inert};
use super::util::{
    Gate, Task, eventually, gated_stream, pattern, pattern_matches, pattern_stream, spawn,
    stalling_stream, within,
};

/// Under 50 concurrent requests to a non-multiplexing server (found out by the probe), the
/// pool never opens more than `max_connections = 4`, uses all four, and serves every
/// request.
pub fn pool_max_connections<H: Harness>() {
    const N: usize = 50;
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let mut opts = server_opts();
        opts.core.multiplex = false;
        let srv = Srv::start(&h, Net::Tcp, opts, app.clone(), plan_inert()).await;
        let mut copts = client_opts(Multiplexing::Probe);
        copts.max_connections = 4;
        let (c, cnet) = srv.client(&h, copts, plan_inert());
        let tasks: Vec<Task<String>> = (0..N)
            .map(|i| {
                let (c, rt2) = (c.clone(), rt.clone());
                spawn(&rt, async move {
                    fetch_ok::<H>(&rt2, &c, req("gate").stdin(pattern(0, i))).await
                })
            })
            .collect();
        eventually(&rt, "four requests run at once", || app.probe.active() == 4).await;
        assert!(c.connections() <= 4, "{}", c.connections());
        assert_eq!(srv.handle.connections(), 4);
        app.gate.open();
        for (i, t) in tasks.into_iter().enumerate() {
            let text = within(&rt, "a pooled request", t.join()).await;
            assert!(text.contains(&format!("len={i} intact=true")), "{text}");
        }
        assert_eq!(
            c.multiplexing(),
            Some(1),
            "the server said FCGI_MPXS_CONNS=0"
        );
        assert_eq!(app.probe.peak(), 4);
        assert!(cnet.peak() <= 4, "client opened {} at once", cnet.peak());
        assert!(srv.net.peak() <= 4, "server saw {} at once", srv.net.peak());
        assert_eq!(app.probe.completed(), N);
    });
}

/// With every connection busy, a request waits at most `pool_timeout`, then fails with
/// `Timeout(TimeoutKind::Pool)`; the busy request is unaffected.
pub fn pool_timeout<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let srv = Srv::start(&h, Net::Tcp, server_opts(), app.clone(), plan_inert()).await;
        let mut copts = client_opts(Multiplexing::Off);
        copts.max_connections = 1;
        copts.pool_timeout = Duration::from_millis(200);
        let (c, cnet) = srv.client(&h, copts, plan_inert());
        let busy = {
            let (c, rt2) = (c.clone(), rt.clone());
            spawn(
                &rt,
                async move { fetch_ok::<H>(&rt2, &c, req("gate")).await },
            )
        };
        eventually(&rt, "the busy request runs", || app.probe.active() == 1).await;
        let r = within(&rt, "send", c.send(req("ok"))).await;
        assert!(
            matches!(r, Err(ClientError::Timeout(TimeoutKind::Pool))),
            "{r:?}"
        );
        app.gate.open();
        within(&rt, "the busy request", busy.join()).await;
        fetch_ok::<H>(&rt, &c, req("ok")).await;
        assert_eq!(cnet.opened(), 1);
        assert_eq!(app.probe.started(), 2);
    });
}

/// An idle connection is closed by the client after `idle_timeout` (the server notices);
/// one whose request runs longer than that is not.
pub fn client_idle_timeout<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let srv = Srv::start(&h, Net::Tcp, server_opts(), app.clone(), plan_inert()).await;
        let mut copts = client_opts(Multiplexing::Off);
        copts.idle_timeout = Duration::from_millis(150);
        let (c, cnet) = srv.client(&h, copts, plan_inert());
        fetch_ok::<H>(&rt, &c, req("ok")).await;
        eventually(&rt, "the idle connection is closed", || {
            c.connections() == 0
        })
        .await;
        eventually(&rt, "the server notices", || srv.handle.connections() == 0).await;

        let busy = {
            let (c, rt2) = (c.clone(), rt.clone());
            spawn(
                &rt,
                async move { fetch_ok::<H>(&rt2, &c, req("gate")).await },
            )
        };
        eventually(&rt, "a slow request runs", || app.probe.active() == 1).await;
        rt_sleep(&rt, Duration::from_millis(600)).await;
        app.gate.open();
        within(&rt, "the slow request", busy.join()).await;
        assert_eq!(cnet.opened(), 2);
    });
}

async fn rt_sleep<R: fcgi_driver::runtime::Runtime>(rt: &R, d: Duration) {
    rt.sleep(d).await;
}

/// With `max_requests_per_connection = 2`, five sequential requests use exactly three
/// connections, two requests each and one for the last.
pub fn client_max_requests_per_connection<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let srv = Srv::start(&h, Net::Tcp, server_opts(), app.clone(), plan_inert()).await;
        let mut copts = client_opts(Multiplexing::Off);
        copts.max_requests_per_connection = Some(2);
        copts.max_connections = 1;
        let (c, cnet) = srv.client(&h, copts, plan_inert());
        for i in 0..5 {
            fetch_ok::<H>(&rt, &c, req("ok").stdin(pattern(0, 10 + i))).await;
        }
        assert_eq!(cnet.opened(), 3);
        assert_eq!(app.probe.per_peer(), vec![2, 2, 1]);
        eventually(&rt, "retired connections close", || {
            srv.handle.connections() == 1
        })
        .await;
    });
}

/// The first connection dies silently while idle (its death shows only once the next
/// request is sent on it).
fn dies_after_first_request() -> Plan {
    Arc::new(|n| {
        if n == 0 {
            MockConfig::inert().hang_up_on_write(2)
        } else {
            MockConfig::inert()
        }
    })
}

/// Retry-once: a request with a replayable body sent on a kept-alive connection that turns
/// out dead (end of stream before any response byte) is sent again on a fresh connection,
/// transparently and with its body intact; one with a streamed body fails with `Truncated`
/// instead. The dead attempt never reached the application.
pub fn client_retry_once<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let srv = Srv::start(&h, Net::Tcp, server_opts(), app.clone(), plan_inert()).await;

        let (c, cnet) = srv.client(
            &h,
            client_opts(Multiplexing::Off),
            dies_after_first_request(),
        );
        fetch_ok::<H>(&rt, &c, req("ok")).await;
        let text = fetch_ok::<H>(&rt, &c, req("ok").stdin(pattern(0, 100_000))).await;
        assert!(text.contains("len=100000 intact=true"), "{text}");
        assert_eq!(cnet.opened(), 2, "one fresh connection for the retry");
        assert_eq!(app.probe.started(), 2);

        let (c, cnet) = srv.client(
            &h,
            client_opts(Multiplexing::Off),
            dies_after_first_request(),
        );
        fetch_ok::<H>(&rt, &c, req("ok")).await;
        let pulled = Arc::new(AtomicUsize::new(0));
        let streamed = req("ok").stdin(pattern_stream(100_000, 10_000, pulled));
        let r = fetch::<H>(&rt, &c, streamed).await;
        assert!(matches!(r, Err(ClientError::Truncated)), "{r:?}");
        assert_eq!(cnet.opened(), 1, "no retry for a streamed body");
        assert_eq!(app.probe.started(), 3);
        fetch_ok::<H>(&rt, &c, req("ok")).await;
        assert_eq!(cnet.opened(), 2);
    });
}

fn endless() -> fcgi_driver::client::ClientRequest {
    req("stream").param("RESP_BYTES", (1usize << 40).to_string())
}

/// Dropping a response mid-stream on a multiplexed connection aborts the request
/// (`ABORT_REQUEST`): the handler is cancelled, and the same connection serves the next
/// request — nothing leaks.
pub fn client_drop_response_multiplexed<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let srv = Srv::start(&h, Net::Tcp, server_opts(), app.clone(), plan_inert()).await;
        let (c, cnet) = srv.client(&h, client_opts(Multiplexing::On(4)), plan_inert());
        let mut resp = within(&rt, "send", c.send(endless())).await.expect("send");
        let first = within(&rt, "first chunk", resp.chunk()).await;
        assert!(matches!(first, Some(Ok(_))), "{first:?}");
        drop(resp);
        eventually(&rt, "the handler is cancelled", || {
            app.probe.cancelled() == 1
        })
        .await;
        eventually(&rt, "the request is over", || srv.handle.requests() == 0).await;
        fetch_ok::<H>(&rt, &c, req("ok")).await;
        assert_eq!((cnet.opened(), srv.net.opened()), (1, 1));
        assert_eq!(c.connections(), 1);
        assert_eq!(srv.handle.connections(), 1);
    });
}

/// Dropping a response mid-stream on a non-multiplexed connection closes that connection:
/// the handler is cancelled, both sides forget the connection, the next request gets a new
/// one.
pub fn client_drop_response_non_multiplexed<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let srv = Srv::start(&h, Net::Tcp, server_opts(), app.clone(), plan_inert()).await;
        let (c, cnet) = srv.client(&h, client_opts(Multiplexing::Off), plan_inert());
        let mut resp = within(&rt, "send", c.send(endless())).await.expect("send");
        let first = within(&rt, "first chunk", resp.chunk()).await;
        assert!(matches!(first, Some(Ok(_))), "{first:?}");
        drop(resp);
        eventually(&rt, "the handler is cancelled", || {
            app.probe.cancelled() == 1
        })
        .await;
        eventually(&rt, "the client closed it", || c.connections() == 0).await;
        eventually(&rt, "the server closed it", || {
            srv.handle.connections() == 0
        })
        .await;
        fetch_ok::<H>(&rt, &c, req("ok")).await;
        assert_eq!((cnet.opened(), srv.net.opened()), (2, 2));
    });
}

/// A server whose stream ends mid-response (inside a record header, inside a record's
/// content, after many records) gives `Truncated`, never a short success; what arrived
/// before is a true prefix of the response.
pub fn client_truncated_response<H: Harness>() {
    const CUTS: [usize; 3] = [3, 108, 30_000];
    const BODY: usize = 100_000;
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let plan: Plan = Arc::new(|n| MockConfig::inert().cut_after_write(CUTS[n.min(2)]));
        let srv = Srv::start(&h, Net::Tcp, server_opts(), app.clone(), plan).await;
        let (c, cnet) = srv.client(&h, client_opts(Multiplexing::Off), plan_inert());
        let mut full = BytesMut::from(HEAD.as_bytes());
        full.extend_from_slice(&pattern(0, BODY));
        for cut in CUTS {
            let request = req("stream").param("RESP_BYTES", BODY.to_string());
            let mut resp = within(&rt, "send", c.send(request)).await.expect("send");
            let mut got = Vec::new();
            let end = within(&rt, "the truncated response", async {
                loop {
                    match resp.chunk().await {
                        Some(Ok(piece)) => got.extend_from_slice(&piece),
                        Some(Err(e)) => return e,
                        None => panic!("a cut response ended as a success ({} bytes)", got.len()),
                    }
                }
            })
            .await;
            assert!(
                matches!(end, ClientError::Truncated),
                "cut at {cut}: {end:?}"
            );
            assert!(got.len() < cut, "cut at {cut}: got {} bytes", got.len());
            assert_eq!(&got[..], &full[..got.len()], "cut at {cut}: not a prefix");
        }
        assert_eq!(cnet.opened(), 3);
    });
}

/// Full duplex: the handler writes a 16 MiB response before reading a 16 MiB upload; both
/// complete (no deadlock) and both arrive intact.
pub fn client_full_duplex<H: Harness>() {
    const N: usize = 16 << 20;
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let srv = Srv::start(&h, Net::Tcp, server_opts(), app.clone(), plan_inert()).await;
        let (c, _) = srv.client(&h, client_opts(Multiplexing::Off), plan_inert());
        let request = req("duplex")
            .param("RESP_BYTES", N.to_string())
            .stdin(pattern(0, N));
        let mut resp = within(&rt, "send", c.send(request)).await.expect("send");
        let mut head = Vec::new();
        let mut body = 0usize;
        let mut intact = true;
        let mut tail = Vec::new();
        within(
            &rt,
            "both 16 MiB transfers (a deadlock would stop here)",
            async {
                while let Some(piece) = resp.chunk().await {
                    let mut piece = &piece.expect("response")[..];
                    if head.len() < HEAD.len() {
                        let take = (HEAD.len() - head.len()).min(piece.len());
                        head.extend_from_slice(&piece[..take]);
                        piece = &piece[take..];
                    }
                    if body < N {
                        let take = (N - body).min(piece.len());
                        intact &= pattern_matches(body, &piece[..take]);
                        body += take;
                        piece = &piece[take..];
                    }
                    tail.extend_from_slice(piece);
                }
            },
        )
        .await;
        assert_eq!(&head[..], HEAD.as_bytes());
        assert_eq!(body, N);
        assert!(intact, "the response was corrupted");
        assert_eq!(
            String::from_utf8_lossy(&tail),
            format!("\nverified={N} intact=true")
        );
        let end = within(&rt, "end", resp.finish()).await.expect("end");
        assert_eq!(end.app_status, 0);
    });
}

/// A backend that does not answer within `read_timeout` gives `Timeout(TimeoutKind::Read)`;
/// the client closes the connection, which cancels the handler.
pub fn client_read_timeout<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let srv = Srv::start(&h, Net::Tcp, server_opts(), app.clone(), plan_inert()).await;
        let mut copts = client_opts(Multiplexing::Off);
        copts.read_timeout = Duration::from_millis(200);
        let (c, _) = srv.client(&h, copts, plan_inert());
        let r = fetch::<H>(&rt, &c, req("hang")).await;
        assert!(
            matches!(r, Err(ClientError::Timeout(TimeoutKind::Read))),
            "{r:?}"
        );
        eventually(&rt, "the handler is cancelled", || {
            app.probe.cancelled() == 1
        })
        .await;
        eventually(&rt, "the connection is gone", || c.connections() == 0).await;
        fetch_ok::<H>(&rt, &c, req("ok")).await;
    });
}

/// A response that keeps trickling (so the read timeout never fires) is cut by
/// `total_timeout` with `Timeout(TimeoutKind::Total)`; dropping it cancels the handler.
pub fn client_total_timeout<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let srv = Srv::start(&h, Net::Tcp, server_opts(), app.clone(), plan_inert()).await;
        let mut copts = client_opts(Multiplexing::Off);
        copts.read_timeout = Duration::from_secs(60);
        copts.total_timeout = Some(Duration::from_millis(300));
        let (c, _) = srv.client(&h, copts, plan_inert());
        let mut resp = within(&rt, "send", c.send(req("trickle")))
            .await
            .expect("send");
        let e = within(&rt, "the total timeout", async {
            loop {
                match resp.chunk().await {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return e,
                    None => panic!("an endless response ended"),
                }
            }
        })
        .await;
        assert!(
            matches!(e, ClientError::Timeout(TimeoutKind::Total)),
            "{e:?}"
        );
        drop(resp);
        eventually(&rt, "the handler is cancelled", || {
            app.probe.cancelled() == 1
        })
        .await;
        fetch_ok::<H>(&rt, &c, req("ok")).await;
    });
}

/// With `keep_alive = false` every request has its own connection (`FCGI_KEEP_CONN` unset),
/// closed once the request has ended.
pub fn client_keep_alive_off<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let srv = Srv::start(&h, Net::Tcp, server_opts(), app.clone(), plan_inert()).await;
        let mut copts = client_opts(Multiplexing::Off);
        copts.keep_alive = false;
        let (c, cnet) = srv.client(&h, copts, plan_inert());
        for i in 1..=3 {
            let text = fetch_ok::<H>(&rt, &c, req("ok")).await;
            assert!(text.ends_with("keep=false"), "{text}");
            eventually(&rt, "the client closed it", || c.connections() == 0).await;
            eventually(&rt, "the server closed it", || {
                srv.handle.connections() == 0
            })
            .await;
            assert_eq!(cnet.opened(), i);
        }
        assert_eq!(app.probe.per_peer(), vec![1, 1, 1]);
    });
}

/// Request ids are reused on a connection, but requests never get mixed up: a response
/// that ended on the wire but is not read yet keeps its own answer while the next request
/// runs on the same connection (and id); and the body feeder of a request the application
/// refused early, resuming later, never writes into the request that took over its id.
pub fn client_request_id_reuse<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let mut opts = server_opts();
        opts.core.limits.max_params_bytes = 1024;
        let srv = Srv::start(&h, Net::Tcp, opts, app.clone(), plan_inert()).await;
        let mut one = client_opts(Multiplexing::Off);
        one.max_connections = 1;
        let (c, cnet) = srv.client(&h, one, plan_inert());

        // An ended, unread response, then another request on the same connection.
        let a = within(&rt, "send a", c.send(req("ok").stdin(pattern(0, 1))))
            .await
            .expect("send a");
        eventually(&rt, "the client has received all of a", || {
            app.probe.completed() == 1
                && cnet
                    .conn(0)
                    .bytes_read
                    .load(std::sync::atomic::Ordering::SeqCst)
                    == srv.net.conn(0).written()
        })
        .await;
        let b = within(&rt, "send b", c.send(req("ok").stdin(pattern(0, 2))))
            .await
            .expect("send b");
        let (out_b, _) = within(&rt, "b", b.collect(1 << 20)).await.expect("b");
        let (out_a, _) = within(&rt, "a", a.collect(1 << 20)).await.expect("a");
        let (out_a, out_b) = (
            String::from_utf8_lossy(&out_a),
            String::from_utf8_lossy(&out_b),
        );
        assert!(out_a.contains("len=1 intact=true"), "a got {out_a:?}");
        assert!(out_b.contains("len=2 intact=true"), "b got {out_b:?}");

        // A refused request whose body stream resumes after the next request took its id.
        let resume = Arc::new(Gate::default());
        let refused = req("ok").param("BIG", "x".repeat(4000)).stdin(gated_stream(
            vec![pattern(0, 100)],
            Arc::clone(&resume),
            vec![bytes::Bytes::from_static(b"INJECTED")],
        ));
        let r = fetch::<H>(&rt, &c, refused).await;
        assert!(matches!(r, Err(ClientError::Overloaded)), "{r:?}");
        let finish = Arc::new(Gate::default());
        let next = req("ok").stdin(gated_stream(
            vec![pattern(0, 50)],
            Arc::clone(&finish),
            vec![pattern(50, 50)],
        ));
        let next = within(&rt, "send", c.send(next)).await.expect("send");
        eventually(&rt, "the next request runs", || app.probe.started() == 3).await;
        resume.open();
        // Give the refused request's feeder every chance to run before the next body ends.
        rt_sleep(&rt, Duration::from_millis(50)).await;
        finish.open();
        let (out, _) = within(&rt, "next", next.collect(1 << 20))
            .await
            .expect("next");
        let out = String::from_utf8_lossy(&out);
        assert!(out.contains("len=100 intact=true"), "{out:?}");
        assert_eq!(cnet.opened(), 1);
    });
}

/// A request whose body stream stalls, and whose response is then dropped (or whose
/// connection dies): its feeder task ends with it — it does not wait forever on a stream
/// nobody wants any more, holding the connection's state — in both pool modes.
pub fn client_stalled_upload_feeder_ends_with_its_request<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let srv = Srv::start(&h, Net::Tcp, server_opts(), app.clone(), plan_inert()).await;
        for mux in [Multiplexing::Off, Multiplexing::On(4)] {
            let (c, _) = srv.client(&h, client_opts(mux), plan_inert());
            let body = stalling_stream(vec![pattern(0, 1000)]);
            let resp = within(&rt, "send", c.send(req("ok").stdin(body)))
                .await
                .expect("send");
            eventually(&rt, "the handler reads the first piece", || {
                app.probe.active() == 1
            })
            .await;
            assert_eq!(c.stats().feeder_tasks, 1);
            drop(resp);
            eventually(&rt, "the feeder ends with its request", || {
                let s = c.stats();
                s.feeder_tasks == 0 && s.request_entries == 0
            })
            .await;
            eventually(&rt, "the handler is cancelled", || app.probe.active() == 0).await;
        }
    });
}

/// Dropping `send` while its connection is being opened or probed (a caller's own
/// timeout) gives the reserved pool slot back and lets the next connection probe: the pool
/// does not wait for a probe nobody runs any more.
pub fn client_cancelled_connect_frees_its_slot<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        // A backend that accepts and never answers (not even GET_VALUES).
        let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = silent.local_addr().expect("address");
        let held = Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = Arc::clone(&held);
        std::thread::spawn(move || {
            for s in silent.incoming().take(4).flatten() {
                keep.lock().unwrap_or_else(|e| e.into_inner()).push(s);
            }
        });
        let mut opts = client_opts(Multiplexing::Probe);
        opts.max_connections = 1;
        opts.pool_timeout = Duration::from_secs(1);
        let c = Client::new(rt.clone(), h.tcp_connector(addr), opts);
        let cancelled =
            super::util::timeout(&rt, Duration::from_millis(200), c.send(req("ok"))).await;
        assert!(cancelled.is_none(), "the probe cannot have been answered");
        // The next request gets a connection of its own (and probes on it, up to its 2 s
        // timeout) instead of waiting out the pool timeout behind the abandoned probe.
        let next = within(&rt, "the next send", c.send(req("ok"))).await;
        assert!(next.is_ok(), "{:?}", next.err());
        assert_eq!(c.multiplexing(), Some(1), "no answer means no multiplexing");
    });
}
