//! Parity with nginx: real nginx and our [`Gateway`] stand in front of the same php-fpm, and
//! for every request of [`cases`] the PHP script `vars.php` must see the same `$_SERVER`,
//! `$_GET`, `$_POST`, `$_COOKIE` and request body behind both.
//!
//! - nginx runs with the distribution's stock `/etc/nginx/fastcgi_params` (included as is) plus
//!   `fastcgi_split_path_info ^(.+\.php)(/.*)$`, `SCRIPT_FILENAME`, `PATH_INFO`,
//!   `PATH_TRANSLATED` and `fastcgi_index` in a `location ~ [^/]\.php(/|$)` block, `index
//!   index.php` and `server_name parity.test`.
//! - Ours is a hyper HTTP/1 server serving [`Gateway::errors_as_responses`] with
//!   [`ScriptResolution::split_path`], `SERVER_NAME` `parity.test`, and a [`ConnInfo`] per
//!   connection.
//! - Each request is sent byte for byte the same to both (raw HTTP over TCP: HTTP/1.0, odd
//!   headers and chunked bodies exactly as written).
//!
//! The comparison is strict: every variable must be equal on both sides, except those listed
//! in [`TABLE`] (per-connection values, and the documented, deliberate differences), and
//! even those are checked against the exact value each side must produce. A difference not
//! in the table fails the test.
//!
//! [`refusals_match_nginx`] compares the status codes of requests that must not reach PHP
//! (bad paths, and the `Host` checks RFC 9112 §3.2 requires).
//!
//! [`try_files_layout_matches_nginx`] puts our try-files mode beside nginx's
//! `try_files $uri $uri/ /index.php$is_args$args` layout, and
//! [`uploads_hole_runs_behind_stock_nginx_not_behind_us`] shows php-fpm's "uploads hole"
//! open behind stock nginx and closed behind us (php-fpm's guard loosened in both).
//!
//! nginx or php-fpm missing: `SKIPPED:` locally, a failure under `CI=true`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use fcgi_http::gateway::{Gateway, GatewayConfig};
use fcgi_http::request::{CgiConfig, ConnInfo, ScriptResolution};
use fcgi_testkit::app::AppAddr;
use fcgi_testkit::peers::{Ready, RunningPeer, launch, peer_command, peer_dir};
use fcgi_testkit::php_fpm::{Options, PhpFpm, Socket};
use fcgi_testkit::process::run_bounded;
use fcgi_testkit::tools::{NGINX, is_root, missing, require};
use fcgi_tokio::Backend;
use fcgi_tokio::client::ClientOptions;
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value};

/// The distribution's stock parameter file, included by the nginx configuration.
const STOCK_PARAMS: &str = "/etc/nginx/fastcgi_params";

/// `server_name` of nginx and `SERVER_NAME` of ours.
const SERVER_NAME: &str = "parity.test";

/// php-fpm workers, shared by nginx and us.
const WORKERS: u32 = 3;

/// Socket timeouts of the raw client (a hang fails the test instead of blocking it).
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The script under test (also installed as `/index.php` and `/dir/index.php`): everything
/// PHP derived from the request, as JSON. A `HEAD` response has no body, so for `HEAD` the
/// JSON is also written to the file `{dump}`.
const VARS_PHP: &str = r#"<?php
$out = json_encode(
    [
        'server' => $_SERVER,
        'body' => file_get_contents('php://input'),
        'get' => $_GET,
        'post' => $_POST,
        'cookie' => $_COOKIE,
    ],
    JSON_INVALID_UTF8_SUBSTITUTE | JSON_UNESCAPED_SLASHES | JSON_THROW_ON_ERROR
);
if ($_SERVER['REQUEST_METHOD'] === 'HEAD') {
    file_put_contents('{dump}', $out);
}
header('Content-Type: application/json');
echo $out;
"#;

// ---------------------------------------------------------------------------------------------
// The table of exclusions and deliberate differences.
// ---------------------------------------------------------------------------------------------

/// Why an entry of [`TABLE`] is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The value belongs to one connection or one moment: it cannot be equal, but each
    /// side's value is still checked.
    PerConnection,
    /// We differ from nginx on purpose.
    Deliberate,
    /// The distribution's stock `fastcgi_params` (Debian's) differs from nginx's own
    /// `conf/fastcgi_params`; we follow nginx's own file. Applies only when the stock file has
    /// the line.
    DistroParams,
    /// A difference of the HTTP parsers (nginx's and hyper's), not of the mapping.
    HttpParser,
}

