//! Requests per second of our tokio server and client over a Unix socket with keep-alive,
//! with and without multiplexing, next to a raw socket ping-pong of the same message sizes
//! measured in the same run.
//!
//! ```text
//! cargo bench -p fcgi-tokio --bench throughput            # full run (~30 s)
//! FCGI_BENCH_SECS=1 cargo bench -p fcgi-tokio --bench throughput   # quick look
//! ```
//!
//! Everything runs on one current-thread tokio runtime, client and server alike, so requests
//! per second is the inverse of the CPU both sides spend on a request: the ratio to the raw
//! ping-pong is the protocol's overhead over the bare socket round trip.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a bench binary: failing loudly is the point

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fcgi_core::Params;
use fcgi_tokio::client::{ClientOptions, ClientRequest, Multiplexing};
use fcgi_tokio::server::{Request, Response, ServerOptions};
use fcgi_tokio::{Backend, Listener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

const BODY: &[u8] =
    b"Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!";

/// A typical nginx request's params (26 variables, ~600 bytes on the wire).
fn nginx_params() -> Params {
    let mut p = Params::new();
    for (n, v) in [
        ("QUERY_STRING", "a=1&b=two"),
        ("REQUEST_METHOD", "GET"),
        ("CONTENT_TYPE", ""),
        ("CONTENT_LENGTH", ""),
        ("SCRIPT_NAME", "/index.php"),
        ("REQUEST_URI", "/index.php?a=1&b=two"),
        ("DOCUMENT_URI", "/index.php"),
        ("DOCUMENT_ROOT", "/var/www/html"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("REQUEST_SCHEME", "http"),
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("SERVER_SOFTWARE", "nginx/1.22.1"),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("REMOTE_PORT", "47101"),
        ("REMOTE_USER", ""),
        ("SERVER_ADDR", "127.0.0.1"),
        ("SERVER_PORT", "80"),
        ("SERVER_NAME", "localhost"),
        ("REDIRECT_STATUS", "200"),
        ("SCRIPT_FILENAME", "/var/www/html/index.php"),
        ("HTTP_HOST", "localhost"),
        (
            "HTTP_USER_AGENT",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        (
            "HTTP_ACCEPT",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        ("HTTP_ACCEPT_LANGUAGE", "en-US,en;q=0.5"),
        ("HTTP_ACCEPT_ENCODING", "gzip, deflate, br"),
        ("HTTP_CONNECTION", "keep-alive"),
    ] {
        p.push(n.as_bytes(), v.as_bytes()).expect("short pair");
    }
    p
}

async fn hello(_req: Request, mut out: Response) -> u32 {
    match out.stdout(Bytes::from_static(BODY)).await {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

fn secs() -> Duration {
    let s = std::env::var("FCGI_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4.0);
    Duration::from_secs_f64(s)
}

/// Runs `concurrency` loops of `one` for the configured time; returns requests per second.
async fn measure<F, Fut>(concurrency: usize, one: F) -> f64
where
    F: Fn() -> Fut + Clone + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + secs();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (one, done) = (one.clone(), Arc::clone(&done));
        tasks.push(tokio::task::spawn_local(async move {
            while Instant::now() < until {
                one().await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.expect("bench task");
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// The same exchange as bare bytes: request-sized message in, response-sized message out.
async fn raw_ping_pong(
    dir: &std::path::Path,
    concurrency: usize,
    req_len: usize,
    resp_len: usize,
) -> io::Result<f64> {
    let path = dir.join("raw.sock");
    let listener = UnixListener::bind(&path)?;
    tokio::task::spawn_local(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::task::spawn_local(async move {
                let mut req = vec![0u8; req_len];
                let resp = vec![b'r'; resp_len];
                while s.read_exact(&mut req).await.is_ok() {
                    if s.write_all(&resp).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let mut conns = Vec::new();
    for _ in 0..concurrency {
        conns.push(Arc::new(tokio::sync::Mutex::new(
            UnixStream::connect(&path).await?,
        )));
    }
    let next = Arc::new(AtomicU64::new(0));
    let rps = measure(concurrency, move || {
        let i = next.fetch_add(1, Ordering::Relaxed) as usize % conns.len();
        let conn = Arc::clone(&conns[i]);
        async move {
            let mut s = conn.lock().await;
            let req = vec![b'q'; req_len];
            let mut resp = vec![0u8; resp_len];
            s.write_all(&req).await.expect("raw write");
            s.read_exact(&mut resp).await.expect("raw read");
        }
    })
    .await;
    Ok(rps)
}

async fn ours(
    dir: &std::path::Path,
    name: &str,
    concurrency: usize,
    multiplex: bool,
) -> io::Result<f64> {
    let path = dir.join(format!("{name}.sock"));
    let mut sopts = ServerOptions::default();
    sopts.core.multiplex = multiplex;
    let server = fcgi_tokio::server(sopts);
    let listener = Listener::bind_unix(&path)?;
    tokio::task::spawn_local(async move {
        let _ = server.serve(listener, hello).await;
    });
    let mut copts = ClientOptions::default();
    copts.multiplexing = if multiplex {
        Multiplexing::On(64)
    } else {
        Multiplexing::Off
    };
    copts.max_connections = if multiplex { 1 } else { concurrency };
    let client = fcgi_tokio::client(Backend::Unix(path), copts);
    let params = nginx_params();
    let rps = measure(concurrency, move || {
        let client = client.clone();
        let req = ClientRequest::responder().params_from(params.clone());
        async move {
            let resp = client.send(req).await.expect("send");
            let (out, end) = resp.collect(1 << 16).await.expect("response");
            assert_eq!((out.len(), end.app_status), (BODY.len(), 0));
        }
    })
    .await;
    Ok(rps)
}

fn main() -> io::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(()); // `cargo test --benches` probes with --list; nothing to list
    }
    let dir = std::env::temp_dir().join(format!("fcgi-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    // Wire sizes of one exchange of `ours`: BEGIN 16 + PARAMS (padded) + 2 empty records,
    // and STDOUT (padded) + empty STDOUT + END_REQUEST.
    let params_len = nginx_params().wire_bytes().len();
    let req_len = 16 + 8 + params_len.div_ceil(8) * 8 + 8 + 8;
    let resp_len = 8 + BODY.len().div_ceil(8) * 8 + 8 + 16;
    println!(
        "message sizes: request {req_len} bytes, response {resp_len} bytes; {:.1} s per figure",
        secs().as_secs_f64()
    );
    println!(
        "{:<44} {:>12} {:>14}",
        "scenario (one thread, Unix socket)", "requests/s", "raw / ours"
    );
    local.block_on(&rt, async {
        for concurrency in [1usize, 16] {
            let raw = raw_ping_pong(&dir, concurrency, req_len, resp_len).await?;
            let _ = std::fs::remove_file(dir.join("raw.sock"));
            println!(
                "{:<44} {:>12.0} {:>14}",
                format!("raw ping-pong, {concurrency} connection(s)"),
                raw,
                "1.00"
            );
            let plain = ours(&dir, &format!("plain{concurrency}"), concurrency, false).await?;
            println!(
                "{:<44} {:>12.0} {:>14.2}",
                format!("fcgi client+server, {concurrency} in flight, no mux"),
                plain,
                raw / plain
            );
            if concurrency > 1 {
                let mux = ours(&dir, &format!("mux{concurrency}"), concurrency, true).await?;
                println!(
                    "{:<44} {:>12.0} {:>14.2}",
                    format!("fcgi client+server, {concurrency} in flight, mux (1 conn)"),
                    mux,
                    raw / mux
                );
            }
        }
        Ok::<(), io::Error>(())
    })?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
