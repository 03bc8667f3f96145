//! Incremental, sans-IO parser for the head of a CGI response (RFC 3875 §6).
//!
//! A FastCGI Responder writes a CGI response on its `FCGI_STDOUT` stream: a block of header
//! fields ending in an empty line, then the body. [`CgiResponseParser`] is fed the stream's
//! pieces in order, as they arrive, and once it has seen the empty line it returns a
//! [`ParsedHead`]: either an HTTP response head ([`http::response::Parts`]) or a local
//! redirect that the gateway must re-dispatch ([`Head::InternalRedirect`]), together with the
//! body bytes that followed the head in the same piece. Every later piece of the stream is body
//! and goes straight to the caller's body: the parser never holds body bytes.
//!
//! # Rules applied to the head
//!
//! * The header block is parsed with [`httparse::parse_headers`]. Lines may end in CRLF or in
//!   a bare LF (httparse accepts both; php-fpm writes CRLF, some CGI programs write LF).
//!   Continuation lines (obs-fold), bytes that are not allowed in a field name, and CR, LF or
//!   NUL inside a field are rejected. The head, including its empty line, may be at most
//!   [`ParserConfig::max_head_len`] bytes (64 KiB by default).
//! * `Status: 404` and `Status: 404 Not Found` set the status; the reason phrase is optional
//!   and is dropped (the HTTP layer writes its own). A code outside `200..=599`, anything but
//!   three digits, or more than one `Status` field is an error: a CGI response is a final
//!   response, so 1xx is refused.
//! * A `Location` whose value starts with `/` is a local redirect. Without `Status` it becomes
//!   [`Head::InternalRedirect`] (or a 302 response, see [`LocalRedirect`]); the rest of the
//!   head and the body are then meaningless to the client. Any other `Location` without
//!   `Status` is a client redirect: 302 Found, `Location` passed on unchanged. With a `Status`
//!   field, the `Status` wins and `Location` is passed on unchanged. More than one `Location`
//!   is an error.
//! * Neither `Status` nor `Location`: 200 OK.
//! * `Content-Type` is not invented unless [`ParserConfig::default_content_type`] is set, in
//!   which case it is added to responses that lack one (except 204 and 304, which carry no
//!   body).
//! * Not passed on: the `Status` field itself, the hop-by-hop or framing fields
//!   `Connection`, `Keep-Alive`, `Transfer-Encoding`, `TE`, `Trailer`, `Upgrade` and
//!   `Proxy-Connection`, and every field the application's `Connection` names
//!   (`Connection: close, X-Secret`): they describe the backend connection, not the
//!   client one.
//!   `Content-Length` is passed on only when every copy of it is the same plain decimal number;
//!   otherwise all copies are dropped and the HTTP layer frames the body itself.

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::PathAndQuery;
use http::{Response, StatusCode};

/// Default for [`ParserConfig::max_head_len`]: 64 KiB.
pub const DEFAULT_MAX_HEAD_LEN: usize = 64 * 1024;

/// What to do with a local redirect (`Location: /path` without `Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LocalRedirect {
    /// Return [`Head::InternalRedirect`] so that the gateway serves the path itself, as
    /// RFC 3875 §6.2.2 asks of the server. This is the default.
    #[default]
    Internal,
    /// Answer the client with 302 Found and the `Location` as written by the backend.
    Found302,
}

/// Settings of a [`CgiResponseParser`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ParserConfig {
    /// Largest accepted head in bytes, counting its terminating empty line. A head that does
    /// not end within this many bytes is [`CgiResponseError::HeadTooLarge`].
    pub max_head_len: usize,
    /// Handling of local redirects.
    pub local_redirect: LocalRedirect,
    /// `Content-Type` added to responses that have none (`None`, the default, adds nothing).
    pub default_content_type: Option<HeaderValue>,
}
fcgi_core::__option_setters!(ParserConfig {
    max_head_len: usize,
    local_redirect: LocalRedirect,
    default_content_type: Option<HeaderValue>,
});

impl Default for ParserConfig {
    fn default() -> Self {
        Self {
            max_head_len: DEFAULT_MAX_HEAD_LEN,
            local_redirect: LocalRedirect::default(),
            default_content_type: None,
        }
    }
}

