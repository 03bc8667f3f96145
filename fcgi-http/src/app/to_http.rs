//! CGI/1.1 meta-variables (`PARAMS`) → an [`http::request::Parts`]: method, URI, version,
//! headers, and the connection facts as an extension. Pure: no IO, no runtime.

use std::net::{IpAddr, SocketAddr};

use fcgi_core::{Params, Role};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Uri, Version};

/// Why the params of a request cannot become an HTTP request. Each is the web server's fault
/// (or its configuration's): the application answers `400 Bad Request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamsError {
    /// `REQUEST_METHOD` is missing or empty (a Responder or Filter must have one).
    #[error("REQUEST_METHOD is missing")]
    MissingMethod,
    /// `REQUEST_METHOD` is not an HTTP method token.
    #[error("REQUEST_METHOD is not a valid method")]
    InvalidMethod,
    /// The request target (`REQUEST_URI`, or `SCRIPT_NAME` + `PATH_INFO` + `QUERY_STRING`)
    /// is not an origin-form, absolute-form or `*` target, even after percent-encoding the
    /// bytes a URI may not hold.
    #[error("the request target is not a valid URI")]
    InvalidUri,
    /// `CONTENT_LENGTH` is not empty and not a decimal number.
    #[error("CONTENT_LENGTH is not a decimal number")]
    InvalidContentLength,
    /// `FCGI_DATA_LENGTH` (Filter role) is not a decimal number.
    #[error("FCGI_DATA_LENGTH is not a decimal number")]
    InvalidDataLength,
}

/// The HTTP connection as the web server reports it (`REMOTE_ADDR`, `REMOTE_PORT`,
/// `SERVER_ADDR`, `SERVER_PORT`, `HTTPS`, `REQUEST_SCHEME`), in the request's extensions.
///
/// Each field is `None` when the variable is missing or does not parse: nginx's stock
/// `fastcgi_params` sends all four addresses, but a trimmed configuration may send only
/// `REMOTE_ADDR`, and a web server listening on a Unix socket sends `unix:` as the address.
/// The web server is the only one who saw the client, so these are as trustworthy as it is;
/// behind a proxy chain they name the last hop, not the user (read `X-Forwarded-For` then).
///
/// ```
/// use fcgi_http::app::HttpConn;
/// # fn handler(req: http::Request<()>) {
/// if let Some(conn) = req.extensions().get::<HttpConn>() {
///     println!("client {:?}, https {}", conn.remote(), conn.https);
/// }
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct HttpConn {
    /// The client's IP address (`REMOTE_ADDR`).
    pub remote_ip: Option<IpAddr>,
    /// The client's port (`REMOTE_PORT`).
    pub remote_port: Option<u16>,
    /// The address the web server received the request on (`SERVER_ADDR`).
    pub local_ip: Option<IpAddr>,
    /// The port the web server received the request on (`SERVER_PORT`).
    pub local_port: Option<u16>,
    /// Whether the client spoke TLS to the web server (`HTTPS` is `on` or `1`, or
    /// `REQUEST_SCHEME` is `https`).
    pub https: bool,
}

impl HttpConn {
    /// The client's socket address, when both `REMOTE_ADDR` and `REMOTE_PORT` were given.
    pub fn remote(&self) -> Option<SocketAddr> {
        Some(SocketAddr::new(self.remote_ip?, self.remote_port?))
    }

    /// The web server's socket address, when both `SERVER_ADDR` and `SERVER_PORT` were given.
    pub fn local(&self) -> Option<SocketAddr> {
        Some(SocketAddr::new(self.local_ip?, self.local_port?))
    }

    /// `https` or `http`.
    pub fn scheme(&self) -> Scheme {
        if self.https {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        }
    }

