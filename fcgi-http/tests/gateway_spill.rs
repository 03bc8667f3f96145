//! File-system work of the gateway never runs on the executor: a chunked upload too large
//! for memory is spilled to a temporary file through the runtime's blocking pool
//! (`Runtime::spawn_blocking`), so that other requests keep being answered meanwhile — here
//! on a current-thread runtime, where a blocking write would stall everything.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use fcgi_http::gateway::{Gateway, GatewayConfig, LocalRoot, UnknownLength};
use fcgi_http::request::ScriptResolution;
use fcgi_tokio::client::{Client, ClientOptions, Multiplexing};
use fcgi_tokio::fcgi_driver::runtime::{BlockingWork, BoxFuture, Runtime};
use fcgi_tokio::server::{Request, Response, ServerOptions};
use fcgi_tokio::{Backend, TokioConnector, TokioRuntime};
use http_body_util::{BodyExt, Full, StreamBody};
use tower::ServiceExt;

/// tokio's runtime, counting the blocking work and where it ran.
#[derive(Clone, Default)]
struct Counting {
    blocking: Arc<AtomicUsize>,
    on_executor: Arc<AtomicUsize>,
    executor: Arc<std::sync::OnceLock<std::thread::ThreadId>>,
}

impl Runtime for Counting {
    fn spawn(&self, future: BoxFuture<()>) {
        TokioRuntime.spawn(future);
    }
    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        TokioRuntime.sleep(duration)
    }
    fn spawn_blocking(&self, work: BlockingWork) -> BoxFuture<()> {
        self.blocking.fetch_add(1, Ordering::SeqCst);
        let (on_executor, executor) = (Arc::clone(&self.on_executor), Arc::clone(&self.executor));
        TokioRuntime.spawn_blocking(Box::new(move || {
            if executor.get() == Some(&std::thread::current().id()) {
                on_executor.fetch_add(1, Ordering::SeqCst);
            }
            work();
        }))
    }
}

/// The backend: answers the length of the body it read.
async fn length(mut req: Request, mut out: Response) -> u32 {
    let mut n = 0;
    while let Some(piece) = req.stdin().chunk().await {
        match piece {
            Ok(p) => n += p.len(),
            Err(_) => return 1,
        }
    }
    let text = format!("Content-Type: text/plain\r\n\r\nlen={n}");
    match out.stdout(text).await {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_spilling_upload_leaves_the_executor_free() {
    const CHUNKS: usize = 128;
    const CHUNK: usize = 64 * 1024;
    let rt = Counting::default();
    rt.executor.set(std::thread::current().id()).unwrap();

    let listener = fcgi_tokio::Listener::bind_tcp("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let server = fcgi_tokio::server(ServerOptions::default());
    tokio::spawn(async move { server.serve(listener, length).await });

    let spill = tempfile::tempdir().unwrap();
    let mut config = GatewayConfig::new(
        "/srv",
        ScriptResolution::FrontController("index.php".into()),
    );
    config.local_root = LocalRoot::None; // the backend is a Rust handler, not files
    config.unknown_length = UnknownLength::Buffer {
        memory: 256 * 1024,
        spill_dir: Some(spill.path().to_owned()),
        max_bytes: 64 << 20,
    };
    let mut opts = ClientOptions::default();
    opts.multiplexing = Multiplexing::Off;
    let client = Client::new(rt.clone(), TokioConnector::new(Backend::Tcp(addr)), opts);
    let gateway = Gateway::new(client, config);

    // A chunked upload (no length): 8 MiB, a piece every millisecond.
    let uploaded = Arc::new(AtomicBool::new(false));
    let done = Arc::clone(&uploaded);
    let pieces = futures_util::stream::unfold(0, move |i| {
        let done = Arc::clone(&done);
        async move {
            if i == CHUNKS {
                done.store(true, Ordering::SeqCst);
                return None;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
            let frame = http_body::Frame::data(Bytes::from(vec![b'u'; CHUNK]));
            Some((Ok::<_, std::io::Error>(frame), i + 1))
        }
    });
    let upload = http::Request::post("/upload")
        .header("host", "spill.test")
        .body(StreamBody::new(pieces))
        .unwrap();
    let big = tokio::spawn(gateway.clone().oneshot(upload));

    // Meanwhile, small requests are answered.
    let mut answered_during = 0;
    for _ in 0..10 {
        let small = http::Request::get("/small")
            .header("host", "spill.test")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = gateway.clone().oneshot(small).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"len=0");
        if !uploaded.load(Ordering::SeqCst) {
            answered_during += 1;
        }
    }
    let response = big.await.unwrap().unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, format!("len={}", CHUNKS * CHUNK).as_bytes());
    assert!(
        answered_during > 0,
        "no small request was answered during the upload"
    );
    assert!(
        rt.blocking.load(Ordering::SeqCst) >= CHUNKS / 2,
        "the spill's file work went through spawn_blocking ({} calls)",
        rt.blocking.load(Ordering::SeqCst)
    );
    assert_eq!(rt.on_executor.load(Ordering::SeqCst), 0);
    // The spill file is unnamed: nothing is left in the directory.
    assert_eq!(std::fs::read_dir(spill.path()).unwrap().count(), 0);
}
