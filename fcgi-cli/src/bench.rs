//! `fcgi bench`: load on a FastCGI application, with a live progress line, requests/s,
//! latency percentiles (hdrhistogram) and errors by kind.
//!
//! `-c` connections, each carrying `--depth` requests at a time (multiplexing, for an
//! application that does it); without `--keep-conn` every request opens its own connection,
//! as nginx does by default. A request counts as an error unless it ends with a 2xx answer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fcgi_core::Params;
use fcgi_http::response::{CgiResponseParser, Head, ParserConfig};
use fcgi_tokio::Backend;
use fcgi_tokio::client::{ClientError, ClientRequest, Multiplexing, RequestBody};
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::connect::{client_options, parse_backend, parse_seconds};
use crate::exit::Exit;

/// The longest latency the histogram records exactly (longer ones are clamped).
const MAX_LATENCY_US: u64 = 3_600_000_000;
/// The default run when neither `-d` nor `-n` is given.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// `fcgi bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The application: tcp:HOST:PORT, unix:PATH, HOST:PORT, or an absolute socket path.
    #[arg(long, value_parser = parse_backend)]
    connect: Backend,
    /// Connections at once.
    #[arg(short = 'c', long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    connections: u16,
    /// Run for this many seconds (default 10).
    #[arg(short = 'd', long, value_parser = parse_seconds, value_name = "SECS", conflicts_with = "requests")]
    duration: Option<Duration>,
    /// Send this many requests, then stop.
    #[arg(short = 'n', long, value_parser = clap::value_parser!(u64).range(1..))]
    requests: Option<u64>,
    /// Keep connections open between requests (FCGI_KEEP_CONN); without it, a new
    /// connection per request.
    #[arg(long)]
    keep_conn: bool,
    /// Requests in flight per connection (more than 1 needs an application that
    /// multiplexes, and --keep-conn).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1000))]
    depth: u16,
    /// Request body bytes: each request is a POST with that CONTENT_LENGTH.
    #[arg(long, default_value_t = 0)]
    body_bytes: usize,
    /// Extra params per request (X_BENCH_1=..., 32-byte values).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    params: u32,
    /// The script requested.
    #[arg(long, default_value = "/")]
    path: String,
    /// The document root as the application sees it.
    #[arg(long, default_value = "/var/www/html")]
    root: String,
    /// The longest wait for each answer, in seconds.
    #[arg(long, default_value = "10", value_parser = parse_seconds, value_name = "SECS")]
    timeout: Duration,
    /// Report on stdout as one JSON object (and no progress line).
    #[arg(long)]
    json: bool,
}

/// What one worker measured.
struct Tally {
    latency: Histogram<u64>,
    errors: BTreeMap<&'static str, u64>,
    exits: BTreeMap<&'static str, Exit>,
    bytes: u64,
}

impl Tally {
    fn new(latency: Histogram<u64>) -> Self {
        Self {
            latency,
            errors: BTreeMap::new(),
            exits: BTreeMap::new(),
            bytes: 0,
        }
    }

    fn error(&mut self, kind: &'static str, exit: Exit) {
        *self.errors.entry(kind).or_default() += 1;
        self.exits.insert(kind, exit);
    }

    fn merge(&mut self, other: Tally) {
        // Both have the same bounds: adding cannot fail.
        let _ = self.latency.add(&other.latency);
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
        self.exits.extend(other.exits);
        self.bytes += other.bytes;
    }
}

#[derive(Debug, Serialize)]
struct Report {
    connect: String,
    connections: u16,
    depth: u16,
    keep_conn: bool,
    body_bytes: usize,
    params: u32,
    seconds: f64,
    requests: u64,
    ok: u64,
    errors: u64,
    requests_per_sec: f64,
    latency_ms: Latency,
    bytes_received: u64,
    errors_by_kind: BTreeMap<&'static str, u64>,
    exit: u8,
}

