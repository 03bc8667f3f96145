//! HTTP request head → CGI/1.1 meta-variables ([`Params`]), without a runtime and without
//! touching the filesystem.
//!
//! [`build_params`] produces what nginx sends with its stock `fastcgi_params` file plus
//! `SCRIPT_FILENAME`, `PATH_INFO` and `PATH_TRANSLATED`, so that a PHP script sees the same
//! `$_SERVER` behind this crate as behind nginx. Where this module departs from nginx, the
//! item documenting the rule says so and why.
//!
//! # Request path
//!
//! The path of the request target is percent-decoded (strictly: a `%` not followed by two hex
//! digits is refused), then normalised: empty and `.` segments vanish, `..` removes the
//! previous segment. Decoding happens *before* normalising, as in nginx, so `%2e%2e` is a `..`
//! segment and `%2f` a separator. The request is refused when the path climbs above the
//! document root ([`MapError::Traversal`]) or contains a decoded NUL ([`MapError::NulInPath`]).
//! A trailing `/` (also one produced by a final `.` or `..`) is kept.
//!
//! # What the adapter must still do
//!
//! This module never looks at the filesystem. Before forwarding, the adapter should check that
//! `SCRIPT_FILENAME` names an existing regular file and answer 404 otherwise. That matters for
//! PHP: with `cgi.fix_pathinfo=1`, php-fpm given a missing `SCRIPT_FILENAME` such as
//! `/uploads/evil.jpg/x.php` walks back to `/uploads/evil.jpg` and runs it as PHP (php-fpm's
//! `security.limit_extensions` is the other safeguard).

use core::fmt;
use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::SocketAddr;

use fcgi_core::Params;
use http::request::Parts;
use http::{HeaderMap, HeaderName, Version};

/// How the request path chooses the script to run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScriptResolution {
    /// Every request runs one script: the file, relative to the document root, given here
    /// (`"index.php"` and `"/index.php"` are the same). This is nginx's
    /// `try_files $uri /index.php?$query_string;` for a request with no matching static file:
    /// `SCRIPT_NAME` and `DOCUMENT_URI` are the script, `PATH_INFO` is empty, `REQUEST_URI`
    /// and `QUERY_STRING` are as received (the framework routes on `REQUEST_URI`).
    ///
    /// The request path is still decoded and checked (nginx rejects a bad path with 400 before
    /// any `try_files`).
    FrontController(String),
    /// The script is named by the path: nginx's `fastcgi_split_path_info` plus
    /// `fastcgi_index`.
    ///
    /// `SCRIPT_NAME` is the *shortest* prefix of the normalised path whose last segment ends in
    /// one of `extensions` (and is longer than it), and `PATH_INFO` is the rest (empty or
    /// starting with `/`). So `/a.php/b.php/c` runs `/a.php` with `PATH_INFO=/b.php/c`.
    /// nginx's usual regex `^(.+\.php)(/.*)$` is greedy and would run `/a.php/b.php`; taking
    /// the first match instead means a directory component is never skipped over to reach a
    /// script the client chose.
    ///
    /// A path ending in `/` with no such segment gets `index` appended (`/dir/` runs
    /// `/dir/index.php`, and `DOCUMENT_URI` is `/dir/index.php`, as after nginx's `index`
    /// redirect). Any other path is refused with [`MapError::NotAScript`]. Matching is
    /// case-sensitive, like nginx's `location ~ \.php$`.
    SplitPath {
        /// File name appended to a path ending in `/` (nginx `fastcgi_index`).
        index: String,
        /// Extensions (with the dot) that make a segment a script, such as `".php"`.
        extensions: Vec<String>,
    },
}

impl ScriptResolution {
    /// [`SplitPath`](Self::SplitPath) with index `index.php` and the one extension `.php`.
    pub fn split_path() -> Self {
        Self::SplitPath {
            index: "index.php".into(),
            extensions: vec![".php".into()],
        }
    }
}