/// One exclusion or deliberate difference.
struct Entry {
    /// Short name, referenced by [`REFUSALS`].
    id: &'static str,
    kind: Kind,
    /// What differs.
    what: &'static str,
    /// nginx's value.
    nginx: &'static str,
    /// Our value.
    ours: &'static str,
    /// Why.
    reason: &'static str,
    /// The exact value each side must have, for one request (checked, then left out of the
    /// comparison). Status-only entries expect nothing here.
    expect: fn(&Ctx<'_>) -> Vec<Expect>,
}

/// Every variable that may differ between nginx and us, and why. Anything else must be equal.
const TABLE: &[Entry] = &[
    Entry {
        id: "request-time",
        kind: Kind::PerConnection,
        what: "REQUEST_TIME, REQUEST_TIME_FLOAT",
        nginx: "PHP's clock",
        ours: "PHP's clock",
        reason: "set by PHP when the request starts; the two requests are sent one after the \
                 other (both must be present and numeric)",
        expect: expect_request_time,
    },
    Entry {
        id: "remote-port",
        kind: Kind::PerConnection,
        what: "REMOTE_PORT",
        nginx: "the client port of the connection to nginx",
        ours: "the client port of the connection to us",
        reason: "each request comes on its own client connection (each side must give its own \
                 connection's port; REMOTE_ADDR is compared)",
        expect: expect_remote_port,
    },
    Entry {
        id: "server-port",
        kind: Kind::PerConnection,
        what: "SERVER_PORT",
        nginx: "nginx's listening port",
        ours: "our listening port",
        reason: "both listen on 127.0.0.1, on two ports (each side must give its own port; \
                 SERVER_ADDR and SERVER_NAME are compared)",
        expect: expect_server_port,
    },
    Entry {
        id: "server-software",
        kind: Kind::PerConnection,
        what: "SERVER_SOFTWARE",
        nginx: "nginx/<version>",
        ours: "fcgi-http/<version> (CgiConfig::server_software)",
        reason: "names the web server, which is not the same program (each side must give \
                 its own name)",
        expect: expect_server_software,
    },
    Entry {
        id: "hop-by-hop",
        kind: Kind::Deliberate,
        what: "HTTP_CONNECTION, HTTP_KEEP_ALIVE, HTTP_PROXY_CONNECTION, HTTP_TE, HTTP_TRAILER, \
               HTTP_TRANSFER_ENCODING, HTTP_UPGRADE, and HTTP_* of headers named in Connection",
        nginx: "passed like any header",
        ours: "absent",
        reason: "they describe the client's connection to the web server, which the script does \
                 not share (RFC 9110 §7.6.1); a chunked body reaches PHP with its length in \
                 CONTENT_LENGTH on both sides",
        expect: expect_hop_by_hop,
    },
    Entry {
        id: "path-translated",
        kind: Kind::Deliberate,
        what: "PATH_TRANSLATED when PATH_INFO is empty",
        nginx: "DOCUMENT_ROOT ($document_root$fastcgi_path_info with an empty path info)",
        ours: "absent",
        reason: "RFC 3875 §4.1.6: with no PATH_INFO, PATH_TRANSLATED is NULL or unset; the \
                 document root is not a translation of anything",
        expect: expect_path_translated,
    },
    Entry {
        id: "repeated-headers",
        kind: Kind::Deliberate,
        what: "HTTP_* of a repeated header, HTTP_COOKIE and $_COOKIE (nginx < 1.23 only)",
        nginx: "one param per header line; PHP keeps the last",
        ours: "values joined with \", \" (Cookie with \"; \")",
        reason: "what nginx does since 1.23: every value reaches the script, and cookies sent \
                 in several Cookie lines (as HTTP/2 clients do) all reach $_COOKIE; with \
                 nginx >= 1.23 this entry expects parity",
        expect: expect_repeated_headers,
    },
    Entry {
        id: "directory-without-slash",
        kind: Kind::Deliberate,
        what: "status of a directory path without a trailing slash (/dir)",
        nginx: "301 to /dir/ (static module, after looking at the filesystem)",
        ours: "404 (no script in the path)",
        reason: "the gateway never looks at the filesystem (fcgi_http::request); serve static \
                 files and their redirects in front of it",
        expect: expect_nothing,
    },
    Entry {
        id: "leading-tab",
        kind: Kind::HttpParser,
        what: "HTTP_* of a header value starting with a tab",
        nginx: "the tab is kept",
        ours: "the tab is stripped",
        reason: "hyper strips all optional whitespace (SP and HTAB) around a field value, as \
                 RFC 9112 §5 defines it; nginx strips only spaces",
        expect: expect_leading_tab,
    },
    Entry {
        id: "distro-http-host",
        kind: Kind::DistroParams,
        what: "HTTP_HOST (when the stock file has `fastcgi_param HTTP_HOST $host`)",
        nginx: "$host: lower case, no port, no trailing dot; the request line's host for an \
                absolute-form target; server_name when there is no Host",
        ours: "the Host header as received (absent when there is none)",
        reason: "Debian's file replaces the Host header by $host as a security workaround; \
                 nginx's own fastcgi_params passes the Host header, as we do",
        expect: expect_distro_http_host,
    },
    Entry {
        id: "distro-remote-user",
        kind: Kind::DistroParams,
        what: "REMOTE_USER (when the stock file has `fastcgi_param REMOTE_USER $remote_user`)",
        nginx: "the user name of any `Authorization: Basic` header, empty otherwise",
        ours: "absent",
        reason: "the gateway authenticates nobody, and RFC 3875 §4.1.11 sets REMOTE_USER only \
                 for an authenticated user (PHP still fills PHP_AUTH_USER from \
                 HTTP_AUTHORIZATION, equal on both sides); nginx's own fastcgi_params has no \
                 REMOTE_USER",
        expect: expect_distro_remote_user,
    },
];

/// What one side must show for one variable.
#[derive(Debug, Clone)]
enum Want {
    Absent,
    Is(Value),
    Like(&'static str, fn(&Value) -> bool),
}

impl Want {
    fn text(s: impl Into<String>) -> Self {
        Self::Is(Value::String(s.into()))
    }

    fn accepts(&self, got: Option<&Value>) -> bool {
        match (self, got) {
            (Self::Absent, None) => true,
            (Self::Is(want), Some(got)) => want == got,
            (Self::Like(_, ok), Some(got)) => ok(got),
            _ => false,
        }
    }
}

/// The values of one entry of a section (`server` or `cookie`) on both sides.
#[derive(Debug, Clone)]
struct Expect {
    section: &'static str,
    name: String,
    nginx: Want,
    ours: Want,
}

impl Expect {
    fn server(name: impl Into<String>, nginx: Want, ours: Want) -> Self {
        Self {
            section: "server",
            name: name.into(),
            nginx,
            ours,
        }
    }
}

/// What a table entry gets to compute its expectations.
struct Ctx<'a> {
    case: &'a Case,
    env: &'a Env,
    nginx: &'a Seen,
    ours: &'a Seen,
}

fn expect_nothing(_: &Ctx<'_>) -> Vec<Expect> {
    Vec::new()
}

fn expect_request_time(_: &Ctx<'_>) -> Vec<Expect> {
    let int = || Want::Like("an integer", |v| v.is_u64());
    let num = || Want::Like("a number", Value::is_number);
    vec![
        Expect::server("REQUEST_TIME", int(), int()),
        Expect::server("REQUEST_TIME_FLOAT", num(), num()),
    ]
}

fn expect_remote_port(c: &Ctx<'_>) -> Vec<Expect> {
    vec![Expect::server(
        "REMOTE_PORT",
        Want::text(c.nginx.client_port.to_string()),
        Want::text(c.ours.client_port.to_string()),
    )]
}

fn expect_server_port(c: &Ctx<'_>) -> Vec<Expect> {
    vec![Expect::server(
        "SERVER_PORT",
        Want::text(c.env.nginx_addr.port().to_string()),
        Want::text(c.env.our_addr.port().to_string()),
    )]
}

fn expect_server_software(c: &Ctx<'_>) -> Vec<Expect> {
    vec![Expect::server(
        "SERVER_SOFTWARE",
        Want::text(format!("nginx/{}", c.env.nginx_version_text)),
        Want::text(c.env.our_software.clone()),
    )]
}

/// Hop-by-hop headers we drop (`request.rs`'s list without `proxy`).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn expect_hop_by_hop(c: &Ctx<'_>) -> Vec<Expect> {
    let listed: Vec<String> = c
        .case
        .headers_named("connection")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    let mut out = Vec::new();
    for name in c.case.distinct_valid_names() {
        if HOP_BY_HOP.contains(&name.as_str()) || listed.contains(&name) {
            out.push(Expect::server(
                http_var(&name),
                Want::text(c.case.nginx_header_value(&name, c.env)),
                Want::Absent,
            ));
        }
    }
    out
}

fn expect_path_translated(c: &Ctx<'_>) -> Vec<Expect> {
    let path_info = c.ours.server("PATH_INFO");
    if path_info != Some(&Value::String(String::new())) {
        return Vec::new();
    }
    vec![Expect::server(
        "PATH_TRANSLATED",
        Want::text(c.env.docroot.clone()),
        Want::Absent,
    )]
}