    /// Reads the connection facts from the params.
    pub fn from_params(params: &Params) -> Self {
        let ip = |name: &str| {
            params
                .get_str(name)
                .and_then(|v| v.trim_matches(|c| c == '[' || c == ']').parse().ok())
        };
        let port = |name: &str| params.get_str(name).and_then(|v| v.parse().ok());
        let https = params
            .get_str("HTTPS")
            .is_some_and(|v| v.eq_ignore_ascii_case("on") || v == "1")
            || params
                .get_str("REQUEST_SCHEME")
                .is_some_and(|v| v.eq_ignore_ascii_case("https"));
        Self {
            remote_ip: ip("REMOTE_ADDR"),
            remote_port: port("REMOTE_PORT"),
            local_ip: ip("SERVER_ADDR"),
            local_port: port("SERVER_PORT"),
            https,
        }
    }
}

/// The FastCGI request behind an HTTP request, in its extensions.
///
/// ```
/// use fcgi_http::app::FcgiRequest;
/// use fcgi_http::fcgi_core::Role;
/// # fn handler(req: http::Request<()>) {
/// let role = req.extensions().get::<FcgiRequest>().map(|r| r.role);
/// if role == Some(Role::Authorizer) { /* answer 200 to allow */ }
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FcgiRequest {
    /// The request id on its connection.
    pub id: u16,
    /// The role the web server asked for.
    pub role: Role,
    /// Whether the web server keeps the connection open after this request.
    pub keep_conn: bool,
}

impl FcgiRequest {
    /// The facts of one request.
    pub fn new(id: u16, role: Role, keep_conn: bool) -> Self {
        Self {
            id,
            role,
            keep_conn,
        }
    }
}

