//! The request body a service receives: an [`http_body::Body`] over the driver's `STDIN`
//! stream, framed by `CONTENT_LENGTH`.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use fcgi_driver::server::Body as Stream;
use http_body::{Frame, SizeHint};

/// The body of a request served by [`ServiceHandler`](super::ServiceHandler): the FastCGI
/// `STDIN` stream, read with back-pressure (the web server is only read from as fast as the
/// service reads its body).
///
/// - `Data` is [`Bytes`] (the record payloads, never copied); `Error` is [`io::Error`].
/// - **Length.** When `CONTENT_LENGTH` is given, [`size_hint`](http_body::Body::size_hint) is
///   exact and the body ends after that many bytes: RFC 3875 §4.2 forbids reading more, so
///   anything the web server sends beyond it is ignored. A stream that ends *before* that
///   many bytes ends with an [`io::ErrorKind::UnexpectedEof`] error, not a short success: the
///   FastCGI spec allows fewer bytes only when the HTTP client failed to send them, and a
///   cut upload must not pass for a complete one. Without `CONTENT_LENGTH`, the body is
///   whatever `STDIN` carries.
/// - **Errors.** The connection closing or the web server aborting the request
///   (`ConnectionAborted`, ...), a body beyond the server's `max_stdin_bytes`
///   (`InvalidData`: answer 413), or the cut body above. After an error the body keeps
///   failing.
/// - An Authorizer request has no body (the web server sends none): this body is then empty,
///   whatever `CONTENT_LENGTH` says (the `content-length` header still tells the authorizer
///   what the client announced).
///
/// Outside a FastCGI server (a service's unit tests), [`empty`](Self::empty) and
/// [`from_bytes`](Self::from_bytes) make one:
///
/// ```
/// use http_body_util::BodyExt;
/// use fcgi_http::app::RequestBody;
/// # async fn run() -> Result<(), std::io::Error> {
/// let body = RequestBody::from_bytes("hello");
/// let bytes = body.collect().await?.to_bytes();
/// assert_eq!(bytes, "hello");
/// # Ok(())
/// # }
/// ```
pub struct RequestBody {
    source: Source,
    framing: Framing,
}

enum Source {
    Empty,
    Full(Option<Bytes>),
    Stream(Stream),
    /// A Filter's `STDIN`, which the data stream drains if the service drops this body
    /// unread (see [`FilterData`](super::FilterData)).
    Shared(Arc<Mutex<StdinCell>>),
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match self.source {
            Source::Empty => "empty",
            Source::Full(_) => "bytes",
            Source::Stream(_) | Source::Shared(_) => "stdin",
        };
        f.debug_struct("RequestBody")
            .field("source", &source)
            .field("framing", &self.framing)
            .finish()
    }
}

impl Default for RequestBody {
    fn default() -> Self {
        Self::empty()
    }
}

impl RequestBody {
    /// A body with no bytes.
    pub fn empty() -> Self {
        Self {
            source: Source::Empty,
            framing: Framing::new(Some(0)),
        }
    }

    /// A body of these bytes (for testing a service without a server).
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self {
            framing: Framing::new(Some(bytes.len() as u64)),
            source: Source::Full(Some(bytes)),
        }
    }

    /// The `STDIN` stream, `expected` bytes long if known.
    pub(crate) fn stream(stdin: Stream, expected: Option<u64>) -> Self {
        Self {
            source: Source::Stream(stdin),
            framing: Framing::new(expected),
        }
    }

    /// A Filter's `STDIN` stream, shared with its data stream.
    pub(crate) fn shared(cell: Arc<Mutex<StdinCell>>, expected: Option<u64>) -> Self {
        Self {
            source: Source::Shared(cell),
            framing: Framing::new(expected),
        }
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        if let Source::Shared(cell) = &self.source {
            lock(cell).reader_done = true;
        }
    }
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        let source = &mut this.source;
        let polled = this.framing.poll(|| match source {
            Source::Empty => Poll::Ready(None),
            Source::Full(b) => Poll::Ready(b.take().map(Ok)),
            Source::Stream(s) => s.poll_chunk(cx),
            Source::Shared(cell) => lock(cell).poll_chunk(cx),
        });
        if let Source::Shared(cell) = &this.source
            && this.framing.is_finished()
        {
            lock(cell).reader_done = true;
        }
        polled.map(|o| o.map(|r| r.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.framing.is_end()
    }

    fn size_hint(&self) -> SizeHint {
        self.framing.size_hint()
    }
}

