//! `fcgi request`: curl for FastCGI. The params are built as the gateway builds them from an
//! HTTP request (nginx's `fastcgi_params`, `CONTENT_LENGTH` for a body), the answer's body
//! goes to stdout (its head too with `-i`), the application's `STDERR` to stderr, and the
//! exit status says how it went ([`Exit`]): a health check for php-fpm's `ping.path`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use fcgi_core::{Params, Role};
use fcgi_http::request::{CgiConfig, ConnInfo, MapError, ScriptResolution, build_params};
use fcgi_http::response::{CgiResponseParser, Head, ParserConfig};
use fcgi_tokio::Backend;
use fcgi_tokio::client::{ClientError, ClientRequest, ClientResponse, RequestBody};
use futures_util::FutureExt;
use serde::Serialize;

use crate::connect::{client_options, parse_backend, parse_seconds};
use crate::exit::Exit;

/// The most of a body read from stdin (`-d @-`), which is read whole to know its length.
const MAX_STDIN_BODY: usize = 256 * 1024 * 1024;
/// The most of the body a `--json` report carries.
const MAX_JSON_BODY: usize = 64 * 1024;

/// The FastCGI role to play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum RoleArg {
    /// A CGI request: the answer is the response.
    Responder,
    /// An access check: 200 grants (exit 0), anything else denies.
    Authorizer,
    /// A request with a data file (`--data-file`) to transform.
    Filter,
}

impl RoleArg {
    fn role(self) -> Role {
        match self {
            Self::Responder => Role::Responder,
            Self::Authorizer => Role::Authorizer,
            Self::Filter => Role::Filter,
        }
    }
}

/// `fcgi request`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The application: tcp:HOST:PORT, unix:PATH, HOST:PORT, or an absolute socket path.
    #[arg(long, value_parser = parse_backend)]
    connect: Backend,
    /// The document root as the application sees it (SCRIPT_FILENAME is ROOT + the script).
    #[arg(long, default_value = "/var/www/html")]
    root: String,
    /// The request method (default GET, or POST with -d).
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    method: Option<String>,
    /// The request body: DATA as given, @FILE for a file, @- for stdin.
    #[arg(short = 'd', long = "data", value_name = "DATA|@FILE")]
    data: Option<String>,
    /// A request header `Name: value` (the application sees HTTP_NAME); repeatable.
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    headers: Vec<String>,
    /// A param NAME=VALUE, set after the others are built (replacing one of the same name);
    /// repeatable.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// The FastCGI role.
    #[arg(long, value_enum, default_value_t = RoleArg::Responder)]
    role: RoleArg,
    /// The Filter role's data file (sent as FCGI_DATA, with FCGI_DATA_LENGTH and
    /// FCGI_DATA_LAST_MOD).
    #[arg(long, value_name = "FILE")]
    data_file: Option<PathBuf>,
    /// Print the response head before the body.
    #[arg(short = 'i', long = "include")]
    include: bool,
    /// Print the params sent, and the timings, on stderr.
    #[arg(short, long)]
    verbose: bool,
    /// Give up after this many seconds.
    #[arg(long, default_value = "10", value_parser = parse_seconds, value_name = "SECS")]
    timeout: Duration,
    /// Report on stdout as one JSON object (status, headers, body, stderr, timings, exit).
    #[arg(long)]
    json: bool,
    /// The request target: PATH?QUERY.
    #[arg(default_value = "/", value_name = "PATH?QUERY")]
    target: String,
}

/// What the request did, for `--json` (and the `-v` timings).
#[derive(Debug, Default, Serialize)]
struct Report {
    connect: String,
    role: &'static str,
    status: Option<u16>,
    /// A CGI local redirect: the path the application asked the server to serve instead.
    local_redirect: Option<String>,
    headers: Vec<(String, String)>,
    body: String,
    body_bytes: u64,
    body_truncated: bool,
    stderr: String,
    app_status: Option<u32>,
    timings_ms: Timings,
    exit: u8,
    outcome: &'static str,
    error: Option<String>,
}

#[derive(Debug, Default, Serialize)]
struct Timings {
    /// Connected, and the request's params sent.
    sent: Option<f64>,
    /// The first byte of the answer.
    first_byte: Option<f64>,
    /// `END_REQUEST`.
    end: Option<f64>,
}