/// Builds the head of the HTTP request a web server forwarded as CGI variables.
///
/// - **Method**: `REQUEST_METHOD`. An Authorizer request without one gets `GET` (the
///   Authorizer role only asks about a request; some servers leave it out), any other role
///   gets [`ParamsError::MissingMethod`].
/// - **URI**: the request target is `REQUEST_URI` (nginx, Apache, lighttpd send it, raw and
///   with its query). Without it, it is rebuilt from `SCRIPT_NAME` + `PATH_INFO` (decoded, so
///   re-encoded here) + `?QUERY_STRING`; an empty result is `/`. Bytes no URI may hold (raw
///   UTF-8, spaces, controls, `#`) are percent-encoded rather than refused — the same
///   encoding a browser would have sent — and only when the target still does not parse, the
///   other characters outside RFC 3986 are encoded too. An absolute-form target keeps only
///   its path and query.
///
///   When a valid `Host` (`HTTP_HOST`) is known, the URI is made **absolute**:
///   `https://example.com/path?q` (scheme from `HTTPS`/`REQUEST_SCHEME`). This is what
///   hyper gives services for HTTP/2, so services already handle it; routers (axum) match on
///   `uri.path()` either way, and it lets `uri.scheme()` and `uri.host()` — which generic
///   extractors such as axum-extra's `Scheme` and `Host` fall back on — tell the truth about
///   a TLS request the application itself never saw. Without a `Host` (HTTP/1.0 clients) the
///   URI stays in origin form; [`HttpConn::https`] still has the scheme.
/// - **Version**: `SERVER_PROTOCOL`: `HTTP/1.0`, `HTTP/1.1`, `HTTP/2.0` or `HTTP/2`,
///   `HTTP/3.0` or `HTTP/3`, `HTTP/0.9`; anything else (or nothing) is HTTP/1.1.
/// - **Headers**: every `HTTP_X_Y` becomes `x-y`. `CONTENT_TYPE` and `CONTENT_LENGTH`
///   (when not empty) become `content-type` and `content-length`; they describe the body the
///   application receives, so they win over `HTTP_CONTENT_TYPE`, and `HTTP_CONTENT_LENGTH` is
///   never used (with a chunked request, nginx counts the body it buffered into
///   `CONTENT_LENGTH`). Hop-by-hop headers (`Connection`, `Keep-Alive`, `Proxy-Connection`,
///   `Transfer-Encoding`, `Upgrade`) are dropped: they described the client's connection to
///   the web server, and the body the application reads is already de-framed. A param that
///   does not make a valid header name or value is skipped (logged at debug level), never an
///   error: one odd header must not cost the whole request. When a name repeats, the last
///   value wins, as in [`Params::get`] (web servers join repeated headers into one variable).
/// - **Extensions**: an [`HttpConn`]. With the `axum` feature, also axum's
///   `ConnectInfo<SocketAddr>` (the [`HttpConn::remote`] address), when `REMOTE_ADDR` and
///   `REMOTE_PORT` both parse: an axum handler's `ConnectInfo` extractor then names the
///   client the web server saw. ([`ServiceHandler`](super::ServiceHandler) adds the
///   [`FcgiRequest`] and the [`Params`] themselves.)
///
/// # Errors
///
/// See [`ParamsError`].
///
/// ```
/// use fcgi_http::app::{request_parts, HttpConn};
/// use fcgi_http::fcgi_core::{Params, Role};
///
/// let mut p = Params::new();
/// for (n, v) in [
///     ("REQUEST_METHOD", "POST"),
///     ("REQUEST_URI", "/api/items?page=2"),
///     ("SERVER_PROTOCOL", "HTTP/1.1"),
///     ("HTTPS", "on"),
///     ("HTTP_HOST", "example.com"),
///     ("CONTENT_TYPE", "application/json"),
///     ("CONTENT_LENGTH", "17"),
///     ("REMOTE_ADDR", "192.0.2.7"),
///     ("REMOTE_PORT", "50123"),
/// ] {
///     p.push(n.as_bytes(), v.as_bytes())?;
/// }
/// let parts = request_parts(&p, Role::Responder)?;
/// assert_eq!(parts.method, http::Method::POST);
/// assert_eq!(parts.uri, "https://example.com/api/items?page=2");
/// assert_eq!(parts.uri.path(), "/api/items");
/// assert_eq!(parts.headers["content-length"], "17");
/// let conn = parts.extensions.get::<HttpConn>().unwrap();
/// assert_eq!(conn.remote(), Some("192.0.2.7:50123".parse()?));
/// // With the `axum` feature, the same address for axum's `ConnectInfo` extractor:
/// # #[cfg(feature = "axum")]
/// assert_eq!(
///     parts
///         .extensions
///         .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
///         .map(|info| info.0),
///     conn.remote(),
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn request_parts(params: &Params, role: Role) -> Result<http::request::Parts, ParamsError> {
    let method = method(params, role)?;
    let conn = HttpConn::from_params(params);
    let headers = headers(params)?;
    let uri = uri(params, &headers, &conn)?;
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    parts.version = version(params.get(b"SERVER_PROTOCOL").unwrap_or_default());
    parts.headers = headers;
    #[cfg(feature = "axum")]
    if let Some(remote) = conn.remote() {
        parts.extensions.insert(axum::extract::ConnectInfo(remote));
    }
    parts.extensions.insert(conn);
    Ok(parts)
}

fn method(params: &Params, role: Role) -> Result<Method, ParamsError> {
    match params.get(b"REQUEST_METHOD") {
        Some(m) if !m.is_empty() => Method::from_bytes(m).map_err(|_| ParamsError::InvalidMethod),
        _ if role == Role::Authorizer => Ok(Method::GET),
        _ => Err(ParamsError::MissingMethod),
    }
}

/// `SERVER_PROTOCOL` → version (HTTP/1.1 for anything unknown).
fn version(protocol: &[u8]) -> Version {
    match protocol {
        b"HTTP/0.9" => Version::HTTP_09,
        b"HTTP/1.0" => Version::HTTP_10,
        b"HTTP/2.0" | b"HTTP/2" => Version::HTTP_2,
        b"HTTP/3.0" | b"HTTP/3" => Version::HTTP_3,
        _ => Version::HTTP_11,
    }
}

