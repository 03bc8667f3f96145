//! Real nginx ↔ php-fpm wire transcripts (see `tests/fixtures/README.md`).
//!
//! Each `*.request.bin` (what nginx sent) is fed to our `ServerConnection`, configured like
//! php-fpm (no multiplexing, Responder only), both whole and one byte at a time; each
//! `*.response.bin` (what php-fpm sent) is fed to our `ClientConnection` after it began the
//! same request. Our client must also re-encode nginx's requests byte for byte, and both
//! sides must interoperate with php-fpm's `GET_VALUES` exchange.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use fcgi_core::client::{self, ClientConfig, ClientConnection};
use fcgi_core::record::Role;
use fcgi_core::server::{Event, RoleSet, ServerConfig, ServerConnection};
use fcgi_core::{Params, ProtocolStatus};

const GET_QUERY_REQ: &[u8] = include_bytes!("fixtures/get_query.request.bin");
const GET_QUERY_RESP: &[u8] = include_bytes!("fixtures/get_query.response.bin");
const POST_BODY_REQ: &[u8] = include_bytes!("fixtures/post_body.request.bin");
const POST_BODY_RESP: &[u8] = include_bytes!("fixtures/post_body.response.bin");
const MISSING_SCRIPT_REQ: &[u8] = include_bytes!("fixtures/missing_script.request.bin");
const MISSING_SCRIPT_RESP: &[u8] = include_bytes!("fixtures/missing_script.response.bin");
const KEEPALIVE_REQ: &[u8] = include_bytes!("fixtures/keepalive.request.bin");
const KEEPALIVE_RESP: &[u8] = include_bytes!("fixtures/keepalive.response.bin");
const LARGE_RESPONSE_REQ: &[u8] = include_bytes!("fixtures/large_response.request.bin");
const LARGE_RESPONSE_RESP: &[u8] = include_bytes!("fixtures/large_response.response.bin");
const GET_VALUES_REQ: &[u8] = include_bytes!("fixtures/get_values.request.bin");
const GET_VALUES_RESP: &[u8] = include_bytes!("fixtures/get_values.response.bin");

const DOCROOT: &str = "/tmp/fcgi-fixture-recording/www";
const OUR_RESPONSE: &[u8] = b"Content-type: text/plain\r\n\r\nok\n";

/// The three request segments of `keepalive.request.bin`: each starts with a BEGIN_REQUEST.
fn keepalive_requests() -> [&'static [u8]; 3] {
    for at in [0, 640, 1280] {
        assert_eq!(&KEEPALIVE_REQ[at..at + 8], &[1, 1, 0, 1, 0, 8, 0, 0]);
    }
    [
        &KEEPALIVE_REQ[..640],
        &KEEPALIVE_REQ[640..1280],
        &KEEPALIVE_REQ[1280..],
    ]
}

/// The three response segments of `keepalive.response.bin`: each ends with END_REQUEST.
fn keepalive_responses() -> [&'static [u8]; 3] {
    for at in [408, 832, 1256] {
        assert_eq!(&KEEPALIVE_RESP[at..at + 8], &[1, 3, 0, 1, 0, 8, 0, 0]);
    }
    [
        &KEEPALIVE_RESP[..424],
        &KEEPALIVE_RESP[424..848],
        &KEEPALIVE_RESP[848..],
    ]
}

// ---------------------------------------------------------------------------------------
// Requests into our server
// ---------------------------------------------------------------------------------------

fn php_like_config() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.multiplex = false;
    config.roles = RoleSet::RESPONDER;
    config
}

struct ServerRun {
    events: Vec<Event>,
    output: Vec<u8>,
    conn: ServerConnection,
}

