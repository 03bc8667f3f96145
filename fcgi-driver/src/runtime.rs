//! What the driver needs from an async runtime and its sockets — nothing more.
//!
//! An adapter crate implements these two traits (about a hundred lines for tokio or for
//! async-io), and gets every server and client behaviour of this crate unchanged: that is how
//! fcgi-tokio and fcgi-smol cannot drift apart.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Spawning and timers.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// Runs `future` to completion in the background.
    fn spawn(&self, future: BoxFuture<()>);
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<()>;
}

/// A connected byte stream (TCP or Unix socket).
pub trait Transport: Send + Unpin + 'static {
    /// Reads into the spare capacity of `buf` (appending); `Ok(0)` means end of stream.
    fn poll_read_buf(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>>;
    /// Writes from `bufs` in order, as far as the socket takes them.
    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>>;
    /// Shuts down the write side (FIN), after which the peer sees end of stream.
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

/// Who is on the other end of an accepted connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Peer {
    /// A TCP peer.
    Tcp(std::net::SocketAddr),
    /// A Unix-socket peer (unnamed, as web servers' client sockets are).
    Unix,
}

/// A source of accepted connections.
pub trait Listener: Send + 'static {
    /// The accepted stream type.
    type Io: Transport;
    /// Accepts the next connection.
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<(Self::Io, Peer)>>;
}
