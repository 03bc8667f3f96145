//! What the examples share: the HTTP server (`fcgi_tokio::http::serve`: hyper, HTTP/1.1 and
//! HTTP/2), a small command-line parser, and a minimal `tracing` logger.
//!
//! Each example includes this file with `#[path = "common/mod.rs"] mod common;`. The part
//! that matters for `fcgi-http` is in [`serve`]: every connection gets a
//! [`ConnInfo`](fcgi_http::request::ConnInfo) request extension (local and peer address, TLS
//! or not), which the gateway turns into `SERVER_ADDR`/`SERVER_PORT`,
//! `REMOTE_ADDR`/`REMOTE_PORT`, `HTTPS` and `REQUEST_SCHEME`.
// Not every example uses every helper.
#![allow(dead_code)]

use std::convert::Infallible;
use std::fmt::{self, Display};
use std::future::Future;
use std::net::SocketAddr;
use std::str::FromStr;

use fcgi_tokio::http::ServeOptions;
use http::{Request, Response};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tower_service::Service;

/// A boxed error, for `main`'s plumbing.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

// ---------------------------------------------------------------------------------------
// HTTP server glue
// ---------------------------------------------------------------------------------------

/// Serves HTTP/1.1 and HTTP/2 on `listener` with `service` until `shutdown` completes, then
/// lets in-flight requests finish: `fcgi_tokio::http::serve`, which gives every request the
/// connection's [`ConnInfo`](fcgi_http::request::ConnInfo) and logs one access line per
/// request.
pub(crate) async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    shutdown: impl Future<Output = ()>,
) where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    fcgi_tokio::http::serve(listener, None, service, shutdown, ServeOptions::default()).await;
}

/// Completes on Ctrl-C (`SIGINT`) or `SIGTERM`: the signals that ask a server to stop.
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            // No SIGTERM handler: Ctrl-C still works.
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

// ---------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------

/// A command-line mistake: printed with the usage text, exit status 2.
#[derive(Debug)]
pub(crate) struct UsageError(pub(crate) String);

impl Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The arguments after the program name, read flag by flag.
pub(crate) struct Args {
    rest: std::vec::IntoIter<String>,
}

impl Args {
    /// The process's arguments.
    pub(crate) fn from_env() -> Self {
        Self::new(std::env::args().skip(1).collect())
    }

    /// The given arguments (without the program name).
    pub(crate) fn new(args: Vec<String>) -> Self {
        Self {
            rest: args.into_iter(),
        }
    }

    /// The next flag, or `None` at the end. `--flag=value` is split into the flag and a value
    /// that the following [`value`](Self::value) call returns.
    pub(crate) fn next_flag(&mut self) -> Option<String> {
        let arg = self.rest.next()?;
        if let Some((flag, value)) = arg.split_once('=').filter(|(f, _)| f.starts_with("--")) {
            // Put the value back in front of the remaining arguments.
            let mut rest: Vec<String> = vec![value.to_owned()];
            rest.extend(self.rest.by_ref());
            self.rest = rest.into_iter();
            return Some(flag.to_owned());
        }
        Some(arg)
    }

    /// The value following `flag`, parsed.
    pub(crate) fn value<T>(&mut self, flag: &str) -> Result<T, UsageError>
    where
        T: FromStr,
        T::Err: Display,
    {
        let raw = self
            .rest
            .next()
            .ok_or_else(|| UsageError(format!("{flag} needs a value")))?;
        raw.parse()
            .map_err(|e| UsageError(format!("{flag} {raw:?}: {e}")))
    }
}

/// The error for an argument no example knows.
pub(crate) fn unknown(arg: &str) -> UsageError {
    UsageError(format!("unknown argument {arg:?}"))
}

/// Binds the HTTP listener, with a message naming the address on failure.
pub(crate) async fn bind(addr: SocketAddr) -> Result<TcpListener, BoxError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}").into())
}

// ---------------------------------------------------------------------------------------
// Logging
// ---------------------------------------------------------------------------------------

/// Prints `tracing` events of level INFO and above to stderr (tracing-subscriber): the
/// gateway reports there what the FastCGI application wrote to `STDERR` and why a request
/// failed (502, 504...), and the HTTP server its access lines.
pub(crate) fn init_logging() {
    // Fails only if a logger is already installed, which is then fine.
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// What every demo's `main` does: parse the arguments (usage and exit status 2 on a mistake,
/// usage and 0 for `--help`), set up logging, run, and turn an error into exit status 1.
pub(crate) async fn main<O, Fut>(
    name: &str,
    usage: &str,
    parse: fn(Args) -> Result<Option<O>, UsageError>,
    run: fn(O) -> Fut,
) -> std::process::ExitCode
where
    Fut: std::future::Future<Output = Result<(), BoxError>>,
{
    use std::process::ExitCode;
    let options = match parse(Args::from_env()) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{usage}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{name}: {e}\n\n{usage}");
            return ExitCode::from(2);
        }
    };
    init_logging();
    match run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}
