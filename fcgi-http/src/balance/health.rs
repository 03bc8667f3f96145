//! A backend's health as its readiness: a gateway whose backend refuses connections is not
//! ready until a connection succeeds again, so that `tower::balance` sends nothing to it
//! meanwhile, and takes it back by itself.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use event_listener::{Event, EventListener};
use fcgi_driver::client::Connector;
use fcgi_driver::runtime::Runtime;
use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use crate::gateway::{BoxError, Gateway, GatewayBody, GatewayError};

/// What the backends of one balanced set share: how many are up, and a wake-up for the
/// readiness waits when that changes.
#[derive(Debug, Default)]
pub(crate) struct Group {
    up: AtomicUsize,
    changed: Event,
}

/// One backend's health.
#[derive(Debug)]
struct Health {
    up: AtomicBool,
    /// A probe task is running (at most one per backend).
    probing: AtomicBool,
    group: Arc<Group>,
}

impl Health {
    fn down(&self) -> bool {
        if !self.up.swap(false, Ordering::SeqCst) {
            return false;
        }
        self.group.up.fetch_sub(1, Ordering::SeqCst);
        self.group.changed.notify(usize::MAX);
        true
    }

    fn up(&self) {
        if !self.up.swap(true, Ordering::SeqCst) {
            self.group.up.fetch_add(1, Ordering::SeqCst);
            self.group.changed.notify(usize::MAX);
        }
    }
}

/// The first wait between two connection attempts to a backend found down; it doubles
/// after each failure up to the `max_probe_interval` of [`BalanceOptions`](super::BalanceOptions).
const FIRST_PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// A [`Gateway`] whose readiness is its backend's health, for `tower::balance`.
///
/// - A request that cannot connect ([`ClientError::is_connect_failure`]: refused,
///   unreachable, connect timeout) marks the backend down. Only the requests already on
///   their way to it fail (502, as behind nginx).
/// - While down, [`poll_ready`](Service::poll_ready) is `Pending`, so a balancer picks
///   another backend, and one task tries to connect, 100 ms after the failure, then at
///   doubling intervals up to a maximum. The first connection that succeeds marks it up and
///   wakes the balancer: the backend comes back by itself.
/// - When every backend of the set is down, all are ready again: each request then tries
///   one (and fails fast while none listens) rather than waiting without end; nginx too
///   tries its servers again when all are marked failed.
///
/// A backend that accepts connections but fails requests is not "down" here: its errors
/// are the application's to report (502, 503 for `OVERLOADED`, 504).
///
/// [`ClientError::is_connect_failure`]: fcgi_driver::client::ClientError::is_connect_failure
pub struct HealthChecked<R: Runtime, C: Connector> {
    gateway: Gateway<R, C>,
    health: Arc<Health>,
    max_probe_interval: Duration,
    /// The wait for a change of health, while not ready.
    listener: Option<EventListener>,
}

impl<R: Runtime, C: Connector> Clone for HealthChecked<R, C> {
    fn clone(&self) -> Self {
        Self {
            gateway: self.gateway.clone(),
            health: Arc::clone(&self.health),
            max_probe_interval: self.max_probe_interval,
            listener: None,
        }
    }
}

impl<R: Runtime, C: Connector> std::fmt::Debug for HealthChecked<R, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthChecked")
            .field("gateway", &self.gateway)
            .field("up", &self.is_up())
            .finish_non_exhaustive()
    }
}

impl<R: Runtime, C: Connector> HealthChecked<R, C> {
    /// `gateway` in the set of backends sharing `group`, up to start with.
    pub(crate) fn new(gateway: Gateway<R, C>, group: Arc<Group>, max_probe: Duration) -> Self {
        group.up.fetch_add(1, Ordering::SeqCst);
        Self {
            gateway,
            health: Arc::new(Health {
                up: AtomicBool::new(true),
                probing: AtomicBool::new(false),
                group,
            }),
            max_probe_interval: max_probe,
            listener: None,
        }
    }

    /// Whether the backend is up (it accepted the last connection tried).
    pub fn is_up(&self) -> bool {
        self.health.up.load(Ordering::SeqCst)
    }

    /// The gateway.
    pub fn gateway(&self) -> &Gateway<R, C> {
        &self.gateway
    }

    fn ready_now(&self) -> bool {
        self.is_up() || self.health.group.up.load(Ordering::SeqCst) == 0
    }

    /// Marks the backend down and starts its probe (once).
    fn failed(&self) {
        if self.health.down() {
            crate::__log_warn!(target: "fcgi_http::balance", backend = ?self.gateway.client(), "backend refuses connections: taken out of the balance until a connection succeeds");
        }
        if self.health.probing.swap(true, Ordering::SeqCst) {
            return;
        }
        let client = self.gateway.client().clone();
        let runtime = client.runtime().clone();
        // The probe holds the health weakly: it stops once the balancer is gone.
        let health: Weak<Health> = Arc::downgrade(&self.health);
        let max = self.max_probe_interval;
        runtime.clone().spawn(Box::pin(async move {
            let mut interval = FIRST_PROBE_INTERVAL.min(max);
            loop {
                runtime.sleep(interval).await;
                let Some(health) = health.upgrade() else {
                    return;
                };
                if client.connect_check().await.is_ok() {
                    health.probing.store(false, Ordering::SeqCst);
                    health.up();
                    crate::__log_info!(target: "fcgi_http::balance", backend = ?client, "backend accepts connections again: back in the balance");
                    return;
                }
                interval = (interval * 2).min(max);
            }
        }));
    }
}

impl<R, C, B> Service<Request<B>> for HealthChecked<R, C>
where
    R: Runtime,
    C: Connector,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<GatewayBody>;
    type Error = GatewayError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<GatewayBody>, GatewayError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), GatewayError>> {
        loop {
            if self.ready_now() {
                self.listener = None;
                return Poll::Ready(Ok(()));
            }
            match &mut self.listener {
                // Listen, then look again: a change in between is not missed.
                None => self.listener = Some(self.health.group.changed.listen()),
                Some(listener) => {
                    if Pin::new(listener).poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.listener = None;
                }
            }
        }
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let result = this.gateway.serve(request).await;
            if let Err(GatewayError::Backend(e)) = &result
                && e.is_connect_failure()
            {
                this.failed();
            }
            result
        })
    }
}
