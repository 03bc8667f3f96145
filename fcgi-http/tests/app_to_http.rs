//! `fcgi_http::app::request_parts`: CGI params → HTTP request head, without a server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, SocketAddr};

use fcgi_core::{Params, Role};
use fcgi_http::app::{HttpConn, ParamsError, request_parts};
use http::{Method, Version};

fn params(pairs: &[(&str, &str)]) -> Params {
    let mut p = Params::new();
    for (n, v) in pairs {
        p.push(n.as_bytes(), v.as_bytes()).unwrap();
    }
    p
}

fn parts(pairs: &[(&str, &str)]) -> http::request::Parts {
    request_parts(&params(pairs), Role::Responder).unwrap()
}

/// What nginx's stock `fastcgi_params` sends for `GET /a/b?x=1` over HTTPS.
fn nginx_like() -> Vec<(&'static str, &'static str)> {
    vec![
        ("QUERY_STRING", "x=1"),
        ("REQUEST_METHOD", "GET"),
        ("CONTENT_TYPE", ""),
        ("CONTENT_LENGTH", ""),
        ("SCRIPT_NAME", "/a/b"),
        ("REQUEST_URI", "/a/b?x=1"),
        ("DOCUMENT_URI", "/a/b"),
        ("DOCUMENT_ROOT", "/srv"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("REQUEST_SCHEME", "https"),
        ("HTTPS", "on"),
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("SERVER_SOFTWARE", "nginx/1.22.1"),
        ("REMOTE_ADDR", "2001:db8::7"),
        ("REMOTE_PORT", "51234"),
        ("SERVER_ADDR", "192.0.2.1"),
        ("SERVER_PORT", "443"),
        ("SERVER_NAME", "example.com"),
        ("HTTP_HOST", "example.com"),
        ("HTTP_USER_AGENT", "curl/8"),
        ("HTTP_ACCEPT", "*/*"),
    ]
}

#[test]
fn nginx_request_becomes_an_absolute_https_request() {
    let p = parts(&nginx_like());
    assert_eq!(p.method, Method::GET);
    assert_eq!(p.uri.to_string(), "https://example.com/a/b?x=1");
    assert_eq!(p.uri.path(), "/a/b");
    assert_eq!(p.uri.query(), Some("x=1"));
    assert_eq!(p.version, Version::HTTP_11);
    assert_eq!(p.headers["host"], "example.com");
    assert_eq!(p.headers["user-agent"], "curl/8");
    assert_eq!(p.headers["accept"], "*/*");
    // Empty CONTENT_TYPE / CONTENT_LENGTH are "no body", not empty headers.
    assert!(!p.headers.contains_key("content-type"));
    assert!(!p.headers.contains_key("content-length"));
    assert_eq!(p.headers.len(), 3, "{:?}", p.headers);
    let conn = p.extensions.get::<HttpConn>().unwrap();
    assert!(conn.https);
    assert_eq!(conn.scheme(), http::uri::Scheme::HTTPS);
    assert_eq!(
        conn.remote(),
        Some("[2001:db8::7]:51234".parse::<SocketAddr>().unwrap())
    );
    assert_eq!(conn.local(), Some("192.0.2.1:443".parse().unwrap()));
}

#[test]
fn plain_http_scheme_and_methods() {
    for m in [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND",
    ] {
        let p = parts(&[
            ("REQUEST_METHOD", m),
            ("REQUEST_URI", "/"),
            ("HTTP_HOST", "h:8080"),
        ]);
        assert_eq!(p.method.as_str(), m);
        assert_eq!(p.uri.to_string(), "http://h:8080/");
        assert!(!p.extensions.get::<HttpConn>().unwrap().https);
    }
    // HTTPS=1 (some servers) and REQUEST_SCHEME alone also mean https.
    for flag in [("HTTPS", "1"), ("HTTPS", "ON"), ("REQUEST_SCHEME", "https")] {
        let p = parts(&[
            ("REQUEST_METHOD", "GET"),
            ("REQUEST_URI", "/"),
            ("HTTP_HOST", "h"),
            flag,
        ]);
        assert_eq!(p.uri.scheme_str(), Some("https"), "{flag:?}");
    }
    // HTTPS=off is plain http.
    let p = parts(&[
        ("REQUEST_METHOD", "GET"),
        ("REQUEST_URI", "/"),
        ("HTTP_HOST", "h"),
        ("HTTPS", "off"),
    ]);
    assert_eq!(p.uri.scheme_str(), Some("http"));
}

#[test]
fn without_a_host_the_uri_stays_origin_form() {
    let p = parts(&[
        ("REQUEST_METHOD", "GET"),
        ("REQUEST_URI", "/x?y"),
        ("SERVER_PROTOCOL", "HTTP/1.0"),
        ("HTTPS", "on"),
    ]);
    assert_eq!(p.uri.to_string(), "/x?y");
    assert_eq!(p.uri.scheme(), None);
    assert_eq!(p.version, Version::HTTP_10);
    // The scheme is still known.
    assert!(p.extensions.get::<HttpConn>().unwrap().https);
    // A Host that is no authority (userinfo, garbage) is not used for the URI.
    for host in ["user@evil", "a b", ""] {
        let p = parts(&[
            ("REQUEST_METHOD", "GET"),
            ("REQUEST_URI", "/x"),
            ("HTTP_HOST", host),
        ]);
        assert_eq!(p.uri.to_string(), "/x", "{host:?}");
    }
}

#[test]
fn versions_from_server_protocol() {
    for (proto, v) in [
        ("HTTP/0.9", Version::HTTP_09),
        ("HTTP/1.0", Version::HTTP_10),
        ("HTTP/1.1", Version::HTTP_11),
        ("HTTP/2.0", Version::HTTP_2),
        ("HTTP/2", Version::HTTP_2),
        ("HTTP/3.0", Version::HTTP_3),
        ("HTTP/3", Version::HTTP_3),
        ("INCLUDED", Version::HTTP_11),
        ("", Version::HTTP_11),
    ] {
        let p = parts(&[
            ("REQUEST_METHOD", "GET"),
            ("REQUEST_URI", "/"),
            ("SERVER_PROTOCOL", proto),
        ]);
        assert_eq!(p.version, v, "{proto}");
    }
    let p = parts(&[("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/")]);
    assert_eq!(p.version, Version::HTTP_11);
}

#[test]
fn encoded_paths_and_queries_are_kept_as_received() {
    let p = parts(&[
        ("REQUEST_METHOD", "GET"),
        ("REQUEST_URI", "/files/a%20b%2Fc/%C3%A9?q=%26x&y=a+b"),
    ]);
    assert_eq!(p.uri.path(), "/files/a%20b%2Fc/%C3%A9");
    assert_eq!(p.uri.query(), Some("q=%26x&y=a+b"));
}

#[test]
fn raw_bytes_no_uri_may_hold_are_percent_encoded() {
    // Raw UTF-8, a space, a tab and a `#` (which would otherwise cut the path).
    let p = parts(&[
        ("REQUEST_METHOD", "GET"),
        ("REQUEST_URI", "/caf\u{e9} x\t#1?q=\u{e9}"),
    ]);
    assert_eq!(p.uri.path(), "/caf%C3%A9%20x%09%231");
    assert_eq!(p.uri.query(), Some("q=%C3%A9"));
    // Invalid UTF-8 too.
    let mut raw = Params::new();
    raw.push(b"REQUEST_METHOD", b"GET").unwrap();
    raw.push(b"REQUEST_URI", b"/\xff\x00").unwrap();
    let p = request_parts(&raw, Role::Responder).unwrap();
    assert_eq!(p.uri.path(), "/%FF%00");
}

#[test]
fn absolute_form_and_star_targets() {
    let p = parts(&[
        ("REQUEST_METHOD", "GET"),
        ("REQUEST_URI", "http://other.example/p?q=1"),
        ("HTTP_HOST", "h"),
    ]);
    assert_eq!(p.uri.to_string(), "http://h/p?q=1");
    let p = parts(&[("REQUEST_METHOD", "OPTIONS"), ("REQUEST_URI", "*")]);
    assert_eq!(p.uri, "*");
}

#[test]
fn without_request_uri_the_target_is_rebuilt_from_cgi_variables() {
    // Apache's and lighttpd's Authorizer calls may lack REQUEST_URI. PATH_INFO is decoded, so
    // `%`, `?`, `#` and spaces in it are data and get encoded; QUERY_STRING is raw.
    let p = parts(&[
        ("REQUEST_METHOD", "GET"),
        ("SCRIPT_NAME", "/app.cgi"),
        ("PATH_INFO", "/a b/50%?#"),
        ("QUERY_STRING", "x=1&y=%20"),
    ]);
    assert_eq!(p.uri.path(), "/app.cgi/a%20b/50%25%3F%23");
    assert_eq!(p.uri.query(), Some("x=1&y=%20"));
    let p = parts(&[("REQUEST_METHOD", "GET"), ("SCRIPT_NAME", "")]);
    assert_eq!(p.uri, "/");
    let p = parts(&[("REQUEST_METHOD", "GET"), ("PATH_INFO", "rel")]);
    assert_eq!(p.uri, "/rel");
    let p = parts(&[("REQUEST_METHOD", "GET"), ("QUERY_STRING", "only")]);
    assert_eq!(p.uri, "/?only");
}

#[test]
fn content_type_and_length_come_from_the_cgi_variables() {
    let p = parts(&[
        ("REQUEST_METHOD", "POST"),
        ("REQUEST_URI", "/"),
        ("CONTENT_TYPE", "application/json"),
        ("CONTENT_LENGTH", "42"),
        // nginx also sends these; the CGI ones win and nothing is duplicated.
        ("HTTP_CONTENT_TYPE", "text/plain"),
        ("HTTP_CONTENT_LENGTH", "999"),
    ]);
    assert_eq!(p.headers.get_all("content-type").iter().count(), 1);
    assert_eq!(p.headers["content-type"], "application/json");
    assert_eq!(p.headers.get_all("content-length").iter().count(), 1);
    assert_eq!(p.headers["content-length"], "42");
    // Without CONTENT_TYPE, HTTP_CONTENT_TYPE is used; HTTP_CONTENT_LENGTH never is (it may
    // not describe STDIN: a chunked request that nginx buffered has none at all).
    let p = parts(&[
        ("REQUEST_METHOD", "POST"),
        ("REQUEST_URI", "/"),
        ("HTTP_CONTENT_TYPE", "text/plain"),
        ("HTTP_CONTENT_LENGTH", "999"),
    ]);
    assert_eq!(p.headers["content-type"], "text/plain");
    assert!(!p.headers.contains_key("content-length"));
}

#[test]
fn http_variables_become_headers_and_hop_by_hop_ones_do_not() {
    let p = parts(&[
        ("REQUEST_METHOD", "GET"),
        ("REQUEST_URI", "/"),
        ("HTTP_X_FORWARDED_FOR", "198.51.100.2"),
        ("HTTP_COOKIE", "a=1; b=2"),
        ("HTTP_ACCEPT_ENCODING", "gzip, br"),
        ("HTTP_CONNECTION", "keep-alive"),
        ("HTTP_KEEP_ALIVE", "300"),
        ("HTTP_TRANSFER_ENCODING", "chunked"),
        ("HTTP_UPGRADE", "websocket"),
        ("HTTP_PROXY_CONNECTION", "close"),
        // Not headers: CGI variables that merely start with HTTP.
        ("HTTPS", "on"),
        ("HTTP_", "x"),
    ]);
    assert_eq!(p.headers["x-forwarded-for"], "198.51.100.2");
    assert_eq!(p.headers["cookie"], "a=1; b=2");
    assert_eq!(p.headers["accept-encoding"], "gzip, br");
    for gone in [
        "connection",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
        "proxy-connection",
        "https",
    ] {
        assert!(!p.headers.contains_key(gone), "{gone}");
    }
    assert_eq!(p.headers.len(), 3, "{:?}", p.headers);
}

#[test]
fn a_repeated_variable_keeps_its_last_value() {
    let p = parts(&[
        ("REQUEST_METHOD", "GET"),
        ("REQUEST_URI", "/"),
        ("HTTP_HOST", "first"),
        ("HTTP_HOST", "second"),
    ]);
    assert_eq!(p.headers.get_all("host").iter().count(), 1);
    assert_eq!(p.headers["host"], "second");
    assert_eq!(p.uri.host(), Some("second"));
}

#[test]
fn invalid_header_names_and_values_are_skipped_not_fatal() {
    let mut raw = Params::new();
    for (n, v) in [
        (&b"REQUEST_METHOD"[..], &b"GET"[..]),
        (b"REQUEST_URI", b"/"),
        (b"HTTP_BAD\xffNAME", b"v"),
        (b"HTTP_A(B)", b"v"),
        (b"HTTP_X_NEWLINE", b"a\r\nInjected: 1"),
        (b"HTTP_X_NUL", b"a\0b"),
        (b"HTTP_X_OBS_TEXT", b"caf\xe9"),
        (b"HTTP_X_GOOD", b"fine"),
        (b"CONTENT_TYPE", b"bad\nvalue"),
    ] {
        raw.push(n, v).unwrap();
    }
    let p = request_parts(&raw, Role::Responder).unwrap();
    assert_eq!(p.headers["x-good"], "fine");
    // obs-text is a valid (if discouraged) header value byte.
    assert_eq!(p.headers["x-obs-text"].as_bytes(), b"caf\xe9");
    assert!(!p.headers.contains_key("x-newline"));
    assert!(!p.headers.contains_key("x-nul"));
    assert!(!p.headers.contains_key("injected"));
    assert!(!p.headers.contains_key("content-type"));
    assert_eq!(p.headers.len(), 2, "{:?}", p.headers);
}

#[test]
fn missing_or_bad_fields_are_typed_errors() {
    let err = |pairs: &[(&str, &str)], role| request_parts(&params(pairs), role).unwrap_err();
    assert_eq!(
        err(&[("REQUEST_URI", "/")], Role::Responder),
        ParamsError::MissingMethod
    );
    assert_eq!(
        err(
            &[("REQUEST_METHOD", ""), ("REQUEST_URI", "/")],
            Role::Filter
        ),
        ParamsError::MissingMethod
    );
    assert_eq!(
        err(
            &[("REQUEST_METHOD", "GE T"), ("REQUEST_URI", "/")],
            Role::Responder
        ),
        ParamsError::InvalidMethod
    );
    for bad in ["12a", "-1", " 5", "99999999999999999999999", "0x10"] {
        assert_eq!(
            err(
                &[
                    ("REQUEST_METHOD", "POST"),
                    ("REQUEST_URI", "/"),
                    ("CONTENT_LENGTH", bad)
                ],
                Role::Responder
            ),
            ParamsError::InvalidContentLength,
            "{bad}"
        );
    }
    for bad in ["relative", "http://", "host:80", "?q"] {
        let e = request_parts(
            &params(&[("REQUEST_METHOD", "GET"), ("REQUEST_URI", bad)]),
            Role::Responder,
        );
        assert_eq!(e.unwrap_err(), ParamsError::InvalidUri, "{bad}");
    }
}

#[test]
fn an_authorizer_without_a_method_is_a_get() {
    let p = request_parts(&params(&[("REQUEST_URI", "/private")]), Role::Authorizer).unwrap();
    assert_eq!(p.method, Method::GET);
    assert_eq!(p.uri, "/private");
}

#[test]
fn addresses_that_do_not_parse_are_absent() {
    let p = parts(&[
        ("REQUEST_METHOD", "GET"),
        ("REQUEST_URI", "/"),
        ("REMOTE_ADDR", "unix:"),
        ("REMOTE_PORT", "x"),
        ("SERVER_ADDR", "[::1]"),
        ("SERVER_PORT", "70000"),
    ]);
    let conn = p.extensions.get::<HttpConn>().unwrap();
    assert_eq!(conn.remote_ip, None);
    assert_eq!(conn.remote_port, None);
    assert_eq!(conn.local_ip, Some(IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1])));
    assert_eq!(conn.local_port, None);
    assert_eq!(conn.remote(), None);
    assert_eq!(conn.local(), None);
    // REMOTE_ADDR without REMOTE_PORT (a trimmed nginx config): the IP is still there.
    let p = parts(&[
        ("REQUEST_METHOD", "GET"),
        ("REQUEST_URI", "/"),
        ("REMOTE_ADDR", "127.0.0.1"),
    ]);
    let conn = p.extensions.get::<HttpConn>().unwrap();
    assert_eq!(conn.remote_ip, Some(IpAddr::from([127, 0, 0, 1])));
    assert_eq!(conn.remote(), None);
}

