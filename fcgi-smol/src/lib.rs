#![doc = include_str!("../README.md")]
//!
//! ---
//!
//! FastCGI on the `futures-io` traits, for smol, async-io / async-net and async-std users.
//! Like `fcgi-tokio`, this crate is a thin adapter: it gives [`fcgi_driver`] a spawner, timers
//! (`async-io`) and sockets (`async-net`), and re-exports its API, so both adapters behave the
//! same and run one shared behavioural suite.
//!
//! The executor is yours: hand a spawn function to [`SmolRuntime::new`] — smol's
//! (`smol::spawn(f).detach()`), an `async_executor::Executor`'s, or async-std's
//! (`async_std::task::spawn(f)`). Any `futures-io` stream works as a connection through
//! [`FuturesIo`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod blocking;
mod connector;
#[cfg(feature = "http")]
pub mod http;
mod io;
mod listener;
mod runtime;

pub use connector::SmolConnector;
pub use fcgi_core;
pub use fcgi_driver;
pub use fcgi_driver::client::Backend;
pub use fcgi_driver::{client, server};
pub use io::{FuturesIo, body_from_reader};
pub use listener::{Listener, Stream};
pub use runtime::SmolRuntime;

/// A server on a futures-io runtime.
pub type Server = fcgi_driver::server::Server<SmolRuntime>;

/// A server with these options, spawning through `rt`.
pub fn server(rt: SmolRuntime, options: server::ServerOptions) -> Server {
    Server::new(rt, options)
}

/// A pooled client on a futures-io runtime.
pub type Client = fcgi_driver::client::Client<SmolRuntime, SmolConnector>;

/// A client for `backend` with these options, spawning through `rt`.
pub fn client(rt: SmolRuntime, backend: Backend, options: client::ClientOptions) -> Client {
    Client::new(rt, SmolConnector::new(backend), options)
}
