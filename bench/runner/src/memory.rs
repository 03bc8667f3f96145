//! The memory check: a 1 GiB response streamed through our client and through our gateway,
//! the peak resident memory of each measured from a warmed-up baseline (`VmHWM` after
//! `clear_refs` 5). Target: growth ≤ 1 MiB — the response flows, nothing holds it.
//!
//! - Client: `stream-client` (our pooled tokio client, current-thread) against our tokio
//!   benchmark server's `/huge` path; it measures itself.
//! - Gateway: `fcgi gateway` in front of the same server; this runner reads the HTTP answer
//!   (chunked, 1 GiB of body) to its end through a 64 KiB buffer and reads the gateway's
//!   peak from `/proc`.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use crate::Config;
use crate::proc;

const GIB: u64 = 1 << 30;
/// The target: peak growth while 1 GiB flows through.
const TARGET_KIB: u64 = 1024;

struct Check {
    what: &'static str,
    bytes: u64,
    baseline_kib: u64,
    peak_kib: u64,
}

/// Both checks; the markdown table.
pub fn run(config: &Config) -> String {
    let mut t = String::from(
        "| through | bytes | baseline RSS kB | peak RSS kB | growth kB | target ≤ 1024 kB |\n|---|---:|---:|---:|---:|---|\n",
    );
    for check in [client(config), gateway(config)] {
        match check {
            Ok(c) => {
                let growth = c.peak_kib.saturating_sub(c.baseline_kib);
                eprintln!(
                    "mem   {:<28} {} bytes, peak {} kB over a baseline of {} kB",
                    c.what, c.bytes, c.peak_kib, c.baseline_kib
                );
                let _ = writeln!(
                    t,
                    "| {} | {} | {} | {} | {} | {} |",
                    c.what,
                    c.bytes,
                    c.baseline_kib,
                    c.peak_kib,
                    growth,
                    if growth <= TARGET_KIB {
                        "met"
                    } else {
                        "MISSED"
                    }
                );
            }
            Err(e) => {
                eprintln!("mem   skipped: {e}");
                let _ = writeln!(t, "| (failed: {e}) | | | | | |");
            }
        }
    }
    t
}

/// Our tokio benchmark server on a fresh port, pinned to CPU 0.
fn server(config: &Config) -> Result<(proc::Running, u16), String> {
    let port = proc::free_port();
    let mut c = Command::new(config.bin.join("ours-tokio"));
    c.arg(format!("tcp:127.0.0.1:{port}"));
    let running = proc::spawn_pinned(&c, "0")?;
    proc::wait_until("ours-tokio", || tcp_ready(port))?;
    Ok((running, port))
}

fn tcp_ready(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

fn client(config: &Config) -> Result<Check, String> {
    let (_server, port) = server(config)?;
    let out = Command::new("taskset")
        .args(["-c", "1"])
        .arg(config.bin.join("stream-client"))
        .arg(format!("tcp:127.0.0.1:{port}"))
        .output()
        .map_err(|e| format!("stream-client: {e}"))?;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|_| {
        format!(
            "stream-client: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })?;
    let field = |name: &str| report[name].as_u64().unwrap_or(0);
    Ok(Check {
        what: "our client (fcgi-tokio)",
        bytes: field("bytes"),
        baseline_kib: field("baseline_kib"),
        peak_kib: field("peak_kib"),
    })
}

fn gateway(config: &Config) -> Result<Check, String> {
    let (_server, backend) = server(config)?;
    let port = proc::free_port();
    let mut c = Command::new(&config.fcgi);
    c.arg("gateway")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--backend", &format!("tcp:127.0.0.1:{backend}")])
        .arg("--root")
        .arg(config.work.join("www"))
        .arg("--no-local-root")
        .env("RUST_LOG", "warn");
    let gateway = proc::spawn_pinned(&c, "1")?;
    proc::wait_until("fcgi gateway", || tcp_ready(port))?;
    let pid = gateway.0.id();
    let warm = get(port, "/index.php")?;
    if warm == 0 {
        return Err("the gateway's warm-up answer was empty".into());
    }
    proc::reset_peak(pid)?;
    let baseline_kib = proc::peak_rss_kib(pid).ok_or("no VmHWM")?;
    let bytes = get(port, "/huge.php")?;
    let peak_kib = proc::peak_rss_kib(pid).ok_or("no VmHWM")?;
    if bytes < GIB {
        return Err(format!("the gateway gave {bytes} bytes, not 1 GiB"));
    }
    Ok(Check {
        what: "our gateway (fcgi gateway)",
        bytes,
        baseline_kib,
        peak_kib,
    })
}

/// One HTTP/1.1 GET read to the end of the connection; the bytes received (head, chunk
/// framing and body).
fn get(port: u16, path: &str) -> Result<u64, String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut buf = vec![0; 64 * 1024];
    let mut total = 0u64;
    // Bounded: 2 GiB at most, and 30 s of silence ends it.
    while total < 2 * GIB {
        match s.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n as u64,
            Err(e) => return Err(format!("GET {path}: {e} after {total} bytes")),
        }
    }
    Err(format!("GET {path}: more than 2 GiB"))
}