/// The meaning of a complete CGI response head.
#[derive(Debug)]
pub enum Head {
    /// Send this response head to the client; the body follows.
    Response(http::response::Parts),
    /// A local redirect: the gateway should serve `path` as a new request and discard the
    /// rest of this response (its body included).
    InternalRedirect {
        /// The path and query from the `Location` field.
        path: PathAndQuery,
    },
}

/// A complete head and the body bytes that arrived with it.
#[derive(Debug)]
pub struct ParsedHead {
    /// The parsed head.
    pub head: Head,
    /// The bytes after the head in the piece that completed it (possibly empty). When that
    /// piece was given as [`Bytes`], this is a slice of it, not a copy.
    pub body: Bytes,
}

/// Why a CGI response could not be turned into an HTTP response. A gateway would answer
/// 502 Bad Gateway to all of them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CgiResponseError {
    /// The head did not end within the configured number of bytes.
    #[error("CGI response head longer than {max} bytes")]
    HeadTooLarge {
        /// The configured limit.
        max: usize,
    },
    /// httparse rejected the header block.
    #[error("malformed CGI response head: {0}")]
    Malformed(#[source] httparse::Error),
    /// The `Status` field is not a usable status, or occurs more than once.
    #[error("invalid CGI Status field")]
    BadStatus,
    /// A field name or value is not acceptable in an HTTP response, or `Location` is repeated.
    #[error("invalid CGI response header field {name:?}")]
    InvalidHeader {
        /// The field name as sent by the backend (lossily decoded).
        name: String,
    },
    /// The stream ended before the empty line that ends the head.
    #[error("CGI response ended before the end of its head ({buffered} bytes received)")]
    EndedBeforeHead {
        /// How many head bytes had been received.
        buffered: usize,
    },
    /// [`CgiResponseParser::feed`] was called after the parser returned a head or an error.
    #[error("CGI response parser already finished")]
    Finished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Done,
}

/// Incremental parser of the head of a CGI response; see the [module docs](self).
#[derive(Debug)]
pub struct CgiResponseParser {
    config: ParserConfig,
    /// Head bytes received so far, only when the head spans several pieces.
    buf: BytesMut,
    /// Bytes of `buf` already scanned for the empty line.
    scanned: usize,
    /// Start of the line being scanned.
    line_start: usize,
    /// Number of LFs seen so far (an upper bound on the number of header fields).
    lines: usize,
    state: State,
}

impl Default for CgiResponseParser {
    fn default() -> Self {
        Self::new(ParserConfig::default())
    }
}

impl CgiResponseParser {
    /// A parser with the given settings.
    pub fn new(config: ParserConfig) -> Self {
        Self {
            config,
            buf: BytesMut::new(),
            scanned: 0,
            line_start: 0,
            lines: 0,
            state: State::Head,
        }
    }

    /// Feeds the next piece of the stream. Returns `Ok(None)` while the head is incomplete,
    /// and `Ok(Some(_))` once, with the body bytes of this piece as a slice of `piece`. After
    /// that (or after an error) the parser is finished and every later piece is body.
    pub fn feed(&mut self, piece: Bytes) -> Result<Option<ParsedHead>, CgiResponseError> {
        Ok(self
            .feed_inner(&piece, Some(&piece))?
            .map(|(head, at)| ParsedHead {
                head,
                body: piece.slice(at..),
            }))
    }

    /// Like [`feed`](Self::feed) for a borrowed piece; the body bytes are copied.
    pub fn feed_slice(&mut self, piece: &[u8]) -> Result<Option<ParsedHead>, CgiResponseError> {
        Ok(self.feed_inner(piece, None)?.map(|(head, at)| ParsedHead {
            head,
            body: Bytes::copy_from_slice(&piece[at..]),
        }))
    }

    /// Reports the end of the stream: `Ok` if the head was complete, otherwise
    /// [`CgiResponseError::EndedBeforeHead`].
    pub fn finish(&mut self) -> Result<(), CgiResponseError> {
        match self.state {
            State::Done => Ok(()),
            State::Head => {
                self.state = State::Done;
                Err(CgiResponseError::EndedBeforeHead {
                    buffered: self.buf.len(),
                })
            }
        }
    }

