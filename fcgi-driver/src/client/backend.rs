//! Where a backend listens.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The address of a FastCGI backend.
///
/// ```
/// use fcgi_driver::client::Backend;
/// assert_eq!("tcp:127.0.0.1:9000".parse::<Backend>().unwrap(), Backend::Tcp("127.0.0.1:9000".parse().unwrap()));
/// assert_eq!("unix:/run/php/fpm.sock".parse::<Backend>().unwrap(), Backend::Unix("/run/php/fpm.sock".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A TCP address (php-fpm `listen = 127.0.0.1:9000`).
    Tcp(SocketAddr),
    /// A Unix socket path (php-fpm `listen = /run/php/php-fpm.sock`).
    Unix(PathBuf),
}

impl std::str::FromStr for Backend {
    type Err = io::Error;
    /// `tcp:HOST:PORT`, `unix:PATH`, a bare `HOST:PORT`, or a bare absolute path.
    fn from_str(s: &str) -> io::Result<Self> {
        if let Some(path) = s.strip_prefix("unix:") {
            return Ok(Self::Unix(path.into()));
        }
        if s.starts_with('/') {
            return Ok(Self::Unix(s.into()));
        }
        s.strip_prefix("tcp:")
            .unwrap_or(s)
            .parse()
            .map(Self::Tcp)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
    }
}
