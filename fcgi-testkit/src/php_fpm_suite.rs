//! Our FastCGI **client** against real php-fpm (Debian `php8.2-fpm`), on any runtime adapter:
//! every scenario over TCP and over a Unix socket.
//!
//! A scenario is a plain function `scenario::<H>(socket)` generic over a
//! [`behaviour::Harness`](crate::behaviour::Harness): it builds a fresh harness, starts its own
//! php-fpm ([`crate::php_fpm`]: `pm = static`, a few workers, `clear_env`,
//! `catch_workers_output`, test scripts in a temporary document root), talks to it with
//! [`fcgi_driver::client::Client`] on the harness's runtime and connector, and stops php-fpm
//! by process group when done. [`php_fpm_suite!`](macro@crate::php_fpm_suite) turns every scenario
//! into two `#[test]`s (TCP and Unix) for one harness type. A missing php-fpm fails the test
//! under `CI=true` and is otherwise skipped with a `SKIPPED:` line.
//!
//! No assertion depends on a clock: streaming is proven with marker files that the PHP
//! scripts wait for (a script that never sees its marker prints `MARKER-TIMEOUT`, which fails
//! the content check), and timeouts are asserted by the error they produce.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fcgi_driver::client::{
    Client, ClientError, ClientOptions, ClientRequest, Connector, RequestBody, ResponseEnd,
    TimeoutKind,
};
use fcgi_driver::runtime::Runtime;

use crate::AppAddr;
use crate::behaviour::Harness;
use crate::behaviour::util::{spawn, timeout};
use crate::php_fpm::{
    Options, PhpFpm, STATUS_PATH, Socket, parse_lines, parse_status, sha1_hex, split_headers,
};

/// Largest response read with `collect` (the streamed 10 MiB is read piece by piece).
const LIMIT: usize = 1 << 20;
/// `stream.php` chunk size and count: 160 × 64 KiB = 10 MiB.
const CHUNK: usize = 64 * 1024;
const CHUNKS: usize = 160;
/// A 200 response from a script that set `Content-Type: text/plain`, as PHP writes it.
const TEXT_HEADERS: &str = "Content-type: text/plain;charset=UTF-8\r\n\r\n";
/// PHP's default header block (`pid.php` sets none).
const HTML_HEADERS: &str = "Content-type: text/html; charset=UTF-8\r\n\r\n";
/// Longest a scenario may run.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(60);
/// Piece size of a streamed request body.
const STREAM_PIECE: usize = 64 * 1024;

/// Generates one `#[test]` per php-fpm scenario and transport (TCP, Unix socket) for a
/// [`Harness`] type.
///
/// ```text
/// fcgi_testkit::php_fpm_suite!(TokioHarness);
/// ```
#[macro_export]
macro_rules! php_fpm_suite {
    ($harness:ty) => {
        $crate::php_fpm_suite!(@tests $harness;
            server_variables: get_server_variables_tcp, get_server_variables_unix;
            post_10_mib: post_10_mib_body_tcp, post_10_mib_body_unix;
            streamed_response: streamed_10_mib_response_tcp, streamed_10_mib_response_unix;
            missing_script: missing_script_404_and_stderr_tcp, missing_script_404_and_stderr_unix;
            stderr_interleaved:
                error_log_is_interleaved_stderr_tcp, error_log_is_interleaved_stderr_unix;
            keep_alive_1000: keep_alive_1000_requests_tcp, keep_alive_1000_requests_unix;
            restart: restart_recovers_with_retry_once_tcp, restart_recovers_with_retry_once_unix;
            response_outlives_its_id:
                response_outlives_its_request_id_tcp, response_outlives_its_request_id_unix;
            multiplexing_probe: multiplexing_probe_says_one_tcp, multiplexing_probe_says_one_unix;
            drop_mid_stream: dropped_response_frees_worker_tcp, dropped_response_frees_worker_unix;
            no_keep_alive:
                keep_alive_off_connection_per_request_tcp,
                keep_alive_off_connection_per_request_unix;
            timeouts: read_and_total_timeouts_tcp, read_and_total_timeouts_unix;
        );
    };
    (@tests $harness:ty; $($scenario:ident: $tcp:ident, $unix:ident;)*) => {
        $(
            #[test]
            fn $tcp() {
                $crate::php_fpm_suite::$scenario::<$harness>($crate::php_fpm::Socket::Tcp);
            }
            #[test]
            fn $unix() {
                $crate::php_fpm_suite::$scenario::<$harness>($crate::php_fpm::Socket::Unix);
            }
        )*
    };
}

