//! The client's request body on its way to `FCGI_STDIN`: its length decided up front (the
//! `CONTENT_LENGTH` a CGI application relies on), then streamed, or buffered first when its
//! length is unknown.

use std::io::{self, Read, Seek, Write};
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::{Buf, Bytes, BytesMut};
use fcgi_driver::client::RequestBody;
use fcgi_driver::runtime::{BlockingWork, BoxFuture};
use http::HeaderMap;
use http::header::CONTENT_LENGTH;
use http_body::Body;
use http_body_util::BodyExt;

use super::config::UnknownLength;
use super::error::{BoxError, GatewayError};

/// Reads from a spilled body file go out in pieces of this size.
const SPILL_READ_CHUNK: usize = 64 * 1024;

/// A body ready to be sent: its exact length (`None`: no body at all) and its bytes.
pub(crate) struct Upload {
    pub(crate) len: Option<u64>,
    pub(crate) body: RequestBody,
    /// Set when a streamed body fails on the client's side (so that the failure of the
    /// FastCGI request it causes is reported as the client's, 400, not the backend's).
    pub(crate) fault: Fault,
}

/// The client-side failure of a streamed body, if any.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fault(Arc<Mutex<Option<io::Error>>>);

impl Fault {
    fn set(&self, e: &io::Error) {
        let copy = io::Error::new(e.kind(), e.to_string());
        match self.0.lock() {
            Ok(mut slot) => *slot = Some(copy),
            Err(poisoned) => *poisoned.into_inner() = Some(copy),
        }
    }

    /// The failure, if the body failed.
    pub(crate) fn take(&self) -> Option<io::Error> {
        match self.0.lock() {
            Ok(mut slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        }
    }
}

/// The `content-length` of a request: `Ok(None)` when absent; an error when repeated with
/// different values or not a decimal number.
fn declared_length(headers: &HeaderMap) -> Result<Option<u64>, GatewayError> {
    let mut found = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        let text = value
            .to_str()
            .map_err(|_| GatewayError::InvalidContentLength)?;
        let text = text.trim();
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(GatewayError::InvalidContentLength);
        }
        let n: u64 = text
            .parse()
            .map_err(|_| GatewayError::InvalidContentLength)?;
        if found.is_some_and(|m| m != n) {
            return Err(GatewayError::InvalidContentLength);
        }
        found = Some(n);
    }
    Ok(found)
}

/// The longest a streamed body may go without a byte, the runtime's timer, and where the
/// rest of a body the application did not wait for is read (see [`Forwarding`]).
#[derive(Clone)]
pub(crate) struct Idle {
    pub(crate) limit: std::time::Duration,
    pub(crate) sleep: Arc<dyn Fn(std::time::Duration) -> BoxFuture<()> + Send + Sync>,
    pub(crate) spawn: Arc<dyn Fn(BoxFuture<()>) + Send + Sync>,
}

/// The longest the rest of an upload is read after the application answered without it
/// (nginx's `lingering_time`).
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(30);

/// A streamed request body on its way to `FCGI_STDIN`. The application may end the request
/// before reading all of it (an early answer: a 413 of its own, a redirect, a result computed
/// from the head); the client is then still sending. Dropping the body there would make the
/// HTTP server close a connection with unread input, and the reset that follows can destroy
/// response bytes the client has not read yet. So a body dropped before its end is read to
/// its end in the background and thrown away (nginx's lingering close), bounded: at most the
/// bytes its `content-length` still owes, each read within the idle limit, all within
/// [`DRAIN_TIME`].
struct Forwarding<B: Body + Send + 'static> {
    /// `None` once the body ended or failed (nothing left to drain).
    body: Option<Pin<Box<B>>>,
    idle: Option<Idle>,
}