    /// Whether the parser has returned a head or an error.
    pub fn is_finished(&self) -> bool {
        self.state == State::Done
    }

    /// Returns the head and the offset of the body in `piece`. `shared` is `piece` itself
    /// when the caller has it as `Bytes`: header values are then slices of it, not copies.
    fn feed_inner(
        &mut self,
        piece: &[u8],
        shared: Option<&Bytes>,
    ) -> Result<Option<(Head, usize)>, CgiResponseError> {
        if self.state == State::Done {
            return Err(CgiResponseError::Finished);
        }
        let result = self.step(piece, shared);
        if !matches!(result, Ok(None)) {
            self.state = State::Done;
            self.buf = BytesMut::new();
        }
        result
    }

    fn step(
        &mut self,
        piece: &[u8],
        shared: Option<&Bytes>,
    ) -> Result<Option<(Head, usize)>, CgiResponseError> {
        if piece.is_empty() {
            return Ok(None);
        }
        let max = self.config.max_head_len;
        let before = self.buf.len();
        // Bytes past `max` can never be part of an acceptable head: do not look at them.
        let take = piece.len().min(max.saturating_sub(before));
        let end = if before == 0 {
            // Fast path: scan the piece in place and only copy it if the head continues.
            self.scan(&piece[..take])
        } else {
            self.buf.extend_from_slice(&piece[..take]);
            let buf = std::mem::take(&mut self.buf);
            let end = self.scan(&buf);
            self.buf = buf;
            end
        };
        match end {
            Some(end) => {
                let head = if before == 0 {
                    self.parse(&piece[..end], shared)?
                } else {
                    let head = std::mem::take(&mut self.buf).split_to(end).freeze();
                    self.parse(&head, Some(&head))?
                };
                Ok(Some((head, end - before)))
            }
            // No empty line within `max` bytes: the head cannot fit.
            None if before + take >= max => Err(CgiResponseError::HeadTooLarge { max }),
            None => {
                if before == 0 {
                    self.buf.extend_from_slice(&piece[..take]);
                }
                Ok(None)
            }
        }
    }

    /// Scans `data` (the whole head so far) from where the last scan stopped, looking for the
    /// empty line. Returns the length of the head including that line.
    fn scan(&mut self, data: &[u8]) -> Option<usize> {
        let from = self.scanned;
        for i in memchr::memchr_iter(b'\n', &data[from..]).map(|i| i + from) {
            self.lines += 1;
            let line = &data[self.line_start..i];
            if line.is_empty() || line == b"\r" {
                return Some(i + 1);
            }
            self.line_start = i + 1;
        }
        self.scanned = data.len();
        None
    }

    /// Parses a complete head. When `shared` holds the bytes `head` lies in, header values are
    /// slices of it.
    fn parse(&self, head: &[u8], shared: Option<&Bytes>) -> Result<Head, CgiResponseError> {
        /// Fields parsed without a heap allocation (php-fpm sends 2 to 6).
        const ON_STACK: usize = 24;
        let mut on_stack = [httparse::EMPTY_HEADER; ON_STACK];
        let mut on_heap;
        let fields: &mut [httparse::Header<'_>] = if self.lines <= ON_STACK {
            &mut on_stack[..self.lines]
        } else {
            on_heap = vec![httparse::EMPTY_HEADER; self.lines];
            &mut on_heap
        };
        let fields = match httparse::parse_headers(head, fields) {
            Ok(httparse::Status::Complete((_, fields))) => fields,
            // The scan found the empty line, so httparse must see a complete block; report
            // a disagreement as the error httparse would give on a truncated head.
            Ok(httparse::Status::Partial) => {
                return Err(CgiResponseError::Malformed(httparse::Error::NewLine));
            }
            Err(e) => return Err(CgiResponseError::Malformed(e)),
        };
        self.interpret(fields, shared)
    }