/// Defines the public entry point of a scenario: a fresh multi-threaded harness, the
/// scenario body run on it, bounded by [`SCENARIO_TIMEOUT`].
macro_rules! entry {
    ($(#[$doc:meta])* $name:ident => $body:ident) => {
        $(#[$doc])*
        pub fn $name<H: Harness>(socket: Socket) {
            let h = H::new();
            h.block_on(bounded(&h.runtime(), $body(&h, socket)));
        }
    };
}

/// The client type of a harness.
type FpmClient<H> = Client<<H as Harness>::Rt, <H as Harness>::Connector>;

fn start(socket: Socket, max_children: u32) -> Option<PhpFpm> {
    PhpFpm::start(Options::new(socket, max_children))
}

/// A client of `fpm` on the harness's runtime and connector.
fn fpm_client<H: Harness>(h: &H, fpm: &PhpFpm, opts: ClientOptions) -> FpmClient<H> {
    let connector = match fpm.addr() {
        AppAddr::Tcp(a) => h.tcp_connector(*a),
        AppAddr::Unix(p) => h.unix_connector(p),
    };
    Client::new(h.runtime(), connector, opts)
}

/// Client options for these tests: every wait bounded by 10 s.
fn options(max_connections: usize) -> ClientOptions {
    let mut o = ClientOptions::default();
    o.max_connections = max_connections;
    o.connect_timeout = Duration::from_secs(5);
    o.pool_timeout = Duration::from_secs(10);
    o.read_timeout = Duration::from_secs(10);
    o.write_timeout = Duration::from_secs(10);
    o
}

fn get(fpm: &PhpFpm, script: &str, query: &str) -> ClientRequest {
    ClientRequest::php_fpm("GET", &fpm.docroot(), script, query)
}

/// A streamed (not replayable) request body: `data` in pieces of [`STREAM_PIECE`] bytes.
fn stream_body(data: impl Into<Vec<u8>>) -> RequestBody {
    struct Pieces(Bytes);
    impl futures_core::Stream for Pieces {
        type Item = io::Result<Bytes>;
        fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            if self.0.is_empty() {
                return Poll::Ready(None);
            }
            let n = self.0.len().min(STREAM_PIECE);
            Poll::Ready(Some(Ok(self.0.split_to(n))))
        }
    }
    RequestBody::stream(Pieces(Bytes::from(data.into())))
}

/// Sends `req` and reads the whole response: (CGI header block, body, end).
async fn fetch<R: Runtime, C: Connector>(
    client: &Client<R, C>,
    req: ClientRequest,
) -> (String, String, ResponseEnd) {
    let resp = client
        .send(req)
        .await
        .unwrap_or_else(|e| panic!("send: {e:?}"));
    let (out, end) = resp
        .collect(LIMIT)
        .await
        .unwrap_or_else(|e| panic!("response: {e:?}"));
    let (headers, body) =
        split_headers(&out).unwrap_or_else(|| panic!("no CGI header block in {out:?}"));
    (
        String::from_utf8(headers.to_vec()).unwrap(),
        String::from_utf8_lossy(body).into_owned(),
        end,
    )
}

/// `pid.php`: the pid of the worker that served the request.
async fn worker_pid<R: Runtime, C: Connector>(client: &Client<R, C>, fpm: &PhpFpm) -> u32 {
    let (headers, body, end) = fetch(client, get(fpm, "/pid.php", "")).await;
    assert_eq!(headers, HTML_HEADERS);
    assert_eq!(end.app_status, 0);
    assert!(end.stderr.is_empty(), "{:?}", end.stderr);
    body.parse()
        .unwrap_or_else(|_| panic!("pid.php answered {body:?}"))
}

/// php-fpm's status page, fetched through `client`.
async fn fpm_status<R: Runtime, C: Connector>(
    client: &Client<R, C>,
    fpm: &PhpFpm,
) -> BTreeMap<String, String> {
    let (headers, body, _) = fetch(client, get(fpm, STATUS_PATH, "")).await;
    assert!(
        headers.ends_with("Content-type: text/plain;charset=UTF-8\r\n\r\n"),
        "{headers}"
    );
    let status = parse_status(&body);
    assert_eq!(
        status.get("pool").map(String::as_str),
        Some("test"),
        "{body}"
    );
    status
}

fn status_number(status: &BTreeMap<String, String>, key: &str) -> u64 {
    status
        .get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("status page without a number for {key:?}: {status:?}"))
}

