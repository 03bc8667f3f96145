//! HTTP ⇄ FastCGI on tokio (feature `http`): [`fcgi_http`] with the runtime filled in.
//!
//! - [`gateway`] builds the HTTP → FastCGI [`Gateway`] (a `tower::Service` for any
//!   `http_body::Body`) in front of php-fpm or any FastCGI application.
//! - [`app::ServiceHandler`] wraps any tower `Service` (an axum `Router`, say) as a FastCGI
//!   application: serve it with this crate's `server(..).serve(listener, handler)`.
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
    ErrorsAsResponses, GatewayBody, GatewayConfig, GatewayError, Outcome, UnknownLength,
};
pub use fcgi_http::request::{ConnInfo, ScriptResolution};
pub use fcgi_http::{app, request, response};

use crate::{Backend, TokioConnector, TokioRuntime, client::ClientOptions};

/// The HTTP → FastCGI gateway on tokio.
pub type Gateway = fcgi_http::gateway::Gateway<TokioRuntime, TokioConnector>;

/// A gateway to `backend`, with a pooled client configured by `client`.
pub fn gateway(backend: Backend, client: ClientOptions, config: GatewayConfig) -> Gateway {
    Gateway::new(crate::client(backend, client), config)
}
