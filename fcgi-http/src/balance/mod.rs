//! Several FastCGI backends behind one gateway (feature `balance`): requests are spread with
//! `tower::balance` (power of two choices over the requests in flight), and a backend that
//! refuses connections is skipped until it accepts one again ([`HealthChecked`]).
//!
//! This is how a site grows past one php-fpm machine: the same document root on each (or
//! none here, with [`LocalRoot::None`](crate::gateway::LocalRoot::None)), one pool per
//! machine, and this gateway in front.
//!
//! ```no_run
//! # async fn demo() -> Result<(), fcgi_http::gateway::BoxError> {
//! use fcgi_http::balance::{BalanceOptions, Balanced};
//! use fcgi_http::gateway::{Gateway, GatewayConfig};
//! use fcgi_http::request::ScriptResolution;
//! use tower_service::Service;
//!
//! let config = GatewayConfig::new("/var/www/html", ScriptResolution::split_path());
//! let gateways = ["tcp:10.0.0.1:9000", "tcp:10.0.0.2:9000"]
//!     .into_iter()
//!     .map(|addr| {
//!         let client = fcgi_tokio::client(addr.parse()?, Default::default());
//!         Ok(Gateway::new(client, config.clone()))
//!     })
//!     .collect::<Result<Vec<_>, fcgi_http::gateway::BoxError>>()?;
//! let mut balanced = Balanced::new(gateways, BalanceOptions::default())?;
//! let request = http::Request::get("/index.php")
//!     .header("host", "example.com")
//!     .body(http_body_util::Empty::<bytes::Bytes>::new())?;
//! std::future::poll_fn(|cx| balanced.poll_ready(cx)).await?;
//! let response = balanced.call(request).await?;
//! println!("{}", response.status());
//! # Ok(()) }
//! ```

mod health;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use fcgi_driver::client::Connector;
use fcgi_driver::runtime::Runtime;
use http::{Request, Response};
use http_body::Body;
use tower::balance::p2c::Balance;
use tower::buffer::Buffer;
use tower::discover::ServiceList;
use tower::load::{CompleteOnResponse, PendingRequests};
use tower::util::BoxService;
use tower_service::Service;

pub use health::HealthChecked;

use crate::gateway::{BoxError, Gateway, GatewayBody};

/// How [`Balanced`] runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BalanceOptions {
    /// Requests waiting for the balancer at most (tower's `Buffer` bound); more wait for
    /// room. Default 1024.
    pub queue: usize,
    /// The longest wait between two connection attempts to a backend found down (the first
    /// comes after 100 ms, then the wait doubles). Default 2 s.
    pub max_probe_interval: Duration,
}

fcgi_core::__option_setters!(BalanceOptions {
    queue: usize,
    max_probe_interval: Duration,
});

impl Default for BalanceOptions {
    fn default() -> Self {
        Self {
            queue: 1024,
            max_probe_interval: Duration::from_secs(2),
        }
    }
}

/// [`Balanced::new`] was given no gateway.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a balanced gateway needs at least one backend")]
pub struct NoBackends;

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<GatewayBody>, BoxError>> + Send + 'static>>;

/// Gateways to several backends as one cloneable tower service: `tower::balance`'s power of
/// two choices (the less loaded of two backends, by requests in flight) over
/// [`HealthChecked`] gateways, behind a `tower::buffer::Buffer` whose worker runs on the
/// gateways' runtime (so one balancer serves every HTTP connection).
///
/// Errors are [`BoxError`]s wrapping the [`GatewayError`](crate::gateway::GatewayError):
/// [`ErrorsAsResponses`](crate::gateway::ErrorsAsResponses) finds its status through them.
/// See the [module docs](self).
pub struct Balanced<B> {
    buffer: Buffer<Request<B>, ResponseFuture>,
    backends: usize,
}

impl<B: Send + 'static> Clone for Balanced<B> {
    fn clone(&self) -> Self {
        Self {
            buffer: self.buffer.clone(),
            backends: self.backends,
        }
    }
}

impl<B> fmt::Debug for Balanced<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Balanced")
            .field("backends", &self.backends)
            .finish_non_exhaustive()
    }
}

impl<B> Balanced<B>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    /// Balances over `gateways` (one per backend). The balancer's task is spawned on the
    /// first gateway's runtime.
    pub fn new<R: Runtime, C: Connector>(
        gateways: Vec<Gateway<R, C>>,
        options: BalanceOptions,
    ) -> Result<Self, NoBackends> {
        let runtime = gateways
            .first()
            .ok_or(NoBackends)?
            .client()
            .runtime()
            .clone();
        let backends = gateways.len();
        let group = Arc::new(health::Group::default());
        let services: Vec<_> = gateways
            .into_iter()
            .map(|gateway| {
                PendingRequests::new(
                    HealthChecked::new(gateway, Arc::clone(&group), options.max_probe_interval),
                    CompleteOnResponse::default(),
                )
            })
            .collect();
        let balance: Balance<_, Request<B>> =
            Balance::new(ServiceList::new::<Request<B>>(services));
        let (buffer, worker) = Buffer::pair(
            BoxService::<Request<B>, Response<GatewayBody>, BoxError>::new(balance),
            options.queue.max(1),
        );
        runtime.spawn(Box::pin(worker));
        Ok(Self { buffer, backends })
    }

    /// The number of backends.
    pub fn backends(&self) -> usize {
        self.backends
    }
}

impl<B> Service<Request<B>> for Balanced<B>
where
    B: Send + 'static,
{
    type Response = Response<GatewayBody>;
    type Error = BoxError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.buffer.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        Box::pin(self.buffer.call(request))
    }
}