/// A Filter's `STDIN`, shared by its request body and its data stream.
#[derive(Debug)]
pub(crate) struct StdinCell {
    stream: Stream,
    /// The driver reported the end of `STDIN`.
    pub(crate) ended: bool,
    /// The request body will not read `STDIN` any more: it was dropped, or it reached its
    /// end (all of `CONTENT_LENGTH`, or an error). What is left is for nobody.
    pub(crate) reader_done: bool,
}

impl StdinCell {
    pub(crate) fn new(stream: Stream) -> Self {
        Self {
            stream,
            ended: false,
            reader_done: false,
        }
    }

    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        let r = self.stream.poll_chunk(cx);
        if let Poll::Ready(None) = r {
            self.ended = true;
        }
        r
    }

    /// Reads and discards `STDIN` to its end. Each round pops one queued piece, and the
    /// queue is bounded by the server's input budget, so the loop ends.
    pub(crate) fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.ended {
            match self.poll_chunk(cx) {
                Poll::Ready(Some(Ok(_))) | Poll::Ready(None) => {}
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

pub(crate) fn lock(cell: &Mutex<StdinCell>) -> MutexGuard<'_, StdinCell> {
    cell.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Length bookkeeping of a byte stream announced as `expected` bytes long (or not).
#[derive(Debug)]
pub(crate) struct Framing {
    expected: Option<u64>,
    received: u64,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Done,
    Failed(io::ErrorKind),
}

impl Framing {
    pub(crate) fn new(expected: Option<u64>) -> Self {
        Self {
            expected,
            received: 0,
            state: State::Open,
        }
    }

    pub(crate) fn is_end(&self) -> bool {
        self.state == State::Done || self.expected == Some(self.received)
    }

    /// Whether the reader will get nothing more: the end, or an error.
    pub(crate) fn is_finished(&self) -> bool {
        self.state != State::Open || self.is_end()
    }

    pub(crate) fn size_hint(&self) -> SizeHint {
        match self.expected {
            Some(n) => SizeHint::with_exact(n.saturating_sub(self.received)),
            None if self.state == State::Done => SizeHint::with_exact(0),
            None => SizeHint::default(),
        }
    }

    /// The next piece, pulling from `next` as needed: cut at the expected length, an error
    /// for a stream that ends short.
    pub(crate) fn poll(
        &mut self,
        mut next: impl FnMut() -> Poll<Option<io::Result<Bytes>>>,
    ) -> Poll<Option<io::Result<Bytes>>> {
        match self.state {
            State::Failed(kind) => {
                return Poll::Ready(Some(Err(io::Error::new(
                    kind,
                    "the FastCGI stream failed earlier",
                ))));
            }
            State::Done => return Poll::Ready(None),
            State::Open if self.is_end() => {
                self.state = State::Done;
                return Poll::Ready(None);
            }
            State::Open => {}
        }
        // Each round consumes one queued piece; empty pieces are skipped.
        loop {
            match next() {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(piece))) if piece.is_empty() => {}
                Poll::Ready(Some(Ok(mut piece))) => {
                    if let Some(expected) = self.expected {
                        let room = expected - self.received;
                        if piece.len() as u64 > room {
                            // `room` < `piece.len()`, a `usize`.
                            piece.truncate(room as usize);
                        }
                    }
                    self.received += piece.len() as u64;
                    return Poll::Ready(Some(Ok(piece)));
                }
                Poll::Ready(Some(Err(e))) => {
                    self.state = State::Failed(e.kind());
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => {
                    return match self.expected {
                        Some(expected) if expected > self.received => {
                            self.state = State::Failed(io::ErrorKind::UnexpectedEof);
                            Poll::Ready(Some(Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                format!(
                                    "the stream ended after {} of {expected} bytes",
                                    self.received
                                ),
                            ))))
                        }
                        _ => {
                            self.state = State::Done;
                            Poll::Ready(None)
                        }
                    };
                }
            }
        }
    }
}
