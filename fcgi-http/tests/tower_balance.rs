//! The gateway under tower's middleware: `tower::balance` spreads requests over two php-fpm
//! pools (load balancing over several backends is tower's job, not ours), and the timeout and
//! concurrency-limit layers compose with it.
//!
//! What `tower::balance::p2c::Balance` does and does not do, as these tests show:
//! - It picks the less loaded of two services; with `PendingRequests` as the load, requests
//!   in flight at the same time go to different pools.
//! - It evicts a service only when that service's `poll_ready` fails. A [`Gateway`] is
//!   always ready (its pool bounds the work), so a stopped pool keeps getting its share of
//!   the requests, each answered with a backend error (`502`).
//! - A failure detector that turns a backend error into a `poll_ready` error (the small
//!   [`EvictOnBackendError`] below) lets Balance evict the dead pool; retrying the one request
//!   that found it dead (what `tower::retry` with a policy would do) then makes every request
//!   succeed.
//!
//! php-fpm missing: `SKIPPED:` locally, a failure under `CI=true`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use fcgi_http::gateway::{BoxError, Gateway, GatewayBody, GatewayConfig, GatewayError};
use fcgi_http::request::ScriptResolution;
use fcgi_testkit::php_fpm::{Options, PhpFpm, Socket};
use fcgi_tokio::client::ClientOptions;
use fcgi_tokio::{TokioConnector, TokioRuntime};
use futures_util::StreamExt;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use tower::ServiceExt;
use tower::balance::p2c::Balance;
use tower::discover::ServiceList;
use tower::limit::ConcurrencyLimit;
use tower::load::{CompleteOnResponse, Load, PendingRequests};
use tower::timeout::Timeout;
use tower::timeout::error::Elapsed;
use tower_service::Service;

type TokioGateway = Gateway<TokioRuntime, TokioConnector>;
type Req = Request<Empty<Bytes>>;

/// A script naming its pool, and logging each execution in the pool's `hits.log` (so the
/// test can check on php-fpm's side which pool really ran it).
const WHO_PHP: &str = "<?php\nrequire __DIR__ . '/_lib.php';\nhit('who');\necho 'NAME';\n";

/// php-fpm workers per pool.
const WORKERS: u32 = 3;

/// Starts a php-fpm pool whose `/who.php` answers `name`.
fn start_pool(name: &str) -> Option<PhpFpm> {
    let fpm = PhpFpm::start(Options::new(Socket::Tcp, WORKERS))?;
    std::fs::write(
        format!("{}/who.php", fpm.docroot()),
        WHO_PHP.replace("NAME", name),
    )
    .unwrap();
    Some(fpm)
}

fn gateway(fpm: &PhpFpm) -> TokioGateway {
    let backend = fpm.addr().backend();
    // A php-fpm worker stays attached to a kept-alive connection, even an idle one: more
    // pooled connections than workers would leave requests queued behind idle connections.
    let mut options = ClientOptions::default();
    options.max_connections = WORKERS as usize - 1;
    Gateway::new(
        fcgi_tokio::client(backend, options),
        GatewayConfig::new(fpm.docroot(), ScriptResolution::split_path()),
    )
}

/// A service whose load is its number of requests in flight, as `Balance` needs.
fn loaded<S>(service: S) -> PendingRequests<S, CompleteOnResponse> {
    PendingRequests::new(service, CompleteOnResponse::default())
}

/// A p2c balancer over `services`.
fn balance<S>(services: Vec<S>) -> Balance<ServiceList<Vec<S>>, Req>
where
    S: Service<Req> + Load,
    S::Error: Into<BoxError>,
    S::Metric: std::fmt::Debug,
{
    Balance::new(ServiceList::new::<Req>(services))
}

fn get(path: &str) -> Req {
    Request::get(path)
        .header("host", "gateway.test")
        .body(Empty::new())
        .unwrap()
}

async fn text(response: Response<GatewayBody>) -> (StatusCode, String) {
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (parts.status, String::from_utf8_lossy(&bytes).into_owned())
}

