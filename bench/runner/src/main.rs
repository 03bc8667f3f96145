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
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

mod gateway;
mod memory;
mod proc;

use proc::Running;

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
    /// The server's resident memory after the run (every process of its group), kB.
    rss_kib: u64,
}

/// What the command line asked for.
struct Config {
    fcgi: PathBuf,
    bin: PathBuf,
    secs: f64,
    repeat: usize,
    only: Option<Vec<String>>,
    scenarios: Option<Vec<String>>,
    sections: Vec<String>,
    markdown: Option<PathBuf>,
    work: PathBuf,
    ticks: f64,
}

impl Config {
    fn parse() -> Self {
        let mut c = Config {
            fcgi: PathBuf::from("fcgi"),
            bin: PathBuf::from("."),
            secs: 3.0,
            repeat: 2,
            only: None,
            scenarios: None,
            sections: SECTIONS.iter().map(|s| (*s).to_owned()).collect(),
            markdown: None,
            work: std::env::temp_dir().join(format!("fcgi-bench-{}", std::process::id())),
            ticks: proc::clock_ticks(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let mut value = || {
                args.next()
                    .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
            };
            let list = |v: String| v.split(',').map(str::to_owned).collect::<Vec<_>>();
            match flag.as_str() {
                "--fcgi" => c.fcgi = value().into(),
                "--bin" => c.bin = value().into(),
                "--secs" => c.secs = value().parse().unwrap_or_else(|_| usage("--secs")),
                "--repeat" => c.repeat = value().parse().unwrap_or_else(|_| usage("--repeat")),
                "--only" => c.only = Some(list(value())),
                "--scenarios" => c.scenarios = Some(list(value())),
                "--sections" => {
                    c.sections = list(value());
                    if let Some(bad) = c.sections.iter().find(|s| !SECTIONS.contains(&s.as_str())) {
                        usage(&format!("unknown section {bad}"));
                    }
                }
                "--markdown" => c.markdown = Some(value().into()),
                other => usage(&format!("unknown argument {other}")),
            }
        }
        c
    }

    fn wants(&self, section: &str) -> bool {
        self.sections.iter().any(|s| s == section)
    }

    fn scenario_selected(&self, scenario: &Scenario) -> bool {
        self.scenarios
            .as_ref()
            .is_none_or(|s| s.iter().any(|n| n == scenario.name))
    }
}

/// The parts of a run, in order: a fresh server per scenario, one long-lived server across
/// every scenario, the gateways under `wrk`, the 1 GiB response's memory.
const SECTIONS: &[&str] = &["fresh", "long-lived", "gateway", "memory"];

fn main() {
    let config = Config::parse();
    let _ = std::fs::create_dir_all(&config.work);
    let servers: Vec<Server> = servers(&config.bin, &config.work)
        .into_iter()
        .filter(|s| {
            config
                .only
                .as_ref()
                .is_none_or(|o| o.iter().any(|n| n == s.name))
        })
        .collect();
    let started = Instant::now();
    let mut report = String::new();
    let mut fresh = BTreeMap::new();
    if config.wants("fresh") {
        fresh = fresh_servers(&config, &servers);
        report.push_str("## Servers, a fresh process per scenario\n\n");
        report.push_str(&table(&fresh, &servers));
    }
    if config.wants("long-lived") {
        let long = long_lived(&config, &servers);
        report.push_str("\n## Servers, one long-lived process through every scenario\n\n");
        report.push_str(&long_lived_table(&long, &fresh, &servers));
    }
    if config.wants("gateway") {
        report.push_str("\n## Gateways: wrk → proxy → the same application\n\n");
        report.push_str(&gateway::run(&config));
    }
    if config.wants("memory") {
        report.push_str("\n## Memory: a 1 GiB response streamed through\n\n");
        report.push_str(&memory::run(&config));
    }
    println!("{report}");
    println!("(whole run: {:.0} s)", started.elapsed().as_secs_f64());
    if let Some(path) = &config.markdown
        && let Err(e) = std::fs::write(path, &report)
    {
        eprintln!("cannot write {}: {e}", path.display());
    }
    let _ = std::fs::remove_dir_all(&config.work);
}

type Results = BTreeMap<(&'static str, &'static str), Vec<Run>>;

fn print_run(label: &str, scenario: &str, server: &str, run: &Result<Run, String>) {
    match run {
        Ok(run) => eprintln!(
            "{label:<5} {scenario:<28} {server:<14} {:>9.0} req/s  p99 {:>7.3} ms  {:>7.2} us CPU/req  {:>7} kB  {} errors",
            run.rps, run.p99, run.cpu_us, run.rss_kib, run.errors
        ),
        Err(e) => eprintln!("{label:<5} {scenario:<28} {server:<14} skipped: {e}"),
    }
}

/// Every scenario, `repeat` rounds with the server order reversed every other round, a
/// fresh server each time.
fn fresh_servers(config: &Config, servers: &[Server]) -> Results {
    let mut results = Results::new();
    for scenario in SCENARIOS.iter().filter(|s| config.scenario_selected(s)) {
        for round in 0..config.repeat {
            let order: Vec<&Server> = if round % 2 == 0 {
                servers.iter().collect()
            } else {
                servers.iter().rev().collect()
            };
            for server in order {
                if scenario.depth > 1 && !server.multiplexes {
                    continue;
                }
                let addr = address(config, server, scenario.unix);
                let run = start(server, &addr).and_then(|running| {
                    measure(
                        &running,
                        scenario,
                        &addr,
                        &config.fcgi,
                        config.secs,
                        config.ticks,
                    )
                });
                print_run("fresh", scenario.name, server.name, &run);
                if let Ok(run) = run {
                    results
                        .entry((scenario.name, server.name))
                        .or_default()
                        .push(run);
                }
            }
        }
    }
    results
}

/// One process per server and transport, through every scenario of that transport `repeat`
/// times over: what a server that has lived a while costs, and whether its memory grows.
fn long_lived(config: &Config, servers: &[Server]) -> Results {
    let mut results = Results::new();
    for server in servers {
        for unix in [false, true] {
            let addr = address(config, server, unix);
            let running = match start(server, &addr) {
                Ok(running) => running,
                Err(e) => {
                    eprintln!(
                        "long  {:<28} {:<14} skipped: {e}",
                        if unix { "unix" } else { "tcp" },
                        server.name
                    );
                    continue;
                }
            };
            for _ in 0..config.repeat {
                for scenario in SCENARIOS.iter().filter(|s| {
                    s.unix == unix
                        && config.scenario_selected(s)
                        && (s.depth == 1 || server.multiplexes)
                }) {
                    let run = measure(
                        &running,
                        scenario,
                        &addr,
                        &config.fcgi,
                        config.secs,
                        config.ticks,
                    );
                    print_run("long", scenario.name, server.name, &run);
                    if let Ok(run) = run {
                        results
                            .entry((scenario.name, server.name))
                            .or_default()
                            .push(run);
                    }
                }
            }
        }
    }
    results
}

fn address(config: &Config, server: &Server, unix: bool) -> Addr {
    if unix {
        Addr::Unix(config.work.join(format!("{}.sock", server.name)))
    } else {
        Addr::Tcp(proc::free_port())
    }
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

/// A fresh instance of `server` listening on `addr`, pinned to CPU 0.
fn start(server: &Server, addr: &Addr) -> Result<Running, String> {
    let command = (server.command)(addr).ok_or("cannot start here")?;
    let running = proc::spawn_pinned(&command, "0")?;
    proc::wait_until(server.name, || addr.ready())?;
    Ok(running)
}

/// One scenario against a running server: a warm-up (connections, php-fpm's workers), then
/// the measured run, with the server's CPU read before and after.
fn measure(
    running: &Running,
    scenario: &Scenario,
    addr: &Addr,
    fcgi: &Path,
    secs: f64,
    ticks_per_sec: f64,
) -> Result<Run, String> {
    let root = work_root();
    drop(bench(fcgi, &root, scenario, addr, 0.5)?);
    let pgid = running.0.id();
    let before = proc::group_ticks(pgid);
    let report = bench(fcgi, &root, scenario, addr, secs)?;
    let after = proc::group_ticks(pgid);
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
        rss_kib: proc::group_rss_kib(pgid),
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
        rss_kib: runs.iter().map(|r| r.rss_kib).max().unwrap_or(0),
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

/// The long-lived pass: means per scenario and server, the ratio to the same server fresh,
/// and its resident memory after the first and the last pass (growth = something kept).
fn long_lived_table(long: &Results, fresh: &Results, servers: &[Server]) -> String {
    let mut t = String::from(
        "| scenario | server | req/s | server CPU µs/req | CPU ÷ libfcgi | CPU ÷ same server fresh | RSS after pass 1 kB | RSS after last pass kB | errors |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for scenario in SCENARIOS {
        let of =
            |results: &Results, name: &str| results.get(&(scenario.name, name)).map(|r| mean(r));
        let libfcgi = of(long, "c-libfcgi");
        for server in servers {
            let Some(runs) = long.get(&(scenario.name, server.name)) else {
                continue;
            };
            let m = mean(runs);
            let ratio = |base: Option<Run>| {
                base.filter(|b| b.cpu_us > 0.0).map_or_else(
                    || "—".to_owned(),
                    |b| format!("{:.2}×", m.cpu_us / b.cpu_us),
                )
            };
            let _ = writeln!(
                t,
                "| {} | {} | {:.0} | {:.1} | {} | {} | {} | {} | {} |",
                scenario.name,
                server.name,
                m.rps,
                m.cpu_us,
                ratio(libfcgi.clone()),
                ratio(of(fresh, server.name)),
                runs.first().map_or(0, |r| r.rss_kib),
                runs.last().map_or(0, |r| r.rss_kib),
                m.errors
            );
        }
    }
    t
}
