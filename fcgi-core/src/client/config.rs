//! What a web-server-side connection may do.

use crate::limits::Limits;
use crate::record::Padding;

/// Configuration of a [`ClientConnection`](super::ClientConnection).
///
/// ```
/// let mut config = fcgi_core::client::ClientConfig::default();
/// config.max_concurrent_requests = 8; // the backend answered FCGI_MPXS_CONNS=1
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Requests in flight at once on this connection. 1 (the default) is what nginx, Apache
    /// and php-fpm do; raise it only for a backend that answers `FCGI_MPXS_CONNS=1`.
    pub max_concurrent_requests: u16,
    /// Input and output caps (`max_params_bytes` bounds `GET_VALUES_RESULT` answers).
    pub limits: Limits,
    /// Padding of records we write. Default: 8-byte alignment.
    pub padding: Padding,
}

crate::__option_setters!(ClientConfig {
    max_concurrent_requests: u16,
    limits: Limits,
    padding: Padding,
});

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            max_concurrent_requests: 1,
            limits: Limits::default(),
            padding: Padding::default(),
        }
    }
}