/// Feeds `segments` (each split into pieces of `piece` bytes) to a php-like server whose
/// application answers every request as soon as its STDIN ends, the way php-fpm does.
fn run_server(segments: &[&[u8]], piece: usize) -> ServerRun {
    let mut conn = ServerConnection::new(php_like_config());
    let mut events = Vec::new();
    let mut output = Vec::new();
    for segment in segments {
        for chunk in segment.chunks(piece) {
            let mut input = BytesMut::from(chunk);
            while !input.is_empty() {
                let before = input.len();
                conn.handle_input(&mut input).unwrap();
                let mut progressed = input.len() < before;
                while let Some(e) = conn.poll_event() {
                    progressed = true;
                    if let Event::StdinEnd { id } = e {
                        conn.send_stdout(id, Bytes::from_static(OUR_RESPONSE))
                            .unwrap();
                        conn.end_request(id, 0, ProtocolStatus::RequestComplete)
                            .unwrap();
                    }
                    events.push(e);
                }
                output.extend(server_output(&mut conn));
                assert!(progressed, "server stalled");
            }
        }
    }
    ServerRun {
        events: merge_server_events(events),
        output,
        conn,
    }
}

/// Runs whole and byte by byte, checks both agree, and returns the whole run.
fn run_server_both_ways(segments: &[&[u8]]) -> ServerRun {
    let whole = run_server(segments, usize::MAX);
    let bytewise = run_server(segments, 1);
    assert_eq!(bytewise.events, whole.events);
    assert_eq!(bytewise.output, whole.output);
    assert_eq!(bytewise.conn.should_close(), whole.conn.should_close());
    whole
}

/// Per request: (keep_conn, params, stdin), checking the event sequence on the way.
fn requests_of(events: &[Event]) -> Vec<(bool, Params, Vec<u8>)> {
    let mut out = Vec::new();
    let mut it = events.iter();
    while let Some(e) = it.next() {
        let Event::BeginRequest {
            id: 1,
            role: Role::Responder,
            keep_conn,
        } = e
        else {
            panic!("expected BeginRequest, got {e:?}")
        };
        let Some(Event::Params { id: 1, params }) = it.next() else {
            panic!("expected Params")
        };
        let mut stdin = Vec::new();
        match it.next() {
            Some(Event::Stdin { id: 1, data }) => {
                stdin.extend_from_slice(data);
                assert_eq!(it.next(), Some(&Event::StdinEnd { id: 1 }));
            }
            Some(Event::StdinEnd { id: 1 }) => {}
            other => panic!("expected Stdin/StdinEnd, got {other:?}"),
        }
        out.push((*keep_conn, params.clone(), stdin));
    }
    out
}

/// What our server answers to one request, given our padding policy.
fn our_answer() -> Vec<u8> {
    [
        record(STDOUT, 1, OUR_RESPONSE),
        record(STDOUT, 1, &[]),
        end_request_record(1, 0, 0),
    ]
    .concat()
}

fn post_body() -> Vec<u8> {
    (0..400).flat_map(|_| 0..=255u8).collect()
}

