//! `fcgi-bench-client`: FastCGI *clients* side by side against one fixed backend.
//!
//! The backend is C libfcgi's hello server (`bench/c/hello_libfcgi.c`, 16 threads, keeps a
//! connection when asked): the same for every client, and not ours, so the figures are about
//! the clients. Each client — ours (fcgi-tokio's pooled `Client`), rama-fastcgi 0.4's
//! `send_on`, fastcgi-client 0.12 in keep-alive mode, and `raw`, a hand-rolled loop writing
//! prebuilt bytes (the physical limit of a client on the same runtime) — sends the same GET
//! with the same 13 params, 16 requests in flight over 16 kept connections, and reads each
//! whole response (see `clients.rs`).
//!
//! Per client and round: a fresh backend pinned to CPU 0 (`taskset`, in a process group of
//! its own, killed by group id), and the client in a process of its own — this binary again,
//! with the hidden `__run` subcommand (`measure.rs`) — pinned to CPU 1. The child warms up,
//! measures for `--secs`, and reports requests, errors, latency percentiles and its own CPU
//! time (`getrusage`, user + system); client CPU per request is the figure this noisy 2-core
//! machine disturbs least. `--repeat` rounds, the order reversed every other round; the
//! table (`report.rs`) shows the means and the ratios to rama-fastcgi and to raw.
//!
//! Before each run it waits (at most `--settle` seconds, default 20) for the machine to be
//! quiet (under 10% busy), and each run reports the share of the machine other people's
//! work took during its window ("others' load"): a disturbed run is visible as such.
//!
//! Usage: `fcgi-bench-client --backend PATH [--secs 3] [--warmup 0.5] [--repeat 2]
//! [--connections 16] [--runtime current|multi1] [--only a,b] [--settle 20]
//! [--markdown FILE]`.

mod backend;
mod clients;
mod cpu;
mod measure;
mod report;

use std::io::Read as _;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use measure::{Flavor, Job, Outcome};

/// The orchestrator's options.
struct Args {
    backend: PathBuf,
    secs: f64,
    warmup: f64,
    repeat: usize,
    connections: usize,
    flavor: Flavor,
    only: Vec<String>,
    markdown: Option<PathBuf>,
    /// Longest wait for a quiet machine before each run, seconds.
    settle: f64,
}

/// The machine counts as quiet below this busy share (of all its CPUs).
const QUIET: f64 = 0.10;

/// The default scheduler: tokio's current-thread one, the faster of the two for every
/// client here on one pinned CPU (see README.md).
const DEFAULT_FLAVOR: Flavor = Flavor::CurrentThread;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("__run") {
        child(&args[1..]);
        return;
    }
    let args = parse(&args).unwrap_or_else(|e| usage(&e));
    orchestrate(&args);
}

fn usage(why: &str) -> ! {
    eprintln!(
        "fcgi-bench-client: {why}\nusage: fcgi-bench-client --backend PATH [--secs S] [--warmup S] [--repeat N] [--connections N] [--runtime current|multi1] [--only a,b] [--settle S] [--markdown FILE]\nclients: {}",
        clients::NAMES.join(", ")
    );
    std::process::exit(2)
}

