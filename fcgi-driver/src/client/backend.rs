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
/// // A name (docker-compose, Kubernetes services): resolved again on every connect.
/// assert_eq!("php:9000".parse::<Backend>().unwrap(), Backend::Name { host: "php".into(), port: 9000 });
/// assert_eq!("tcp:[::1]:9000".parse::<Backend>().unwrap(), Backend::Tcp("[::1]:9000".parse().unwrap()));
/// assert!("php".parse::<Backend>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// A TCP address (php-fpm `listen = 127.0.0.1:9000`).
    Tcp(SocketAddr),
    /// A host name and port (`php:9000`), resolved on each new connection, so that a service
    /// that moves (a restarted container, a rescheduled pod) is followed. Each address the
    /// name resolves to is tried in turn.
    Name {
        /// The host name.
        host: String,
        /// The port.
        port: u16,
    },
    /// A Unix socket path (php-fpm `listen = /run/php/php-fpm.sock`).
    Unix(PathBuf),
}

impl std::str::FromStr for Backend {
    type Err = io::Error;
    /// `tcp:HOST:PORT`, `unix:PATH`, a bare `HOST:PORT`, or a bare absolute path. `HOST` is
    /// an IP address (IPv6 in brackets) or a name.
    fn from_str(s: &str) -> io::Result<Self> {
        if let Some(path) = s.strip_prefix("unix:") {
            return Ok(Self::Unix(path.into()));
        }
        if s.starts_with('/') {
            return Ok(Self::Unix(s.into()));
        }
        let addr = s.strip_prefix("tcp:").unwrap_or(s);
        if let Ok(a) = addr.parse() {
            return Ok(Self::Tcp(a));
        }
        let invalid =
            |why: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("{s:?}: {why}"));
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| invalid("expected HOST:PORT, unix:PATH or an absolute path"))?;
        let port = port.parse().map_err(|_| invalid("bad port"))?;
        let name_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        if !name_ok {
            return Err(invalid("bad host name"));
        }
        Ok(Self::Name {
            host: host.to_owned(),
            port,
        })
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp(a) => write!(f, "tcp:{a}"),
            Self::Name { host, port } => write!(f, "tcp:{host}:{port}"),
            Self::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}
