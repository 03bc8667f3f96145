//! # fcgi-smol
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
//!
//! ```no_run
//! use fcgi_smol::server::{Request, Response, ServerOptions};
//! use fcgi_smol::{Listener, SmolRuntime};
//!
//! async fn hello(_req: Request, mut out: Response) -> u32 {
//!     if out.stdout("Content-Type: text/plain\r\n\r\nhello\n").await.is_err() { return 1 }
//!     0
//! }
//!
//! smol::block_on(async {
//!     let rt = SmolRuntime::new(|task| smol::spawn(task).detach());
//!     let listener = Listener::bind_tcp("127.0.0.1:9000".parse().unwrap()).await?;
//!     fcgi_smol::server(rt, ServerOptions::default()).serve(listener, hello).await
//! })
//! # .unwrap();
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

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
