//! Serving any tower `Service<http::Request<_>>` — an axum `Router`, a `tower` stack — as a
//! FastCGI application behind nginx, Apache httpd or lighttpd.
//!
//! [`ServiceHandler`] is a `fcgi_driver` [`Handler`](fcgi_driver::server::Handler): hand it
//! to a runtime adapter's server and every FastCGI request becomes a call of the service.
//!
//! ```text
//!   PARAMS ──request_parts──▶ http::request::Parts ─┐
//!   STDIN  ──RequestBody────▶ http_body::Body ──────┴─▶ Service::call
//!   DATA   ──FilterData (extension, Filter role)
//!                                                        │ http::Response<B>
//!   STDOUT ◀──encode_head + body frames streamed─────────┘
//!   STDERR ◀──one line per failure   END_REQUEST ◀── app status
//! ```
//!
//! - [`request_parts`]: params → method, URI, version, headers, [`HttpConn`]
//!   (addresses, HTTPS). Pure; its documentation lists every rule.
//! - [`RequestBody`]: `STDIN` as an `http_body::Body`, framed by `CONTENT_LENGTH`.
//! - [`encode_head`]: response head → CGI header block (`Status:` line, headers, no
//!   hop-by-hop headers). The body follows frame by frame as the service produces it.
//! - [`authorizer`]: the Authorizer role's protocol and the [`authorizer::allow`] helper.
//! - [`FilterData`]: the Filter role's data file.
//!
//! # Example: axum behind nginx
//!
//! ```no_run
//! use axum::{Router, extract::Request, routing::{get, post}};
//! use fcgi_http::app::{HttpConn, ServiceHandler};
//! use fcgi_tokio::server::ServerOptions;
//!
//! async fn whoami(req: Request) -> String {
//!     let conn = req.extensions().get::<HttpConn>().copied().unwrap_or_default();
//!     format!("you are {:?}\n", conn.remote_ip)
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let app = Router::new()
//!     .route("/whoami", get(whoami))
//!     .route("/echo", post(|body: String| async move { body }));
//! let listener = fcgi_tokio::Listener::bind_unix("/run/app.sock")?;
//! fcgi_tokio::server(ServerOptions::default())
//!     .serve(listener, ServiceHandler::new(app))
//!     .await
//! # }
//! ```
//!
//! ```text
//! # nginx
//! location / {
//!     include fastcgi_params;              # REQUEST_URI, HTTPS, REMOTE_ADDR, ...
//!     fastcgi_pass unix:/run/app.sock;
//! }
//! ```
//!
//! # What the web server must send
//!
//! `REQUEST_METHOD` and `REQUEST_URI` (or `SCRIPT_NAME`/`PATH_INFO`/`QUERY_STRING`), and
//! `CONTENT_LENGTH` when there is a body. nginx's stock `fastcgi_params` has everything,
//! including `HTTPS`, `REMOTE_PORT` and `SERVER_ADDR`; request headers arrive as `HTTP_*`
//! on their own. Bound the request body with the server's `max_stdin_bytes` (the body then
//! fails with `InvalidData`; answer 413) or in the service (axum's `DefaultBodyLimit`).

pub mod authorizer;
mod body;
mod filter;
mod handler;
mod respond;
mod to_cgi;
mod to_http;

pub use body::RequestBody;
pub use filter::{DataBody, FilterData};
pub use handler::ServiceHandler;
pub use to_cgi::{encode_head, is_dropped};
pub use to_http::{FcgiRequest, HttpConn, ParamsError, request_parts};

/// Application status of a request whose response was written in full (also of a `400` for
/// params that make no HTTP request: the application answered, and a non-zero status would
/// make the web server give up the connection, spec §7).
pub const APP_STATUS_OK: u32 = 0;
/// Application status when the service's `poll_ready` or `call` failed, or it answered with
/// a 1xx status (the web server got a `500`).
pub const APP_STATUS_SERVICE_ERROR: u32 = 1;
/// Application status when the response body failed (before its first byte: the web server
/// got a `500`; later: a truncated response).
pub const APP_STATUS_BODY_ERROR: u32 = 2;
/// Application status when writing to the web server failed (it closed the connection).
pub const APP_STATUS_WRITE_ERROR: u32 = 3;
