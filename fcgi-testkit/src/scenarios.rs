//! The interop checks, one function per peer and setup, independent of the runtime that
//! serves the application: they only need an [`App`] (or the path of an echo example binary
//! for the spawn-fcgi checks). Each starts its peer, drives HTTP (or FastCGI) requests
//! through it, and asserts the echo application's exact answers and what the application
//! saw ([`crate::app::Stats`]). A missing peer program follows the skip policy of
//! [`crate::tools::require`].

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use fcgi_driver::fcgi_core::Role;

use crate::app::{App, AppAddr, RequestRecord, max_concurrent_per_connection};
use crate::echo::{CGI_HEAD, EchoReply, strip_cgi_head};
use crate::http::{Request, Response};
use crate::peers::spawn_fcgi::{self, Socket};
use crate::peers::{RunningPeer, apache, cgi_fcgi, haproxy, lighttpd, nginx};

/// Size of the "big body" checks.
pub const BIG: usize = 10 * 1024 * 1024;

/// Longest wait for something the application or a peer does after a response.
const SETTLE: Duration = Duration::from_secs(10);

/// Deterministic bytes covering every byte value (CR, LF and NUL included).
pub fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// A text unique to this process and call, to find in logs.
pub fn token(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Asserts a 200 `text/plain` echo Responder answer and parses it.
#[track_caller]
pub fn echo_reply(peer: &RunningPeer, resp: &Response) -> EchoReply {
    assert_eq!(
        resp.status,
        200,
        "{}: status; body {:?}",
        peer.name(),
        resp.text()
    );
    let ctype = resp.header("Content-Type").unwrap_or_default();
    assert!(
        ctype.starts_with("text/plain"),
        "{}: Content-Type {ctype:?}",
        peer.name()
    );
    let reply = EchoReply::parse(&resp.body)
        .unwrap_or_else(|e| panic!("{}: {e}; body {:?}", peer.name(), resp.text()));
    assert_eq!(reply.role, "responder");
    reply
}

/// The records of requests whose param `name` is `value`.
fn records_with(app: &App, name: &str, value: &str) -> Vec<RequestRecord> {
    app.stats
        .requests()
        .into_iter()
        .filter(|r| r.param(name) == Some(value))
        .collect()
}

/// The one request whose param `name` is `value`, once its handler has ended (a bounded
/// wait: the record is made before `END_REQUEST` goes out, but a peer need not wait for
/// `END_REQUEST` to finish its HTTP answer).
#[track_caller]
fn finished_with(app: &App, name: &str, value: &str) -> RequestRecord {
    app.stats
        .wait_until(&format!("the {name}={value} request to end"), SETTLE, |s| {
            s.requests()
                .iter()
                .any(|r| r.param(name) == Some(value) && r.finished.is_some())
        });
    let mut found = records_with(app, name, value);
    assert_eq!(
        found.len(),
        1,
        "one application request with {name}={value}"
    );
    found.remove(0)
}

/// How a web server renders the common checks.
struct Flavour {
    /// Its log line for the application's `STDERR` text `t`.
    stderr_line: fn(&str) -> String,
    /// Whether it sends `CONTENT_LENGTH` for a chunked request body (having read it all);
    /// `false` means it streams the body and sends no `CONTENT_LENGTH`.
    chunked_has_length: bool,
    /// The `CONTENT_LENGTH` it sends for a GET: `None` if absent.
    get_content_length: Option<&'static str>,
    /// Size of the chunked request body to send.
    chunked_len: usize,
}

/// The query strings of the knob checks (fixed, so lighttpd's config can list them).
struct Knobs {
    bytes: String,
    stderr_token: String,
    status: String,
}

impl Knobs {
    const BODY_BYTES: usize = 300_000;
    const STATUS: u32 = 7;

    fn new() -> Self {
        Self {
            bytes: format!("echo_bytes={}", Self::BODY_BYTES),
            stderr_token: token("echo-stderr"),
            status: format!("echo_status={}", Self::STATUS),
        }
    }

    fn stderr(&self) -> String {
        format!("echo_stderr={}", self.stderr_token)
    }

    fn lighttpd_env(&self) -> Vec<(String, String, String)> {
        vec![
            (
                self.bytes.clone(),
                "ECHO_BODY_BYTES".into(),
                Knobs::BODY_BYTES.to_string(),
            ),
            (
                self.stderr(),
                "ECHO_STDERR".into(),
                self.stderr_token.clone(),
            ),
            (
                self.status.clone(),
                "ECHO_STATUS".into(),
                Knobs::STATUS.to_string(),
            ),
        ]
    }
}

/// The Responder checks every HTTP peer gets: GET with a query and a custom header, POST
/// with a Content-Length body, POST with a chunked body, a streamed `ECHO_BODY_BYTES`
/// answer, `ECHO_STDERR` in the peer's log, `ECHO_STATUS` as the app status. Returns how
/// many requests it sent.
fn responder_checks(peer: &RunningPeer, app: &App, flavour: &Flavour, knobs: &Knobs) -> usize {
    let name = peer.name();

    // GET: method, query, URI, headers as HTTP_* params; no body; no knob params.
    let resp = peer.send(&Request::get("/echo/path?a=1&b=two").header("X-Interop", "yes"));
    assert_eq!(resp.status, 200);
    let get = echo_reply(peer, &resp);
    get.assert_param("REQUEST_METHOD", "GET");
    get.assert_param("QUERY_STRING", "a=1&b=two");
    get.assert_param("REQUEST_URI", "/echo/path?a=1&b=two");
    get.assert_param("HTTP_X_INTEROP", "yes");
    get.assert_param("SERVER_PROTOCOL", "HTTP/1.1");
    get.assert_param("GATEWAY_INTERFACE", "CGI/1.1");
    assert_eq!(
        get.param("CONTENT_LENGTH"),
        flavour.get_content_length,
        "{name}: GET CONTENT_LENGTH"
    );
    for knob in [
        "ECHO_BODY_BYTES",
        "ECHO_STDERR",
        "ECHO_SLEEP_MS",
        "ECHO_STATUS",
    ] {
        get.assert_no_param(knob);
    }
    assert!(get.stdin.is_empty());
    // What the application received is what it echoed, param for param.
    let seen = finished_with(app, "QUERY_STRING", "a=1&b=two");
    let echoed: Vec<(String, String)> = get
        .params
        .iter()
        .map(|(n, v)| {
            (
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect();
    assert_eq!(seen.params, echoed);
    assert_eq!(seen.role, Role::Responder);
    assert_eq!(seen.id, get.request_id);
    assert_eq!(seen.app_status, Some(0));

    // POST with Content-Length: body echoed byte for byte.
    let body = payload(70_000);
    let post = echo_reply(
        peer,
        &peer.send(&Request::post("/echo/post?p=1", body.clone())),
    );
    post.assert_param("REQUEST_METHOD", "POST");
    post.assert_param("CONTENT_LENGTH", "70000");
    post.assert_param("CONTENT_TYPE", "application/octet-stream");
    assert!(post.stdin == body, "{name}: POST body changed on the way");

    // POST chunked: the peer de-chunks; the application gets the same bytes.
    let body = payload(flavour.chunked_len);
    let chunked = echo_reply(
        peer,
        &peer.send(&Request::post_chunked(
            "/echo/chunked?c=1",
            body.clone(),
            1000,
        )),
    );
    chunked.assert_param("REQUEST_METHOD", "POST");
    if flavour.chunked_has_length {
        chunked.assert_param("CONTENT_LENGTH", &flavour.chunked_len.to_string());
    } else {
        chunked.assert_no_param("CONTENT_LENGTH");
    }
    assert!(
        chunked.stdin == body,
        "{name}: chunked POST body changed on the way"
    );

    // ECHO_BODY_BYTES: a streamed answer of exactly that many bytes.
    let resp = peer.send(&Request::get(&format!("/echo/bytes?{}", knobs.bytes)));
    assert_eq!(resp.status, 200, "{name}: {}", resp.text());
    assert_eq!(
        resp.body.len(),
        Knobs::BODY_BYTES,
        "{name}: ECHO_BODY_BYTES length"
    );
    assert!(
        resp.body.iter().all(|&b| b == b'x'),
        "{name}: ECHO_BODY_BYTES content"
    );

    // ECHO_STDERR: the answer is unaffected; the text ends up in the peer's log.
    let stderr = echo_reply(
        peer,
        &peer.send(&Request::get(&format!("/echo/stderr?{}", knobs.stderr()))),
    );
    stderr.assert_param("ECHO_STDERR", &knobs.stderr_token);
    peer.expect_log(&(flavour.stderr_line)(&knobs.stderr_token));

    // ECHO_STATUS: a complete answer; the application ended the request with that status.
    let status = echo_reply(
        peer,
        &peer.send(&Request::get(&format!("/echo/status?{}", knobs.status))),
    );
    status.assert_param("ECHO_STATUS", &Knobs::STATUS.to_string());
    let ended = finished_with(app, "ECHO_STATUS", &Knobs::STATUS.to_string());
    assert_eq!(ended.app_status, Some(Knobs::STATUS));
    6
}

/// Prints what the application saw (for the CI log and for reports).
fn summary(app: &App, peer: &str) {
    let records = app.stats.requests();
    let kept = records.iter().filter(|r| r.keep_conn).count();
    let per_conn = if app.addr.is_unix() {
        "n/a (Unix socket)".to_owned()
    } else {
        max_concurrent_per_connection(&records).to_string()
    };
    eprintln!(
        "{peer} over {}: {} requests ({kept} with FCGI_KEEP_CONN) on {} FastCGI connections; \
         most concurrent on one connection: {per_conn}",
        if app.addr.is_unix() {
            "Unix socket"
        } else {
            "TCP"
        },
        records.len(),
        app.stats.accepted(),
    );
}

/// Asserts that every request so far used one FastCGI connection with `FCGI_KEEP_CONN`.
#[track_caller]
fn assert_one_kept_connection(app: &App, peer: &str) {
    let records = app.stats.requests();
    assert!(
        records.iter().all(|r| r.keep_conn),
        "{peer}: every request should set FCGI_KEEP_CONN"
    );
    assert_eq!(
        app.stats.accepted(),
        1,
        "{peer}: {} sequential requests should reuse one FastCGI connection",
        records.len()
    );
}

/// Asserts one FastCGI connection per request, without `FCGI_KEEP_CONN`, none left open.
#[track_caller]
fn assert_connection_per_request(app: &App, peer: &str) {
    let records = app.stats.requests();
    assert!(
        records.iter().all(|r| !r.keep_conn),
        "{peer}: no request should set FCGI_KEEP_CONN"
    );
    assert_eq!(
        app.stats.accepted(),
        records.len(),
        "{peer}: one connection per request"
    );
    // Without FCGI_KEEP_CONN the connection ends with its request (whichever side closes
    // first, no connection task of ours lingers).
    app.stats
        .wait_until("every FastCGI connection to close", SETTLE, |s| {
            s.open_connections() == 0
        });
}

/// nginx `fastcgi_pass`: the common Responder checks, then connection handling: with
/// `keep_conn`, `fastcgi_keep_conn on` + upstream `keepalive` must carry every request over
/// one FastCGI connection; without it, nginx opens one connection per request, and none
/// stays open.
pub fn nginx_responder(app: &App, keep_conn: bool) {
    let Some(peer) = nginx::start(&app.addr, nginx::Options { keep_conn }) else {
        return;
    };
    let flavour = Flavour {
        stderr_line: |t| format!("FastCGI sent in stderr: \"{t}\""),
        chunked_has_length: true,
        get_content_length: Some(""),
        chunked_len: 100_000,
    };
    let sent = responder_checks(&peer, app, &flavour, &Knobs::new());
    // A few more on the same FastCGI connection (or not).
    for i in 0..4 {
        let r = echo_reply(&peer, &peer.send(&Request::get(&format!("/again?i={i}"))));
        r.assert_param("QUERY_STRING", &format!("i={i}"));
        // nginx never multiplexes: every request is request 1 of its connection.
        assert_eq!(r.request_id, 1);
    }
    assert_eq!(app.stats.requests().len(), sent + 4);
    summary(app, "nginx");
    if keep_conn {
        assert_one_kept_connection(app, "nginx");
    } else {
        assert_connection_per_request(app, "nginx");
    }
}

/// nginx with 10 MiB bodies both ways: a POST echoed back intact, and a streamed
/// `ECHO_BODY_BYTES` answer.
pub fn nginx_big_bodies(app: &App) {
    let Some(peer) = nginx::start(&app.addr, nginx::Options { keep_conn: true }) else {
        return;
    };
    let body = payload(BIG);
    let reply = echo_reply(&peer, &peer.send(&Request::post("/big", body.clone())));
    reply.assert_param("CONTENT_LENGTH", &BIG.to_string());
    assert_eq!(reply.stdin.len(), BIG);
    assert!(reply.stdin == body, "10 MiB POST body changed on the way");

    let resp = peer.send(&Request::get(&format!("/big?echo_bytes={BIG}")));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body.len(), BIG);
    assert!(
        resp.body.iter().all(|&b| b == b'x'),
        "10 MiB answer content"
    );
    summary(app, "nginx (10 MiB bodies)");
    assert_one_kept_connection(app, "nginx");
}

/// nginx and a client that gives up: the HTTP client closes its connection while the
/// application sleeps (`ECHO_SLEEP_MS=5000`); nginx closes the kept-alive FastCGI
/// connection, and we must cancel the handler (not run it to the end) and drop the
/// connection; the next request gets a new one.
pub fn nginx_client_abort(app: &App) {
    let Some(peer) = nginx::start(&app.addr, nginx::Options { keep_conn: true }) else {
        return;
    };
    let mut client =
        TcpStream::connect_timeout(&peer.addr(), Duration::from_secs(5)).expect("connect");
    client
        .set_write_timeout(Some(SETTLE))
        .expect("write timeout");
    client
        .write_all(b"GET /slow?echo_sleep=5000 HTTP/1.1\r\nHost: interop\r\n\r\n")
        .expect("send request");
    app.stats
        .wait_until("the slow request to start", SETTLE, |s| s.in_flight() == 1);
    drop(client);
    app.stats
        .wait_until("the slow request to end", SETTLE, |s| s.in_flight() == 0);
    let slow = &app.stats.requests()[0];
    assert_eq!(slow.param("ECHO_SLEEP_MS"), Some("5000"));
    assert_eq!(
        slow.app_status, None,
        "the handler should be cancelled when nginx drops the connection, not finish its sleep"
    );
    app.stats
        .wait_until("the FastCGI connection to close", SETTLE, |s| {
            s.open_connections() == 0
        });
    peer.expect_log("client prematurely closed connection");
    let after = echo_reply(&peer, &peer.send(&Request::get("/after?z=1")));
    after.assert_param("QUERY_STRING", "z=1");
    summary(app, "nginx (client abort)");
    assert_eq!(app.stats.accepted(), 2);
}

/// Apache mod_proxy_fcgi (`ProxyPass ... enablereuse=on`): the common Responder checks, and
/// every request over one reused FastCGI connection.
pub fn apache_responder(app: &App) {
    let opts = apache::Options {
        reuse: true,
        authorizer: false,
    };
    let Some(peer) = apache::start(&app.addr, opts) else {
        return;
    };
    let flavour = Flavour {
        stderr_line: |t| format!("AH01071: Got error '{t}'"),
        chunked_has_length: false,
        get_content_length: None,
        chunked_len: 100_000,
    };
    responder_checks(&peer, app, &flavour, &Knobs::new());
    summary(app, "Apache mod_proxy_fcgi");
    assert!(
        app.stats.requests().iter().all(|r| r.id == 1),
        "Apache does not multiplex"
    );
    // enablereuse=on: Apache keeps the connection in its pool (and says so with
    // FCGI_KEEP_CONN); sequential requests reuse it.
    assert_one_kept_connection(app, "Apache");
}

/// Apache mod_authnz_fcgi: `/auth/` is granted or denied by the application's Authorizer
/// role; a granted request reaches the Responder with the authorizer's `Variable-AUTH_USER`
/// as a param and as `REMOTE_USER`.
pub fn apache_authorizer(app: &App) {
    let opts = apache::Options {
        reuse: false,
        authorizer: true,
    };
    let Some(peer) = apache::start(&app.addr, opts) else {
        return;
    };
    authorizer_denials(&peer, app, "/auth/page?x=1");

    let resp =
        peer.send(&Request::get("/auth/page?x=1").header("Authorization", "Bearer let-me-in"));
    let reply = echo_reply(&peer, &resp);
    reply.assert_param("REQUEST_URI", "/auth/page?x=1");
    reply.assert_param("AUTH_USER", "echo");
    reply.assert_param("REMOTE_USER", "echo");
    let auth: Vec<_> = app
        .stats
        .requests()
        .into_iter()
        .filter(|r| r.role == Role::Authorizer)
        .collect();
    assert_eq!(auth.len(), 3, "one Authorizer request per /auth/ request");
    let granted = &auth[2];
    assert_eq!(
        granted.param("HTTP_AUTHORIZATION"),
        Some("Bearer let-me-in")
    );
    assert_eq!(granted.param("FCGI_ROLE"), Some("AUTHORIZER"));
    // An `authnz` provider is called once, in the authentication phase.
    assert_eq!(granted.param("FCGI_APACHE_ROLE"), Some("AUTHENTICATOR"));
    // Outside /auth/ nobody asks the authorizer.
    let public = echo_reply(&peer, &peer.send(&Request::get("/public")));
    public.assert_no_param("AUTH_USER");
    summary(app, "Apache mod_authnz_fcgi + mod_proxy_fcgi");
    assert_eq!(
        app.stats
            .requests()
            .iter()
            .filter(|r| r.role == Role::Authorizer)
            .count(),
        3
    );
}

/// The two refusals every authorizer check starts with: no credentials, wrong credentials.
fn authorizer_denials(peer: &RunningPeer, app: &App, target: &str) {
    for auth in [None, Some("Bearer wrong")] {
        let mut req = Request::get(target);
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let resp = peer.send(&req);
        assert_eq!(
            resp.status,
            403,
            "{}: {auth:?}: {}",
            peer.name(),
            resp.text()
        );
        assert_eq!(
            resp.body,
            b"denied",
            "{}: the authorizer's body is passed on",
            peer.name()
        );
    }
    let records = app.stats.requests();
    assert_eq!(records.len(), 2, "{}: only the authorizer ran", peer.name());
    assert!(records.iter().all(|r| r.role == Role::Authorizer));
    assert_eq!(records[1].param("HTTP_AUTHORIZATION"), Some("Bearer wrong"));
}

/// lighttpd mod_fastcgi as a Responder: the common checks and its connection handling.
pub fn lighttpd_responder(app: &App) {
    let knobs = Knobs::new();
    let opts = lighttpd::Options {
        query_env: knobs.lighttpd_env(),
        authorizer: false,
    };
    let Some(peer) = lighttpd::start(&app.addr, &opts) else {
        return;
    };
    let flavour = Flavour {
        stderr_line: |t| format!("FastCGI-stderr:{t}"),
        chunked_has_length: true,
        get_content_length: Some("0"),
        chunked_len: 100_000,
    };
    responder_checks(&peer, app, &flavour, &knobs);
    summary(app, "lighttpd");
    assert_connection_per_request(app, "lighttpd");
}

/// lighttpd mod_fastcgi in Authorizer mode in front of static files: denied requests get
/// the application's 403 answer; granted ones the file.
pub fn lighttpd_authorizer(app: &App) {
    let opts = lighttpd::Options {
        query_env: Vec::new(),
        authorizer: true,
    };
    let Some(peer) = lighttpd::start(&app.addr, &opts) else {
        return;
    };
    authorizer_denials(&peer, app, lighttpd::AUTH_FILE);
    let resp =
        peer.send(&Request::get(lighttpd::AUTH_FILE).header("Authorization", "Bearer let-me-in"));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.body, lighttpd::AUTH_FILE_BODY.as_bytes());
    let records = app.stats.requests();
    assert_eq!(records.len(), 3);
    let granted = &records[2];
    assert_eq!(granted.role, Role::Authorizer);
    assert_eq!(
        granted.param("HTTP_AUTHORIZATION"),
        Some("Bearer let-me-in")
    );
    assert_eq!(granted.param("REQUEST_URI"), Some(lighttpd::AUTH_FILE));
    // Outside /auth/ the application is the Responder.
    let reply = echo_reply(&peer, &peer.send(&Request::get("/other")));
    reply.assert_param("REQUEST_URI", "/other");
    assert_eq!(app.stats.requests()[3].role, Role::Responder);
    summary(app, "lighttpd authorizer + responder");
}

/// HAProxy's FastCGI backend: first the multiplexing check (four concurrent HTTP requests
/// with `ECHO_SLEEP_MS` end up on one FastCGI connection, running at the same time), then
/// the common Responder checks.
pub fn haproxy_responder(app: &App) {
    let Some(peer) = haproxy::start(&app.addr) else {
        return;
    };
    // Four slow requests from four client connections.
    const N: usize = 4;
    let addr = peer.addr();
    let first =
        thread::spawn(move || crate::http::send(addr, &Request::get("/slow?n=0&echo_sleep=2500")));
    // Once the first is running on a FastCGI connection, the others should join it.
    app.stats
        .wait_until("the first slow request to start", SETTLE, |s| {
            s.in_flight() == 1
        });
    let rest: Vec<_> = (1..N)
        .map(|i| {
            thread::spawn(move || {
                crate::http::send(addr, &Request::get(&format!("/slow?n={i}&echo_sleep=1500")))
            })
        })
        .collect();
    app.stats
        .wait_until("all slow requests to run at once", SETTLE, |s| {
            s.in_flight() == N
        });
    let open_while_busy = app.stats.open_connections();
    summary(app, "HAProxy (concurrent phase)");
    let mut ids = Vec::new();
    for (i, handle) in std::iter::once(first).chain(rest).enumerate() {
        let resp = handle
            .join()
            .expect("client thread")
            .unwrap_or_else(|e| panic!("slow request {i}: {e}\n{}", peer.logs()));
        let reply = echo_reply(&peer, &resp);
        reply.assert_param(
            "QUERY_STRING",
            &format!("n={i}&echo_sleep={}", if i == 0 { 2500 } else { 1500 }),
        );
        reply.assert_param("ECHO_SLEEP_MS", if i == 0 { "2500" } else { "1500" });
        ids.push(reply.request_id);
    }
    assert_eq!(
        open_while_busy, 1,
        "HAProxy (mpxs-conns, http-reuse always) should carry {N} concurrent requests on one FastCGI connection"
    );
    assert_eq!(app.stats.accepted(), 1);
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        ids.len(),
        N,
        "concurrent requests on one connection need distinct ids"
    );
    let records = app.stats.requests();
    if !app.addr.is_unix() {
        assert_eq!(max_concurrent_per_connection(&records), N);
    }
    assert!(
        records.iter().all(|r| r.keep_conn),
        "HAProxy sets FCGI_KEEP_CONN"
    );

    // Four concurrent 2 MiB answers on the shared connection: their STDOUT records
    // interleave on the wire, and each client must still get exactly its own bytes.
    const BIG_ANSWER: usize = 2 << 20;
    let big: Vec<_> = (0..N)
        .map(|i| {
            thread::spawn(move || {
                let target = format!("/big?n={i}&echo_sleep=1000&echo_bytes={BIG_ANSWER}");
                crate::http::send(addr, &Request::get(&target))
            })
        })
        .collect();
    app.stats
        .wait_until("all big answers to be under way", SETTLE, |s| {
            s.in_flight() == N
        });
    for (i, handle) in big.into_iter().enumerate() {
        let resp = handle
            .join()
            .expect("client thread")
            .unwrap_or_else(|e| panic!("big answer {i}: {e}\n{}", peer.logs()));
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body.len(), BIG_ANSWER, "big answer {i}");
        assert!(
            resp.body.iter().all(|&b| b == b'x'),
            "big answer {i} content"
        );
    }
    summary(app, "HAProxy (concurrent big answers)");

    // HAProxy 2.6 computes CONTENT_LENGTH for a chunked body that fits its buffer (16 KiB
    // by default) and answers 400 itself, never contacting the application, for a larger
    // one: the chunked check stays below that.
    let flavour = Flavour {
        // `log-stderr` with the raw format: the text alone on its line (the access log line
        // has it too, inside the query string, so the line breaks matter).
        stderr_line: |t| format!("\n{t}\n"),
        chunked_has_length: true,
        get_content_length: Some("0"),
        chunked_len: 8000,
    };
    responder_checks(&peer, app, &flavour, &Knobs::new());
}