fn headers(params: &Params) -> Result<HeaderMap, ParamsError> {
    let mut map = HeaderMap::with_capacity(params.len());
    let cgi_type = params.get(b"CONTENT_TYPE").filter(|v| !v.is_empty());
    let cgi_length = params.get(b"CONTENT_LENGTH").filter(|v| !v.is_empty());
    for (name, value) in params.iter() {
        let Some(suffix) = name.strip_prefix(b"HTTP_") else {
            continue;
        };
        if suffix.is_empty()
            || suffix == b"CONTENT_LENGTH"
            || (suffix == b"CONTENT_TYPE" && cgi_type.is_some())
            // Fields that describe the client's connection to the web server.
            || crate::hop::is_hop_by_hop_cgi(suffix)
        {
            continue;
        }
        let header: Vec<u8> = suffix
            .iter()
            .map(|&b| match b {
                b'_' => b'-',
                b => b.to_ascii_lowercase(),
            })
            .collect();
        match (
            HeaderName::from_bytes(&header),
            HeaderValue::from_bytes(value),
        ) {
            // Appended: a web server that sends a repeated header as repeated params
            // (nginx before 1.23) keeps every value, in order. `Host` is one value (the
            // last, as the URI's authority is built from it).
            (Ok(n), Ok(v)) if n == header::HOST => {
                map.insert(n, v);
            }
            (Ok(n), Ok(v)) => {
                map.append(n, v);
            }
            _ => crate::__log_debug!(
                target: "fcgi_http::app",
                param = %String::from_utf8_lossy(name),
                "skipping a param that is not a valid HTTP header"
            ),
        }
    }
    if let Some(t) = cgi_type {
        if let Ok(v) = HeaderValue::from_bytes(t) {
            map.insert(header::CONTENT_TYPE, v);
        } else {
            crate::__log_debug!(target: "fcgi_http::app", "skipping an invalid CONTENT_TYPE");
        }
    }
    if let Some(len) = cgi_length {
        let n = parse_decimal(len).ok_or(ParamsError::InvalidContentLength)?;
        map.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    Ok(map)
}

/// A decimal `u64`: digits only (no sign, no spaces), overflow refused.
pub(crate) fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 20 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |acc, d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// The request body length `CONTENT_LENGTH` announces (`None`: not given or empty).
pub(crate) fn content_length(params: &Params) -> Result<Option<u64>, ParamsError> {
    match params.get(b"CONTENT_LENGTH").filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => parse_decimal(v)
            .map(Some)
            .ok_or(ParamsError::InvalidContentLength),
    }
}

fn uri(params: &Params, headers: &HeaderMap, conn: &HttpConn) -> Result<Uri, ParamsError> {
    let target = target(params)?;
    let Some(pq) = target else {
        return Ok(Uri::from_static("*"));
    };
    let authority = headers
        .get(header::HOST)
        .and_then(|h| Authority::try_from(h.as_bytes()).ok())
        // A Host header is host[:port]; userinfo has no place in it.
        .filter(|a| !a.as_str().contains('@') && !a.host().is_empty());
    let mut parts = http::uri::Parts::default();
    if let Some(authority) = authority {
        parts.scheme = Some(conn.scheme());
        parts.authority = Some(authority);
    }
    parts.path_and_query = Some(pq);
    Uri::from_parts(parts).map_err(|_| ParamsError::InvalidUri)
}

