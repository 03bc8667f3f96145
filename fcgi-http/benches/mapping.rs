//! The two pure mappings of the gateway, each next to `httparse` on the same bytes in the
//! same run (the floor: what parsing alone costs).
//!
//! - `build_params`: a typical browser request head (an `http::request::Parts` with 9
//!   headers) → the CGI params nginx's `fastcgi_params` would send, split-path resolution;
//!   baseline: `httparse` parsing the equivalent HTTP/1.1 request head.
//! - `cgi_head`: php-fpm's typical response head (`X-Powered-By`, `Set-Cookie` ×2,
//!   `Cache-Control`, `Content-type`) through `CgiResponseParser` into `http::response::Parts`;
//!   baseline: `httparse::parse_headers` on the same bytes.
//!
//! `cargo bench -p fcgi-http --bench mapping`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(missing_docs)] // criterion_group! generates an undocumented `pub fn`

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use fcgi_http::request::{CgiConfig, ConnInfo, ScriptResolution, build_params};
use fcgi_http::response::{CgiResponseParser, ParserConfig};

const HEADERS: &[(&str, &str)] = &[
    ("host", "shop.example.com"),
    (
        "user-agent",
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    ),
    (
        "accept",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    ),
    ("accept-language", "en-US,en;q=0.5"),
    ("accept-encoding", "gzip, deflate, br"),
    ("referer", "https://shop.example.com/cart"),
    (
        "cookie",
        "session=8f14e45fceea167a5a36dedd4bea2543; theme=dark",
    ),
    ("upgrade-insecure-requests", "1"),
    ("connection", "keep-alive"),
];
const TARGET: &str = "/index.php/products/42?color=blue&size=m";

const PHP_HEAD: &[u8] = b"X-Powered-By: PHP/8.2.36\r\nSet-Cookie: session=8f14e45fceea167a5a36dedd4bea2543; path=/; HttpOnly\r\nSet-Cookie: theme=dark; path=/\r\nCache-Control: no-store, no-cache, must-revalidate\r\nContent-type: text/html; charset=UTF-8\r\n\r\n<!doctype html>";

fn request_parts() -> http::request::Parts {
    let mut b = http::Request::get(TARGET);
    for (n, v) in HEADERS {
        b = b.header(*n, *v);
    }
    b.body(()).unwrap().into_parts().0
}

fn http_head() -> Vec<u8> {
    let mut head = format!("GET {TARGET} HTTP/1.1\r\n");
    for (n, v) in HEADERS {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

fn mapping(c: &mut Criterion) {
    let parts = request_parts();
    let conn = ConnInfo::new(
        "10.0.0.1:443".parse().unwrap(),
        "203.0.113.7:51234".parse().unwrap(),
        true,
    );
    let cfg = CgiConfig::new("/var/www/shop/public", ScriptResolution::split_path());
    let head = http_head();
    let mut g = c.benchmark_group("build_params");
    g.bench_function("fcgi_http", |b| {
        b.iter(|| build_params(black_box(&parts), None, &conn, &cfg).unwrap())
    });
    g.bench_function("httparse_baseline", |b| {
        b.iter(|| {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            req.parse(black_box(&head)).unwrap().is_complete()
        })
    });
    g.finish();

    let response = Bytes::from_static(PHP_HEAD);
    let mut g = c.benchmark_group("cgi_head");
    g.bench_function("fcgi_http", |b| {
        b.iter(|| {
            let mut p = CgiResponseParser::new(ParserConfig::default());
            p.feed(black_box(response.clone())).unwrap().unwrap()
        })
    });
    g.bench_function("httparse_baseline", |b| {
        b.iter(|| {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            httparse::parse_headers(black_box(PHP_HEAD), &mut headers)
                .unwrap()
                .is_complete()
        })
    });
    g.finish();
}

criterion_group!(benches, mapping);
criterion_main!(benches);
