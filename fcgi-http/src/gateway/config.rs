//! What a [`Gateway`](super::Gateway) is configured with.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::request::{CgiConfig, ConnInfo, ScriptResolution};
use crate::response::ParserConfig;

/// What to do with a request body whose length is not known up front (HTTP/1.1 chunked, or
/// HTTP/2 and HTTP/3 without `content-length`).
///
/// php-fpm (and PHP in general) reads exactly `CONTENT_LENGTH` bytes of `FCGI_STDIN` and
/// ignores a body sent without it, so streaming such a body would silently drop it. nginx
/// reads the whole body first (`client_body_buffer_size` in memory, then a temporary file) and
/// sends its exact length; [`Buffer`](Self::Buffer) does the same.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnknownLength {
    /// Answer `411 Length Required` without reading the body.
    Reject,
    /// Read the whole body before sending the request: up to `memory` bytes in memory; beyond
    /// that, if `spill_dir` is set, into an unnamed temporary file there (removed when the
    /// request ends, even on a crash); at most `max_bytes` in all (`413 Content Too Large`
    /// beyond).
    ///
    /// The temporary file is written and read with blocking calls from the request's task;
    /// they go to the page cache, as nginx's do, but a slow disk stalls that task's thread.
    Buffer {
        /// Bytes kept in memory before spilling.
        memory: usize,
        /// Directory for the temporary file; `None` refuses bodies over `memory` with 413.
        spill_dir: Option<PathBuf>,
        /// Largest accepted body, in memory and on disk together.
        max_bytes: u64,
    },
}

impl Default for UnknownLength {
    /// Buffer up to 1 MiB in memory and no more (nginx's default `client_max_body_size` is
    /// 1 MiB). Set a `spill_dir` to accept larger chunked uploads.
    fn default() -> Self {
        Self::Buffer {
            memory: 1024 * 1024,
            spill_dir: None,
            max_bytes: 1024 * 1024,
        }
    }
}

/// Settings of a [`Gateway`](super::Gateway).
///
/// ```
/// use fcgi_http::gateway::{GatewayConfig, UnknownLength};
/// use fcgi_http::request::ScriptResolution;
///
/// let mut config = GatewayConfig::new("/var/www/app/public", ScriptResolution::split_path());
/// config.unknown_length = UnknownLength::Buffer {
///     memory: 256 * 1024,
///     spill_dir: Some(std::env::temp_dir()),
///     max_bytes: 64 * 1024 * 1024,
/// };
/// config.max_body_bytes = Some(64 * 1024 * 1024);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// Document root, script resolution, `SERVER_SOFTWARE` and `SERVER_NAME`.
    pub cgi: CgiConfig,
    /// How the application's response head is read (size cap, local redirects, default
    /// `Content-Type`).
    pub response: ParserConfig,
    /// Bodies of unknown length.
    pub unknown_length: UnknownLength,
    /// Largest request body accepted, like nginx's `client_max_body_size` (`413` beyond).
    /// A `content-length` over it is refused before anything is read or sent. Default none.
    pub max_body_bytes: Option<u64>,
    /// Bodies with a known length up to this many bytes are read whole before the request is
    /// sent (nginx's `fastcgi_request_buffering on`, bounded): a slow client then never holds
    /// an application worker (php-fpm has few), and the request can be replayed on a fresh
    /// connection if a pooled one turns out dead. Larger bodies are streamed as they arrive.
    /// Default 64 KiB.
    pub buffer_body_up_to: u64,
    /// Longest the client may take to send a body the gateway reads before sending the
    /// request (bodies up to [`buffer_body_up_to`](Self::buffer_body_up_to), and bodies of
    /// unknown length), and longest a streamed body may go without a byte: `408 Request
    /// Timeout` beyond (a trickling client must not hold an application worker forever).
    /// Default 60 s.
    pub body_read_timeout: Duration,
    /// Local redirects (`Location: /path` without `Status`) followed for one request before
    /// giving up with `502` (nginx stops a cycle at 10 as well). Default 10.
    pub max_internal_redirects: u32,
    /// Where the gateway sees the application's files, to check each script before sending
    /// anything (it must be a regular file inside the root; the root and the script are
    /// resolved through symbolic links, so `current -> releases/N` deployments work and a
    /// link out of the root does not): `404` otherwise, as nginx's
    /// `try_files $fastcgi_script_name =404`. Default [`LocalRoot::SameAsDocumentRoot`].
    pub local_root: LocalRoot,
    /// Try-files mode (needs a local root): nginx's `try_files $uri $uri/ /FILE?$args` and
    /// Caddy's `php_fastcgi`, the layout WordPress, Laravel and most PHP sites expect. A path
    /// naming an existing script runs it (with `PATH_INFO` after it, as the split-path
    /// resolution finds it); an existing file that is not a script is served by
    /// [`static_files`](Self::static_files); a directory with its index runs the index (a
    /// directory named without its trailing `/` is redirected to it, 301); anything else runs
    /// this front controller (`"index.php"`), with `REQUEST_URI` as received. `None` (the
    /// default): scripts by path only (see [`ScriptResolution`](crate::request::ScriptResolution)).
    /// Without a local root (none configured, or the document root does not exist here),
    /// there is nothing to try: scripts are resolved by path.
    pub try_files: Option<String>,
    /// Who serves static files in try-files mode: `fcgi_tokio::http::static_files()`
    /// (tower-http: ranges, conditional requests, content types, precompressed variants).
    /// `None` (the default; and on smol, which tower-http's file service does not run on):
    /// a static file is answered `404`, unless you plug in your own [`StaticFiles`].
    pub static_files: Option<StaticFilesHandle>,
    /// Connection facts used when a request carries none (the HTTP server glue should insert
    /// a [`ConnInfo`] per connection; see the [module docs](super) for what else is read).
    /// Under axum's `ConnectInfo<SocketAddr>`, which knows only the client, its `local` and
    /// `tls` still apply: set `local` to the listener's address. Default: `127.0.0.1:80` ←
    /// `127.0.0.1:0`, no TLS.
    pub fallback_conn_info: ConnInfo,
}