/// Waits (at most 5 s, yielding to the runtime) until the client has `n` open connections.
async fn wait_connections<H: Harness>(h: &H, client: &FpmClient<H>, n: usize, what: &str) {
    let rt = h.runtime();
    for _ in 0..500 {
        if client.connections() == n {
            return;
        }
        rt.sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "{what}: expected {n} open connections, have {}",
        client.connections()
    );
}

/// The deterministic 10 MiB request body.
fn upload_body() -> Vec<u8> {
    (0..10 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect()
}

/// Checks `stream.php`'s output as it arrives: the exact header block, then body byte `k`
/// equal to `(k / CHUNK) % 256`.
#[derive(Default)]
struct StreamCheck {
    head: Vec<u8>,
    head_done: bool,
    body_len: usize,
    pieces: usize,
}

impl StreamCheck {
    fn feed(&mut self, piece: &[u8]) {
        self.pieces += 1;
        if self.head_done {
            self.body(piece);
            return;
        }
        self.head.extend_from_slice(piece);
        let Some((head, rest)) = split_headers(&self.head) else {
            assert!(self.head.len() < 4096, "no header block: {:?}", self.head);
            return;
        };
        // PHP rewrites a text/* content type (adding the charset, as `Content-type`) but leaves
        // this one as the script wrote it.
        assert_eq!(head, b"Content-Type: application/octet-stream\r\n\r\n");
        let rest = rest.to_vec();
        self.head_done = true;
        self.body(&rest);
    }

    fn body(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let index = self.body_len / CHUNK;
            assert!(
                index < CHUNKS,
                "more than {CHUNKS} chunks; tail: {:?}",
                String::from_utf8_lossy(&data[..data.len().min(64)])
            );
            let run = (CHUNK - self.body_len % CHUNK).min(data.len());
            let expected = (index % 256) as u8;
            if let Some(bad) = data[..run].iter().position(|&b| b != expected) {
                panic!(
                    "body byte {} is {:#04x}, expected {expected:#04x}; near: {:?}",
                    self.body_len + bad,
                    data[bad],
                    String::from_utf8_lossy(&data[bad..data.len().min(bad + 64)])
                );
            }
            self.body_len += run;
            data = &data[run..];
        }
    }
}

/// Fails a scenario that hangs (every wait inside is bounded too; this is the backstop).
async fn bounded<R: Runtime>(rt: &R, scenario: impl Future<Output = ()>) {
    if timeout(rt, SCENARIO_TIMEOUT, scenario).await.is_none() {
        panic!("scenario still running after {SCENARIO_TIMEOUT:?}");
    }
}

// ---------------------------------------------------------------------------------------
// GET: the params we send are the $_SERVER php-fpm builds.

