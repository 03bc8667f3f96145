//! The HTTP → FastCGI gateway: a [`tower_service::Service`] that answers HTTP requests by
//! running them on a FastCGI application (php-fpm, or any other), as nginx's `fastcgi_pass`
//! does.
//!
//! A request goes through these steps:
//!
//! 1. Its body length is decided ([`GatewayConfig::max_body_bytes`] → 413, a bad
//!    `content-length` → 400). A body of unknown length is handled per
//!    [`UnknownLength`] (411, or buffered so that `CONTENT_LENGTH` is exact: php-fpm ignores
//!    a body without it).
//! 2. Its head becomes CGI params with [`build_params`] (nginx's `fastcgi_params`), using the
//!    connection facts found in its extensions (a refused path → 400/404): a [`ConnInfo`]
//!    the HTTP server glue inserted; with the `axum` feature, axum's `ConnectInfo<ConnInfo>`
//!    (`axum::serve` with `into_make_service_with_connect_info::<ConnInfo>()`), then
//!    `ConnectInfo<SocketAddr>` (the remote address; the local one from the fallback);
//!    otherwise [`GatewayConfig::fallback_conn_info`].
//! 3. The request is sent on the pooled [`Client`]; the body streams in while the response
//!    streams out.
//! 4. `STDOUT` is fed to a [`CgiResponseParser`] until the head is complete (a bad head →
//!    502). A local redirect (`Location: /path` without `Status`) is served as a new `GET`
//!    of that path, as RFC 3875 §6.2.2 asks (at most
//!    [`GatewayConfig::max_internal_redirects`] times).
//! 5. The body is read ahead, bounded: up to its first bytes, then only what has already
//!    arrived (at most 64 KiB), so that a failure already known (the connection closed
//!    mid-body, a body shorter than its `Content-Length`) is a 502 rather than a response cut
//!    off after its status line.
//! 6. The response is returned with a [`GatewayBody`] streaming the rest of `STDOUT` and an
//!    [`Outcome`] extension (application status and `STDERR`, filled at the end). A failure
//!    after that point ends the body with an error: the HTTP server cuts the response off
//!    visibly (no last chunk, or fewer bytes than its `Content-Length`) and closes.
//!
//! Failures are [`GatewayError`]s carrying their HTTP status (502, 503 for `OVERLOADED`, 504
//! for timeouts); wrap the gateway in [`ErrorsAsResponses`] to turn them into responses.
//!
//! Every tower layer composes with it (timeout, concurrency limit, retry, balance): it is
//! always ready, and the connection pool bounds the work it starts.

mod body;
mod config;
mod error;
mod files;
mod read_ahead;
mod upload;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use fcgi_driver::client::{Client, ClientRequest, ClientResponse, Connector};
use fcgi_driver::runtime::Runtime;
use http::header::{
    CONTENT_ENCODING, CONTENT_LANGUAGE, CONTENT_LENGTH, CONTENT_TYPE, EXPECT, TRANSFER_ENCODING,
};
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{Method, Request, Response, Uri};
use http_body::Body;
use tower_service::Service;

pub use body::{GatewayBody, GatewayBodyError, Outcome};
pub use config::{GatewayConfig, LocalRoot, StaticFiles, StaticFilesHandle, UnknownLength};
pub use error::{BoxError, ErrorsAsResponses, GatewayError};

use crate::request::{CgiConfig, ConnInfo, MapError, ScriptResolution, build_params, decoded_path};
use crate::response::{CgiResponseParser, Head, ParsedHead};
use files::TryFiles;
use read_ahead::{Ahead, read_ahead};

/// Body bytes nobody will read (after a local-redirect head, or of a `HEAD`/204/304 response)
/// that are read and discarded so that the connection stays usable; a longer body closes it
/// instead.
const DRAIN_LIMIT: usize = 64 * 1024;

/// An HTTP service backed by a FastCGI application; see the [module docs](self).
///
/// ```no_run
/// # use fcgi_driver::{client::{Client, Connector}, runtime::Runtime};
/// # async fn demo<R: Runtime, C: Connector>(client: Client<R, C>) -> Result<(), Box<dyn std::error::Error>> {
/// use fcgi_http::gateway::{Gateway, GatewayConfig};
/// use fcgi_http::request::ScriptResolution;
/// use tower_service::Service;
///
/// // `client`: e.g. fcgi_tokio::client("tcp:127.0.0.1:9000".parse()?, Default::default())
/// let config = GatewayConfig::new("/var/www/html", ScriptResolution::split_path());
/// let mut gateway = Gateway::new(client, config);
/// let request = http::Request::get("/index.php?x=1")
///     .header("host", "example.com")
///     .body(http_body_util::Empty::<bytes::Bytes>::new())?;
/// let response = gateway.call(request).await?;
/// println!("{}", response.status());
/// # Ok(()) }
/// ```
pub struct Gateway<R: Runtime, C: Connector> {
    client: Client<R, C>,
    config: Arc<GatewayConfig>,
    /// Try-files mode's front controller, as a mapping configuration.
    front: Option<Arc<CgiConfig>>,
    /// File-system work off the executor, through the client's runtime (made once, not per
    /// request).
    unblock: upload::Unblock,
}

