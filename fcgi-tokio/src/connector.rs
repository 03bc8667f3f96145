//! Connecting to a backend over TCP (with `TCP_NODELAY`) or a Unix socket.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use fcgi_driver::client::Connector;
use fcgi_driver::runtime::BoxFuture;
use tokio::net::{TcpStream, UnixStream};

use crate::listener::Stream;

/// Where a backend listens.
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
        let bad = |e: std::net::AddrParseError| io::Error::new(io::ErrorKind::InvalidInput, e);
        if let Some(path) = s.strip_prefix("unix:") {
            return Ok(Self::Unix(path.into()));
        }
        if s.starts_with('/') {
            return Ok(Self::Unix(s.into()));
        }
        Ok(Self::Tcp(
            s.strip_prefix("tcp:").unwrap_or(s).parse().map_err(bad)?,
        ))
    }
}

impl Connector for Backend {
    type Io = Stream;

    fn connect(&self) -> BoxFuture<io::Result<Stream>> {
        let backend = self.clone();
        Box::pin(async move {
            match backend {
                Backend::Tcp(addr) => {
                    let s = TcpStream::connect(addr).await?;
                    s.set_nodelay(true)?;
                    Ok(Stream::Tcp(s))
                }
                Backend::Unix(path) => Ok(Stream::Unix(UnixStream::connect(path).await?)),
            }
        })
    }
}