/// The pool that answered, from a successful `/who.php` response.
async fn pool_of(result: Result<Response<GatewayBody>, BoxError>) -> String {
    let response = result.unwrap_or_else(|e| panic!("request failed: {e}"));
    let (status, body) = text(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Asserts that `result` is the gateway's backend error, answered as `502`.
fn assert_backend_502(result: &Result<Response<GatewayBody>, BoxError>) {
    let error = match result {
        Ok(response) => panic!("expected a backend error, got {}", response.status()),
        Err(e) => e,
    };
    let gateway = error
        .downcast_ref::<GatewayError>()
        .unwrap_or_else(|| panic!("not a GatewayError: {error:?}"));
    assert!(matches!(gateway, GatewayError::Backend(_)), "{gateway:?}");
    assert_eq!(gateway.status(), StatusCode::BAD_GATEWAY);
}

/// Sends two requests so that both are in flight at once: the first is not polled before
/// the second is dispatched, so the second sees the first's load and `Balance` sends it to
/// the other pool.
async fn pair<S>(service: &mut S, path: &str) -> [Result<S::Response, S::Error>; 2]
where
    S: Service<Req>,
{
    let first = ready(service).await.call(get(path));
    let second = ready(service).await.call(get(path));
    let (first, second) = futures_util::future::join(first, second).await;
    [first, second]
}

async fn ready<S: Service<Req>>(service: &mut S) -> &mut S {
    match service.ready().await {
        Ok(ready) => ready,
        Err(_) => panic!("the service failed instead of becoming ready"),
    }
}

/// A minimal failure detector: once a request failed in the backend (connect refused,
/// connection lost, protocol error), `poll_ready` fails, so that `Balance` evicts the
/// service. Client faults and timeouts do not count.
#[derive(Clone)]
struct EvictOnBackendError<S> {
    inner: S,
    failed: Arc<AtomicBool>,
}

impl<S> EvictOnBackendError<S> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            failed: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl<S, B> Service<Request<B>> for EvictOnBackendError<S>
where
    S: Service<Request<B>, Error = GatewayError>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if self.failed.load(Ordering::Acquire) {
            return Poll::Ready(Err("the FastCGI backend failed a request".into()));
        }
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let failed = Arc::clone(&self.failed);
        let response = self.inner.call(request);
        Box::pin(async move {
            let result = response.await;
            if let Err(GatewayError::Backend(_)) = &result {
                failed.store(true, Ordering::Release);
            }
            result.map_err(Into::into)
        })
    }
}