/// Runs `fcgi request`.
pub(crate) async fn run(args: Args) -> Exit {
    let request = match build(&args).await {
        Ok(request) => request,
        Err(message) => {
            eprintln!("fcgi request: {message}");
            return Exit::Usage;
        }
    };
    if args.verbose {
        eprintln!("> {} ({})", args.connect, role_name(args.role));
        for (name, value) in request.params().iter() {
            eprintln!(
                "> {}={}",
                String::from_utf8_lossy(name),
                String::from_utf8_lossy(value)
            );
        }
    }
    let mut report = Report {
        connect: args.connect.to_string(),
        role: role_name(args.role),
        ..Report::default()
    };
    let mut options = client_options(args.timeout);
    options.total_timeout = Some(args.timeout);
    // One request: the application may close the connection after it.
    options.keep_alive = false;
    options.max_connections = 1;
    let client = fcgi_tokio::client(args.connect.clone(), options);
    let started = Instant::now();
    let outcome = match client.send(request).await {
        Ok(response) => {
            report.timings_ms.sent = Some(ms(started.elapsed()));
            receive(response, &args, started, &mut report).await
        }
        Err(e) => Err(Failure::Client(e)),
    };
    let exit = match &outcome {
        Ok(exit) => *exit,
        Err(failure) => {
            let (exit, message) = failure.describe();
            eprintln!("fcgi request: {message}");
            report.error = Some(message);
            exit
        }
    };
    report.exit = exit.code();
    report.outcome = exit.name();
    if args.verbose {
        let t = &report.timings_ms;
        eprintln!(
            "* sent after {}, first byte after {}, ended after {}; application status {}",
            shown(t.sent),
            shown(t.first_byte),
            shown(t.end),
            report
                .app_status
                .map_or_else(|| "unknown".to_owned(), |s| s.to_string())
        );
    }
    if args.json {
        match serde_json::to_string(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("fcgi request: {e}"),
        }
    }
    exit
}

