//! `fcgi gateway`: fcgi-http's gateway as a product — a PHP site served in one command, as
//! nginx with `fastcgi_pass` does: HTTP/1.1 and HTTP/2, plain or TLS, static files in
//! try-files mode, an access log, several backends balanced, graceful shutdown on Ctrl-C
//! or SIGTERM. Without `--backend` it serves the echo application in-process, so that it
//! runs out of the box.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fcgi_http::balance::{BalanceOptions, Balanced};
use fcgi_http::gateway::{ErrorsAsResponses, Gateway, GatewayConfig, LocalRoot};
use fcgi_http::request::ScriptResolution;
use fcgi_tokio::Backend;
use fcgi_tokio::client::ClientOptions;
use fcgi_tokio::http::{ServeOptions, TlsAcceptor, rustls};

use crate::connect::{parse_backend, parse_seconds};
use crate::exit::Exit;

/// `fcgi gateway`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("script").args(["front_controller", "try_files"])))]
#[command(group(clap::ArgGroup::new("files").args(["local_root", "no_local_root"])))]
pub(crate) struct Args {
    /// The HTTP(S) address to listen on (port 0 picks one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The FastCGI application (php-fpm): tcp:HOST:PORT, unix:PATH, HOST:PORT. Repeat it, or
    /// separate with commas, to balance over several; one refusing connections is skipped
    /// until it accepts one again. None: the echo application, in-process.
    #[arg(long, value_parser = parse_backend, value_delimiter = ',', value_name = "ADDR")]
    backend: Vec<Backend>,
    /// The document root as the application sees it (SCRIPT_FILENAME = ROOT + script).
    /// Default: the current directory.
    #[arg(long)]
    root: Option<PathBuf>,
    /// The document root as this machine sees it, to check that a script exists before the
    /// application is asked (default: --root, when it is a directory here).
    #[arg(long, value_name = "DIR")]
    local_root: Option<PathBuf>,
    /// Never look at files: the application decides what exists.
    #[arg(long)]
    no_local_root: bool,
    /// The script for a path ending in / (nginx's fastcgi_index).
    #[arg(long, default_value = "index.php", value_name = "FILE")]
    index: String,
    /// Run FILE (relative to the root) for every request (a framework's front controller).
    #[arg(long, value_name = "FILE")]
    front_controller: Option<String>,
    /// Try-files mode: an existing script runs, another existing file is served as a static
    /// file, a directory runs its index, anything else runs FILE (nginx's
    /// `try_files $uri $uri/ /FILE?$args`, Caddy's php_fastcgi). Needs the files here.
    #[arg(long, value_name = "FILE")]
    try_files: Option<String>,
    /// SERVER_NAME (default: the request's host, without its port).
    #[arg(long, value_name = "NAME")]
    server_name: Option<String>,
    /// Serve HTTPS with a certificate generated at start (for localhost, 127.0.0.1, ::1).
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    tls_self_signed: bool,
    /// Write the self-signed certificate (PEM) here, for `curl --cacert`.
    #[arg(long, requires = "tls_self_signed", value_name = "PATH")]
    cert_out: Option<PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM).
    #[arg(long, requires = "tls_key", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// ... and this private key (PEM).
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// The largest request body, in bytes (413 beyond).
    #[arg(long, default_value_t = 32 * 1024 * 1024, value_name = "BYTES")]
    max_body: u64,
    /// The longest silence from the application while a request runs, in seconds.
    #[arg(long, default_value = "60", value_parser = parse_seconds, value_name = "SECS")]
    read_timeout: Duration,
    /// Connections to each backend at most (php-fpm pins a worker per connection: keep it
    /// below pm.max_children).
    #[arg(long, default_value_t = 4, value_name = "N")]
    backend_connections: usize,
}

/// A usage mistake clap cannot see: printed, exit 2.
struct Usage(String);

/// Runs `fcgi gateway`.
pub(crate) async fn run(args: Args) -> Exit {
    match serve(args).await {
        Ok(()) => Exit::Ok,
        Err(Failure::Usage(Usage(message))) => {
            eprintln!("fcgi gateway: {message}");
            Exit::Usage
        }
        Err(Failure::Other(message)) => {
            eprintln!("fcgi gateway: {message}");
            Exit::Failure
        }
    }
}

enum Failure {
    Usage(Usage),
    Other(String),
}

fn other(e: impl std::fmt::Display) -> Failure {
    Failure::Other(e.to_string())
}

