//! # fcgi-tokio
//!
//! FastCGI on tokio. This crate is a thin adapter: it gives [`fcgi_driver`] tokio's spawner,
//! timers and sockets, and re-exports its API. Every protocol rule lives in [`fcgi_core`];
//! every piece of bookkeeping shared with `fcgi-smol` lives in `fcgi_driver`.
//!
//! ## Calling php-fpm (your program is the web server)
//!
//! ```no_run
//! use fcgi_tokio::client::{ClientOptions, ClientRequest};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let php = fcgi_tokio::client("unix:/run/php/php8.2-fpm.sock".parse()?, ClientOptions::default());
//! let request = ClientRequest::php_fpm("GET", "/var/www/html", "/index.php", "");
//! let (stdout, end) = php.send(request).await?.collect(16 << 20).await?;
//! println!("{} bytes, status {}, stderr {:?}", stdout.len(), end.app_status, end.stderr);
//! # Ok(())
//! # }
//! ```
//!
//! ## Serving (your program is the FastCGI application)
//!
//! ```no_run
//! use fcgi_tokio::server::{Request, Response, ServerOptions};
//!
//! async fn hello(req: Request, mut out: Response) -> u32 {
//!     let uri = req.params().get_str("REQUEST_URI").unwrap_or("/").to_owned();
//!     let page = format!("Content-Type: text/plain\r\n\r\nhello from {uri}\n");
//!     if out.stdout(page).await.is_err() { return 1 }
//!     0
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let server = fcgi_tokio::server(ServerOptions::default());
//! let listener = fcgi_tokio::Listener::bind_tcp("127.0.0.1:9000".parse().unwrap()).await?;
//! server.serve(listener, hello).await
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

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
