//! Why the gateway could not produce the application's response, and the HTTP status each
//! reason maps to.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use fcgi_driver::client::ClientError;
use http::{StatusCode, header};
use tower_service::Service;

use super::body::GatewayBody;
use crate::request::MapError;
use crate::response::CgiResponseError;

/// A boxed error, as `http-body` and tower use.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A request the gateway could not complete. [`status`](Self::status) is the answer a web
/// server gives for it: client faults are 4xx, backend faults 502, `OVERLOADED` 503 and
/// timeouts 504 (as nginx does for `fastcgi_pass`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The request cannot be mapped (bad path, traversal, NUL, not a script, bad `Host`).
    #[error("request refused: {0}")]
    Refused(#[source] MapError),
    /// `content-length` is not a single decimal number.
    #[error("invalid content-length")]
    InvalidContentLength,
    /// A body of unknown length under [`UnknownLength::Reject`](super::UnknownLength::Reject).
    #[error("a request body of unknown length is not accepted")]
    LengthRequired,
    /// The body is larger than the configured maximum.
    #[error("request body larger than {limit} bytes")]
    BodyTooLarge {
        /// The limit that was exceeded.
        limit: u64,
    },
    /// Reading the client's body failed (or it did not match its `content-length`).
    #[error("reading the request body failed: {0}")]
    RequestBody(#[source] BoxError),
    /// The client took longer than [`GatewayConfig::body_read_timeout`](super::GatewayConfig::body_read_timeout)
    /// to send a body the gateway reads first.
    #[error("the request body was not received in time")]
    BodyTimeout,
    /// Buffering a body of unknown length in a temporary file failed.
    #[error("cannot buffer the request body: {0}")]
    Spill(#[source] std::io::Error),
    /// The FastCGI exchange failed: connect, I/O, protocol, timeout or a refusal.
    #[error(transparent)]
    Backend(#[from] ClientError),
    /// The application's response head is unusable (malformed, too large, injection).
    #[error("invalid response from the FastCGI application: {0}")]
    BadResponse(#[source] CgiResponseError),
    /// Local redirects went on past the configured maximum.
    #[error("more than {0} local redirects")]
    RedirectLoop(u32),
}

impl GatewayError {
    /// The HTTP status to answer with.
    ///
    /// ```
    /// use fcgi_http::gateway::GatewayError;
    /// use fcgi_driver::client::ClientError;
    /// assert_eq!(GatewayError::from(ClientError::Overloaded).status(), 503);
    /// assert_eq!(GatewayError::from(ClientError::Timeout("read timeout")).status(), 504);
    /// assert_eq!(GatewayError::from(ClientError::Truncated).status(), 502);
    /// ```
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Refused(MapError::NotAScript) => StatusCode::NOT_FOUND,
            Self::Refused(MapError::InvalidConfig | MapError::Params(_)) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Self::Refused(_) | Self::InvalidContentLength | Self::RequestBody(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::LengthRequired => StatusCode::LENGTH_REQUIRED,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Spill(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Backend(ClientError::Overloaded) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Backend(ClientError::Timeout(_)) => StatusCode::GATEWAY_TIMEOUT,
            Self::Backend(_) | Self::BadResponse(_) | Self::RedirectLoop(_) => {
                StatusCode::BAD_GATEWAY
            }
        }
    }

    /// A plain-text response with [`status`](Self::status) and its reason as the body. The
    /// details stay out of it (they are for logs, not for clients).
    pub fn to_response(&self) -> http::Response<GatewayBody> {
        status_response(self.status())
    }
}

/// A plain-text response for `status`.
fn status_response(status: StatusCode) -> http::Response<GatewayBody> {
    {
        let text = format!(
            "{} {}\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Error")
        );
        let mut response = http::Response::new(GatewayBody::full(text));
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

/// Wraps a gateway so that its errors become responses ([`GatewayError::to_response`]) and
/// the service never fails: what an HTTP server wants to serve. Each error is logged as a
/// `tracing` event (warn for backend faults, debug for client faults).
///
/// Keep the unwrapped [`Gateway`](super::Gateway) under tower layers that act on errors
/// (retry, balance), and put this outermost.
#[derive(Debug, Clone)]
pub struct ErrorsAsResponses<S> {
    inner: S,
    /// A readiness error, answered by the next `call` instead of calling `inner`.
    not_ready: Option<StatusCode>,
}

impl<S> ErrorsAsResponses<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            not_ready: None,
        }
    }

    /// The wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, Req> Service<Req> for ErrorsAsResponses<S>
where
    S: Service<Req, Response = http::Response<GatewayBody>, Error = GatewayError>,
    S::Future: Send + 'static,
{
    type Response = http::Response<GatewayBody>;
    type Error = Infallible;
    type Future =
        Pin<Box<dyn Future<Output = Result<http::Response<GatewayBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        match self.inner.poll_ready(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            // The inner service may not be called now; the next `call` answers the error.
            Poll::Ready(Err(error)) => {
                tracing::warn!(target: "fcgi_http::gateway", %error, "FastCGI gateway not ready");
                self.not_ready = Some(error.status());
                Poll::Ready(Ok(()))
            }
        }
    }

    fn call(&mut self, request: Req) -> Self::Future {
        if let Some(status) = self.not_ready.take() {
            return Box::pin(std::future::ready(Ok(status_response(status))));
        }
        let future = self.inner.call(request);
        Box::pin(async move {
            Ok(match future.await {
                Ok(response) => response,
                Err(error) => {
                    if error.status().is_server_error() {
                        tracing::warn!(target: "fcgi_http::gateway", status = error.status().as_u16(), %error, "FastCGI gateway error");
                    } else {
                        tracing::debug!(target: "fcgi_http::gateway", status = error.status().as_u16(), %error, "request refused");
                    }
                    error.to_response()
                }
            })
        })
    }
}
