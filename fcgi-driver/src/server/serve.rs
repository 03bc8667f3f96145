//! The accept loop: admission (connection limit, `FCGI_WEB_SERVER_ADDRS`), one driver task
//! per connection, and graceful shutdown.

use std::io;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use super::driver::Driver;
use super::handler::Handler;
use super::options::ServerOptions;
use super::registry::Member;
use super::state::{ServerState, ServerStats};
use crate::runtime::{BoxFuture, Listener, Peer, Runtime};
use crate::sync::{NotifyWait, SignalWait};

/// A FastCGI server on some runtime: accepts connections from a [`Listener`] and runs a
/// [`Handler`] for every request.
///
/// Runtime adapters (fcgi-tokio, fcgi-smol) wrap this with their own listeners.
#[derive(Debug)]
pub struct Server<R: Runtime> {
    rt: R,
    opts: Arc<ServerOptions>,
    state: Arc<ServerState>,
}

/// Starts a graceful shutdown of a [`Server`] from anywhere.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    state: Arc<ServerState>,
}

impl ShutdownHandle {
    /// Stops accepting connections; each connection closes once its active requests are done
    /// (idle kept-alive connections at once). After the server's `shutdown_timeout` the rest
    /// are closed and their handlers cancelled. `serve` returns when every connection is gone.
    pub fn shutdown(&self) {
        self.state.draining.set();
    }

    /// Connections currently holding a place under `max_connections` (an evicted
    /// connection finishing its last request no longer does).
    pub fn connections(&self) -> usize {
        self.state
            .connections
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Requests currently being handled, across connections.
    pub fn requests(&self) -> usize {
        self.state
            .requests
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Live counts of what the server holds: connections, tasks, request entries and
    /// registered waiters. Each falls back to zero once what made it is gone.
    ///
    /// ```
    /// # fn demo<R: fcgi_driver::runtime::Runtime>(server: &fcgi_driver::server::Server<R>) {
    /// let stats = server.shutdown_handle().stats();
    /// println!("{} connections, {} handler tasks", stats.connections, stats.handler_tasks);
    /// # }
    /// ```
    pub fn stats(&self) -> ServerStats {
        self.state.stats()
    }
}

impl<R: Runtime> Server<R> {
    /// A server with these options on runtime `rt`.
    pub fn new(rt: R, mut opts: ServerOptions) -> Self {
        opts.core.max_conns = u32::try_from(opts.max_connections).unwrap_or(u32::MAX);
        opts.core.max_reqs = u32::try_from(opts.max_requests).unwrap_or(u32::MAX);
        opts.web_server_addrs = opts.web_server_addrs.resolve();
        Self {
            rt,
            opts: Arc::new(opts),
            state: Arc::new(ServerState::default()),
        }
    }

    /// The options in effect (with `FCGI_WEB_SERVER_ADDRS` resolved).
    pub fn options(&self) -> &ServerOptions {
        &self.opts
    }

    /// A handle to shut the server down gracefully.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            state: Arc::clone(&self.state),
        }
    }

    /// Accepts and serves connections until [`ShutdownHandle::shutdown`], then waits for
    /// in-flight requests (up to `shutdown_timeout`) and returns.
    pub async fn serve<L: Listener, H: Handler>(
        &self,
        mut listener: L,
        handler: H,
    ) -> io::Result<()> {
        let handler = Arc::new(handler);
        let mut backoff: Option<BoxFuture<()>> = None;
        let mut draining = SignalWait::default();
        std::future::poll_fn(|cx| {
            loop {
                if draining.poll(&self.state.draining, cx).is_ready() {
                    return Poll::Ready(());
                }
                if let Some(sleep) = &mut backoff {
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    backoff = None;
                }
                match listener.poll_accept(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(e)) => {
                        // EMFILE and friends: back off instead of spinning.
                        crate::log::warn("accept failed", &e);
                        backoff = Some(self.rt.sleep(Duration::from_millis(50)));
                    }
                    Poll::Ready(Ok((io, peer))) => self.admit(io, peer, &handler),
                }
            }
        })
        .await;
        drop(listener);
        // Grace period, then force.
        let mut grace = Some(self.rt.sleep(self.opts.shutdown_timeout));
        let mut closed = NotifyWait::default();
        std::future::poll_fn(|cx| {
            loop {
                closed.arm(&self.state.no_connections);
                // Every connection task, including evicted ones finishing a request.
                if self.state.registry.len() == 0 {
                    return Poll::Ready(());
                }
                if grace
                    .as_mut()
                    .is_some_and(|g| g.as_mut().poll(cx).is_ready())
                {
                    grace = None;
                    self.state.force.set();
                }
                if closed.poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
        })
        .await;
        Ok(())
    }

    fn admit<T: crate::runtime::Transport, H: Handler>(&self, io: T, peer: Peer, handler: &Arc<H>) {
        if let Peer::Tcp(addr) = &peer
            && !self.opts.web_server_addrs.allows(addr.ip())
        {
            crate::log::info("peer not in FCGI_WEB_SERVER_ADDRS, closed", addr);
            return;
        }
        // At the cap, the most expendable open connection gives its place to this one.
        let max = self.opts.max_connections;
        if !self.state.try_acquire_connection(max)
            && !self.state.registry.evict_one()
            // A place may have freed up meanwhile.
            && !self.state.try_acquire_connection(max)
        {
            crate::log::info(
                "connection limit reached, every connection busy: closed",
                &peer,
            );
            return;
        }
        let member = Member::join(&self.state);
        let peer_for_span = peer.clone();
        let driver = Driver::new(
            io,
            peer,
            member,
            self.rt.clone(),
            Arc::clone(handler),
            Arc::clone(&self.opts),
            Arc::clone(&self.state),
        );
        let span = crate::log::connection_span(&peer_for_span);
        // The connection's place is given back when its driver (and so its registry
        // membership) is dropped: when it ends, or if the runtime drops the task.
        self.rt
            .spawn(Box::pin(crate::log::in_span(span, async move {
                match driver.run().await {
                    Ok(()) => crate::log::debug("connection closed", &"ok"),
                    Err(e) => crate::log::debug("connection ended", &e),
                }
            })));
    }
}