impl<B> Drop for Forwarding<B>
where
    B: Body + Send + 'static,
{
    fn drop(&mut self) {
        let (Some(mut body), Some(idle)) = (self.body.take(), self.idle.take()) else {
            return;
        };
        let sleep = Arc::clone(&idle.sleep);
        let drain = async move {
            let read_all = async {
                loop {
                    let timer = (idle.sleep)(idle.limit);
                    match futures_util::future::select(body.frame(), timer).await {
                        futures_util::future::Either::Left((Some(Ok(_)), _)) => {}
                        _ => return,
                    }
                }
            };
            let deadline = sleep(DRAIN_TIME);
            futures_util::future::select(std::pin::pin!(read_all), deadline).await;
        };
        (idle.spawn)(Box::pin(drain));
    }
}

/// What is known of a body's length before reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Length {
    /// No body (no `content-length`, and the body says it is empty): `CONTENT_LENGTH` empty.
    NoBody,
    /// Exactly this many bytes (`content-length`, or the body's exact size hint).
    Known(u64),
    /// Unknown until read to its end.
    Unknown,
}

impl Length {
    /// The `CONTENT_LENGTH` this length gives, when known before reading.
    pub(crate) fn content_length(self) -> Option<u64> {
        match self {
            Self::Known(n) => Some(n),
            Self::NoBody | Self::Unknown => None,
        }
    }
}

/// Decides what is known of the body's length, refusing a bad `content-length` and a body
/// known to be over `max_body`.
pub(crate) fn length<B: Body>(
    headers: &HeaderMap,
    body: &B,
    max_body: Option<u64>,
) -> Result<Length, GatewayError> {
    let length = match declared_length(headers)? {
        Some(len) => Length::Known(len),
        None if body.is_end_stream() => Length::NoBody,
        // Known to the body itself (a body built in memory, say).
        None => body
            .size_hint()
            .exact()
            .map_or(Length::Unknown, Length::Known),
    };
    if let (Length::Known(len), Some(limit)) = (length, max_body)
        && len > limit
    {
        return Err(GatewayError::BodyTooLarge { limit });
    }
    Ok(length)
}

/// Whether [`prepare`] reads the body before the request is sent (so that the reading needs
/// a deadline of its own): bodies of unknown length, and known ones up to `buffer_up_to`.
pub(crate) fn reads_first(length: Length, buffer_up_to: u64) -> bool {
    match length {
        Length::NoBody => false,
        Length::Known(len) => len <= buffer_up_to,
        Length::Unknown => true,
    }
}

/// Where file-system work runs: the runtime's blocking pool
/// ([`Runtime::spawn_blocking`](fcgi_driver::runtime::Runtime::spawn_blocking)), never the
/// request's task, so that a slow disk never stalls other requests on the executor.
pub(crate) type Unblock = Arc<dyn Fn(BlockingWork) -> BoxFuture<()> + Send + Sync>;

/// Runs `f` off the executor through `unblock`.
pub(crate) async fn off_executor<T: Send + 'static>(
    unblock: &Unblock,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    fcgi_driver::runtime::unblock_with(|work| unblock(work), f).await?
}

/// Prepares the body for `FCGI_STDIN` according to its [`Length`].
pub(crate) async fn prepare<B>(
    idle: impl FnOnce() -> Idle,
    unblock: Unblock,
    length: Length,
    body: B,
    max_body: Option<u64>,
    buffer_up_to: u64,
    unknown: &UnknownLength,
) -> Result<Upload, GatewayError>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    match length {
        Length::NoBody => {
            return Ok(Upload {
                len: None,
                body: RequestBody::Empty,
                fault: Fault::default(),
            });
        }
        Length::Known(len) => return known(idle, body, len, buffer_up_to).await,
        Length::Unknown => {}
    }
    match unknown {
        UnknownLength::Reject => Err(GatewayError::LengthRequired),
        UnknownLength::Buffer {
            memory,
            spill_dir,
            max_bytes,
        } => {
            let limit = max_body.map_or(*max_bytes, |m| m.min(*max_bytes));
            let memory = (*memory as u64).min(limit) as usize;
            buffer(body, memory, spill_dir.as_deref(), limit, unblock).await
        }
    }
}

