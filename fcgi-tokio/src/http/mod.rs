//! HTTP ⇄ FastCGI on tokio (feature `http`): [`fcgi_http`] with the runtime filled in.
//!
//! - [`gateway`] builds the HTTP → FastCGI [`Gateway`] (a `tower::Service` for any
//!   `http_body::Body`) in front of php-fpm or any FastCGI application.
//! - [`app::ServiceHandler`] wraps any tower `Service` (an axum `Router`, say) as a FastCGI
//!   application: serve it with this crate's `server(..).serve(listener, handler)`.
//! - [`serve`] is an HTTP server (hyper: HTTP/1.1 and HTTP/2, plain or TLS, graceful
//!   shutdown, access log) giving each request its [`ConnInfo`]: the gateway behind it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use fcgi_tokio::http::{GatewayConfig, ScriptResolution, gateway};
//!
//! let backend = "unix:/run/php/php8.2-fpm.sock".parse()?;
//! let config = GatewayConfig::new("/var/www/html", ScriptResolution::split_path());
//! let service = gateway(backend, Default::default(), config).errors_as_responses();
//! // Serve `service` with hyper, axum (`Router::fallback_service`), or any tower stack.
//! # let _ = service; Ok(()) }
//! ```

pub use fcgi_http::gateway::{
    ErrorsAsResponses, GatewayBody, GatewayConfig, GatewayError, LocalRoot, Outcome, StaticFiles,
    StaticFilesHandle, UnknownLength,
};
pub use fcgi_http::request::{ConnInfo, ScriptResolution};
pub use fcgi_http::{app, request, response};

mod serve;

pub use serve::{ServeOptions, serve};
/// The TLS acceptor [`serve`] takes (tokio-rustls, re-exported).
pub use tokio_rustls::{TlsAcceptor, rustls};

use crate::{Backend, TokioConnector, TokioRuntime, client::ClientOptions};

/// The HTTP → FastCGI gateway on tokio.
pub type Gateway = fcgi_http::gateway::Gateway<TokioRuntime, TokioConnector>;

/// A gateway to `backend`, with a pooled client configured by `client`.
pub fn gateway(backend: Backend, client: ClientOptions, config: GatewayConfig) -> Gateway {
    Gateway::new(crate::client(backend, client), config)
}

/// Static files for the gateway's try-files mode ([`GatewayConfig::static_files`]), served
/// by tower-http's file service: `Range` requests, `If-Modified-Since` / `If-None-Match`,
/// content types from the extension, and precompressed `.br` / `.gz` variants next to the
/// file when the client accepts them. Methods other than `GET` and `HEAD` get `405`.
///
/// ```no_run
/// use fcgi_tokio::http::{GatewayConfig, ScriptResolution, static_files};
/// let mut config = GatewayConfig::new("/var/www/html", ScriptResolution::split_path());
/// config.try_files = Some("index.php".into()); // try_files $uri $uri/ /index.php?$args
/// config.static_files = Some(static_files());
/// ```
pub fn static_files() -> StaticFilesHandle {
    StaticFilesHandle(std::sync::Arc::new(TowerHttpFiles))
}

/// tower-http's `ServeFile` for one already-checked file per request.
struct TowerHttpFiles;

impl StaticFiles for TowerHttpFiles {
    fn serve(
        &self,
        request: ::http::Request<()>,
        file: std::path::PathBuf,
    ) -> fcgi_driver::runtime::BoxFuture<::http::Response<GatewayBody>> {
        use tower::ServiceExt;
        Box::pin(async move {
            let service = tower_http::services::ServeFile::new(file)
                .precompressed_br()
                .precompressed_gzip();
            match service.oneshot(request).await {
                Ok(response) => response.map(GatewayBody::file),
                Err(never) => match never {},
            }
        })
    }
}
