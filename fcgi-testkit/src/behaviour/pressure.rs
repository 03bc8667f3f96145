//! The server under pressure from clients we did not write: idle floods, slow and aborted
//! connections, and clients that keep sending after we answered. Well-behaved clients must
//! keep being served, and no response may be destroyed by a reset.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fcgi_driver::server::ServerOptions;

use super::Harness;
use super::fixture::{Addr, Net, Srv, TestApp, read_answer, server_opts, whole_request};
use super::mock::plan_inert;
use super::util::{GUARD, eventually};

/// One Responder request for the test application (see [`whole_request`]).
fn request(params: &[(&str, &str)], keep_conn: bool, body: Option<&[u8]>) -> Vec<u8> {
    whole_request(params, keep_conn, body.unwrap_or_default())
}

fn tcp_addr(srv: &Srv) -> SocketAddr {
    match &srv.addr {
        Addr::Tcp(a) => *a,
        Addr::Unix(_) => panic!("a TCP scenario"),
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, GUARD).expect("connect");
    s.set_read_timeout(Some(GUARD)).expect("timeout");
    s.set_write_timeout(Some(GUARD)).expect("timeout");
    s
}

/// One well-behaved request on a new connection: `true` if fully answered.
fn good_request(addr: SocketAddr, wire: &[u8]) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, GUARD) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(GUARD));
    s.write_all(wire).is_ok()
        && read_answer(&mut s).is_ok_and(|out| out.windows(6).any(|w| w == b"ok id="))
}

/// Lingering close: a client that is still sending a body the application never read when
/// the application has answered and the server closes (no keep-conn) gets the whole
/// response — the server shuts its side down and drains what arrives instead of closing
/// with unread input, which would make the kernel reset the connection and discard the
/// response the client has not read yet.
pub fn server_lingering_close_keeps_the_response<H: Harness>() {
    const ROUNDS: usize = 20;
    const RESPONSE: usize = 100_000;
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let mut opts: ServerOptions = server_opts();
        // The handler holds little of the body: most of it stays in the socket.
        opts.core.limits.max_buffered_input = 16 * 1024;
        let srv = Srv::start(&h, Net::Tcp, opts, app.clone(), plan_inert()).await;
        let addr = tcp_addr(&srv);
        let body = vec![b'b'; 400_000];
        let wire = request(
            &[("DO", "stream"), ("RESP_BYTES", &RESPONSE.to_string())],
            false,
            Some(&body),
        );
        for round in 0..ROUNDS {
            let mut s = connect(addr);
            let mut writer = s.try_clone().expect("clone");
            let wire = wire.clone();
            // The body goes out while the answer comes back (the application answers
            // without reading it).
            let sending = std::thread::spawn(move || {
                let _ = writer.write_all(&wire);
            });
            let out = read_answer(&mut s);
            let _ = sending.join();
            let out = out.unwrap_or_else(|e| panic!("round {round}: the response was lost: {e}"));
            assert!(out.len() >= RESPONSE, "round {round}: {} bytes", out.len());
        }
    });
}

/// A connection that sends nothing, or only part of its first request, within
/// `first_request_timeout` is closed; one that sends its request in time is served.
pub fn server_first_request_timeout<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let mut opts: ServerOptions = server_opts();
        opts.first_request_timeout = Duration::from_millis(300);
        let srv = Srv::start(&h, Net::Tcp, opts, app.clone(), plan_inert()).await;
        let addr = tcp_addr(&srv);
        let wire = request(&[("DO", "ok")], true, Some(b""));
        let started = Instant::now();
        let mut silent = connect(addr);
        let mut partial = connect(addr);
        partial.write_all(&wire[..20]).expect("part of a request");
        for s in [&mut silent, &mut partial] {
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
            assert!(rest.is_empty(), "nothing is answered: {rest:?}");
        }
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "closed before the timeout: {:?}",
            started.elapsed()
        );
        let mut good = connect(addr);
        good.write_all(&wire).expect("send");
        let out = read_answer(&mut good).expect("served");
        assert!(out.windows(6).any(|w| w == b"ok id="));
        // Kept-alive after its first request: the first-request timeout no longer applies.
        std::thread::sleep(Duration::from_millis(400));
        good.write_all(&wire).expect("send again");
        assert!(
            read_answer(&mut good).is_ok(),
            "a served connection is kept"
        );
    });
}

