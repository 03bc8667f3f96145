//! Connecting to a backend with async-net.

use std::io;

use async_net::TcpStream;
use async_net::unix::UnixStream;
use fcgi_driver::client::{Backend, Connector};
use fcgi_driver::runtime::BoxFuture;

use crate::io::FuturesIo;
use crate::listener::Stream;

/// Opens connections to a [`Backend`] (TCP with `TCP_NODELAY`, or a Unix socket).
#[derive(Debug, Clone)]
pub struct SmolConnector {
    backend: Backend,
}

impl SmolConnector {
    /// A connector for `backend`.
    pub fn new(backend: Backend) -> Self {
        Self { backend }
    }
}

impl Connector for SmolConnector {
    type Io = Stream;

    fn backend(&self) -> Option<&Backend> {
        Some(&self.backend)
    }

    fn connect(&self) -> BoxFuture<io::Result<Stream>> {
        let backend = self.backend.clone();
        Box::pin(async move {
            match backend {
                Backend::Tcp(addr) => {
                    let s = TcpStream::connect(addr).await?;
                    s.set_nodelay(true)?;
                    Ok(Stream::Tcp(FuturesIo(s)))
                }
                Backend::Name { host, port } => {
                    // Resolved now, every time: a moved service is followed.
                    let s = TcpStream::connect((host.as_str(), port)).await?;
                    s.set_nodelay(true)?;
                    Ok(Stream::Tcp(FuturesIo(s)))
                }
                Backend::Unix(path) => {
                    Ok(Stream::Unix(FuturesIo(UnixStream::connect(path).await?)))
                }
                other => Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("backend {other} is not supported"),
                )),
            }
        })
    }
}
