//! An HTTP server on tokio (hyper) for a tower service such as the gateway: HTTP/1.1 and
//! HTTP/2, plain or TLS, each request carrying its connection's [`ConnInfo`], graceful
//! shutdown, an access log.

// Log events: fcgi-http's macros (through `tracing` when its `tracing` feature is on, which
// this crate's `tracing` feature turns on; nothing otherwise).
use fcgi_http::{__log_debug as log_debug, __log_info as log_info, __log_warn as log_warn};

/// Whether an access-log line would be written (formatted only then).
fn access_log_enabled() -> bool {
    fcgi_http::__info_enabled!(target: "fcgi_tokio::http::access")
}

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;
use tower_service::Service;

use super::ConnInfo;

/// How [`serve`] runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeOptions {
    /// Connections open at once at most; beyond, new ones wait in the listen backlog.
    /// Default 4096.
    pub max_connections: usize,
    /// The longest a TLS handshake may take. Default 10 s.
    pub handshake_timeout: Duration,
    /// After `shutdown`, how long requests in flight may run before the server stops
    /// anyway. Default 10 s.
    pub grace_period: Duration,
    /// One `tracing` info event per request (target `fcgi_tokio::http::access`): peer,
    /// request line, status — with the `tracing` feature. Default on.
    pub access_log: bool,
}

fcgi_core::__option_setters!(ServeOptions {
    max_connections: usize,
    handshake_timeout: Duration,
    grace_period: Duration,
    access_log: bool,
});

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            handshake_timeout: Duration::from_secs(10),
            grace_period: Duration::from_secs(10),
            access_log: true,
        }
    }
}

/// Serves HTTP/1.1 and HTTP/2 (hyper's auto builder; over TLS, ALPN decides) on `listener`
/// with `service` until `shutdown` completes, then lets requests in flight finish (up to
/// [`ServeOptions::grace_period`]).
///
/// Every request gets its connection's [`ConnInfo`] (local and peer address, TLS or not) as
/// an extension: the gateway turns it into `SERVER_ADDR`/`SERVER_PORT`,
/// `REMOTE_ADDR`/`REMOTE_PORT`, `HTTPS` and `REQUEST_SCHEME`. Sockets get `TCP_NODELAY`;
/// hyper's 30 s limit on reading a request head applies.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use fcgi_tokio::http::{GatewayConfig, ScriptResolution, ServeOptions, gateway, serve};
///
/// let config = GatewayConfig::new("/var/www/html", ScriptResolution::split_path());
/// let php = gateway("unix:/run/php/php8.2-fpm.sock".parse()?, Default::default(), config);
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// let stop = async { let _ = tokio::signal::ctrl_c().await; };
/// serve(listener, None, php.errors_as_responses(), stop, ServeOptions::default()).await;
/// # Ok(()) }
/// ```
// Errors and the access-log line are only logged, and logging is the `tracing` feature.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub async fn serve<S, B>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    service: S,
    shutdown: impl Future<Output = ()>,
    options: ServeOptions,
) where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // With a timer, hyper enforces its default 30 s limit on reading a request head.
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(options.max_connections.max(1)));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A slot first: at the cap, connections wait in the backlog, not in memory here.
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE and friends: wait a little instead of spinning.
                    log_warn!(target: "fcgi_tokio::http", error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if let Err(e) = stream.set_nodelay(true) {
            log_debug!(target: "fcgi_tokio::http", %remote, error = %e, "cannot set TCP_NODELAY");
        }
        let local = match stream.local_addr() {
            Ok(local) => local,
            Err(e) => {
                log_debug!(target: "fcgi_tokio::http", %remote, error = %e, "no local address");
                continue;
            }
        };
        // What the gateway needs to know about the connection (CGI's SERVER_*, REMOTE_*,
        // HTTPS): only the HTTP server knows it.
        let info = ConnInfo::new(local, remote, tls.is_some());
        let service = service.clone();
        let access_log = options.access_log;
        let hyper_service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(info);
            // Formatted only when someone listens (RUST_LOG may filter the access log out).
            let line = (access_log && access_log_enabled()).then(|| {
                format!(
                    "{} {} {:?}",
                    request.method(),
                    request.uri(),
                    request.version()
                )
            });
            let response = service.clone().oneshot(request);
            async move {
                let response = response.await?;
                if let Some(line) = line {
                    log_info!(target: "fcgi_tokio::http::access", "{remote} \"{line}\" {}", response.status().as_u16());
                }
                Ok::<_, Infallible>(response)
            }
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let handshake_timeout = options.handshake_timeout;
        tokio::spawn(async move {
            let result = match tls {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), hyper_service);
                    watcher.watch(conn).await
                }
                Some(acceptor) => {
                    let stream = match tokio::time::timeout(
                        handshake_timeout,
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            log_debug!(target: "fcgi_tokio::http", %remote, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            log_debug!(target: "fcgi_tokio::http", %remote, "TLS handshake timed out");
                            return;
                        }
                    };
                    let conn = builder.serve_connection(TokioIo::new(stream), hyper_service);
                    watcher.watch(conn).await
                }
            };
            if let Err(e) = result {
                log_debug!(target: "fcgi_tokio::http", %remote, error = %e, "connection error");
            }
            drop(slot);
        });
    }
    drop(listener);
    log_info!(target: "fcgi_tokio::http", "shutting down: waiting for open connections to finish");
    if tokio::time::timeout(options.grace_period, graceful.shutdown())
        .await
        .is_err()
    {
        log_warn!(
            target: "fcgi_tokio::http",
            "connections still open after {:?}; stopping anyway",
            options.grace_period
        );
    }
}