async fn server_variables_in<H: Harness>(h: &H, socket: Socket) {
    let Some(fpm) = start(socket, 2) else { return };
    let client = fpm_client(h, &fpm, options(2));
    let query = "a=1&b=two%20words&empty=";
    // 20 params of 5000 bytes: more than one PARAMS record (65528 bytes) of pairs. php-fpm
    // parses each PARAMS record on its own, so a pair split across records would break.
    let big: Vec<(String, String)> = (0..20u8)
        .map(|i| {
            let letter = char::from(b'a' + i);
            (
                format!("HTTP_X_BIG_{i:02}"),
                letter.to_string().repeat(5000),
            )
        })
        .collect();
    let mut req = get(&fpm, "/server.php", query)
        .param("HTTP_X_TEST", "hello")
        .param("HTTP_USER_AGENT", "fcgi php-fpm interop")
        .param("HTTP_X_UTF8", "héllo wörld")
        .param("HTTP_X_MULTI_LINE", "one\ntwo")
        .param("REMOTE_ADDR", "127.0.0.1")
        .param("REMOTE_PORT", "4711");
    for (name, value) in &big {
        req.push_param(name, value);
    }
    let sent: Vec<(String, String)> = req
        .params()
        .iter()
        .map(|(n, v)| {
            (
                String::from_utf8(n.to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
            )
        })
        .collect();
    let (headers, body, end) = fetch(&client, req).await;
    assert_eq!(headers, TEXT_HEADERS);
    assert_eq!(end.app_status, 0);
    assert!(end.stderr.is_empty(), "{:?}", end.stderr);
    let vars = parse_lines(&body);
    let server = |name: &str| {
        vars.get(&("server".to_owned(), name.to_owned()))
            .map(String::as_str)
    };
    let root = fpm.docroot();
    assert_eq!(server("REQUEST_METHOD"), Some("GET"));
    assert_eq!(server("QUERY_STRING"), Some(query));
    assert_eq!(
        server("SCRIPT_FILENAME"),
        Some(format!("{root}/server.php").as_str())
    );
    assert_eq!(server("SCRIPT_NAME"), Some("/server.php"));
    assert_eq!(
        server("REQUEST_URI"),
        Some(format!("/server.php?{query}").as_str())
    );
    assert_eq!(server("DOCUMENT_ROOT"), Some(root.as_str()));
    assert_eq!(server("HTTP_X_TEST"), Some("hello"));
    assert_eq!(server("HTTP_X_UTF8"), Some("héllo wörld"));
    // server.php escapes control characters (addcslashes): the newline arrived intact.
    assert_eq!(server("HTTP_X_MULTI_LINE"), Some("one\\ntwo"));
    // Every param arrived byte for byte (those without control characters compared as-is).
    for (name, value) in sent.iter().filter(|(_, v)| !v.contains('\n')) {
        assert_eq!(
            server(name),
            Some(value.as_str()),
            "param {name} did not arrive as sent"
        );
    }
    // PHP parsed the query string we passed.
    let get_var = |name: &str| vars.get(&("get".to_owned(), name.to_owned()));
    assert_eq!(get_var("a").map(String::as_str), Some("1"));
    assert_eq!(get_var("b").map(String::as_str), Some("two words"));
    assert_eq!(get_var("empty").map(String::as_str), Some(""));
    assert!(vars.contains_key(&("pid".to_owned(), String::new())));
}

// ---------------------------------------------------------------------------------------
// POST: a 10 MiB body, whole (replayable) and streamed, arrives intact.

async fn post_10_mib_in<H: Harness>(h: &H, socket: Socket) {
    let Some(fpm) = start(socket, 2) else { return };
    let client = fpm_client(h, &fpm, options(2));
    let body = upload_body();
    let expected = format!(
        "method=POST\ncontent_type=application/octet-stream\n\
         content_length={len}\nlen={len}\nsha1={sha}\n",
        len = body.len(),
        sha = sha1_hex(&body),
    );
    let post = || {
        ClientRequest::php_fpm("POST", &fpm.docroot(), "/post.php", "")
            .param("CONTENT_LENGTH", body.len().to_string())
            .param("CONTENT_TYPE", "application/octet-stream")
    };
    let whole = post().stdin(Bytes::from(body.clone()));
    let (headers, text, end) = fetch(&client, whole).await;
    assert_eq!(headers, TEXT_HEADERS);
    assert_eq!(text, expected, "whole body");
    assert_eq!(end.app_status, 0);
    assert!(end.stderr.is_empty(), "{:?}", end.stderr);

    let streamed = post().stdin(stream_body(body.clone()));
    let (_, text, end) = fetch(&client, streamed).await;
    assert_eq!(text, expected, "streamed body");
    assert!(end.stderr.is_empty(), "{:?}", end.stderr);

    // No CONTENT_LENGTH given: the client declares the known length, or php-fpm would
    // read nothing.
    let undeclared = ClientRequest::php_fpm("POST", &fpm.docroot(), "/post.php", "")
        .param("CONTENT_TYPE", "application/octet-stream")
        .stdin(Bytes::from(body));
    let (_, text, _) = fetch(&client, undeclared).await;
    assert_eq!(text, expected, "a whole body without CONTENT_LENGTH");
    assert_eq!(
        client.connections(),
        1,
        "every request on one kept connection"
    );
}

// ---------------------------------------------------------------------------------------
// A 10 MiB response is streamed: the first half is delivered while the script still waits.

async fn streamed_response_in<H: Harness>(h: &H, socket: Socket) {
    let Some(fpm) = start(socket, 2) else { return };
    let client = fpm_client(h, &fpm, options(2));
    let half = CHUNKS / 2;
    let query = format!("chunks={CHUNKS}&size={CHUNK}&marker=half&wait_at={half}");
    let mut resp = client.send(get(&fpm, "/stream.php", &query)).await.unwrap();
    let mut check = StreamCheck::default();
    // The script sends the first half, then waits for the marker before the second: all of
    // the first half must reach us while the script is still running.
    while check.body_len < half * CHUNK {
        match resp.chunk().await {
            Some(Ok(piece)) => check.feed(&piece),
            other => panic!(
                "after {} body bytes, before the marker: {other:?}",
                check.body_len
            ),
        }
    }
    assert_eq!(
        check.body_len,
        half * CHUNK,
        "nothing beyond the first half"
    );
    let pieces_before = check.pieces;
    fpm.set_marker("half");
    while let Some(piece) = resp.chunk().await {
        check.feed(&piece.unwrap_or_else(|e| panic!("after {} bytes: {e:?}", check.body_len)));
    }
    assert_eq!(check.body_len, CHUNKS * CHUNK, "the whole 10 MiB");
    assert!(
        check.pieces > pieces_before,
        "the second half came after the marker"
    );
    let end = resp.finish().await.unwrap();
    assert_eq!(end.app_status, 0);
    assert!(end.stderr.is_empty(), "{:?}", end.stderr);
}

// ---------------------------------------------------------------------------------------
// A missing script: php-fpm's 404 on STDOUT, "Primary script unknown" on STDERR.

async fn missing_script_in<H: Harness>(h: &H, socket: Socket) {
    let Some(fpm) = start(socket, 2) else { return };
    let client = fpm_client(h, &fpm, options(2));
    let (out, end) = client
        .send(get(&fpm, "/nope.php", "x=1"))
        .await
        .unwrap()
        .collect(LIMIT)
        .await
        .unwrap();
    assert_eq!(
        &out[..],
        b"Status: 404 Not Found\r\nContent-type: text/html; charset=UTF-8\r\n\r\nFile not found.\n"
    );
    assert_eq!(&end.stderr[..], b"Primary script unknown");
    assert_eq!(end.stderr_dropped, 0);
    assert_eq!(end.app_status, 0, "the 404 is only in the CGI headers");
    // The connection is still good for the next request.
    worker_pid(&client, &fpm).await;
    assert_eq!(client.connections(), 1);
}

// ---------------------------------------------------------------------------------------
// error_log() output arrives as STDERR while the response runs, interleaved with STDOUT.

async fn stderr_interleaved_in<H: Harness>(h: &H, socket: Socket) {
    let Some(fpm) = start(socket, 2) else { return };
    let client = fpm_client(h, &fpm, options(2));
    let mut resp = client
        .send(get(&fpm, "/stderr.php", "marker=go"))
        .await
        .unwrap();
    let mut stdout = Vec::new();
    let body_is = |stdout: &[u8], want: &str| {
        split_headers(stdout).is_some_and(|(h, b)| {
            assert_eq!(h, TEXT_HEADERS.as_bytes());
            assert!(
                want.as_bytes().starts_with(b),
                "{:?} is not a prefix of {want:?}",
                String::from_utf8_lossy(b)
            );
            b == want.as_bytes()
        })
    };
    while !body_is(&stdout, "out 1\n") {
        stdout.extend_from_slice(&resp.chunk().await.unwrap().unwrap());
    }
    // The script now waits for the marker: its first error_log() line is already here.
    assert_eq!(
        resp.stderr_chunk().await.as_deref(),
        Some(&b"PHP message: err 1"[..])
    );
    fpm.set_marker("go");
    while !body_is(&stdout, "out 1\nout 2\nout 3\n") {
        stdout.extend_from_slice(&resp.chunk().await.unwrap().unwrap());
    }
    // php-fpm separates the messages of one request with "; ".
    assert_eq!(
        resp.stderr_chunk().await.as_deref(),
        Some(&b"; PHP message: err 2"[..])
    );
    assert!(resp.chunk().await.is_none(), "the response ends there");
    assert_eq!(resp.stderr_chunk().await, None, "no more stderr");
    let end = resp.finish().await.unwrap();
    assert_eq!(end.app_status, 0);
    assert!(
        end.stderr.is_empty(),
        "stderr already taken: {:?}",
        end.stderr
    );

    // Not taken piece by piece, stderr is collected into ResponseEnd::stderr, as sent.
    fpm.set_marker("pre");
    let (_, body, end) = fetch(&client, get(&fpm, "/stderr.php", "marker=pre")).await;
    assert_eq!(body, "out 1\nout 2\nout 3\n");
    assert_eq!(&end.stderr[..], b"PHP message: err 1; PHP message: err 2");
    assert_eq!(end.stderr_dropped, 0);
}

// ---------------------------------------------------------------------------------------
// Keep-alive: 1,000 requests over at most 2 connections to a pool of 4 workers.

async fn keep_alive_1000_in<H: Harness>(h: &H, socket: Socket) {
    let Some(fpm) = start(socket, 4) else { return };
    let fpm = std::sync::Arc::new(fpm);
    let client = fpm_client(h, &fpm, options(2));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let client = client.clone();
        let fpm = std::sync::Arc::clone(&fpm);
        tasks.push(spawn(&h.runtime(), async move {
            let mut pids = BTreeSet::new();
            for _ in 0..125 {
                pids.insert(worker_pid(&client, &fpm).await);
            }
            pids
        }));
    }
    let mut pids = BTreeSet::new();
    for t in tasks {
        pids.extend(t.join().await);
    }
    let elapsed = started.elapsed();
    eprintln!(
        "php-fpm {socket:?}: 1000 keep-alive requests over {} connections in {elapsed:?}",
        client.connections()
    );
    assert!(client.connections() <= 2, "{}", client.connections());
    // php-fpm pins a worker to each connection: at most as many workers as connections.
    assert!(
        (1..=2).contains(&pids.len()),
        "workers seen: {pids:?} (pool of 4, client limited to 2 connections)"
    );
    // What php-fpm ran: each request exactly once, by at most 2 workers.
    let hits = fpm.hits("pid");
    assert_eq!(hits.len(), 1000);
    let workers: BTreeSet<u32> = hits.into_iter().collect();
    assert_eq!(workers, pids, "the workers that ran the script answered");
}

