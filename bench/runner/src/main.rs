//! `fcgi-bench-run`: every benchmark server through every scenario, side by side, in one run.
//!
//! For each scenario and server: a fresh server pinned to CPU 0 (`taskset`), `fcgi bench`
//! pinned to CPU 1 as the load (its JSON gives requests/s and latency percentiles), and the
//! server's CPU time read from `/proc` before and after (every process of its process group,
//! so php-fpm's workers count too): CPU per request is the figure this noisy 2-core machine
//! disturbs least. Each scenario runs `--repeat` times, the server order reversed on every
//! other round; the table shows the mean, and the ratios to C libfcgi and to the raw socket
//! ping-pong (the physical limit).
//!
//! Usage: `fcgi-bench-run --fcgi PATH --bin DIR [--secs 3] [--repeat 2] [--only NAMES]
//! [--scenarios NAMES] [--markdown FILE]` (`bench/run` passes them).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How a server is started for an address (`None`: it cannot listen there).
type Start = Box<dyn Fn(&Addr) -> Option<Command>>;

/// A server implementation and how to start it.
struct Server {
    name: &'static str,
    /// The program and its arguments, given the address (`tcp:127.0.0.1:PORT` or
    /// `unix:PATH`); `None` when the server cannot listen there.
    command: Start,
    multiplexes: bool,
}

#[derive(Clone)]
enum Addr {
    Tcp(u16),
    Unix(PathBuf),
}

impl Addr {
    fn connect(&self) -> String {
        match self {
            Self::Tcp(port) => format!("tcp:127.0.0.1:{port}"),
            Self::Unix(path) => format!("unix:{}", path.display()),
        }
    }

    fn ready(&self) -> bool {
        match self {
            Self::Tcp(port) => std::net::TcpStream::connect(("127.0.0.1", *port)).is_ok(),
            Self::Unix(path) => std::os::unix::net::UnixStream::connect(path).is_ok(),
        }
    }
}

/// A workload.
struct Scenario {
    name: &'static str,
    unix: bool,
    keep: bool,
    /// `fcgi bench` arguments beyond the connection ones.
    extra: &'static [&'static str],
    connections: u16,
    depth: u16,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "tcp-keepalive-get",
        unix: false,
        keep: true,
        extra: &[],
        connections: 16,
        depth: 1,
    },
    Scenario {
        name: "unix-keepalive-get",
        unix: true,
        keep: true,
        extra: &[],
        connections: 16,
        depth: 1,
    },
    Scenario {
        name: "tcp-new-connection-get",
        unix: false,
        keep: false,
        extra: &[],
        connections: 16,
        depth: 1,
    },
    Scenario {
        name: "unix-new-connection-get",
        unix: true,
        keep: false,
        extra: &[],
        connections: 16,
        depth: 1,
    },
    Scenario {
        name: "tcp-keepalive-post-64k",
        unix: false,
        keep: true,
        extra: &["--body-bytes", "65536"],
        connections: 16,
        depth: 1,
    },
    Scenario {
        name: "tcp-keepalive-1mib-response",
        unix: false,
        keep: true,
        extra: &["--path", "/big.php"],
        connections: 16,
        depth: 1,
    },
    Scenario {
        name: "tcp-multiplexed-4x4",
        unix: false,
        keep: true,
        extra: &[],
        connections: 4,
        depth: 4,
    },
    Scenario {
        name: "tcp-multiplexed-4x8",
        unix: false,
        keep: true,
        extra: &[],
        connections: 4,
        depth: 8,
    },
];

/// One measurement.
#[derive(Debug, Clone, Default)]
struct Run {
    rps: f64,
    p50: f64,
    p99: f64,
    cpu_us: f64,
    errors: u64,
}

