//! async-net sockets for the driver: TCP (with `TCP_NODELAY`), Unix, and the socket inherited
//! on fd 0.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::path::Path;
use std::task::{Context, Poll};

use async_net::unix::{UnixListener, UnixStream};
use async_net::{TcpListener, TcpStream};
use bytes::BytesMut;
use fcgi_driver::runtime::{BoxFuture, Peer, Transport};
use fcgi_driver::{InheritedListener, inherited_listener};

use crate::io::FuturesIo;

/// A connected TCP or Unix stream.
#[derive(Debug)]
#[non_exhaustive]
pub enum Stream {
    /// TCP (with `TCP_NODELAY` set).
    Tcp(FuturesIo<TcpStream>),
    /// Unix domain.
    Unix(FuturesIo<UnixStream>),
}

impl Stream {
    /// Whether `TCP_NODELAY` is set (`None` for Unix sockets).
    pub fn nodelay(&self) -> Option<bool> {
        match self {
            Self::Tcp(s) => s.0.nodelay().ok(),
            Self::Unix(_) => None,
        }
    }
}

impl Transport for Stream {
    fn poll_read_buf(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        match self {
            Self::Tcp(s) => s.poll_read_buf(cx, buf),
            Self::Unix(s) => s.poll_read_buf(cx, buf),
        }
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self {
            Self::Tcp(s) => s.poll_write_vectored(cx, bufs),
            Self::Unix(s) => s.poll_write_vectored(cx, bufs),
        }
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Self::Tcp(s) => s.poll_shutdown(cx),
            Self::Unix(s) => s.poll_shutdown(cx),
        }
    }
}

type Accepting = BoxFuture<io::Result<(Stream, Peer)>>;

/// Where a server accepts connections.
pub struct Listener {
    kind: Kind,
    accepting: Option<Accepting>,
}

#[derive(Clone)]
enum Kind {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Tcp(l) => f
                .debug_tuple("Listener::Tcp")
                .field(&l.local_addr().ok())
                .finish(),
            Kind::Unix(_) => f.write_str("Listener::Unix"),
        }
    }
}

impl Listener {
    fn new(kind: Kind) -> Self {
        Self {
            kind,
            accepting: None,
        }
    }

    /// Listens on a TCP address.
    pub async fn bind_tcp(addr: SocketAddr) -> io::Result<Self> {
        Ok(Self::new(Kind::Tcp(TcpListener::bind(addr).await?)))
    }

    /// Listens on a Unix socket path. A stale socket file left by a previous run (one that
    /// nobody accepts on) is replaced; any other existing file is an error.
    pub fn bind_unix(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        match UnixListener::bind(path) {
            Ok(l) => Ok(Self::new(Kind::Unix(l))),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && is_stale_socket(path) => {
                std::fs::remove_file(path)?;
                Ok(Self::new(Kind::Unix(UnixListener::bind(path)?)))
            }
            Err(e) => Err(e),
        }
    }

    /// The listening socket a web server left on fd 0 (Apache mod_fcgid, lighttpd,
    /// spawn-fcgi), if there is one.
    pub fn inherited() -> io::Result<Option<Self>> {
        Ok(match inherited_listener()? {
            None => None,
            Some(InheritedListener::Tcp(l)) => {
                Some(Self::new(Kind::Tcp(TcpListener::try_from(l)?)))
            }
            Some(InheritedListener::Unix(l)) => {
                Some(Self::new(Kind::Unix(UnixListener::try_from(l)?)))
            }
        })
    }

    /// A listener the program opened with `std::net` (set non-blocking here).
    ///
    /// ```no_run
    /// let std_listener = std::net::TcpListener::bind("127.0.0.1:9000")?;
    /// let listener = fcgi_smol::Listener::from_std_tcp(std_listener)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_std_tcp(listener: std::net::TcpListener) -> io::Result<Self> {
        Ok(Self::new(Kind::Tcp(TcpListener::try_from(listener)?)))
    }

    /// A Unix listener the program opened with `std::os::unix::net` (set non-blocking here).
    pub fn from_std_unix(listener: std::os::unix::net::UnixListener) -> io::Result<Self> {
        Ok(Self::new(Kind::Unix(UnixListener::try_from(listener)?)))
    }

    /// The local TCP address, if this is a TCP listener.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.kind {
            Kind::Tcp(l) => l.local_addr().ok(),
            Kind::Unix(_) => None,
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
        let accepting = self.accepting.get_or_insert_with(|| {
            let kind = self.kind.clone();
            Box::pin(async move {
                match kind {
                    Kind::Tcp(l) => {
                        let (s, addr) = l.accept().await?;
                        s.set_nodelay(true)?;
                        Ok((Stream::Tcp(FuturesIo(s)), Peer::Tcp(addr)))
                    }
                    Kind::Unix(l) => {
                        let (s, _) = l.accept().await?;
                        Ok((Stream::Unix(FuturesIo(s)), Peer::Unix))
                    }
                }
            })
        });
        let r = accepting.as_mut().poll(cx);
        if r.is_ready() {
            self.accepting = None;
        }
        r
    }
}
