//! The soak benchmark: does a server (or a client pool) that has lived through a million
//! short connections still cost what a fresh one does?
//!
//! Run by each adapter's `soak` bench (`cargo bench -p fcgi-tokio --bench soak`,
//! `cargo bench -p fcgi-smol --bench soak`), generic over the adapter's [`Harness`].
//!
//! **Server soak.** The bench re-executes itself as the server (a hello application, a
//! single-threaded executor, pinned to CPU 0); the load runs in the bench process, pinned to
//! CPU 1, on plain blocking sockets. After a warm-up: (A) keep-alive load on a Unix socket,
//! 16 connections; (B) one million new-connection requests over TCP (one request each, no
//! keep-conn: nginx's default); (C) the load of A again, on the same server process. Each
//! phase reports requests/s, the server's CPU per request (utime + stime from /proc) and its
//! resident memory; the summary gives C ÷ A.
//!
//! **Client soak.** The server child again; the bench process runs our pooled client
//! (16 requests in flight): (A) keep-alive requests; (B) one million requests through a
//! listener whose server closes every connection after one request (the pool finds each
//! connection dead and opens another); (C) A again, on the same client. CPU and memory are
//! the bench process's own.
//!
//! Environment: `FCGI_SOAK_CONNECTIONS` (phase B's count, default 1,000,000),
//! `FCGI_SOAK_SECS` (phases A and C, default 5).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fcgi_driver::client::{Client, ClientOptions, ClientRequest, Multiplexing};
use fcgi_driver::runtime::Runtime;
use fcgi_driver::server::{Request, Response, Server, ServerOptions};

use crate::behaviour::Harness;
use crate::behaviour::fixture::{read_answer, whole_request};

const SERVE_ENV: &str = "FCGI_SOAK_SERVE";
const KEEPALIVE_CONNECTIONS: usize = 16;
const NEW_CONNECTION_THREADS: usize = 8;
const IN_FLIGHT: usize = 16;

/// The bench's `main`: serves when started as the server child, runs both soaks otherwise.
pub fn main<H: Harness>(adapter: &str) {
    if let Ok(dir) = std::env::var(SERVE_ENV) {
        serve::<H>(Path::new(&dir));
        return;
    }
    let connections = env_usize("FCGI_SOAK_CONNECTIONS", 1_000_000);
    let secs = env_usize("FCGI_SOAK_SECS", 5) as u64;
    let phase = Duration::from_secs(secs);
    println!("# soak: {adapter}, {connections} short connections, keep-alive phases of {secs} s");
    server_soak(adapter, connections, phase);
    client_soak::<H>(adapter, connections, phase);
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// Pins the calling thread (and the threads it starts afterwards) to `cpu`, when the
/// machine has it.
fn pin(cpu: usize) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    let _ = rustix::thread::sched_setaffinity(None, &set);
}