fn role_name(role: RoleArg) -> &'static str {
    match role {
        RoleArg::Responder => "responder",
        RoleArg::Authorizer => "authorizer",
        RoleArg::Filter => "filter",
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn shown(t: Option<f64>) -> String {
    t.map_or_else(|| "-".to_owned(), |t| format!("{t} ms"))
}

/// Why the request failed.
enum Failure {
    Client(ClientError),
    BadHead(fcgi_http::response::CgiResponseError),
    Stdout(std::io::Error),
}

impl Failure {
    fn describe(&self) -> (Exit, String) {
        match self {
            Self::Client(e) => (Exit::of_client_error(e), e.to_string()),
            Self::BadHead(e) => (Exit::Protocol, format!("unusable response head: {e}")),
            Self::Stdout(e) => (Exit::Failure, format!("cannot write the body: {e}")),
        }
    }
}

/// Reads the answer: the head, the body (printed as it arrives unless `--json`), `STDERR`
/// (printed as it arrives), the end.
async fn receive(
    mut response: ClientResponse,
    args: &Args,
    started: Instant,
    report: &mut Report,
) -> Result<Exit, Failure> {
    let mut parser = CgiResponseParser::new(ParserConfig::default());
    let mut exit = None;
    let mut stdout = std::io::stdout().lock();
    let mut kept = BytesMut::new();
    loop {
        let piece = response.chunk().await;
        print_stderr(&mut response, report);
        if report.timings_ms.first_byte.is_none() {
            report.timings_ms.first_byte = Some(ms(started.elapsed()));
        }
        let piece = match piece {
            None => break,
            Some(Err(e)) => return Err(Failure::Client(e)),
            Some(Ok(piece)) => piece,
        };
        let body = if exit.is_none() {
            match parser.feed(piece).map_err(Failure::BadHead)? {
                None => continue,
                Some(parsed) => {
                    exit = Some(head(&parsed.head, args, report, &mut stdout)?);
                    parsed.body
                }
            }
        } else {
            piece
        };
        body_piece(body, args, report, &mut stdout, &mut kept)?;
    }
    let end = response.finish().await.map_err(Failure::Client)?;
    report.timings_ms.end = Some(ms(started.elapsed()));
    report.app_status = Some(end.app_status);
    if !end.stderr.is_empty() {
        eprint!("{}", String::from_utf8_lossy(&end.stderr));
        report
            .stderr
            .push_str(&String::from_utf8_lossy(&end.stderr));
    }
    if !report.stderr.is_empty() && !report.stderr.ends_with('\n') {
        // The application's last STDERR line, ended here so that ours start on their own.
        eprintln!();
    }
    stdout.flush().map_err(Failure::Stdout)?;
    report.body = String::from_utf8_lossy(&kept).into_owned();
    match exit {
        Some(exit) => Ok(exit),
        None => Err(Failure::BadHead(parser.finish().err().unwrap_or(
            fcgi_http::response::CgiResponseError::EndedBeforeHead { buffered: 0 },
        ))),
    }
}

/// Prints the `STDERR` received so far (without waiting).
fn print_stderr(response: &mut ClientResponse, report: &mut Report) {
    while let Some(Some(piece)) = response.stderr_chunk().now_or_never() {
        eprint!("{}", String::from_utf8_lossy(&piece));
        report.stderr.push_str(&String::from_utf8_lossy(&piece));
    }
}

/// Records the response head (printing it with `-i`) and returns the exit it means.
fn head(
    head: &Head,
    args: &Args,
    report: &mut Report,
    out: &mut impl Write,
) -> Result<Exit, Failure> {
    let text = match head {
        Head::Response(parts) => {
            report.status = Some(parts.status.as_u16());
            let mut text = format!(
                "Status: {} {}\r\n",
                parts.status.as_u16(),
                parts.status.canonical_reason().unwrap_or("")
            );
            for (name, value) in &parts.headers {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                text.push_str(&format!("{name}: {value}\r\n"));
                report.headers.push((name.to_string(), value));
            }
            text
        }
        Head::InternalRedirect { path } => {
            report.local_redirect = Some(path.to_string());
            format!("Location: {path}\r\n")
        }
    };
    if args.include && !args.json {
        out.write_all(text.as_bytes()).map_err(Failure::Stdout)?;
        out.write_all(b"\r\n").map_err(Failure::Stdout)?;
    }
    Ok(match head {
        Head::Response(parts) => Exit::of_status(parts.status),
        Head::InternalRedirect { .. } => Exit::Redirect,
    })
}

fn body_piece(
    piece: Bytes,
    args: &Args,
    report: &mut Report,
    out: &mut impl Write,
    kept: &mut BytesMut,
) -> Result<(), Failure> {
    report.body_bytes += piece.len() as u64;
    if args.json {
        let room = MAX_JSON_BODY.saturating_sub(kept.len());
        if piece.len() > room {
            report.body_truncated = true;
        }
        kept.extend_from_slice(&piece[..piece.len().min(room)]);
    } else {
        out.write_all(&piece).map_err(Failure::Stdout)?;
    }
    Ok(())
}

/// The request the arguments describe.
async fn build(args: &Args) -> Result<ClientRequest, String> {
    let role = args.role.role();
    let body = match &args.data {
        None => None,
        Some(data) => Some(body(data).await?),
    };
    if body.is_some() && role == Role::Authorizer {
        return Err("an Authorizer request has no body (-d)".into());
    }
    if args.data_file.is_some() != (role == Role::Filter) {
        return Err("--data-file goes with --role filter, and a Filter needs it".into());
    }
    let method = match (&args.method, &body) {
        (Some(m), _) => m.clone(),
        (None, Some(_)) => "POST".to_owned(),
        (None, None) => "GET".to_owned(),
    };
    let mut builder = http::Request::builder()
        .method(method.as_str())
        .uri(args.target.as_str());
    let mut has_host = false;
    let mut has_type = false;
    for header in &args.headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| format!("-H {header:?}: expected 'Name: value'"))?;
        let name = name.trim();
        has_host |= name.eq_ignore_ascii_case("host");
        has_type |= name.eq_ignore_ascii_case("content-type");
        builder = builder.header(name, value.trim());
    }
    if !has_host {
        builder = builder.header(http::header::HOST, "localhost");
    }
    if body.is_some() && !has_type {
        // What curl -d sends.
        builder = builder.header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        );
    }
    let (parts, ()) = builder
        .body(())
        .map_err(|e| format!("invalid request: {e}"))?
        .into_parts();
    if !args.target.starts_with('/') {
        return Err(format!("{:?}: the target must start with /", args.target));
    }
    let conn = ConnInfo::new(
        SocketAddr::from(([127, 0, 0, 1], 80)),
        SocketAddr::from(([127, 0, 0, 1], 0)),
        false,
    );
    let length = body.as_ref().map(|(_, len)| *len);
    let mut cgi = CgiConfig::new(args.root.clone(), ScriptResolution::split_path());
    cgi.server_name = "localhost".into();
    let mut params = match build_params(&parts, length, &conn, &cgi) {
        Ok(params) => params,
        // No `.php` segment (php-fpm's /ping, /status): the whole path is the script.
        Err(MapError::NotAScript) => {
            let (path, _) = fcgi_http::request::decoded_path(parts.uri.path())
                .map_err(|e| format!("{:?}: {e}", args.target))?;
            let path = String::from_utf8(path)
                .map_err(|_| format!("{:?}: the path is not UTF-8", args.target))?;
            cgi.script = ScriptResolution::FrontController(path);
            build_params(&parts, length, &conn, &cgi)
                .map_err(|e| format!("{:?}: {e}", args.target))?
        }
        Err(e) => return Err(format!("{:?}: {e}", args.target)),
    };
    if let Some(file) = &args.data_file {
        let meta = std::fs::metadata(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        params = with_params(
            params,
            &[
                format!("FCGI_DATA_LENGTH={}", meta.len()),
                format!("FCGI_DATA_LAST_MOD={modified}"),
            ],
        )?;
    }
    params = with_params(params, &args.params)?;
    let mut request = ClientRequest::new(role)
        .params_from(params)
        .retry_on_dead_connection(false);
    if let Some((stdin, _)) = body {
        request = request.stdin(stdin);
    }
    if let Some(file) = &args.data_file {
        let file = tokio::fs::File::open(file)
            .await
            .map_err(|e| format!("{}: {e}", file.display()))?;
        request = request.data(fcgi_tokio::body_from_reader(file));
    }
    Ok(request)
}