/// Settings that do not change from one request to the next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CgiConfig {
    /// Directory the scripts live in, as the FastCGI application sees it (`DOCUMENT_ROOT`).
    /// Trailing slashes are ignored when joining it to a script name.
    pub document_root: String,
    /// How the script is chosen.
    pub script: ScriptResolution,
    /// `SERVER_SOFTWARE`.
    pub server_software: String,
    /// `SERVER_NAME`, when set: the name the server is known by, whatever the request
    /// says (nginx's `server_name`, Apache's `ServerName` with `UseCanonicalName On`).
    /// Empty (the default): the host the request was directed to, without its port (its
    /// `Host`, or the authority of an absolute target or HTTP/2 request), as Apache with
    /// `UseCanonicalName Off` and Caddy send it and as RFC 3875 §4.1.14 asks; the address
    /// the request arrived on when it names none (HTTP/1.0).
    pub server_name: String,
}

fcgi_core::__option_setters!(CgiConfig {
    document_root: String,
    script: ScriptResolution,
    server_software: String,
    server_name: String,
});

impl CgiConfig {
    /// A configuration with the given root and resolution, `SERVER_SOFTWARE` `fcgi-http/<version>`
    /// and `SERVER_NAME` taken from each request (see [`server_name`](Self::server_name)).
    pub fn new(document_root: impl Into<String>, script: ScriptResolution) -> Self {
        Self {
            document_root: document_root.into(),
            script,
            server_software: concat!("fcgi-http/", env!("CARGO_PKG_VERSION")).into(),
            server_name: String::new(),
        }
    }
}

/// Facts about the connection the request arrived on.
///
/// The [gateway](crate::gateway) reads them from the request's extensions. Insert one per
/// connection in your HTTP server glue (hyper: in the service made for each accepted
/// connection):
///
/// ```
/// use fcgi_http::ConnInfo;
///
/// let local = "192.0.2.1:443".parse()?;
/// let remote = "198.51.100.7:50123".parse()?;
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(ConnInfo::new(local, remote, true));
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
///
/// With the `axum` feature, `axum::serve` can do it:
/// `router.into_make_service_with_connect_info::<ConnInfo>()` on a TCP listener (`ConnInfo`
/// then implements axum's `Connected`; a Unix listener has no addresses to give). The gateway
/// also understands axum's plain `ConnectInfo<SocketAddr>`, which knows only the remote
/// address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnInfo {
    /// Local socket address: `SERVER_ADDR` and `SERVER_PORT`.
    pub local: SocketAddr,
    /// Peer socket address: `REMOTE_ADDR` and `REMOTE_PORT`.
    pub remote: SocketAddr,
    /// Whether the connection is TLS: `REQUEST_SCHEME=https` and `HTTPS=on`. This is a
    /// property of the listener, not of the configuration, hence here.
    pub tls: bool,
}

impl ConnInfo {
    /// Connection facts from the two socket addresses and the TLS flag.
    pub fn new(local: SocketAddr, remote: SocketAddr, tls: bool) -> Self {
        Self { local, remote, tls }
    }
}

/// Why a request cannot be mapped. Everything but [`Params`](Self::Params) and
/// [`InvalidConfig`](Self::InvalidConfig) is the client's fault (answer 400, or 404 for
/// [`NotAScript`](Self::NotAScript)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MapError {
    /// The request target is not a path starting with `/` (`*`, authority form), or holds a
    /// `%` not followed by two hex digits.
    InvalidPath,
    /// The decoded path contains a NUL byte (`%00`).
    NulInPath,
    /// The normalised path climbs above the document root.
    Traversal,
    /// The path names no script (no segment with an allowed extension, and no trailing `/`
    /// for the index). The adapter should also report this when `SCRIPT_FILENAME` is not an
    /// existing file.
    NotAScript,
    /// A header value holds CR, LF or NUL. `http::HeaderValue` already refuses these, so this
    /// only guards against values built without validation.
    InvalidHeaderValue(HeaderName),
    /// The configured script (front controller or index) is unusable: empty, contains NUL,
    /// or climbs above the root.
    InvalidConfig,
    /// The `Host` is missing from an HTTP/1.1 request, repeated, or not a valid
    /// `host[:port]` (RFC 9112 §3.2: answer 400, as nginx does).
    InvalidHost,
    /// A name or value is too long for FastCGI (2^31 bytes).
    Params(fcgi_core::Error),
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidPath => f.write_str("request target is not a valid origin-form path"),
            Self::NulInPath => f.write_str("request path contains a NUL byte"),
            Self::Traversal => f.write_str("request path escapes the document root"),
            Self::NotAScript => f.write_str("request path does not name a script"),
            Self::InvalidHeaderValue(name) => {
                write!(f, "header {name} contains CR, LF or NUL")
            }
            Self::InvalidConfig => f.write_str("configured script name is invalid"),
            Self::InvalidHost => f.write_str("missing, repeated or invalid Host header"),
            Self::Params(e) => write!(f, "cannot encode CGI params: {e}"),
        }
    }
}