/// A body of known length: read first when small (so that the request can be replayed on
/// a fresh connection, and a slow client does not hold an application worker), streamed
/// otherwise.
async fn known<B>(
    idle: impl FnOnce() -> Idle,
    body: B,
    len: u64,
    buffer_up_to: u64,
) -> Result<Upload, GatewayError>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    if len == 0 {
        // Nothing to read; a body that still sends bytes contradicts its header.
        return if body.is_end_stream() || body.size_hint().upper() == Some(0) {
            Ok(Upload {
                len: Some(0),
                body: RequestBody::Empty,
                fault: Fault::default(),
            })
        } else {
            read_exact(body, 0).await
        };
    }
    if len <= buffer_up_to {
        return read_exact(body, len).await;
    }
    let fault = Fault::default();
    Ok(Upload {
        len: Some(len),
        body: RequestBody::stream(exact_stream(body, len, fault.clone(), Some(idle()))),
        fault,
    })
}

/// Reads a body of exactly `len` bytes into memory.
async fn read_exact<B>(body: B, len: u64) -> Result<Upload, GatewayError>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    use futures_util::StreamExt;
    let mut stream = std::pin::pin!(exact_stream(body, len, Fault::default(), None));
    let mut kept = BytesMut::with_capacity(usize::try_from(len).unwrap_or(0));
    while let Some(piece) = stream.next().await {
        let piece = piece.map_err(|e| GatewayError::RequestBody(e.into()))?;
        kept.extend_from_slice(&piece);
    }
    Ok(Upload {
        len: Some(len),
        body: RequestBody::from(kept.freeze()),
        fault: Fault::default(),
    })
}

/// The body as a stream of exactly `len` bytes: more or fewer is an error (which aborts the
/// FastCGI request rather than handing the application a body that contradicts
/// `CONTENT_LENGTH`).
fn exact_stream<B>(
    body: B,
    len: u64,
    fault: Fault,
    idle: Option<Idle>,
) -> impl futures_core::Stream<Item = io::Result<Bytes>> + Send + 'static
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let forwarding = Forwarding {
        body: Some(Box::pin(body)),
        idle,
    };
    futures_util::stream::unfold(Some((forwarding, 0u64)), move |state| {
        let fault = fault.clone();
        async move {
            let (mut forwarding, sent) = state?;
            let idle = forwarding.idle.clone();
            let body = forwarding.body.as_mut()?;
            let next = loop {
                let frame = match &idle {
                    None => body.frame().await,
                    Some(idle) => {
                        let timer = (idle.sleep)(idle.limit);
                        match futures_util::future::select(body.frame(), timer).await {
                            futures_util::future::Either::Left((frame, _)) => frame,
                            futures_util::future::Either::Right(((), _)) => {
                                break Err(io::Error::new(
                                    io::ErrorKind::TimedOut,
                                    format!("request body idle for {:?}", idle.limit),
                                ));
                            }
                        }
                    }
                };
                match frame {
                    None if sent == len => break Ok(None),
                    None => {
                        break Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("request body ended after {sent} of {len} bytes"),
                        ));
                    }
                    Some(Err(e)) => break Err(io::Error::other(e.into())),
                    Some(Ok(frame)) => {
                        let Ok(mut data) = frame.into_data() else {
                            continue; // trailers: CGI has no place for them
                        };
                        let n = data.remaining();
                        if n == 0 {
                            continue;
                        }
                        if sent + n as u64 > len {
                            break Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!("request body longer than its content-length {len}"),
                            ));
                        }
                        break Ok(Some(data.copy_to_bytes(n)));
                    }
                }
            };
            match next {
                Ok(Some(piece)) => {
                    let total = sent + piece.len() as u64;
                    Some((Ok(piece), Some((forwarding, total))))
                }
                Ok(None) => {
                    // The whole body went out: nothing to drain.
                    forwarding.body = None;
                    None
                }
                Err(e) => {
                    fault.set(&e);
                    // A failed body is not drained either.
                    forwarding.body = None;
                    Some((Err(e), None))
                }
            }
        }
    })
}

