//! tokio sockets for the driver: TCP (with `TCP_NODELAY`), Unix, and the socket inherited on
//! fd 0.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::BytesMut;
use fcgi_driver::runtime::{Peer, Transport};
use fcgi_driver::{InheritedListener, inherited_listener};
use tokio::io::AsyncWrite;
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// A connected TCP or Unix stream.
#[derive(Debug)]
#[non_exhaustive]
pub enum Stream {
    /// TCP (with `TCP_NODELAY` set).
    Tcp(TcpStream),
    /// Unix domain.
    Unix(UnixStream),
}

impl Transport for Stream {
    fn poll_read_buf(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        // Through tokio's `poll_read`: after a short read it takes the socket as drained and
        // waits for the next readiness event, instead of a `recv` that would only say
        // EAGAIN (one system call less per request on a kept-alive connection).
        match self {
            Self::Tcp(s) => tokio_util::io::poll_read_buf(Pin::new(s), cx, buf),
            Self::Unix(s) => tokio_util::io::poll_read_buf(Pin::new(s), cx, buf),
        }
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self {
            Self::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Self::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Self::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Where a server accepts connections.
#[derive(Debug)]
#[non_exhaustive]
pub enum Listener {
    /// A TCP listener.
    Tcp(TcpListener),
    /// A Unix-socket listener.
    Unix(UnixListener),
}

impl Listener {
    /// Listens on a TCP address.
    pub async fn bind_tcp(addr: SocketAddr) -> io::Result<Self> {
        Ok(Self::Tcp(TcpListener::bind(addr).await?))
    }

    /// Listens on a Unix socket path. A stale socket file left by a previous run (one that
    /// nobody accepts on) is replaced; any other existing file is an error.
    pub fn bind_unix(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        match UnixListener::bind(path) {
            Ok(l) => Ok(Self::Unix(l)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && is_stale_socket(path) => {
                std::fs::remove_file(path)?;
                Ok(Self::Unix(UnixListener::bind(path)?))
            }
            Err(e) => Err(e),
        }
    }

    /// The listening socket a web server left on fd 0 (Apache mod_fcgid, lighttpd,
    /// spawn-fcgi), if there is one. Must be called inside a tokio runtime.
    pub fn inherited() -> io::Result<Option<Self>> {
        Ok(match inherited_listener()? {
            None => None,
            Some(InheritedListener::Tcp(l)) => {
                l.set_nonblocking(true)?;
                Some(Self::Tcp(TcpListener::from_std(l)?))
            }
            Some(InheritedListener::Unix(l)) => {
                l.set_nonblocking(true)?;
                Some(Self::Unix(UnixListener::from_std(l)?))
            }
        })
    }

    /// The local TCP address, if this is a TCP listener.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Self::Tcp(l) => l.local_addr().ok(),
            Self::Unix(_) => None,
        }
    }
}

fn is_stale_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
        && std::os::unix::net::UnixStream::connect(path).is_err()
}

impl fcgi_driver::runtime::Listener for Listener {
    type Io = Stream;

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<(Stream, Peer)>> {
        match self {
            Self::Tcp(l) => {
                let (s, addr) = ready!(l.poll_accept(cx))?;
                s.set_nodelay(true)?;
                Poll::Ready(Ok((Stream::Tcp(s), Peer::Tcp(addr))))
            }
            Self::Unix(l) => {
                let (s, _) = ready!(l.poll_accept(cx))?;
                Poll::Ready(Ok((Stream::Unix(s), Peer::Unix)))
            }
        }
    }
}