fn expect_repeated_headers(c: &Ctx<'_>) -> Vec<Expect> {
    if c.env.nginx_joins_headers() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for name in c.case.distinct_valid_names() {
        let values = c.case.headers_named(&name);
        let dropped = HOP_BY_HOP.contains(&name.as_str()) || name == "proxy" || name == "host";
        if values.len() < 2 || dropped {
            continue;
        }
        let ours: Vec<String> = values.iter().map(|v| our_value(v)).collect();
        let sep = if name == "cookie" { "; " } else { ", " };
        out.push(Expect::server(
            http_var(&name),
            Want::text(c.case.nginx_header_value(&name, c.env)),
            Want::text(ours.join(sep)),
        ));
        if name == "cookie" {
            let all = parse_cookies(&ours.join(sep));
            let last = parse_cookies(&nginx_value(values.last().unwrap()));
            for (cookie, value) in &all {
                if last.get(cookie) != Some(value) {
                    out.push(Expect {
                        section: "cookie",
                        name: cookie.clone(),
                        nginx: last.get(cookie).map_or(Want::Absent, Want::text),
                        ours: Want::text(value.clone()),
                    });
                }
            }
        }
    }
    out
}

fn expect_leading_tab(c: &Ctx<'_>) -> Vec<Expect> {
    let mut out = Vec::new();
    for name in c.case.distinct_valid_names() {
        let values = c.case.headers_named(&name);
        let differs = values.iter().any(|v| nginx_value(v) != our_value(v));
        if values.len() == 1 && differs && !HOP_BY_HOP.contains(&name.as_str()) {
            out.push(Expect::server(
                http_var(&name),
                Want::text(nginx_value(&values[0])),
                Want::text(our_value(&values[0])),
            ));
        }
    }
    out
}

fn expect_distro_http_host(c: &Ctx<'_>) -> Vec<Expect> {
    match c.env.stock.get("HTTP_HOST").map(String::as_str) {
        None => Vec::new(),
        Some("$host") => {
            let hosts = c.case.headers_named("host");
            let ours = match hosts.as_slice() {
                [] => Want::Absent,
                [one] => Want::text(our_value(one)),
                _ => panic!(
                    "{}: several Host headers are refusals, not cases",
                    c.case.name
                ),
            };
            vec![Expect::server(
                "HTTP_HOST",
                Want::text(c.case.nginx_host()),
                ours,
            )]
        }
        Some(other) => panic!(
            "{STOCK_PARAMS} sets HTTP_HOST to {other:?}; teach the table what nginx sends then"
        ),
    }
}