impl std::error::Error for MapError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Params(e) => Some(e),
            _ => None,
        }
    }
}

impl From<fcgi_core::Error> for MapError {
    fn from(e: fcgi_core::Error) -> Self {
        Self::Params(e)
    }
}

/// Headers never turned into `HTTP_*`: hop-by-hop ones (RFC 9110 §7.6.1, plus the
/// non-standard `proxy-connection` and `keep-alive`), and `proxy` (httpoxy: `HTTP_PROXY`
/// would be read as the `HTTP_PROXY` environment variable by HTTP client libraries).
///
/// nginx does pass `HTTP_CONNECTION` (and the others) through; we drop them because they
/// describe our connection to the client, which the script does not share.
fn is_dropped(name: &str) -> bool {
    name == "proxy" || crate::hop::is_hop_by_hop(name)
}

/// Maps a request head to CGI meta-variables.
///
/// `body_len` is the length of the body the adapter will send as `FCGI_STDIN`; it gives
/// `CONTENT_LENGTH`. When it is `None`, `CONTENT_LENGTH` is the request's `Content-Length`
/// header, or empty when there is none (nginx's empty value for a request without a body).
/// `CONTENT_TYPE` is the `Content-Type` header, or empty.
///
/// Every other header becomes `HTTP_<NAME>` (upper case, `-` → `_`), except:
/// - names with any byte but letters, digits and `-` (nginx's `underscores_in_headers off`
///   and `ignore_invalid_headers on`: otherwise `X_Forwarded_For`, or `X.Forwarded.For` once
///   PHP has turned `.` into `_`, would land on the same variable as `X-Forwarded-For`);
/// - `Proxy` and hop-by-hop headers, including those listed in `Connection` (see the
///   `is_dropped` in the source) — but `Connection` cannot remove `Host`,
///   `Authorization`, `Cookie`, `Forwarded`, `X-Forwarded-*`, `X-Real-IP` or the content
///   headers (a client could otherwise hide what a proxy in front of us added).
///
/// Repeated headers are joined with `", "`, `Cookie` with `"; "` (which also reassembles
/// HTTP/2 cookie crumbs), as nginx does since 1.23. `Content-Type` and `Content-Length` are
/// also sent as `HTTP_CONTENT_TYPE`/`HTTP_CONTENT_LENGTH`, and `Authorization` as
/// `HTTP_AUTHORIZATION`: RFC 3875 §4.1.18 allows leaving them out, but nginx sends them and
/// PHP reads `HTTP_AUTHORIZATION` to fill `PHP_AUTH_*`. When there is no `Host` header (HTTP/2
/// carries `:authority` in the URI), `HTTP_HOST` is the URI's authority, as in nginx.
///
/// `PATH_TRANSLATED` is sent only when `PATH_INFO` is not empty (RFC 3875 §4.1.6: it is unset
/// when there is no path info). nginx's usual `$document_root$fastcgi_path_info` line sends
/// the bare document root instead, which names no file.
///
/// The `Host` is checked as RFC 9112 §3.2 asks (and nginx does): an HTTP/1.1 request without
/// one (and without an authority in its URI), with two, or with a value that is not
/// `host[:port]` is refused with [`MapError::InvalidHost`]; so is an absolute target's (or
/// HTTP/2 `:authority`'s) authority that is not `host[:port]` (userinfo included).
///
/// # Errors
///
/// See [`MapError`].
pub fn build_params(
    req: &Parts,
    body_len: Option<u64>,
    conn: &ConnInfo,
    cfg: &CgiConfig,
) -> Result<Params, MapError> {
    let raw_path = req.uri.path();
    let query = req.uri.query();
    let norm = normalize(raw_path.as_bytes())?;
    let (script_name, path_info) = resolve(&norm, &cfg.script)?;
    let mut document_uri = script_name.clone();
    document_uri.extend_from_slice(&path_info);

    let root = cfg.document_root.trim_end_matches('/');
    let document_root = if root.is_empty() && cfg.document_root.starts_with('/') {
        "/"
    } else {
        root
    };

    // The request target as received (path and query; for an absolute-form or HTTP/2 target,
    // without the scheme and authority).
    let request_uri = req.uri.path_and_query().map_or(raw_path, |pq| pq.as_str());

    // Numbers and addresses are formatted on the stack (no allocation per request).
    let mut length_text = Short::default();
    let content_length: Cow<'_, [u8]> = match body_len {
        Some(n) => {
            push_decimal(&mut length_text, n);
            Cow::Borrowed(length_text.as_bytes())
        }
        None => join_values(&req.headers, &http::header::CONTENT_LENGTH)?,
    };
    let mut num = Short::default();
    let content_type = join_values(&req.headers, &http::header::CONTENT_TYPE)?;

    let mut p = Params::with_capacity(2048, 40);
    p.push(b"QUERY_STRING", query.unwrap_or("").as_bytes())?;
    p.push(b"REQUEST_METHOD", req.method.as_str().as_bytes())?;
    p.push(b"CONTENT_TYPE", &content_type)?;
    p.push(b"CONTENT_LENGTH", &content_length)?;
    p.push(b"SCRIPT_NAME", &script_name)?;
    p.push(b"REQUEST_URI", request_uri.as_bytes())?;
    p.push(b"DOCUMENT_URI", &document_uri)?;
    p.push(b"DOCUMENT_ROOT", document_root.as_bytes())?;
    p.push(b"SERVER_PROTOCOL", protocol(req.version).as_bytes())?;
    p.push(
        b"REQUEST_SCHEME",
        if conn.tls {
            &b"https"[..]
        } else {
            &b"http"[..]
        },
    )?;
    if conn.tls {
        p.push(b"HTTPS", b"on")?;
    }
    p.push(b"GATEWAY_INTERFACE", b"CGI/1.1")?;
    p.push(b"SERVER_SOFTWARE", cfg.server_software.as_bytes())?;
    for (name, addr) in [(b"REMOTE", conn.remote), (b"SERVER", conn.local)] {
        let mut var = [0u8; 11];
        var[..6].copy_from_slice(name);
        var[6..].copy_from_slice(b"_ADDR");
        num.clear();
        push_ip(&mut num, addr.ip());
        p.push(&var, num.as_bytes())?;
        var[6..].copy_from_slice(b"_PORT");
        num.clear();
        push_decimal(&mut num, u64::from(addr.port()));
        p.push(&var, num.as_bytes())?;
    }
    if !cfg.server_name.is_empty() {
        p.push(b"SERVER_NAME", cfg.server_name.as_bytes())?;
    } else if let Some(host) = requested_host(req) {
        p.push(b"SERVER_NAME", host_without_port(host))?;
    } else {
        num.clear();
        push_ip(&mut num, conn.local.ip());
        p.push(b"SERVER_NAME", num.as_bytes())?;
    }
    p.push(b"REDIRECT_STATUS", b"200")?;

    let mut file = Vec::with_capacity(root.len() + document_uri.len());
    file.extend_from_slice(root.as_bytes());
    file.extend_from_slice(&script_name);
    p.push(b"SCRIPT_FILENAME", &file)?;
    p.push(b"PATH_INFO", &path_info)?;
    if !path_info.is_empty() {
        file.truncate(root.len());
        file.extend_from_slice(&path_info);
        p.push(b"PATH_TRANSLATED", &file)?;
    }

    push_headers(&mut p, req)?;
    Ok(p)
}