// ---------------------------------------------------------------------------------------
// php-fpm restarted under the client: the pool recovers, and a replayable request sent on a
// dead pooled connection is retried once on a fresh one, invisibly.
//
// The harness is single-threaded on purpose (see `restart`): php-fpm is stopped and started
// from the scenario without yielding, so no connection task can notice the old connections
// closing before the next request is queued on one of them.

async fn restart_in<H: Harness>(h: &H, socket: Socket) {
    let Some(mut fpm) = start(socket, 4) else {
        return;
    };
    let client = fpm_client(h, &fpm, options(2));
    // Two requests in flight at once: two pooled connections.
    let a = client.send(get(&fpm, "/pid.php", "")).await.unwrap();
    let b = client.send(get(&fpm, "/pid.php", "")).await.unwrap();
    a.collect(LIMIT).await.unwrap();
    b.collect(LIMIT).await.unwrap();
    assert_eq!(client.connections(), 2);

    // 1. GET (empty body) right after a restart.
    fpm.restart();
    assert_eq!(
        client.connections(),
        2,
        "the pool has not seen the closes yet: the request goes on a dead connection"
    );
    let pid = worker_pid(&client, &fpm).await;
    let hits = fpm.hits("pid");
    assert_eq!(hits.len(), 3, "the GET ran exactly once: {hits:?}");
    assert_eq!(hits[2], pid);

    // 2. POST with a whole (replayable) body right after a restart.
    fpm.restart();
    assert!(client.connections() >= 1, "a pooled connection to reuse");
    let body: Vec<u8> = upload_body()[..1 << 20].to_vec();
    let post = ClientRequest::php_fpm("POST", &fpm.docroot(), "/post.php", "")
        .param("CONTENT_LENGTH", body.len().to_string())
        .param("CONTENT_TYPE", "application/octet-stream")
        .stdin(Bytes::from(body.clone()));
    let (_, text, _) = fetch(&client, post).await;
    assert_eq!(
        text,
        format!(
            "method=POST\ncontent_type=application/octet-stream\n\
             content_length=1048576\nlen=1048576\nsha1={}\n",
            sha1_hex(&body)
        )
    );

    // 3. A streamed body cannot be replayed: the caller sees the dead connection.
    fpm.restart();
    assert!(client.connections() >= 1, "a pooled connection to reuse");
    let streamed = ClientRequest::php_fpm("POST", &fpm.docroot(), "/post.php", "")
        .param("CONTENT_LENGTH", "5")
        .stdin(stream_body(b"hello".to_vec()));
    let err = client
        .send(streamed)
        .await
        .unwrap()
        .collect(LIMIT)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Truncated | ClientError::Io(_)),
        "{err:?}"
    );

    // And the pool recovers for everything after.
    for _ in 0..10 {
        worker_pid(&client, &fpm).await;
    }
    assert_eq!(fpm.starts(), 4);
    assert_eq!(fpm.hits("pid").len(), 13);
    assert_eq!(
        fpm.hits("post").len(),
        1,
        "the whole-body POST ran once; the streamed one never ran"
    );
}

