//! Our server on tokio (multi-threaded runtime, multiplexing on; off with `NO_MUX=1`, to play
//! an application that does not multiplex, as php-fpm does not).
use fcgi_bench_servers::{Listen, hello, listen_arg};
use fcgi_tokio::Listener;
use fcgi_tokio::server::ServerOptions;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listener = match listen_arg() {
        Listen::Tcp(a) => Listener::bind_tcp(a).await?,
        Listen::Unix(p) => Listener::bind_unix(p)?,
    };
    let mut options = ServerOptions::default();
    options.core.multiplex = std::env::var_os("NO_MUX").is_none();
    fcgi_tokio::server(options).serve(listener, hello()).await
}