/// Appends `n` in decimal (what `n.to_string()` gives, without the formatting machinery).
fn push_decimal(out: &mut Short, n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends an address as `Display` writes it (IPv4 by hand: it is the common case and
/// `Ipv4Addr`'s `Display` is slow).
fn push_ip(out: &mut Short, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            // Written into a stack buffer and appended once (this runs twice per request).
            let mut text = [0u8; 15];
            let mut len = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    text[len] = b'.';
                    len += 1;
                }
                if octet >= 100 {
                    text[len] = b'0' + octet / 100;
                    len += 1;
                }
                if octet >= 10 {
                    text[len] = b'0' + octet / 10 % 10;
                    len += 1;
                }
                text[len] = b'0' + octet % 10;
                len += 1;
            }
            out.extend_from_slice(&text[..len]);
        }
        // At most 45 bytes (an IPv4-mapped address written out in full): it fits.
        std::net::IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// A short text on the stack: a number or an address (at most 45 bytes for an IPv6 one).
struct Short {
    bytes: [u8; 48],
    len: usize,
}

impl Default for Short {
    fn default() -> Self {
        Self {
            bytes: [0; 48],
            len: 0,
        }
    }
}

impl Short {
    fn clear(&mut self) {
        self.len = 0;
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Appends `more`; `false` (nothing appended) if it does not fit.
    fn extend_from_slice(&mut self, more: &[u8]) -> bool {
        let Some(room) = self.bytes.get_mut(self.len..self.len + more.len()) else {
            return false;
        };
        room.copy_from_slice(more);
        self.len += more.len();
        true
    }
}

impl std::fmt::Write for Short {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.extend_from_slice(s.as_bytes()) {
            Ok(())
        } else {
            Err(std::fmt::Error)
        }
    }
}

