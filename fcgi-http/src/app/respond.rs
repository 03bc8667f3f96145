//! Writing an `http::Response` on `FCGI_STDOUT`: the CGI head, then the body streamed frame
//! by frame, small frames that are ready together coalesced into one record.

use std::error::Error as StdError;
use std::task::Poll;

use bytes::{Buf, Bytes, BytesMut};
use fcgi_core::Role;
use fcgi_driver::server::Response;
use http::{Method, StatusCode, header};
use http_body::Body;

use super::to_cgi::{add_content_length, encode_head};
use super::to_http::ParamsError;
use super::{
    APP_STATUS_BODY_ERROR, APP_STATUS_OK, APP_STATUS_SERVICE_ERROR, APP_STATUS_WRITE_ERROR,
};

type BoxError = Box<dyn StdError + Send + Sync>;

/// Ready frames are gathered into one `STDOUT` write up to this size; a larger frame is
/// written on its own, without a copy.
const COALESCE_LIMIT: usize = 16 * 1024;

#[cfg(feature = "tracing")]
const TARGET: &str = "fcgi_http::app";

/// The request a response answers, for log lines: `GET /path`.
pub(crate) struct Target {
    pub(crate) method: Method,
    uri: http::Uri,
}

impl Target {
    pub(crate) fn of<B>(request: &http::Request<B>) -> Self {
        Self {
            method: request.method().clone(),
            uri: request.uri().clone(),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.uri.path())
    }
}

/// How writing a response ended.
pub(crate) enum Outcome {
    Done,
    /// With this application status.
    Failed(u32),
}

/// Writes `response`. For an Authorizer's `200`, only the head: the web server ignores the
/// body of a grant (see [`authorizer`](super::authorizer)).
pub(crate) async fn write<B>(
    response: http::Response<B>,
    role: Role,
    what: &Target,
    out: &mut Response,
) -> Outcome
where
    B: Body + Send,
    B::Error: Into<BoxError>,
{
    let (mut head, body) = response.into_parts();
    if head.status.is_informational() {
        let msg = format!(
            "{what}: the service answered {}, an interim status a CGI response cannot carry",
            head.status
        );
        return Outcome::Failed(internal_error(out, &msg, APP_STATUS_SERVICE_ERROR).await);
    }
    let mut pending = BytesMut::new();
    if role == Role::Authorizer && head.status == StatusCode::OK {
        drop(body);
        head.headers.remove(header::CONTENT_LENGTH);
        encode_head(head.status, &head.headers, &mut pending);
        return match out.stdout(pending.freeze()).await {
            Ok(()) => Outcome::Done,
            Err(e) => Outcome::Failed(write_failed(what, &e)),
        };
    }
    add_content_length(
        head.status,
        &what.method,
        &body.size_hint(),
        &mut head.headers,
    );
    encode_head(head.status, &head.headers, &mut pending);
    stream(body, pending, what, out).await
}