#[derive(Debug, Serialize)]
struct Latency {
    mean: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

/// When workers stop.
#[derive(Clone, Copy)]
enum Stop {
    At(Instant),
    After(u64),
}

/// Runs `fcgi bench`.
pub(crate) async fn run(args: Args) -> Exit {
    if args.depth > 1 && !args.keep_conn {
        eprintln!("fcgi bench: --depth needs --keep-conn (requests share a connection)");
        return Exit::Usage;
    }
    let template = match template(&args) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("fcgi bench: {e}");
            return Exit::Usage;
        }
    };
    let mut options = client_options(args.timeout);
    options.max_connections = usize::from(args.connections);
    options.keep_alive = args.keep_conn;
    options.multiplexing = if args.depth > 1 {
        Multiplexing::On(args.depth)
    } else {
        Multiplexing::Off
    };
    let empty = match Histogram::new_with_bounds(1, MAX_LATENCY_US, 3) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("fcgi bench: {e}");
            return Exit::Failure;
        }
    };
    let client = fcgi_tokio::client(args.connect.clone(), options);
    let body = Bytes::from(vec![b'x'; args.body_bytes]);
    let started = Instant::now();
    let stop = match (args.requests, args.duration) {
        (Some(n), _) => Stop::After(n),
        (None, d) => Stop::At(started + d.unwrap_or(DEFAULT_DURATION)),
    };
    let issued = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let progress = progress_line(&args, stop);
    let ticker = {
        let (progress, done, failed) = (progress.clone(), Arc::clone(&done), Arc::clone(&failed));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let n = done.load(Ordering::Relaxed);
                let secs = started.elapsed().as_secs_f64().max(1e-9);
                progress.set_position(n);
                progress.set_message(format!(
                    "{:.0} req/s, {} errors",
                    n as f64 / secs,
                    failed.load(Ordering::Relaxed)
                ));
            }
        })
    };
    let workers = usize::from(args.connections) * usize::from(args.depth);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (client, template, body) = (client.clone(), template.clone(), body.clone());
        let empty = empty.clone();
        let (issued, done, failed) = (Arc::clone(&issued), Arc::clone(&done), Arc::clone(&failed));
        tasks.spawn(async move {
            let mut tally = Tally::new(empty);
            loop {
                let go = match stop {
                    Stop::After(n) => issued.fetch_add(1, Ordering::Relaxed) < n,
                    Stop::At(at) => Instant::now() < at,
                };
                if !go {
                    return tally;
                }
                let request = ClientRequest::responder()
                    .params_from(template.clone())
                    .stdin(RequestBody::from(body.clone()));
                let t0 = Instant::now();
                let outcome = one(&client, request, &mut tally).await;
                let us = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
                tally.latency.saturating_record(us.clamp(1, MAX_LATENCY_US));
                if let Err((kind, exit)) = outcome {
                    tally.error(kind, exit);
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let mut total = Tally::new(empty);
    while let Some(result) = tasks.join_next().await {
        if let Ok(tally) = result {
            total.merge(tally);
        }
    }
    ticker.abort();
    progress.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let requests = total.latency.len();
    let errors: u64 = total.errors.values().sum();
    // The exit of the most frequent failure; 0 when every request got a 2xx.
    let exit = total
        .errors
        .iter()
        .max_by_key(|(_, n)| **n)
        .and_then(|(kind, _)| total.exits.get(kind).copied())
        .unwrap_or(Exit::Ok);
    let q = |p: f64| total.latency.value_at_quantile(p) as f64 / 1000.0;
    let report = Report {
        connect: args.connect.to_string(),
        connections: args.connections,
        depth: args.depth,
        keep_conn: args.keep_conn,
        body_bytes: args.body_bytes,
        params: args.params,
        seconds: (seconds * 1000.0).round() / 1000.0,
        requests,
        ok: requests - errors,
        errors,
        requests_per_sec: (requests as f64 / seconds.max(1e-9) * 10.0).round() / 10.0,
        latency_ms: Latency {
            mean: (total.latency.mean() / 1000.0 * 1000.0).round() / 1000.0,
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            max: total.latency.max() as f64 / 1000.0,
        },
        bytes_received: total.bytes,
        errors_by_kind: total.errors,
        exit: exit.code(),
    };
    print(&report, args.json);
    exit
}

fn print(report: &Report, json: bool) {
    if json {
        match serde_json::to_string(report) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("fcgi bench: {e}"),
        }
        return;
    }
    println!(
        "fcgi bench: {}, {} connections x depth {}, {}, {:.1} s",
        report.connect,
        report.connections,
        report.depth,
        if report.keep_conn {
            "kept connections"
        } else {
            "a new connection per request"
        },
        report.seconds
    );
    println!(
        "  requests:  {} ({:.1}/s), {} ok, {} errors",
        report.requests, report.requests_per_sec, report.ok, report.errors
    );
    let l = &report.latency_ms;
    println!(
        "  latency:   mean {:.3} ms, p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms",
        l.mean, l.p50, l.p90, l.p99, l.p999, l.max
    );
    println!("  received:  {} bytes", report.bytes_received);
    if !report.errors_by_kind.is_empty() {
        let kinds: Vec<String> = report
            .errors_by_kind
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        println!("  errors:    {}", kinds.join(", "));
    }
}

/// The live progress line on stderr (hidden under `--json`, or when stderr is no terminal).
fn progress_line(args: &Args, stop: Stop) -> indicatif::ProgressBar {
    if args.json {
        return indicatif::ProgressBar::hidden();
    }
    let bar = match stop {
        Stop::After(n) => indicatif::ProgressBar::new(n),
        Stop::At(_) => indicatif::ProgressBar::no_length(),
    };
    let style = match stop {
        Stop::After(_) => "{elapsed_precise} [{bar:30}] {pos}/{len} requests, {msg}",
        Stop::At(_) => "{elapsed_precise} {pos} requests, {msg}",
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(style) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// The params every request carries.
fn template(args: &Args) -> Result<Params, String> {
    let method = if args.body_bytes > 0 { "POST" } else { "GET" };
    let mut request = ClientRequest::php_fpm(method, &args.root, &args.path, "")
        .param("SERVER_NAME", "localhost")
        .param("SERVER_PORT", "80")
        .param("REMOTE_ADDR", "127.0.0.1")
        .param("HTTP_HOST", "localhost");
    if args.body_bytes > 0 {
        request = request
            .param("CONTENT_LENGTH", args.body_bytes.to_string())
            .param("CONTENT_TYPE", "application/octet-stream");
    }
    let value = "v".repeat(32);
    for i in 1..=args.params {
        request = request.param(format!("X_BENCH_{i}"), &value);
    }
    Ok(request.params().clone())
}

/// One request: `Err((kind, exit))` unless it ends with a 2xx answer.
async fn one(
    client: &fcgi_tokio::Client,
    request: ClientRequest,
    tally: &mut Tally,
) -> Result<(), (&'static str, Exit)> {
    let mut response = client.send(request).await.map_err(kind)?;
    let mut parser = CgiResponseParser::new(ParserConfig::default());
    let mut status = None;
    while let Some(piece) = response.chunk().await {
        let piece = piece.map_err(kind)?;
        tally.bytes += piece.len() as u64;
        if status.is_none() {
            match parser.feed(piece) {
                Ok(Some(parsed)) => {
                    status = Some(match parsed.head {
                        Head::Response(parts) => parts.status,
                        Head::InternalRedirect { .. } => http::StatusCode::FOUND,
                    });
                }
                Ok(None) => {}
                Err(_) => return Err(("bad response head", Exit::Protocol)),
            }
        }
    }
    response.finish().await.map_err(kind)?;
    match status {
        None => Err(("no response head", Exit::Protocol)),
        Some(s) if s.is_success() => Ok(()),
        Some(s) if s.is_redirection() => Err(("3xx", Exit::Redirect)),
        Some(s) if s.is_client_error() => Err(("4xx", Exit::ClientError)),
        Some(_) => Err(("5xx", Exit::ServerError)),
    }
}

/// The kind of a failed exchange, for the error table.
fn kind(e: ClientError) -> (&'static str, Exit) {
    let exit = Exit::of_client_error(&e);
    let kind = match &e {
        ClientError::Connect { .. } => "connect",
        ClientError::Timeout(_) => "timeout",
        ClientError::Io(_) => "io",
        ClientError::Truncated => "truncated",
        ClientError::Protocol(_) => "protocol",
        ClientError::Overloaded => "overloaded",
        ClientError::CantMpxConn => "cant-mpx-conn",
        ClientError::UnknownRole => "unknown-role",
        _ => "other",
    };
    (kind, exit)
}
