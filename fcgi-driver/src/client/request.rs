//! What the caller sends: role, params and body streams.

use std::fmt;
use std::io;
use std::pin::Pin;

use bytes::Bytes;
use fcgi_core::{Params, Role};
use futures_core::Stream;

/// A boxed stream of body pieces.
pub type BodyStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send + 'static>>;

/// A request body (`STDIN`) or Filter data file (`DATA`).
#[derive(Default)]
#[non_exhaustive]
pub enum RequestBody {
    /// No bytes.
    #[default]
    Empty,
    /// Bytes known up front. Replayable: a request with such a body is retried once on a
    /// fresh connection if a pooled connection turns out dead before any response byte.
    Full(Bytes),
    /// Bytes produced as the request runs (streamed with back-pressure; not replayable).
    Stream(BodyStream),
}

impl RequestBody {
    /// A streamed body.
    pub fn stream(s: impl Stream<Item = io::Result<Bytes>> + Send + 'static) -> Self {
        Self::Stream(Box::pin(s))
    }

    /// The body to send, leaving what a retry could send again: a `Full` body is shared
    /// (a reference count, no copy), a stream is moved out (and cannot be sent twice).
    pub(crate) fn take_for_send(&mut self) -> Self {
        match self {
            Self::Empty => Self::Empty,
            Self::Full(b) => Self::Full(b.clone()),
            Self::Stream(_) => std::mem::take(self),
        }
    }

    /// Whether the body can be sent again.
    pub(crate) fn is_replayable(&self) -> bool {
        !matches!(self, Self::Stream(_))
    }
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("Empty"),
            Self::Full(b) => write!(f, "Full({} bytes)", b.len()),
            Self::Stream(_) => f.write_str("Stream"),
        }
    }
}

impl From<Bytes> for RequestBody {
    fn from(b: Bytes) -> Self {
        if b.is_empty() {
            Self::Empty
        } else {
            Self::Full(b)
        }
    }
}

impl From<Vec<u8>> for RequestBody {
    fn from(v: Vec<u8>) -> Self {
        Bytes::from(v).into()
    }
}

impl From<&'static str> for RequestBody {
    fn from(s: &'static str) -> Self {
        Bytes::from_static(s.as_bytes()).into()
    }
}

/// A request for a FastCGI application.
///
/// ```
/// use fcgi_driver::client::ClientRequest;
/// let req = ClientRequest::responder()
///     .param("REQUEST_METHOD", "POST")
///     .param("CONTENT_LENGTH", "5")
///     .stdin("hello");
/// assert_eq!(req.params().get_str("REQUEST_METHOD"), Some("POST"));
/// ```
#[derive(Debug)]
pub struct ClientRequest {
    pub(crate) role: Role,
    pub(crate) params: Params,
    pub(crate) stdin: RequestBody,
    pub(crate) data: RequestBody,
    pub(crate) error: Option<fcgi_core::Error>,
    /// Whether the retry-once rule may send it again.
    pub(crate) retry: bool,
}

impl ClientRequest {
    /// A request in `role` with no params and empty bodies.
    pub fn new(role: Role) -> Self {
        Self {
            role,
            params: Params::new(),
            stdin: RequestBody::Empty,
            data: RequestBody::Empty,
            error: None,
            retry: true,
        }
    }

    /// A Responder request (the CGI role).
    pub fn responder() -> Self {
        Self::new(Role::Responder)
    }

    /// An Authorizer request (params only).
    pub fn authorizer() -> Self {
        Self::new(Role::Authorizer)
    }

    /// A Filter request (params, body, data file).
    pub fn filter() -> Self {
        Self::new(Role::Filter)
    }

    /// A Responder request preset for php-fpm, with what php-fpm needs to find and run a
    /// script: `SCRIPT_FILENAME` (`document_root` + `script_name`), `SCRIPT_NAME`,
    /// `DOCUMENT_ROOT`, `REQUEST_METHOD`, `REQUEST_URI`, `QUERY_STRING`, `DOCUMENT_URI`,
    /// `REDIRECT_STATUS=200` (php-cgi's `cgi.force_redirect` wants it),
    /// `GATEWAY_INTERFACE=CGI/1.1`, `SERVER_PROTOCOL=HTTP/1.1` and `SERVER_SOFTWARE`.
    /// Add the rest (`CONTENT_TYPE`, `HTTP_*`, addresses) with [`param`](Self::param).
    ///
    /// php-fpm reads a body only when `CONTENT_LENGTH` is set: a body whose length is known
    /// (bytes, not a stream) gets it at [`send`](crate::client::Client::send) unless the
    /// request already has one; a streamed body without it is sent as it is, with a warning
    /// logged (the `tracing` feature) — set `CONTENT_LENGTH` when you know the length.
    ///
    /// ```
    /// use fcgi_driver::client::ClientRequest;
    /// let req = ClientRequest::php_fpm("GET", "/var/www", "/index.php", "a=1");
    /// assert_eq!(req.params().get_str("SCRIPT_FILENAME"), Some("/var/www/index.php"));
    /// assert_eq!(req.params().get_str("REQUEST_URI"), Some("/index.php?a=1"));
    /// ```
    pub fn php_fpm(method: &str, document_root: &str, script_name: &str, query: &str) -> Self {
        let root = document_root.trim_end_matches('/');
        let uri = if query.is_empty() {
            script_name.to_owned()
        } else {
            format!("{script_name}?{query}")
        };
        Self::responder()
            .param("GATEWAY_INTERFACE", "CGI/1.1")
            .param(
                "SERVER_SOFTWARE",
                concat!("fcgi/", env!("CARGO_PKG_VERSION")),
            )
            .param("SERVER_PROTOCOL", "HTTP/1.1")
            .param("REQUEST_METHOD", method)
            .param("REQUEST_URI", &uri)
            .param("DOCUMENT_URI", script_name)
            .param("QUERY_STRING", query)
            .param("SCRIPT_NAME", script_name)
            .param("SCRIPT_FILENAME", format!("{root}{script_name}"))
            .param("DOCUMENT_ROOT", root)
            .param("REDIRECT_STATUS", "200")
    }

