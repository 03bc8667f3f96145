//! Both halves of `fcgi-http` in one program, nothing to install: an HTTP echo service
//! served as a FastCGI application, and an HTTP reverse proxy in front of it that speaks
//! FastCGI to it, the way nginx speaks to php-fpm.
//!
//! ```text
//! cargo run -p fcgi-http --example reverse_proxy
//! curl 'http://127.0.0.1:8080/anything?x=1'
//! curl -d 'hello' http://127.0.0.1:8080/submit
//! cargo run -p fcgi-http --example reverse_proxy -- --self-test   # asserts a few round trips, exits
//! ```
//!
//! ```text
//!  curl ──HTTP/1.1, HTTP/2──▶ hyper ──▶ fcgi_http::gateway::Gateway      (the web server half)
//!                                            │ FastCGI over a Unix socket (or TCP)
//!                                            ▼
//!                             fcgi_tokio::server ──▶ fcgi_http::app::ServiceHandler
//!                                                      └─▶ echo: a tower Service (the application half)
//! ```
//!
//! The echo service answers with what it received: method, URI, version, the client's
//! address, headers and body. Everything it sees went through the FastCGI mapping twice:
//! HTTP → CGI params (`fcgi_http::request`) in the gateway, then CGI params → HTTP
//! (`fcgi_http::app::request_parts`) in the application.
//!
//! Options: `--listen ADDR` (default `127.0.0.1:8080`, or a free port when that one is taken;
//! port 0 picks a free one),
//! `--fastcgi tcp:HOST:PORT|unix:PATH` to put the FastCGI application on a given address
//! (default: a Unix socket in a temporary directory; on TCP, nginx or `cgi-fcgi` can talk to it
//! too), `--self-test`.
//!
//! Ctrl-C (or SIGTERM) stops both halves gracefully.

#[path = "common/mod.rs"]
mod common;

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use bytes::Bytes;
use common::{Args, BoxError, UsageError};
use fcgi_http::app::{FcgiRequest, HttpConn, RequestBody, ServiceHandler};
use fcgi_http::gateway::{Gateway, GatewayConfig, LocalRoot};
use fcgi_http::request::ScriptResolution;
use fcgi_tokio::client::ClientOptions;
use fcgi_tokio::server::ServerOptions;
use fcgi_tokio::{Backend, Listener};
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};

const USAGE: &str = "\
usage: reverse_proxy [--listen ADDR] [--fastcgi tcp:HOST:PORT|unix:PATH] [--self-test]

  --listen ADDR      HTTP address to listen on (default 127.0.0.1:8080; port 0 picks one)
  --fastcgi ADDR     where the FastCGI application listens (default: a Unix socket in a
                     temporary directory)
  --self-test        send a few requests through the proxy, check and print them, and exit
                     (0 if every check passed)
  -h, --help         this text";

/// The largest request body the echo service reads (it answers 413 beyond).
const MAX_ECHO_BODY: usize = 1024 * 1024;

/// The command line.
struct Options {
    listen: SocketAddr,
    /// `--listen` was given (otherwise a busy default port falls back to a free one).
    listen_given: bool,
    fastcgi: Option<Backend>,
    self_test: bool,
}

impl Options {
    /// Parses the arguments; `Ok(None)` for `--help`.
    fn parse(mut args: Args) -> Result<Option<Self>, UsageError> {
        let mut options = Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            listen_given: false,
            fastcgi: None,
            self_test: false,
        };
        while let Some(flag) = args.next_flag() {
            match flag.as_str() {
                "--listen" => {
                    options.listen = args.value(&flag)?;
                    options.listen_given = true;
                }
                "--fastcgi" => options.fastcgi = Some(args.value(&flag)?),
                "--self-test" => options.self_test = true,
                "-h" | "--help" => return Ok(None),
                other => return Err(common::unknown(other)),
            }
        }
        Ok(Some(options))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    common::main("reverse_proxy", USAGE, Options::parse, run).await
}

// ---------------------------------------------------------------------------------------
// The application half: an ordinary tower service.
// ---------------------------------------------------------------------------------------

