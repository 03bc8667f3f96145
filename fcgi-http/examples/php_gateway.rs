//! An HTTPS (or HTTP) front end for php-fpm: what nginx with `fastcgi_pass` does, in one
//! small program.
//!
//! ```text
//! cargo run -p fcgi-http --example php_gateway -- \
//!     --listen 127.0.0.1:8443 --backend tcp:127.0.0.1:9000 --root /var/www/html \
//!     --tls-self-signed --cert-out /tmp/gateway.pem
//! curl --cacert /tmp/gateway.pem https://localhost:8443/index.php?x=1
//! ```
//!
//! - HTTP/1.1 and HTTP/2 (ALPN over TLS; prior knowledge over plain HTTP), with hyper.
//! - `--tls-self-signed` generates a certificate for `localhost`, `127.0.0.1` and `::1` at
//!   start (rcgen), prints its SHA-256 fingerprint and, with `--cert-out`, writes it as PEM.
//! - `--backend` is `tcp:HOST:PORT`, `tcp:NAME:PORT` (resolved at each connect) or
//!   `unix:PATH` (php-fpm's `listen`). Repeat it for several php-fpm pools: requests are
//!   spread over them (`fcgi_http::balance`, tower's power of two choices), and a pool that
//!   refuses connections is skipped until it accepts one again.
//! - `--root` is the document root *as php-fpm sees it* (`SCRIPT_FILENAME` is built from it).
//! - Scripts are found like nginx's `fastcgi_split_path_info` + `fastcgi_index`:
//!   `/a.php/x` runs `/a.php` with `PATH_INFO=/x`, `/dir/` runs `/dir/index.php` (`--index`
//!   changes the name), anything else is 404. `--front-controller index.php` instead sends
//!   every request to that one script (Laravel, Symfony: `try_files $uri /index.php`).
//!
//! The php-fpm pool's own `security.limit_extensions` (default `.php`) stays the last line
//! of defence against running an uploaded file as PHP; keep it.
//!
//! Ctrl-C (or SIGTERM) stops accepting, lets in-flight requests finish, and exits.

#[path = "common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use common::{Args, BoxError, SelfSigned, UsageError};
use fcgi_http::balance::{BalanceOptions, Balanced};
use fcgi_http::gateway::{ErrorsAsResponses, Gateway, GatewayConfig, LocalRoot};
use fcgi_http::request::ScriptResolution;
use fcgi_tokio::Backend;
use fcgi_tokio::client::ClientOptions;

