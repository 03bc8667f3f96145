//! The tokio [`Harness`] of the shared suites (`fcgi_testkit::behaviour`,
//! `fcgi_testkit::php_fpm_suite`): a two-worker multi-thread runtime per scenario, or a
//! current-thread runtime where a scenario asks for one.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use fcgi_testkit::behaviour::Harness;
use fcgi_tokio::{Backend, Listener, Stream, TokioConnector, TokioRuntime};

/// A tokio runtime per scenario.
pub(crate) struct TokioHarness {
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for TokioHarness {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

impl TokioHarness {
    fn rt(&self) -> &tokio::runtime::Runtime {
        self.rt.as_ref().expect("runtime present until drop")
    }
}

impl Harness for TokioHarness {
    type Rt = TokioRuntime;
    type Io = Stream;
    type Listener = Listener;
    type Connector = TokioConnector;

    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        Self { rt: Some(rt) }
    }

    fn new_single_threaded() -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        Self { rt: Some(rt) }
    }

    fn runtime(&self) -> TokioRuntime {
        TokioRuntime
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.rt().block_on(future)
    }

    async fn bind_tcp(&self) -> io::Result<(Listener, SocketAddr)> {
        let l = Listener::bind_tcp(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = l.local_addr().expect("a TCP listener has an address");
        Ok((l, addr))
    }

    async fn bind_unix(&self, path: &Path) -> io::Result<Listener> {
        Listener::bind_unix(path)
    }

    fn tcp_connector(&self, addr: SocketAddr) -> TokioConnector {
        Backend::Tcp(addr).into()
    }

    fn connector(&self, backend: Backend) -> TokioConnector {
        backend.into()
    }

    fn unix_connector(&self, path: &Path) -> TokioConnector {
        Backend::Unix(path.into()).into()
    }

    fn nodelay(io: &Stream) -> Option<bool> {
        match io {
            Stream::Tcp(s) => s.nodelay().ok(),
            _ => None,
        }
    }
}