    fn interpret(
        &self,
        fields: &[httparse::Header<'_>],
        shared: Option<&Bytes>,
    ) -> Result<Head, CgiResponseError> {
        let mut status: Option<StatusCode> = None;
        let mut location: Option<HeaderValue> = None;
        let mut content_length: Option<Option<HeaderValue>> = None;
        let mut headers = HeaderMap::with_capacity(fields.len());
        // Fields the application's own `Connection` names are hop-by-hop too (RFC 9110
        // §7.6.1): they describe its connection to us, and are never passed on.
        let listed: Vec<String> = fields
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case("connection"))
            .flat_map(|f| crate::hop::connection_tokens(f.value))
            .collect();

        for field in fields {
            let invalid = || CgiResponseError::InvalidHeader {
                name: field.name.to_owned(),
            };
            // CR, LF and NUL (and every other control but tab) are refused by `HeaderValue`.
            let name = HeaderName::from_bytes(field.name.as_bytes()).map_err(|_| invalid())?;
            if name.as_str() == "status" {
                if status.is_some() {
                    return Err(CgiResponseError::BadStatus);
                }
                status = Some(parse_status(field.value)?);
                continue;
            }
            let value = match shared {
                Some(bytes) => HeaderValue::from_maybe_shared(bytes.slice_ref(field.value)),
                None => HeaderValue::from_bytes(field.value),
            }
            .map_err(|_| invalid())?;
            if name == header::LOCATION {
                if location.is_some() {
                    return Err(invalid());
                }
                location = Some(value.clone());
            }
            if is_hop_by_hop(&name) || listed.iter().any(|l| l == name.as_str()) {
                continue;
            }
            if name == header::CONTENT_LENGTH {
                content_length = Some(match content_length {
                    None if is_decimal(field.value) => Some(value),
                    Some(Some(prev)) if prev == value => Some(prev),
                    _ => None,
                });
                continue;
            }
            headers.append(name, value);
        }

        let status = match (status, &location) {
            (Some(status), _) => status,
            (None, Some(loc)) if loc.as_bytes().first() == Some(&b'/') => {
                match self.config.local_redirect {
                    LocalRedirect::Internal => {
                        let path = PathAndQuery::try_from(loc.as_bytes()).map_err(|_| {
                            CgiResponseError::InvalidHeader {
                                name: "Location".to_owned(),
                            }
                        })?;
                        return Ok(Head::InternalRedirect { path });
                    }
                    LocalRedirect::Found302 => StatusCode::FOUND,
                }
            }
            (None, Some(_)) => StatusCode::FOUND,
            (None, None) => StatusCode::OK,
        };

        if let Some(Some(len)) = content_length {
            headers.insert(header::CONTENT_LENGTH, len);
        }
        if let Some(ct) = &self.config.default_content_type
            && status != StatusCode::NO_CONTENT
            && status != StatusCode::NOT_MODIFIED
            && !headers.contains_key(header::CONTENT_TYPE)
        {
            headers.insert(header::CONTENT_TYPE, ct.clone());
        }

        let (mut parts, ()) = Response::new(()).into_parts();
        parts.status = status;
        parts.headers = headers;
        Ok(Head::Response(parts))
    }
}

/// `Status` value: three digits, optionally followed by whitespace and a reason phrase.
fn parse_status(value: &[u8]) -> Result<StatusCode, CgiResponseError> {
    let code = value.get(..3).ok_or(CgiResponseError::BadStatus)?;
    match value.get(3) {
        None | Some(b' ' | b'\t') => {}
        Some(_) => return Err(CgiResponseError::BadStatus),
    }
    if !code.iter().all(u8::is_ascii_digit) {
        return Err(CgiResponseError::BadStatus);
    }
    let status = StatusCode::from_bytes(code).map_err(|_| CgiResponseError::BadStatus)?;
    if !(200..=599).contains(&status.as_u16()) {
        return Err(CgiResponseError::BadStatus);
    }
    Ok(status)
}

fn is_decimal(value: &[u8]) -> bool {
    !value.is_empty() && value.len() <= 19 && value.iter().all(u8::is_ascii_digit)
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    crate::hop::is_hop_by_hop(name.as_str())
}
