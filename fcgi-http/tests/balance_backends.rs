//! `fcgi_http::balance::Balanced`: requests spread over several backends, a backend that
//! refuses connections skipped until it accepts one again, and every backend down answered
//! at once (502) rather than waited on. First against scripted loopback backends (exact
//! counts), then with two php-fpm pools, one stopped and restarted under load.
//!
//! php-fpm missing: `SKIPPED:` locally, a failure under `CI=true`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod mock_backend;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fcgi_http::balance::{BalanceOptions, Balanced};
use fcgi_http::gateway::{BoxError, Gateway, GatewayBody, GatewayConfig, GatewayError};
use fcgi_http::request::ScriptResolution;
use fcgi_testkit::php_fpm::{Options, PhpFpm, Socket};
use fcgi_tokio::Backend;
use fcgi_tokio::client::ClientOptions;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use mock_backend::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tower::ServiceExt;

type Svc = Balanced<Empty<Bytes>>;

fn options() -> BalanceOptions {
    let mut options = BalanceOptions::default();
    options.max_probe_interval = Duration::from_millis(200);
    options
}

fn get(path: &str) -> Request<Empty<Bytes>> {
    Request::get(path)
        .header("host", "gateway.test")
        .body(Empty::new())
        .unwrap()
}

/// Sends one request: the body of a `200`, or the status of an error.
async fn send(service: &Svc, path: &str) -> Result<String, StatusCode> {
    let result = service.clone().oneshot(get(path)).await;
    answer(result).await
}

async fn answer(result: Result<Response<GatewayBody>, BoxError>) -> Result<String, StatusCode> {
    match result {
        Ok(response) => {
            let status = response.status();
            let body = response.into_body().collect().await;
            match body {
                Ok(body) if status == StatusCode::OK => {
                    Ok(String::from_utf8_lossy(&body.to_bytes()).into_owned())
                }
                _ => Err(status),
            }
        }
        Err(e) => Err(e
            .downcast_ref::<GatewayError>()
            .map_or(StatusCode::INTERNAL_SERVER_ERROR, GatewayError::status)),
    }
}