/// Answers with a plain-text description of the request. It knows nothing about FastCGI:
/// the same function would work behind hyper directly.
async fn echo(request: Request<RequestBody>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    // Read the body, but never more than MAX_ECHO_BODY bytes into memory.
    let body = match Limited::new(body, MAX_ECHO_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let status = if e.is::<http_body_util::LengthLimitError>() {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            };
            return Ok(text(status, format!("cannot read the body: {e}\n")));
        }
    };

    let mut out = String::new();
    let _ = writeln!(out, "method:  {}", parts.method);
    let _ = writeln!(out, "uri:     {}", parts.uri);
    let _ = writeln!(out, "version: {:?}", parts.version);
    // What the proxy told the application about the client's connection (REMOTE_ADDR...).
    if let Some(conn) = parts.extensions.get::<HttpConn>() {
        let client = conn
            .remote()
            .map_or_else(|| "unknown".to_owned(), |a| a.to_string());
        let _ = writeln!(out, "client:  {client} ({})", conn.scheme());
    }
    if let Some(fcgi) = parts.extensions.get::<FcgiRequest>() {
        let _ = writeln!(out, "fastcgi: request id {}", fcgi.id);
    }
    let _ = writeln!(out, "headers:");
    for (name, value) in &parts.headers {
        let _ = writeln!(
            out,
            "  {name}: {}",
            String::from_utf8_lossy(value.as_bytes())
        );
    }
    let _ = writeln!(out, "body ({} bytes):", body.len());
    out.push_str(&String::from_utf8_lossy(&body));
    if !body.is_empty() && !body.ends_with(b"\n") {
        out.push('\n');
    }
    Ok(text(StatusCode::OK, out))
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

// ---------------------------------------------------------------------------------------
// Wiring
// ---------------------------------------------------------------------------------------

async fn run(options: Options) -> Result<(), BoxError> {
    // 1. The FastCGI application: the echo service behind fcgi_tokio's server. Without
    //    --fastcgi it listens on a Unix socket in a temporary directory (removed at exit).
    let socket_dir = tempfile::Builder::new()
        .prefix("fcgi-reverse-proxy")
        .tempdir()?;
    let backend = options
        .fastcgi
        .clone()
        .unwrap_or_else(|| Backend::Unix(socket_dir.path().join("echo.sock")));
    let fcgi_listener = match &backend {
        Backend::Tcp(addr) => Listener::bind_tcp(*addr).await,
        Backend::Unix(path) => Listener::bind_unix(path),
        other => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{other}: the app listens on an IP address or a Unix socket"),
        )),
    }
    .map_err(|e| format!("cannot listen for FastCGI on {backend}: {e}"))?;
    // A TCP port 0 became a real port: the proxy must connect to that one.
    let backend = match fcgi_listener.local_addr() {
        Some(addr) => Backend::Tcp(addr),
        None => backend,
    };
    let app = fcgi_tokio::server(ServerOptions::default());
    let app_shutdown = app.shutdown_handle();
    let handler = ServiceHandler::new(tower::service_fn(echo));
    let app_task = tokio::spawn(async move { app.serve(fcgi_listener, handler).await });

    // 2. The proxy: a FastCGI client for that address, and the gateway on top of it. The echo
    //    service reads no files: every request "runs" /echo, whatever its path (a front
    //    controller), and the document root only fills SCRIPT_FILENAME.
    let client = fcgi_tokio::client(backend.clone(), ClientOptions::default());
    let mut config = GatewayConfig::new(
        "/srv/echo",
        ScriptResolution::FrontController("echo".into()),
    );
    // The application is a Rust service, not files: nothing to check on disk.
    config.local_root = LocalRoot::None;
    let gateway = Gateway::new(client.clone(), config).errors_as_responses();

    // 3. The HTTP server.
    let listener = match common::bind(options.listen).await {
        Ok(listener) => listener,
        // The demo must run anywhere: when the default port is taken, take any free one
        // (the URL printed below says which).
        Err(e) if !options.listen_given => {
            eprintln!(
                "({} is not available: {e}; using a free port instead)",
                options.listen
            );
            common::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?
        }
        Err(e) => return Err(e),
    };
    let local = listener.local_addr()?;
    let fastcgi = backend.to_string();
    println!("reverse_proxy: an HTTP echo service, served as a FastCGI application, behind an");
    println!("HTTP reverse proxy that speaks FastCGI to it (both halves of fcgi-http):");
    println!();
    println!("  HTTP    http://{local}/  (hyper + fcgi_http::gateway::Gateway)");
    println!("  FastCGI {fastcgi}  (fcgi_tokio::server + fcgi_http::app::ServiceHandler)");
    println!();

    let result = if options.self_test {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(common::serve(listener, gateway, async {
            let _ = stopped.await;
        }));
        let outcome = self_test::run(local).await;
        let _ = stop.send(());
        server.await?;
        // The client asked the application (FCGI_GET_VALUES) whether it multiplexes.
        let multiplexing = match client.multiplexing() {
            Some(1) => "one request at a time per connection".to_owned(),
            Some(n) => format!("up to {n} concurrent requests per connection"),
            None => "not probed yet".to_owned(),
        };
        println!(
            "FastCGI client: {} connection(s) open; multiplexing: {multiplexing}",
            client.connections()
        );
        outcome
    } else {
        println!("Try:");
        println!("  curl 'http://{local}/anything?x=1'");
        println!("  curl -d 'hello' http://{local}/submit");
        println!("  curl --http2-prior-knowledge http://{local}/over/h2");
        println!("Ctrl-C to stop.");
        common::serve(listener, gateway, common::shutdown_signal()).await;
        Ok(())
    };

    // 4. Stop the application half too (it finishes its in-flight requests first).
    app_shutdown.shutdown();
    app_task.await??;
    if let Some(Backend::Unix(path)) = &options.fastcgi {
        // A socket file is not removed when its listener closes.
        let _ = std::fs::remove_file(path);
    }
    println!("reverse_proxy: stopped");
    result
}

