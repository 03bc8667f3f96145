//! The gateway's try-files mode in front of real php-fpm, with static files from
//! tower-http (`fcgi_tokio::http::static_files`): the layout of WordPress, Laravel and most
//! PHP sites (nginx's `try_files $uri $uri/ /index.php?$args`, Caddy's `php_fastcgi`).
//! php-fpm missing: `SKIPPED:` locally, a failure under `CI=true`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use fcgi_testkit::php_fpm::{Options, PhpFpm, Socket};
use fcgi_tokio::http::{GatewayConfig, ScriptResolution, gateway, static_files};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use tower::ServiceExt;

const CSS: &str = "body { color: #333; }\n";

fn site(fpm: &PhpFpm) {
    let root = fpm.docroot();
    let write = |name: &str, text: &str| {
        let path = format!("{root}/{name}");
        std::fs::create_dir_all(std::path::Path::new(&path).parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "index.php",
        "<?php echo 'front ', $_SERVER['SCRIPT_NAME'], ' ', $_SERVER['REQUEST_URI'];",
    );
    write("a.php", "<?php echo 'a ', $_SERVER['PATH_INFO'];");
    write(
        "blog/index.php",
        "<?php echo 'blog ', $_SERVER['SCRIPT_NAME'];",
    );
    write("style.css", CSS);
    write("uploads/avatar.jpg", "<?php echo 'HOLE';");
}

async fn get(
    gw: &fcgi_tokio::http::Gateway,
    req: Request<Empty<Bytes>>,
) -> (StatusCode, http::HeaderMap, String) {
    let response = gw.clone().oneshot(req).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

fn req(method: &str, target: &str) -> Request<Empty<Bytes>> {
    Request::builder()
        .method(method)
        .uri(target)
        .header("host", "site.test")
        .body(Empty::new())
        .unwrap()
}

#[tokio::test]
async fn try_files_serves_a_php_site() {
    let Some(fpm) = PhpFpm::start(Options::new(Socket::Tcp, 2)) else {
        return;
    };
    site(&fpm);
    let mut config = GatewayConfig::new(fpm.docroot(), ScriptResolution::split_path());
    config.try_files = Some("index.php".into());
    config.static_files = Some(static_files());
    let gw = gateway(fpm.addr().backend(), Default::default(), config);

    // An existing script runs, with PATH_INFO after it.
    let (status, _, body) = get(&gw, req("GET", "/a.php/x/y")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "a /x/y"));
    // A static file is served as it is, with its type, ranges and validators.
    let (status, headers, body) = get(&gw, req("GET", "/style.css")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, CSS));
    assert_eq!(headers["content-type"], "text/css");
    assert!(headers.contains_key("last-modified"));
    let mut ranged = req("GET", "/style.css");
    ranged
        .headers_mut()
        .insert("range", "bytes=0-3".parse().unwrap());
    let (status, _, body) = get(&gw, ranged).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::PARTIAL_CONTENT, "body")
    );
    let (status, _, _) = get(&gw, req("POST", "/style.css")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    // A precompressed variant next to the file, for a client that accepts it.
    std::fs::write(format!("{}/style.css.gz", fpm.docroot()), b"GZIPPED").unwrap();
    let mut gz = req("GET", "/style.css");
    gz.headers_mut()
        .insert("accept-encoding", "gzip".parse().unwrap());
    let (status, headers, body) = get(&gw, gz).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "GZIPPED"));
    assert_eq!(headers["content-encoding"], "gzip");
    assert_eq!(headers["content-type"], "text/css");
    // Conditional requests: the validator sent back gets a 304.
    let (_, headers, _) = get(&gw, req("GET", "/style.css")).await;
    let mut conditional = req("GET", "/style.css");
    conditional
        .headers_mut()
        .insert("if-modified-since", headers["last-modified"].clone());
    let (status, _, _) = get(&gw, conditional).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    // An upload is a file like any other: served, never run.
    let (status, _, body) = get(&gw, req("GET", "/uploads/avatar.jpg")).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "<?php echo 'HOLE';")
    );
    // A directory: its slash first, then its index.
    let (status, headers, _) = get(&gw, req("GET", "/blog?p=2")).await;
    assert_eq!(status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(headers["location"], "/blog/?p=2");
    let (status, _, body) = get(&gw, req("GET", "/blog/")).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "blog /blog/index.php")
    );
    // Anything else goes to the front controller, with the request URI as sent.
    for target in [
        "/pretty/route?page=2",
        "/missing.css",
        "/uploads/avatar.jpg/x.php",
    ] {
        let (status, _, body) = get(&gw, req("GET", target)).await;
        assert_eq!(status, StatusCode::OK, "{target}");
        assert_eq!(body, format!("front /index.php {target}"), "{target}");
    }
}