/// The exact bytes cgi-fcgi prints for the echo answer to `params` (sorted by name, as
/// `Command` passes the environment) and `stdin`.
fn cgi_fcgi_expected(params: &[(&str, &str)], stdin: &[u8]) -> Vec<u8> {
    let mut sorted = params.to_vec();
    sorted.sort_unstable();
    let mut out = CGI_HEAD.to_vec();
    out.extend_from_slice(b"role: responder\nrequest-id: 1\n");
    for (n, v) in sorted {
        out.extend_from_slice(format!("param: {n}={v}\n").as_bytes());
    }
    out.extend_from_slice(format!("stdin-length: {}\n\n", stdin.len()).as_bytes());
    out.extend_from_slice(stdin);
    out
}

/// One exact request/answer through cgi-fcgi; `None` if skipped.
fn cgi_fcgi_exact(addr: &AppAddr) -> Option<()> {
    let params = [
        ("CONTENT_LENGTH", "11"),
        ("QUERY_STRING", "a=1&b=2"),
        ("REQUEST_METHOD", "POST"),
        ("REQUEST_URI", "/cgi?a=1&b=2"),
    ];
    let out = cgi_fcgi::run(addr, &params, b"hello world")?;
    assert!(
        out.status.success(),
        "cgi-fcgi: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&cgi_fcgi_expected(&params, b"hello world"))
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(())
}

/// libfcgi's cgi-fcgi as the client: an exact answer byte for byte, the app status as its
/// exit status, `STDERR` on its stderr, 1 MiB each way, and one connection per request that
/// we close (cgi-fcgi does not set `FCGI_KEEP_CONN`).
pub fn cgi_fcgi(app: &App) {
    if cgi_fcgi_exact(&app.addr).is_none() {
        return;
    }
    let run = |params: &[(&str, &str)], stdin: &[u8]| {
        cgi_fcgi::run(&app.addr, params, stdin).expect("cgi-fcgi was found a moment ago")
    };

    // ECHO_STATUS is the exit status.
    let out = run(&[("REQUEST_METHOD", "GET"), ("ECHO_STATUS", "7")], b"");
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(
        out.stdout,
        cgi_fcgi_expected(&[("ECHO_STATUS", "7"), ("REQUEST_METHOD", "GET")], b"")
    );

    // ECHO_STDERR: exactly that text on stderr, the answer unchanged.
    let text = token("cgi-fcgi-stderr");
    let out = run(&[("REQUEST_METHOD", "GET"), ("ECHO_STDERR", &text)], b"");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), text);
    assert_eq!(
        out.stdout,
        cgi_fcgi_expected(&[("ECHO_STDERR", &text), ("REQUEST_METHOD", "GET")], b"")
    );

    // 1 MiB in, echoed; 1 MiB out, streamed.
    let body = payload(1 << 20);
    let len = body.len().to_string();
    let out = run(
        &[("REQUEST_METHOD", "PUT"), ("CONTENT_LENGTH", &len)],
        &body,
    );
    assert!(out.status.success());
    assert!(
        out.stdout
            == cgi_fcgi_expected(
                &[("CONTENT_LENGTH", &len), ("REQUEST_METHOD", "PUT")],
                &body
            )
    );
    let out = run(&[("REQUEST_METHOD", "GET"), ("ECHO_BODY_BYTES", &len)], b"");
    assert!(out.status.success());
    let answer = strip_cgi_head(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.len(), 1 << 20);
    assert!(answer.iter().all(|&b| b == b'x'));

    let records = app.stats.requests();
    assert_eq!(records.len(), 5);
    assert!(
        records
            .iter()
            .all(|r| r.role == Role::Responder && r.id == 1)
    );
    assert_eq!(records[1].app_status, Some(7));
    summary(app, "cgi-fcgi");
    assert_connection_per_request(app, "cgi-fcgi");
}

