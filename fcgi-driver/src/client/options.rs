//! Client and pool configuration.

use std::time::Duration;

use fcgi_core::client::ClientConfig;

/// Whether requests share a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Multiplexing {
    /// Ask the backend once (`GET_VALUES` for `FCGI_MPXS_CONNS` and `FCGI_MAX_REQS`, on the
    /// first connection) and multiplex only if it says `FCGI_MPXS_CONNS=1`. The default.
    #[default]
    Probe,
    /// One request at a time per connection (what nginx does; right for php-fpm).
    Off,
    /// Up to this many concurrent requests per connection, without asking.
    On(u16),
}

/// How a [`Client`](super::Client) talks to one backend.
///
/// **Sizing against php-fpm:** php-fpm pins one worker to every open connection, busy or
/// idle, so keep `max_connections` below the pool's `pm.max_children` (leave room for other
/// clients of the same pool), and keep `idle_timeout` short so that idle connections give
/// their workers back.
///
/// ```
/// use std::time::Duration;
/// use fcgi_driver::client::ClientOptions;
/// let opts = ClientOptions::default()
///     .max_connections(4) // php-fpm pm.max_children = 5
///     .idle_timeout(Duration::from_secs(5));
/// assert_eq!(opts.max_connections, 4);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// Protocol configuration of each connection (limits, padding). Its
    /// `max_concurrent_requests` is set from `multiplexing`.
    pub core: ClientConfig,
    /// Multiplexing policy.
    pub multiplexing: Multiplexing,
    /// Connections open at once to the backend (busy + idle). Default 8.
    pub max_connections: usize,
    /// Keep connections open between requests (`FCGI_KEEP_CONN`). When off, every request
    /// gets its own connection, which we close after `END_REQUEST`. Default on.
    pub keep_alive: bool,
    /// Close a connection idle this long. Default 15 s.
    pub idle_timeout: Duration,
    /// Close a connection after this many requests. Default none.
    pub max_requests_per_connection: Option<u64>,
    /// Longest wait for a connection to be established. Default 5 s.
    pub connect_timeout: Duration,
    /// Longest wait for a free connection when all `max_connections` are busy. Default 30 s.
    pub pool_timeout: Duration,
    /// Longest silence from the backend while a request waits for its response. Default 60 s.
    pub read_timeout: Duration,
    /// Longest a pending write may make no progress. Default 60 s.
    pub write_timeout: Duration,
    /// Longest a whole request may take, from sending to `END_REQUEST`. Default none.
    pub total_timeout: Option<Duration>,
    /// Largest amount of `STDERR` kept for [`ResponseEnd::stderr`](super::ResponseEnd::stderr);
    /// the rest is counted but dropped. Default 64 KiB.
    pub max_collected_stderr: usize,
}

fcgi_core::__option_setters!(ClientOptions {
    core: ClientConfig,
    multiplexing: Multiplexing,
    max_connections: usize,
    keep_alive: bool,
    idle_timeout: Duration,
    max_requests_per_connection: Option<u64>,
    connect_timeout: Duration,
    pool_timeout: Duration,
    read_timeout: Duration,
    write_timeout: Duration,
    total_timeout: Option<Duration>,
    max_collected_stderr: usize,
});

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            core: ClientConfig::default(),
            multiplexing: Multiplexing::default(),
            max_connections: 8,
            keep_alive: true,
            idle_timeout: Duration::from_secs(15),
            max_requests_per_connection: None,
            connect_timeout: Duration::from_secs(5),
            pool_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(60),
            total_timeout: None,
            max_collected_stderr: 64 * 1024,
        }
    }
}
