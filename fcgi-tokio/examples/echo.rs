//! The echo FastCGI application on tokio (behaviour: `fcgi_echo`).
//!
//! ```text
//! cargo run -p fcgi-tokio --example echo -- --tcp 127.0.0.1:9000
//! cargo run -p fcgi-tokio --example echo -- --unix /tmp/echo.sock
//! cargo run -p fcgi-tokio --example echo            # fd 0 is a listening socket (spawn-fcgi, mod_fcgid)
//! ```
//! Multiplexing is on; all three roles are served. Ctrl-C or SIGTERM stops accepting and
//! lets the requests in flight finish (exit 0).

use std::io;

use fcgi_core::server::RoleSet;
use fcgi_echo::{self as echo, ListenArg};
use fcgi_tokio::server::ServerOptions;
use fcgi_tokio::{Listener, TokioRuntime};

#[tokio::main]
async fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
    let listener = match echo::parse_listen(&args).map_err(invalid)? {
        ListenArg::Tcp(addr) => Listener::bind_tcp(addr).await?,
        ListenArg::Unix(path) => Listener::bind_unix(path)?,
        ListenArg::Inherited => Listener::inherited()?
            .ok_or_else(|| invalid("no address given and fd 0 is not a listening socket".into()))?,
    };
    let mut opts = ServerOptions::default();
    opts.core.multiplex = true;
    opts.core.roles = RoleSet::ALL;
    let server = fcgi_tokio::server(opts);
    match listener.local_addr() {
        Some(addr) => eprintln!("echo: FastCGI on {addr}"),
        None => eprintln!("echo: FastCGI on a Unix socket"),
    }
    let handle = server.shutdown_handle();
    // The first Ctrl-C or SIGTERM starts a graceful shutdown: `serve` returns once the
    // requests in flight are answered.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        handle.shutdown();
    });
    server
        .serve(listener, fcgi_echo::handler(TokioRuntime))
        .await
}
