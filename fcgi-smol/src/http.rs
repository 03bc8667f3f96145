//! HTTP ⇄ FastCGI on smol or async-std (feature `http`): [`fcgi_http`] with the runtime
//! filled in.
//!
//! - [`gateway`] builds the HTTP → FastCGI [`Gateway`] (a `tower::Service` for any
//!   `http_body::Body`) in front of php-fpm or any FastCGI application.
//! - [`app::ServiceHandler`] wraps any tower `Service` (an axum `Router`, say) as a FastCGI
//!   application: serve it with this crate's `server(..).serve(listener, handler)`.
//!
//! ```no_run
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use fcgi_smol::SmolRuntime;
//! use fcgi_smol::http::{GatewayConfig, ScriptResolution, gateway};
//!
//! # fn spawn(_: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) {}
//! let rt = SmolRuntime::new(spawn); // e.g. |f| smol::spawn(f).detach()
//! let backend = "tcp:127.0.0.1:9000".parse()?;
//! let config = GatewayConfig::new("/var/www/html", ScriptResolution::split_path());
//! let service = gateway(rt, backend, Default::default(), config).errors_as_responses();
//! # let _ = service; Ok(()) }
//! ```

pub use fcgi_http::gateway::{
    ErrorsAsResponses, GatewayBody, GatewayConfig, GatewayError, Outcome, UnknownLength,
};
pub use fcgi_http::request::{ConnInfo, ScriptResolution};
pub use fcgi_http::{app, request, response};

use crate::{Backend, SmolConnector, SmolRuntime, client::ClientOptions};

/// The HTTP → FastCGI gateway on smol or async-std.
pub type Gateway = fcgi_http::gateway::Gateway<SmolRuntime, SmolConnector>;

/// A gateway to `backend`, with a pooled client configured by `client`, spawning on `rt`.
pub fn gateway(
    rt: SmolRuntime,
    backend: Backend,
    client: ClientOptions,
    config: GatewayConfig,
) -> Gateway {
    Gateway::new(crate::client(rt, backend, client), config)
}