#[test]
fn get_query_request_into_our_server() {
    let mut run = run_server_both_ways(&[GET_QUERY_REQ]);
    let requests = requests_of(&run.events);
    assert_eq!(requests.len(), 1);
    let (keep_conn, params, stdin) = &requests[0];
    assert!(!keep_conn);
    assert!(stdin.is_empty());
    let script = format!("{DOCROOT}/echo.php");
    let expected: Vec<(&[u8], &[u8])> = vec![
        (b"QUERY_STRING", b"a=1&b=two"),
        (b"REQUEST_METHOD", b"GET"),
        (b"CONTENT_TYPE", b""),
        (b"CONTENT_LENGTH", b""),
        (b"SCRIPT_NAME", b"/echo.php"),
        (b"REQUEST_URI", b"/echo.php?a=1&b=two"),
        (b"DOCUMENT_URI", b"/echo.php"),
        (b"DOCUMENT_ROOT", DOCROOT.as_bytes()),
        (b"SERVER_PROTOCOL", b"HTTP/1.1"),
        (b"REQUEST_SCHEME", b"http"),
        (b"GATEWAY_INTERFACE", b"CGI/1.1"),
        (b"SERVER_SOFTWARE", b"nginx/1.22.1"),
        (b"REMOTE_ADDR", b"127.0.0.1"),
        (b"REMOTE_PORT", b"47101"),
        (b"REMOTE_USER", b""),
        (b"SERVER_ADDR", b"127.0.0.1"),
        (b"SERVER_PORT", b"18080"),
        (b"SERVER_NAME", b"localhost"),
        (b"REDIRECT_STATUS", b"200"),
        (b"HTTP_HOST", b"localhost"),
        (b"SCRIPT_FILENAME", script.as_bytes()),
        (b"HTTP_USER_AGENT", b"fcgi-fixture-recorder/1"),
        (b"HTTP_ACCEPT", b"*/*"),
        (b"HTTP_ACCEPT_ENCODING", b"identity"),
        (b"HTTP_X_TEST", b"hello"),
        (b"HTTP_CONNECTION", b"close"),
    ];
    assert_eq!(params.iter().collect::<Vec<_>>(), expected);
    assert_eq!(params.wire_bytes().len(), 633);
    assert_eq!(params.get_all(b"HTTP_HOST").count(), 1);
    assert_eq!(params.get(b"HTTPS"), None);
    assert_eq!(run.output, our_answer());
    assert!(
        run.conn.should_close(),
        "no keep_conn: we close after the response"
    );
    assert_eq!(run.conn.handle_eof(), Ok(()));
    assert_eq!(run.conn.poll_event(), None);
}

#[test]
fn post_body_request_into_our_server() {
    let run = run_server_both_ways(&[POST_BODY_REQ]);
    let requests = requests_of(&run.events);
    assert_eq!(requests.len(), 1);
    let (keep_conn, params, stdin) = &requests[0];
    assert!(!keep_conn);
    assert_eq!(params.len(), 28);
    assert_eq!(params.wire_bytes().len(), 715);
    assert_eq!(params.get_str("REQUEST_METHOD"), Some("POST"));
    assert_eq!(params.get_str("QUERY_STRING"), Some(""));
    assert_eq!(params.get_str("CONTENT_LENGTH"), Some("102400"));
    assert_eq!(params.get_str("HTTP_CONTENT_LENGTH"), Some("102400"));
    assert_eq!(
        params.get_str("CONTENT_TYPE"),
        Some("application/octet-stream")
    );
    assert_eq!(
        params.get_str("SCRIPT_FILENAME"),
        Some(format!("{DOCROOT}/echo.php").as_str())
    );
    assert_eq!(stdin.len(), 102_400);
    assert_eq!(*stdin, post_body());
    assert_eq!(run.output, our_answer());
    assert!(run.conn.should_close());
}

#[test]
fn post_body_stdin_arrives_in_nginx_record_sized_pieces_without_copying() {
    let mut conn = ServerConnection::new(php_like_config());
    let mut input = BytesMut::from(POST_BODY_REQ);
    let (base, len) = (input.as_ptr() as usize, input.len());
    conn.handle_input(&mut input).unwrap();
    assert!(input.is_empty());
    let pieces: Vec<Bytes> = drain_server_events(&mut conn)
        .into_iter()
        .filter_map(|e| match e {
            Event::Stdin { data, .. } => Some(data),
            _ => None,
        })
        .collect();
    let lens: Vec<usize> = pieces.iter().map(Bytes::len).collect();
    assert_eq!(lens, vec![32768, 32768, 32768, 4096]);
    for p in &pieces {
        let at = p.as_ptr() as usize;
        assert!(at >= base && at + p.len() <= base + len, "STDIN was copied");
    }
}

