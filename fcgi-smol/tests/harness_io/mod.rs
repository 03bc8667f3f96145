//! The socket half of the futures-io harnesses (smol's executor, async-std's, a thread per
//! task): the same listeners and connectors whatever runs the tasks, written once.

/// The `Harness` methods that bind listeners and make connectors, for an `impl Harness`
/// whose `Listener`, `Connector` and `Io` are fcgi-smol's.
macro_rules! futures_io_sockets {
    () => {
        async fn bind_tcp(&self) -> std::io::Result<(fcgi_smol::Listener, std::net::SocketAddr)> {
            let l = fcgi_smol::Listener::bind_tcp(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
                .await?;
            let a = l
                .local_addr()
                .ok_or_else(|| std::io::Error::other("no local address"))?;
            Ok((l, a))
        }

        async fn bind_unix(&self, path: &std::path::Path) -> std::io::Result<fcgi_smol::Listener> {
            fcgi_smol::Listener::bind_unix(path)
        }

        fn tcp_connector(&self, addr: std::net::SocketAddr) -> fcgi_smol::SmolConnector {
            fcgi_smol::SmolConnector::new(fcgi_smol::client::Backend::Tcp(addr))
        }

        fn connector(&self, backend: fcgi_smol::client::Backend) -> fcgi_smol::SmolConnector {
            fcgi_smol::SmolConnector::new(backend)
        }

        fn unix_connector(&self, path: &std::path::Path) -> fcgi_smol::SmolConnector {
            fcgi_smol::SmolConnector::new(fcgi_smol::client::Backend::Unix(path.into()))
        }

        fn nodelay(io: &fcgi_smol::Stream) -> Option<bool> {
            io.nodelay()
        }
    };
}

pub(crate) use futures_io_sockets;
