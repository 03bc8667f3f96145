//! Everything a server can be configured with.

use std::net::IpAddr;
use std::time::Duration;

use fcgi_core::server::ServerConfig;

/// Which peers may connect over TCP (spec 3.2, `FCGI_WEB_SERVER_ADDRS`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WebServerAddrs {
    /// Read the comma-separated list from the `FCGI_WEB_SERVER_ADDRS` environment variable
    /// when the server starts; unset or empty means any peer (the default).
    #[default]
    FromEnv,
    /// Any peer.
    Any,
    /// Only these addresses.
    Only(Vec<IpAddr>),
}

impl WebServerAddrs {
    /// Parses a `FCGI_WEB_SERVER_ADDRS` value; entries that are not IP addresses are
    /// skipped. An empty list means any peer.
    pub fn parse(list: &str) -> Self {
        let addrs: Vec<IpAddr> = list
            .split(',')
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        if addrs.is_empty() {
            Self::Any
        } else {
            Self::Only(addrs)
        }
    }

    /// Resolves `FromEnv` against the environment.
    pub fn resolve(&self) -> Self {
        match self {
            Self::FromEnv => std::env::var("FCGI_WEB_SERVER_ADDRS")
                .map(|v| Self::parse(&v))
                .unwrap_or(Self::Any),
            other => other.clone(),
        }
    }

    /// Whether a TCP peer at `ip` may connect (IPv4-mapped IPv6 compared as IPv4).
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match self {
            Self::Only(list) => list.contains(&ip),
            _ => true,
        }
    }
}

/// Server configuration: the protocol rules (`core`) plus what the adapter enforces.
///
/// Built from `Default` with one chainable setter per field (or field by field on a `let
/// mut`):
///
/// ```
/// use std::time::Duration;
/// use fcgi_driver::fcgi_core::server::ServerConfig;
/// use fcgi_driver::server::ServerOptions;
/// let opts = ServerOptions::default()
///     .max_connections(256)
///     .keepalive_timeout(Duration::from_secs(10))
///     .core(ServerConfig::default().multiplex(false));
/// assert_eq!(opts.max_connections, 256);
/// assert!(!opts.core.multiplex);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerOptions {
    /// Protocol configuration of every connection (multiplexing, roles, limits, padding).
    /// Its advertised `max_conns` / `max_reqs` are overwritten from the two fields below.
    pub core: ServerConfig,
    /// Connections served at once. At the cap, a new connection takes the place of the most
    /// expendable open one (one in its lingering close, then one that has not sent a request,
    /// then the least recently used kept-alive one with no active request); when every
    /// connection is serving a request, the new one is closed at once (never queued).
    /// Advertised as `FCGI_MAX_CONNS`. Default 1024.
    pub max_connections: usize,
    /// Requests handled at once across all connections; beyond it a request is ended with
    /// `OVERLOADED`. Advertised as `FCGI_MAX_REQS`. Default 1024.
    pub max_requests: usize,
    /// Largest request body (`STDIN`) a handler is given; beyond it the rest is dropped
    /// (never buffered) and the handler's next read fails with `InvalidData`, so it can
    /// answer 413. Default none (the handler decides as it reads).
    pub max_stdin_bytes: Option<u64>,
    /// The same for a Filter's data file (`DATA`). Default none.
    pub max_data_bytes: Option<u64>,
    /// Close a connection (once idle) after it has served this many requests. Default none.
    pub max_requests_per_connection: Option<u64>,
    /// Longest wait for more input while a request still expects some. Default 60 s.
    pub read_timeout: Duration,
    /// Longest a pending write may make no progress. Default 60 s.
    pub write_timeout: Duration,
    /// Longest a connection with no active request stays open. Default 60 s.
    pub keepalive_timeout: Duration,
    /// Longest a new connection may take to send its first complete request head (its
    /// `BEGIN_REQUEST` and all of its `PARAMS`); a later request on a kept-alive connection
    /// gets as long from its `BEGIN_REQUEST` to complete its `PARAMS`. Web servers send
    /// them at once; a connection that sends nothing, or trickles, is closed after this.
    /// Default 10 s.
    pub first_request_timeout: Duration,
    /// Lingering close: after the last request of a connection (no keep-conn, the
    /// per-connection limit, shutdown), we shut down our side and read and discard what the
    /// peer still sends for up to this long before closing, so that unread input cannot make
    /// the kernel reset the connection and destroy a response the peer has not read yet (as
    /// nginx and Apache do). Zero closes at once. Default 2 s.
    pub linger_timeout: Duration,
    /// About this many bytes at most (one read more) are read and discarded while
    /// lingering. Default 1 MiB.
    pub linger_bytes: usize,
    /// Graceful shutdown: how long in-flight requests may run on after it starts. Default 30 s.
    pub shutdown_timeout: Duration,
    /// Which TCP peers may connect.
    pub web_server_addrs: WebServerAddrs,
}

fcgi_core::__option_setters!(ServerOptions {
    core: ServerConfig,
    max_connections: usize,
    max_requests: usize,
    max_stdin_bytes: Option<u64>,
    max_data_bytes: Option<u64>,
    max_requests_per_connection: Option<u64>,
    read_timeout: Duration,
    write_timeout: Duration,
    keepalive_timeout: Duration,
    first_request_timeout: Duration,
    linger_timeout: Duration,
    linger_bytes: usize,
    shutdown_timeout: Duration,
    web_server_addrs: WebServerAddrs,
});

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            core: ServerConfig::default(),
            max_connections: 1024,
            max_requests: 1024,
            max_stdin_bytes: None,
            max_data_bytes: None,
            max_requests_per_connection: None,
            read_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(60),
            keepalive_timeout: Duration::from_secs(60),
            first_request_timeout: Duration::from_secs(10),
            linger_timeout: Duration::from_secs(2),
            linger_bytes: 1024 * 1024,
            shutdown_timeout: Duration::from_secs(30),
            web_server_addrs: WebServerAddrs::default(),
        }
    }
}