#[test]
fn missing_script_request_into_our_server() {
    let run = run_server_both_ways(&[MISSING_SCRIPT_REQ]);
    let requests = requests_of(&run.events);
    assert_eq!(requests.len(), 1);
    let (keep_conn, params, stdin) = &requests[0];
    assert!(!keep_conn);
    assert!(stdin.is_empty());
    assert_eq!(params.len(), 26);
    assert_eq!(params.get_str("REQUEST_METHOD"), Some("GET"));
    assert_eq!(params.get_str("QUERY_STRING"), Some(""));
    assert_eq!(params.get_str("CONTENT_LENGTH"), Some(""));
    assert_eq!(params.get_str("REQUEST_URI"), Some("/nope.php"));
    assert_eq!(
        params.get_str("SCRIPT_FILENAME"),
        Some(format!("{DOCROOT}/nope.php").as_str())
    );
    assert_eq!(run.output, our_answer());
}

#[test]
fn large_response_request_into_our_server() {
    let run = run_server_both_ways(&[LARGE_RESPONSE_REQ]);
    let requests = requests_of(&run.events);
    assert_eq!(requests.len(), 1);
    let (keep_conn, params, stdin) = &requests[0];
    assert!(!keep_conn);
    assert!(stdin.is_empty());
    assert_eq!(params.len(), 26);
    assert_eq!(params.wire_bytes().len(), 610);
    assert_eq!(params.get_str("REQUEST_METHOD"), Some("GET"));
    assert_eq!(params.get_str("QUERY_STRING"), Some(""));
    assert_eq!(params.get_str("CONTENT_LENGTH"), Some(""));
    assert_eq!(
        params.get_str("SCRIPT_FILENAME"),
        Some(format!("{DOCROOT}/big.php").as_str())
    );
}

#[test]
fn keepalive_requests_into_our_server() {
    let run = run_server_both_ways(&keepalive_requests());
    let requests = requests_of(&run.events);
    assert_eq!(requests.len(), 3);
    for (i, (keep_conn, params, stdin)) in requests.iter().enumerate() {
        let n = i + 1;
        assert!(keep_conn);
        assert!(stdin.is_empty());
        assert_eq!(params.len(), if n == 3 { 26 } else { 25 });
        assert_eq!(params.wire_bytes().len(), if n == 3 { 621 } else { 599 });
        assert_eq!(
            params.get_str("QUERY_STRING"),
            Some(format!("n={n}").as_str())
        );
        assert_eq!(
            params.get_str("REQUEST_URI"),
            Some(format!("/echo.php?n={n}").as_str())
        );
        assert_eq!(params.get_str("REQUEST_METHOD"), Some("GET"));
        assert_eq!(params.get_str("CONTENT_LENGTH"), Some(""));
        assert_eq!(
            params.get_str("HTTP_CONNECTION"),
            (n == 3).then_some("close")
        );
    }
    assert_eq!(run.output, our_answer().repeat(3));
    assert!(!run.conn.should_close(), "keep_conn: the web server closes");
}

#[test]
fn keepalive_requests_fed_before_the_first_is_answered_are_duplicate_begins() {
    // nginx waits for END_REQUEST before reusing id 1. Given all three requests at once,
    // before the application ended request 1, the second BEGIN is for an active id.
    let mut conn = ServerConnection::new(php_like_config());
    let mut input = BytesMut::from(KEEPALIVE_REQ);
    assert_eq!(
        conn.handle_input(&mut input),
        Err(fcgi_core::Error::Violation(
            fcgi_core::Violation::DuplicateBegin(1)
        ))
    );
    assert_eq!(input.len(), KEEPALIVE_REQ.len() - 656);
    assert_eq!(drain_server_events(&mut conn).len(), 3);
}

// ---------------------------------------------------------------------------------------
// Responses into our client
// ---------------------------------------------------------------------------------------