async fn hello(_req: Request, mut out: Response) -> u32 {
    match out.stdout("Content-Type: text/plain\r\n\r\nhello\n").await {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

/// The server child: hello on TCP, on a Unix socket in `dir`, and on a second TCP listener
/// that closes every connection after one request; prints the addresses, serves until its
/// stdin closes.
fn serve<H: Harness>(dir: &Path) {
    pin(0);
    let h = H::new_single_threaded();
    let rt = h.runtime();
    h.block_on(async {
        let (tcp, tcp_addr) = h.bind_tcp().await.expect("bind tcp");
        let unix_path = dir.join("soak.sock");
        let unix = h.bind_unix(&unix_path).await.expect("bind unix");
        let (closing, closing_addr) = h.bind_tcp().await.expect("bind tcp");
        let mut one = ServerOptions::default();
        one.max_requests_per_connection = Some(1);
        let a = Server::new(rt.clone(), ServerOptions::default());
        let b = Server::new(rt.clone(), ServerOptions::default());
        let c = Server::new(rt.clone(), one);
        rt.spawn(Box::pin(async move {
            let _ = b.serve(unix, hello).await;
        }));
        rt.spawn(Box::pin(async move {
            let _ = c.serve(closing, hello).await;
        }));
        println!("READY {tcp_addr} {closing_addr}");
        let _ = io::stdout().flush();
        // Exits with the parent: stdin closes when the bench ends.
        std::thread::spawn(|| {
            let _ = io::stdin().read_to_end(&mut Vec::new());
            std::process::exit(0);
        });
        let _ = a.serve(tcp, hello).await;
    });
}

/// The server child, stopped (by PID) when dropped.
struct ServerChild {
    child: Child,
    tcp: SocketAddr,
    closing: SocketAddr,
    unix: PathBuf,
    _dir: tempfile::TempDir,
}

impl ServerChild {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let exe = std::env::current_exe().expect("the bench binary");
        let mut child = Command::new(exe)
            .env(SERVE_ENV, dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the server child");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the server child's address line");
        let mut words = line.split_whitespace().skip(1);
        let mut addr = || -> SocketAddr {
            words
                .next()
                .and_then(|w| w.parse().ok())
                .expect("the server child's addresses")
        };
        let (tcp, closing) = (addr(), addr());
        Self {
            child,
            tcp,
            closing,
            unix: dir.path().join("soak.sock"),
            _dir: dir,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time (user + system) and resident memory of a process, from /proc.
#[derive(Debug, Clone, Copy)]
struct Usage {
    cpu: Duration,
    rss: usize,
}

fn usage(pid: &str) -> Usage {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 (1-based), 12 and 13 after the state field.
    let hz = 100; // USER_HZ on Linux
    let cpu = Duration::from_millis((ticks(11) + ticks(12)) * 1000 / hz);
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    Usage {
        cpu,
        rss: pages * 4096,
    }
}

/// One phase's figures.
#[derive(Debug, Clone, Copy)]
struct Phase {
    requests: usize,
    errors: usize,
    wall: Duration,
    cpu: Duration,
    rss: usize,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.wall.as_secs_f64()
    }

    fn cpu_per_request_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.requests.max(1) as f64
    }

    fn print(&self, name: &str) {
        println!(
            "{name:<34} {:>9} req {:>6} err {:>10.0} req/s {:>8.2} µs CPU/req {:>8} KiB RSS",
            self.requests,
            self.errors,
            self.rate(),
            self.cpu_per_request_us(),
            self.rss >> 10
        );
    }
}

fn measure(pid: &str, work: impl FnOnce() -> (usize, usize)) -> Phase {
    let before = usage(pid);
    let start = Instant::now();
    let (requests, errors) = work();
    let wall = start.elapsed();
    let after = usage(pid);
    Phase {
        requests,
        errors,
        wall,
        cpu: after.cpu.saturating_sub(before.cpu),
        rss: after.rss,
    }
}

fn summary(what: &str, a: &Phase, c: &Phase) {
    println!(
        "{what}: after vs fresh: {:.3}x requests/s, {:.3}x CPU per request, RSS {:+} KiB \
         (targets: >= 0.95x, <= 1.05x, <= +1024 KiB)",
        c.rate() / a.rate(),
        c.cpu_per_request_us() / a.cpu_per_request_us(),
        (c.rss as i64 - a.rss as i64) / 1024
    );
}

/// The bytes of one Responder request (empty body), with or without keep-conn.
fn request_bytes(keep_conn: bool) -> Vec<u8> {
    let params = [
        ("REQUEST_METHOD", "GET"),
        ("SCRIPT_NAME", "/hello"),
        ("REQUEST_URI", "/hello"),
        ("QUERY_STRING", ""),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("SERVER_NAME", "localhost"),
    ];
    whole_request(&params, keep_conn, b"")
}

/// Keep-alive load on the Unix socket for `phase`: [`KEEPALIVE_CONNECTIONS`] connections,
/// one request in flight on each, from 4 threads on CPU 1.
fn keepalive_load(path: &Path, phase: Duration) -> (usize, usize) {
    let request = request_bytes(true);
    let done = AtomicUsize::new(0);
    let errors = AtomicUsize::new(0);
    let deadline = Instant::now() + phase;
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                pin(1);
                let mut conns: Vec<_> = (0..KEEPALIVE_CONNECTIONS / 4)
                    .filter_map(|_| std::os::unix::net::UnixStream::connect(path).ok())
                    .collect();
                while Instant::now() < deadline && !conns.is_empty() {
                    for c in &mut conns {
                        if c.write_all(&request).is_err() {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    let mut ok = 0;
                    conns.retain_mut(|c| {
                        let answered = read_answer(c).is_ok();
                        ok += usize::from(answered);
                        if !answered {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                        answered
                    });
                    done.fetch_add(ok, Ordering::Relaxed);
                }
            });
        }
    });
    (done.into_inner(), errors.into_inner())
}

