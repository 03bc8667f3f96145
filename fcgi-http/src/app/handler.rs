//! [`ServiceHandler`]: a tower `Service` as the driver's FastCGI [`Handler`].

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use fcgi_core::{Params, Role};
use fcgi_driver::server::{Body as Stream, Handler, Request, Response};
use tower_service::Service;

use super::body::{RequestBody, StdinCell, lock};
use super::filter::{FilterData, FilterMeta};
use super::respond::{self, Outcome, Target};
use super::to_http::{FcgiRequest, ParamsError, content_length, request_parts};
use super::{APP_STATUS_OK, APP_STATUS_SERVICE_ERROR};

type BoxError = Box<dyn StdError + Send + Sync>;

/// Serves a tower [`Service`] — an axum `Router`, a `tower::ServiceBuilder` stack, a
/// `service_fn` — as a FastCGI application: give it to `fcgi_tokio::server(..).serve(..)` (or
/// any runtime adapter's server).
///
/// Per request it clones the service, waits for [`Service::poll_ready`], calls it with the
/// request built from the params and `STDIN` (see [`request_parts`] and [`RequestBody`]), and
/// writes the response as CGI output (see [`encode_head`](super::encode_head)), streaming the
/// body as the service produces it. The application status that ends the request:
///
/// | outcome | what the web server gets | app status |
/// | --- | --- | --- |
/// | response written | the response | [`APP_STATUS_OK`] (0) |
/// | params not convertible ([`ParamsError`]) | `400 Bad Request`, a `STDERR` line | 0: the application answered |
/// | `poll_ready` or `call` failed | `500 Internal Server Error`, a `STDERR` line | [`APP_STATUS_SERVICE_ERROR`] |
/// | the response status is 1xx (CGI has no interim responses) | `500`, a `STDERR` line | [`APP_STATUS_SERVICE_ERROR`] |
/// | the body failed before any byte was sent | `500`, a `STDERR` line | [`APP_STATUS_BODY_ERROR`](super::APP_STATUS_BODY_ERROR) |
/// | the body failed later | the response cut short, a `STDERR` line | [`APP_STATUS_BODY_ERROR`](super::APP_STATUS_BODY_ERROR) |
/// | writing failed (connection gone) | nothing more | [`APP_STATUS_WRITE_ERROR`](super::APP_STATUS_WRITE_ERROR) |
/// | a Filter answered holding its body unread (see [`FilterData`]) | nothing (the protocol forbids output before `STDIN` ends) | [`APP_STATUS_SERVICE_ERROR`] |
///
/// A response cut short cannot be marked as failed on the FastCGI wire: the web server sees
/// the `STDOUT` stream end early. With a `Content-Length` the web server notices the short
/// body (nginx logs "upstream prematurely closed" and closes the client connection); with a
/// streamed body of unknown length the client receives a truncated but well-framed answer.
/// The `STDERR` line (nginx logs it at `error` level) and the non-zero status are the record
/// of it. Errors are also logged as `tracing` events (target `fcgi_http::app`).
///
/// A panic in the service is caught by the driver, which ends the request with
/// [`CANCELLED_APP_STATUS`](fcgi_driver::server::CANCELLED_APP_STATUS).
///
/// The service receives, in the request's extensions: [`HttpConn`](super::HttpConn) (client
/// and server addresses, HTTPS), [`FcgiRequest`] (request id, role), the full [`Params`]
/// (for `SCRIPT_NAME`, `DOCUMENT_ROOT`, an Authorizer's `FCGI_APACHE_ROLE`, ...), and for the
/// Filter role, [`FilterData`].
///
/// ```no_run
/// use axum::{Router, routing::get};
/// use fcgi_http::app::ServiceHandler;
/// use fcgi_tokio::server::ServerOptions;
///
/// # async fn run() -> std::io::Result<()> {
/// let app = Router::new().route("/hello", get(|| async { "hello\n" }));
/// let listener = fcgi_tokio::Listener::bind_tcp("127.0.0.1:9000".parse().unwrap()).await?;
/// fcgi_tokio::server(ServerOptions::default())
///     .serve(listener, ServiceHandler::new(app))
///     .await
/// # }
/// ```
pub struct ServiceHandler<S> {
    /// Behind a mutex only to make the handler `Sync` (the server shares it between
    /// connections) for services that are `Send` but not `Sync`, such as tower's
    /// `BoxCloneService`: it is locked just long enough to clone the service.
    service: Mutex<S>,
}

impl<S: Clone> Clone for ServiceHandler<S> {
    fn clone(&self) -> Self {
        Self::new(self.clone_service())
    }
}

impl<S> fmt::Debug for ServiceHandler<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceHandler").finish_non_exhaustive()
    }
}

impl<S> ServiceHandler<S> {
    /// A handler serving `service` (cloned for each request).
    pub fn new(service: S) -> Self {
        Self {
            service: Mutex::new(service),
        }
    }

