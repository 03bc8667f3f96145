//! HTTP request head → CGI params: nginx parity and the security rules.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::net::SocketAddr;

use fcgi_http::request::{CgiConfig, ConnInfo, MapError, ScriptResolution, build_params};
use http::{Request, Version};

fn conn(tls: bool) -> ConnInfo {
    let local: SocketAddr = "10.0.0.1:8080".parse().unwrap();
    let remote: SocketAddr = "[2001:db8::7]:51234".parse().unwrap();
    ConnInfo::new(local, remote, tls)
}

fn split_cfg() -> CgiConfig {
    let mut c = CgiConfig::new("/srv/www/", ScriptResolution::split_path());
    c.server_software = "test/1".into();
    c.server_name = "example.test".into();
    c
}

fn front_cfg() -> CgiConfig {
    let mut c = split_cfg();
    c.script = ScriptResolution::FrontController("index.php".into());
    c
}

fn map_with(
    req: Request<()>,
    body_len: Option<u64>,
    tls: bool,
    cfg: &CgiConfig,
) -> Result<BTreeMap<String, String>, MapError> {
    let (parts, ()) = req.into_parts();
    let p = build_params(&parts, body_len, &conn(tls), cfg)?;
    let mut m = BTreeMap::new();
    for (n, v) in p.iter() {
        let old = m.insert(
            String::from_utf8(n.to_vec()).unwrap(),
            String::from_utf8(v.to_vec()).unwrap(),
        );
        assert!(
            old.is_none(),
            "duplicate param {}",
            String::from_utf8_lossy(n)
        );
    }
    Ok(m)
}

fn get(uri: &str) -> Request<()> {
    Request::get(uri)
        .header("host", "example.test")
        .body(())
        .unwrap()
}

fn split(uri: &str) -> Result<BTreeMap<String, String>, MapError> {
    map_with(get(uri), None, false, &split_cfg())
}