/// `--flag value` pairs into [`Args`].
fn parse(args: &[String]) -> Result<Args, String> {
    let mut out = Args {
        backend: PathBuf::new(),
        secs: 3.0,
        warmup: 0.5,
        repeat: 2,
        connections: 16,
        flavor: DEFAULT_FLAVOR,
        only: clients::NAMES.iter().map(|s| (*s).to_owned()).collect(),
        markdown: None,
        settle: 20.0,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |what: &str| -> Result<f64, String> {
            value
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0 && *v <= 3600.0)
                .ok_or_else(|| format!("{what}: {value:?} is not a number of seconds"))
        };
        let count = |what: &str, max: usize| -> Result<usize, String> {
            value
                .parse::<usize>()
                .ok()
                .filter(|v| (1..=max).contains(v))
                .ok_or_else(|| format!("{what}: {value:?} is not a count from 1 to {max}"))
        };
        match flag.as_str() {
            "--backend" => out.backend = value.into(),
            "--secs" => out.secs = number("--secs")?,
            "--warmup" => out.warmup = number("--warmup")?,
            "--repeat" => out.repeat = count("--repeat", 100)?,
            "--connections" => out.connections = count("--connections", 1000)?,
            "--runtime" => {
                out.flavor = Flavor::parse(value).ok_or("--runtime: current or multi1")?;
            }
            "--only" => out.only = value.split(',').map(str::to_owned).collect(),
            "--markdown" => out.markdown = Some(value.into()),
            "--settle" => {
                out.settle = value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| (0.0..=600.0).contains(v))
                    .ok_or("--settle: seconds from 0 to 600")?;
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if out.backend.as_os_str().is_empty() {
        return Err("--backend is required".into());
    }
    if let Some(bad) = out
        .only
        .iter()
        .find(|n| !clients::NAMES.contains(&n.as_str()))
    {
        return Err(format!("unknown client {bad}"));
    }
    Ok(out)
}

/// Every client, `--repeat` rounds; prints the table and writes it to `--markdown`.
fn orchestrate(args: &Args) {
    let names: Vec<&str> = clients::NAMES
        .iter()
        .copied()
        .filter(|n| args.only.iter().any(|o| o == n))
        .collect();
    let mut results: Vec<(&str, Vec<Outcome>)> = names.iter().map(|n| (*n, Vec::new())).collect();
    let started = Instant::now();
    for round in 0..args.repeat {
        let mut order = names.clone();
        if round % 2 == 1 {
            order.reverse();
        }
        for name in order {
            match measure_one(args, name) {
                Ok(o) => {
                    log(name, &o);
                    if let Some((_, runs)) = results.iter_mut().find(|(n, _)| *n == name) {
                        runs.push(o);
                    }
                }
                Err(e) => eprintln!("{name:<15} skipped: {e}"),
            }
        }
    }
    let about = format!(
        "GET /index.php (13 params, no body) from each client to C libfcgi (`bench/c/hello_libfcgi.c`, 16 threads) over TCP; {} requests in flight on {} kept-alive connections; backend pinned to CPU 0, client process to CPU 1, tokio {} runtime; {} s measured after {} s of warm-up, mean of {} run(s) per client.",
        args.connections,
        args.connections,
        match args.flavor {
            Flavor::CurrentThread => "current-thread",
            Flavor::MultiThread1 => "multi-thread (1 worker)",
        },
        args.secs,
        args.warmup,
        args.repeat
    );
    let table = report::table(&results, args.connections, &about);
    println!("{table}");
    println!("(whole run: {:.0} s)", started.elapsed().as_secs_f64());
    if let Some(path) = &args.markdown
        && let Err(e) = std::fs::write(path, &table)
    {
        eprintln!("cannot write {}: {e}", path.display());
    }
}

fn log(name: &str, o: &Outcome) {
    let f = report::Figures::of(o);
    eprintln!(
        "{name:<15} {:>9.0} req/s  p50 {:>6.3} ms  p99 {:>6.3} ms  {:>6.2} us CPU/req ({:.0}% sys)  backend {:.2} us/req  others {:.0}%  {} errors{}",
        f.rps,
        f.p50_ms,
        f.p99_ms,
        f.cpu_us,
        f.sys_share * 100.0,
        f.backend_us,
        f.other_load * 100.0,
        o.errors + o.stuck,
        if o.first_error.is_empty() {
            String::new()
        } else {
            format!(" (first: {})", o.first_error)
        }
    );
}

/// Waits (at most `limit` seconds) until other people's work leaves the machine quiet:
/// this machine is shared, and a run beside a build measures the build.
fn settle(limit: f64) {
    let until = Instant::now() + Duration::from_secs_f64(limit);
    let mut busy = cpu::busy_share(Duration::from_millis(500));
    while busy > QUIET && Instant::now() < until {
        busy = cpu::busy_share(Duration::from_millis(500));
    }
    if busy > QUIET {
        eprintln!(
            "(the machine is still {:.0}% busy after {limit} s: measuring anyway)",
            busy * 100.0
        );
    }
}

/// One client against a fresh backend.
fn measure_one(args: &Args, name: &str) -> Result<Outcome, String> {
    if args.settle > 0.0 {
        settle(args.settle);
    }
    let port = backend::free_port().ok_or("no free port")?;
    let backend = backend::Backend::start(&args.backend, port)?;
    let exe = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
    let mut command = Command::new("taskset");
    command
        .args(["-c", "1"])
        .arg(exe)
        .arg("__run")
        .args(["--client", name])
        .args(["--addr", &format!("127.0.0.1:{port}")])
        .args(["--secs", &args.secs.to_string()])
        .args(["--warmup", &args.warmup.to_string()])
        .args(["--connections", &args.connections.to_string()])
        .args(["--runtime", args.flavor.name()])
        .args(["--backend-pid", &backend.pid().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .process_group(0);
    let child = command.spawn().map_err(|e| format!("start client: {e}"))?;
    let limit = Duration::from_secs_f64(args.warmup + args.secs) + Duration::from_secs(30);
    let out = wait_output(child, limit);
    drop(backend);
    let out = out?;
    let line = out.lines().last().unwrap_or_default();
    Outcome::from_line(line).ok_or_else(|| format!("client gave no result: {out:?}"))
}

/// Waits at most `limit` for the child, then reads its stdout; a child still running then
/// is killed (its process group).
fn wait_output(mut child: Child, limit: Duration) -> Result<String, String> {
    let until = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                backend::kill_group(&child);
                let _ = child.wait();
                return Err(format!("client still running after {} s", limit.as_secs()));
            }
            Err(e) => return Err(format!("waiting for the client: {e}")),
        }
    }
    let mut text = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout
            .read_to_string(&mut text)
            .map_err(|e| format!("client output: {e}"))?;
    }
    Ok(text)
}

