//! `fcgi_http::app::encode_head` (response head → CGI header block), the Authorizer helper
//! and the stand-alone `RequestBody`, without a server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::{Bytes, BytesMut};
use fcgi_http::app::{RequestBody, authorizer, encode_head, is_dropped};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Empty};

fn head(status: u16, headers: &[(&str, &[u8])]) -> String {
    let mut map = HeaderMap::new();
    for (n, v) in headers {
        map.append(
            HeaderName::from_bytes(n.as_bytes()).unwrap(),
            HeaderValue::from_bytes(v).unwrap(),
        );
    }
    let mut out = BytesMut::new();
    encode_head(StatusCode::from_u16(status).unwrap(), &map, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn status_line_is_always_written() {
    assert_eq!(head(200, &[]), "Status: 200 OK\r\n\r\n");
    assert_eq!(head(404, &[]), "Status: 404 Not Found\r\n\r\n");
    assert_eq!(head(503, &[]), "Status: 503 Service Unavailable\r\n\r\n");
    // No canonical reason: the code alone.
    assert_eq!(head(599, &[]), "Status: 599\r\n\r\n");
    assert_eq!(head(299, &[]), "Status: 299\r\n\r\n");
}

#[test]
fn headers_in_order_title_cased_with_repeated_values_on_their_own_lines() {
    let out = head(
        302,
        &[
            ("location", b"https://example.com/login?next=%2F"),
            ("set-cookie", b"a=1; Path=/"),
            ("set-cookie", b"b=2"),
            ("x-request-id", b"abc"),
            ("www-authenticate", b"Basic realm=\"x\""),
            ("content-length", b"0"),
        ],
    );
    assert_eq!(
        out,
        "Status: 302 Found\r\n\
         Location: https://example.com/login?next=%2F\r\n\
         Set-Cookie: a=1; Path=/\r\n\
         Set-Cookie: b=2\r\n\
         X-Request-Id: abc\r\n\
         Www-Authenticate: Basic realm=\"x\"\r\n\
         Content-Length: 0\r\n\r\n"
    );
}

#[test]
fn hop_by_hop_and_status_headers_are_not_written() {
    let out = head(
        200,
        &[
            ("connection", b"close"),
            ("keep-alive", b"timeout=5"),
            ("proxy-connection", b"close"),
            ("transfer-encoding", b"chunked"),
            ("te", b"trailers"),
            ("trailer", b"x-checksum"),
            ("upgrade", b"h2c"),
            ("status", b"404 Not Found"),
            ("content-type", b"text/html"),
            ("content-length", b"5"),
        ],
    );
    assert_eq!(
        out,
        "Status: 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\n"
    );
    for name in ["connection", "te", "upgrade", "status"] {
        assert!(is_dropped(&HeaderName::from_static(name)));
    }
    assert!(!is_dropped(&http::header::CONTENT_LENGTH));
    assert!(!is_dropped(&http::header::LOCATION));
}

#[test]
fn values_are_written_byte_for_byte() {
    let mut out = BytesMut::new();
    let mut map = HeaderMap::new();
    map.insert("x-latin", HeaderValue::from_bytes(b"caf\xe9\t!").unwrap());
    encode_head(StatusCode::OK, &map, &mut out);
    assert_eq!(&out[..], b"Status: 200 OK\r\nX-Latin: caf\xe9\t!\r\n\r\n");
}

#[test]
fn authorizer_variables_are_upper_case() {
    let out = head(
        200,
        &[
            ("variable-remote_user", b"alice"),
            ("variable-x-team", b"ops"),
        ],
    );
    assert_eq!(
        out,
        "Status: 200 OK\r\nVariable-REMOTE_USER: alice\r\nVariable-X-TEAM: ops\r\n\r\n"
    );
}

#[test]
fn allow_builds_a_200_with_variables() {
    let r: http::Response<Empty<Bytes>> =
        authorizer::allow([("REMOTE_USER", "alice"), ("GROUP", "a"), ("GROUP", "b")]).unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["variable-remote_user"], "alice");
    let groups: Vec<_> = r.headers().get_all("variable-group").iter().collect();
    assert_eq!(groups, ["a", "b"]);
    assert_eq!(r.headers().len(), 3);
    let mut out = BytesMut::new();
    encode_head(r.status(), r.headers(), &mut out);
    assert_eq!(
        &out[..],
        b"Status: 200 OK\r\nVariable-REMOTE_USER: alice\r\nVariable-GROUP: a\r\nVariable-GROUP: b\r\n\r\n"
    );
    // No variables at all is a plain grant.
    let r: http::Response<Empty<Bytes>> =
        authorizer::allow(std::iter::empty::<(&str, &str)>()).unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().is_empty());
}

#[test]
fn allow_refuses_what_cannot_be_a_header() {
    for (name, value) in [("", "v"), ("A B", "v"), ("A:B", "v"), ("OK", "x\r\nY: z")] {
        let e = authorizer::allow::<Empty<Bytes>, _, _, _>([(name, value)]).unwrap_err();
        assert_eq!(e.name, name);
    }
}

#[tokio::test]
async fn request_body_from_bytes_and_empty() {
    let body = RequestBody::from_bytes("hello");
    assert!(!body.is_end_stream());
    assert_eq!(body.size_hint().exact(), Some(5));
    assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");

    let body = RequestBody::empty();
    assert!(body.is_end_stream());
    assert_eq!(body.size_hint().exact(), Some(0));
    assert!(body.collect().await.unwrap().to_bytes().is_empty());

    let mut body = RequestBody::from_bytes("x");
    let frame = body.frame().await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "x");
    assert!(body.is_end_stream());
    assert!(body.frame().await.is_none());
}