/// spawn-fcgi hands the echo example a TCP listening socket on fd 0: cgi-fcgi gets an
/// exact answer from it, and nginx in front of it works too.
pub fn spawn_fcgi_inherited_tcp(echo_example: &Path) {
    let Some(app) = spawn_fcgi::start(echo_example, Socket::Tcp, &[]) else {
        return;
    };
    for _ in 0..3 {
        if cgi_fcgi_exact(&app.addr).is_none() {
            return;
        }
    }
    let Some(web) = nginx::start(&app.addr, nginx::Options { keep_conn: true }) else {
        return;
    };
    let body = payload(50_000);
    let reply = echo_reply(
        &web,
        &web.send(&Request::post("/spawned?x=1", body.clone())),
    );
    reply.assert_param("QUERY_STRING", "x=1");
    assert!(reply.stdin == body);
    assert!(app.peer.is_running(), "the spawned echo example exited");
}

/// spawn-fcgi hands the echo example a Unix listening socket on fd 0.
pub fn spawn_fcgi_inherited_unix(echo_example: &Path) {
    let Some(app) = spawn_fcgi::start(echo_example, Socket::Unix, &[]) else {
        return;
    };
    if cgi_fcgi_exact(&app.addr).is_none() {
        return;
    }
    let Some(web) = nginx::start(&app.addr, nginx::Options { keep_conn: false }) else {
        return;
    };
    let reply = echo_reply(&web, &web.send(&Request::get("/spawned-unix?y=2")));
    reply.assert_param("QUERY_STRING", "y=2");
}