const USAGE: &str = "\
usage: php_gateway --backend tcp:HOST:PORT|unix:PATH [--backend ...] --root DIR [options]

  --listen ADDR              HTTP(S) address to listen on (default 127.0.0.1:8080; port 0 picks one)
  --backend ADDR             php-fpm's address: tcp:127.0.0.1:9000, tcp:php:9000 or
                             unix:/run/php/php-fpm.sock; repeated: requests are balanced
                             over the pools, one refusing connections is skipped until back
  --root DIR                 document root as php-fpm sees it
  --index FILE               script for paths ending in / (default index.php)
  --front-controller FILE    run FILE (relative to the root) for every request instead
  --try-files FILE           try-files mode: an existing script runs, another existing file is
                             served as a static file, a directory runs its index, anything
                             else runs FILE (nginx try_files $uri $uri/ /FILE?$args); needs
                             the files here (see --local-root)
  --tls-self-signed          serve HTTPS with a certificate generated at start
  --cert-out PATH            write that certificate (PEM) to PATH, for curl --cacert
  --max-body BYTES           largest request body (default 32 MiB; 413 beyond)
  --local-root DIR           the document root as this machine sees it, to check that a script
                             exists before php-fpm is asked (default: --root, when it is a
                             directory here)
  --no-local-root            never look at files (php-fpm decides; see README)
  --server-name NAME         SERVER_NAME (default: the request's host, without its port)
  --read-timeout SECS        longest silence from php-fpm while a request runs (default 60)
  -h, --help                 this text";

/// The command line.
struct Options {
    listen: SocketAddr,
    /// Each `--backend`, parsed, and as given.
    backends: Vec<(Backend, String)>,
    root: PathBuf,
    index: String,
    front_controller: Option<String>,
    try_files: Option<String>,
    tls: bool,
    cert_out: Option<PathBuf>,
    max_body: u64,
    local_root: LocalRoot,
    server_name: Option<String>,
    read_timeout: u64,
}

impl Options {
    /// Parses the arguments; `Ok(None)` for `--help`.
    fn parse(mut args: Args) -> Result<Option<Self>, UsageError> {
        let mut listen = SocketAddr::from(([127, 0, 0, 1], 8080));
        let mut backends = Vec::new();
        let mut root = None;
        let mut index = "index.php".to_owned();
        let mut front_controller = None;
        let mut try_files = None;
        let mut tls = false;
        let mut cert_out = None;
        let mut max_body = 32 * 1024 * 1024;
        let mut local_root = LocalRoot::SameAsDocumentRoot;
        let mut server_name = None;
        let mut read_timeout = 60;
        while let Some(flag) = args.next_flag() {
            match flag.as_str() {
                "--listen" => listen = args.value(&flag)?,
                "--backend" => {
                    let text: String = args.value(&flag)?;
                    let parsed: Backend = text
                        .parse()
                        .map_err(|e| UsageError(format!("--backend {text:?}: {e}")))?;
                    backends.push((parsed, text));
                }
                "--root" => root = Some(args.value::<PathBuf>(&flag)?),
                "--index" => index = args.value(&flag)?,
                "--front-controller" => front_controller = Some(args.value(&flag)?),
                "--try-files" => try_files = Some(args.value(&flag)?),
                "--tls-self-signed" => tls = true,
                "--cert-out" => cert_out = Some(args.value(&flag)?),
                "--max-body" => max_body = args.value(&flag)?,
                "--local-root" => local_root = LocalRoot::Path(args.value(&flag)?),
                "--no-local-root" => local_root = LocalRoot::None,
                "--server-name" => server_name = Some(args.value(&flag)?),
                "--read-timeout" => read_timeout = args.value(&flag)?,
                "-h" | "--help" => return Ok(None),
                other => return Err(common::unknown(other)),
            }
        }
        if backends.is_empty() {
            return Err(UsageError("--backend is required".into()));
        }
        let root = root.ok_or_else(|| UsageError("--root is required".into()))?;
        // php-fpm needs an absolute SCRIPT_FILENAME; a relative root is taken from here.
        let root = std::path::absolute(&root)
            .map_err(|e| UsageError(format!("--root {}: {e}", root.display())))?;
        if try_files.is_some() && front_controller.is_some() {
            return Err(UsageError(
                "--try-files and --front-controller exclude each other".into(),
            ));
        }
        if cert_out.is_some() && !tls {
            return Err(UsageError("--cert-out needs --tls-self-signed".into()));
        }
        Ok(Some(Self {
            listen,
            backends,
            root,
            index,
            front_controller,
            try_files,
            tls,
            cert_out,
            max_body,
            local_root,
            server_name,
            read_timeout,
        }))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    common::main("php_gateway", USAGE, Options::parse, run).await
}

async fn run(options: Options) -> Result<(), BoxError> {
    // 1. How requests become CGI params: the document root and the script resolution.
    let script = match &options.front_controller {
        Some(file) => ScriptResolution::FrontController(file.clone()),
        None => ScriptResolution::SplitPath {
            index: options.index.clone(),
            extensions: vec![".php".into()],
        },
    };
    let root = options.root.display().to_string();
    if !options.root.is_dir() {
        // Not an error: php-fpm may see another filesystem (a container, another host).
        eprintln!("note: {root} is not a directory here; it must be one where php-fpm runs");
    }
    let mut config = GatewayConfig::new(root.clone(), script);
    // Like nginx's client_max_body_size: refused with 413 before anything reaches PHP.
    config.max_body_bytes = Some(options.max_body);
    // Like nginx's try_files $fastcgi_script_name =404: a script that is not a file in the
    // root (the "uploads hole" included) is refused before php-fpm is asked.
    config.local_root = options.local_root.clone();
    if let Some(name) = &options.server_name {
        config.cgi.server_name = name.clone();
    }
    if let Some(file) = &options.try_files {
        let here = match &config.local_root {
            LocalRoot::None => false,
            LocalRoot::Path(dir) => dir.is_dir(),
            _ => options.root.is_dir(),
        };
        if !here {
            return Err(
                "--try-files needs the files here: --root or --local-root must be \
                        a directory on this machine"
                    .into(),
            );
        }
        config.try_files = Some(file.clone());
        // Static files through tower-http: ranges, validators, types, precompressed variants.
        config.static_files = Some(fcgi_tokio::http::static_files());
    }

    // 2. The pooled FastCGI client. php-fpm pins one worker per open connection, so keep
    //    max_connections below the pool's pm.max_children (see ClientOptions' docs).
    let mut client_options = ClientOptions::default();
    client_options.max_connections = 4;
    client_options.read_timeout = std::time::Duration::from_secs(options.read_timeout);
    let mut gateways: Vec<_> = options
        .backends
        .iter()
        .map(|(backend, _)| {
            let client = fcgi_tokio::client(backend.clone(), client_options.clone());
            Gateway::new(client, config.clone())
        })
        .collect();

    // 3. The gateway: a tower Service<http::Request<B>>, one per backend; several are
    //    balanced as one (`Balanced`). `errors_as_responses` turns a backend failure into a
    //    502/503/504 response (and logs why) instead of an error.
    let single = (gateways.len() == 1).then(|| gateways.remove(0));

    // 4. The HTTP side: hyper, with or without TLS.
    let tls = if options.tls {
        Some(SelfSigned::generate()?)
    } else {
        None
    };
    let listener = common::bind(options.listen).await?;
    let local = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("php_gateway: serving {scheme}://{local}/ (HTTP/1.1 and HTTP/2)");
    for (_, text) in &options.backends {
        println!("  php-fpm:       {text}");
    }
    println!("  document root: {root}");
    match (&options.front_controller, &options.try_files) {
        (Some(file), _) => println!("  every request runs {file}"),
        (None, Some(file)) => println!(
            "  try-files:     scripts run, other files are served, anything else runs {file}"
        ),
        (None, None) => println!(
            "  scripts:       *.php named by the path; /dir/ runs /dir/{}",
            options.index
        ),
    }
    if let Some(tls) = &tls {
        println!(
            "  certificate:   self-signed for {}",
            common::SELF_SIGNED_NAMES.join(", ")
        );
        println!("  SHA-256:       {}", tls.fingerprint);
        match &options.cert_out {
            Some(path) => {
                std::fs::write(path, &tls.cert_pem)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                println!(
                    "  try:           curl --cacert {} {scheme}://{local}/",
                    path.display()
                );
            }
            None => println!("  try:           curl -k {scheme}://{local}/   (or --cert-out PATH)"),
        }
    } else {
        println!("  try:           curl {scheme}://{local}/");
    }
    println!("Ctrl-C to stop.");

    let tls = tls.map(|t| t.acceptor);
    let stop = common::shutdown_signal();
    match single {
        Some(gateway) => common::serve(listener, tls, gateway.errors_as_responses(), stop).await,
        None => {
            let balanced = Balanced::new(gateways, BalanceOptions::default())?;
            common::serve(listener, tls, ErrorsAsResponses::new(balanced), stop).await;
        }
    }
    println!("php_gateway: stopped");
    Ok(())
}
