//! The gateways side by side: `wrk` → proxy → the same FastCGI application, for our gateway
//! (`fcgi gateway`) and nginx (`fastcgi_pass` with `fastcgi_keep_conn on` and an upstream
//! `keepalive` pool), each fresh per run, `repeat` rounds with the order reversed every other
//! round.
//!
//! The proxy is pinned to CPU 0 alone; the application and `wrk` (one thread, 16 kept-alive
//! HTTP/1.1 connections) share CPU 1. The application is our tokio benchmark server, run
//! twice: multiplexing (our gateway's client then batches the requests of its HTTP
//! connections on fewer FastCGI connections, which nginx cannot) and not (as php-fpm). Not C
//! libfcgi: libfcgi writes its empty `STDOUT` and its `END_REQUEST` separately, and nginx,
//! done at the empty `STDOUT`, then cannot keep the connection — it opened a new one per
//! request (`strace -c`: one `socket`, `connect` and `close` per request), which would count
//! against nginx. With ours both proxies keep their connections (two `writev` and two
//! `recvfrom` per request each). The figure that matters is the proxy's CPU
//! per request, read from `/proc` (nginx: master and its one worker); requests/s and the
//! latency percentiles are reported beside it. Both proxies send their full parameter set
//! (nginx: Debian's `fastcgi_params` + `SCRIPT_FILENAME`; ours: the same set and every
//! header), neither logs each request (nginx `access_log off`, ours `RUST_LOG=warn`), neither
//! looks at the file system (nginx has no `try_files` here, ours `--no-local-root`).

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::Config;
use crate::proc::{self, Running};

/// One measured run of a proxy.
#[derive(Clone, Default)]
struct GatewayRun {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_us: f64,
    errors: u64,
}

const PROXIES: &[&str] = &["ours (fcgi gateway)", "nginx"];
/// The application both ways: multiplexing (our gateway's client then batches requests on
/// its FastCGI connections, which nginx cannot) and not (as php-fpm).
const APPLICATIONS: &[(&str, bool)] = &[("multiplexing", true), ("not multiplexing", false)];
/// The application behind both proxies (a binary of `bench/servers`).
const APPLICATION: &str = "ours-tokio";
const CONNECTIONS: u32 = 16;

/// Runs both proxies `config.repeat` times against each application; the markdown table.
pub fn run(config: &Config) -> String {
    let Some(wrk) = which("wrk") else {
        return "wrk is not installed (`apt-get install wrk`): section skipped\n".into();
    };
    let nginx = PathBuf::from("/usr/sbin/nginx");
    let mut out = String::new();
    for &(label, multiplexing) in APPLICATIONS {
        let mut runs: Vec<Vec<GatewayRun>> = vec![Vec::new(); PROXIES.len()];
        for round in 0..config.repeat {
            let mut order: Vec<usize> = (0..PROXIES.len()).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for index in order {
                let result = if index == 1 && !nginx.exists() {
                    Err("nginx is not installed (`apt-get install nginx-light`)".to_owned())
                } else {
                    measure(config, index, &nginx, &wrk, multiplexing)
                };
                match result {
                    Ok(run) => {
                        eprintln!(
                            "gate  {:<28} {label:<18} {:>9.0} req/s  p99 {:>7.3} ms  {:>7.2} us CPU/req  {} errors",
                            PROXIES[index], run.rps, run.p99_ms, run.cpu_us, run.errors
                        );
                        runs[index].push(run);
                    }
                    Err(e) => eprintln!("gate  {:<28} {label:<18} skipped: {e}", PROXIES[index]),
                }
            }
        }
        let _ = writeln!(out, "Application {label}:\n");
        out.push_str(&table(&runs));
        out.push('\n');
    }
    out
}