    /// Adds a param. (A name or value of 2^31 bytes or more makes `send` fail.)
    #[must_use]
    pub fn param(mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Self {
        self.push_param(name, value);
        self
    }

    /// Adds a param in place.
    pub fn push_param(&mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        if let Err(e) = self.params.push(name.as_ref(), value.as_ref()) {
            self.error.get_or_insert(e);
        }
    }

    /// Replaces all params.
    #[must_use]
    pub fn params_from(mut self, params: Params) -> Self {
        self.params = params;
        self
    }

    /// The params so far.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Sets the body (`STDIN`). Bytes (a known length) get a `CONTENT_LENGTH` param at
    /// send unless one is set; a stream does not (set it yourself when you know the length:
    /// php-fpm ignores a body without it; with the `tracing` feature a warning says so).
    #[must_use]
    pub fn stdin(mut self, body: impl Into<RequestBody>) -> Self {
        self.stdin = body.into();
        self
    }

    /// Sets the Filter data file (`DATA`).
    #[must_use]
    pub fn data(mut self, body: impl Into<RequestBody>) -> Self {
        self.data = body.into();
        self
    }

    /// Whether the client may send this request a second time, on a fresh connection, when
    /// the pooled connection it went out on dies before any response byte (the retry-once
    /// rule; it also needs replayable bodies). Default `true`.
    ///
    /// Turn it off for requests whose effects must not happen twice: the application may have
    /// read the whole request and acted on it before dying. nginx never retries
    /// non-idempotent requests (POST, PATCH, LOCK) unless told to; `fcgi-http`'s gateway turns
    /// this off for every method that is not idempotent.
    ///
    /// ```
    /// use fcgi_driver::client::ClientRequest;
    /// let post = ClientRequest::php_fpm("POST", "/var/www", "/buy.php", "")
    ///     .stdin("qty=1")
    ///     .retry_on_dead_connection(false);
    /// # let _ = post;
    /// ```
    #[must_use]
    pub fn retry_on_dead_connection(mut self, allowed: bool) -> Self {
        self.retry = allowed;
        self
    }

    /// Declares the body's length when it is known and the caller declared none: CGI
    /// applications (php-fpm first) read `CONTENT_LENGTH` bytes of `STDIN` and ignore a body
    /// without it, silently. A stream's length is not known: it goes as it is, and a warning
    /// says why the application may not see it.
    pub(crate) fn declare_body_length(&mut self) {
        if !self.role.reads_stdin() || self.params.get(b"CONTENT_LENGTH").is_some() {
            return;
        }
        match &self.stdin {
            RequestBody::Empty => {}
            RequestBody::Full(body) => {
                let len = body.len().to_string();
                self.push_param("CONTENT_LENGTH", len);
            }
            RequestBody::Stream(_) => crate::log::warn(
                "a streamed request body without CONTENT_LENGTH: CGI applications such as \
                 php-fpm ignore it; set CONTENT_LENGTH when the length is known",
                &self.role,
            ),
        }
    }

    /// Whether the retry-once rule may send this request again.
    pub(crate) fn replayable(&self) -> bool {
        self.retry && self.stdin.is_replayable() && self.data.is_replayable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lengths(req: &ClientRequest) -> Vec<&[u8]> {
        req.params().get_all(b"CONTENT_LENGTH").collect()
    }

    #[test]
    fn a_known_body_length_is_declared_once() {
        let mut req = ClientRequest::php_fpm("POST", "/srv", "/a.php", "").stdin("hello");
        req.declare_body_length();
        assert_eq!(lengths(&req), [&b"5"[..]]);
        req.declare_body_length();
        assert_eq!(lengths(&req), [&b"5"[..]], "declared once");
    }

    #[test]
    fn the_callers_content_length_stands() {
        let mut req = ClientRequest::responder()
            .param("CONTENT_LENGTH", "3")
            .stdin("hello");
        req.declare_body_length();
        assert_eq!(lengths(&req), [&b"3"[..]]);
    }

    #[test]
    fn no_length_for_no_body_a_stream_or_a_role_without_stdin() {
        let mut empty = ClientRequest::responder();
        empty.declare_body_length();
        assert!(lengths(&empty).is_empty());
        let mut stream = ClientRequest::responder().stdin(RequestBody::stream(one_piece_stream()));
        stream.declare_body_length();
        assert!(lengths(&stream).is_empty());
        let mut authorizer = ClientRequest::authorizer().stdin("ignored");
        authorizer.declare_body_length();
        assert!(lengths(&authorizer).is_empty());
    }

    /// A stream with one piece (no stream crate needed).
    fn one_piece_stream() -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        struct Once(Option<Bytes>);
        impl Stream for Once {
            type Item = io::Result<Bytes>;
            fn poll_next(
                mut self: Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Option<Self::Item>> {
                std::task::Poll::Ready(self.0.take().map(Ok))
            }
        }
        Once(Some(Bytes::from_static(b"abc")))
    }
}