fn expect_distro_remote_user(c: &Ctx<'_>) -> Vec<Expect> {
    match c.env.stock.get("REMOTE_USER").map(String::as_str) {
        None => Vec::new(),
        Some("$remote_user") => vec![Expect::server(
            "REMOTE_USER",
            Want::text(c.case.basic_user()),
            Want::Absent,
        )],
        Some(other) => panic!(
            "{STOCK_PARAMS} sets REMOTE_USER to {other:?}; teach the table what nginx sends then"
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// The requests.
// ---------------------------------------------------------------------------------------------

/// One request, sent byte for byte to both servers.
#[derive(Debug, Clone)]
struct Case {
    name: &'static str,
    /// Request line, then header lines exactly as sent.
    head: Vec<String>,
    /// The body as sent (already chunk-encoded for a chunked request).
    body: Vec<u8>,
}

fn case(name: &'static str, head: &[&str], body: &str) -> Case {
    Case {
        name,
        head: head.iter().map(|l| (*l).to_owned()).collect(),
        body: body.as_bytes().to_vec(),
    }
}

fn get(name: &'static str, target: &str, headers: &[&str]) -> Case {
    let line = format!("GET {target} HTTP/1.1");
    let mut head = vec![line.as_str(), "Host: parity.test"];
    head.extend_from_slice(headers);
    case(name, &head, "")
}

/// A request with a `Content-Length` body (and `Host: parity.test`).
fn sized(name: &'static str, line: &str, content_type: Option<&str>, body: &str) -> Case {
    let mut head = vec![line.to_owned(), "Host: parity.test".to_owned()];
    if let Some(t) = content_type {
        head.push(format!("Content-Type: {t}"));
    }
    head.push(format!("Content-Length: {}", body.len()));
    Case {
        name,
        head,
        body: body.as_bytes().to_vec(),
    }
}

/// The requests compared, covering query strings, encoded paths, `PATH_INFO`, index files,
/// bodies (form, JSON, chunked), odd headers, cookies, HTTP/1.0 and `HEAD`.
fn cases() -> Vec<Case> {
    let long = format!("X-Long: {}", "0123456789abcdef".repeat(400));
    vec![
        get("plain GET", "/vars.php", &[]),
        get(
            "query string: encoded, +, empty, repeated, array, UTF-8",
            "/vars.php?a=1&b=%20x+y%2B&c=&a=2&d&e[]=1&e[]=2&%C3%A9=%E2%82%AC&f=a%26b%3Dc",
            &[],
        ),
        get("empty query string", "/vars.php?", &[]),
        get("query string of ? and /", "/vars.php?x=/a?b//c", &[]),
        get("encoded script name", "/v%61rs.php", &[]),
        get("encoded slashes", "/vars.php%2Fa%2fb", &[]),
        get("PATH_INFO", "/vars.php/a/b%20c/?x=1", &[]),
        get("PATH_INFO with +", "/vars.php/a+b/%C3%A9", &[]),
        get(
            "dot segments and double slashes",
            "/dir/../vars.php//a//b/./c",
            &[],
        ),
        get("leading double slash", "//vars.php", &[]),
        get("index of /", "/?q=1", &[]),
        get("index of a directory", "/dir/", &[]),
        get("script in a directory", "/dir/index.php/x", &[]),
        sized(
            "POST form",
            "POST /vars.php?from=query HTTP/1.1",
            Some("application/x-www-form-urlencoded"),
            "a=1&b=two+words&c&from=body&",
        ),
        sized(
            "POST JSON",
            "POST /vars.php HTTP/1.1",
            Some("application/json; charset=utf-8"),
            "{\"k\":[1,2,3],\"s\":\"\u{e9}\"}",
        ),
        sized(
            "POST multipart form",
            "POST /vars.php HTTP/1.1",
            Some("multipart/form-data; boundary=XyZ"),
            "--XyZ\r\nContent-Disposition: form-data; name=\"field\"\r\n\r\nvalue 1\r\n--XyZ\r\n\
             Content-Disposition: form-data; name=\"f2\"\r\n\r\n2\r\n--XyZ--\r\n",
        ),
        sized("POST empty body", "POST /vars.php HTTP/1.1", None, ""),
        sized(
            "PUT over HTTP/1.0",
            "PUT /vars.php/item HTTP/1.0",
            Some("text/plain"),
            "abc",
        ),
        case(
            "chunked upload",
            &[
                "POST /vars.php HTTP/1.1",
                "Host: parity.test",
                "Content-Type: text/plain",
                "Transfer-Encoding: chunked",
            ],
            "5\r\nhello\r\n6\r\n world\r\n1\r\n!\r\n0\r\n\r\n",
        ),
        case(
            "chunked form with extension and trailer",
            &[
                "POST /vars.php HTTP/1.1",
                "Host: parity.test",
                "Content-Type: application/x-www-form-urlencoded",
                "Transfer-Encoding: chunked",
            ],
            "3;ext=1\r\na=1\r\n4\r\n&b=2\r\n0\r\nX-Trailer: t\r\n\r\n",
        ),
        case(
            "chunked empty body",
            &[
                "POST /vars.php HTTP/1.1",
                "Host: parity.test",
                "Transfer-Encoding: chunked",
            ],
            "0\r\n\r\n",
        ),
        case(
            "Expect: 100-continue",
            &[
                "POST /vars.php HTTP/1.1",
                "Host: parity.test",
                "Expect: 100-continue",
                "Content-Length: 2",
            ],
            "hi",
        ),
        get(
            "odd headers",
            "/vars.php",
            &[
                "X_Under: dropped by both (underscores_in_headers off)",
                "X-Rep: a",
                "X-Rep: b",
                // nginx passes HTTP_PROXY and we do not (httpoxy), but php-fpm itself hides
                // HTTP_PROXY from scripts (PHP's own httpoxy fix): PHP sees none either way.
                "Proxy: http://evil.test:3128",
                "X-Empty:",
                "X-MiXeD-CaSe: VaLuE",
                "x-lower: v",
                "X-Spaces:   inner  spaces  ",
                "X-Tab:\tafter tab",
                "X-Utf8: \u{e9}t\u{e9}",
                "X-Forwarded-For: 10.0.0.1, 10.0.0.2",
                &long,
                "Authorization: Basic dXNlcjpwYXNz",
            ],
        ),
        get(
            "hop-by-hop headers",
            "/vars.php",
            &[
                "Connection: keep-alive, X-Hop",
                "X-Hop: listed in Connection",
                "TE: trailers",
                "Keep-Alive: timeout=5",
                "Proxy-Connection: keep-alive",
            ],
        ),
        // Names nginx ignores (`ignore_invalid_headers on`, its default): anything but
        // letters, digits and `-`. PHP turns `.` in a variable name into `_`, so a `X.Dot`
        // would land on the same variable as `X-Dot`.
        get(
            "header names with characters nginx ignores",
            "/vars.php",
            &[
                "X.Dot: 1",
                "X~Tilde: 2",
                "X!Bang: 3",
                "X'Quote: 4",
                "X*Star: 5",
                "X+Plus: 6",
                "X%41: 7",
            ],
        ),
        get(
            "one Cookie header",
            "/vars.php",
            &["Cookie: a=1; b=two; c="],
        ),
        get(
            "repeated Cookie headers",
            "/vars.php",
            &["Cookie: a=1; b=2", "Cookie: c=3"],
        ),
        get(
            "Authorization: Bearer",
            "/vars.php",
            &["Authorization: Bearer abc.def"],
        ),
        case("HTTP/1.0 without Host", &["GET /vars.php?x HTTP/1.0"], ""),
        case(
            "HTTP/1.0 with Host",
            &["GET /vars.php HTTP/1.0", "Host: parity.test"],
            "",
        ),
        case(
            "Host with port and capitals",
            &["GET /vars.php HTTP/1.1", "Host: Parity.TEST:8080"],
            "",
        ),
        case(
            "Host with trailing dot",
            &["GET /vars.php HTTP/1.1", "Host: parity.test."],
            "",
        ),
        case(
            "Host as IPv6 literal",
            &["GET /vars.php HTTP/1.1", "Host: [::1]:8080"],
            "",
        ),
        case(
            "absolute-form target",
            &[
                "GET http://Other.test:81/vars.php?q=1 HTTP/1.1",
                "Host: parity.test",
            ],
            "",
        ),
        case(
            "HEAD",
            &["HEAD /vars.php/h?x=1 HTTP/1.1", "Host: parity.test"],
            "",
        ),
        case(
            "OPTIONS",
            &["OPTIONS /vars.php HTTP/1.1", "Host: parity.test"],
            "",
        ),
    ]
}

impl Case {
    fn method(&self) -> &str {
        self.head[0].split(' ').next().unwrap_or_default()
    }

    fn target(&self) -> &str {
        self.head[0].split(' ').nth(1).unwrap_or_default()
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for line in &self.head {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }

    /// `(lower-case name, raw value after the colon)` of every header line.
    fn headers(&self) -> Vec<(String, String)> {
        self.head[1..]
            .iter()
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.to_ascii_lowercase(), v.to_owned())
            })
            .collect()
    }

    fn headers_named(&self, name: &str) -> Vec<String> {
        self.headers()
            .into_iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v)
            .collect()
    }

    /// Names nginx accepts (letters, digits, `-`), each once, in order.
    fn distinct_valid_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for (n, _) in self.headers() {
            let valid = n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if valid && !names.contains(&n) {
                names.push(n);
            }
        }
        names
    }

    /// The value nginx gives the script for header `name`: the only one, the last one
    /// (nginx < 1.23), or all joined (nginx >= 1.23).
    fn nginx_header_value(&self, name: &str, env: &Env) -> String {
        let values: Vec<String> = self
            .headers_named(name)
            .iter()
            .map(|v| nginx_value(v))
            .collect();
        if env.nginx_joins_headers() {
            values.join(if name == "cookie" { "; " } else { ", " })
        } else {
            values.last().cloned().unwrap_or_default()
        }
    }

    /// nginx's `$host`.
    fn nginx_host(&self) -> String {
        let target = self.target();
        let from_line = ["http://", "https://"]
            .iter()
            .find_map(|s| target.strip_prefix(s))
            .map(|rest| rest.split(['/', '?']).next().unwrap_or_default().to_owned());
        let raw = from_line
            .or_else(|| self.headers_named("host").first().map(|h| nginx_value(h)))
            .unwrap_or_else(|| SERVER_NAME.to_owned())
            .to_ascii_lowercase();
        let host = if raw.starts_with('[') {
            raw.split_inclusive(']').next().unwrap_or_default()
        } else {
            raw.split(':').next().unwrap_or_default()
        };
        host.strip_suffix('.').unwrap_or(host).to_owned()
    }

    /// nginx's `$remote_user`: the user of an `Authorization: Basic` header, or empty.
    fn basic_user(&self) -> String {
        self.headers_named("authorization")
            .first()
            .and_then(|v| v.trim().strip_prefix("Basic ").map(base64_decode))
            .and_then(|creds| {
                let creds = String::from_utf8(creds).ok()?;
                creds.split_once(':').map(|(user, _)| user.to_owned())
            })
            .unwrap_or_default()
    }
}

/// `HTTP_<NAME>` of a header name.
fn http_var(name: &str) -> String {
    format!("HTTP_{}", name.to_ascii_uppercase().replace('-', "_"))
}

/// A raw header value as nginx keeps it (leading and trailing spaces removed).
fn nginx_value(raw: &str) -> String {
    raw.trim_matches(' ').to_owned()
}

/// A raw header value as hyper keeps it (leading and trailing SP and HTAB removed).
fn our_value(raw: &str) -> String {
    raw.trim_matches([' ', '\t']).to_owned()
}

/// `name=value` pairs of a Cookie header, as PHP reads them (the first of a name wins).
fn parse_cookies(header: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for pair in header.split(';') {
        if let Some((n, v)) = pair.trim().split_once('=') {
            out.entry(n.to_owned()).or_insert_with(|| v.to_owned());
        }
    }
    out
}

fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in text.trim_end_matches('=').bytes() {
        let Some(v) = ALPHABET.iter().position(|&a| a == b) else {
            return Vec::new();
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Refusals: requests that must not reach PHP.
// ---------------------------------------------------------------------------------------------

/// A request refused before PHP, with the status each side answers.
struct Refusal {
    head: &'static [&'static str],
    nginx: u16,
    ours: u16,
    /// The [`TABLE`] entry explaining why the statuses differ.
    difference: Option<&'static str>,
}

const REFUSALS: &[Refusal] = &[
    Refusal {
        head: &["GET /../vars.php HTTP/1.1", "Host: parity.test"],
        nginx: 400,
        ours: 400,
        difference: None,
    },
    Refusal {
        head: &["GET /%2e%2e/vars.php HTTP/1.1", "Host: parity.test"],
        nginx: 400,
        ours: 400,
        difference: None,
    },
    Refusal {
        head: &[
            "GET /vars.php/%2e%2e/%2e%2e/x HTTP/1.1",
            "Host: parity.test",
        ],
        nginx: 400,
        ours: 400,
        difference: None,
    },
    Refusal {
        head: &["GET /vars.php%00.jpg HTTP/1.1", "Host: parity.test"],
        nginx: 400,
        ours: 400,
        difference: None,
    },
    Refusal {
        head: &["GET /vars.php%zz HTTP/1.1", "Host: parity.test"],
        nginx: 400,
        ours: 400,
        difference: None,
    },
    Refusal {
        head: &["GET /VARS.PHP HTTP/1.1", "Host: parity.test"],
        nginx: 404,
        ours: 404,
        difference: None,
    },
    Refusal {
        head: &["GET /dir HTTP/1.1", "Host: parity.test"],
        nginx: 301,
        ours: 404,
        difference: Some("directory-without-slash"),
    },
    // RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without Host, with
    // more than one Host line, or with an invalid Host value.
    Refusal {
        head: &["GET /vars.php HTTP/1.1"],
        nginx: 400,
        ours: 400,
        difference: None,
    },
    Refusal {
        head: &[
            "GET /vars.php HTTP/1.1",
            "Host: parity.test",
            "Host: other.test",
        ],
        nginx: 400,
        ours: 400,
        difference: None,
    },
    Refusal {
        head: &["GET /vars.php HTTP/1.1", "Host:"],
        nginx: 400,
        ours: 400,
        difference: None,
    },
    Refusal {
        head: &["GET /vars.php HTTP/1.1", "Host: a/b"],
        nginx: 400,
        ours: 400,
        difference: None,
    },
    Refusal {
        head: &["GET /vars.php HTTP/1.1", "Host: a..b"],
        nginx: 400,
        ours: 400,
        difference: None,
    },
    Refusal {
        head: &["GET /vars.php HTTP/1.1", "Host: a b"],
        nginx: 400,
        ours: 400,
        difference: None,
    },
];

// ---------------------------------------------------------------------------------------------
// The servers.
// ---------------------------------------------------------------------------------------------

/// What the comparison needs to know about the setup.
struct Env {
    docroot: String,
    nginx_addr: SocketAddr,
    our_addr: SocketAddr,
    /// `1.22.1`.
    nginx_version_text: String,
    nginx_version: (u32, u32),
    /// `fastcgi_param` lines of the stock file: name → value (without the `;`).
    stock: BTreeMap<String, String>,
    our_software: String,
}

impl Env {
    /// nginx 1.23 and later join repeated headers into one param.
    fn nginx_joins_headers(&self) -> bool {
        self.nginx_version >= (1, 23)
    }
}

/// Everything one test needs; dropped in order: our server, nginx, php-fpm.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    nginx: RunningPeer,
    fpm: PhpFpm,
    env: Env,
    dump: PathBuf,
}

impl Fixture {
    /// `None` when nginx, its stock `fastcgi_params` or php-fpm is missing (and the skip
    /// policy says to skip).
    fn start() -> Option<Self> {
        let nginx_bin = nginx_with_stock_params()?;
        let stock = read_stock_params();
        let (nginx_version_text, nginx_version) = nginx_version(&nginx_bin);
        let fpm = PhpFpm::start(Options::new(Socket::Tcp, WORKERS))?;
        let www = PathBuf::from(fpm.docroot());
        let dump = fpm.dir().join("head.json");
        let script = VARS_PHP.replace("{dump}", &dump.display().to_string());
        std::fs::create_dir(www.join("dir")).unwrap();
        for file in ["vars.php", "index.php", "dir/index.php"] {
            std::fs::write(www.join(file), &script).unwrap();
        }
        let nginx = start_nginx(&nginx_bin, &fpm);
        let runtime = our_runtime();
        let config = gateway_config(&fpm);
        let our_software = config.cgi.server_software.clone();
        let our_addr = start_ours(&runtime, fpm.addr().backend(), config);
        let env = Env {
            docroot: fpm.docroot(),
            nginx_addr: nginx.addr(),
            our_addr,
            nginx_version_text,
            nginx_version,
            stock,
            our_software,
        };
        Some(Self {
            runtime,
            nginx,
            fpm,
            env,
            dump,
        })
    }

    /// Sends `case` to `addr` and reads what PHP saw.
    fn ask(&self, addr: SocketAddr, case: &Case) -> Seen {
        let head_request = case.method() == "HEAD";
        if head_request {
            let _ = std::fs::remove_file(&self.dump);
        }
        let (response, client_port) = exchange(addr, &case.bytes(), head_request);
        // A HEAD response has no body: the script left its JSON in the dump file.
        let json = if head_request {
            std::fs::read_to_string(&self.dump).unwrap_or_default()
        } else {
            response.text()
        };
        let doc = match serde_json::from_str::<Value>(&json) {
            Ok(Value::Object(doc)) => doc,
            _ => Map::new(),
        };
        Seen {
            status: response.status,
            content_type: response.header("content-type").map(str::to_owned),
            doc,
            client_port,
            raw: json,
        }
    }
}

fn read_stock_params() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(STOCK_PARAMS).unwrap();
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == "fastcgi_param").then_some(())?;
            let name = words.next()?;
            let value = words.next()?.trim_end_matches(';');
            Some((name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// `("1.22.1", (1, 22))` from `nginx -v`.
fn nginx_version(bin: &Path) -> (String, (u32, u32)) {
    let out = run_bounded(
        peer_command(bin).arg("-v"),
        Vec::new(),
        Duration::from_secs(10),
    )
    .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    let version = text
        .split("nginx/")
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected `nginx -v` output: {text:?}"))
        .to_owned();
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (version, (major, minor))
}

fn gateway_config(fpm: &PhpFpm) -> GatewayConfig {
    let mut config = GatewayConfig::new(fpm.docroot(), ScriptResolution::split_path());
    config.cgi.server_name = SERVER_NAME.into();
    assert_eq!(
        config.cgi.server_software,
        CgiConfig::new("/", ScriptResolution::split_path()).server_software,
        "the default SERVER_SOFTWARE is what we compare against"
    );
    config
}

/// nginx in front of `fpm`, configured as the module docs say.
fn start_nginx(bin: &Path, fpm: &PhpFpm) -> RunningPeer {
    start_nginx_with(bin, fpm, "nginx-parity", |upstream| {
        format!(
            "    location ~ [^/]\\.php(/|$) {{
      fastcgi_split_path_info ^(.+\\.php)(/.*)$;
      fastcgi_pass {upstream};
      fastcgi_index index.php;
      include {STOCK_PARAMS};
      fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
      fastcgi_param PATH_INFO $fastcgi_path_info;
      fastcgi_param PATH_TRANSLATED $document_root$fastcgi_path_info;
    }}
"
        )
    })
}

