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

/// Work for a thread where blocking is allowed.
pub type BlockingWork = Box<dyn FnOnce() + Send + 'static>;

/// Spawning, timers, and a place for blocking work.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// Runs `future` to completion in the background.
    fn spawn(&self, future: BoxFuture<()>);
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<()>;
    /// Runs `work` on a thread where blocking is allowed (file-system calls), never on the
    /// executor's own threads: tokio's `spawn_blocking`, the `blocking` crate's pool on smol.
    /// The future completes when `work` has run (or panicked).
    fn spawn_blocking(&self, work: BlockingWork) -> BoxFuture<()>;
}

/// Runs `f` through [`Runtime::spawn_blocking`] and returns what it returns; an error if
/// it panicked.
///
/// ```
/// # async fn demo<R: fcgi_driver::runtime::Runtime>(rt: R) -> std::io::Result<()> {
/// let len = fcgi_driver::runtime::unblock(&rt, || std::fs::metadata("/")).await??.len();
/// # let _ = len; Ok(())
/// # }
/// ```
pub async fn unblock<R: Runtime, T: Send + 'static>(
    rt: &R,
    f: impl FnOnce() -> T + Send + 'static,
) -> io::Result<T> {
    unblock_with(|work| rt.spawn_blocking(work), f).await
}

/// [`unblock`] with the spawner given as a function (for callers that keep the runtime
/// type-erased).
pub async fn unblock_with<T: Send + 'static>(
    spawn_blocking: impl FnOnce(BlockingWork) -> BoxFuture<()>,
    f: impl FnOnce() -> T + Send + 'static,
) -> io::Result<T> {
    let slot = std::sync::Arc::new(std::sync::Mutex::new(None));
    let out = std::sync::Arc::clone(&slot);
    spawn_blocking(Box::new(move || {
        let value = f();
        *out.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
    }))
    .await;
    let value = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
    value.ok_or_else(|| io::Error::other("blocking work panicked"))
}

/// A connected byte stream (TCP or Unix socket).
pub trait Transport: Send + Unpin + 'static {
    /// Reads into the spare capacity of `buf` (appending); `Ok(0)` means end of stream.
    /// `Pending` must mean what it means for any future: the task is woken once a read can
    /// make progress. The drivers rely on it to the letter: after a `Pending` read they do
    /// not read again until the task is woken.
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
