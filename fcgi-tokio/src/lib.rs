#![doc = include_str!("../README.md")]
//!
//! ---
//!
//! FastCGI on tokio. This crate is a thin adapter: it gives [`fcgi_driver`] tokio's spawner,
//! timers and sockets, and re-exports its API. Every protocol rule lives in [`fcgi_core`];
//! every piece of bookkeeping shared with `fcgi-smol` lives in `fcgi_driver`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod body;
mod connector;
#[cfg(feature = "http")]
pub mod http;
mod listener;
mod runtime;

pub use body::body_from_reader;
pub use connector::TokioConnector;
pub use fcgi_core;
pub use fcgi_driver;
pub use fcgi_driver::client::Backend;
pub use fcgi_driver::{client, server};
pub use listener::{Listener, Stream};
pub use runtime::TokioRuntime;

/// A server on the tokio runtime.
pub type Server = fcgi_driver::server::Server<TokioRuntime>;

/// A server with these options, spawning on the current tokio runtime.
pub fn server(options: server::ServerOptions) -> Server {
    Server::new(TokioRuntime, options)
}

/// A pooled client on the tokio runtime.
pub type Client = fcgi_driver::client::Client<TokioRuntime, TokioConnector>;

/// A client for `backend` with these options.
pub fn client(backend: Backend, options: client::ClientOptions) -> Client {
    Client::new(TokioRuntime, TokioConnector::new(backend), options)
}