/// Begins one Responder request per segment (id 1 each time), feeds that segment in pieces
/// of `piece` bytes, and returns the events of each.
fn run_client(
    keep_conn: bool,
    segments: &[&[u8]],
    piece: usize,
) -> (Vec<Vec<client::Event>>, ClientConnection) {
    let mut c = ClientConnection::new(ClientConfig::default());
    let mut all = Vec::new();
    for segment in segments {
        assert_eq!(c.begin_request(Role::Responder, keep_conn), Ok(1));
        let mut events = Vec::new();
        for chunk in segment.chunks(piece) {
            events.extend(feed_client(&mut c, chunk));
        }
        assert!(!c.is_in_flight(1));
        all.push(merge_client_events(events));
    }
    (all, c)
}

fn run_client_both_ways(
    keep_conn: bool,
    segments: &[&[u8]],
) -> (Vec<Vec<client::Event>>, ClientConnection) {
    let whole = run_client(keep_conn, segments, usize::MAX);
    let bytewise = run_client(keep_conn, segments, 1);
    assert_eq!(bytewise.0, whole.0);
    whole
}

/// (stderr, stdout) of one response whose events are STDERR*, STDOUT*, END_REQUEST(0, 0).
fn response_of(events: &[client::Event]) -> (Vec<u8>, Vec<u8>) {
    let mut stderr = Vec::new();
    let mut stdout = Vec::new();
    let (last, rest) = events.split_last().unwrap();
    assert_eq!(
        *last,
        client::Event::EndRequest {
            id: 1,
            app_status: 0,
            protocol_status: ProtocolStatus::RequestComplete
        }
    );
    for e in rest {
        match e {
            client::Event::Stderr { id: 1, data } => {
                assert!(stdout.is_empty(), "php-fpm sent STDERR first");
                stderr.extend_from_slice(data);
            }
            client::Event::Stdout { id: 1, data } => stdout.extend_from_slice(data),
            other => panic!("unexpected {other:?}"),
        }
    }
    (stderr, stdout)
}

const PHP_HEADERS: &[u8] = b"Content-type: text/plain;charset=UTF-8\r\n\r\n";

#[test]
fn get_query_response_into_our_client() {
    let (responses, c) = run_client_both_ways(false, &[GET_QUERY_RESP]);
    let (stderr, stdout) = response_of(&responses[0]);
    assert_eq!(stderr, b"PHP message: echo.php: GET /echo.php?a=1&b=two");
    assert_eq!(stdout.len(), 374);
    assert!(stdout.starts_with(PHP_HEADERS));
    assert!(
        stdout[PHP_HEADERS.len()..]
            .starts_with(b"REQUEST_METHOD=GET\nREQUEST_URI=/echo.php?a=1&b=two\n")
    );
    assert!(stdout.ends_with(b"GET[a]=1\nGET[b]=two\n"));
    assert!(c.should_close(), "no keep_conn: we close after END_REQUEST");
}

#[test]
fn post_body_response_into_our_client() {
    let (responses, c) = run_client_both_ways(false, &[POST_BODY_RESP]);
    let (stderr, stdout) = response_of(&responses[0]);
    assert_eq!(stderr, b"PHP message: echo.php: POST /echo.php");
    assert_eq!(stdout.len(), 433);
    let body = &stdout[PHP_HEADERS.len()..];
    assert!(
        body.starts_with(b"body_len=102400\nbody_sha1=8b77024839e8dbd39af4052466122d9ec5d90aac\n")
    );
    assert!(c.should_close());
}

#[test]
fn missing_script_response_into_our_client() {
    // php-fpm left stale bytes in END_REQUEST's reserved field.
    assert_eq!(&MISSING_SCRIPT_RESP[128 + 8 + 5..], b"o.p");
    let (responses, _) = run_client_both_ways(false, &[MISSING_SCRIPT_RESP]);
    let (stderr, stdout) = response_of(&responses[0]);
    assert_eq!(stderr, b"Primary script unknown");
    assert_eq!(
        stdout,
        &b"Status: 404 Not Found\r\nContent-type: text/html; charset=UTF-8\r\n\r\nFile not found.\n"[..]
    );
    assert_eq!(stdout.len(), 81);
}

