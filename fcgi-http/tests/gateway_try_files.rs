//! Try-files mode without a static-file service (what a smol user has unless they plug in
//! their own `StaticFiles`): a static file is `404`, never sent to the application; a
//! directory named without its `/` is redirected. Decided from the local root alone, before
//! any backend is contacted (there is none here).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use fcgi_http::gateway::{Gateway, GatewayConfig, GatewayError, LocalRoot};
use fcgi_http::request::ScriptResolution;
use fcgi_tokio::Backend;
use fcgi_tokio::client::ClientOptions;
use http::{Request, StatusCode};
use http_body_util::Empty;

#[tokio::test]
async fn static_files_without_a_service_are_404_and_directories_get_their_slash() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("style.css"), "body {}").unwrap();
    std::fs::create_dir(root.path().join("blog")).unwrap();
    // Nobody listens there: any request that reached the backend would fail with 502.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let mut config = GatewayConfig::new(
        root.path().to_str().unwrap(),
        ScriptResolution::split_path(),
    );
    config.local_root = LocalRoot::Path(root.path().to_owned());
    config.try_files = Some("index.php".into());
    let gw = Gateway::new(
        fcgi_tokio::client(Backend::Tcp(addr), ClientOptions::default()),
        config,
    );
    let get = |target: &str| {
        Request::get(target)
            .header("host", "site.test")
            .body(Empty::<Bytes>::new())
            .unwrap()
    };
    let err = gw.serve(get("/style.css")).await.unwrap_err();
    assert!(
        matches!(err, GatewayError::StaticFileNotServed(_)),
        "{err:?}"
    );
    assert_eq!(err.status(), StatusCode::NOT_FOUND);
    let response = gw.serve(get("/blog")).await.unwrap();
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(response.headers()["location"], "/blog/");
    // The front controller does not exist here either: 404 before the backend.
    let err = gw.serve(get("/pretty/route")).await.unwrap_err();
    assert!(matches!(err, GatewayError::NoSuchScript(_)), "{err:?}");
}
