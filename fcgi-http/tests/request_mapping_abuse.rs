//! Request head → CGI params edge cases a hostile client controls.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use fcgi_http::request::{CgiConfig, ConnInfo, MapError, ScriptResolution, build_params};
use http::{Request, Version};

fn map(request: Request<()>) -> Result<fcgi_http::fcgi_core::Params, MapError> {
    let (parts, ()) = request.into_parts();
    let conn = ConnInfo::new(
        "127.0.0.1:80".parse().unwrap(),
        "192.0.2.1:5000".parse().unwrap(),
        false,
    );
    build_params(
        &parts,
        None,
        &conn,
        &CgiConfig::new("/srv", ScriptResolution::split_path()),
    )
}

/// `Connection: host, authorization, cookie` makes the gateway drop those end-to-end
/// headers from the script's view (a client-controlled strip of `HTTP_HOST`, and of any
/// header a proxy in front added: the hop-by-hop abuse class). nginx passes them all.
#[test]
fn connection_tokens_cannot_strip_end_to_end_headers() {
    let params = map(Request::get("/a.php")
        .header("host", "example.com")
        .header("authorization", "Basic YTpi")
        .header("x-forwarded-for", "203.0.113.9")
        .header("connection", "host, authorization, x-forwarded-for")
        .body(())
        .unwrap())
    .unwrap();
    assert_eq!(params.get_str("HTTP_HOST"), Some("example.com"));
    assert_eq!(params.get_str("HTTP_AUTHORIZATION"), Some("Basic YTpi"));
    assert_eq!(params.get_str("HTTP_X_FORWARDED_FOR"), Some("203.0.113.9"));
}

/// An HTTP/2 `:authority` is the Host of the request: it must pass the same check as a
/// `Host` header (no userinfo), instead of reaching the script unchecked as `HTTP_HOST`.
#[test]
fn an_authority_with_userinfo_is_refused_like_a_bad_host() {
    let result = map(Request::get("https://user@evil.example/a.php")
        .version(Version::HTTP_2)
        .body(())
        .unwrap());
    match result {
        Err(e) => assert_eq!(e, MapError::InvalidHost),
        Ok(p) => panic!("mapped with HTTP_HOST={:?}", p.get_str("HTTP_HOST")),
    }
}