async fn serve(args: Args) -> Result<(), Failure> {
    let root = match &args.root {
        Some(root) => std::path::absolute(root)
            .map_err(|e| Failure::Usage(Usage(format!("--root {}: {e}", root.display()))))?,
        None => std::env::current_dir().map_err(other)?,
    };
    let root_text = root.display().to_string();
    let script = match &args.front_controller {
        Some(file) => ScriptResolution::FrontController(file.clone()),
        None => ScriptResolution::SplitPath {
            index: args.index.clone(),
            extensions: vec![".php".into()],
        },
    };
    let mut config = GatewayConfig::new(root_text.clone(), script);
    // nginx's client_max_body_size: refused with 413 before anything reaches PHP.
    config.max_body_bytes = Some(args.max_body);
    // nginx's try_files $fastcgi_script_name =404 (the "uploads hole" closed).
    config.local_root = match (&args.local_root, args.no_local_root) {
        (_, true) => LocalRoot::None,
        (Some(dir), false) => LocalRoot::Path(dir.clone()),
        (None, false) => LocalRoot::SameAsDocumentRoot,
    };
    if let Some(name) = &args.server_name {
        config.cgi.server_name = name.clone();
    }
    // Without a backend: the echo application in-process, on a Unix socket of our own.
    let mut echo = None;
    let backends = if args.backend.is_empty() {
        let (backend, running) = start_echo().await?;
        echo = Some(running);
        config.local_root = LocalRoot::None;
        vec![backend]
    } else {
        args.backend.clone()
    };
    if let Some(file) = &args.try_files {
        let here = match &config.local_root {
            LocalRoot::None => false,
            LocalRoot::Path(dir) => dir.is_dir(),
            _ => root.is_dir(),
        };
        if !here {
            return Err(Failure::Usage(Usage(
                "--try-files needs the files here: --root or --local-root must be a directory \
                 on this machine (and a --backend)"
                    .into(),
            )));
        }
        config.try_files = Some(file.clone());
        // tower-http: ranges, validators, content types, precompressed variants.
        config.static_files = Some(fcgi_tokio::http::static_files());
    }
    let mut client = ClientOptions::default();
    client.max_connections = args.backend_connections.max(1);
    client.read_timeout = args.read_timeout;
    let mut gateways: Vec<_> = backends
        .iter()
        .map(|backend| {
            Gateway::new(
                fcgi_tokio::client(backend.clone(), client.clone()),
                config.clone(),
            )
        })
        .collect();

    let (tls, fingerprint) = tls(&args)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| other(format!("cannot listen on {}: {e}", args.listen)))?;
    let local = listener.local_addr().map_err(other)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "fcgi gateway: serving {scheme}://{local}/ (HTTP/1.1 and HTTP/2)"
    );
    match &echo {
        Some(_) => {
            let _ = writeln!(
                out,
                "  backend:       the echo application (no --backend given)"
            );
        }
        None => {
            for backend in &backends {
                let _ = writeln!(out, "  backend:       {backend}");
            }
        }
    }
    let _ = writeln!(out, "  document root: {root_text}");
    let _ = match (&args.front_controller, &args.try_files) {
        (Some(file), _) => writeln!(out, "  every request runs {file}"),
        (None, Some(file)) => writeln!(
            out,
            "  try-files:     scripts run, other files are served, anything else runs {file}"
        ),
        (None, None) => writeln!(
            out,
            "  scripts:       *.php named by the path; /dir/ runs /dir/{}",
            args.index
        ),
    };
    if let Some(fingerprint) = &fingerprint {
        let _ = writeln!(
            out,
            "  certificate:   self-signed for localhost, 127.0.0.1, ::1"
        );
        let _ = writeln!(out, "  SHA-256:       {fingerprint}");
    }
    let _ = writeln!(out, "Ctrl-C to stop.");
    let _ = out.flush();
    drop(out);

    let stop = crate::echo::stop_signal();
    let options = ServeOptions::default();
    if gateways.len() == 1 {
        let gateway = gateways.remove(0).errors_as_responses();
        fcgi_tokio::http::serve(listener, tls, gateway, stop, options).await;
    } else {
        let balanced = Balanced::new(gateways, BalanceOptions::default()).map_err(other)?;
        fcgi_tokio::http::serve(
            listener,
            tls,
            ErrorsAsResponses::new(balanced),
            stop,
            options,
        )
        .await;
    }
    if let Some(echo) = echo {
        echo.stop().await;
    }
    println!("fcgi gateway: stopped");
    Ok(())
}

/// The echo application served in-process on a Unix socket in a private directory.
struct InProcessEcho {
    handle: fcgi_driver::server::ShutdownHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl InProcessEcho {
    async fn stop(self) {
        self.handle.shutdown();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

async fn start_echo() -> Result<(Backend, InProcessEcho), Failure> {
    let dir = tempfile::Builder::new()
        .prefix("fcgi-gateway-")
        .tempdir()
        .map_err(other)?;
    let path = dir.path().join("echo.sock");
    let listener = fcgi_tokio::Listener::bind_unix(&path).map_err(other)?;
    let mut options = fcgi_tokio::server::ServerOptions::default();
    options.core.multiplex = true;
    let server = fcgi_tokio::server(options);
    let handle = server.shutdown_handle();
    let task = tokio::spawn(async move {
        server
            .serve(listener, fcgi_echo::handler(fcgi_tokio::TokioRuntime))
            .await
    });
    Ok((
        Backend::Unix(path),
        InProcessEcho {
            handle,
            task,
            _dir: dir,
        },
    ))
}

/// The TLS acceptor the arguments ask for, and the self-signed certificate's fingerprint.
fn tls(args: &Args) -> Result<(Option<TlsAcceptor>, Option<String>), Failure> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(other)?
        .with_no_client_auth();
    let (mut config, fingerprint) = if args.tls_self_signed {
        let names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        let certified = rcgen::generate_simple_self_signed(names).map_err(other)?;
        let cert = certified.cert.der().clone();
        let key = rustls::pki_types::PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der());
        let digest = ring::digest::digest(&ring::digest::SHA256, &cert);
        let fingerprint: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        if let Some(path) = &args.cert_out {
            std::fs::write(path, certified.cert.pem())
                .map_err(|e| other(format!("cannot write {}: {e}", path.display())))?;
        }
        let config = builder
            .with_single_cert(vec![cert], key.into())
            .map_err(other)?;
        (config, Some(fingerprint.join(":")))
    } else if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| Failure::Usage(Usage(format!("--tls-cert {}: {e}", cert.display()))))?;
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| Failure::Usage(Usage(format!("--tls-key {}: {e}", key.display()))))?;
        let config = builder
            .with_single_cert(chain, key)
            .map_err(|e| Failure::Usage(Usage(format!("--tls-cert/--tls-key: {e}"))))?;
        (config, None)
    } else {
        return Ok((None, None));
    };
    // Offer HTTP/2 first; hyper's auto builder then reads which one the client speaks.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((Some(TlsAcceptor::from(Arc::new(config))), fingerprint))
}
