//! Our gateway next to nginx, side by side in one run: both in front of the same FastCGI
//! application (our tokio server answering a fixed 13-byte body) over TCP loopback with
//! kept-alive FastCGI connections, driven by the same HTTP/1.1 load (16 kept-alive client
//! connections). Reported: requests per second, and the CPU the proxy itself spent per
//! request (nginx's worker process vs our gateway's thread, read from `/proc`).
//!
//! ```text
//! cargo bench -p fcgi-http --bench vs_nginx                    # ~4 s per side
//! FCGI_BENCH_SECS=1 cargo bench -p fcgi-http --bench vs_nginx  # quick look
//! ```
//!
//! nginx runs its stock single worker with `fastcgi_keep_conn on` and an upstream `keepalive`
//! pool (fcgi-testkit's nginx peer, which sends 16 params); our gateway runs on one
//! current-thread tokio runtime (hyper HTTP/1.1 + `Gateway`, which sends nginx's full
//! `fastcgi_params` set plus every header). The application and the load generator run on
//! their own threads in this process. Needs nginx (`apt-get install nginx-light`); without it
//! the bench says so and exits.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // a bench binary

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fcgi_http::gateway::{Gateway, GatewayConfig, LocalRoot};
use fcgi_http::request::{ConnInfo, ScriptResolution};
use fcgi_testkit::app::AppAddr;
use fcgi_tokio::client::{ClientOptions, Multiplexing};
use fcgi_tokio::server::{Request as FcgiRequest, Response as FcgiResponse, ServerOptions};
use fcgi_tokio::{Backend, Listener};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};

const CGI_HELLO: &[u8] =
    b"Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!";
const IN_FLIGHT: usize = 16;

fn secs() -> f64 {
    std::env::var("FCGI_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4.0)
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn fcgi_hello(_req: FcgiRequest, mut out: FcgiResponse) -> u32 {
    match out.stdout(Bytes::from_static(CGI_HELLO)).await {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

/// utime + stime of `/proc/<path>/stat`, in clock ticks (100 per second).
fn cpu_ticks(stat_path: &str) -> u64 {
    let stat = std::fs::read_to_string(stat_path).unwrap();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// The pid of nginx's (only) worker: the child of the master.
fn nginx_worker(master: u32) -> u32 {
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let ppid: u32 = rest.split(' ').nth(1).unwrap().parse().unwrap();
        if ppid == master {
            return pid;
        }
    }
    panic!("nginx worker not found");
}

/// `IN_FLIGHT` kept-alive connections for `secs()`; requests per second.
fn load(addr: SocketAddr) -> f64 {
    current_thread().block_on(async move {
        let done = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs_f64(secs());
        let mut tasks = Vec::new();
        for _ in 0..IN_FLIGHT {
            let done = Arc::clone(&done);
            tasks.push(tokio::spawn(async move {
                // nginx closes a client connection after `keepalive_requests` (1000): then
                // this connects again, as a browser would.
                while Instant::now() < deadline {
                    let stream = TcpStream::connect(addr).await.unwrap();
                    stream.set_nodelay(true).unwrap();
                    let (mut sender, conn) =
                        hyper::client::conn::http1::handshake(TokioIo::new(stream))
                            .await
                            .unwrap();
                    tokio::spawn(conn);
                    while Instant::now() < deadline {
                        if sender.ready().await.is_err() {
                            break;
                        }
                        let request = http::Request::get("/index.php?a=1&b=two")
                            .header("host", "localhost")
                            .header("user-agent", "bench/1")
                            .header("accept", "*/*")
                            .body(Empty::<Bytes>::new())
                            .unwrap();
                        let Ok(response) = sender.send_request(request).await else {
                            break;
                        };
                        assert_eq!(response.status(), 200);
                        let body = response.into_body().collect().await.unwrap().to_bytes();
                        assert_eq!(&body[..], b"Hello, world!");
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        let start = Instant::now();
        for t in tasks {
            t.await.unwrap();
        }
        done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
    })
}

/// Starts our gateway on its own thread; its address and the `/proc` stat path of the thread.
fn start_gateway(app: SocketAddr) -> (SocketAddr, String) {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new().name("gateway".into());
    let _ = thread.spawn(move || {
        let me = std::fs::read_link("/proc/thread-self").unwrap();
        current_thread().block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let mut opts = ClientOptions::default();
            opts.multiplexing = Multiplexing::Off; // as nginx: one request per connection
            let gateway = Gateway::new(fcgi_tokio::client(Backend::Tcp(app), opts), {
                let mut config = GatewayConfig::new(
                    "/var/www/html",
                    ScriptResolution::FrontController("index.php".into()),
                );
                // The backend is a Rust test app, not files.
                config.local_root = LocalRoot::None;
                config
            })
            .errors_as_responses();
            tx.send((addr, format!("{}/stat", me.display()))).unwrap();
            loop {
                let (stream, peer) = listener.accept().await.unwrap();
                stream.set_nodelay(true).unwrap();
                let conn = ConnInfo::new(addr, peer, false);
                let service = tower::ServiceExt::map_request(
                    gateway.clone(),
                    move |mut r: http::Request<hyper::body::Incoming>| {
                        r.extensions_mut().insert(conn);
                        r
                    },
                );
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                        .await;
                });
            }
        });
    });
    let (addr, stat) = rx.recv().unwrap();
    (addr, format!("/proc/{}", stat.trim_start_matches("/proc/")))
}

fn measure(name: &str, addr: SocketAddr, stat_path: &str) -> (f64, f64) {
    let before = cpu_ticks(stat_path);
    let rps = load(addr);
    let ticks = cpu_ticks(stat_path) - before;
    let requests = rps * secs();
    let cpu_us = ticks as f64 * 10_000.0 / requests;
    println!("{name:<28} {rps:>10.0} req/s   proxy CPU {cpu_us:>6.1} µs/request");
    (rps, cpu_us)
}

fn main() {
    // The application: our FastCGI server on its own thread.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        current_thread().block_on(async move {
            let listener = Listener::bind_tcp("127.0.0.1:0".parse().unwrap())
                .await
                .unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let _ = fcgi_tokio::server(ServerOptions::default())
                .serve(listener, fcgi_hello)
                .await;
        });
    });
    let app: SocketAddr = rx.recv().unwrap();

    let Some(nginx) = fcgi_testkit::peers::nginx::start(
        &AppAddr::Tcp(app),
        fcgi_testkit::peers::nginx::Options { keep_conn: true },
    ) else {
        println!("nginx is not installed: nothing to compare with (apt-get install nginx-light)");
        return;
    };
    let worker = nginx_worker(nginx.pid());
    let (ours, ours_stat) = start_gateway(app);

    // Warm both up, then measure each twice, alternating.
    println!("{IN_FLIGHT} connections in flight, {:.0} s per run", secs());
    let mut n = Vec::new();
    let mut g = Vec::new();
    for _ in 0..2 {
        n.push(measure(
            "nginx → FastCGI app",
            nginx.addr(),
            &format!("/proc/{worker}/stat"),
        ));
        g.push(measure("fcgi-http gateway → FastCGI app", ours, &ours_stat));
    }
    let best = |v: &[(f64, f64)]| {
        v.iter()
            .fold((0.0f64, f64::MAX), |a, b| (a.0.max(b.0), a.1.min(b.1)))
    };
    let (n_rps, n_cpu) = best(&n);
    let (g_rps, g_cpu) = best(&g);
    println!(
        "best of 2: gateway {:.2}× nginx's requests/s, {:.2}× nginx's proxy CPU per request",
        g_rps / n_rps,
        g_cpu / n_cpu
    );
}