impl<R: Runtime, C: Connector> Clone for Gateway<R, C> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            config: Arc::clone(&self.config),
            front: self.front.clone(),
            unblock: Arc::clone(&self.unblock),
        }
    }
}

impl<R: Runtime, C: Connector> std::fmt::Debug for Gateway<R, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("client", &self.client)
            .field("config", &self.config)
            .finish()
    }
}

impl<R: Runtime, C: Connector> Gateway<R, C> {
    /// A gateway sending requests through `client` (which owns the pool, the timeouts and the
    /// multiplexing policy).
    pub fn new(client: Client<R, C>, mut config: GatewayConfig) -> Self {
        if config.local_root == LocalRoot::SameAsDocumentRoot {
            let root = std::path::PathBuf::from(&config.cgi.document_root);
            config.local_root = if root.is_dir() {
                LocalRoot::Path(root)
            } else {
                LocalRoot::None
            };
        }
        let front = config.try_files.as_ref().map(|file| {
            let mut cgi = config.cgi.clone();
            cgi.script = ScriptResolution::FrontController(file.clone());
            Arc::new(cgi)
        });
        let unblock: upload::Unblock = Arc::new({
            let runtime = client.runtime().clone();
            move |work| runtime.spawn_blocking(work)
        });
        Self {
            client,
            config: Arc::new(config),
            front,
            unblock,
        }
    }

    /// The FastCGI client.
    pub fn client(&self) -> &Client<R, C> {
        &self.client
    }

    /// The configuration.
    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// Try-files mode's static file.
    async fn serve_static(
        &self,
        parts: http::request::Parts,
        file: std::path::PathBuf,
    ) -> Result<Response<GatewayBody>, GatewayError> {
        let Some(files) = &self.config.static_files else {
            return Err(GatewayError::StaticFileNotServed(
                parts.uri.path().to_owned(),
            ));
        };
        Ok(files
            .0
            .serve(http::Request::from_parts(parts, ()), file)
            .await)
    }

    /// With a local root: refuses a script that is not a regular file inside it.
    async fn check_script(
        &self,
        unblock: &upload::Unblock,
        params: &fcgi_driver::fcgi_core::Params,
    ) -> Result<(), GatewayError> {
        let LocalRoot::Path(root) = &self.config.local_root else {
            return Ok(());
        };
        let script = params.get(b"SCRIPT_NAME").unwrap_or(b"/");
        files::check_script(unblock, root, script).await
    }

    /// This gateway with its errors turned into responses ([`ErrorsAsResponses`]).
    pub fn errors_as_responses(self) -> ErrorsAsResponses<Self> {
        ErrorsAsResponses::new(self)
    }

