//! The body of a response coming from a FastCGI application, and how the request ended.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use fcgi_driver::client::{ClientError, ClientResponse, ResponseEnd};
use futures_core::Stream;
use http_body::{Body, Frame, SizeHint};

type ChunkStream = Pin<Box<dyn Stream<Item = Result<Bytes, ClientError>> + Send + 'static>>;

/// The body of a static file (see [`StaticFiles`](super::StaticFiles)).
type FileBody = Pin<Box<dyn Body<Data = Bytes, Error = std::io::Error> + Send + 'static>>;

/// How a FastCGI request ended, attached to every response the gateway returns from the
/// application (as a response extension) and filled in when the body has been read to its
/// end: the application status and the `STDERR` output (also logged as a `tracing` warn
/// event, like nginx's "FastCGI sent in stderr").
///
/// ```
/// # fn f(response: &http::Response<fcgi_http::gateway::GatewayBody>) {
/// use fcgi_http::gateway::Outcome;
/// // ... after reading the body to its end:
/// if let Some(end) = response.extensions().get::<Outcome>().and_then(Outcome::end) {
///     eprintln!("app status {}, stderr {:?}", end.app_status, end.stderr);
/// }
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    end: Arc<Mutex<Option<ResponseEnd>>>,
}

impl Outcome {
    /// How the request ended; `None` until the body has been read to its end, or if it failed.
    pub fn end(&self) -> Option<ResponseEnd> {
        match self.end.lock() {
            Ok(slot) => slot.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(crate) fn set(&self, end: ResponseEnd) {
        match self.end.lock() {
            Ok(mut slot) => *slot = Some(end),
            Err(poisoned) => *poisoned.into_inner() = Some(end),
        }
    }
}

/// The body of a gateway response: the application's `STDOUT` after the head, streamed as
/// it arrives (never buffered whole), or a short body the gateway made itself (error pages).
///
/// A body that ends because the backend failed (truncated stream, timeout) ends with an
/// error, never as a short success: an HTTP server then aborts the response instead of
/// presenting a partial one as complete. Dropping the body before its end aborts the FastCGI
/// request (`ABORT_REQUEST` on a multiplexed connection, closing it otherwise).
pub struct GatewayBody {
    kind: Kind,
}

enum Kind {
    Full(Option<Bytes>),
    File(FileBody),
    Stream {
        first: Option<Bytes>,
        rest: Option<ChunkStream>,
        /// Body bytes still due under the head's `Content-Length`, if it had one.
        due: Option<u64>,
        /// Body bytes passed on so far.
        received: u64,
        /// A failure held back for one poll (see `poll_frame`).
        fault: Option<GatewayBodyError>,
    },
}

impl fmt::Debug for GatewayBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Full(b) => write!(
                f,
                "GatewayBody::Full({:?} bytes)",
                b.as_ref().map(Bytes::len)
            ),
            Kind::File(_) => f.write_str("GatewayBody::File"),
            Kind::Stream { .. } => f.write_str("GatewayBody::Stream"),
        }
    }
}

impl GatewayBody {
    /// A body of known bytes.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self {
            kind: Kind::Full((!bytes.is_empty()).then_some(bytes)),
        }
    }

    /// An empty body.
    pub fn empty() -> Self {
        Self {
            kind: Kind::Full(None),
        }
    }

    /// A static file's body (what a [`StaticFiles`](super::StaticFiles) answers with).
    pub fn file(body: impl Body<Data = Bytes, Error = std::io::Error> + Send + 'static) -> Self {
        Self {
            kind: Kind::File(Box::pin(body)),
        }
    }

    /// The whole body of a response that ended already; `content_length` is what the head
    /// announced (bytes beyond it are dropped).
    pub(crate) fn complete(body: Bytes, content_length: Option<u64>) -> Self {
        Self {
            kind: Kind::Stream {
                first: (!body.is_empty()).then_some(body),
                rest: None,
                due: content_length,
                received: 0,
                fault: None,
            },
        }
    }

    /// The rest of `response`'s `STDOUT`, after `first` (body bytes that came with the head).
    /// At the end, `outcome` is filled in. `content_length` is what the head announced (when
    /// the response has a body at all): fewer bytes is an error, more are dropped.
    pub(crate) fn stream(
        first: Bytes,
        response: ClientResponse,
        outcome: Outcome,
        content_length: Option<u64>,
    ) -> Self {
        let rest = futures_util::stream::unfold(Some((response, outcome)), |state| async move {
            let (mut response, outcome) = state?;
            loop {
                match response.chunk().await {
                    Some(Ok(piece)) if piece.is_empty() => continue,
                    Some(Ok(piece)) => return Some((Ok(piece), Some((response, outcome)))),
                    Some(Err(error)) => return Some((Err(error), None)),
                    None => {
                        return match response.finish().await {
                            Ok(end) => {
                                report(&end);
                                outcome.set(end);
                                None
                            }
                            Err(error) => Some((Err(error), None)),
                        };
                    }
                }
            }
        });
        Self {
            kind: Kind::Stream {
                first: (!first.is_empty()).then_some(first),
                rest: Some(Box::pin(rest)),
                due: content_length,
                received: 0,
                fault: None,
            },
        }
    }
}