// ---------------------------------------------------------------------------------------
// --self-test
// ---------------------------------------------------------------------------------------

mod self_test {
    //! A few requests through the running proxy, over real HTTP connections: each is
    //! printed with its answer and checked.

    use std::net::SocketAddr;

    use bytes::Bytes;
    use http::{Method, Request, StatusCode};
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    use super::BoxError;

    /// One request and what its answer must contain.
    struct Case {
        what: &'static str,
        http2: bool,
        method: Method,
        path: &'static str,
        headers: &'static [(&'static str, &'static str)],
        body: Bytes,
        status: StatusCode,
        expect: Vec<String>,
    }

    pub(super) async fn run(addr: SocketAddr) -> Result<(), BoxError> {
        let big = Bytes::from(vec![b'z'; 300_000]);
        let cases = [
            Case {
                what: "GET with a query string and a custom header",
                http2: false,
                method: Method::GET,
                path: "/anything?x=1&y=two",
                headers: &[("x-demo", "42")],
                body: Bytes::new(),
                status: StatusCode::OK,
                expect: vec![
                    "method:  GET".into(),
                    format!("uri:     http://{addr}/anything?x=1&y=two"),
                    "version: HTTP/1.1".into(),
                    "x-demo: 42".into(),
                    "body (0 bytes):".into(),
                ],
            },
            Case {
                what: "POST with a body",
                http2: false,
                method: Method::POST,
                path: "/submit",
                headers: &[("content-type", "text/plain")],
                body: Bytes::from_static(b"hello through FastCGI"),
                status: StatusCode::OK,
                expect: vec![
                    "method:  POST".into(),
                    "content-type: text/plain".into(),
                    "body (21 bytes):\nhello through FastCGI\n".into(),
                ],
            },
            Case {
                what: "PUT over HTTP/2 with a 300 kB body",
                http2: true,
                method: Method::PUT,
                path: "/upload",
                headers: &[],
                body: big.clone(),
                status: StatusCode::OK,
                expect: vec![
                    "method:  PUT".into(),
                    "version: HTTP/2.0".into(),
                    "body (300000 bytes):".into(),
                ],
            },
            Case {
                what: "a body over the echo service's 1 MiB limit",
                http2: false,
                method: Method::POST,
                path: "/too-big",
                headers: &[],
                body: Bytes::from(vec![b'x'; super::MAX_ECHO_BODY + 1]),
                status: StatusCode::PAYLOAD_TOO_LARGE,
                expect: vec!["cannot read the body".into()],
            },
        ];

        let http1 = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let http2 = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http::<Full<Bytes>>();
        let mut failures = 0;
        for case in cases {
            let mut request = Request::builder()
                .method(case.method.clone())
                .uri(format!("http://{addr}{}", case.path));
            for (name, value) in case.headers {
                request = request.header(*name, *value);
            }
            let request = request.body(Full::new(case.body.clone()))?;
            let client = if case.http2 { &http2 } else { &http1 };
            let response = client.request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            let body = String::from_utf8_lossy(&body);

            println!("── {}: {} {}", case.what, case.method, case.path);
            println!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            );
            // The big echoed bodies are long: show their beginning only.
            let shown: String = body.chars().take(600).collect();
            print!("{shown}");
            if shown.len() < body.len() {
                println!("… ({} more bytes)", body.len() - shown.len());
            }
            let mut problems = Vec::new();
            if status != case.status {
                problems.push(format!("status {status}, expected {}", case.status));
            }
            for needle in &case.expect {
                if !body.contains(needle.as_str()) {
                    problems.push(format!("missing {needle:?}"));
                }
            }
            if problems.is_empty() {
                println!("   ✓ ok\n");
            } else {
                failures += 1;
                println!("   ✗ FAILED: {}\n", problems.join("; "));
            }
        }
        if failures > 0 {
            return Err(format!("self-test: {failures} case(s) failed").into());
        }
        println!("self-test: all cases passed");
        Ok(())
    }
}