    /// Serves one request (what [`Service::call`] runs).
    pub async fn serve<B>(&self, request: Request<B>) -> Result<Response<GatewayBody>, GatewayError>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let config = &*self.config;
        let (parts, body) = request.into_parts();
        let conn = conn_info(&parts.extensions, &config.fallback_conn_info);
        let length = upload::length(&parts.headers, &body, config.max_body_bytes)?;
        // The path is mapped (and a bad one refused) before any body byte is read.
        let mapped = build_params(&parts, length.content_length(), &conn, &config.cgi);
        let runtime = self.client.runtime();
        let unblock = &self.unblock;
        // `checked`: try-files already found the script to be a file inside the root.
        let (mut params, checked) = match (&self.front, &config.local_root) {
            (Some(front), LocalRoot::Path(root)) => {
                let script = match &mapped {
                    Ok(p) => Some(p.get(b"SCRIPT_NAME").unwrap_or(b"/").to_vec()),
                    Err(MapError::NotAScript) => None,
                    Err(e) => return Err(GatewayError::Refused(e.clone())),
                };
                let (path, slash) =
                    decoded_path(parts.uri.path()).map_err(GatewayError::Refused)?;
                match files::try_files(unblock, root, &path, slash, script.as_deref()).await? {
                    TryFiles::Script => (mapped.map_err(GatewayError::Refused)?, true),
                    TryFiles::Static(file) => return self.serve_static(parts, file).await,
                    TryFiles::AddSlash => return Ok(with_slash(&parts)),
                    TryFiles::FrontController => (
                        build_params(&parts, length.content_length(), &conn, front)
                            .map_err(GatewayError::Refused)?,
                        false,
                    ),
                }
            }
            _ => (mapped.map_err(GatewayError::Refused)?, false),
        };
        // ... and a script that is not a file in the root is refused before a body byte too.
        if !checked {
            self.check_script(unblock, &params).await?;
        }
        // The idle timer of a streamed body, made only when the body is streamed.
        let idle = || upload::Idle {
            limit: config.body_read_timeout,
            sleep: Arc::new({
                let runtime = runtime.clone();
                move |d| runtime.sleep(d)
            }),
            spawn: Arc::new({
                let runtime = runtime.clone();
                move |task| runtime.spawn(task)
            }),
        };
        let prepare = upload::prepare(
            idle,
            Arc::clone(unblock),
            length,
            body,
            config.max_body_bytes,
            config.buffer_body_up_to,
            &config.unknown_length,
        );
        let upload = if upload::reads_first(length, config.buffer_body_up_to) {
            // The body is read before anything is sent: bound the whole read.
            let timer = runtime.sleep(config.body_read_timeout);
            match futures_util::future::select(std::pin::pin!(prepare), timer).await {
                futures_util::future::Either::Left((upload, _)) => upload?,
                futures_util::future::Either::Right(((), _)) => {
                    return Err(GatewayError::BodyTimeout);
                }
            }
        } else {
            // No body, or a streamed one (bounded by its idle timer): no timer needed here.
            prepare.await?
        };
        if length == upload::Length::Unknown {
            // Now that the body has been read, CONTENT_LENGTH is known.
            params = build_params(&parts, upload.len, &conn, &config.cgi)
                .map_err(GatewayError::Refused)?;
        }
        // A request that is not idempotent (POST, PATCH, ...) is never sent twice: the
        // application may have acted on it before its connection died (nginx's rule too).
        let mut request = ClientRequest::responder()
            .params_from(params)
            .stdin(upload.body)
            .retry_on_dead_connection(parts.method.is_idempotent());
        let upload_fault = upload.fault;
        let mut current = parts;
        let mut redirects = 0;
        loop {
            // A failure caused by the client's own body is the client's (400), not the
            // backend's.
            let blame = |e: GatewayError| match upload_fault.take() {
                Some(fault) if fault.kind() == std::io::ErrorKind::TimedOut => {
                    GatewayError::BodyTimeout
                }
                Some(fault) => GatewayError::RequestBody(fault.into()),
                None => e,
            };
            let response = self
                .client
                .send(request)
                .await
                .map_err(|e| blame(e.into()))?;
            let (response, parsed) = read_head(response, config).await.map_err(blame)?;
            match parsed.head {
                Head::Response(head) => {
                    let outcome = Outcome::default();
                    let body = if has_body(&current.method, head.status) {
                        let content_length = announced_length(&head);
                        match read_ahead(parsed.body, response, content_length).await? {
                            Ahead::Complete { body, end } => {
                                body::report(&end);
                                outcome.set(end);
                                GatewayBody::complete(body, content_length)
                            }
                            Ahead::Partial { first, response } => GatewayBody::stream(
                                first,
                                *response,
                                outcome.clone(),
                                content_length,
                            ),
                        }
                    } else {
                        // HTTP servers never read this body: finish the FastCGI request in
                        // the background so that its connection is kept and its STDERR and
                        // status still reach the log and the `Outcome`.
                        let outcome = outcome.clone();
                        self.client.runtime().spawn(Box::pin(async move {
                            if let Some(end) = drain(response).await {
                                outcome.set(end);
                            }
                        }));
                        GatewayBody::empty()
                    };
                    let mut response = Response::from_parts(head, body);
                    response.extensions_mut().insert(outcome);
                    return Ok(response);
                }
                Head::InternalRedirect { path } => {
                    redirects += 1;
                    if redirects > config.max_internal_redirects {
                        return Err(GatewayError::RedirectLoop(config.max_internal_redirects));
                    }
                    crate::__log_debug!(target: "fcgi_http::gateway", location = %path, "local redirect");
                    let _ = drain(response).await;
                    current = redirected(&current, path);
                    let params = build_params(&current, None, &conn, &config.cgi)
                        .map_err(GatewayError::Refused)?;
                    self.check_script(unblock, &params).await?;
                    request = ClientRequest::responder().params_from(params);
                }
            }
        }
    }
}

