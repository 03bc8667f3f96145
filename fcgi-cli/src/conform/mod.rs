//! `fcgi conform`: does a FastCGI application follow the spec? Each check writes records
//! byte for byte ([`wire`]) and judges the answer against one rule, named by its section of
//! the 1996 specification (our matrix: `specifications/fastcgi.md`). One line per check
//! (pass, FAIL, skip), a summary, exit status 1 on any failure, `--json`.

mod app;
mod wire;

use std::time::Duration;

use fcgi_tokio::Backend;
use serde::Serialize;

use crate::connect::{parse_backend, parse_seconds};
use crate::exit::Exit;

/// `fcgi conform`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The application to check: tcp:HOST:PORT, unix:PATH, HOST:PORT, or a socket path.
    #[arg(long, value_parser = parse_backend)]
    connect: Backend,
    /// The script the test requests name (any complete answer will do, a 404 too).
    #[arg(long, default_value = "/")]
    path: String,
    /// The document root as the application sees it.
    #[arg(long, default_value = "/var/www/html")]
    root: String,
    /// The longest wait for each answer, in seconds.
    #[arg(long, default_value = "5", value_parser = parse_seconds, value_name = "SECS")]
    timeout: Duration,
    /// Report on stdout as one JSON object.
    #[arg(long)]
    json: bool,
}

/// What a check is about.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Check {
    /// The spec section.
    pub(crate) section: &'static str,
    /// A short stable name.
    pub(crate) id: &'static str,
    /// The rule, in words.
    pub(crate) title: &'static str,
}

/// How a check went, and what was seen.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "result", content = "detail", rename_all = "lowercase")]
pub(crate) enum Outcome {
    Pass(String),
    Fail(String),
    Skip(String),
}

#[derive(Debug, Serialize)]
struct Line {
    #[serde(flatten)]
    check: Check,
    #[serde(flatten)]
    outcome: Outcome,
}

#[derive(Debug, Serialize)]
struct Report {
    connect: String,
    checks: Vec<Line>,
    passed: usize,
    failed: usize,
    skipped: usize,
    exit: u8,
}

/// Runs `fcgi conform`.
pub(crate) async fn run(args: Args) -> Exit {
    // Nothing to check if nothing answers: that is a connection failure, not a verdict.
    if let Err(e) = wire::Wire::connect(&args.connect, args.timeout).await {
        eprintln!("fcgi conform: cannot connect to {}: {e}", args.connect);
        return if e.kind() == std::io::ErrorKind::TimedOut {
            Exit::Timeout
        } else {
            Exit::Connect
        };
    }
    let target = app::Target {
        backend: args.connect.clone(),
        timeout: args.timeout,
        root: args.root.clone(),
        path: args.path.clone(),
    };
    if !args.json {
        println!("fcgi conform: {} (a FastCGI application)", args.connect);
    }
    let mut lines = Vec::new();
    app::run(&target, |check, outcome| {
        if !args.json {
            let (word, detail) = match &outcome {
                Outcome::Pass(d) => ("pass", d),
                Outcome::Fail(d) => ("FAIL", d),
                Outcome::Skip(d) => ("skip", d),
            };
            println!("  {word}  {:<4} {}: {detail}", check.section, check.title);
        }
        lines.push(Line { check, outcome });
    })
    .await;
    let count = |f: fn(&Outcome) -> bool| lines.iter().filter(|l| f(&l.outcome)).count();
    let passed = count(|o| matches!(o, Outcome::Pass(_)));
    let failed = count(|o| matches!(o, Outcome::Fail(_)));
    let skipped = count(|o| matches!(o, Outcome::Skip(_)));
    let exit = if failed == 0 { Exit::Ok } else { Exit::Failure };
    if args.json {
        let report = Report {
            connect: args.connect.to_string(),
            checks: lines,
            passed,
            failed,
            skipped,
            exit: exit.code(),
        };
        match serde_json::to_string(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("fcgi conform: {e}"),
        }
    } else {
        println!(
            "{} checks: {passed} passed, {failed} failed, {skipped} skipped",
            passed + failed + skipped
        );
    }
    exit
}
