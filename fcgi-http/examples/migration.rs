//! Moving a PHP application to Rust one route at a time (the "strangler fig" pattern).
//!
//! ```text
//! cargo run -p fcgi-http --example migration -- \
//!     --listen 127.0.0.1:8080 --backend unix:/run/php/php-fpm.sock \
//!     --root fcgi-http/examples/php/app --front-controller index.php
//! curl http://127.0.0.1:8080/api/health      # {"source":"rust",...}  (ported)
//! curl http://127.0.0.1:8080/api/users       # {"source":"php",...}   (not yet)
//! ```
//!
//! One axum [`Router`]: the routes already ported are ordinary axum handlers; its fallback
//! is the `fcgi-http` [`Gateway`], so every other request goes to the PHP application
//! through php-fpm, exactly as it did behind nginx. Porting the next route is adding one
//! `.route(...)` line; nothing changes for the clients, and the PHP version of a ported
//! route is never run again.
//!
//! The PHP side is `examples/php/app/index.php`, a front controller that also implements
//! `/api/health` and `/api/version` (answering `"source":"php"`), so
//! `examples/scripts/migration.sh` can show that the Rust routes really take over.
//!
//! Ctrl-C (or SIGTERM) stops accepting, lets in-flight requests finish, and exits.

#[path = "common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use axum::Router;
use axum::routing::get;
use axum::{Json, response::IntoResponse};
use common::{Args, BoxError, UsageError};
use fcgi_http::gateway::{Gateway, GatewayConfig};
use fcgi_http::request::ScriptResolution;
use fcgi_tokio::Backend;
use fcgi_tokio::client::ClientOptions;
use serde_json::json;

const USAGE: &str = "\
usage: migration --backend tcp:HOST:PORT|unix:PATH --root DIR [options]

  --listen ADDR              HTTP address to listen on (default 127.0.0.1:8080; port 0 picks one)
  --backend ADDR             php-fpm's address: tcp:127.0.0.1:9000 or unix:/run/php/php-fpm.sock
  --root DIR                 the PHP application's document root, as php-fpm sees it
  --front-controller FILE    the script every PHP request runs (default index.php)
  -h, --help                 this text";

/// The command line.
struct Options {
    listen: SocketAddr,
    backend: Backend,
    backend_text: String,
    root: PathBuf,
    front_controller: String,
}

impl Options {
    /// Parses the arguments; `Ok(None)` for `--help`.
    fn parse(mut args: Args) -> Result<Option<Self>, UsageError> {
        let mut listen = SocketAddr::from(([127, 0, 0, 1], 8080));
        let mut backend = None;
        let mut root = None;
        let mut front_controller = "index.php".to_owned();
        while let Some(flag) = args.next_flag() {
            match flag.as_str() {
                "--listen" => listen = args.value(&flag)?,
                "--backend" => {
                    let text: String = args.value(&flag)?;
                    let parsed: Backend = text
                        .parse()
                        .map_err(|e| UsageError(format!("--backend {text:?}: {e}")))?;
                    backend = Some((parsed, text));
                }
                "--root" => root = Some(args.value::<PathBuf>(&flag)?),
                "--front-controller" => front_controller = args.value(&flag)?,
                "-h" | "--help" => return Ok(None),
                other => return Err(common::unknown(other)),
            }
        }
        let (backend, backend_text) =
            backend.ok_or_else(|| UsageError("--backend is required".into()))?;
        let root = root.ok_or_else(|| UsageError("--root is required".into()))?;
        let root = std::path::absolute(&root)
            .map_err(|e| UsageError(format!("--root {}: {e}", root.display())))?;
        Ok(Some(Self {
            listen,
            backend,
            backend_text,
            root,
            front_controller,
        }))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    common::main("migration", USAGE, Options::parse, run).await
}

/// `GET /api/health`, ported to Rust.
async fn health() -> impl IntoResponse {
    Json(json!({ "source": "rust", "status": "ok" }))
}

/// `GET /api/version`, ported to Rust.
async fn version() -> impl IntoResponse {
    Json(json!({ "source": "rust", "version": env!("CARGO_PKG_VERSION") }))
}

async fn run(options: Options) -> Result<(), BoxError> {
    // The legacy application: every request runs the front controller, which routes on
    // REQUEST_URI (nginx: `try_files $uri /index.php?$query_string`).
    let root = options.root.display().to_string();
    if !options.root.is_dir() {
        // Not an error: php-fpm may see another filesystem (a container, another host).
        eprintln!("note: {root} is not a directory here; it must be one where php-fpm runs");
    }
    let config = GatewayConfig::new(
        root.clone(),
        ScriptResolution::FrontController(options.front_controller.clone()),
    );
    let mut client_options = ClientOptions::default();
    client_options.max_connections = 4;
    let php = Gateway::new(
        fcgi_tokio::client(options.backend.clone(), client_options),
        config,
    )
    // A Router fallback must not fail: backend errors become 502/503/504 responses.
    .errors_as_responses();

    // Ported routes first; whatever they do not match goes to PHP. The ConnInfo extension the
    // server glue inserts passes through the router to the gateway untouched.
    let app = Router::new()
        .route("/api/health", get(health))
        .route("/api/version", get(version))
        .fallback_service(php);

    let listener = common::bind(options.listen).await?;
    let local = listener.local_addr()?;
    println!("migration: serving http://{local}/ (HTTP/1.1 and HTTP/2)");
    println!("  in Rust:  GET /api/health, GET /api/version");
    println!(
        "  in PHP:   everything else, via {} running {}/{}",
        options.backend_text, root, options.front_controller
    );
    println!("  try:      curl http://{local}/api/health; curl http://{local}/api/users");
    println!("Ctrl-C to stop.");

    common::serve(listener, app, common::shutdown_signal()).await;
    println!("migration: stopped");
    Ok(())
}