/// Reads from a fresh connection to `addr` after sending a FastCGI `BEGIN_REQUEST`: the
/// server must close it without answering a byte.
fn assert_closed_without_answer(addr: &AppAddr) {
    let AppAddr::Tcp(a) = addr else {
        unreachable!("FCGI_WEB_SERVER_ADDRS applies to TCP");
    };
    let mut s = TcpStream::connect_timeout(a, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(SETTLE)).expect("timeout");
    s.set_write_timeout(Some(SETTLE)).expect("timeout");
    // BEGIN_REQUEST, id 1, Responder, keep-conn; then an empty PARAMS.
    let request = [
        1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, //
        1, 4, 0, 1, 0, 0, 0, 0,
    ];
    let _ = s.write_all(&request);
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Ok(n) => panic!("a refused peer got {n} bytes: {:?}", &buf[..n]),
        Err(e) => panic!("expected the connection to be closed, got {e}"),
    }
}

/// `FCGI_WEB_SERVER_ADDRS` in the spawned application's environment: a list without
/// 127.0.0.1 gets loopback connections closed unanswered (and the server keeps running);
/// a list with it lets them through.
pub fn spawn_fcgi_web_server_addrs(echo_example: &Path) {
    let env = [("FCGI_WEB_SERVER_ADDRS", "192.0.2.1,10.11.12.13")];
    let Some(app) = spawn_fcgi::start(echo_example, Socket::Tcp, &env) else {
        return;
    };
    assert_closed_without_answer(&app.addr);
    let Some(out) = cgi_fcgi::run(&app.addr, &[("REQUEST_METHOD", "GET")], b"") else {
        return;
    };
    assert!(
        !out.status.success(),
        "cgi-fcgi should fail against a refusing server"
    );
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        app.peer.is_running(),
        "refusing a peer must not stop the server"
    );

    let env = [("FCGI_WEB_SERVER_ADDRS", "192.0.2.1, 127.0.0.1")];
    let Some(allowed) = spawn_fcgi::start(echo_example, Socket::Tcp, &env) else {
        return;
    };
    cgi_fcgi_exact(&allowed.addr);
}