// ---------------------------------------------------------------------------------------
// A response still held by its caller after its request ended: the next request reuses the
// connection (and the request id), and each response keeps its own output.

async fn response_outlives_its_id_in<H: Harness>(h: &H, socket: Socket) {
    let Some(fpm) = start(socket, 1) else { return };
    let client = fpm_client(h, &fpm, options(1));
    fpm.set_marker("pre");
    let mut first = client
        .send(get(&fpm, "/stderr.php", "marker=pre"))
        .await
        .unwrap();
    let mut stdout = Vec::new();
    while let Some(piece) = first.chunk().await {
        stdout.extend_from_slice(&piece.unwrap());
    }
    // `first` ended (END_REQUEST freed its id) but is not finished: its stderr is unread.
    let second = client.send(get(&fpm, "/nope.php", "")).await.unwrap();
    assert_eq!(first.id(), second.id(), "one connection, one id at a time");
    let (out, end) = second.collect(LIMIT).await.unwrap();
    assert!(out.starts_with(b"Status: 404 Not Found\r\n"), "{out:?}");
    assert_eq!(&end.stderr[..], b"Primary script unknown");
    let end = first.finish().await.unwrap();
    assert_eq!(&end.stderr[..], b"PHP message: err 1; PHP message: err 2");
    assert_eq!(
        split_headers(&stdout).map(|(_, body)| body),
        Some(&b"out 1\nout 2\nout 3\n"[..])
    );
    assert_eq!(client.connections(), 1);
}

