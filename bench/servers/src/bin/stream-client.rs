//! The memory check of our client: a small request to warm up (connection, buffers), then the
//! peak resident memory reset (`/proc/self/clear_refs`), a 1 GiB response streamed and thrown
//! away chunk by chunk, and the peak read again. Prints one JSON line:
//! `{"bytes": N, "baseline_kib": B, "peak_kib": P}`.
//!
//! Usage: `stream-client tcp:HOST:PORT|unix:PATH` (a benchmark server with `/huge`).
use std::time::Duration;

use fcgi_bench_servers::{HUGE, Listen, listen_arg};
use fcgi_tokio::Backend;
use fcgi_tokio::client::{ClientOptions, ClientRequest};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let backend = match listen_arg() {
        Listen::Tcp(addr) => Backend::Tcp(addr),
        Listen::Unix(path) => Backend::Unix(path),
    };
    let client = fcgi_tokio::client(backend, ClientOptions::default());
    let request = |path: &str| ClientRequest::php_fpm("GET", "/srv", path, "");
    let warm = match client.send(request("/index.php")).await {
        Ok(response) => response.collect(1 << 20).await,
        Err(e) => Err(e),
    };
    if let Err(e) = warm {
        fail(&format!("warm-up request: {e}"));
    }
    if let Err(e) = std::fs::write("/proc/self/clear_refs", "5") {
        fail(&format!("cannot reset the peak RSS: {e}"));
    }
    let baseline = peak_kib();
    let mut response = match client.send(request("/huge.php")).await {
        Ok(response) => response,
        Err(e) => fail(&format!("1 GiB request: {e}")),
    };
    let mut bytes = 0u64;
    loop {
        match tokio::time::timeout(Duration::from_secs(30), response.chunk()).await {
            Ok(Some(Ok(piece))) => bytes += piece.len() as u64,
            Ok(Some(Err(e))) => fail(&format!("1 GiB response: {e}")),
            Ok(None) => break,
            Err(_) => fail("1 GiB response: silent for 30 s"),
        }
    }
    if bytes < HUGE as u64 {
        fail(&format!("1 GiB response: only {bytes} bytes"));
    }
    println!(
        "{{\"bytes\": {bytes}, \"baseline_kib\": {baseline}, \"peak_kib\": {}}}",
        peak_kib()
    );
}

fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

fn fail(why: &str) -> ! {
    eprintln!("stream-client: {why}");
    std::process::exit(1)
}
