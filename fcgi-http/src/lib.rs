#![doc = include_str!("../README.md")]
//!
//! ---
//!
//! FastCGI ⇄ HTTP in both directions, on `http`, `http-body` and `tower`, over the
//! runtime-neutral `fcgi-driver` (the `http` feature of `fcgi-tokio` and `fcgi-smol` fills in
//! the runtime).
//!
//! - [`gateway`]: **HTTP → FastCGI**, the web-server side. [`gateway::Gateway`] is a
//!   `tower::Service<http::Request<B>>` for any `http_body::Body` that runs requests on
//!   php-fpm (or any FastCGI application) the way nginx's `fastcgi_pass` does: nginx's
//!   `fastcgi_params`, exact `CONTENT_LENGTH` (bodies of unknown length buffered or refused),
//!   the response streamed as it arrives, local redirects re-dispatched, and failures mapped to
//!   502 / 503 / 504.
//! - [`app`]: **FastCGI → HTTP**, the application side. [`app::ServiceHandler`] serves any
//!   tower `Service` (an axum `Router`, say) as a FastCGI application behind nginx, Apache or
//!   lighttpd, in all three roles.
//! - [`request`]: the HTTP head → CGI variables mapping the gateway uses (pure).
//! - [`response`]: the incremental CGI response head parser the gateway uses (pure).
//!
//! Demos: `cargo run -p fcgi-http --example reverse_proxy` (both halves in one binary),
//! `migration` (some routes in Rust, the rest in PHP) and `axum_php` (php-fpm behind
//! `axum::serve`, with the `axum` feature). The PHP gateway as a product is `fcgi gateway`
//! (the `fcgi-cli` crate).
//!
//! # Features
//!
//! - `gateway` (on by default): the [`gateway`] module; brings `tempfile` (request bodies of
//!   unknown length are spilled to a temporary file).
//! - `app` (on by default): the [`app`] module.
//! - `tracing` (off by default): log events (gateway errors, refused requests, handler
//!   panics, backends going down and coming back) through `tracing`; without it nothing is
//!   logged and `tracing` is not a dependency. The adapters' `tracing` feature turns it on.
//! - `axum` (off by default): axum 0.8 glue for the connection facts.
//!   - [`ConnInfo`] implements axum's `Connected` for `axum::serve` on a TCP listener, so
//!     `router.into_make_service_with_connect_info::<ConnInfo>()` gives PHP the real
//!     `REMOTE_ADDR`/`REMOTE_PORT` and `SERVER_ADDR`/`SERVER_PORT`.
//!   - The [`gateway`] also reads axum's `ConnectInfo<ConnInfo>` and `ConnectInfo<SocketAddr>`
//!     (the remote address only; the local one then comes from
//!     [`GatewayConfig::fallback_conn_info`](gateway::GatewayConfig::fallback_conn_info)).
//!   - [`app::request_parts`] also inserts `ConnectInfo<SocketAddr>` built from
//!     `REMOTE_ADDR`/`REMOTE_PORT`, so the axum extractor works in an application served
//!     by [`app::ServiceHandler`].
//!
//!   Without it, the HTTP server glue inserts a [`ConnInfo`] extension per connection itself
//!   (see [`ConnInfo`]).
//! - `balance` (off by default, needs `gateway`): several backends behind one gateway,
//!   `balance::Balanced`: `tower::balance` (power of two choices) over health-checked
//!   gateways, a backend refusing connections skipped until it accepts one again.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use fcgi_core;

#[cfg(feature = "app")]
pub mod app;
#[cfg(feature = "axum")]
mod axum_conn;
#[cfg(feature = "balance")]
pub mod balance;
#[cfg(feature = "gateway")]
pub mod gateway;
mod hop;
#[doc(hidden)]
pub mod log;
pub mod request;
pub mod response;

pub use request::{CgiConfig, ConnInfo, MapError, ScriptResolution, build_params};
pub use response::{
    CgiResponseError, CgiResponseParser, Head, LocalRedirect, ParsedHead, ParserConfig,
};