/// The connection facts of a request, from the first of these found in its extensions: our
/// [`ConnInfo`]; with the `axum` feature, axum's `ConnectInfo<ConnInfo>`, then its
/// `ConnectInfo<SocketAddr>` (the remote address, the rest from `fallback`); else `fallback`.
fn conn_info(extensions: &http::Extensions, fallback: &ConnInfo) -> ConnInfo {
    if let Some(conn) = extensions.get::<ConnInfo>() {
        return *conn;
    }
    #[cfg(feature = "axum")]
    {
        use axum::extract::ConnectInfo;
        if let Some(ConnectInfo(conn)) = extensions.get::<ConnectInfo<ConnInfo>>() {
            return *conn;
        }
        if let Some(ConnectInfo(remote)) = extensions.get::<ConnectInfo<std::net::SocketAddr>>() {
            return ConnInfo {
                remote: *remote,
                ..*fallback
            };
        }
    }
    *fallback
}

/// Whether a response to `method` with `status` has a body (not for `HEAD`, 1xx, 204 or 304,
/// whose `Content-Length` describes a body not sent).
fn has_body(method: &Method, status: http::StatusCode) -> bool {
    method != Method::HEAD
        && !status.is_informational()
        && status != http::StatusCode::NO_CONTENT
        && status != http::StatusCode::NOT_MODIFIED
}

/// The body length a response head announces.
fn announced_length(head: &http::response::Parts) -> Option<u64> {
    head.headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Reads `STDOUT` until the CGI head is complete.
async fn read_head(
    mut response: ClientResponse,
    config: &GatewayConfig,
) -> Result<(ClientResponse, ParsedHead), GatewayError> {
    let mut parser = CgiResponseParser::new(config.response.clone());
    loop {
        match response.chunk().await {
            Some(Ok(piece)) => {
                if let Some(parsed) = parser.feed(piece).map_err(GatewayError::BadResponse)? {
                    return Ok((response, parsed));
                }
            }
            Some(Err(error)) => return Err(error.into()),
            None => {
                // The request ended without a complete head: log what it said on STDERR.
                if let Ok(end) = response.finish().await {
                    body::report(&end);
                }
                let error = parser
                    .finish()
                    .err()
                    .unwrap_or(crate::response::CgiResponseError::EndedBeforeHead { buffered: 0 });
                return Err(GatewayError::BadResponse(error));
            }
        }
    }
}

/// Reads and discards a body nobody will read (after a local-redirect head, or of a response
/// without a body), so that the connection can serve the next request, and reports how the
/// request ended; past [`DRAIN_LIMIT`] bytes the response is dropped instead (which aborts
/// the request or closes the connection).
async fn drain(mut response: ClientResponse) -> Option<fcgi_driver::client::ResponseEnd> {
    let mut seen = 0usize;
    while let Some(piece) = response.chunk().await {
        seen += piece.ok()?.len();
        if seen > DRAIN_LIMIT {
            return None;
        }
    }
    let end = response.finish().await.ok()?;
    body::report(&end);
    Some(end)
}

/// The request a local redirect to `uri` stands for: RFC 3875 §6.2.2 has the server process
/// the new location as a request of its own; like Apache's mod_cgi, we make it a `GET`
/// without a body (the original body was the script's to consume), keeping the headers but
/// those describing the body. An absolute target (HTTP/2's `:authority`) keeps its scheme and
/// authority, so that `HTTP_HOST` survives the redirect.
fn redirected(previous: &Parts, path: PathAndQuery) -> Parts {
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.method = Method::GET;
    parts.uri = match (previous.uri.scheme(), previous.uri.authority()) {
        (Some(scheme), Some(authority)) => Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query(path.clone())
            .build()
            .unwrap_or_else(|_| Uri::from(path)),
        _ => Uri::from(path),
    };
    parts.version = previous.version;
    parts.headers = previous.headers.clone();
    for name in [
        CONTENT_LENGTH,
        CONTENT_TYPE,
        CONTENT_ENCODING,
        CONTENT_LANGUAGE,
        TRANSFER_ENCODING,
        EXPECT,
    ] {
        parts.headers.remove(name);
    }
    parts
}

impl<R, C, B> Service<Request<B>> for Gateway<R, C>
where
    R: Runtime,
    C: Connector,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<GatewayBody>;
    type Error = GatewayError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<GatewayBody>, GatewayError>> + Send>>;

    /// Always ready: the connection pool bounds the work (a request waits up to the client's
    /// `pool_timeout` for a connection). Put a concurrency limit in front to bound it here.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), GatewayError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.serve(request).await })
    }
}

/// `301` to the same path with a `/` added (a directory named without it), query kept.
fn with_slash(parts: &http::request::Parts) -> Response<GatewayBody> {
    let mut location = format!("{}/", parts.uri.path());
    if let Some(q) = parts.uri.query() {
        location.push('?');
        location.push_str(q);
    }
    let mut response = Response::new(GatewayBody::full(""));
    *response.status_mut() = http::StatusCode::MOVED_PERMANENTLY;
    if let Ok(value) = http::HeaderValue::from_str(&location) {
        response.headers_mut().insert(http::header::LOCATION, value);
    }
    response
}