/// Reads the whole body: in memory up to `memory` bytes, then into a temporary file in
/// `spill_dir` (if any), refusing more than `limit` bytes in all.
async fn buffer<B>(
    body: B,
    memory: usize,
    spill_dir: Option<&Path>,
    limit: u64,
    unblock: Unblock,
) -> Result<Upload, GatewayError>
where
    B: Body + Send + 'static,
    B::Error: Into<BoxError>,
{
    let mut body = std::pin::pin!(body);
    let mut kept = BytesMut::new();
    let mut file: Option<std::fs::File> = None;
    let mut total: u64 = 0;
    loop {
        // The piece as `Bytes` (no body type is held across the file writes' awaits).
        let mut data: Bytes = match body.frame().await {
            None => break,
            Some(Err(e)) => return Err(GatewayError::RequestBody(e.into())),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(mut d) => d.copy_to_bytes(d.remaining()),
                Err(_) => continue,
            },
        };
        total += data.remaining() as u64;
        if total > limit {
            return Err(GatewayError::BodyTooLarge { limit });
        }
        if file.is_none() && total > memory as u64 {
            let Some(dir) = spill_dir else {
                return Err(GatewayError::BodyTooLarge {
                    limit: memory as u64,
                });
            };
            let dir = dir.to_owned();
            let head = std::mem::take(&mut kept).freeze();
            let f = off_executor(&unblock, move || {
                let mut f = tempfile::tempfile_in(dir)?;
                f.write_all(&head)?;
                Ok(f)
            })
            .await
            .map_err(GatewayError::Spill)?;
            file = Some(f);
        }
        match file.take() {
            Some(mut f) => {
                let chunk = std::mem::take(&mut data);
                let f = off_executor(&unblock, move || {
                    f.write_all(&chunk)?;
                    Ok(f)
                })
                .await
                .map_err(GatewayError::Spill)?;
                file = Some(f);
            }
            None => {
                while data.has_remaining() {
                    let chunk = data.chunk();
                    kept.extend_from_slice(chunk);
                    let n = chunk.len();
                    data.advance(n);
                }
            }
        }
    }
    let body = match file {
        None => RequestBody::from(kept.freeze()),
        Some(mut f) => {
            let f = off_executor(&unblock, move || {
                f.flush()?;
                f.rewind()?;
                Ok(f)
            })
            .await
            .map_err(GatewayError::Spill)?;
            RequestBody::stream(file_stream(f, total, unblock))
        }
    };
    Ok(Upload {
        len: Some(total),
        body,
        fault: Fault::default(),
    })
}

/// The spilled body read back in pieces.
fn file_stream(
    file: std::fs::File,
    len: u64,
    unblock: Unblock,
) -> impl futures_core::Stream<Item = io::Result<Bytes>> + Send + 'static {
    futures_util::stream::unfold(Some((file, len, unblock)), |state| async move {
        let (mut file, left, unblock) = state?;
        if left == 0 {
            return None;
        }
        let want = SPILL_READ_CHUNK.min(usize::try_from(left).unwrap_or(SPILL_READ_CHUNK));
        let read = off_executor(&unblock, move || {
            let mut buf = vec![0u8; want];
            let n = file.read(&mut buf)?;
            buf.truncate(n);
            Ok((file, buf))
        })
        .await;
        match read {
            Ok((_, buf)) if buf.is_empty() => Some((
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "spilled request body shrank",
                )),
                None,
            )),
            Ok((file, buf)) => {
                let n = buf.len() as u64;
                Some((Ok(Bytes::from(buf)), Some((file, left - n, unblock))))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}