/// nginx in front of `fpm` with the `location` blocks `locations(upstream)` makes.
fn start_nginx_with(
    bin: &Path,
    fpm: &PhpFpm,
    name: &str,
    locations: impl FnOnce(&str) -> String,
) -> RunningPeer {
    let dir = peer_dir(name);
    let root = dir.path().to_path_buf();
    let conf = root.join("nginx.conf");
    let error_log = root.join("error.log");
    let upstream = match fpm.addr() {
        AppAddr::Tcp(a) => a.to_string(),
        AppAddr::Unix(p) => format!("unix:{}", p.display()),
    };
    let docroot = fpm.docroot();
    let locations = locations(&upstream);
    let peer = launch("nginx", dir, vec![error_log.clone()], Ready::Port, |port| {
        let r = root.display();
        // Workers must reach our temporary directories when the tests run as root.
        let user = if is_root() { "user root root;\n" } else { "" };
        let config = format!(
            "{user}daemon off;
master_process on;
worker_processes 1;
pid {r}/nginx.pid;
error_log {r}/error.log info;
events {{ worker_connections 64; }}
http {{
  include /etc/nginx/mime.types;
  access_log off;
  client_body_temp_path {r}/client_body;
  fastcgi_temp_path {r}/fastcgi;
  proxy_temp_path {r}/proxy;
  uwsgi_temp_path {r}/uwsgi;
  scgi_temp_path {r}/scgi;
  server {{
    listen 127.0.0.1:{port};
    server_name {SERVER_NAME};
    root {docroot};
    index index.php;
{locations}  }}
}}
"
        );
        std::fs::write(&conf, config)?;
        let mut cmd = peer_command(bin);
        cmd.arg("-p")
            .arg(&root)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(&error_log);
        Ok(cmd)
    });
    peer.unwrap_or_else(|e| panic!("{e}"))
}

/// Our side: hyper's HTTP/1 server on a free loopback port, serving the gateway with a
/// [`ConnInfo`] per connection. It runs until `runtime` is dropped.
fn start_ours(
    runtime: &tokio::runtime::Runtime,
    backend: Backend,
    config: GatewayConfig,
) -> SocketAddr {
    let _entered = runtime.enter();
    let service = Gateway::new(
        fcgi_tokio::client(backend, ClientOptions::default()),
        config,
    )
    .errors_as_responses();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    runtime.spawn(async move {
        loop {
            let (stream, remote) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    eprintln!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let Ok(local) = stream.local_addr() else {
                continue;
            };
            let conn = ConnInfo::new(local, remote, false);
            let service = service.clone();
            tokio::spawn(async move {
                let per_request = hyper::service::service_fn(move |mut request| {
                    request.extensions_mut().insert(conn);
                    tower::ServiceExt::oneshot(service.clone(), request)
                });
                // A client error (bad request, reset) ends this connection only.
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), per_request)
                    .await;
            });
        }
    });
    addr
}

/// What one side answered.
struct Seen {
    status: u16,
    content_type: Option<String>,
    /// The script's JSON (empty when the answer was not JSON).
    doc: Map<String, Value>,
    client_port: u16,
    raw: String,
}

impl Seen {
    fn server(&self, name: &str) -> Option<&Value> {
        self.doc.get("server")?.get(name)
    }
}

/// Sends `raw` on a new connection and reads one response.
fn exchange(addr: SocketAddr, raw: &[u8], head: bool) -> (fcgi_testkit::http::Response, u16) {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let client_port = stream.local_addr().unwrap().port();
    (&stream).write_all(raw).unwrap();
    let response = fcgi_testkit::http::read_response(&mut BufReader::new(stream), head)
        .unwrap_or_else(|e| panic!("reading the response from {addr}: {e}"));
    (response, client_port)
}

// ---------------------------------------------------------------------------------------------
// The comparison.
// ---------------------------------------------------------------------------------------------

fn show(v: Option<&Value>) -> String {
    match v {
        None => "<absent>".into(),
        Some(v) => {
            let text = v.to_string();
            if text.len() > 120 {
                format!("{}...({} bytes)", &text[..120], text.len())
            } else {
                text
            }
        }
    }
}

fn show_want(w: &Want) -> String {
    match w {
        Want::Absent => "<absent>".into(),
        Want::Is(v) => show(Some(v)),
        Want::Like(what, _) => format!("<{what}>"),
    }
}

/// Compares what PHP saw behind nginx and behind us; returns the problems found.
fn compare(case: &Case, env: &Env, mut nginx: Seen, mut ours: Seen) -> Vec<String> {
    let mut problems = Vec::new();
    for (side, seen) in [("nginx", &nginx), ("ours", &ours)] {
        let json = seen
            .content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("application/json"));
        if seen.status != 200 || !json || seen.doc.is_empty() {
            problems.push(format!(
                "{side} answered {} ({:?}), not the script's JSON: {}",
                seen.status,
                seen.content_type,
                &seen.raw.chars().take(300).collect::<String>()
            ));
        }
    }
    if !problems.is_empty() {
        return problems;
    }
    let mut expectations = Vec::new();
    {
        let ctx = Ctx {
            case,
            env,
            nginx: &nginx,
            ours: &ours,
        };
        for entry in TABLE {
            for e in (entry.expect)(&ctx) {
                expectations.push((entry.id, e));
            }
        }
    }
    for (id, e) in expectations {
        let take = |seen: &mut Seen| {
            seen.doc
                .get_mut(e.section)
                .and_then(Value::as_object_mut)
                .and_then(|m| m.remove(&e.name))
        };
        let (n, o) = (take(&mut nginx), take(&mut ours));
        if !e.nginx.accepts(n.as_ref()) || !e.ours.accepts(o.as_ref()) {
            problems.push(format!(
                "{}.{} (table entry {id}): nginx {} (expected {}), ours {} (expected {})",
                e.section,
                e.name,
                show(n.as_ref()),
                show_want(&e.nginx),
                show(o.as_ref()),
                show_want(&e.ours),
            ));
        }
    }
    for section in ["server", "get", "post", "cookie", "body"] {
        let (n, o) = (nginx.doc.get(section), ours.doc.get(section));
        match (n.and_then(Value::as_object), o.and_then(Value::as_object)) {
            (Some(n), Some(o)) => {
                let names: std::collections::BTreeSet<&String> = n.keys().chain(o.keys()).collect();
                for name in names {
                    if n.get(name) != o.get(name) {
                        problems.push(format!(
                            "{section}.{name}: nginx {}, ours {}",
                            show(n.get(name)),
                            show(o.get(name))
                        ));
                    }
                }
            }
            _ if n == o => {}
            _ => problems.push(format!("{section}: nginx {}, ours {}", show(n), show(o))),
        }
    }
    problems
}