/// `SERVER_PROTOCOL` as nginx prints `$server_protocol`.
fn protocol(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// The values of a header joined with `", "` (`"; "` for `Cookie`); borrowed when there is
/// only one, empty when there is none.
fn join_values<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Cow<'a, [u8]>, MapError> {
    let check = |bytes: &[u8]| match memchr::memchr3(b'\r', b'\n', 0, bytes) {
        Some(_) => Err(MapError::InvalidHeaderValue(name.clone())),
        None => Ok(()),
    };
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(Cow::Borrowed(&[]));
    };
    check(first.as_bytes())?;
    let Some(second) = values.next() else {
        return Ok(Cow::Borrowed(first.as_bytes()));
    };
    let sep: &[u8] = if name == http::header::COOKIE {
        b"; "
    } else {
        b", "
    };
    let mut out = first.as_bytes().to_vec();
    for v in std::iter::once(second).chain(values) {
        check(v.as_bytes())?;
        out.extend_from_slice(sep);
        out.extend_from_slice(v.as_bytes());
    }
    Ok(Cow::Owned(out))
}

fn push_headers(p: &mut Params, req: &Parts) -> Result<(), MapError> {
    let headers = &req.headers;
    // Header names listed in `Connection` (compared without regard to case), except those a
    // client must not be able to hide from the application this way (see `PROTECTED`).
    let listed: Vec<&str> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty() && !is_protected(t))
        .collect();
    check_host(req)?;
    if !headers.contains_key(http::header::HOST)
        && let Some(auth) = req.uri.authority()
    {
        p.push(b"HTTP_HOST", auth.as_str().as_bytes())?;
    }
    // The variable name is built on the stack when it fits (nearly always), in `long`
    // otherwise: no allocation per request for the usual headers.
    let mut short = [0u8; 64];
    let mut long = Vec::new();
    for name in headers.keys() {
        let n = name.as_str();
        if !is_plain_name(n) || is_dropped(n) || listed.iter().any(|l| l.eq_ignore_ascii_case(n)) {
            continue;
        }
        let cgi = |b: u8| {
            if b == b'-' {
                b'_'
            } else {
                b.to_ascii_uppercase()
            }
        };
        let var: &[u8] = if let Some(room) = short.get_mut(..5 + n.len()) {
            room[..5].copy_from_slice(b"HTTP_");
            for (to, b) in room[5..].iter_mut().zip(n.bytes()) {
                *to = cgi(b);
            }
            room
        } else {
            long.clear();
            long.extend_from_slice(b"HTTP_");
            long.extend(n.bytes().map(cgi));
            &long
        };
        p.push(var, &join_values(headers, name)?)?;
    }
    Ok(())
}

/// End-to-end headers that `Connection` cannot remove: RFC 9110 §7.6.1 has an intermediary
/// drop the fields `Connection` names, which would let a client strip `Host`, its
/// credentials, or the `X-Forwarded-*` a proxy in front of us added (the hop-by-hop header
/// abuse). nginx ignores `Connection` tokens altogether; we honour them for everything else.
const PROTECTED: &[&str] = &[
    "host",
    "authorization",
    "cookie",
    "forwarded",
    "x-real-ip",
    "content-type",
    "content-length",
];

fn is_protected(name: &str) -> bool {
    PROTECTED.iter().any(|p| p.eq_ignore_ascii_case(name))
        || name
            .get(..12)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("x-forwarded-"))
}

