//! Endurance: a server or a client pool that has served tens of thousands of short
//! connections holds nothing more than a fresh one. Whatever belongs to a connection or a
//! request — its task, its request map entries, its registrations with shared wake-up lists,
//! its buffers — must die with it; the live counters of [`ServerStats`] and [`ClientStats`]
//! and the process's resident memory prove it.
//!
//! (What these catch: the server-wide shutdown signal once kept the waker of every
//! connection ever polled, and scanned them all on each poll: CPU per request grew tenfold
//! and memory without bound after tens of thousands of connections.)

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use fcgi_driver::client::{Client, ClientOptions, ClientStats, Multiplexing};
use fcgi_driver::server::{Server, ServerOptions, ServerStats};

use super::Harness;
use super::fixture::{Addr, TestApp, client_opts, req, server_opts, whole_request};
use super::util::{GUARD, eventually, spawn, timeout, within};

/// Bound on a whole run of short connections (they take seconds; a hang must still end).
const LONG_GUARD: Duration = Duration::from_secs(300);

/// Short connections per socket kind (TCP, Unix) and per warm-up.
const SHORT_CONNECTIONS: usize = 20_000;
const WARM_UP: usize = 1_000;
/// Client threads opening them.
const THREADS: usize = 4;
/// Resident memory a run may add once warm: allocator noise, never a per-connection cost
/// (20,000 connections leaking even 100 bytes each would exceed it).
const RSS_SLACK: usize = 2 << 20;

/// The scenarios run one at a time (each measures the whole process).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The process's resident memory, in bytes.
pub fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// A Responder request without keep-conn (the server closes after it), as nginx sends by
/// default: `BEGIN_REQUEST`, `PARAMS` (`DO=ok`), empty `STDIN`.
fn one_shot_request() -> Vec<u8> {
    whole_request(&[("DO", "ok")], false, b"")
}

fn exchange<S: Read + Write>(mut s: S, request: &[u8]) -> io::Result<Vec<u8>> {
    s.write_all(request)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(out)
}

/// One connection, one request, read until the server closes; the answer must be complete
/// (the `ok` text, then `END_REQUEST` last).
fn short_connection(addr: &Addr, request: &[u8]) {
    let out = match addr {
        Addr::Tcp(a) => {
            let s = std::net::TcpStream::connect_timeout(a, GUARD).expect("connect");
            s.set_read_timeout(Some(GUARD)).expect("timeout");
            exchange(s, request)
        }
        Addr::Unix(p) => {
            let s = std::os::unix::net::UnixStream::connect(p).expect("connect");
            s.set_read_timeout(Some(GUARD)).expect("timeout");
            exchange(s, request)
        }
    }
    .expect("a short connection's exchange");
    let end = out.len().checked_sub(16).map(|i| &out[i..]);
    assert!(
        end.is_some_and(|e| e[1] == 3 && e[2..4] == [0, 1]),
        "the answer does not end with END_REQUEST: {:?}",
        String::from_utf8_lossy(&out)
    );
    assert!(
        out.windows(6).any(|w| w == b"ok id="),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
}

/// `n` short connections to `addr` from [`THREADS`] blocking threads.
fn short_connections(addr: &Addr, n: usize) {
    let request = one_shot_request();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (addr, request) = (addr.clone(), &request);
            let count = n / THREADS + usize::from(t < n % THREADS);
            s.spawn(move || {
                for _ in 0..count {
                    short_connection(&addr, request);
                }
            });
        }
    });
}

/// What a server holds with no connection open: its accept loop's one registration.
fn at_rest(s: ServerStats) -> bool {
    s.connections == 0
        && s.registered_connections == 0
        && s.connection_tasks == 0
        && s.requests == 0
        && s.handler_tasks == 0
        && s.request_entries == 0
        && s.waiters <= 1
}