#[tokio::test]
async fn balance_spreads_concurrent_requests_over_both_pools() {
    let Some(a) = start_pool("pool-a") else {
        return;
    };
    let Some(b) = start_pool("pool-b") else {
        return;
    };
    let balance = balance(vec![loaded(gateway(&a)), loaded(gateway(&b))]);
    let requests = futures_util::stream::iter((0..40).map(|i| get(&format!("/who.php?i={i}"))));
    // `call_all` dispatches each request as soon as the balancer is ready and drives the
    // responses concurrently, so loads differ and both pools get work.
    let results: Vec<_> = balance.call_all(requests).collect().await;
    assert_eq!(results.len(), 40);
    let (mut served_a, mut served_b) = (0, 0);
    for result in results {
        match pool_of(result).await.as_str() {
            "pool-a" => served_a += 1,
            "pool-b" => served_b += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!(served_a > 0 && served_b > 0, "a: {served_a}, b: {served_b}");
    assert_eq!(served_a + served_b, 40);
    // php-fpm's own log agrees on who ran what.
    assert_eq!(a.hits("who").len(), served_a);
    assert_eq!(b.hits("who").len(), served_b);
}

#[tokio::test]
async fn plain_balance_keeps_routing_to_a_stopped_pool_which_answers_502() {
    let Some(a) = start_pool("pool-a") else {
        return;
    };
    let Some(mut b) = start_pool("pool-b") else {
        return;
    };
    let mut balance = balance(vec![loaded(gateway(&a)), loaded(gateway(&b))]);
    let [x, y] = pair(&mut balance, "/who.php").await;
    let mut names = [pool_of(x).await, pool_of(y).await];
    names.sort();
    assert_eq!(names, ["pool-a", "pool-b"]);

    b.stop();
    // The gateway stays ready, so Balance cannot tell that pool b is gone: of two requests
    // in flight at once, one still goes there and fails; and again on the next round.
    for _ in 0..2 {
        let [x, y] = pair(&mut balance, "/who.php").await;
        let (ok, failed) = if x.is_ok() { (x, y) } else { (y, x) };
        assert_eq!(pool_of(ok).await, "pool-a");
        assert_backend_502(&failed);
    }
    assert_eq!(a.hits("who").len(), 3);
    assert_eq!(b.hits("who").len(), 1);
}

#[tokio::test]
async fn evicting_a_failed_pool_and_retrying_once_keeps_every_request_succeeding() {
    let Some(a) = start_pool("pool-a") else {
        return;
    };
    let Some(mut b) = start_pool("pool-b") else {
        return;
    };
    let mut balance = balance(vec![
        loaded(EvictOnBackendError::new(gateway(&a))),
        loaded(EvictOnBackendError::new(gateway(&b))),
    ]);
    let [x, y] = pair(&mut balance, "/who.php").await;
    let mut names = [pool_of(x).await, pool_of(y).await];
    names.sort();
    assert_eq!(names, ["pool-a", "pool-b"]);

    b.stop();
    // One of two requests in flight at once finds pool b dead; retried once, it is served by
    // pool a, because the failure made pool b's `poll_ready` fail and Balance evicted it.
    let [x, y] = pair(&mut balance, "/who.php").await;
    let (ok, failed) = if x.is_ok() { (x, y) } else { (y, x) };
    assert_eq!(pool_of(ok).await, "pool-a");
    assert_backend_502(&failed);
    let retried = ready(&mut balance).await.call(get("/who.php")).await;
    assert_eq!(pool_of(retried).await, "pool-a");
    // From now on every request goes to pool a, without a retry.
    for i in 0..20 {
        let result = ready(&mut balance)
            .await
            .call(get(&format!("/who.php?i={i}")))
            .await;
        assert_eq!(pool_of(result).await, "pool-a", "request {i}");
    }
    assert_eq!(a.hits("who").len(), 1 + 1 + 1 + 20);
    assert_eq!(b.hits("who").len(), 1);
}

#[tokio::test]
async fn timeout_layer_composes_with_the_gateway() {
    let Some(a) = start_pool("pool-a") else {
        return;
    };
    let mut service = Timeout::new(gateway(&a), Duration::from_millis(300));
    // wait.php holds its worker until the marker exists (up to 10 s): the timeout fires.
    let error = ready(&mut service)
        .await
        .call(get("/wait.php?marker=late"))
        .await
        .unwrap_err();
    assert!(error.is::<Elapsed>(), "{error:?}");
    a.set_marker("late");
    // The abandoned request did not break the gateway.
    let result = ready(&mut service).await.call(get("/who.php")).await;
    assert_eq!(pool_of(result).await, "pool-a");
}

#[tokio::test]
async fn concurrency_limit_layer_holds_requests_beyond_the_limit() {
    let Some(a) = start_pool("pool-a") else {
        return;
    };
    let mut service = ConcurrencyLimit::new(gateway(&a), 1);
    let held = ready(&mut service).await.call(get("/wait.php?marker=go"));
    let held = tokio::spawn(held);
    // The one permit is taken by the request in flight: the service is not ready.
    let mut cx = Context::from_waker(Waker::noop());
    assert!(Service::<Req>::poll_ready(&mut service, &mut cx).is_pending());
    a.set_marker("go");
    let (status, pid) = text(held.await.unwrap().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(pid.parse::<u32>().is_ok(), "{pid}");
    // The permit came back with the response.
    let response = ready(&mut service)
        .await
        .call(get("/who.php"))
        .await
        .unwrap();
    assert_eq!(text(response).await, (StatusCode::OK, "pool-a".to_owned()));
}