fn big_php_body() -> Vec<u8> {
    let mut body = Vec::with_capacity(204_800);
    for i in 0..3200u32 {
        body.extend_from_slice(format!("line {i:05} ").as_bytes());
        body.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, 52));
        body.push(b'\n');
    }
    body
}

#[test]
fn large_response_into_our_client() {
    assert_eq!(&LARGE_RESPONSE_RESP[205_056 + 8 + 5..], b"eee");
    let (responses, c) = run_client_both_ways(false, &[LARGE_RESPONSE_RESP]);
    let (stderr, stdout) = response_of(&responses[0]);
    assert!(stderr.is_empty());
    assert_eq!(stdout.len(), 42 + 204_800);
    assert_eq!(&stdout[..42], PHP_HEADERS);
    let body = &stdout[42..];
    assert_eq!(body.len(), 204_800);
    assert_eq!(&body[..11], b"line 00000 ");
    assert_eq!(body, &big_php_body()[..]);
    assert!(c.should_close());

    // Fed whole, each of php-fpm's 26 STDOUT records is one event, not copied.
    let mut c = ClientConnection::new(ClientConfig::default());
    c.begin_request(Role::Responder, false).unwrap();
    let mut input = BytesMut::from(LARGE_RESPONSE_RESP);
    let (base, len) = (input.as_ptr() as usize, input.len());
    c.handle_input(&mut input).unwrap();
    let events = drain_client_events(&mut c);
    assert_eq!(events.len(), 27);
    for e in &events[..26] {
        let client::Event::Stdout { data, .. } = e else {
            panic!("{e:?}")
        };
        let at = data.as_ptr() as usize;
        assert!(at >= base && at + data.len() <= base + len);
    }
}

#[test]
fn keepalive_responses_into_our_client() {
    for at in [408, 832, 1256] {
        assert_eq!(&KEEPALIVE_RESP[at + 8 + 5..at + 16], b"[a]");
    }
    let (responses, c) = run_client_both_ways(true, &keepalive_responses());
    assert_eq!(responses.len(), 3);
    for (i, events) in responses.iter().enumerate() {
        let n = i + 1;
        let (stderr, stdout) = response_of(events);
        assert_eq!(
            stderr,
            format!("PHP message: echo.php: GET /echo.php?n={n}").as_bytes()
        );
        assert_eq!(stdout.len(), 351);
        assert!(stdout.starts_with(PHP_HEADERS));
        assert!(stdout.ends_with(format!("GET[n]={n}\n").as_bytes()));
    }
    assert!(!c.should_close(), "keep_conn: the connection stays");
    assert!(c.can_begin());
}

#[test]
fn response_records_after_end_request_are_ignored_by_our_client() {
    // The whole keep-alive response after a single BEGIN: once request 1 ended, the rest is
    // for an id not in flight.
    let mut c = ClientConnection::new(ClientConfig::default());
    c.begin_request(Role::Responder, true).unwrap();
    let events = merge_client_events(feed_client(&mut c, KEEPALIVE_RESP));
    assert_eq!(events.len(), 3, "{events:?}");
    response_of(&events);
}

// ---------------------------------------------------------------------------------------
// GET_VALUES against php-fpm
// ---------------------------------------------------------------------------------------

const VALUE_NAMES: [&[u8]; 3] = [b"FCGI_MAX_CONNS", b"FCGI_MAX_REQS", b"FCGI_MPXS_CONNS"];