/// Tens of thousands of short connections (one request each, no keep-conn: what nginx does
/// by default), over TCP and a Unix socket: every connection and request task, request
/// entry and wake-up registration is gone afterwards, and the process is no larger than
/// after a warm-up.
pub fn server_short_connections_leave_nothing<H: Harness>() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut servers = Vec::new();
        for unix in [false, true] {
            let opts = server_opts();
            let server = Server::new(rt.clone(), opts);
            let handle = server.shutdown_handle();
            let app = app.clone();
            let addr = if unix {
                let path = dir.path().join("app.sock");
                let l = h.bind_unix(&path).await.expect("bind unix");
                spawn(&rt, async move { server.serve(l, app).await });
                Addr::Unix(path)
            } else {
                let (l, a) = h.bind_tcp().await.expect("bind tcp");
                spawn(&rt, async move { server.serve(l, app).await });
                Addr::Tcp(a)
            };
            servers.push((addr, handle));
        }
        let settle = |what: &'static str| {
            let handles: Vec<_> = servers.iter().map(|(_, hd)| hd.clone()).collect();
            eventually(&rt, what, move || {
                handles.iter().all(|hd| at_rest(hd.stats()))
            })
        };
        for (addr, _) in &servers {
            short_connections(addr, WARM_UP);
        }
        settle("the servers are at rest after the warm-up").await;
        let before = rss_bytes();
        for (addr, _) in &servers {
            short_connections(addr, SHORT_CONNECTIONS);
        }
        settle("the servers are at rest after the short connections").await;
        let after = rss_bytes();
        assert_eq!(
            app.probe.completed(),
            2 * (WARM_UP + SHORT_CONNECTIONS),
            "every request was answered by the application"
        );
        assert!(
            after <= before + RSS_SLACK,
            "resident memory grew by {} KiB over {} short connections",
            (after.saturating_sub(before)) >> 10,
            2 * SHORT_CONNECTIONS
        );
        for (_, hd) in &servers {
            let s = hd.stats();
            assert!(at_rest(s), "{s:?}");
            assert_eq!(s.waiters, 1, "the accept loop's registration only: {s:?}");
            hd.shutdown();
        }
    });
}

/// What a client holds once its connections are gone.
fn client_at_rest(s: ClientStats) -> bool {
    s.connections == 0
        && s.connection_tasks == 0
        && s.feeder_tasks == 0
        && s.request_entries == 0
        && s.waiters == 0
}

/// The client pool against a backend that closes every connection after one request (its
/// `max_requests_per_connection` is 1), with keep-alive on (the pool finds each connection
/// dead and opens another; requests caught on a dying one are retried once) and off:
/// tens of thousands of requests, all answered, and afterwards the client holds no
/// connection, task, request entry or registration, and the process is no larger than
/// after a warm-up.
pub fn client_pool_closed_connections_leave_nothing<H: Harness>() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let mut opts: ServerOptions = server_opts();
        opts.max_requests_per_connection = Some(1);
        let server = Server::new(rt.clone(), opts);
        let handle = server.shutdown_handle();
        let (l, addr) = h.bind_tcp().await.expect("bind tcp");
        let serving = app.clone();
        spawn(&rt, async move { server.serve(l, serving).await });

        for keep_alive in [true, false] {
            let mut copts: ClientOptions = client_opts(Multiplexing::Off);
            copts.keep_alive = keep_alive;
            copts.max_connections = 4;
            let client = Arc::new(Client::new(rt.clone(), h.tcp_connector(addr), copts));
            let run = |n: usize| {
                let tasks: Vec<_> = (0..4)
                    .map(|_| {
                        let (c, rt2) = (Arc::clone(&client), rt.clone());
                        spawn(&rt, async move {
                            for _ in 0..n / 4 {
                                let resp = c.send(req("ok")).await.expect("send");
                                let (out, end) = resp.collect(1 << 20).await.expect("response");
                                assert_eq!(end.app_status, 0);
                                assert!(out.windows(6).any(|w| w == b"ok id="));
                            }
                            drop(rt2);
                        })
                    })
                    .collect();
                async move {
                    for t in tasks {
                        t.join().await;
                    }
                }
            };
            let settle = |what: &'static str| {
                let (c, hd) = (Arc::clone(&client), handle.clone());
                eventually(&rt, what, move || {
                    client_at_rest(c.stats()) && at_rest(hd.stats())
                })
            };
            within(&rt, "warm-up requests", run(WARM_UP)).await;
            settle("client and server at rest after the warm-up").await;
            let before = rss_bytes();
            let started = std::time::Instant::now();
            timeout(&rt, LONG_GUARD, run(SHORT_CONNECTIONS))
                .await
                .expect("the requests finish");
            settle("client and server at rest after the requests").await;
            let after = rss_bytes();
            assert!(
                after <= before + RSS_SLACK,
                "keep_alive={keep_alive}: resident memory grew by {} KiB over {} requests ({:?})",
                (after.saturating_sub(before)) >> 10,
                SHORT_CONNECTIONS,
                started.elapsed()
            );
        }
        // A client made now is served as a fresh one would be.
        let client = Client::new(
            rt.clone(),
            h.tcp_connector(addr),
            client_opts(Multiplexing::Off),
        );
        let resp = within(&rt, "send", client.send(req("ok")))
            .await
            .expect("send");
        let (out, _) = within(&rt, "collect", resp.collect(1 << 20))
            .await
            .expect("response");
        assert!(out.windows(6).any(|w| w == b"ok id="));
        handle.shutdown();
    });
}