/// The request target's path and query; `None` for the `*` target (`OPTIONS *`).
fn target(params: &Params) -> Result<Option<PathAndQuery>, ParamsError> {
    let raw = match params.get(b"REQUEST_URI").filter(|v| !v.is_empty()) {
        Some(uri) => uri.to_vec(),
        None => {
            let mut t = Vec::new();
            for name in [&b"SCRIPT_NAME"[..], b"PATH_INFO"] {
                // Decoded values: `%`, `?` and `#` are data here, not syntax.
                encode(&mut t, params.get(name).unwrap_or_default(), |b| {
                    !matches!(b, b'%' | b'?' | b'#') && !must_encode(b)
                });
            }
            if t.first() != Some(&b'/') {
                t.insert(0, b'/');
            }
            if let Some(q) = params.get(b"QUERY_STRING").filter(|q| !q.is_empty()) {
                t.push(b'?');
                t.extend_from_slice(q);
            }
            t
        }
    };
    if raw == b"*" {
        return Ok(None);
    }
    if raw.first() == Some(&b'/') {
        return origin_form(&raw).map(Some);
    }
    // Absolute form (`http://host/path`): keep its path and query.
    let uri = Uri::try_from(&escape(&raw, |b| !must_encode(b))[..])
        .map_err(|_| ParamsError::InvalidUri)?;
    match (uri.scheme(), uri.path_and_query()) {
        (Some(_), Some(pq)) if pq.as_str().starts_with('/') => Ok(Some(pq.clone())),
        (Some(_), _) => Ok(Some(PathAndQuery::from_static("/"))),
        _ => Err(ParamsError::InvalidUri),
    }
}

/// An origin-form target, as received when it parses, percent-encoded as little as needed
/// otherwise (routers match the raw path, so every change is kept to what is unavoidable).
fn origin_form(raw: &[u8]) -> Result<PathAndQuery, ParamsError> {
    let light = escape(raw, |b| !must_encode(b));
    if let Ok(pq) = PathAndQuery::try_from(&light[..]) {
        return Ok(pq);
    }
    let strict = escape(raw, is_uri_char);
    PathAndQuery::try_from(&strict[..]).map_err(|_| ParamsError::InvalidUri)
}

/// Bytes no URI may hold as they are: controls, space, DEL, non-ASCII, and `#` (a fragment
/// is never sent, so a raw `#` is data; the `http` crate would cut the target there).
fn must_encode(b: u8) -> bool {
    b <= b' ' || b >= 0x7f || b == b'#'
}

/// RFC 3986 characters of a path and query: unreserved, sub-delims, `:`, `@`, `/`, `?`, `%`.
fn is_uri_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b)
}

fn escape(raw: &[u8], keep: impl Fn(u8) -> bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    encode(&mut out, raw, keep);
    out
}

fn encode(out: &mut Vec<u8>, raw: &[u8], keep: impl Fn(u8) -> bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in raw {
        if keep(b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

#[cfg(all(test, feature = "axum"))]
mod axum_tests {
    #![allow(clippy::unwrap_used)]

    use std::net::SocketAddr;

    use axum::extract::ConnectInfo;
    use fcgi_core::{Params, Role};

    fn parts(pairs: &[(&str, &str)]) -> http::request::Parts {
        let mut p = Params::new();
        p.push(&b"REQUEST_METHOD"[..], &b"GET"[..]).unwrap();
        p.push(&b"REQUEST_URI"[..], &b"/"[..]).unwrap();
        for (n, v) in pairs {
            p.push(n.as_bytes(), v.as_bytes()).unwrap();
        }
        super::request_parts(&p, Role::Responder).unwrap()
    }

    fn connect_info(parts: &http::request::Parts) -> Option<SocketAddr> {
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0)
    }

    #[test]
    fn connect_info_is_the_remote_address_ipv6_included() {
        let p = parts(&[("REMOTE_ADDR", "2001:db8::7"), ("REMOTE_PORT", "61000")]);
        assert_eq!(
            connect_info(&p),
            Some("[2001:db8::7]:61000".parse().unwrap())
        );
    }

    #[test]
    fn no_connect_info_without_both_address_and_port() {
        assert_eq!(connect_info(&parts(&[("REMOTE_ADDR", "192.0.2.7")])), None);
        assert_eq!(connect_info(&parts(&[("REMOTE_PORT", "50123")])), None);
        // A web server on a Unix socket sends `unix:` as the address.
        let p = parts(&[("REMOTE_ADDR", "unix:"), ("REMOTE_PORT", "0")]);
        assert_eq!(connect_info(&p), None);
    }
}