#[test]
fn php_sees_the_same_request_behind_nginx_and_behind_us() {
    let Some(fixture) = Fixture::start() else {
        return;
    };
    let mut report = String::new();
    let cases = cases();
    for case in &cases {
        let nginx = fixture.ask(fixture.env.nginx_addr, case);
        let ours = fixture.ask(fixture.env.our_addr, case);
        let problems = compare(case, &fixture.env, nginx, ours);
        if !problems.is_empty() {
            report.push_str(&format!("\n{}:\n", case.name));
            for line in &case.head {
                let short: String = line.chars().take(100).collect();
                report.push_str(&format!("  > {short:?}\n"));
            }
            for p in problems {
                report.push_str(&format!("    {p}\n"));
            }
        }
    }
    assert!(
        report.is_empty(),
        "PHP saw different requests behind nginx {} and behind us (differences not in TABLE):{report}",
        fixture.env.nginx_version_text
    );
    // Every case reached PHP on both sides, and php-fpm is still fine.
    assert!(fixture.fpm.pid().is_some(), "{}", fixture.fpm.logs());
    drop(fixture.runtime);
    assert!(fixture.nginx.is_running(), "{}", fixture.nginx.logs());
}

#[test]
fn refusals_match_nginx() {
    let Some(fixture) = Fixture::start() else {
        return;
    };
    let mut report = String::new();
    for refusal in REFUSALS {
        if let Some(id) = refusal.difference {
            let entry = TABLE.iter().find(|e| e.id == id);
            assert!(
                entry.is_some_and(|e| e.kind == Kind::Deliberate),
                "{id} is not a deliberate difference of TABLE"
            );
        } else {
            assert_eq!(refusal.nginx, refusal.ours, "{:?}", refusal.head);
        }
        let raw = case("refusal", refusal.head, "").bytes();
        let (nginx, _) = exchange(fixture.env.nginx_addr, &raw, false);
        let (ours, _) = exchange(fixture.env.our_addr, &raw, false);
        if nginx.status != refusal.nginx || ours.status != refusal.ours {
            report.push_str(&format!(
                "\n{:?}: nginx {} (expected {}), ours {} (expected {}): {}",
                refusal.head,
                nginx.status,
                refusal.nginx,
                ours.status,
                refusal.ours,
                ours.text().chars().take(200).collect::<String>()
            ));
        }
    }
    assert!(report.is_empty(), "statuses differ:{report}");
    drop(fixture.runtime);
}

#[test]
fn table_is_well_formed() {
    let mut ids: Vec<&str> = TABLE.iter().map(|e| e.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), TABLE.len(), "duplicate ids in TABLE");
    for e in TABLE {
        assert!(
            !e.what.is_empty() && !e.nginx.is_empty() && !e.ours.is_empty() && e.reason.len() > 20,
            "{} needs a description and a reason",
            e.id
        );
    }
    // The helpers the table relies on.
    assert_eq!(base64_decode("dXNlcjpwYXNz"), b"user:pass");
    let c = case(
        "t",
        &["GET http://A.test:81/x HTTP/1.1", "Host: b.test"],
        "",
    );
    assert_eq!(c.nginx_host(), "a.test");
    let c = case("t", &["GET / HTTP/1.1", "Host: [::1]:80"], "");
    assert_eq!(c.nginx_host(), "[::1]");
    let c = case("t", &["GET / HTTP/1.0"], "");
    assert_eq!(c.nginx_host(), SERVER_NAME);
    assert_eq!(
        parse_cookies("a=1; b=2;c=3; a=4"),
        BTreeMap::from([
            ("a".into(), "1".into()),
            ("b".into(), "2".into()),
            ("c".into(), "3".into())
        ])
    );
}

// ---------------------------------------------------------------------------------------------
// Try-files mode beside nginx's try_files layout.
// ---------------------------------------------------------------------------------------------

/// What the try-files scripts print: the variables the layout decides.
const SHOW_PHP: &str = r#"<?php
header('Content-Type: application/json');
echo json_encode(['server' => $_SERVER], JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE);
"#;

/// nginx's documented layout for a PHP site (WordPress, Laravel): files, then directories,
/// then the front controller; `.php` URLs checked with `try_files $fastcgi_script_name =404`
/// (with `$fastcgi_path_info` saved first: `try_files` resets it).
fn try_files_locations(upstream: &str) -> String {
    format!(
        "    location / {{
      try_files $uri $uri/ /index.php$is_args$args;
    }}
    location ~ [^/]\\.php(/|$) {{
      fastcgi_split_path_info ^(.+\\.php)(/.*)$;
      set $path_info $fastcgi_path_info;
      try_files $fastcgi_script_name =404;
      fastcgi_pass {upstream};
      fastcgi_index index.php;
      include {STOCK_PARAMS};
      fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
      fastcgi_param PATH_INFO $path_info;
    }}
"
    )
}