/// Whether a header name may become an `HTTP_*` variable: letters, digits and `-` only
/// (nginx's `ignore_invalid_headers on`). Any other byte could make two names land on one
/// variable: `X_Forwarded_For` and, through PHP turning `.` into `_`, `X.Forwarded.For` would
/// both read as `X-Forwarded-For`.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// RFC 9112 §3.2: an HTTP/1.1 request has exactly one `Host` (HTTP/2 and HTTP/3 may carry the
/// authority in the URI instead; HTTP/1.0 may have none), and its value is `host[:port]`: a
/// reg-name or IP literal without `/`, `@`, whitespace, or an empty label (`..`), and a
/// numeric port. nginx answers 400 to the same requests.
fn check_host(req: &Parts) -> Result<(), MapError> {
    // An absolute target's authority (HTTP/2's `:authority`) is a Host too.
    if let Some(authority) = req.uri.authority() {
        check_host_value(authority.as_str().as_bytes())?;
    }
    let mut hosts = req.headers.get_all(http::header::HOST).iter();
    let Some(host) = hosts.next() else {
        return match req.version {
            Version::HTTP_11 if req.uri.authority().is_none() => Err(MapError::InvalidHost),
            _ => Ok(()),
        };
    };
    if hosts.next().is_some() {
        return Err(MapError::InvalidHost);
    }
    check_host_value(host.as_bytes())
}

/// The host the request was directed to: an absolute target's (or HTTP/2's `:authority`)
/// authority, else the `Host` header. (Both are checked by [`check_host`] before the
/// request is accepted.)
fn requested_host(req: &Parts) -> Option<&[u8]> {
    if let Some(authority) = req.uri.authority() {
        return Some(authority.as_str().as_bytes());
    }
    req.headers
        .get(http::header::HOST)
        .map(http::HeaderValue::as_bytes)
}

/// `host[:port]` without the port (an IPv6 literal keeps its brackets).
fn host_without_port(host: &[u8]) -> &[u8] {
    if host.first() == Some(&b'[') {
        let end = host
            .iter()
            .position(|&b| b == b']')
            .map_or(host.len(), |i| i + 1);
        return &host[..end];
    }
    match host.iter().rposition(|&b| b == b':') {
        Some(i) => &host[..i],
        None => host,
    }
}

/// `host[:port]`, as [`check_host`] describes it.
fn check_host_value(host: &[u8]) -> Result<(), MapError> {
    if host.is_empty()
        || host.contains(&b'@')
        || host.windows(2).any(|w| w == b"..")
        || host.first() == Some(&b'.')
    {
        return Err(MapError::InvalidHost);
    }
    // `[v6]:port`: the literal's colons are inside the brackets.
    let (name, port) = if let Some(rest) = host.strip_prefix(b"[") {
        let Some(close) = rest.iter().position(|&b| b == b']') else {
            return Err(MapError::InvalidHost);
        };
        let literal = &rest[..close];
        if literal.is_empty()
            || !literal
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(MapError::InvalidHost);
        }
        match &rest[close + 1..] {
            [] => (&b"[]"[..], &[][..]),
            [b':', port @ ..] => (&b"[]"[..], port),
            _ => return Err(MapError::InvalidHost),
        }
    } else {
        match host.iter().rposition(|&b| b == b':') {
            Some(i) => (&host[..i], &host[i + 1..]),
            None => (host, &[][..]),
        }
    };
    // RFC 3986 reg-name (unreserved, sub-delims, pct-encoded) or an IPv4 address; a numeric
    // port, possibly empty (RFC 3986 §3.2.3).
    let reg_name = |b: &u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%".contains(b);
    if name.is_empty()
        || (name != b"[]" && !name.iter().all(reg_name))
        || !port.iter().all(u8::is_ascii_digit)
    {
        return Err(MapError::InvalidHost);
    }
    Ok(())
}

/// A decoded, normalised path: its segments (ranges of `decoded`) and whether it ends in `/`.
#[derive(Debug)]
struct NormPath {
    decoded: Vec<u8>,
    segments: Vec<std::ops::Range<usize>>,
    trailing_slash: bool,
}

impl NormPath {
    fn segment(&self, i: usize) -> &[u8] {
        &self.decoded[self.segments[i].clone()]
    }

