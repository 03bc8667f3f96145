//! `axum::serve` → [`ConnInfo`] (the `axum` feature).
//!
//! axum hands the make-service of [`Router::into_make_service_with_connect_info`] one
//! [`IncomingStream`] per accepted connection; this is where [`ConnInfo`] is read from it.
//!
//! [`Router::into_make_service_with_connect_info`]: axum::Router::into_make_service_with_connect_info

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::net::TcpListener;

use crate::request::ConnInfo;

/// Both addresses of a TCP connection accepted by [`axum::serve()`]: the peer as the listener
/// reported it, the local address from the socket. `tls` is `false` (`axum::serve` speaks
/// plain HTTP).
///
/// Two kinds of listener cannot give a `ConnInfo`:
///
/// - A Unix-socket listener has no IP addresses to report, so there is no such impl for
///   `tokio::net::UnixListener`: serve it with `into_make_service()`, and the gateway uses
///   [`GatewayConfig::fallback_conn_info`](crate::gateway::GatewayConfig::fallback_conn_info).
/// - A listener wrapped by [`ListenerExt::tap_io`](axum::serve::ListenerExt::tap_io): axum
///   already implements `Connected` for it on behalf of every listener's address type, which
///   Rust's coherence rules take to possibly include `ConnInfo`. Use
///   `into_make_service_with_connect_info::<SocketAddr>()` there: the gateway reads the
///   remote address from it, the local one from the fallback.
///
/// In the (practically unseen) case where the socket cannot tell its local address, the
/// local address is the unspecified address of the peer's family with port 0.
///
/// ```no_run
/// use axum::Router;
/// use fcgi_http::ConnInfo;
/// use fcgi_http::gateway::{Gateway, GatewayConfig};
/// use fcgi_http::request::ScriptResolution;
/// use fcgi_tokio::client::ClientOptions;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = fcgi_tokio::client("tcp:127.0.0.1:9000".parse()?, ClientOptions::default());
/// let php = Gateway::new(client, GatewayConfig::new("/var/www/html", ScriptResolution::split_path()));
/// let app = Router::new().fallback_service(php.errors_as_responses());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// // PHP sees the client's REMOTE_ADDR/REMOTE_PORT and this listener's SERVER_ADDR/SERVER_PORT.
/// axum::serve(listener, app.into_make_service_with_connect_info::<ConnInfo>()).await?;
/// # Ok(()) }
/// ```
impl Connected<IncomingStream<'_, TcpListener>> for ConnInfo {
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))] // `error` is only logged
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        let remote = *stream.remote_addr();
        let local = stream.io().local_addr().unwrap_or_else(|error| {
            crate::__log_warn!(
                target: "fcgi_http::gateway",
                %remote,
                %error,
                "the local address of an accepted connection is unknown"
            );
            let unspecified = match remote.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            };
            SocketAddr::new(unspecified, 0)
        });
        ConnInfo::new(local, remote, false)
    }
}