// ---------------------------------------------------------------------------------------
// The multiplexing probe: php-fpm says FCGI_MPXS_CONNS=0.

async fn multiplexing_probe_in<H: Harness>(h: &H, socket: Socket) {
    let Some(fpm) = start(socket, 4) else { return };
    let client = fpm_client(h, &fpm, options(4));
    assert_eq!(client.multiplexing(), None, "not probed yet");
    // Four requests held in flight (wait.php waits for the marker): without multiplexing,
    // four connections, so four workers (php-fpm pins one worker to each connection).
    let mut responses = Vec::new();
    for _ in 0..4 {
        responses.push(
            client
                .send(get(&fpm, "/wait.php", "marker=go"))
                .await
                .unwrap(),
        );
    }
    assert_eq!(client.multiplexing(), Some(1), "php-fpm: FCGI_MPXS_CONNS=0");
    assert_eq!(client.connections(), 4);
    fpm.set_marker("go");
    let mut pids = BTreeSet::new();
    for r in responses {
        let (out, end) = r.collect(LIMIT).await.unwrap();
        let (_, body) = split_headers(&out).unwrap();
        let pid: u32 = std::str::from_utf8(body).unwrap().parse().unwrap();
        pids.insert(pid);
        assert!(end.stderr.is_empty(), "{:?}", end.stderr);
    }
    assert_eq!(pids.len(), 4, "{pids:?}");
}

// ---------------------------------------------------------------------------------------
// Dropping a response mid-stream closes its connection and frees the worker.

async fn drop_mid_stream_in<H: Harness>(h: &H, socket: Socket) {
    // One worker: if it were still stuck on the dropped response, nothing would be served.
    let Some(fpm) = start(socket, 1) else { return };
    let client = fpm_client(h, &fpm, options(1));
    let worker = worker_pid(&client, &fpm).await;
    for round in 0..3 {
        let query = format!("chunks={CHUNKS}&size={CHUNK}");
        let mut resp = client.send(get(&fpm, "/stream.php", &query)).await.unwrap();
        let mut check = StreamCheck::default();
        while check.body_len < 1 << 20 {
            let piece = resp.chunk().await.unwrap().unwrap();
            check.feed(&piece);
        }
        drop(resp);
        wait_connections(h, &client, 0, "the dropped response's connection closes").await;
        assert_eq!(
            worker_pid(&client, &fpm).await,
            worker,
            "round {round}: the only worker serves again"
        );
    }
}

// ---------------------------------------------------------------------------------------
// keep_alive = false: one connection per request; php-fpm closes after END_REQUEST.

async fn no_keep_alive_in<H: Harness>(h: &H, socket: Socket) {
    let Some(fpm) = start(socket, 4) else { return };
    let fpm = std::sync::Arc::new(fpm);
    let mut opts = options(4);
    opts.keep_alive = false;
    let client = fpm_client(h, &fpm, opts);
    for _ in 0..20 {
        worker_pid(&client, &fpm).await;
        wait_connections(h, &client, 0, "closed after the request").await;
    }
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let client = client.clone();
        let fpm = std::sync::Arc::clone(&fpm);
        tasks.push(spawn(&h.runtime(), async move {
            worker_pid(&client, &fpm).await
        }));
    }
    for t in tasks {
        t.join().await;
    }
    wait_connections(h, &client, 0, "all closed").await;
    assert_eq!(fpm.hits("pid").len(), 36);
    // php-fpm's own count: our 36 requests, this status request, and the multiplexing
    // probe's GET_VALUES, which php-fpm counts as a request too.
    let status = fpm_status(&client, &fpm).await;
    assert_eq!(status_number(&status, "accepted conn"), 38, "{status:?}");
}