fn owned(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn full_param_set_for_split_path_with_path_info() {
    let req = Request::post("/app/shop.php/cart/add?id=3&x=%20y")
        .header("host", "example.test:8080")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("content-length", "7")
        .header("user-agent", "curl/8")
        .header("x-forwarded-for", "1.2.3.4")
        .body(())
        .unwrap();
    let m = map_with(req, Some(7), false, &split_cfg()).unwrap();
    let expected = owned(&[
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("SERVER_SOFTWARE", "test/1"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("REQUEST_METHOD", "POST"),
        ("REQUEST_SCHEME", "http"),
        ("REQUEST_URI", "/app/shop.php/cart/add?id=3&x=%20y"),
        ("DOCUMENT_URI", "/app/shop.php/cart/add"),
        ("QUERY_STRING", "id=3&x=%20y"),
        ("SCRIPT_NAME", "/app/shop.php"),
        ("PATH_INFO", "/cart/add"),
        ("SCRIPT_FILENAME", "/srv/www/app/shop.php"),
        ("DOCUMENT_ROOT", "/srv/www"),
        ("PATH_TRANSLATED", "/srv/www/cart/add"),
        ("SERVER_NAME", "example.test"),
        ("SERVER_PORT", "8080"),
        ("SERVER_ADDR", "10.0.0.1"),
        ("REMOTE_ADDR", "2001:db8::7"),
        ("REMOTE_PORT", "51234"),
        ("REDIRECT_STATUS", "200"),
        ("CONTENT_TYPE", "application/x-www-form-urlencoded"),
        ("CONTENT_LENGTH", "7"),
        ("HTTP_HOST", "example.test:8080"),
        ("HTTP_CONTENT_TYPE", "application/x-www-form-urlencoded"),
        ("HTTP_CONTENT_LENGTH", "7"),
        ("HTTP_USER_AGENT", "curl/8"),
        ("HTTP_X_FORWARDED_FOR", "1.2.3.4"),
    ]);
    assert_eq!(m, expected);
}

#[test]
fn get_without_body_has_empty_content_vars_and_no_path_translated() {
    let m = split("/index.php").unwrap();
    assert_eq!(m["CONTENT_TYPE"], "");
    assert_eq!(m["CONTENT_LENGTH"], "");
    assert_eq!(m["QUERY_STRING"], "");
    assert_eq!(m["REQUEST_URI"], "/index.php");
    assert_eq!(m["PATH_INFO"], "");
    assert!(!m.contains_key("PATH_TRANSLATED"));
    assert!(!m.contains_key("HTTPS"));
    assert!(!m.contains_key("HTTP_CONTENT_LENGTH"));
}

#[test]
fn body_len_wins_over_content_length_header() {
    let req = Request::post("/a.php")
        .header("host", "example.test")
        .header("content-length", "5")
        .body(())
        .unwrap();
    let m = map_with(req, Some(12), false, &split_cfg()).unwrap();
    assert_eq!(m["CONTENT_LENGTH"], "12");
    let req = Request::post("/a.php")
        .header("host", "example.test")
        .header("content-length", "5")
        .body(())
        .unwrap();
    let m = map_with(req, None, false, &split_cfg()).unwrap();
    assert_eq!(m["CONTENT_LENGTH"], "5");
}

#[test]
fn https_on_tls() {
    let m = map_with(get("/a.php"), None, true, &split_cfg()).unwrap();
    assert_eq!(m["HTTPS"], "on");
    assert_eq!(m["REQUEST_SCHEME"], "https");
}

#[test]
fn protocol_versions_as_nginx_prints_them() {
    for (v, s) in [
        (Version::HTTP_10, "HTTP/1.0"),
        (Version::HTTP_11, "HTTP/1.1"),
        (Version::HTTP_2, "HTTP/2.0"),
    ] {
        let req = Request::get("/a.php")
            .header("host", "example.test")
            .version(v)
            .body(())
            .unwrap();
        let m = map_with(req, None, false, &split_cfg()).unwrap();
        assert_eq!(m["SERVER_PROTOCOL"], s);
    }
}

#[test]
fn http2_authority_becomes_http_host() {
    let req = Request::get("https://example.test/a.php")
        .version(Version::HTTP_2)
        .body(())
        .unwrap();
    let m = map_with(req, None, true, &split_cfg()).unwrap();
    assert_eq!(m["HTTP_HOST"], "example.test");
    assert_eq!(m["REQUEST_URI"], "/a.php");
}

#[test]
fn front_controller_runs_one_script_and_keeps_request_uri() {
    let m = map_with(
        get("/blog/2024/hello%20world?page=2"),
        None,
        false,
        &front_cfg(),
    )
    .unwrap();
    assert_eq!(m["SCRIPT_NAME"], "/index.php");
    assert_eq!(m["DOCUMENT_URI"], "/index.php");
    assert_eq!(m["SCRIPT_FILENAME"], "/srv/www/index.php");
    assert_eq!(m["PATH_INFO"], "");
    assert!(!m.contains_key("PATH_TRANSLATED"));
    assert_eq!(m["REQUEST_URI"], "/blog/2024/hello%20world?page=2");
    assert_eq!(m["QUERY_STRING"], "page=2");
}

#[test]
fn front_controller_still_refuses_bad_paths() {
    assert_eq!(
        map_with(get("/%2e%2e/x"), None, false, &front_cfg()),
        Err(MapError::Traversal)
    );
    assert_eq!(
        map_with(get("/a%00b"), None, false, &front_cfg()),
        Err(MapError::NulInPath)
    );
}

#[test]
fn front_controller_with_bad_config_is_refused() {
    let mut c = front_cfg();
    c.script = ScriptResolution::FrontController("../index.php".into());
    assert_eq!(
        map_with(get("/"), None, false, &c),
        Err(MapError::InvalidConfig)
    );
}

#[test]
fn index_is_appended_to_directory_paths() {
    let m = split("/").unwrap();
    assert_eq!(m["SCRIPT_NAME"], "/index.php");
    assert_eq!(m["SCRIPT_FILENAME"], "/srv/www/index.php");
    assert_eq!(m["DOCUMENT_URI"], "/index.php");
    let m = split("/docs/?q=1").unwrap();
    assert_eq!(m["SCRIPT_NAME"], "/docs/index.php");
    assert_eq!(m["PATH_INFO"], "");
    assert_eq!(m["REQUEST_URI"], "/docs/?q=1");
}

#[test]
fn shortest_script_prefix_wins() {
    let m = split("/a.php/b.php/c").unwrap();
    assert_eq!(m["SCRIPT_NAME"], "/a.php");
    assert_eq!(m["PATH_INFO"], "/b.php/c");
    assert_eq!(m["PATH_TRANSLATED"], "/srv/www/b.php/c");
    let m = split("/a.php/").unwrap();
    assert_eq!(m["SCRIPT_NAME"], "/a.php");
    assert_eq!(m["PATH_INFO"], "/");
}

#[test]
fn path_is_decoded_and_normalised() {
    let m = split("/a/./b/../c%20d.php/x%2Fy?z=%2F").unwrap();
    assert_eq!(m["SCRIPT_NAME"], "/a/c d.php");
    assert_eq!(m["PATH_INFO"], "/x/y");
    assert_eq!(m["DOCUMENT_URI"], "/a/c d.php/x/y");
    assert_eq!(m["REQUEST_URI"], "/a/./b/../c%20d.php/x%2Fy?z=%2F");
    assert_eq!(m["QUERY_STRING"], "z=%2F");
}

#[test]
fn double_slash_collapses() {
    let m = split("//x.php").unwrap();
    assert_eq!(m["SCRIPT_NAME"], "/x.php");
    assert_eq!(m["SCRIPT_FILENAME"], "/srv/www/x.php");
    assert_eq!(m["REQUEST_URI"], "//x.php");
}

#[test]
fn traversal_is_refused() {
    for uri in [
        "/../etc/passwd",
        "/%2e%2e/x.php",
        "/a/%2E%2E/%2e%2e/b.php",
        "/a/..%2f..%2fb.php",
        "/a/b/../../../x.php",
    ] {
        assert_eq!(split(uri), Err(MapError::Traversal), "{uri}");
    }
    // Climbing back down inside the root is fine.
    assert_eq!(split("/a/../b.php").unwrap()["SCRIPT_NAME"], "/b.php");
}

#[test]
fn nul_and_bad_escapes_are_refused() {
    assert_eq!(split("/x.php%00.jpg"), Err(MapError::NulInPath));
    assert_eq!(split("/x%zz.php"), Err(MapError::InvalidPath));
    assert_eq!(split("/x.php%2"), Err(MapError::InvalidPath));
}

#[test]
fn script_must_have_allowed_extension() {
    // Rule: the script is the first segment ending in an allowed extension; an image
    // directory in front of it is just a directory (the adapter checks the file exists).
    let m = split("/uploads/x.jpg/y.php").unwrap();
    assert_eq!(m["SCRIPT_NAME"], "/uploads/x.jpg/y.php");
    assert_eq!(m["PATH_INFO"], "");
    assert_eq!(split("/uploads/x.jpg"), Err(MapError::NotAScript));
    assert_eq!(
        split("/uploads/x.jpg/").unwrap()["SCRIPT_NAME"],
        "/uploads/x.jpg/index.php"
    );
    assert_eq!(split("/x.PHP"), Err(MapError::NotAScript));
    assert_eq!(split("/.php"), Err(MapError::NotAScript));
    assert_eq!(split("/x.phps"), Err(MapError::NotAScript));
}

#[test]
fn extension_list_is_configurable() {
    let mut c = split_cfg();
    c.script = ScriptResolution::SplitPath {
        index: "main.phtml".into(),
        extensions: vec![".phtml".into()],
    };
    let m = map_with(get("/v.phtml/i"), None, false, &c).unwrap();
    assert_eq!(m["SCRIPT_NAME"], "/v.phtml");
    assert_eq!(m["PATH_INFO"], "/i");
    assert_eq!(
        map_with(get("/v.php"), None, false, &c),
        Err(MapError::NotAScript)
    );
    assert_eq!(
        map_with(get("/d/"), None, false, &c).unwrap()["SCRIPT_NAME"],
        "/d/main.phtml"
    );
}

#[test]
fn index_without_allowed_extension_is_not_a_script() {
    let mut c = split_cfg();
    c.script = ScriptResolution::SplitPath {
        index: "index.html".into(),
        extensions: vec![".php".into()],
    };
    assert_eq!(
        map_with(get("/"), None, false, &c),
        Err(MapError::NotAScript)
    );
}

#[test]
fn proxy_header_never_becomes_http_proxy() {
    let req = Request::get("/a.php")
        .header("host", "example.test")
        .header("proxy", "http://evil.test:3128")
        .body(())
        .unwrap();
    let m = map_with(req, None, false, &split_cfg()).unwrap();
    assert!(!m.contains_key("HTTP_PROXY"));
}

#[test]
fn underscore_headers_are_dropped() {
    let req = Request::get("/a.php")
        .header("host", "example.test")
        .header("x-forwarded-for", "10.1.1.1")
        .header("x_forwarded_for", "6.6.6.6")
        .header("x_only", "1")
        .body(())
        .unwrap();
    let m = map_with(req, None, false, &split_cfg()).unwrap();
    assert_eq!(m["HTTP_X_FORWARDED_FOR"], "10.1.1.1");
    assert!(!m.contains_key("HTTP_X_ONLY"));
}

#[test]
fn repeated_headers_are_joined_and_cookie_crumbs_use_semicolon() {
    let req = Request::get("/a.php")
        .header("host", "example.test")
        .version(Version::HTTP_2)
        .header("cookie", "a=1")
        .header("cookie", "b=2")
        .header("cookie", "c=3")
        .header("accept", "text/html")
        .header("accept", "*/*")
        .body(())
        .unwrap();
    let m = map_with(req, None, false, &split_cfg()).unwrap();
    assert_eq!(m["HTTP_COOKIE"], "a=1; b=2; c=3");
    assert_eq!(m["HTTP_ACCEPT"], "text/html, */*");
}

#[test]
fn hop_by_hop_and_connection_listed_headers_are_dropped() {
    let req = Request::get("/a.php")
        .header("host", "example.test")
        .header("connection", "keep-alive, X-Secret")
        .header("keep-alive", "timeout=5")
        .header("proxy-connection", "keep-alive")
        .header("te", "trailers")
        .header("trailer", "x-t")
        .header("transfer-encoding", "chunked")
        .header("upgrade", "websocket")
        .header("x-secret", "s")
        .header("x-kept", "k")
        .body(())
        .unwrap();
    let m = map_with(req, None, false, &split_cfg()).unwrap();
    let http_vars: Vec<&str> = m
        .keys()
        .filter(|k| k.starts_with("HTTP_"))
        .map(String::as_str)
        .collect();
    assert_eq!(http_vars, ["HTTP_HOST", "HTTP_X_KEPT"]);
}

#[test]
fn document_root_slash_handling() {
    let mut c = split_cfg();
    c.document_root = "/srv/www".into();
    let m = map_with(get("/a.php/p"), None, false, &c).unwrap();
    assert_eq!(m["DOCUMENT_ROOT"], "/srv/www");
    assert_eq!(m["SCRIPT_FILENAME"], "/srv/www/a.php");
    c.document_root = "/".into();
    let m = map_with(get("/a.php/p"), None, false, &c).unwrap();
    assert_eq!(m["DOCUMENT_ROOT"], "/");
    assert_eq!(m["SCRIPT_FILENAME"], "/a.php");
    assert_eq!(m["PATH_TRANSLATED"], "/p");
}

#[test]
fn non_origin_target_is_refused() {
    let req = Request::options("*").body(()).unwrap();
    assert_eq!(
        map_with(req, None, false, &split_cfg()),
        Err(MapError::InvalidPath)
    );
}

/// The longest addresses and ports are written out whole (they are formatted on the stack).
#[test]
fn longest_addresses_and_ports() {
    let (parts, ()) = get("/a.php").into_parts();
    let c = ConnInfo::new(
        "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe]:65535"
            .parse()
            .unwrap(),
        "255.255.255.255:65535".parse().unwrap(),
        false,
    );
    let p = build_params(&parts, Some(u64::MAX), &c, &split_cfg()).unwrap();
    assert_eq!(
        p.get_str("SERVER_ADDR"),
        Some("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe")
    );
    assert_eq!(p.get_str("SERVER_PORT"), Some("65535"));
    assert_eq!(p.get_str("REMOTE_ADDR"), Some("255.255.255.255"));
    assert_eq!(p.get_str("CONTENT_LENGTH"), Some("18446744073709551615"));
}

#[test]
fn ipv4_addresses_and_ports() {
    let (parts, ()) = get("/a.php").into_parts();
    let c = ConnInfo::new(
        "192.0.2.1:443".parse().unwrap(),
        "198.51.100.9:40000".parse().unwrap(),
        true,
    );
    let p = build_params(&parts, None, &c, &split_cfg()).unwrap();
    assert_eq!(p.get_str("SERVER_ADDR"), Some("192.0.2.1"));
    assert_eq!(p.get_str("SERVER_PORT"), Some("443"));
    assert_eq!(p.get_str("REMOTE_ADDR"), Some("198.51.100.9"));
    assert_eq!(p.get_str("REMOTE_PORT"), Some("40000"));
}

/// Header names of every length become `HTTP_*` names exactly: short ones are built on the
/// stack, the rest in a buffer (59 name bytes is the last that fits the stack's 64).
#[test]
fn header_names_of_any_length_map_exactly() {
    // Names of 1, 58, 59, 60, 61 and 200 bytes.
    let names: Vec<String> = ["x".to_owned()]
        .into_iter()
        .chain([58usize, 59, 60, 61, 200].map(|n| format!("x-{}", "a".repeat(n - 2))))
        .collect();
    let mut req = Request::get("/index.php").header("host", "h");
    for (i, name) in names.iter().enumerate() {
        req = req.header(name.as_str(), format!("v{i}"));
    }
    let (parts, ()) = req.body(()).unwrap().into_parts();
    let p = build_params(&parts, None, &conn(false), &split_cfg()).unwrap();
    for (i, name) in names.iter().enumerate() {
        let var = format!("HTTP_{}", name.to_ascii_uppercase().replace('-', "_"));
        assert_eq!(p.get_str(&var), Some(format!("v{i}").as_str()), "{var}");
    }
    assert_eq!(p.get_str("HTTP_HOST"), Some("h"));
}

#[test]
fn header_names_with_anything_but_letters_digits_and_dash_are_dropped() {
    let mut req = Request::get("/index.php").header("host", "h");
    for name in [
        "x.dot", "x~tilde", "x!bang", "x'quote", "x*star", "x+plus", "x%41", "x_under",
    ] {
        req = req.header(name, "spoof");
    }
    let (parts, ()) = req.header("x-dot", "real").body(()).unwrap().into_parts();
    let p = build_params(&parts, None, &conn(false), &split_cfg()).unwrap();
    let http_vars: Vec<String> = p
        .iter()
        .map(|(n, _)| String::from_utf8_lossy(n).into_owned())
        .filter(|n| n.starts_with("HTTP_"))
        .collect();
    assert_eq!(http_vars, ["HTTP_HOST", "HTTP_X_DOT"]);
    assert_eq!(p.get(b"HTTP_X_DOT"), Some(&b"real"[..]));
}

#[test]
fn host_is_checked_like_rfc_9112_asks() {
    let map = |version: Version, hosts: &[&[u8]]| {
        let mut req = Request::get("/index.php").version(version);
        for h in hosts {
            req = req.header("host", http::HeaderValue::from_bytes(h).unwrap());
        }
        let (parts, ()) = req.body(()).unwrap().into_parts();
        build_params(&parts, None, &conn(false), &split_cfg())
    };
    for bad in [
        &[][..],
        &[&b"a/b"[..]],
        &[&b"a..b"[..]],
        &[&b"a b"[..]],
        &[&b""[..]],
        &[&b"user@host"[..]],
        &[&b"host:port"[..]],
        &[&b"[::1"[..]],
        &[&b"[zz::1]"[..]],
        &[&b"[::1]x"[..]],
        &[&b":80"[..]],
        &[&b"a\"b"[..]],
        &[&b"one.test"[..], &b"two.test"[..]],
    ] {
        assert_eq!(
            map(Version::HTTP_11, bad).unwrap_err(),
            MapError::InvalidHost,
            "{bad:?}"
        );
    }
    for good in [
        &b"parity.test."[..],
        b"[::1]:8080",
        b"Parity.TEST:8080",
        b"127.0.0.1",
    ] {
        let p = map(Version::HTTP_11, &[good]).unwrap();
        assert_eq!(p.get(b"HTTP_HOST"), Some(good), "as received");
    }
    // HTTP/1.0 may omit it.
    assert!(
        map(Version::HTTP_10, &[])
            .unwrap()
            .get(b"HTTP_HOST")
            .is_none()
    );
}

/// Without a configured name, `SERVER_NAME` is the host the request was directed to,
/// without its port (RFC 3875 §4.1.14; Apache with `UseCanonicalName Off`, Caddy): from
/// `Host`, from an HTTP/2 or absolute target's authority, with IPv6 brackets kept; the
/// address the request arrived on when it names no host (HTTP/1.0). A configured name wins.
#[test]
fn server_name_defaults_to_the_requested_host() {
    let mut cfg = split_cfg();
    cfg.server_name = String::new();
    let name = |req: Request<()>, cfg: &CgiConfig| {
        map_with(req, None, false, cfg).unwrap()["SERVER_NAME"].clone()
    };
    let with_host = |host: &str| {
        Request::get("/index.php")
            .header("host", host)
            .body(())
            .unwrap()
    };
    assert_eq!(name(with_host("shop.example:8443"), &cfg), "shop.example");
    assert_eq!(name(with_host("shop.example"), &cfg), "shop.example");
    assert_eq!(name(with_host("[2001:db8::1]:8443"), &cfg), "[2001:db8::1]");
    assert_eq!(name(with_host("192.0.2.7:80"), &cfg), "192.0.2.7");
    let h2 = Request::get("https://h2.example:9443/index.php")
        .version(Version::HTTP_2)
        .body(())
        .unwrap();
    assert_eq!(name(h2, &cfg), "h2.example");
    let old = Request::get("/index.php")
        .version(Version::HTTP_10)
        .body(())
        .unwrap();
    assert_eq!(name(old, &cfg), "10.0.0.1", "the local address");
    cfg.server_name = "canonical.example".into();
    assert_eq!(
        name(with_host("other.example:81"), &cfg),
        "canonical.example"
    );
}