fn table(runs: &[Vec<GatewayRun>]) -> String {
    let means: Vec<Option<GatewayRun>> = runs.iter().map(|r| mean(r)).collect();
    let mut t = String::from(
        "| proxy | req/s | p50 ms | p99 ms | proxy CPU µs/req | req/s ÷ nginx | CPU ÷ nginx | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let nginx = means[1].clone();
    for (name, m) in PROXIES.iter().zip(&means) {
        let Some(m) = m else { continue };
        let (rps, cpu) = nginx.as_ref().map_or(("—".into(), "—".into()), |n| {
            (
                format!("{:.2}×", m.rps / n.rps),
                format!("{:.2}×", m.cpu_us / n.cpu_us),
            )
        });
        let _ = writeln!(
            t,
            "| {name} | {:.0} | {:.3} | {:.3} | {:.1} | {rps} | {cpu} | {} |",
            m.rps, m.p50_ms, m.p99_ms, m.cpu_us, m.errors
        );
    }
    t
}

fn mean(runs: &[GatewayRun]) -> Option<GatewayRun> {
    if runs.is_empty() {
        return None;
    }
    let n = runs.len() as f64;
    Some(GatewayRun {
        rps: runs.iter().map(|r| r.rps).sum::<f64>() / n,
        p50_ms: runs.iter().map(|r| r.p50_ms).sum::<f64>() / n,
        p99_ms: runs.iter().map(|r| r.p99_ms).sum::<f64>() / n,
        cpu_us: runs.iter().map(|r| r.cpu_us).sum::<f64>() / n,
        errors: runs.iter().map(|r| r.errors).sum(),
    })
}

/// A fresh application and proxy, one check that the proxy answers, a warm-up, the run.
fn measure(
    config: &Config,
    index: usize,
    nginx: &Path,
    wrk: &Path,
    multiplexing: bool,
) -> Result<GatewayRun, String> {
    let backend_port = proc::free_port();
    let mut app = Command::new(config.bin.join(APPLICATION));
    app.arg(format!("tcp:127.0.0.1:{backend_port}"));
    if !multiplexing {
        app.env("NO_MUX", "1");
    }
    let _app = proc::spawn_pinned(&app, "1")?;
    proc::wait_until("the application", || tcp_ready(backend_port))?;

    let port = proc::free_port();
    let root = config.work.join("www");
    let proxy = if index == 0 {
        let mut c = Command::new(&config.fcgi);
        c.arg("gateway")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--backend", &format!("tcp:127.0.0.1:{backend_port}")])
            .arg("--root")
            .arg(&root)
            .arg("--no-local-root")
            .args(["--backend-connections", &CONNECTIONS.to_string()])
            .env("RUST_LOG", "warn");
        c
    } else {
        let conf = nginx_conf(&config.work, port, backend_port, &root)?;
        let mut c = Command::new(nginx);
        c.arg("-p").arg(&config.work).arg("-c").arg(conf);
        c
    };
    let proxy: Running = proc::spawn_pinned(&proxy, "0")?;
    proc::wait_until(PROXIES[index], || tcp_ready(port))?;
    check_answer(port)?;
    let url = format!("http://127.0.0.1:{port}/index.php");
    // Warm-up: connections opened on both sides, the result thrown away.
    run_wrk(wrk, &url, 1.0)?;
    let pgid = proxy.0.id();
    let before = proc::group_ticks(pgid);
    let mut run = run_wrk(wrk, &url, config.secs)?;
    let after = proc::group_ticks(pgid);
    let requests = run.rps * config.secs;
    if requests < 1.0 {
        return Err("no request answered".into());
    }
    run.cpu_us = after.saturating_sub(before) as f64 / config.ticks * 1e6 / requests;
    Ok(run)
}

fn tcp_ready(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// One request by hand: the proxy must answer 200 with the application's body, or the
/// numbers would measure error pages.
fn check_answer(port: u16) -> Result<(), String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET /index.php HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let _ = s.take(64 * 1024).read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    if text.starts_with("HTTP/1.1 200") && text.contains("hello") {
        Ok(())
    } else {
        Err(format!("unexpected answer: {text:.200}"))
    }
}

fn nginx_conf(work: &Path, port: u16, backend: u16, root: &Path) -> Result<PathBuf, String> {
    let path = work.join(format!("nginx-{port}.conf"));
    let w = work.display();
    let text = format!(
        "daemon off;\nworker_processes 1;\npid {w}/nginx-{port}.pid;\nerror_log {w}/nginx-error.log;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n  access_log off;\n\
         client_body_temp_path {w}/client_body;\n  proxy_temp_path {w}/proxy;\n  fastcgi_temp_path {w}/fastcgi;\n\
         uwsgi_temp_path {w}/uwsgi;\n  scgi_temp_path {w}/scgi;\n\
         upstream app {{ server 127.0.0.1:{backend}; keepalive {CONNECTIONS}; }}\n\
         server {{\n    listen 127.0.0.1:{port};\n    root {root};\n\
         location ~ \\.php$ {{\n      include /etc/nginx/fastcgi_params;\n\
         fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;\n\
         fastcgi_pass app;\n      fastcgi_keep_conn on;\n    }}\n  }}\n}}\n",
        root = root.display()
    );
    std::fs::write(&path, text).map_err(|e| format!("nginx config: {e}"))?;
    Ok(path)
}

/// `wrk` on CPU 1: one thread, [`CONNECTIONS`] connections, its text report parsed.
fn run_wrk(wrk: &Path, url: &str, secs: f64) -> Result<GatewayRun, String> {
    let out = Command::new("taskset")
        .args(["-c", "1"])
        .arg(wrk)
        .args(["-t1", &format!("-c{CONNECTIONS}")])
        .arg(format!("-d{}s", secs.ceil().max(1.0)))
        .arg("--latency")
        .arg(url)
        .output()
        .map_err(|e| format!("wrk: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_wrk(&text).ok_or_else(|| format!("cannot read wrk's report: {text}"))
}

fn parse_wrk(text: &str) -> Option<GatewayRun> {
    let mut run = GatewayRun::default();
    let mut seen = false;
    for line in text.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("Requests/sec:") => {
                run.rps = words.next()?.parse().ok()?;
                seen = true;
            }
            Some("50%") => run.p50_ms = millis(words.next()?)?,
            Some("99%") => run.p99_ms = millis(words.next()?)?,
            Some("Non-2xx") => run.errors += line.rsplit(' ').next()?.parse::<u64>().ok()?,
            Some("Socket") => {
                // "Socket errors: connect 0, read 0, write 0, timeout 0"
                run.errors += line
                    .split([' ', ','])
                    .filter_map(|w| w.parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    seen.then_some(run)
}

/// `wrk`'s durations: `812.00us`, `1.20ms`, `2.00s`.
fn millis(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    match unit {
        "us" => Some(number / 1000.0),
        "ms" => Some(number),
        "s" => Some(number * 1000.0),
        "m" => Some(number * 60_000.0),
        _ => None,
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrks_report() {
        let text = "Running 2s test @ http://127.0.0.1:1/index.php\n  1 threads and 16 connections\n  Latency Distribution\n     50%  812.00us\n     75%    1.00ms\n     99%    2.50ms\n  90000 requests in 2.00s, 9.00MB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\n  Non-2xx or 3xx responses: 4\nRequests/sec:  45000.50\nTransfer/sec:      4.50MB\n";
        let run = parse_wrk(text).expect("a report");
        assert!((run.rps - 45000.5).abs() < 1e-6);
        assert!((run.p50_ms - 0.812).abs() < 1e-9);
        assert!((run.p99_ms - 2.5).abs() < 1e-9);
        assert_eq!(run.errors, 7);
        assert!(parse_wrk("unable to connect").is_none());
    }
}
