//! What the examples share: the HTTP server glue (hyper on tokio, plain or TLS, HTTP/1.1 and
//! HTTP/2), a self-signed certificate for TLS, a small command-line parser, and a minimal
//! `tracing` logger.
//!
//! Each example includes this file with `#[path = "common/mod.rs"] mod common;`. The part
//! that matters for `fcgi-http` is in [`serve`]: every connection gets a [`ConnInfo`]
//! request extension (local and peer address, TLS or not), which the gateway turns into
//! `SERVER_ADDR`/`SERVER_PORT`, `REMOTE_ADDR`/`REMOTE_PORT`, `HTTPS` and `REQUEST_SCHEME`.
// Not every example uses every helper.
#![allow(dead_code)]

use std::convert::Infallible;
use std::fmt::{self, Display, Write as _};
use std::future::Future;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use fcgi_http::request::ConnInfo;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tower::ServiceExt as _;
use tower_service::Service;

/// A boxed error, for `main`'s plumbing.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long in-flight requests may run after Ctrl-C before the server stops anyway.
const GRACE_PERIOD: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// HTTP server glue
// ---------------------------------------------------------------------------------------

/// Serves HTTP/1.1 and HTTP/2 on `listener` with `service` until `shutdown` completes, then
/// lets in-flight requests finish (up to [`GRACE_PERIOD`]).
///
/// With `tls`, every connection is a TLS connection (ALPN offers `h2` and `http/1.1`);
/// without, plain HTTP/1.1 and HTTP/2 with prior knowledge (`curl --http2-prior-knowledge`).
/// Each request gets the connection's [`ConnInfo`] as an extension, and one access-log
/// line on stderr.
pub(crate) async fn serve<S, B>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
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
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // With a timer, hyper enforces its default 30 s limit on reading a request head.
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE and friends: wait a little instead of spinning.
                    eprintln!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Small responses (the usual case for a gateway) go out at once.
        if let Err(e) = stream.set_nodelay(true) {
            eprintln!("{remote}: cannot set TCP_NODELAY: {e}");
        }
        let local = match stream.local_addr() {
            Ok(local) => local,
            Err(e) => {
                eprintln!("{remote}: no local address: {e}");
                continue;
            }
        };
        // What the gateway needs to know about the connection (CGI's SERVER_*, REMOTE_*,
        // HTTPS): the HTTP server is the only one who knows it.
        let info = ConnInfo::new(local, remote, tls.is_some());
        let service = service.clone();
        let hyper_service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(info);
            let line = format!(
                "{remote} \"{} {} {:?}\"",
                request.method(),
                request.uri(),
                request.version()
            );
            let response = service.clone().oneshot(request);
            async move {
                let response = response.await?;
                eprintln!("{line} {}", response.status().as_u16());
                Ok::<_, Infallible>(response)
            }
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let result =
                match tls {
                    None => {
                        let conn = builder.serve_connection(TokioIo::new(stream), hyper_service);
                        watcher.watch(conn).await
                    }
                    Some(acceptor) => {
                        let stream =
                            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                                .await
                            {
                                Ok(Ok(stream)) => stream,
                                Ok(Err(e)) => {
                                    eprintln!("{remote}: TLS handshake failed: {e}");
                                    return;
                                }
                                Err(_) => {
                                    eprintln!("{remote}: TLS handshake timed out");
                                    return;
                                }
                            };
                        let conn = builder.serve_connection(TokioIo::new(stream), hyper_service);
                        watcher.watch(conn).await
                    }
                };
            if let Err(e) = result {
                eprintln!("{remote}: connection error: {e}");
            }
        });
    }
    drop(listener);
    eprintln!("shutting down: waiting for open connections to finish");
    if tokio::time::timeout(GRACE_PERIOD, graceful.shutdown())
        .await
        .is_err()
    {
        eprintln!(
            "some connections were still open after {}s; stopping anyway",
            GRACE_PERIOD.as_secs()
        );
    }
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
// TLS
// ---------------------------------------------------------------------------------------

/// A freshly generated self-signed certificate and the TLS acceptor using it.
pub(crate) struct SelfSigned {
    /// Accepts TLS connections with the certificate (ALPN `h2`, `http/1.1`).
    pub(crate) acceptor: TlsAcceptor,
    /// The certificate in PEM, for `curl --cacert`.
    pub(crate) cert_pem: String,
    /// SHA-256 of the certificate (DER), as `AB:CD:...` (what
    /// `openssl x509 -noout -fingerprint -sha256` prints).
    pub(crate) fingerprint: String,
}

/// The names the self-signed certificate is valid for.
pub(crate) const SELF_SIGNED_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

impl SelfSigned {
    /// Generates a key pair and a certificate for [`SELF_SIGNED_NAMES`] (rcgen), and a
    /// rustls server configuration using it (ring provider, TLS 1.2 and 1.3).
    pub(crate) fn generate() -> Result<Self, BoxError> {
        let names: Vec<String> = SELF_SIGNED_NAMES.iter().map(|&n| n.to_owned()).collect();
        let certified = rcgen::generate_simple_self_signed(names)?;
        let cert_der = certified.cert.der().clone();
        let key_der =
            rustls::pki_types::PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der());

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![cert_der.clone()], key_der.into())?;
        // Offer HTTP/2 first; hyper's auto builder then reads which one the client speaks.
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

        let digest = ring::digest::digest(&ring::digest::SHA256, &cert_der);
        let mut fingerprint = String::new();
        for (i, byte) in digest.as_ref().iter().enumerate() {
            if i > 0 {
                fingerprint.push(':');
            }
            let _ = write!(fingerprint, "{byte:02X}");
        }
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            cert_pem: certified.cert.pem(),
            fingerprint,
        })
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

/// Prints `tracing` events of level INFO and above to stderr: the gateway reports there
/// what the FastCGI application wrote to `STDERR`, and why a request failed (502, 504...).
/// A real program would use `tracing-subscriber`; this is enough for the examples.
pub(crate) fn init_logging() {
    // Fails only if a logger is already installed, which is then fine.
    let _ = tracing::subscriber::set_global_default(StderrLog);
}

struct StderrLog;

impl tracing::Subscriber for StderrLog {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= tracing::Level::INFO
    }

    fn new_span(&self, _span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        // Spans are not shown; every one gets the same (never used) id.
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _span: &tracing::span::Id, _values: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _span: &tracing::span::Id, _follows: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        struct Line(String);
        impl tracing::field::Visit for Line {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
                if field.name() == "message" {
                    let _ = write!(self.0, " {value:?}");
                } else {
                    let _ = write!(self.0, " {}={value:?}", field.name());
                }
            }

            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "message" {
                    let _ = write!(self.0, " {value}");
                } else {
                    let _ = write!(self.0, " {}={value:?}", field.name());
                }
            }
        }
        let mut line = Line(String::new());
        event.record(&mut line);
        let meta = event.metadata();
        eprintln!("{} {}:{}", meta.level(), meta.target(), line.0);
    }

    fn enter(&self, _span: &tracing::span::Id) {}

    fn exit(&self, _span: &tracing::span::Id) {}
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