#[test]
fn arbitrary_params_never_panic() {
    // A small deterministic fuzz: random names from a pool, random bytes as values.
    let names: &[&[u8]] = &[
        b"REQUEST_METHOD",
        b"REQUEST_URI",
        b"SCRIPT_NAME",
        b"PATH_INFO",
        b"QUERY_STRING",
        b"HTTP_HOST",
        b"HTTP_X",
        b"CONTENT_LENGTH",
        b"CONTENT_TYPE",
        b"SERVER_PROTOCOL",
        b"HTTPS",
        b"REMOTE_ADDR",
        b"REMOTE_PORT",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let alphabet = b"/?#%:@ azAZ09.-_*\x00\x7f\xff\xc3\xa9\r\n";
    for _ in 0..5000 {
        let mut p = Params::new();
        for _ in 0..(next() % 6) {
            let name = names[(next() % names.len() as u64) as usize];
            let len = (next() % 12) as usize;
            let value: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            p.push(name, &value).unwrap();
        }
        for role in [Role::Responder, Role::Authorizer, Role::Filter] {
            if let Ok(parts) = request_parts(&p, role) {
                // Whatever was accepted is a usable request target.
                assert!(parts.uri == "*" || parts.uri.path().starts_with('/'));
            }
        }
    }
}

/// A repeated request header sent as separate `HTTP_*` params (Debian's nginx 1.22) keeps
/// every value, in order: `Cookie: a=1` + `Cookie: b=2` is both cookies, not the last.
#[test]
fn repeated_header_params_keep_every_value() {
    let mut pairs = nginx_like();
    pairs.push(("HTTP_COOKIE", "a=1"));
    pairs.push(("HTTP_COOKIE", "b=2"));
    pairs.push(("HTTP_ACCEPT_LANGUAGE", "en"));
    pairs.push(("HTTP_ACCEPT_LANGUAGE", "fr"));
    let p = parts(&pairs);
    let cookies: Vec<_> = p.headers.get_all("cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    let langs: Vec<_> = p.headers.get_all("accept-language").iter().collect();
    assert_eq!(langs, ["en", "fr"]);
}
