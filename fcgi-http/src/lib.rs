//! # fcgi-http
//!
//! FastCGI ⇄ HTTP, runtime-free. What exists so far (issue 5 is in progress):
//!
//! - [`request`]: an HTTP request head → the CGI variables (`PARAMS`) nginx's stock
//!   `fastcgi_params` would send, with script resolution (front controller, or
//!   `fastcgi_split_path_info`-style) that refuses traversal, NUL and non-scripts, and the
//!   header rules that close httpoxy and underscore spoofing.
//! - [`response`]: the incremental CGI response head parser (httparse-based, capped) that
//!   turns a Responder's `STDOUT` into an HTTP status and headers, with `Status`,
//!   `Location` and local-redirect rules, and never buffers the body.
//!
//! The HTTP client and server (tower services over `fcgi-driver`) come next.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use fcgi_core;

pub mod gateway;
pub mod request;
pub mod response;

pub use request::{CgiConfig, ConnInfo, MapError, ScriptResolution, build_params};
pub use response::{
    CgiResponseError, CgiResponseParser, Head, LocalRedirect, ParsedHead, ParserConfig,
};