    /// `/` + segments `range` joined by `/`, appended to `out`.
    fn join_into(&self, range: std::ops::Range<usize>, out: &mut Vec<u8>) {
        for r in &self.segments[range] {
            out.push(b'/');
            out.extend_from_slice(&self.decoded[r.clone()]);
        }
    }

    fn join(&self, range: std::ops::Range<usize>) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.decoded.len() + 1);
        self.join_into(range, &mut out);
        out
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn percent_decode(raw: &[u8]) -> Result<Vec<u8>, MapError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hi = raw.get(i + 1).copied().and_then(hex);
            let lo = raw.get(i + 2).copied().and_then(hex);
            match (hi, lo) {
                (Some(h), Some(l)) => out.push((h << 4) | l),
                _ => return Err(MapError::InvalidPath),
            }
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// The request path decoded and checked as [`build_params`] does it (traversal, NUL, bad
/// escapes refused): `/` plus its segments joined by `/`, and whether it ends in `/`. For a
/// gateway that looks the path up in the file system (try-files).
///
/// ```
/// use fcgi_http::request::decoded_path;
/// assert_eq!(decoded_path("/a%20b/c/").unwrap(), (b"/a b/c".to_vec(), true));
/// assert!(decoded_path("/a/../../etc").is_err());
/// ```
pub fn decoded_path(raw: &str) -> Result<(Vec<u8>, bool), MapError> {
    let path = normalize(raw.as_bytes())?;
    Ok((path.join(0..path.segments.len()), path.trailing_slash))
}

fn normalize(raw: &[u8]) -> Result<NormPath, MapError> {
    if raw.first() != Some(&b'/') {
        return Err(MapError::InvalidPath);
    }
    let decoded = percent_decode(raw)?;
    if decoded.contains(&0) {
        return Err(MapError::NulInPath);
    }
    let mut segments: Vec<std::ops::Range<usize>> = Vec::with_capacity(8);
    let mut trailing_slash = false;
    let mut start = 0;
    for seg in decoded.split(|&b| b == b'/') {
        let range = start..start + seg.len();
        start = range.end + 1;
        trailing_slash = true;
        match seg {
            b"" | b"." => {}
            b".." => {
                if segments.pop().is_none() {
                    return Err(MapError::Traversal);
                }
            }
            _ => {
                segments.push(range);
                trailing_slash = false;
            }
        }
    }
    Ok(NormPath {
        decoded,
        segments,
        trailing_slash,
    })
}

/// A configured script name (front controller, or index appended to a directory) as a
/// `SCRIPT_NAME`: one leading `/`, no NUL, no `.`/`..`/empty segment.
fn config_script(name: &str) -> Result<Vec<u8>, MapError> {
    let trimmed = name.trim_start_matches('/');
    let ok = !trimmed.is_empty()
        && !trimmed.contains('\0')
        && trimmed
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..");
    if !ok {
        return Err(MapError::InvalidConfig);
    }
    let mut out = b"/".to_vec();
    out.extend_from_slice(trimmed.as_bytes());
    Ok(out)
}

/// Splits the path into `(SCRIPT_NAME, PATH_INFO)`.
fn resolve(path: &NormPath, how: &ScriptResolution) -> Result<(Vec<u8>, Vec<u8>), MapError> {
    match how {
        ScriptResolution::FrontController(script) => Ok((config_script(script)?, Vec::new())),
        ScriptResolution::SplitPath { index, extensions } => {
            let is_script = |seg: &[u8]| {
                extensions.iter().any(|e| {
                    let e = e.as_bytes();
                    !e.is_empty() && seg.len() > e.len() && seg.ends_with(e)
                })
            };
            let n = path.segments.len();
            if let Some(i) = (0..n).position(|i| is_script(path.segment(i))) {
                let script = path.join(0..i + 1);
                let mut info = path.join(i + 1..n);
                if path.trailing_slash {
                    info.push(b'/');
                }
                return Ok((script, info));
            }
            if path.trailing_slash || path.segments.is_empty() {
                let idx = config_script(index)?;
                if !is_script(&idx[1..]) {
                    return Err(MapError::NotAScript);
                }
                let mut script = path.join(0..n);
                script.extend_from_slice(&idx);
                return Ok((script, Vec::new()));
            }
            Err(MapError::NotAScript)
        }
    }
}
