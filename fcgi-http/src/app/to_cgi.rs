//! An HTTP response head → the CGI header block written on `FCGI_STDOUT` (RFC 3875 §6).

use bytes::{BufMut, BytesMut};
use http::header::{self, HeaderMap, HeaderName};
use http::{Method, StatusCode};
use http_body::SizeHint;

/// Whether `name` is a header [`encode_head`] leaves out: the hop-by-hop headers
/// `Connection`, `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding`,
/// `Upgrade` (they belong to a connection, not to the response: the web server frames the
/// body for its client itself), and `Status` (the status line comes from the status code).
pub fn is_dropped(name: &HeaderName) -> bool {
    name.as_str() == "status" || crate::hop::is_hop_by_hop(name.as_str())
}

/// Appends the CGI header block of a response to `out`: the `Status` line, each header as
/// `Name: value` (one line per value of a repeated header), and the empty line.
///
/// - A `Status` line is always written, `Status: 404 Not Found` (just `Status: 599` when the
///   code has no canonical reason), so the web server never has to guess (without it, a CGI
///   response with a `Location: /path` header is a *local redirect*).
/// - Names are written in the usual `Title-Case` (`Content-Type`), which changes nothing for
///   web servers (they compare names without case) but is what CGI programs have always
///   written. An Authorizer's variables are the exception: `Variable-` followed by the
///   variable name in **upper case** (`variable-remote_user` → `Variable-REMOTE_USER`),
///   because [`HeaderName`] keeps names in lower case only and CGI variables are upper case
///   by convention; the web server exports the name as written.
/// - Hop-by-hop headers and `Status` are left out ([`is_dropped`]); `Content-Length` is kept
///   (nginx uses it to frame the response to its client and to keep connections alive).
///   Values are written as they are: [`http::HeaderValue`] already refuses CR, LF and NUL, so
///   no header can inject another.
///
/// ```
/// use bytes::BytesMut;
/// let mut headers = http::HeaderMap::new();
/// headers.insert("content-type", "text/plain".parse()?);
/// headers.append("set-cookie", "a=1".parse()?);
/// headers.append("set-cookie", "b=2".parse()?);
/// headers.insert("connection", "close".parse()?);
/// let mut out = BytesMut::new();
/// fcgi_http::app::encode_head(http::StatusCode::NOT_FOUND, &headers, &mut out);
/// assert_eq!(
///     &out[..],
///     b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\
///       Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn encode_head(status: StatusCode, headers: &HeaderMap, out: &mut BytesMut) {
    out.put_slice(b"Status: ");
    out.put_slice(status.as_str().as_bytes());
    if let Some(reason) = status.canonical_reason() {
        out.put_u8(b' ');
        out.put_slice(reason.as_bytes());
    }
    out.put_slice(b"\r\n");
    for (name, value) in headers {
        if is_dropped(name) {
            continue;
        }
        put_name(name.as_str().as_bytes(), out);
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"\r\n");
}

fn put_name(name: &[u8], out: &mut BytesMut) {
    if let Some(var) = name.strip_prefix(b"variable-") {
        out.put_slice(b"Variable-");
        out.extend(var.iter().map(u8::to_ascii_uppercase));
        return;
    }
    let mut upper = true;
    for &b in name {
        out.put_u8(if upper { b.to_ascii_uppercase() } else { b });
        upper = b == b'-';
    }
}

/// Adds `Content-Length` from the body's exact size when the service did not set one, as an
/// HTTP server (hyper) would: with it, nginx can answer an HTTP/1.0 client without closing
/// the connection and skip chunked encoding for an HTTP/1.1 one. Not for responses that carry
/// no body (1xx, 204, 304), nor for `HEAD`, whose empty body says nothing about the length.
pub(crate) fn add_content_length(
    status: StatusCode,
    method: &Method,
    hint: &SizeHint,
    headers: &mut HeaderMap,
) {
    if headers.contains_key(header::CONTENT_LENGTH)
        || headers.contains_key(header::TRANSFER_ENCODING)
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || method == Method::HEAD
    {
        return;
    }
    if let Some(n) = hint.exact() {
        headers.insert(header::CONTENT_LENGTH, n.into());
    }
}