fcgi_core::__option_setters!(GatewayConfig {
    cgi: CgiConfig,
    response: ParserConfig,
    unknown_length: UnknownLength,
    max_body_bytes: Option<u64>,
    buffer_body_up_to: u64,
    body_read_timeout: Duration,
    max_internal_redirects: u32,
    local_root: LocalRoot,
    try_files: Option<String>,
    static_files: Option<StaticFilesHandle>,
    fallback_conn_info: ConnInfo,
});

impl GatewayConfig {
    /// A configuration with the given document root (as the FastCGI application sees it) and
    /// script resolution, and defaults for the rest.
    pub fn new(document_root: impl Into<String>, script: ScriptResolution) -> Self {
        Self {
            cgi: CgiConfig::new(document_root, script),
            response: ParserConfig::default(),
            unknown_length: UnknownLength::default(),
            max_body_bytes: None,
            buffer_body_up_to: 64 * 1024,
            body_read_timeout: Duration::from_secs(60),
            max_internal_redirects: 10,
            local_root: LocalRoot::SameAsDocumentRoot,
            try_files: None,
            static_files: None,
            fallback_conn_info: ConnInfo::new(
                SocketAddr::from((Ipv4Addr::LOCALHOST, 80)),
                SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
                false,
            ),
        }
    }
}

/// The document root as the gateway sees it (see [`GatewayConfig::local_root`]).
///
/// `DOCUMENT_ROOT` and `SCRIPT_FILENAME` name files as the FastCGI application sees them;
/// the gateway may see them elsewhere (php-fpm in another container, the same files mounted
/// at another path), or not at all.
///
/// ```
/// use fcgi_http::gateway::{GatewayConfig, LocalRoot};
/// use fcgi_http::request::ScriptResolution;
/// let mut config = GatewayConfig::new("/var/www/html", ScriptResolution::split_path());
/// // php-fpm runs in a container that mounts ./site at /var/www/html:
/// config.local_root = LocalRoot::Path("./site".into());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LocalRoot {
    /// The document root's own path, when it exists on this machine when the gateway is
    /// made; otherwise no check (the application runs elsewhere).
    #[default]
    SameAsDocumentRoot,
    /// The document root is this directory here.
    Path(std::path::PathBuf),
    /// Never touch the file system: every resolved script is sent (the application decides,
    /// as behind nginx without `try_files`).
    None,
}

/// Serves the static files of try-files mode (see [`GatewayConfig::static_files`]).
///
/// `file` is the file's path on this machine, already checked: a regular file inside the
/// local root, symbolic links resolved. The request's method and headers (`Range`,
/// `If-None-Match`, `Accept-Encoding`, ...) are the client's.
pub trait StaticFiles: Send + Sync + 'static {
    /// Answers `request` with the contents of `file`.
    fn serve(
        &self,
        request: http::Request<()>,
        file: std::path::PathBuf,
    ) -> fcgi_driver::runtime::BoxFuture<http::Response<super::GatewayBody>>;
}

/// A shared [`StaticFiles`] (what [`GatewayConfig::static_files`] holds).
#[derive(Clone)]
pub struct StaticFilesHandle(pub std::sync::Arc<dyn StaticFiles>);

impl std::fmt::Debug for StaticFilesHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StaticFiles")
    }
}
