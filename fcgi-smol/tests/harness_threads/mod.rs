//! The thread-per-connection [`Harness`] of the shared suite: `fcgi_smol::blocking`'s
//! [`thread_runtime`] (every spawned task on a thread of its own, `async_io::block_on`
//! driving it), the runtime under the blocking server.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;

use fcgi_smol::blocking::thread_runtime;
use fcgi_smol::client::Backend;
use fcgi_smol::{Listener, SmolConnector, SmolRuntime, Stream};
use fcgi_testkit::behaviour::Harness;

/// Threads, no executor: nothing to stop but the tasks' own threads, which end with them.
pub(crate) struct ThreadHarness;

impl Harness for ThreadHarness {
    type Rt = SmolRuntime;
    type Io = Stream;
    type Listener = Listener;
    type Connector = SmolConnector;

    fn new() -> Self {
        Self
    }

    /// Every task has its own thread here; there is no single-threaded flavour.
    fn new_single_threaded() -> Self {
        Self
    }

    fn runtime(&self) -> SmolRuntime {
        thread_runtime()
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        async_io::block_on(future)
    }

    async fn bind_tcp(&self) -> io::Result<(Listener, SocketAddr)> {
        let l = Listener::bind_tcp(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let a = l
            .local_addr()
            .ok_or_else(|| io::Error::other("no local address"))?;
        Ok((l, a))
    }

    async fn bind_unix(&self, path: &Path) -> io::Result<Listener> {
        Listener::bind_unix(path)
    }

    fn tcp_connector(&self, addr: SocketAddr) -> SmolConnector {
        SmolConnector::new(Backend::Tcp(addr))
    }

    fn connector(&self, backend: Backend) -> SmolConnector {
        SmolConnector::new(backend)
    }

    fn unix_connector(&self, path: &Path) -> SmolConnector {
        SmolConnector::new(Backend::Unix(path.into()))
    }

    fn nodelay(io: &Stream) -> Option<bool> {
        io.nodelay()
    }
}
