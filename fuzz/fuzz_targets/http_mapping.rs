//! The HTTP ⇄ CGI mappings of `fcgi-http` on arbitrary input:
//!
//! - `request::build_params` (HTTP head → CGI params) on an arbitrary request target and
//!   headers: never panics, and whenever it accepts a request, the script it names stays
//!   inside the document root: `SCRIPT_FILENAME` is the root plus `SCRIPT_NAME`, which starts
//!   with `/` and has no `.` or `..` segment and no NUL;
//! - `app::request_parts` (CGI params → HTTP request) on arbitrary name-value pairs, in all
//!   three roles: never panics.
//!
//! Input: 1 selector byte, then `\n`-separated lines: the request target, then `name: value`
//! header lines (first half) — and the same bytes read as `NAME=VALUE` params (second half).
#![no_main]

use fcgi_core::{Params, Role};
use fcgi_http::request::{CgiConfig, ConnInfo, ScriptResolution, build_params};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| run(data));

const ROOT: &str = "/srv/www";

fn run(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mut lines = rest.split(|&b| b == b'\n');
    let target = lines.next().unwrap_or_default();
    let mut builder = http::Request::builder().method("GET");
    if let Ok(uri) = http::Uri::try_from(target) {
        builder = builder.uri(uri);
    }
    builder = builder.version(match selector % 4 {
        0 => http::Version::HTTP_10,
        1 => http::Version::HTTP_11,
        2 => http::Version::HTTP_2,
        _ => http::Version::HTTP_3,
    });
    let mut params = Params::new();
    for line in lines {
        if let Some(i) = line.iter().position(|&b| b == b':') {
            let (n, v) = (&line[..i], &line[i + 1..]);
            if let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(n),
                http::HeaderValue::from_bytes(v.strip_prefix(b" ").unwrap_or(v)),
            ) {
                builder = builder.header(n, v);
            }
        }
        if let Some(i) = line.iter().position(|&b| b == b'=') {
            let _ = params.push(&line[..i], &line[i + 1..]);
        }
    }
    if let Ok(request) = builder.body(()) {
        let (parts, ()) = request.into_parts();
        let script = if selector & 4 == 0 {
            ScriptResolution::split_path()
        } else {
            ScriptResolution::FrontController("index.php".into())
        };
        let conn = ConnInfo::new(
            "127.0.0.1:80".parse().unwrap_or_else(|_| unreachable!()),
            "127.0.0.1:5000".parse().unwrap_or_else(|_| unreachable!()),
            selector & 8 != 0,
        );
        if let Ok(p) = build_params(&parts, None, &conn, &CgiConfig::new(ROOT, script)) {
            let name = p.get(b"SCRIPT_NAME").unwrap_or_default();
            let file = p.get(b"SCRIPT_FILENAME").unwrap_or_default();
            assert!(name.starts_with(b"/"), "SCRIPT_NAME {name:?}");
            assert!(!name.contains(&0), "NUL in SCRIPT_NAME");
            for seg in name.split(|&b| b == b'/') {
                assert!(seg != b"." && seg != b"..", "dot segment in {name:?}");
            }
            let mut expected = ROOT.as_bytes().to_vec();
            expected.extend_from_slice(name);
            assert_eq!(file, &expected[..], "SCRIPT_FILENAME outside the root");
        }
    }
    for role in [Role::Responder, Role::Authorizer, Role::Filter] {
        let _ = fcgi_http::app::request_parts(&params, role);
    }
}
