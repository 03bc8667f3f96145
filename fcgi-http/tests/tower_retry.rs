//! `tower::retry` composes with the gateway: a policy that retries a request the FastCGI
//! application refused with `OVERLOADED` (which the gateway reports as
//! `GatewayError::Backend(ClientError::Overloaded)`, status 503) gets the answer of the second
//! attempt. The application here is a minimal FastCGI responder written against the wire
//! format, so that it can refuse exactly the first request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Ready;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use fcgi_http::gateway::{Gateway, GatewayBody, GatewayConfig, GatewayError, LocalRoot};
use fcgi_http::request::ScriptResolution;
use fcgi_tokio::Backend;
use fcgi_tokio::client::{ClientError, ClientOptions, Multiplexing};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;
use tower::retry::{Policy, Retry};

type Req = Request<Full<Bytes>>;

/// Retries a request refused with `OVERLOADED`, at most `left` more times.
#[derive(Clone)]
struct RetryOverloaded {
    left: usize,
}

impl Policy<Req, Response<GatewayBody>, GatewayError> for RetryOverloaded {
    type Future = Ready<()>;

    fn retry(
        &mut self,
        _req: &mut Req,
        result: &mut Result<Response<GatewayBody>, GatewayError>,
    ) -> Option<Self::Future> {
        match result {
            Err(GatewayError::Backend(ClientError::Overloaded)) if self.left > 0 => {
                self.left -= 1;
                Some(std::future::ready(()))
            }
            _ => None,
        }
    }

    fn clone_request(&mut self, req: &Req) -> Option<Req> {
        let mut copy = Request::new(req.body().clone());
        *copy.method_mut() = req.method().clone();
        *copy.uri_mut() = req.uri().clone();
        *copy.version_mut() = req.version();
        *copy.headers_mut() = req.headers().clone();
        Some(copy)
    }
}

/// A FastCGI responder that ends the first `refuse` requests with `OVERLOADED` and answers
/// the others with `ok`; counts the requests it saw.
async fn serve(listener: TcpListener, refuse: usize, seen: Arc<AtomicUsize>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(connection(stream, refuse, Arc::clone(&seen)));
    }
}

async fn connection(mut s: TcpStream, refuse: usize, seen: Arc<AtomicUsize>) {
    loop {
        let mut h = [0u8; 8];
        if s.read_exact(&mut h).await.is_err() {
            return;
        }
        let (kind, id) = (h[1], [h[2], h[3]]);
        let len = usize::from(u16::from_be_bytes([h[4], h[5]])) + usize::from(h[6]);
        let mut content = vec![0u8; len];
        if s.read_exact(&mut content).await.is_err() {
            return;
        }
        // The end of STDIN (type 5, empty): the request is complete; answer it.
        if kind == 5 && h[4] == 0 && h[5] == 0 {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let mut out = Vec::new();
            let status = if n < refuse {
                2 // OVERLOADED
            } else {
                let body = b"Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nok";
                out.extend_from_slice(&[1, 6, id[0], id[1], 0, body.len() as u8, 0, 0]);
                out.extend_from_slice(body);
                0 // REQUEST_COMPLETE
            };
            out.extend_from_slice(&[1, 3, id[0], id[1], 0, 8, 0, 0, 0, 0, 0, 0, status, 0, 0, 0]);
            if s.write_all(&out).await.is_err() {
                return;
            }
        }
    }
}

async fn app(refuse: usize) -> (Backend, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    tokio::spawn(serve(listener, refuse, Arc::clone(&seen)));
    (Backend::Tcp(addr), seen)
}

fn gateway(backend: Backend) -> Gateway<fcgi_tokio::TokioRuntime, fcgi_tokio::TokioConnector> {
    let mut opts = ClientOptions::default();
    opts.multiplexing = Multiplexing::Off;
    let mut config = GatewayConfig::new(
        "/srv",
        ScriptResolution::FrontController("index.php".into()),
    );
    config.local_root = LocalRoot::None; // the test backend runs no files
    Gateway::new(fcgi_tokio::client(backend, opts), config)
}

fn request() -> Req {
    Request::post("/orders")
        .header("host", "retry.test")
        .header("content-length", "5")
        .body(Full::new(Bytes::from_static(b"hello")))
        .unwrap()
}

#[tokio::test]
async fn retry_layer_gets_the_second_attempts_answer() {
    let (backend, seen) = app(1).await;
    let service = Retry::new(RetryOverloaded { left: 2 }, gateway(backend));
    let response = service.oneshot(request()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"ok");
    assert_eq!(seen.load(Ordering::SeqCst), 2, "refused once, then served");
}

#[tokio::test]
async fn retries_run_out_and_the_503_error_comes_through() {
    let (backend, seen) = app(usize::MAX).await;
    let service = Retry::new(RetryOverloaded { left: 2 }, gateway(backend));
    let err = service.oneshot(request()).await.unwrap_err();
    assert!(
        matches!(err, GatewayError::Backend(ClientError::Overloaded)),
        "{err:?}"
    );
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        seen.load(Ordering::SeqCst),
        3,
        "the first attempt and two retries"
    );
}

/// An application that accepts connections and never answers.
async fn silent_app() -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    Backend::Tcp(addr)
}

#[tokio::test]
async fn errors_as_responses_sits_on_top_of_other_layers() {
    use fcgi_http::gateway::ErrorsAsResponses;
    use tower::timeout::{Timeout, error::Elapsed};
    let backend = silent_app().await;
    let stack = || {
        Timeout::new(
            gateway(backend.clone()),
            std::time::Duration::from_millis(200),
        )
    };

    // tower's `Elapsed` classified as a gateway timeout.
    let service = ErrorsAsResponses::new(stack())
        .with_classifier(|e| e.is::<Elapsed>().then_some(StatusCode::GATEWAY_TIMEOUT));
    let response = service.oneshot(request()).await.unwrap();
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);

    // Unclassified errors of other layers are 500.
    let response = ErrorsAsResponses::new(stack())
        .oneshot(request())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);

    // The gateway's own errors keep their status through a boxing layer: OVERLOADED → 503.
    let (refusing, _) = app(usize::MAX).await;
    let boxed = Timeout::new(gateway(refusing), std::time::Duration::from_secs(10));
    let response = ErrorsAsResponses::new(boxed)
        .oneshot(request())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}
