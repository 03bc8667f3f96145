//! php-fpm behind `axum::serve`: the gateway as a `Router`'s fallback, and PHP sees the
//! client's `REMOTE_ADDR`/`REMOTE_PORT` and the listener's `SERVER_ADDR`/`SERVER_PORT`.
//!
//! ```text
//! # with php-fpm listening on 127.0.0.1:9000 (or unix:/run/php/php8.2-fpm.sock):
//! cargo run -p fcgi-http --features axum --example axum_php -- \
//!     127.0.0.1:8080 tcp:127.0.0.1:9000 "$PWD/fcgi-http/examples/php/site"
//! curl http://127.0.0.1:8080/index.php
//! # {"source":"php",...,"server_port":"8080","remote_addr":"127.0.0.1",...}
//! ```
//!
//! Arguments, in this order, each also read from an environment variable when not given
//! (default in brackets):
//!
//! 1. the HTTP address to listen on: `LISTEN` [`127.0.0.1:8080`];
//! 2. php-fpm's address, `tcp:HOST:PORT` or `unix:PATH`: `BACKEND` [`tcp:127.0.0.1:9000`];
//! 3. the document root as php-fpm sees it: `DOCROOT` [`/var/www/html`].
//!
//! Ctrl-C stops accepting and lets in-flight requests finish.

use axum::Router;
use fcgi_http::ConnInfo;
use fcgi_http::gateway::{Gateway, GatewayConfig};
use fcgi_http::request::ScriptResolution;
use fcgi_tokio::Backend;
use fcgi_tokio::client::ClientOptions;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut setting = |var: &str, default: &str| {
        args.next()
            .or_else(|| std::env::var(var).ok())
            .unwrap_or_else(|| default.to_owned())
    };
    let listen = setting("LISTEN", "127.0.0.1:8080");
    let backend: Backend = setting("BACKEND", "tcp:127.0.0.1:9000").parse()?;
    let docroot = setting("DOCROOT", "/var/www/html");

    let client = fcgi_tokio::client(backend, ClientOptions::default());
    let config = GatewayConfig::new(docroot, ScriptResolution::split_path());
    // A fallback must not fail: backend errors become 502/503/504 responses.
    let php = Gateway::new(client, config).errors_as_responses();
    let app = Router::new().fallback_service(php);

    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!(
        "axum_php: http://{}/ (Ctrl-C to stop)",
        listener.local_addr()?
    );
    // One `ConnInfo` per connection (local and remote address): the gateway's CGI variables.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<ConnInfo>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