// ---------------------------------------------------------------------------------------
// Timeouts: a silent script trips the read timeout; a slow but talkative one the total
// timeout. Either way the pool goes on serving.

async fn timeouts_in<H: Harness>(h: &H, socket: Socket) {
    let Some(fpm) = start(socket, 3) else { return };

    let mut opts = options(2);
    opts.read_timeout = Duration::from_millis(500);
    let client = fpm_client(h, &fpm, opts);
    let err = client
        .send(get(&fpm, "/sleep.php", "ms=3000"))
        .await
        .unwrap()
        .collect(LIMIT)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Timeout(TimeoutKind::Read)),
        "{err:?}"
    );
    worker_pid(&client, &fpm).await;

    let mut opts = options(2);
    opts.total_timeout = Some(Duration::from_millis(800));
    let client = fpm_client(h, &fpm, opts);
    let mut resp = client
        .send(get(&fpm, "/sleep.php", "ms=3000&tick=50"))
        .await
        .unwrap();
    // The script prints a dot every 50 ms: the 10 s read timeout never trips, the 800 ms
    // total timeout does.
    let mut seen = Vec::new();
    let err = loop {
        match resp.chunk().await {
            Some(Ok(piece)) => seen.extend_from_slice(&piece),
            Some(Err(e)) => break e,
            None => panic!("the 3 s script finished within the total timeout: {seen:?}"),
        }
    };
    assert!(
        matches!(err, ClientError::Timeout(TimeoutKind::Total)),
        "{err:?}"
    );
    if let Some((_, body)) = split_headers(&seen) {
        assert!(body.iter().all(|&b| b == b'.'), "{seen:?}");
    }
    drop(resp);
    worker_pid(&client, &fpm).await;
}

// ---------------------------------------------------------------------------------------
// Entry points.

entry!(
    /// GET: the params we send (many, some large, UTF-8, a newline) are the `$_SERVER`
    /// php-fpm builds, and PHP parses our query string.
    server_variables => server_variables_in
);
entry!(
    /// POST: a 10 MiB body, whole (replayable) and streamed, arrives intact, both on one
    /// kept connection.
    post_10_mib => post_10_mib_in
);
entry!(
    /// A 10 MiB response is streamed: the first half arrives while the script still waits
    /// for its marker.
    streamed_response => streamed_response_in
);
entry!(
    /// A missing script: php-fpm's exact 404 on STDOUT, "Primary script unknown" on STDERR,
    /// app status 0, and the connection stays usable.
    missing_script => missing_script_in
);
entry!(
    /// `error_log()` output arrives as STDERR while the response runs, interleaved with
    /// STDOUT; uncollected, it ends up in `ResponseEnd::stderr`.
    stderr_interleaved => stderr_interleaved_in
);
entry!(
    /// Keep-alive: 1,000 requests from 8 tasks over at most 2 connections, served by at most
    /// 2 of the pool's 4 workers, each request run exactly once.
    keep_alive_1000 => keep_alive_1000_in
);
entry!(
    /// A response still held after its request ended: the next request reuses the
    /// connection and the request id, and each response keeps its own output.
    response_outlives_its_id => response_outlives_its_id_in
);
entry!(
    /// The multiplexing probe: php-fpm says `FCGI_MPXS_CONNS=0`, so four requests in flight
    /// take four connections and four workers.
    multiplexing_probe => multiplexing_probe_in
);
entry!(
    /// Dropping a response mid-stream closes its connection and frees the (only) worker.
    drop_mid_stream => drop_mid_stream_in
);
entry!(
    /// `keep_alive = false`: one connection per request, closed after it, as php-fpm's own
    /// accepted-connection count confirms.
    no_keep_alive => no_keep_alive_in
);
entry!(
    /// A silent script trips the read timeout; a slow but talkative one the total timeout;
    /// the pool goes on serving either way.
    timeouts => timeouts_in
);

/// php-fpm restarted under the client: the pool recovers, a replayable request (empty or
/// whole body) sent on a dead pooled connection is retried once on a fresh one, invisibly,
/// and a streamed one fails instead.
///
/// Runs on [`Harness::new_single_threaded`]: php-fpm is stopped and started from the
/// scenario without yielding, and with no other executor thread no connection task can
/// notice the old connections closing before the next request is queued on one of them —
/// which the scenario asserts, so the retry path is really taken.
pub fn restart<H: Harness>(socket: Socket) {
    let h = H::new_single_threaded();
    h.block_on(bounded(&h.runtime(), restart_in(&h, socket)));
}
