//! The Filter role's data file (`FCGI_DATA`), offered to the service as a request extension.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use fcgi_core::Params;
use fcgi_driver::server::Body as Stream;
use http_body::{Frame, SizeHint};

use super::body::{Framing, StdinCell, lock};
use super::to_http::{ParamsError, parse_decimal};

/// The file a Filter request asks the application to filter, in the extensions of every
/// Filter request (Responder and Authorizer requests have none).
///
/// The web server sends the file on the `FCGI_DATA` stream, with its length and modification
/// time as the params `FCGI_DATA_LENGTH` and `FCGI_DATA_LAST_MOD`. Extensions must be
/// `Clone`, so this is a shared handle: [`take`](Self::take) hands out the stream once.
///
/// # Order of reading
///
/// On the wire the whole `STDIN` stream comes before the data file, and the driver reads a
/// connection only while the unread input of its requests fits in its budget. So:
///
/// - A service that does not want the request body can drop it (axum: don't extract it).
///   The data stream then discards what is left of `STDIN` itself before reading the file.
///   The same happens once the body has been read to its end, even if the service keeps it.
/// - A service that holds the body *unread* and reads the data first gets the data only
///   once the body has arrived in full; a body larger than the server's input budget is
///   then never read past and the request stalls until the server's read timeout. Read (or
///   drop) the body first.
/// - A Filter may write nothing — not even to `STDERR` — before `STDIN` has ended (spec
///   §6.4; `fcgi-core` enforces it). [`ServiceHandler`](super::ServiceHandler) reads what is
///   left of `STDIN` before it writes the answer when the body was dropped or read to its
///   end. A service that answers while still holding its body unread (echoing the request
///   body as the response, say) cannot be answered for: the request ends with
///   [`APP_STATUS_SERVICE_ERROR`](super::APP_STATUS_SERVICE_ERROR), no output, and an error
///   event in the log. The data file, on the other hand, may be streamed into the answer.
///
/// ```no_run
/// use axum::{Extension, body::Body};
/// use fcgi_http::app::FilterData;
///
/// // Filter: answer with the data file, upper-cased on the way (streaming).
/// async fn shout(Extension(data): Extension<FilterData>) -> Body {
///     use http_body_util::BodyExt;
///     let file = data.take().expect("taken once");
///     Body::new(file.map_frame(|f| f.map_data(|d| d.to_ascii_uppercase().into())))
/// }
/// let app: axum::Router = axum::Router::new().fallback(shout);
/// ```
#[derive(Clone)]
pub struct FilterData {
    body: Arc<Mutex<Option<DataBody>>>,
    length: Option<u64>,
    last_modified: Option<SystemTime>,
}

impl fmt::Debug for FilterData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FilterData")
            .field("length", &self.length)
            .field("last_modified", &self.last_modified)
            .finish_non_exhaustive()
    }
}

impl FilterData {
    /// The data file's stream; `None` once taken.
    pub fn take(&self) -> Option<DataBody> {
        self.body
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// The file's length (`FCGI_DATA_LENGTH`), if the web server gave it.
    pub fn length(&self) -> Option<u64> {
        self.length
    }

    /// The file's modification time (`FCGI_DATA_LAST_MOD`, seconds since the Unix epoch), if
    /// the web server gave a valid one. An unparsable value is ignored rather than refused:
    /// it changes nothing about how the file is read.
    pub fn last_modified(&self) -> Option<SystemTime> {
        self.last_modified
    }

    /// The data file of a Filter request, sharing `STDIN` with its body.
    pub(crate) fn new(meta: FilterMeta, data: Stream, stdin: Arc<Mutex<StdinCell>>) -> Self {
        Self {
            body: Arc::new(Mutex::new(Some(DataBody {
                stdin: Some(stdin),
                data,
                framing: Framing::new(meta.length),
            }))),
            length: meta.length,
            last_modified: meta.last_modified,
        }
    }
}

/// What the params say about a Filter's data file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FilterMeta {
    length: Option<u64>,
    last_modified: Option<SystemTime>,
}

impl FilterMeta {
    /// `FCGI_DATA_LENGTH` (an error when present and not a number) and
    /// `FCGI_DATA_LAST_MOD` (ignored when it does not parse).
    pub(crate) fn parse(params: &Params) -> Result<Self, ParamsError> {
        let length = match params.get(b"FCGI_DATA_LENGTH").filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => Some(parse_decimal(v).ok_or(ParamsError::InvalidDataLength)?),
        };
        let last_modified = params
            .get(b"FCGI_DATA_LAST_MOD")
            .and_then(parse_decimal)
            .and_then(|s| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(s)));
        Ok(Self {
            length,
            last_modified,
        })
    }
}

/// A Filter's data file as an [`http_body::Body`] (`Data` = [`Bytes`], `Error` =
/// [`io::Error`]), framed by `FCGI_DATA_LENGTH` the way [`RequestBody`](super::RequestBody) is
/// framed by `CONTENT_LENGTH`: exact size hint, bytes beyond the length ignored, a short file
/// an `UnexpectedEof` error. Get it from [`FilterData::take`].
pub struct DataBody {
    /// `STDIN`, until it is known to have ended (it precedes the data on the wire).
    stdin: Option<Arc<Mutex<StdinCell>>>,
    data: Stream,
    framing: Framing,
}

impl fmt::Debug for DataBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataBody")
            .field("framing", &self.framing)
            .finish_non_exhaustive()
    }
}

impl http_body::Body for DataBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if !this.framing.is_end()
            && let Some(cell) = &this.stdin
        {
            let mut stdin = lock(cell);
            if !stdin.ended && stdin.reader_done {
                match stdin.poll_drain(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e))),
                    Poll::Pending => return Poll::Pending,
                }
            }
            let ended = stdin.ended;
            drop(stdin);
            if ended {
                this.stdin = None;
            }
        }
        let data = &mut this.data;
        this.framing
            .poll(|| data.poll_chunk(cx))
            .map(|o| o.map(|r| r.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.framing.is_end()
    }

    fn size_hint(&self) -> SizeHint {
        self.framing.size_hint()
    }
}