/// The hidden `__run` subcommand: measures one client, prints the result line.
fn child(args: &[String]) {
    let job = match job(args) {
        Ok(job) => job,
        Err(e) => {
            eprintln!("fcgi-bench-client __run: {e}");
            std::process::exit(2)
        }
    };
    match measure::run(&job) {
        Ok(outcome) => println!("{}", outcome.to_line()),
        Err(e) => {
            eprintln!("fcgi-bench-client __run: {e}");
            std::process::exit(1)
        }
    }
}

/// `__run`'s arguments.
fn job(args: &[String]) -> Result<Job, String> {
    let mut job = Job {
        client: String::new(),
        addr: ([127, 0, 0, 1], 0).into(),
        connections: 16,
        warmup: Duration::from_millis(500),
        secs: Duration::from_secs(3),
        flavor: DEFAULT_FLAVOR,
        backend_pid: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let secs = || {
            value
                .parse::<f64>()
                .ok()
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .ok_or_else(|| format!("{flag}: {value:?}"))
        };
        match flag.as_str() {
            "--client" => job.client = value.clone(),
            "--addr" => job.addr = value.parse().map_err(|_| format!("--addr: {value:?}"))?,
            "--connections" => {
                job.connections = value
                    .parse()
                    .map_err(|_| format!("--connections: {value:?}"))?;
            }
            "--warmup" => job.warmup = secs()?,
            "--secs" => job.secs = secs()?,
            "--runtime" => job.flavor = Flavor::parse(value).ok_or("--runtime")?,
            "--backend-pid" => {
                job.backend_pid = Some(
                    value
                        .parse()
                        .map_err(|_| format!("--backend-pid: {value:?}"))?,
                );
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(job)
}