/// Runs `good` well-behaved requests (each on a new connection) from two threads while
/// `attack` runs in the background until they are done; returns how many were answered.
fn served_under<F>(addr: SocketAddr, good: usize, attack: F) -> usize
where
    F: FnOnce(&AtomicBool) + Send,
{
    let wire = request(&[("DO", "ok")], false, Some(b""));
    let done = AtomicBool::new(false);
    let answered = AtomicUsize::new(0);
    std::thread::scope(|s| {
        s.spawn(|| attack(&done));
        // Let the attack fill the server first.
        std::thread::sleep(Duration::from_millis(200));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    for _ in 0..good / 2 {
                        if good_request(addr, &wire) {
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            let _ = w.join();
        }
        done.store(true, Ordering::Relaxed);
    });
    answered.into_inner()
}

const CAP: usize = 32;
const GOOD: usize = 200;

fn capped_opts() -> ServerOptions {
    let mut opts = server_opts();
    opts.max_connections = CAP;
    opts
}

/// An idle flood (connections that connect and send nothing, ten times the connection
/// cap) does not starve a well-behaved client: at the cap, a new connection takes the place
/// of one that never sent a request.
pub fn server_idle_flood_does_not_starve_real_clients<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let srv = Srv::start(&h, Net::Tcp, capped_opts(), app.clone(), plan_inert()).await;
        let addr = tcp_addr(&srv);
        let answered = served_under(addr, GOOD, |done| {
            let mut held = Vec::new();
            while !done.load(Ordering::Relaxed) && held.len() < 10 * CAP {
                if let Ok(s) = TcpStream::connect_timeout(&addr, GUARD) {
                    held.push(s);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        assert!(
            answered * 10 >= GOOD * 9,
            "{answered} of {GOOD} well-behaved requests answered under an idle flood"
        );
        assert!(srv.handle.stats().connections <= CAP);
    });
}

/// Slowloris (connections trickling a request a byte at a time) and an abort storm
/// (connections that send a request and vanish before reading the answer), together over
/// the connection cap: a well-behaved client keeps being served, and afterwards the server
/// holds nothing for them.
pub fn server_slowloris_and_abort_storm<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let srv = Srv::start(&h, Net::Tcp, capped_opts(), app.clone(), plan_inert()).await;
        let addr = tcp_addr(&srv);
        let wire = Arc::new(request(&[("DO", "ok")], false, Some(b"")));
        let answered = served_under(addr, GOOD, |done| {
            std::thread::scope(|s| {
                // Slowloris: 2 * CAP connections, one byte each every 20 ms, round robin.
                let wire_slow = Arc::clone(&wire);
                s.spawn(move || {
                    let mut slow: Vec<(TcpStream, usize)> = (0..2 * CAP)
                        .filter_map(|_| TcpStream::connect_timeout(&addr, GUARD).ok())
                        .map(|c| (c, 0))
                        .collect();
                    while !done.load(Ordering::Relaxed) {
                        for (c, at) in &mut slow {
                            if *at < wire_slow.len()
                                && c.write_all(&wire_slow[*at..*at + 1]).is_ok()
                            {
                                *at += 1;
                            }
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                });
                // Abort storm: send a request, close at once.
                let wire_abort = Arc::clone(&wire);
                s.spawn(move || {
                    while !done.load(Ordering::Relaxed) {
                        if let Ok(mut c) = TcpStream::connect_timeout(&addr, GUARD) {
                            let _ = c.write_all(&wire_abort);
                        }
                    }
                });
            });
        });
        assert!(
            answered * 10 >= GOOD * 9,
            "{answered} of {GOOD} well-behaved requests answered under slowloris and aborts"
        );
        eventually(&rt, "the server holds nothing for the attackers", || {
            let s = srv.handle.stats();
            s.requests == 0 && s.handler_tasks == 0 && s.request_entries == 0
        })
        .await;
    });
}

/// A connection whose handler has returned while the end of its response is still queued
/// (the web server reads slowly) is busy: it is not evicted for a new connection, and the
/// response arrives whole.
pub fn server_eviction_spares_a_response_on_its_way<H: Harness>() {
    // More than the kernel's socket buffers take, so that the end stays queued in the server.
    const RESPONSE: usize = 32 << 20;
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let mut opts = server_opts();
        opts.max_connections = 1;
        // The handler queues all of it and returns.
        opts.core.limits.max_buffered_output = 2 * RESPONSE;
        let srv = Srv::start(&h, Net::Tcp, opts, app.clone(), plan_inert()).await;
        let addr = tcp_addr(&srv);
        let mut slow = connect(addr);
        slow.write_all(&request(
            &[("DO", "stream"), ("RESP_BYTES", &RESPONSE.to_string())],
            true,
            Some(b""),
        ))
        .expect("send");
        // Not reading: the socket buffers fill and the server queues the rest.
        eventually(
            &rt,
            "the handler has written everything and returned",
            || app.probe.completed() == 1,
        )
        .await;
        let mut newcomer = connect(addr);
        let _ = newcomer.write_all(&request(&[("DO", "ok")], false, Some(b"")));
        assert!(
            read_answer(&mut newcomer).is_err(),
            "the only place is taken by a busy connection"
        );
        let out = read_answer(&mut slow).expect("the slow reader's response");
        assert!(out.len() >= RESPONSE, "{} bytes", out.len());
    });
}

/// On a kept-alive connection, a later request whose params trickle in gets no more than
/// `first_request_timeout` from its `BEGIN_REQUEST`: the connection is then closed.
pub fn server_request_params_timeout<H: Harness>() {
    let h = H::new();
    let rt = h.runtime();
    h.block_on(async {
        let app = TestApp::new(rt.clone());
        let mut opts = server_opts();
        opts.first_request_timeout = Duration::from_millis(300);
        let srv = Srv::start(&h, Net::Tcp, opts, app.clone(), plan_inert()).await;
        let mut c = connect(tcp_addr(&srv));
        let wire = request(&[("DO", "ok")], true, Some(b""));
        c.write_all(&wire).expect("send");
        read_answer(&mut c).expect("the first request is served");
        let started = Instant::now();
        c.write_all(&wire[..20]).expect("part of a second request");
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest);
        assert!(rest.is_empty(), "{rest:?}");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(300) && waited < GUARD,
            "closed after {waited:?}"
        );
    });
}