/// `n` requests, each on a new TCP connection without keep-conn, from
/// [`NEW_CONNECTION_THREADS`] threads on CPU 1.
fn new_connection_load(addr: SocketAddr, n: usize) -> (usize, usize) {
    let request = request_bytes(false);
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let errors = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..NEW_CONNECTION_THREADS {
            s.spawn(|| {
                pin(1);
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    let ok = std::net::TcpStream::connect(addr).is_ok_and(|mut c| {
                        let _ = c.set_nodelay(true);
                        c.write_all(&request).is_ok() && read_answer(&mut c).is_ok()
                    });
                    if ok {
                        done.fetch_add(1, Ordering::Relaxed);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    (done.into_inner(), errors.into_inner())
}

fn server_soak(adapter: &str, connections: usize, phase: Duration) {
    let server = ServerChild::start();
    let pid = server.pid().to_string();
    println!("\n## server ({adapter}): the server's CPU and memory");
    keepalive_load(&server.unix, Duration::from_secs(2)); // warm-up
    let a = measure(&pid, || keepalive_load(&server.unix, phase));
    a.print("A keep-alive, fresh");
    let b = measure(&pid, || new_connection_load(server.tcp, connections));
    b.print("B new connection per request");
    std::thread::sleep(Duration::from_secs(1));
    let c = measure(&pid, || keepalive_load(&server.unix, phase));
    c.print("C keep-alive, after B");
    summary("server", &a, &c);
}

/// `phase`'s worth (or `count`) of requests through `client`, [`IN_FLIGHT`] at a time.
fn client_load<H: Harness>(
    h: &H,
    client: &Arc<Client<H::Rt, H::Connector>>,
    phase: Option<Duration>,
    count: usize,
) -> (usize, usize) {
    let rt = h.runtime();
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let deadline = phase.map(|p| Instant::now() + p);
    h.block_on(async {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        for _ in 0..IN_FLIGHT {
            let (client, next, done, errors, tx) = (
                Arc::clone(client),
                Arc::clone(&next),
                Arc::clone(&done),
                Arc::clone(&errors),
                tx.clone(),
            );
            rt.spawn(Box::pin(async move {
                loop {
                    let more = match deadline {
                        Some(d) => Instant::now() < d,
                        None => next.fetch_add(1, Ordering::Relaxed) < count,
                    };
                    if !more {
                        break;
                    }
                    let request = ClientRequest::responder()
                        .param("REQUEST_METHOD", "GET")
                        .param("SCRIPT_NAME", "/hello");
                    let ok = match client.send(request).await {
                        Ok(resp) => resp.collect(1 << 16).await.is_ok(),
                        Err(_) => false,
                    };
                    let counter = if ok { &done } else { &errors };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                let _ = tx.send(());
            }));
        }
        drop(tx);
        // Every task sends once when it ends; the channel closes after the last.
        let waiter = std::thread::spawn(move || while rx.recv().is_ok() {});
        while !waiter.is_finished() {
            rt.sleep(Duration::from_millis(20)).await;
        }
    });
    (done.load(Ordering::Relaxed), errors.load(Ordering::Relaxed))
}

fn client_soak<H: Harness>(adapter: &str, connections: usize, phase: Duration) {
    let server = ServerChild::start();
    pin(1);
    let h = H::new();
    let mut opts = ClientOptions::default();
    opts.multiplexing = Multiplexing::Off;
    opts.max_connections = IN_FLIGHT;
    let keep = Arc::new(Client::new(
        h.runtime(),
        h.tcp_connector(server.tcp),
        opts.clone(),
    ));
    let closing = Arc::new(Client::new(
        h.runtime(),
        h.tcp_connector(server.closing),
        opts,
    ));
    let me = std::process::id().to_string();
    println!("\n## client pool ({adapter}): the bench process's CPU and memory");
    client_load(&h, &keep, Some(Duration::from_secs(2)), 0); // warm-up
    let a = measure(&me, || client_load(&h, &keep, Some(phase), 0));
    a.print("A keep-alive, fresh");
    let b = measure(&me, || client_load(&h, &closing, None, connections));
    b.print("B through closed connections");
    std::thread::sleep(Duration::from_secs(1));
    let c = measure(&me, || client_load(&h, &keep, Some(phase), 0));
    c.print("C keep-alive, after B");
    summary("client", &a, &c);
    let stats = closing.stats();
    println!("client stats after B: {stats:?}");
    drop(server);
}