/// Streams the body after the head in `pending`. Nothing is written before the first frame
/// is there (or the body is known to be slow: a poll returned `Pending`), so a body that
/// fails at once still gets a clean `500`.
async fn stream<B>(body: B, mut pending: BytesMut, what: &Target, out: &mut Response) -> Outcome
where
    B: Body + Send,
    B::Error: Into<BoxError>,
{
    let mut body = std::pin::pin!(body);
    let mut sent: u64 = 0;
    let mut started = false;
    loop {
        // Errors are boxed at once: `B::Error` need not be `Send`.
        let mut poll = |cx: &mut std::task::Context<'_>| {
            body.as_mut()
                .poll_frame(cx)
                .map(|o| o.map(|r| r.map_err(Into::<BoxError>::into)))
        };
        let next = if pending.is_empty() {
            std::future::poll_fn(poll).await
        } else {
            // Something is waiting to go: take a frame only if it is there now.
            let now = std::future::poll_fn(|cx| Poll::Ready(poll(cx))).await;
            match now {
                Poll::Ready(next) => next,
                Poll::Pending => {
                    if let Err(status) = flush(out, &mut pending, &mut sent, what).await {
                        return Outcome::Failed(status);
                    }
                    started = true;
                    continue;
                }
            }
        };
        match next {
            None => {
                return match flush(out, &mut pending, &mut sent, what).await {
                    Ok(()) => Outcome::Done,
                    Err(status) => Outcome::Failed(status),
                };
            }
            Some(Ok(frame)) => {
                // Trailers have no CGI form: dropped.
                let Ok(mut data) = frame.into_data() else {
                    continue;
                };
                let bytes = data.copy_to_bytes(data.remaining());
                if bytes.is_empty() {
                    continue;
                }
                if pending.len() + bytes.len() <= COALESCE_LIMIT {
                    pending.extend_from_slice(&bytes);
                    continue;
                }
                started = true;
                if let Err(status) = flush(out, &mut pending, &mut sent, what).await {
                    return Outcome::Failed(status);
                }
                if bytes.len() < COALESCE_LIMIT {
                    pending.extend_from_slice(&bytes);
                } else if let Err(status) = send(out, bytes, &mut sent, what).await {
                    return Outcome::Failed(status);
                }
            }
            Some(Err(e)) => {
                if !started {
                    let msg = format!("{what}: the response body failed before any byte: {e}");
                    return Outcome::Failed(internal_error(out, &msg, APP_STATUS_BODY_ERROR).await);
                }
                if let Err(status) = flush(out, &mut pending, &mut sent, what).await {
                    return Outcome::Failed(status);
                }
                let msg = format!(
                    "{what}: the response body failed after {sent} bytes of output; \
                     the response is truncated: {e}"
                );
                crate::__log_error!(target: TARGET, "{msg}");
                let _ = out.stderr(format!("fcgi-http: {msg}\n")).await;
                return Outcome::Failed(APP_STATUS_BODY_ERROR);
            }
        }
    }
}

/// Writes what is pending, if anything.
async fn flush(
    out: &mut Response,
    pending: &mut BytesMut,
    sent: &mut u64,
    what: &Target,
) -> Result<(), u32> {
    if pending.is_empty() {
        return Ok(());
    }
    send(out, pending.split().freeze(), sent, what).await
}

async fn send(out: &mut Response, bytes: Bytes, sent: &mut u64, what: &Target) -> Result<(), u32> {
    let len = bytes.len() as u64;
    match out.stdout(bytes).await {
        Ok(()) => {
            *sent += len;
            Ok(())
        }
        Err(e) => Err(write_failed(what, &e)),
    }
}

// Its variables are only logged, and logging is the `tracing` feature.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
fn write_failed(what: &Target, e: &std::io::Error) -> u32 {
    // The web server went away (or aborted the request): nobody to tell but the log.
    crate::__log_debug!(target: TARGET, error = %e, "{what}: writing the response failed");
    APP_STATUS_WRITE_ERROR
}

/// The plain-text answer for a request we cannot serve, with its `STDERR` line.
async fn plain(out: &mut Response, status: StatusCode, stderr: &str) -> Result<(), ()> {
    let text = format!("{}\n", status.canonical_reason().unwrap_or("Error"));
    let mut head = http::HeaderMap::new();
    head.insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    head.insert(header::CONTENT_LENGTH, text.len().into());
    let mut bytes = BytesMut::new();
    encode_head(status, &head, &mut bytes);
    bytes.extend_from_slice(text.as_bytes());
    let line = format!("fcgi-http: {stderr}\n");
    let err = out.stderr(line).await.is_err();
    if out.stdout(bytes.freeze()).await.is_err() || err {
        return Err(());
    }
    Ok(())
}

/// `500 Internal Server Error`, the reason on `STDERR` and in the log; returns `status`
/// (or the write error status when the connection is gone).
pub(crate) async fn internal_error(out: &mut Response, msg: &str, status: u32) -> u32 {
    crate::__log_error!(target: TARGET, "{msg}");
    match plain(out, StatusCode::INTERNAL_SERVER_ERROR, msg).await {
        Ok(()) => status,
        Err(()) => APP_STATUS_WRITE_ERROR,
    }
}

/// `400 Bad Request` for params that make no HTTP request.
pub(crate) async fn bad_request(out: &mut Response, e: ParamsError) -> u32 {
    let msg = format!("cannot build an HTTP request from the FastCGI params: {e}");
    crate::__log_warn!(target: TARGET, "{msg}");
    match plain(out, StatusCode::BAD_REQUEST, &msg).await {
        Ok(()) => APP_STATUS_OK,
        Err(()) => APP_STATUS_WRITE_ERROR,
    }
}