/// A scripted backend on `listener` answering every request of every connection with
/// `name`, until the returned task is aborted.
fn answering(listener: TcpListener, name: &'static str) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((mut sock, _)) = listener.accept().await {
            conns.spawn(async move {
                while let Ok(Some(req)) = read_request(&mut sock).await {
                    let body = format!("Content-Type: text/plain\r\n\r\n{name}");
                    if sock
                        .write_all(&full_answer(req.id, body.as_bytes()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    })
}

/// A loopback address nothing listens on (connections to it are refused).
async fn refused_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

fn mock_gateway(addr: SocketAddr) -> TestGateway {
    let mut client = ClientOptions::default();
    client.read_timeout = Duration::from_secs(10);
    Gateway::new(
        fcgi_tokio::client(Backend::Tcp(addr), client),
        mock_config(ScriptResolution::split_path()),
    )
}

type TestGateway = Gateway<fcgi_tokio::TokioRuntime, fcgi_tokio::TokioConnector>;

/// One backend refuses connections: after the one request that found it so (502), every
/// request goes to the other; once it listens again it takes requests again by itself.
#[tokio::test]
async fn a_refusing_backend_is_skipped_and_comes_back() {
    let a = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a_addr = a.local_addr().unwrap();
    let a_task = answering(a, "A");
    let b_addr = refused_addr().await;
    let service = Svc::new(vec![mock_gateway(a_addr), mock_gateway(b_addr)], options()).unwrap();
    bounded(async {
        let mut failed = 0;
        for _ in 0..40 {
            match send(&service, "/who.php").await {
                Ok(name) => assert_eq!(name, "A"),
                Err(status) => {
                    assert_eq!(status, StatusCode::BAD_GATEWAY);
                    failed += 1;
                }
            }
        }
        // Sequential requests: only the first one sent to B can find it refusing.
        assert!(failed <= 1, "{failed} requests failed");
        // B comes up on its address: it is found by the probe and takes requests again.
        let b = TcpListener::bind(b_addr).await.unwrap();
        let b_task = answering(b, "B");
        let since = Instant::now();
        let mut seen = BTreeMap::<String, usize>::new();
        while !seen.contains_key("B") {
            assert!(
                since.elapsed() < Duration::from_secs(10),
                "B never came back"
            );
            // Pairs in flight at once, so that the balancer uses both when both are ready.
            let (x, y) = tokio::join!(send(&service, "/who.php"), send(&service, "/who.php"));
            for name in [x, y] {
                *seen
                    .entry(name.expect("no request fails once B is back or while A is up"))
                    .or_default() += 1;
            }
        }
        b_task.abort();
    })
    .await;
    a_task.abort();
}

/// Every backend down: a request is answered at once with a 502 (each backend is tried),
/// never left waiting for one to come back.
#[tokio::test]
async fn every_backend_down_answers_502_at_once() {
    let service = Svc::new(
        vec![
            mock_gateway(refused_addr().await),
            mock_gateway(refused_addr().await),
        ],
        options(),
    )
    .unwrap();
    bounded(async {
        for _ in 0..6 {
            let started = Instant::now();
            assert_eq!(
                send(&service, "/who.php").await,
                Err(StatusCode::BAD_GATEWAY)
            );
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "a request waited {:?} with every backend down",
                started.elapsed()
            );
        }
    })
    .await;
}

/// `Balanced::new` refuses an empty backend list with a typed error.
#[test]
fn no_backends_is_an_error() {
    let gateways: Vec<TestGateway> = Vec::new();
    assert!(matches!(
        Svc::new(gateways, BalanceOptions::default()),
        Err(fcgi_http::balance::NoBackends)
    ));
}

// ---------------------------------------------------------------------------------------
// Two php-fpm pools
// ---------------------------------------------------------------------------------------

/// php-fpm workers per pool.
const WORKERS: u32 = 4;

/// Starts a pool whose `/who.php` answers `name`.
fn start_pool(name: &str) -> Option<PhpFpm> {
    let fpm = PhpFpm::start(Options::new(Socket::Tcp, WORKERS))?;
    std::fs::write(
        format!("{}/who.php", fpm.docroot()),
        format!("<?php\necho '{name}';\n"),
    )
    .unwrap();
    Some(fpm)
}

fn pool_gateway(fpm: &PhpFpm) -> TestGateway {
    let mut client = ClientOptions::default();
    // php-fpm pins a worker per open connection: stay below the pool's size.
    client.max_connections = WORKERS as usize - 1;
    client.read_timeout = Duration::from_secs(10);
    Gateway::new(
        fcgi_tokio::client(fpm.addr().backend(), client),
        GatewayConfig::new(fpm.docroot(), ScriptResolution::split_path()),
    )
}

/// What the load saw in each phase of the test: answers per pool, and failures.
#[derive(Debug, Default, Clone)]
struct Tally {
    answers: BTreeMap<String, usize>,
    failures: usize,
}

/// Concurrent clients sending requests in a loop until `stop`, counting per phase.
const CLIENTS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_two_php_fpm_pools_stopped_and_restarted_under_load() {
    let Some(a) = start_pool("pool-a") else {
        return;
    };
    let Some(b) = start_pool("pool-b") else {
        return;
    };
    let service = Svc::new(vec![pool_gateway(&a), pool_gateway(&b)], options()).unwrap();
    let phase = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let tallies = Arc::new(Mutex::new(vec![Tally::default(); 5]));
    let mut load = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (service, phase, stop, tallies) = (
            service.clone(),
            Arc::clone(&phase),
            Arc::clone(&stop),
            Arc::clone(&tallies),
        );
        load.spawn(async move {
            // Bounded: the test stops the load; this is a backstop.
            for _ in 0..1_000_000 {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let result = send(&service, "/who.php").await;
                // Counted in the phase it ended in: a request in flight when pool B stops
                // fails in the "B stopping" phase.
                let mut tallies = tallies.lock().unwrap();
                let tally = &mut tallies[phase.load(Ordering::SeqCst)];
                match result {
                    Ok(name) => *tally.answers.entry(name).or_default() += 1,
                    Err(_) => tally.failures += 1,
                }
            }
        });
    }
    let count = |p: usize, name: &str| {
        tallies.lock().unwrap()[p]
            .answers
            .get(name)
            .copied()
            .unwrap_or(0)
    };
    let b = Arc::new(Mutex::new(b));
    bounded_long(async {
        // 0: both pools up.
        tokio::time::sleep(Duration::from_millis(500)).await;
        // 1: pool B stops under load.
        phase.store(1, Ordering::SeqCst);
        let stopping = Arc::clone(&b);
        tokio::task::spawn_blocking(move || stopping.lock().unwrap().stop())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        // 2: pool B is down.
        phase.store(2, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(700)).await;
        // 3: pool B restarts on its address.
        phase.store(3, Ordering::SeqCst);
        let starting = Arc::clone(&b);
        tokio::task::spawn_blocking(move || starting.lock().unwrap().restart())
            .await
            .unwrap();
        // 4: pool B is back: it must take requests again by itself.
        phase.store(4, Ordering::SeqCst);
        let since = Instant::now();
        while count(4, "pool-b") < 20 {
            assert!(
                since.elapsed() < Duration::from_secs(10),
                "pool B never came back: {:?}",
                tallies.lock().unwrap()[4]
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.store(true, Ordering::SeqCst);
        while load.join_next().await.is_some() {}
    })
    .await;
    let tallies = tallies.lock().unwrap().clone();
    eprintln!("per phase (both up, B stopping, B down, B restarting, B back): {tallies:?}");
    let [up, stopping, down, restarting, back] = &tallies[..] else {
        unreachable!()
    };
    assert!(up.answers.len() == 2 && up.failures == 0, "both up: {up:?}");
    // Only requests already on their way to B when it stopped may fail: at most one per
    // client, plus the pooled connections it had.
    assert!(
        stopping.failures <= CLIENTS + 2 * WORKERS as usize,
        "B stopping: {stopping:?}"
    );
    for (what, tally) in [("B down", down), ("B restarting", restarting)] {
        assert_eq!(tally.failures, 0, "{what}: {tally:?}");
        assert!(!tally.answers.contains_key("pool-b"), "{what}: {tally:?}");
        assert!(
            tally.answers.get("pool-a").copied().unwrap_or(0) > 0,
            "{what}: {tally:?}"
        );
    }
    assert_eq!(back.failures, 0, "B back: {back:?}");
    assert!(
        back.answers.get("pool-a").copied().unwrap_or(0) > 0,
        "{back:?}"
    );
    drop(a);
}

async fn bounded_long<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("test took too long")
}