/// `-d`: the body and its length.
async fn body(data: &str) -> Result<(RequestBody, u64), String> {
    match data.strip_prefix('@') {
        None => Ok((
            RequestBody::from(Bytes::copy_from_slice(data.as_bytes())),
            data.len() as u64,
        )),
        Some("-") => {
            use tokio::io::AsyncReadExt;
            let mut all = Vec::new();
            tokio::io::stdin()
                .take(MAX_STDIN_BODY as u64 + 1)
                .read_to_end(&mut all)
                .await
                .map_err(|e| format!("stdin: {e}"))?;
            if all.len() > MAX_STDIN_BODY {
                return Err(format!(
                    "stdin: more than {MAX_STDIN_BODY} bytes (use -d @FILE)"
                ));
            }
            let len = all.len() as u64;
            Ok((RequestBody::from(Bytes::from(all)), len))
        }
        Some(path) => {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| format!("{path}: {e}"))?;
            let len = file
                .metadata()
                .await
                .map_err(|e| format!("{path}: {e}"))?
                .len();
            Ok((fcgi_tokio::body_from_reader(file), len))
        }
    }
}

/// `params` with each `NAME=VALUE` of `set` replacing the params of that name.
fn with_params(params: Params, set: &[String]) -> Result<Params, String> {
    if set.is_empty() {
        return Ok(params);
    }
    let mut pairs = Vec::with_capacity(set.len());
    for item in set {
        let (name, value) = item
            .split_once('=')
            .ok_or_else(|| format!("--param {item:?}: expected NAME=VALUE"))?;
        if name.is_empty() {
            return Err(format!("--param {item:?}: empty name"));
        }
        pairs.push((name.as_bytes(), value.as_bytes()));
    }
    let mut out = Params::default();
    for (name, value) in params.iter() {
        if !pairs.iter().any(|(n, _)| *n == name) {
            out.push(name, value).map_err(|e| e.to_string())?;
        }
    }
    for (name, value) in pairs {
        out.push(name, value).map_err(|e| e.to_string())?;
    }
    Ok(out)
}
