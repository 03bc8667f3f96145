//! Tests of the CGI response head parser (`fcgi_http::response`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use bytes::Bytes;
use fcgi_http::response::{
    CgiResponseError, CgiResponseParser, Head, LocalRedirect, ParsedHead, ParserConfig,
};
use http::{HeaderValue, StatusCode, response::Parts};

fn parse_with(config: ParserConfig, input: &[u8]) -> Result<ParsedHead, CgiResponseError> {
    let mut p = CgiResponseParser::new(config);
    match p.feed(Bytes::copy_from_slice(input))? {
        Some(head) => Ok(head),
        None => Err(p.finish().unwrap_err()),
    }
}

fn parse(input: &[u8]) -> Result<ParsedHead, CgiResponseError> {
    parse_with(ParserConfig::default(), input)
}

fn response(input: &[u8]) -> (Parts, Bytes) {
    match parse(input).unwrap() {
        ParsedHead {
            head: Head::Response(parts),
            body,
        } => (parts, body),
        other => panic!("expected a response, got {other:?}"),
    }
}

/// A comparable rendering of an outcome.
fn render(r: &Result<ParsedHead, CgiResponseError>) -> String {
    match r {
        Ok(ParsedHead { head, body }) => {
            let head = match head {
                Head::Response(p) => format!("{} {:?}", p.status, p.headers),
                Head::InternalRedirect { path } => format!("internal {path}"),
            };
            format!("{head} body={body:?}")
        }
        Err(e) => format!("error {e:?}"),
    }
}

/// Feeds `input` split at `at`, concatenating the body of the completing piece with later
/// pieces as the caller would.
fn parse_split(
    config: ParserConfig,
    input: &[u8],
    at: usize,
) -> Result<ParsedHead, CgiResponseError> {
    let mut p = CgiResponseParser::new(config);
    let (a, b) = input.split_at(at);
    match p.feed(Bytes::copy_from_slice(a))? {
        Some(mut head) => {
            let mut body = head.body.to_vec();
            body.extend_from_slice(b);
            head.body = Bytes::from(body);
            Ok(head)
        }
        None => match p.feed(Bytes::copy_from_slice(b))? {
            Some(head) => Ok(head),
            None => Err(p.finish().unwrap_err()),
        },
    }
}

const PHP_404: &[u8] =
    b"Status: 404 Not Found\r\nContent-type: text/html; charset=UTF-8\r\n\r\nFile not found.\n";
const PHP_200: &[u8] =
    b"X-Powered-By: PHP/8.3.0\r\nContent-type: text/plain;charset=UTF-8\r\n\r\nhello\r\n\r\nworld";

#[test]
fn php_fpm_not_found() {
    let (parts, body) = response(PHP_404);
    assert_eq!(parts.status, StatusCode::NOT_FOUND);
    assert_eq!(parts.headers["content-type"], "text/html; charset=UTF-8");
    assert!(parts.headers.get("status").is_none());
    assert_eq!(parts.headers.len(), 1);
    assert_eq!(&body[..], b"File not found.\n");
}

#[test]
fn php_fpm_plain_text_defaults_to_200_and_keeps_body_blank_lines() {
    let (parts, body) = response(PHP_200);
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(parts.headers["Content-Type"], "text/plain;charset=UTF-8");
    assert_eq!(parts.headers["x-powered-by"], "PHP/8.3.0");
    assert_eq!(&body[..], b"hello\r\n\r\nworld");
}