#[test]
fn our_client_writes_the_recorded_get_values_query_and_decodes_php_fpms_answer() {
    let mut c = ClientConnection::new(ClientConfig::default());
    c.get_values(&VALUE_NAMES).unwrap();
    assert_eq!(client_output(&mut c), GET_VALUES_REQ);
    let events = feed_client(&mut c, GET_VALUES_RESP);
    let [client::Event::Values(values)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(values.len(), 1, "php-fpm answers FCGI_MPXS_CONNS only");
    assert_eq!(values.get_str("FCGI_MPXS_CONNS"), Some("0"));
    assert_eq!(values.get(b"FCGI_MAX_CONNS"), None);
    assert_eq!(values.get(b"FCGI_MAX_REQS"), None);
    // Byte by byte gives the same.
    let mut c = ClientConnection::new(ClientConfig::default());
    let mut bytewise = Vec::new();
    for b in GET_VALUES_RESP {
        bytewise.extend(feed_client(&mut c, &[*b]));
    }
    assert_eq!(bytewise, events);
}

#[test]
fn our_server_answers_the_recorded_get_values_query_from_its_config() {
    for (multiplex, mpxs) in [(false, b"0"), (true, b"1")] {
        let mut config = php_like_config();
        config.multiplex = multiplex;
        config.max_conns = 50;
        config.max_reqs = 100;
        let mut conn = ServerConnection::new(config);
        assert_eq!(feed_server(&mut conn, GET_VALUES_REQ), vec![]);
        let expected = record(
            GET_VALUES_RESULT,
            0,
            &nv_block(&[
                (b"FCGI_MAX_CONNS", b"50"),
                (b"FCGI_MAX_REQS", b"100"),
                (b"FCGI_MPXS_CONNS", mpxs),
            ]),
        );
        assert_eq!(server_output(&mut conn), expected);
        assert!(
            !conn.should_close(),
            "GET_VALUES does not end the connection"
        );
        // Then a normal request on the same connection, as php-fpm allowed.
        let run_events = feed_server(&mut conn, MISSING_SCRIPT_REQ);
        assert_eq!(requests_of(&run_events).len(), 1);
    }
}

// ---------------------------------------------------------------------------------------
// Our client re-encodes nginx's requests byte for byte
// ---------------------------------------------------------------------------------------

/// Sends `params` and `stdin` (in nginx's STDIN record sizes) as one Responder request.
fn reencode(keep_conn: bool, params: &Params, stdin: &[u8]) -> Vec<u8> {
    let mut c = ClientConnection::new(ClientConfig::default());
    let id = c.begin_request(Role::Responder, keep_conn).unwrap();
    c.send_params(id, params).unwrap();
    c.end_params(id).unwrap();
    for piece in stdin.chunks(32768) {
        c.send_stdin(id, Bytes::copy_from_slice(piece)).unwrap();
    }
    c.end_stdin(id).unwrap();
    client_output(&mut c)
}

#[test]
fn get_query_params_reencode_identically() {
    let run = run_server(&[GET_QUERY_REQ], usize::MAX);
    let (keep_conn, params, stdin) = requests_of(&run.events).remove(0);
    let ours = reencode(keep_conn, &params, &stdin);
    let ours_records = parse_wire(&ours);
    let nginx_records = parse_wire(GET_QUERY_REQ);
    assert_eq!(ours_records[1].rtype, PARAMS);
    assert_eq!(ours_records[1].content, nginx_records[1].content);
    assert_eq!(ours_records[1].content.len(), 633);
    assert_eq!(ours_records[1].padding, vec![0; 7]);
    assert_eq!(ours, GET_QUERY_REQ);
}

#[test]
fn every_nginx_request_reencodes_identically() {
    for (keep_conn, transcript) in [
        (false, POST_BODY_REQ),
        (false, MISSING_SCRIPT_REQ),
        (false, LARGE_RESPONSE_REQ),
    ]
    .into_iter()
    .chain(keepalive_requests().map(|r| (true, r)))
    {
        let run = run_server(&[transcript], usize::MAX);
        let requests = requests_of(&run.events);
        assert_eq!(requests.len(), 1);
        let (k, params, stdin) = &requests[0];
        assert_eq!(*k, keep_conn);
        assert_eq!(reencode(keep_conn, params, stdin), transcript);
    }
}