fn main() {
    let mut fcgi = PathBuf::from("fcgi");
    let mut bin = PathBuf::from(".");
    let mut secs = 3.0f64;
    let mut repeat = 2usize;
    let mut only: Option<Vec<String>> = None;
    let mut scenarios: Option<Vec<String>> = None;
    let mut markdown: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--fcgi" => fcgi = value().into(),
            "--bin" => bin = value().into(),
            "--secs" => secs = value().parse().unwrap_or_else(|_| usage("--secs")),
            "--repeat" => repeat = value().parse().unwrap_or_else(|_| usage("--repeat")),
            "--only" => only = Some(value().split(',').map(str::to_owned).collect()),
            "--scenarios" => scenarios = Some(value().split(',').map(str::to_owned).collect()),
            "--markdown" => markdown = Some(value().into()),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let work = std::env::temp_dir().join(format!("fcgi-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&work);
    let servers: Vec<Server> = servers(&bin, &work)
        .into_iter()
        .filter(|s| only.as_ref().is_none_or(|o| o.iter().any(|n| n == s.name)))
        .collect();
    let ticks = clock_ticks();
    let mut results: BTreeMap<(&str, &str), Vec<Run>> = BTreeMap::new();
    let started = Instant::now();
    for scenario in SCENARIOS {
        if scenarios
            .as_ref()
            .is_some_and(|s| !s.iter().any(|n| n == scenario.name))
        {
            continue;
        }
        for round in 0..repeat {
            let order: Vec<&Server> = if round % 2 == 0 {
                servers.iter().collect()
            } else {
                servers.iter().rev().collect()
            };
            for server in order {
                if scenario.depth > 1 && !server.multiplexes {
                    continue;
                }
                let addr = if scenario.unix {
                    Addr::Unix(work.join(format!("{}.sock", server.name)))
                } else {
                    Addr::Tcp(free_port())
                };
                match measure(server, scenario, &addr, &fcgi, secs, ticks) {
                    Ok(run) => {
                        eprintln!(
                            "{:<28} {:<14} {:>9.0} req/s  p99 {:>7.3} ms  {:>7.2} us CPU/req  {} errors",
                            scenario.name, server.name, run.rps, run.p99, run.cpu_us, run.errors
                        );
                        results
                            .entry((scenario.name, server.name))
                            .or_default()
                            .push(run);
                    }
                    Err(e) => eprintln!("{:<28} {:<14} skipped: {e}", scenario.name, server.name),
                }
            }
        }
    }
    let table = table(&results, &servers);
    println!("{table}");
    println!("(whole run: {:.0} s)", started.elapsed().as_secs_f64());
    if let Some(path) = markdown
        && let Err(e) = std::fs::write(&path, &table)
    {
        eprintln!("cannot write {}: {e}", path.display());
    }
    let _ = std::fs::remove_dir_all(&work);
}

fn usage(why: &str) -> ! {
    eprintln!(
        "fcgi-bench-run: {why}\nusage: fcgi-bench-run --fcgi PATH --bin DIR [--secs S] [--repeat N] [--only a,b] [--scenarios a,b] [--markdown FILE]"
    );
    std::process::exit(2)
}

/// The servers, from the binaries in `bin` (ours, the ping-pong, C libfcgi's) and php-fpm.
fn servers(bin: &Path, work: &Path) -> Vec<Server> {
    let ours = |name: &'static str, file: &'static str| {
        let path = bin.join(file);
        Server {
            name,
            command: Box::new(move |addr: &Addr| {
                let mut c = Command::new(&path);
                c.arg(addr.connect());
                Some(c)
            }),
            multiplexes: true,
        }
    };
    let libfcgi = bin.join("hello_libfcgi");
    let mut out = vec![
        ours("ours-tokio", "ours-tokio"),
        ours("ours-smol", "ours-smol"),
        Server {
            name: "c-libfcgi",
            command: Box::new(move |addr: &Addr| {
                let mut c = Command::new(&libfcgi);
                c.arg(match addr {
                    Addr::Tcp(port) => format!("127.0.0.1:{port}"),
                    Addr::Unix(path) => path.display().to_string(),
                });
                Some(c)
            }),
            multiplexes: false,
        },
        Server {
            multiplexes: false,
            ..ours("raw-pingpong", "pingpong")
        },
        Server {
            // Go's fcgi serves each request in a goroutine: it multiplexes.
            multiplexes: true,
            ..ours("go-fcgi", "hello_go")
        },
        tcp_only("rama-fastcgi", bin.join("rama-fastcgi")),
        tcp_only("tokio-fastcgi", bin.join("tokio-fastcgi")),
    ];
    if let Some(fpm) = ["/usr/sbin/php-fpm8.2", "/usr/sbin/php-fpm"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
    {
        let work = work.to_path_buf();
        out.push(Server {
            name: "php-fpm",
            command: Box::new(move |addr: &Addr| {
                let conf = work.join("php-fpm.conf");
                let root = work.join("www");
                let _ = std::fs::create_dir_all(&root);
                let _ = std::fs::write(root.join("index.php"), "<?php\necho 'hello';\n");
                let _ = std::fs::write(
                    root.join("big.php"),
                    "<?php\necho str_repeat('x', 1048576);\n",
                );
                let listen = match addr {
                    Addr::Tcp(port) => format!("127.0.0.1:{port}"),
                    Addr::Unix(path) => path.display().to_string(),
                };
                let text = format!(
                    "[global]\nerror_log = {w}/php-fpm.log\ndaemonize = no\n[bench]\nlisten = {listen}\nlisten.backlog = 1024\npm = static\npm.max_children = 16\nuser = root\ngroup = root\n",
                    w = work.display()
                );
                std::fs::write(&conf, text).ok()?;
                let mut c = Command::new(&fpm);
                c.args(["-F", "-R", "-y"]).arg(&conf);
                Some(c)
            }),
            multiplexes: false,
        });
    }
    out
}

/// The document root every request names (php-fpm's scripts are there).
fn work_root() -> PathBuf {
    std::env::temp_dir()
        .join(format!("fcgi-bench-{}", std::process::id()))
        .join("www")
}

/// A server from crates.io that serves TCP only here, one request at a time per connection.
fn tcp_only(name: &'static str, path: PathBuf) -> Server {
    Server {
        name,
        command: Box::new(move |addr: &Addr| match addr {
            Addr::Tcp(_) => {
                let mut c = Command::new(&path);
                c.arg(addr.connect());
                Some(c)
            }
            Addr::Unix(_) => None,
        }),
        multiplexes: false,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU ticks (user + system) of every process in process group `pgid`.
fn group_ticks(pgid: u32) -> u64 {
    let mut total = 0;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    for entry in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the command name (which may hold spaces) start after the last ')'.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // f[2] = pgrp, f[11] = utime, f[12] = stime (fields 5, 14, 15 of stat(5)).
        if f.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(pgid) {
            total += f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            total += f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    total
}

/// The server, killed (its whole process group) when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        // The whole group (php-fpm's workers too), by its id: never through a `kill`
        // command line, where a mistyped group id can read as -1 (every process).
        if let Some(pgid) = rustix::process::Pid::from_raw(self.0.id() as i32) {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
        let _ = self.0.wait();
    }
}

fn measure(
    server: &Server,
    scenario: &Scenario,
    addr: &Addr,
    fcgi: &Path,
    secs: f64,
    ticks_per_sec: f64,
) -> Result<Run, String> {
    let command = (server.command)(addr).ok_or("cannot start here")?;
    // Pinned to CPU 0 through taskset, in a process group of its own.
    let program = command.get_program().to_owned();
    let args: Vec<_> = command.get_args().map(ToOwned::to_owned).collect();
    let mut pinned = Command::new("taskset");
    pinned
        .arg("-c")
        .arg("0")
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let child = pinned.spawn().map_err(|e| format!("start: {e}"))?;
    let running = Running(child);
    let until = Instant::now() + Duration::from_secs(15);
    while !addr.ready() {
        if Instant::now() > until {
            return Err("not listening after 15 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Warm up (connections, php-fpm's workers), then measure.
    let root = work_root();
    let warm = bench(fcgi, &root, scenario, addr, 0.5)?;
    drop(warm);
    let pgid = running.0.id();
    let before = group_ticks(pgid);
    let report = bench(fcgi, &root, scenario, addr, secs)?;
    let after = group_ticks(pgid);
    drop(running);
    let requests = report["requests"].as_f64().unwrap_or(0.0);
    if requests == 0.0 {
        return Err(format!("no request answered: {report}"));
    }
    Ok(Run {
        rps: report["requests_per_sec"].as_f64().unwrap_or(0.0),
        p50: report["latency_ms"]["p50"].as_f64().unwrap_or(0.0),
        p99: report["latency_ms"]["p99"].as_f64().unwrap_or(0.0),
        cpu_us: (after.saturating_sub(before)) as f64 / ticks_per_sec * 1e6 / requests,
        errors: report["errors"].as_u64().unwrap_or(0),
    })
}

fn bench(
    fcgi: &Path,
    root: &Path,
    s: &Scenario,
    addr: &Addr,
    secs: f64,
) -> Result<serde_json::Value, String> {
    let mut c = Command::new("taskset");
    c.args(["-c", "1"]).arg(fcgi).arg("bench");
    c.args([
        "--connect",
        &addr.connect(),
        "--root",
        &root.display().to_string(),
    ]);
    if !s.extra.contains(&"--path") {
        c.args(["--path", "/index.php"]);
    }
    c.args([
        "-c",
        &s.connections.to_string(),
        "-d",
        &secs.to_string(),
        "--json",
    ]);
    c.args(["--depth", &s.depth.to_string()]);
    if s.keep {
        c.arg("--keep-conn");
    }
    c.args(s.extra);
    let out = c.output().map_err(|e| format!("fcgi bench: {e}"))?;
    serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "fcgi bench gave no report ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn mean(runs: &[Run]) -> Run {
    let n = runs.len().max(1) as f64;
    Run {
        rps: runs.iter().map(|r| r.rps).sum::<f64>() / n,
        p50: runs.iter().map(|r| r.p50).sum::<f64>() / n,
        p99: runs.iter().map(|r| r.p99).sum::<f64>() / n,
        cpu_us: runs.iter().map(|r| r.cpu_us).sum::<f64>() / n,
        errors: runs.iter().map(|r| r.errors).sum(),
    }
}

/// The markdown table: per scenario and server, the means and the ratios.
fn table(results: &BTreeMap<(&str, &str), Vec<Run>>, servers: &[Server]) -> String {
    let mut t = String::from(
        "| scenario | server | req/s | p50 ms | p99 ms | server CPU µs/req | CPU ÷ libfcgi | CPU ÷ raw | errors |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for scenario in SCENARIOS {
        let of = |name: &str| results.get(&(scenario.name, name)).map(|r| mean(r));
        let libfcgi = of("c-libfcgi");
        let raw = of("raw-pingpong");
        for server in servers {
            let Some(m) = of(server.name) else { continue };
            let ratio = |base: &Option<Run>| {
                base.as_ref().filter(|b| b.cpu_us > 0.0).map_or_else(
                    || "—".to_owned(),
                    |b| format!("{:.2}×", m.cpu_us / b.cpu_us),
                )
            };
            let _ = writeln!(
                t,
                "| {} | {} | {:.0} | {:.3} | {:.3} | {:.1} | {} | {} | {} |",
                scenario.name,
                server.name,
                m.rps,
                m.p50,
                m.p99,
                m.cpu_us,
                ratio(&libfcgi),
                ratio(&raw),
                m.errors
            );
        }
    }
    t
}
