//! The shared behavioural suite (fcgi-testkit) on fcgi-smol with async-std's executor.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;

use fcgi_smol::client::Backend;
use fcgi_smol::{Listener, SmolConnector, SmolRuntime, Stream};
use fcgi_testkit::behaviour::Harness;

struct AsyncStdHarness;

impl Harness for AsyncStdHarness {
    type Rt = SmolRuntime;
    type Io = Stream;
    type Listener = Listener;
    type Connector = SmolConnector;

    fn new() -> Self {
        Self
    }

    fn runtime(&self) -> SmolRuntime {
        SmolRuntime::new(|f| {
            async_std::task::spawn(f);
        })
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        async_std::task::block_on(future)
    }

    async fn bind_tcp(&self) -> io::Result<(Listener, SocketAddr)> {
        let l = Listener::bind_tcp(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let a = l.local_addr().unwrap();
        Ok((l, a))
    }

    async fn bind_unix(&self, path: &Path) -> io::Result<Listener> {
        Listener::bind_unix(path)
    }

    fn tcp_connector(&self, addr: SocketAddr) -> SmolConnector {
        SmolConnector::new(Backend::Tcp(addr))
    }

    fn unix_connector(&self, path: &Path) -> SmolConnector {
        SmolConnector::new(Backend::Unix(path.into()))
    }

    fn nodelay(io: &Stream) -> Option<bool> {
        io.nodelay()
    }
}

fcgi_testkit::behaviour_suite!(AsyncStdHarness);
