//! `fcgi conform`: does a FastCGI application follow the spec? Each check writes records
//! byte for byte ([`wire`]) and judges the answer against one rule, named by its section of
//! the 1996 specification (our matrix: `specifications/fastcgi.md`). With `--web-server`,
//! the other direction ([`webserver`]): a web server's requests are recorded and judged.
//! One line per check (pass, FAIL, skip), a summary, exit status 1 on any failure, `--json`.

mod app;
mod webserver;
mod wire;

use std::time::Duration;

use fcgi_tokio::Backend;
use serde::Serialize;

use crate::connect::{parse_backend, parse_seconds};
use crate::exit::Exit;

/// `fcgi conform`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("direction").args(["connect", "web_server"]).required(true)))]
pub(crate) struct Args {
    /// The application to check: tcp:HOST:PORT, unix:PATH, HOST:PORT, or a socket path.
    #[arg(long, value_parser = parse_backend)]
    connect: Option<Backend>,
    /// Check a web server instead: act as a recording application on --listen, and judge
    /// the requests it forwards (send them with --drive, or by hand as listed).
    #[arg(long, requires = "listen")]
    web_server: bool,
    /// Where the recording application listens (tcp:HOST:PORT, port 0 picks one; unix:PATH).
    #[arg(long, value_parser = parse_backend, requires = "web_server")]
    listen: Option<Backend>,
    /// The web server's HTTP address (http://HOST:PORT): send the requests to it.
    #[arg(long, requires = "web_server", value_name = "URL")]
    drive: Option<String>,
    /// Without --drive: how long to wait for the requests to arrive, in seconds.
    #[arg(long, default_value = "120", value_parser = parse_seconds, value_name = "SECS")]
    wait: Duration,
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
    /// The request judged (web-server checks).
    #[serde(skip_serializing_if = "Option::is_none")]
    request: Option<String>,
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
    let Some(connect) = args.connect.clone() else {
        return run_web_server(args).await;
    };
    // Nothing to check if nothing answers: that is a connection failure, not a verdict.
    if let Err(e) = wire::Wire::connect(&connect, args.timeout).await {
        eprintln!("fcgi conform: cannot connect to {connect}: {e}");
        return if e.kind() == std::io::ErrorKind::TimedOut {
            Exit::Timeout
        } else {
            Exit::Connect
        };
    }
    let target = app::Target {
        backend: connect.clone(),
        timeout: args.timeout,
        root: args.root.clone(),
        path: args.path.clone(),
    };
    if !args.json {
        println!("fcgi conform: {connect} (a FastCGI application)");
    }
    let mut lines = Vec::new();
    app::run(&target, |check, outcome| {
        if !args.json {
            print_line(&check, &outcome);
        }
        lines.push(Line {
            request: None,
            check,
            outcome,
        });
    })
    .await;
    summary(connect.to_string(), lines, args.json)
}

fn print_line(check: &Check, outcome: &Outcome) {
    let (word, detail) = match outcome {
        Outcome::Pass(d) => ("pass", d),
        Outcome::Fail(d) => ("FAIL", d),
        Outcome::Skip(d) => ("skip", d),
    };
    println!("  {word}  {:<4} {}: {detail}", check.section, check.title);
}

/// Prints the summary (or the JSON report); the exit status.
fn summary(target: String, lines: Vec<Line>, json: bool) -> Exit {
    let count = |f: fn(&Outcome) -> bool| lines.iter().filter(|l| f(&l.outcome)).count();
    let passed = count(|o| matches!(o, Outcome::Pass(_)));
    let failed = count(|o| matches!(o, Outcome::Fail(_)));
    let skipped = count(|o| matches!(o, Outcome::Skip(_)));
    let exit = if failed == 0 { Exit::Ok } else { Exit::Failure };
    if json {
        let report = Report {
            connect: target,
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

/// `--web-server`: record what a web server sends, judge it.
async fn run_web_server(args: Args) -> Exit {
    use std::sync::Arc;
    let Some(listen) = args.listen.clone() else {
        eprintln!("fcgi conform: --web-server needs --listen");
        return Exit::Usage;
    };
    let recorder = Arc::new(webserver::Recorder::default());
    let (place, acceptor) = match listen {
        Backend::Tcp(addr) => match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                let place = l
                    .local_addr()
                    .map_or_else(|_| addr.to_string(), |a| a.to_string());
                let recorder = Arc::clone(&recorder);
                let task = tokio::spawn(async move {
                    let mut n = 0;
                    while let Ok((sock, _)) = l.accept().await {
                        n += 1;
                        let _ = sock.set_nodelay(true);
                        tokio::spawn(webserver::record_connection(sock, Arc::clone(&recorder), n));
                    }
                });
                (format!("tcp:{place}"), task)
            }
            Err(e) => {
                eprintln!("fcgi conform: cannot listen on {addr}: {e}");
                return Exit::Failure;
            }
        },
        Backend::Unix(path) => match fcgi_tokio::Listener::bind_unix(&path) {
            Ok(fcgi_tokio::Listener::Unix(l)) => {
                let recorder = Arc::clone(&recorder);
                let task = tokio::spawn(async move {
                    let mut n = 0;
                    while let Ok((sock, _)) = l.accept().await {
                        n += 1;
                        tokio::spawn(webserver::record_connection(sock, Arc::clone(&recorder), n));
                    }
                });
                (format!("unix:{}", path.display()), task)
            }
            Ok(_) | Err(_) => {
                eprintln!("fcgi conform: cannot listen on {}", path.display());
                return Exit::Failure;
            }
        },
        other => {
            eprintln!("fcgi conform: cannot listen on {other}");
            return Exit::Usage;
        }
    };
    {
        use std::io::Write;
        // Under --json, stdout holds the report alone: the address goes to stderr.
        let mut out: Box<dyn Write> = if args.json {
            Box::new(std::io::stderr().lock())
        } else {
            Box::new(std::io::stdout().lock())
        };
        let _ = writeln!(
            out,
            "fcgi conform: recording on {place}: point the web server's FastCGI at it"
        );
        if args.drive.is_none() {
            let _ = writeln!(
                out,
                "send these requests to the web server (http://HOST:PORT):"
            );
            for d in webserver::drives() {
                let _ = writeln!(out, "  {}", d.curl("http://HOST:PORT"));
            }
        }
        let _ = out.flush();
    }
    let statuses = match &args.drive {
        Some(url) => match webserver::drive(url, args.timeout).await {
            Ok(statuses) => Some(statuses),
            Err(e) => {
                eprintln!("fcgi conform: {e}");
                acceptor.abort();
                return Exit::Connect;
            }
        },
        None => None,
    };
    let wait = if statuses.is_some() {
        args.timeout
    } else {
        args.wait
    };
    webserver::wait_for_all(&recorder, statuses.as_ref(), wait).await;
    acceptor.abort();
    let mut lines = Vec::new();
    webserver::judge(&recorder, statuses.as_ref(), |check, request, outcome| {
        if !args.json {
            let (word, detail) = match &outcome {
                Outcome::Pass(d) => ("pass", d),
                Outcome::Fail(d) => ("FAIL", d),
                Outcome::Skip(d) => ("skip", d),
            };
            println!(
                "  {word}  {:<12} {request}: {}: {detail}",
                check.section, check.title
            );
        }
        lines.push(Line {
            request: Some(request),
            check,
            outcome,
        });
    });
    summary(place, lines, args.json)
}