/// How a request must come out on both sides.
enum Same {
    /// The same script ran, seeing the same layout variables.
    Script(&'static str),
    /// The same static file, with the same media type.
    Static,
    /// A `301` to the path with its `/`.
    Slash,
    /// Deliberate: a `.php` URL naming no file. nginx's `try_files $fastcgi_script_name
    /// =404` answers 404; our try-files mode (as Caddy's `php_fastcgi`) runs the front
    /// controller. Neither runs the upload a `/uploads/x.jpg/y.php` URL points into.
    FrontControllerVs404,
}

/// Our try-files mode and nginx's `try_files $uri $uri/ /index.php$is_args$args` layout in
/// front of the same php-fpm and the same files: the same script runs with the same
/// `SCRIPT_NAME`, `SCRIPT_FILENAME`, `REQUEST_URI`, `QUERY_STRING`, `PATH_INFO` and
/// `SERVER_NAME` (ours from the `Host`, nginx's from `server_name`), static files come back
/// byte for byte with the same type, directories get their slash; the one deliberate
/// difference is [`Same::FrontControllerVs404`].
#[test]
fn try_files_layout_matches_nginx() {
    let Some(nginx_bin) = nginx_with_stock_params() else {
        return;
    };
    let Some(fpm) = PhpFpm::start(loosened_guard()) else {
        return;
    };
    let www = PathBuf::from(fpm.docroot());
    for dir in ["dir", "uploads", "assets"] {
        std::fs::create_dir(www.join(dir)).unwrap();
    }
    for script in ["index.php", "a.php", "dir/index.php"] {
        std::fs::write(www.join(script), SHOW_PHP).unwrap();
    }
    std::fs::write(www.join("assets/notes.txt"), "plain notes\n").unwrap();
    std::fs::write(www.join("uploads/x.jpg"), "<?php echo 'HOLE';").unwrap();
    let nginx = start_nginx_with(&nginx_bin, &fpm, "nginx-try-files", try_files_locations);
    let runtime = our_runtime();
    let mut config = GatewayConfig::new(fpm.docroot(), ScriptResolution::split_path());
    config.try_files = Some("index.php".into());
    config.static_files = Some(fcgi_tokio::http::static_files());
    let ours = start_ours(&runtime, fpm.addr().backend(), config);

    let cases = [
        ("/", Same::Script("/index.php")),
        ("/pretty/route?x=1&y=two", Same::Script("/index.php")),
        ("/missing.txt", Same::Script("/index.php")),
        ("/a.php", Same::Script("/a.php")),
        ("/a.php/extra/info?q=1", Same::Script("/a.php")),
        ("/dir/", Same::Script("/dir/index.php")),
        ("/dir", Same::Slash),
        ("/assets/notes.txt", Same::Static),
        ("/uploads/x.jpg", Same::Static),
        ("/missing.php", Same::FrontControllerVs404),
        ("/uploads/x.jpg/y.php", Same::FrontControllerVs404),
    ];
    let mut report = String::new();
    for (target, same) in cases {
        let raw =
            format!("GET {target} HTTP/1.1\r\nHost: {SERVER_NAME}\r\nConnection: close\r\n\r\n");
        let (n, _) = exchange(nginx.addr(), raw.as_bytes(), false);
        let (o, _) = exchange(ours, raw.as_bytes(), false);
        let json = |r: &fcgi_testkit::http::Response| -> Map<String, Value> {
            match serde_json::from_str::<Value>(&r.text()) {
                Ok(Value::Object(mut doc)) => match doc.remove("server") {
                    Some(Value::Object(server)) => server,
                    _ => Map::new(),
                },
                _ => Map::new(),
            }
        };
        let media = |r: &fcgi_testkit::http::Response| {
            r.header("content-type")
                .map(|t| t.split(';').next().unwrap_or("").trim().to_owned())
        };
        let mut problem = |what: String| report.push_str(&format!("\n{target}: {what}"));
        match same {
            Same::Script(script) => {
                let (nj, oj) = (json(&n), json(&o));
                if (n.status, o.status) != (200, 200) {
                    problem(format!("status nginx {} ours {}", n.status, o.status));
                    continue;
                }
                if nj.get("SCRIPT_NAME") != Some(&Value::from(script)) {
                    problem(format!("nginx ran {:?}", nj.get("SCRIPT_NAME")));
                }
                for var in [
                    "SCRIPT_NAME",
                    "SCRIPT_FILENAME",
                    "REQUEST_URI",
                    "QUERY_STRING",
                    "PATH_INFO",
                    "SERVER_NAME",
                ] {
                    let (nv, ov) = (nj.get(var), oj.get(var));
                    // nginx sends no PATH_INFO param when empty; PHP then shows none.
                    let empty = |v: Option<&Value>| v.is_none_or(|v| v == "");
                    if nv != ov && !(var == "PATH_INFO" && empty(nv) && empty(ov)) {
                        problem(format!("{var}: nginx {nv:?} ours {ov:?}"));
                    }
                }
            }
            Same::Static => {
                if (n.status, o.status) != (200, 200) || n.body != o.body || media(&n) != media(&o)
                {
                    problem(format!(
                        "nginx {} {:?} {:?}, ours {} {:?} {:?}",
                        n.status,
                        media(&n),
                        n.text(),
                        o.status,
                        media(&o),
                        o.text()
                    ));
                }
            }
            Same::Slash => {
                let slash = |r: &fcgi_testkit::http::Response| {
                    r.status == 301 && r.header("location").is_some_and(|l| l.ends_with("/dir/"))
                };
                if !slash(&n) || !slash(&o) {
                    problem(format!(
                        "nginx {} {:?}, ours {} {:?}",
                        n.status,
                        n.header("location"),
                        o.status,
                        o.header("location")
                    ));
                }
            }
            Same::FrontControllerVs404 => {
                let ran_front = o.status == 200
                    && json(&o).get("SCRIPT_NAME") == Some(&Value::from("/index.php"));
                if n.status != 404
                    || !ran_front
                    || n.text().contains("HOLE")
                    || o.text().contains("HOLE")
                {
                    problem(format!(
                        "nginx {} {:?}, ours {} {:?}",
                        n.status,
                        n.text(),
                        o.status,
                        o.text()
                    ));
                }
            }
        }
    }
    assert!(report.is_empty(), "try-files layouts differ:{report}");
    drop(runtime);
    assert!(nginx.is_running(), "{}", nginx.logs());
}

/// A php-fpm pool whose guard against the "uploads hole" is loosened, as some deployments
/// do (`security.limit_extensions` allowing `.jpg`): with `cgi.fix_pathinfo=1` (the default)
/// `/uploads/x.jpg/y.php` then runs `uploads/x.jpg`.
fn loosened_guard() -> Options {
    let mut options = Options::new(Socket::Tcp, WORKERS);
    options.extra_pool_config = "security.limit_extensions = .php .jpg\n".into();
    options
}

/// The uploads hole, php-fpm's guard loosened: behind nginx's stock split-path layout (no
/// `try_files`) an uploaded `x.jpg` with PHP inside runs; behind us in path mode (the files
/// visible here, the default) it is 404 before php-fpm is asked; in the front-controller
/// layout the front controller runs (the try-files layout is in
/// [`try_files_layout_matches_nginx`]).
#[test]
fn uploads_hole_runs_behind_stock_nginx_not_behind_us() {
    let Some(nginx_bin) = nginx_with_stock_params() else {
        return;
    };
    let Some(fpm) = PhpFpm::start(loosened_guard()) else {
        return;
    };
    let www = PathBuf::from(fpm.docroot());
    std::fs::create_dir(www.join("uploads")).unwrap();
    std::fs::write(www.join("uploads/x.jpg"), "<?php echo 'HOLE';").unwrap();
    let nginx = start_nginx(&nginx_bin, &fpm);
    let runtime = our_runtime();
    let ours = start_ours(&runtime, fpm.addr().backend(), gateway_config(&fpm));
    let raw = format!(
        "GET /uploads/x.jpg/y.php HTTP/1.1\r\nHost: {SERVER_NAME}\r\nConnection: close\r\n\r\n"
    );
    let (n, _) = exchange(nginx.addr(), raw.as_bytes(), false);
    let (o, _) = exchange(ours, raw.as_bytes(), false);
    assert_eq!(
        (n.status, n.text().as_str()),
        (200, "HOLE"),
        "the hole is real behind nginx"
    );
    assert_eq!(o.status, 404, "{}", o.text());
    assert!(!o.text().contains("HOLE"));
    // The front-controller layout never lets the path choose the script: the same request
    // runs index.php.
    std::fs::write(www.join("index.php"), "<?php echo 'front';").unwrap();
    let mut front = gateway_config(&fpm);
    front.cgi.script = ScriptResolution::FrontController("index.php".into());
    let ours_front = start_ours(&runtime, fpm.addr().backend(), front);
    let (f, _) = exchange(ours_front, raw.as_bytes(), false);
    assert_eq!((f.status, f.text().as_str()), (200, "front"));
    drop(runtime);
}

/// nginx, when it and its stock `fastcgi_params` are installed (else the skip policy).
fn nginx_with_stock_params() -> Option<PathBuf> {
    let bin = require(&NGINX)?;
    if !Path::new(STOCK_PARAMS).is_file() {
        missing(
            &format!("nginx's stock {STOCK_PARAMS} not found"),
            "nginx-common",
        );
        return None;
    }
    Some(bin)
}

/// The runtime our gateway runs on in these tests.
fn our_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}
