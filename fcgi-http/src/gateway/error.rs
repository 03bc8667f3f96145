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
    /// The application ended its response with fewer body bytes than the `Content-Length`
    /// it announced, and this was known before the head was returned (a body found short
    /// later ends with [`GatewayBodyError::Short`](super::GatewayBodyError::Short) instead).
    #[error("FastCGI response body ended after {received} of the {expected} bytes announced")]
    ShortBody {
        /// The announced length.
        expected: u64,
        /// The bytes received.
        received: u64,
    },
    /// Local redirects went on past the configured maximum.
    #[error("more than {0} local redirects")]
    RedirectLoop(u32),
    /// The resolved script is not a regular file inside the local root (it does not exist,
    /// is a directory, or leads out of the root through a symbolic link): nginx's
    /// `try_files $fastcgi_script_name =404`, which also closes php-fpm's "uploads hole"
    /// (`/uploads/x.jpg/y.php` running `x.jpg`).
    #[error("no such script: {0}")]
    NoSuchScript(String),
    /// Try-files mode found a static file, and this gateway serves none
    /// ([`GatewayConfig::static_files`](super::GatewayConfig::static_files) is not set).
    #[error("static file not served: {0}")]
    StaticFileNotServed(String),
}

impl GatewayError {
    /// The HTTP status to answer with.
    ///
    /// ```
    /// use fcgi_http::gateway::GatewayError;
    /// use fcgi_driver::client::{ClientError, TimeoutKind};
    /// assert_eq!(GatewayError::from(ClientError::Overloaded).status(), 503);
    /// assert_eq!(GatewayError::from(ClientError::Timeout(TimeoutKind::Read)).status(), 504);
    /// assert_eq!(GatewayError::from(ClientError::Truncated).status(), 502);
    /// ```
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Refused(MapError::NotAScript)
            | Self::NoSuchScript(_)
            | Self::StaticFileNotServed(_) => StatusCode::NOT_FOUND,
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
            Self::Backend(e) => backend_status(e),
            Self::BadResponse(_) | Self::ShortBody { .. } | Self::RedirectLoop(_) => {
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

/// The status for a failed FastCGI exchange: 503 for `OVERLOADED`, 504 for a timeout, 502
/// for the rest.
fn backend_status(e: &ClientError) -> StatusCode {
    match e {
        ClientError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
        ClientError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::BAD_GATEWAY,
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

/// Wraps a gateway, or a tower stack around one, so that its errors become responses and
/// the service never fails: what an HTTP server wants to serve. Put it outermost.
///
/// The status of an error is found by walking it and its sources: a [`GatewayError`] gives
/// [`GatewayError::status`], a bare `ClientError` the same mapping (503 for `OVERLOADED`,
/// 504 for timeouts, 502 otherwise), an `io::Error` of kind `TimedOut` 504. Errors of other
/// layers are passed to the classifier set with [`with_classifier`](Self::with_classifier)
/// (tower's own error types cannot be named here without tying this crate to tokio), and are
/// otherwise 500. Each error is logged as a `tracing` event (warn for server faults, debug
/// for client faults).
///
/// ```
/// # fn wrap<S>(stack: S) -> fcgi_http::gateway::ErrorsAsResponses<S> {
/// use fcgi_http::gateway::ErrorsAsResponses;
/// use http::StatusCode;
/// // E.g. `stack` = ServiceBuilder::new().timeout(..).load_shed().service(gateway):
/// ErrorsAsResponses::new(stack).with_classifier(|e| {
///     // e.is::<tower::timeout::error::Elapsed>() ...
///     (e.to_string() == "request timed out").then_some(StatusCode::GATEWAY_TIMEOUT)
/// })
/// # }
/// ```
#[derive(Clone)]
pub struct ErrorsAsResponses<S> {
    inner: S,
    classify: Classifier,
    /// A readiness error, answered by the next `call` instead of calling `inner`.
    not_ready: Option<StatusCode>,
}

/// Maps an error the gateway does not know to a status.
type Classifier = fn(&(dyn std::error::Error + 'static)) -> Option<StatusCode>;

impl<S: std::fmt::Debug> std::fmt::Debug for ErrorsAsResponses<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErrorsAsResponses")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> ErrorsAsResponses<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            classify: |_| None,
            not_ready: None,
        }
    }

    /// Sets how errors this crate does not know (those of other tower layers) map to a
    /// status; `None` from it means 500. It is asked about the error and each of its sources.
    #[must_use]
    pub fn with_classifier(mut self, classify: Classifier) -> Self {
        self.classify = classify;
        self
    }

    /// The wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// The status for `error` (see [`ErrorsAsResponses`]).
fn status_of(error: &(dyn std::error::Error + 'static), classify: Classifier) -> StatusCode {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(g) = e.downcast_ref::<GatewayError>() {
            return g.status();
        }
        if let Some(c) = e.downcast_ref::<ClientError>() {
            return backend_status(c);
        }
        if let Some(status) = classify(e) {
            return status;
        }
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return StatusCode::GATEWAY_TIMEOUT;
        }
        next = e.source();
    }
    StatusCode::INTERNAL_SERVER_ERROR
}

// Its variables are only logged, and logging is the `tracing` feature.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
fn log(status: StatusCode, error: &(dyn std::error::Error + 'static)) {
    if status.is_server_error() {
        crate::__log_warn!(target: "fcgi_http::gateway", status = status.as_u16(), %error, "FastCGI gateway error");
    } else {
        crate::__log_debug!(target: "fcgi_http::gateway", status = status.as_u16(), %error, "request refused");
    }
}

impl<S, Req> Service<Req> for ErrorsAsResponses<S>
where
    S: Service<Req, Response = http::Response<GatewayBody>>,
    S::Error: Into<BoxError>,
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
                let error: BoxError = error.into();
                let status = status_of(&*error, self.classify);
                log(status, &*error);
                self.not_ready = Some(status);
                Poll::Ready(Ok(()))
            }
        }
    }

    fn call(&mut self, request: Req) -> Self::Future {
        if let Some(status) = self.not_ready.take() {
            return Box::pin(std::future::ready(Ok(status_response(status))));
        }
        let classify = self.classify;
        let future = self.inner.call(request);
        Box::pin(async move {
            Ok(match future.await {
                Ok(response) => response,
                Err(error) => {
                    let error: BoxError = error.into();
                    let status = status_of(&*error, classify);
                    log(status, &*error);
                    status_response(status)
                }
            })
        })
    }
}