    /// Takes the service back.
    pub fn into_service(self) -> S {
        self.service
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A clone of the service.
    pub fn clone_service(&self) -> S
    where
        S: Clone,
    {
        // A panic cannot happen while the lock is held (only `clone` runs under it, and a
        // panicking `clone` leaves the service as it was), so a poisoned lock is still good.
        self.service
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl<S, B> Handler for ServiceHandler<S>
where
    S: Service<http::Request<RequestBody>, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    fn handle(&self, request: Request, response: Response) -> impl Future<Output = u32> + Send {
        serve(self.clone_service(), request, response)
    }
}

async fn serve<S, B>(mut service: S, request: Request, mut out: Response) -> u32
where
    S: Service<http::Request<RequestBody>, Response = http::Response<B>> + Send,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let info = FcgiRequest::new(request.id(), request.role(), request.keep_conn());
    let (params, mut stdin, data) = request.into_parts();
    let head = match parse(&params, info.role) {
        Ok(head) => head,
        Err(e) => {
            if info.role.writes_after_stdin() {
                // Nothing may be written before STDIN ends (spec §6.4).
                let _ = std::future::poll_fn(|cx| drain(&mut stdin, cx)).await;
            }
            return respond::bad_request(&mut out, e).await;
        }
    };
    let (request, filter_stdin) = assemble(head, params, info, stdin, data);
    let what = Target::of(&request);
    // Errors are boxed at once: `S::Error` need not be `Send`.
    let ready =
        std::future::poll_fn(|cx| service.poll_ready(cx).map_err(Into::<BoxError>::into)).await;
    let called = match ready {
        Ok(()) => service
            .call(request)
            .await
            .map_err(|e| format!("{what}: the service failed: {}", e.into())),
        Err(e) => Err(format!("{what}: the service is not ready: {e}")),
    };
    if let Some(cell) = filter_stdin
        && !finish_filter_stdin(&cell).await
    {
        // Nothing can be written, not even to STDERR: the log is all there is.
        crate::__log_error!(
            target: "fcgi_http::app",
            "{what}: a Filter must read its request body before it answers (FastCGI \
             spec 6.4); the service answered with the body still unread"
        );
        return APP_STATUS_SERVICE_ERROR;
    }
    match called {
        Ok(response) => match respond::write(response, info.role, &what, &mut out).await {
            Outcome::Done => APP_STATUS_OK,
            Outcome::Failed(status) => status,
        },
        Err(msg) => respond::internal_error(&mut out, &msg, APP_STATUS_SERVICE_ERROR).await,
    }
}

/// Everything fallible about the params, checked before the streams are touched.
struct Head {
    parts: http::request::Parts,
    expected: Option<u64>,
    filter: Option<FilterMeta>,
}

fn parse(params: &Params, role: Role) -> Result<Head, ParamsError> {
    let parts = request_parts(params, role)?;
    // No body is sent to an Authorizer, whatever CONTENT_LENGTH says.
    let expected = if role.reads_stdin() {
        content_length(params)?
    } else {
        Some(0)
    };
    let filter = if role.reads_data() {
        Some(FilterMeta::parse(params)?)
    } else {
        None
    };
    Ok(Head {
        parts,
        expected,
        filter,
    })
}

/// A Filter's `STDIN`, shared by its body and its data stream.
type SharedStdin = Arc<Mutex<StdinCell>>;

/// The request for the service, and a Filter's shared `STDIN`.
fn assemble(
    head: Head,
    params: Params,
    info: FcgiRequest,
    stdin: Stream,
    data: Stream,
) -> (http::Request<RequestBody>, Option<SharedStdin>) {
    let Head {
        mut parts,
        expected,
        filter,
    } = head;
    let (body, cell) = match filter {
        Some(meta) => {
            let cell = Arc::new(Mutex::new(StdinCell::new(stdin)));
            let data = FilterData::new(meta, data, Arc::clone(&cell));
            parts.extensions.insert(data);
            (RequestBody::shared(Arc::clone(&cell), expected), Some(cell))
        }
        None => (RequestBody::stream(stdin, expected), None),
    };
    parts.extensions.insert(info);
    parts.extensions.insert(params);
    (http::Request::from_parts(parts, body), cell)
}

/// Reads and discards a stream to its end (bounded: each round pops one queued piece).
fn drain(stream: &mut Stream, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    loop {
        match stream.poll_chunk(cx) {
            Poll::Ready(Some(Ok(_))) => {}
            Poll::Ready(None) => return Poll::Ready(Ok(())),
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
    }
}

/// A Filter may write nothing before its `STDIN` has ended (spec §6.4; the core enforces
/// it). When the service is done with its body — dropped it, or read it to its end — read
/// the rest (excess bytes, the end marker) now. A body the service still holds unread
/// (inside a streaming response, say) cannot be taken from it: `false`. A connection that
/// fails meanwhile counts as ended: writing will report it.
async fn finish_filter_stdin(cell: &Mutex<StdinCell>) -> bool {
    std::future::poll_fn(|cx| {
        let mut stdin = lock(cell);
        if stdin.ended {
            return Poll::Ready(true);
        }
        if !stdin.reader_done {
            return Poll::Ready(false);
        }
        stdin.poll_drain(cx).map(|_| true)
    })
    .await
}