#[test]
fn status_without_reason() {
    let (parts, _) = response(b"Status: 404\r\n\r\n");
    assert_eq!(parts.status, StatusCode::NOT_FOUND);
    let (parts, _) = response(b"status:503 Busy\r\n\r\n");
    assert_eq!(parts.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[test]
fn bad_status_values_are_errors() {
    for bad in [
        &b"Status: 4044\r\n\r\n"[..],
        b"Status: 40\r\n\r\n",
        b"Status: abc\r\n\r\n",
        b"Status: 404x Not Found\r\n\r\n",
        b"Status:\r\n\r\n",
        b"Status: 100 Continue\r\n\r\n",
        b"Status: 199\r\n\r\n",
        b"Status: 600\r\n\r\n",
        b"Status: -20\r\n\r\n",
        b"Status: 200\r\nStatus: 404\r\n\r\n",
    ] {
        let r = parse(bad);
        assert!(
            matches!(r, Err(CgiResponseError::BadStatus)),
            "{:?}: {}",
            String::from_utf8_lossy(bad),
            render(&r)
        );
    }
}

#[test]
fn absolute_location_without_status_is_302() {
    let (parts, _) = response(b"Location: https://example.com/x?y=1\r\n\r\n");
    assert_eq!(parts.status, StatusCode::FOUND);
    assert_eq!(parts.headers["location"], "https://example.com/x?y=1");
}

#[test]
fn relative_non_local_location_is_client_redirect() {
    let (parts, _) = response(b"Location: other/page\r\n\r\n");
    assert_eq!(parts.status, StatusCode::FOUND);
    assert_eq!(parts.headers["location"], "other/page");
}

#[test]
fn location_with_status_keeps_status() {
    let (parts, _) = response(b"Status: 301 Moved\r\nLocation: https://e.org/\r\n\r\n");
    assert_eq!(parts.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(parts.headers["location"], "https://e.org/");
    // A local path with a Status is not re-dispatched.
    let (parts, _) = response(b"Status: 303\r\nLocation: /next\r\n\r\n");
    assert_eq!(parts.status, StatusCode::SEE_OTHER);
    assert_eq!(parts.headers["location"], "/next");
}

#[test]
fn local_location_is_internal_redirect_by_default() {
    let r = parse(b"Location: /index.php?a=b\r\nX-Ignored: 1\r\n\r\nbody").unwrap();
    match r.head {
        Head::InternalRedirect { path } => {
            assert_eq!(path.path(), "/index.php");
            assert_eq!(path.query(), Some("a=b"));
        }
        Head::Response(p) => panic!("expected internal redirect, got {p:?}"),
    }
    assert_eq!(&r.body[..], b"body");
}

#[test]
fn local_location_as_302_when_configured() {
    let config = ParserConfig::default().local_redirect(LocalRedirect::Found302);
    match parse_with(config, b"Location: /login\r\n\r\n")
        .unwrap()
        .head
    {
        Head::Response(p) => {
            assert_eq!(p.status, StatusCode::FOUND);
            assert_eq!(p.headers["location"], "/login");
        }
        Head::InternalRedirect { .. } => panic!("expected 302"),
    }
}

#[test]
fn local_location_that_is_not_a_path_is_invalid() {
    let r = parse(b"Location: /a b\r\n\r\n");
    assert!(
        matches!(r, Err(CgiResponseError::InvalidHeader { .. })),
        "{}",
        render(&r)
    );
}

#[test]
fn repeated_location_is_invalid() {
    let r = parse(b"Location: /a\r\nLocation: /b\r\n\r\n");
    assert!(
        matches!(r, Err(CgiResponseError::InvalidHeader { .. })),
        "{}",
        render(&r)
    );
}

#[test]
fn no_content_type_added_by_default() {
    let (parts, _) = response(b"X-A: 1\r\n\r\n");
    assert!(parts.headers.get("content-type").is_none());
}

#[test]
fn default_content_type_is_added_only_when_missing() {
    let config = || {
        ParserConfig::default().default_content_type(Some(HeaderValue::from_static("text/html")))
    };
    let get = |input: &[u8]| match parse_with(config(), input).unwrap().head {
        Head::Response(p) => p,
        Head::InternalRedirect { .. } => panic!("unexpected redirect"),
    };
    assert_eq!(get(b"X-A: 1\r\n\r\n").headers["content-type"], "text/html");
    assert_eq!(
        get(b"Content-Type: image/png\r\n\r\n").headers["content-type"],
        "image/png"
    );
    assert!(
        get(b"Status: 204\r\n\r\n")
            .headers
            .get("content-type")
            .is_none()
    );
    assert!(
        get(b"Status: 304\r\n\r\n")
            .headers
            .get("content-type")
            .is_none()
    );
}

#[test]
fn hop_by_hop_and_framing_headers_are_dropped() {
    let (parts, _) = response(
        b"Connection: close\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\nTE: trailers\r\n\
          Trailer: X-T\r\nUpgrade: h2c\r\nProxy-Connection: keep-alive\r\nX-Kept: yes\r\n\r\n",
    );
    assert_eq!(parts.headers.len(), 1, "{:?}", parts.headers);
    assert_eq!(parts.headers["x-kept"], "yes");
}

#[test]
fn content_length_kept_only_when_numeric_and_consistent() {
    let (p, _) = response(b"Content-Length: 12\r\n\r\n");
    assert_eq!(p.headers["content-length"], "12");
    let (p, _) = response(b"Content-Length: 12\r\nContent-Length: 12\r\n\r\n");
    assert_eq!(p.headers.get_all("content-length").iter().count(), 1);
    for bad in [
        &b"Content-Length: 12x\r\n\r\n"[..],
        b"Content-Length: -1\r\n\r\n",
        b"Content-Length: +1\r\n\r\n",
        b"Content-Length:\r\n\r\n",
        b"Content-Length: 1, 1\r\n\r\n",
        b"Content-Length: 12\r\nContent-Length: 13\r\n\r\n",
        b"Content-Length: 99999999999999999999\r\n\r\n",
    ] {
        let (p, _) = response(bad);
        assert!(
            p.headers.get("content-length").is_none(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn repeated_fields_are_all_kept_in_order() {
    let (p, _) = response(b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n");
    let v: Vec<_> = p.headers.get_all("set-cookie").iter().collect();
    assert_eq!(v, ["a=1", "b=2"]);
}

#[test]
fn bare_lf_line_endings_are_accepted() {
    let (p, body) = response(b"Status: 201\nContent-Type: text/plain\n\nok\n");
    assert_eq!(p.status, StatusCode::CREATED);
    assert_eq!(p.headers["content-type"], "text/plain");
    assert_eq!(&body[..], b"ok\n");
    // Mixed endings too.
    let (p, body) = response(b"X-A: 1\nX-B: 2\r\n\nrest");
    assert_eq!(p.headers["x-b"], "2");
    assert_eq!(&body[..], b"rest");
}

#[test]
fn empty_head_is_200_with_body() {
    let (p, body) = response(b"\r\nbody");
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.headers.is_empty());
    assert_eq!(&body[..], b"body");
}

#[test]
fn header_injection_attempts_are_rejected() {
    for bad in [
        &b"X-A: a\rInjected: 1\r\n\r\n"[..],
        b"X-A: a\0b\r\n\r\n",
        b"X-A\0: b\r\n\r\n",
        b"X A: b\r\n\r\n",
        b"X-A\r: b\r\n\r\n",
        b"X-A: a\r\n continued\r\n\r\n",
        b"X-A: a\r\n\tcontinued\r\n\r\n",
        b": novalue\r\n\r\n",
        b"NoColon\r\n\r\n",
        b"X-A: a\x7fb\r\n\r\n",
    ] {
        let r = parse(bad);
        assert!(
            matches!(
                r,
                Err(CgiResponseError::Malformed(_) | CgiResponseError::InvalidHeader { .. })
            ),
            "{:?}: {}",
            String::from_utf8_lossy(bad),
            render(&r)
        );
    }
}

#[test]
fn value_whitespace_is_trimmed() {
    let (p, _) = response(b"X-A:   spaced  \t\r\n\r\n");
    assert_eq!(p.headers["x-a"], "spaced");
}

#[test]
fn every_split_point_gives_the_same_result() {
    let inputs: [&[u8]; 7] = [
        PHP_404,
        PHP_200,
        b"Location: /index.php\r\n\r\nx",
        b"Status: 201\nX-A: 1\n\nbody",
        b"\r\n\r\n",
        b"Status: 99\r\n\r\n",
        b"X-A: 1\r\nX-B: 2\r\n",
    ];
    for input in inputs {
        let whole = render(&parse(input));
        for at in 0..=input.len() {
            let split = render(&parse_split(ParserConfig::default(), input, at));
            assert_eq!(
                split,
                whole,
                "input {:?} split at {at}",
                String::from_utf8_lossy(input)
            );
        }
    }
}

#[test]
fn byte_at_a_time_feeding_completes_on_the_last_head_byte() {
    let mut p = CgiResponseParser::default();
    let head_len = PHP_404.len() - b"File not found.\n".len();
    for (i, b) in PHP_404.iter().enumerate() {
        let r = p.feed_slice(std::slice::from_ref(b)).unwrap();
        if i + 1 == head_len {
            let r = r.expect("head completes here");
            assert!(matches!(r.head, Head::Response(ref p) if p.status == StatusCode::NOT_FOUND));
            assert!(r.body.is_empty());
            break;
        }
        assert!(r.is_none(), "completed early at {i}");
    }
    assert!(p.is_finished());
    assert!(p.finish().is_ok());
}

#[test]
fn head_over_the_limit_is_an_error() {
    let mut head = Vec::new();
    while head.len() <= 64 * 1024 {
        head.extend_from_slice(
            b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
        );
    }
    head.extend_from_slice(b"\r\n");
    let r = parse(&head);
    assert!(
        matches!(r, Err(CgiResponseError::HeadTooLarge { max: 65536 })),
        "{}",
        render(&r)
    );

    // Same in small pieces: the error comes once the limit is reached, without the end.
    let mut p = CgiResponseParser::default();
    let mut err = None;
    for chunk in head.chunks(1000) {
        match p.feed_slice(chunk) {
            Ok(None) => {}
            Ok(Some(_)) => panic!("head should be too large"),
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    assert!(matches!(err, Some(CgiResponseError::HeadTooLarge { .. })));
    assert!(matches!(
        p.feed_slice(b"\r\n"),
        Err(CgiResponseError::Finished)
    ));
}

#[test]
fn head_exactly_at_the_limit_is_accepted() {
    let head = b"X-A: 1\r\n\r\nbody";
    let config = |max| ParserConfig::default().max_head_len(max);
    assert!(parse_with(config(10), head).is_ok());
    for at in 0..=head.len() {
        assert!(parse_split(config(10), head, at).is_ok(), "split at {at}");
        let r = parse_split(config(9), head, at);
        assert!(
            matches!(r, Err(CgiResponseError::HeadTooLarge { max: 9 })),
            "split at {at}"
        );
    }
}

#[test]
fn body_is_a_slice_of_the_input_not_a_copy() {
    let piece = Bytes::from(PHP_404.to_vec());
    let body_at = PHP_404.len() - b"File not found.\n".len();
    let mut p = CgiResponseParser::default();
    let r = p.feed(piece.clone()).unwrap().unwrap();
    assert_eq!(r.body.as_ptr(), piece[body_at..].as_ptr());
    assert_eq!(&r.body[..], b"File not found.\n");

    // Also when the head spans pieces: the body still points into the completing piece.
    let mut p = CgiResponseParser::default();
    assert!(
        p.feed(Bytes::from_static(b"Status: 404\r\n"))
            .unwrap()
            .is_none()
    );
    let second = Bytes::from(b"\r\nbody bytes".to_vec());
    let r = p.feed(second.clone()).unwrap().unwrap();
    assert_eq!(r.body.as_ptr(), second[2..].as_ptr());
    assert_eq!(&r.body[..], b"body bytes");
}

#[test]
fn stream_ending_before_the_head_is_an_error() {
    let mut p = CgiResponseParser::default();
    assert!(p.feed_slice(b"Status: 500\r\n").unwrap().is_none());
    assert!(matches!(
        p.finish(),
        Err(CgiResponseError::EndedBeforeHead { buffered: 13 })
    ));
    let mut p = CgiResponseParser::default();
    assert!(matches!(
        p.finish(),
        Err(CgiResponseError::EndedBeforeHead { buffered: 0 })
    ));
}

#[test]
fn empty_pieces_are_ignored() {
    let mut p = CgiResponseParser::default();
    assert!(p.feed(Bytes::new()).unwrap().is_none());
    assert!(p.feed_slice(b"X: 1\r\n").unwrap().is_none());
    assert!(p.feed_slice(b"").unwrap().is_none());
    assert!(p.feed_slice(b"\r\n").unwrap().is_some());
}

#[test]
fn feeding_after_the_head_is_an_error() {
    let mut p = CgiResponseParser::default();
    assert!(p.feed_slice(b"\r\n").unwrap().is_some());
    assert!(matches!(
        p.feed_slice(b"more"),
        Err(CgiResponseError::Finished)
    ));
}

#[test]
fn many_fields_are_not_limited_by_a_fixed_table() {
    let mut head = Vec::new();
    for i in 0..500 {
        head.extend_from_slice(format!("X-F{i}: {i}\r\n").as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    let (p, _) = response(&head);
    assert_eq!(p.headers.len(), 500);
    assert_eq!(p.headers["x-f499"], "499");
}

#[test]
fn obs_text_in_values_passes_through_unchanged() {
    let (p, _) = response(b"X-Latin1: caf\xe9\r\n\r\n");
    assert_eq!(p.headers["x-latin1"].as_bytes(), b"caf\xe9");
}

/// A field the application's own `Connection` names is hop-by-hop (RFC 9110 §7.6.1): it
/// is dropped with `Connection` itself, whatever its case; other fields pass.
#[test]
fn fields_named_in_the_applications_connection_are_dropped() {
    let raw = b"Status: 200 OK\r\nConnection: close, X-Secret\r\nconnection: x-other\r\n\
                X-Secret: hunter2\r\nX-OTHER: 1\r\nX-Public: yes\r\n\r\nbody";
    let (parts, body) = response(raw);
    assert_eq!(&body[..], b"body");
    assert!(parts.headers.get("x-secret").is_none());
    assert!(parts.headers.get("x-other").is_none());
    assert!(parts.headers.get("connection").is_none());
    assert_eq!(parts.headers["x-public"], "yes");
}
