//! `fcgi`: one command line tool for the people who run FastCGI.
//!
//! - `fcgi request`: curl for FastCGI — one request built as a web server would, the answer
//!   printed, an exit status per outcome (a health check for php-fpm's `ping.path`).
//! - `fcgi probe`: what an application declares (`GET_VALUES`) and what it really does with
//!   two requests on one connection.
//! - `fcgi bench`: load, with requests/s, latency percentiles and errors by kind.
//! - `fcgi echo`: the echo application, to see what a web server sends.
//! - `fcgi gateway`: an HTTP(S) gateway in front of php-fpm (or the echo application).
//! - `fcgi conform`: checks an application against the rules of the spec.
//!
//! Every subcommand that reports takes `--json`. Exit statuses: see [`exit`].
#![forbid(unsafe_code)]

mod bench;
mod conform;
mod connect;
mod echo;
mod exit;
mod gateway;
mod probe;
mod request;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use exit::{EXIT_STATUS_HELP, Exit};

/// mimalloc rather than the C library's allocator: a proxied request allocates and frees a
/// few dozen small buffers (hyper's, the params, the records), and glibc's malloc and free
/// were 15% of the gateway's instructions per request (callgrind).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A command line tool for FastCGI: requests and health checks, probes, load, the echo
/// application.
#[derive(Debug, Parser)]
#[command(name = "fcgi", version, after_help = EXIT_STATUS_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sends one request (curl for FastCGI) and prints the answer.
    #[command(after_help = EXIT_STATUS_HELP)]
    Request(request::Args),
    /// Asks an application what it declares (GET_VALUES) and checks what it does with two
    /// requests on one connection.
    Probe(probe::Args),
    /// Generates load and reports requests/s, latency percentiles and errors by kind.
    Bench(bench::Args),
    /// Serves the echo application (it answers with the params and body it received).
    Echo(echo::Args),
    /// Serves a PHP site over HTTP(S) in front of php-fpm, as nginx's fastcgi_pass does.
    Gateway(gateway::Args),
    /// Checks a FastCGI application against the rules of the spec, one line per rule.
    Conform(conform::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors; clap prints them.
            let usage = e.use_stderr();
            let _ = e.print();
            return if usage {
                Exit::Usage.into()
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logging(matches!(
        cli.command,
        Command::Echo(_) | Command::Gateway(_)
    ));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("fcgi: cannot start the runtime: {e}");
            return Exit::Failure.into();
        }
    };
    let exit = runtime.block_on(async move {
        match cli.command {
            Command::Request(args) => request::run(args).await,
            Command::Probe(args) => probe::run(args).await,
            Command::Bench(args) => bench::run(args).await,
            Command::Echo(args) => echo::run(args).await,
            Command::Gateway(args) => gateway::run(args).await,
            Command::Conform(args) => conform::run(args).await,
        }
    });
    // Tasks still running (a pooled connection's driver) are not waited for.
    runtime.shutdown_background();
    exit.into()
}

/// Logs on stderr, filtered by `RUST_LOG` (default: warnings; info for servers).
fn init_logging(server: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if server { "info" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