/// Logs what a finished request left on `STDERR`, and a non-zero application status.
pub(crate) fn report(end: &ResponseEnd) {
    if !end.stderr.is_empty() {
        crate::__log_warn!(
            target: "fcgi_http::gateway",
            stderr = %String::from_utf8_lossy(&end.stderr).trim_end(),
            dropped = end.stderr_dropped,
            "FastCGI sent in stderr"
        );
    }
    if end.app_status != 0 {
        crate::__log_debug!(target: "fcgi_http::gateway", app_status = end.app_status, "FastCGI application status");
    }
}

/// The body failed after the response head was returned: an HTTP server then cuts the
/// response off instead of presenting it as complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayBodyError {
    /// The FastCGI exchange broke (connection lost, timeout, protocol error).
    #[error("FastCGI response body failed: {0}")]
    Backend(#[from] ClientError),
    /// Reading a static file failed.
    #[error("reading a static file failed: {0}")]
    File(#[source] std::io::Error),
    /// The application ended its response before the `Content-Length` it announced.
    #[error("FastCGI response body ended after {received} of the {expected} bytes announced")]
    Short {
        /// The announced length.
        expected: u64,
        /// The bytes received.
        received: u64,
    },
}

/// Applies the announced length to a piece of body: the part of it that is due (nginx, too,
/// drops what goes beyond `Content-Length`, with a warning).
fn within(due: &mut Option<u64>, received: &mut u64, mut piece: Bytes) -> Option<Bytes> {
    if let Some(left) = due {
        if piece.len() as u64 > *left {
            crate::__log_warn!(
                target: "fcgi_http::gateway",
                extra = piece.len() as u64 - *left,
                "FastCGI application sent more than its Content-Length; the rest is dropped"
            );
            piece.truncate(*left as usize);
        }
        *left -= piece.len() as u64;
    }
    *received += piece.len() as u64;
    (!piece.is_empty()).then_some(piece)
}

impl Body for GatewayBody {
    type Data = Bytes;
    type Error = GatewayBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, GatewayBodyError>>> {
        match &mut self.get_mut().kind {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::File(body) => body
                .as_mut()
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(GatewayBodyError::File))),
            Kind::Stream {
                first,
                rest,
                due,
                received,
                fault,
            } => {
                if let Some(fault) = fault.take() {
                    return Poll::Ready(Some(Err(fault)));
                }
                if let Some(b) = first.take()
                    && let Some(b) = within(due, received, b)
                {
                    return Poll::Ready(Some(Ok(Frame::data(b))));
                }
                let failure = loop {
                    let Some(stream) = rest else {
                        return Poll::Ready(None);
                    };
                    match stream.as_mut().poll_next(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Some(Ok(b))) => {
                            if let Some(b) = within(due, received, b) {
                                return Poll::Ready(Some(Ok(Frame::data(b))));
                            }
                        }
                        Poll::Ready(Some(Err(e))) => {
                            *rest = None;
                            break GatewayBodyError::Backend(e);
                        }
                        Poll::Ready(None) => {
                            *rest = None;
                            match *due {
                                Some(left @ 1..) => {
                                    break GatewayBodyError::Short {
                                        expected: *received + left,
                                        received: *received,
                                    };
                                }
                                _ => return Poll::Ready(None),
                            }
                        }
                    }
                };
                // The failure waits one poll: an HTTP server writes out what it holds (the
                // head, the last bytes) when the body has nothing for now, and drops it when
                // the body fails; this way the client sees a response visibly cut off rather
                // than none at all.
                *fault = Some(failure);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(b) => b.is_none(),
            Kind::File(body) => body.is_end_stream(),
            Kind::Stream {
                first, rest, fault, ..
            } => first.is_none() && rest.is_none() && fault.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::File(body) => body.size_hint(),
            Kind::Stream {
                first, rest, due, ..
            } => match due {
                // What is still due is exactly what the body will yield (or it fails).
                Some(left) => SizeHint::with_exact(*left),
                // The whole body is here (the request ended during the read-ahead): its
                // length is known, so the HTTP server can send `Content-Length` instead of
                // chunks — as Go's server (Caddy) does for a small complete answer; cheaper
                // for both ends, and an HTTP/1.0 client can keep its connection.
                None if rest.is_none() => {
                    SizeHint::with_exact(first.as_ref().map_or(0, |b| b.len() as u64))
                }
                None => {
                    let mut hint = SizeHint::new();
                    hint.set_lower(first.as_ref().map_or(0, |b| b.len() as u64));
                    hint
                }
            },
        }
    }
}