/// Requests in flight when the example gets Ctrl-C.
const IN_FLIGHT_AT_SIGINT: usize = 16;

/// The echo example stops gracefully on Ctrl-C (SIGINT), on every runtime: sixteen requests
/// in flight (each held 1.5 s by `ECHO_SLEEP_MS`) are all answered in full, and the process
/// then exits with status 0.
pub fn example_drains_on_sigint(echo_example: &Path) {
    let port = crate::process::free_port().expect("a free port");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut cmd = std::process::Command::new(echo_example);
    cmd.args(["--tcp", &addr.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut example = crate::process::GroupChild::spawn("the echo example", &mut cmd)
        .expect("the echo example starts");
    let listening = (0..500).any(|_| {
        thread::sleep(Duration::from_millis(20));
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    });
    assert!(listening, "the echo example does not listen on {addr}");
    let sent = std::sync::Arc::new(std::sync::Barrier::new(IN_FLIGHT_AT_SIGINT + 1));
    let clients: Vec<_> = (0..IN_FLIGHT_AT_SIGINT)
        .map(|i| {
            let sent = std::sync::Arc::clone(&sent);
            thread::spawn(move || sleepy_request(addr, i, &sent))
        })
        .collect();
    sent.wait();
    // Every request is on the wire; give the example a moment to read them.
    thread::sleep(Duration::from_millis(300));
    let pid = rustix::process::Pid::from_raw(example.pid() as i32).expect("a pid");
    rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("SIGINT");
    for (i, client) in clients.into_iter().enumerate() {
        let answer = client.join().expect("a client thread");
        let (stdout, app_status) = answer.unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(app_status, 0, "request {i}");
        let text = String::from_utf8_lossy(&stdout);
        assert!(
            text.contains(&format!("param: N={i}\n")),
            "request {i} answered in full: {text}"
        );
    }
    let exited = (0..500).any(|_| {
        thread::sleep(Duration::from_millis(20));
        example.has_exited()
    });
    assert!(exited, "the example still runs 10 s after its last request");
    let status = example.stop().expect("an exit status");
    assert!(status.success(), "the example exited with {status}");
}

/// One Responder request held `ECHO_SLEEP_MS` by the echo application, on a blocking
/// socket; `sent` is passed once it is written (or failed). The answer's `STDOUT` and app
/// status.
fn sleepy_request(
    addr: std::net::SocketAddr,
    n: usize,
    sent: &std::sync::Barrier,
) -> Result<(Vec<u8>, u32), String> {
    let request = crate::behaviour::fixture::whole_request(
        &[("ECHO_SLEEP_MS", "1500"), ("N", &n.to_string())],
        false,
        b"",
    );
    let send = || -> std::io::Result<TcpStream> {
        let mut s = TcpStream::connect_timeout(&addr, SETTLE)?;
        s.set_read_timeout(Some(SETTLE))?;
        s.write_all(&request)?;
        Ok(s)
    };
    let written = send();
    sent.wait();
    let mut s = written.map_err(|e| format!("send: {e}"))?;
    crate::behaviour::fixture::read_answer_and_status(&mut s).map_err(|e| format!("read: {e}"))
}
