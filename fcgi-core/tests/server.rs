//! The application side (`ServerConnection`), rule by rule: multiplexing and its refusals
//! (spec 3.3, 5.1, 5.5), management records (4.1, 4.2), inactive request ids (3.3), aborts
//! (5.4), keep-alive and closing (3.5, 5.1), role rules (6.2 - 6.4), fatal errors, and
//! back-pressure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use fcgi_core::record::Role;
use fcgi_core::server::{Event, Rejection, RoleSet, ServerConfig, ServerConnection};
use fcgi_core::{ApiError, Error, Limits, Malformed, ProtocolStatus, Violation};

fn server_with(f: impl FnOnce(&mut ServerConfig)) -> ServerConnection {
    let mut config = ServerConfig::default();
    f(&mut config);
    ServerConnection::new(config)
}

fn begin_event(id: u16, role: Role, keep_conn: bool) -> Event {
    Event::BeginRequest {
        id,
        role,
        keep_conn,
    }
}

fn rejected(id: u16, reason: Rejection) -> Event {
    Event::Rejected { id, reason }
}

fn stdin_event(id: u16, data: &'static [u8]) -> Event {
    Event::Stdin {
        id,
        data: Bytes::from_static(data),
    }
}

/// BEGIN + one PARAMS pair + PARAMS end: the request may then write (Responder).
fn begun(id: u16, role: u16, keep_conn: bool) -> Vec<u8> {
    [
        begin(id, role, keep_conn),
        record(PARAMS, id, &nv(b"SCRIPT_NAME", b"/x")),
        record(PARAMS, id, &[]),
    ]
    .concat()
}

fn unexpected(record_type: u8, request_id: u16) -> Error {
    Error::Violation(Violation::UnexpectedRecord {
        record_type,
        request_id,
    })
}

fn get_values_query(names: &[&[u8]]) -> Vec<u8> {
    let block: Vec<u8> = names.iter().flat_map(|n| nv(n, b"")).collect();
    record(GET_VALUES, 0, &block)
}

fn get_values_answer(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    record(GET_VALUES_RESULT, 0, &nv_block(pairs))
}

const ALL_NAMES: [&[u8]; 3] = [b"FCGI_MAX_CONNS", b"FCGI_MAX_REQS", b"FCGI_MPXS_CONNS"];

// ---------------------------------------------------------------------------------------
// Multiplexing (spec 3.3, 4.1, 5.5)
// ---------------------------------------------------------------------------------------

#[test]
fn multiplexing_on_accepts_up_to_max_requests_then_overloaded() {
    let mut s = server_with(|c| c.limits.max_concurrent_requests = 3);
    let mut wire = Vec::new();
    for id in [5u16, 1, 3] {
        wire.extend(begin(id, RESPONDER, true));
    }
    // Interleaved streams of the three requests.
    for id in [5u16, 1, 3] {
        wire.extend(record(PARAMS, id, &nv(b"ID", id.to_string().as_bytes())));
    }
    for id in [3u16, 5, 1] {
        wire.extend(record(PARAMS, id, &[]));
    }
    let events = feed_server(&mut s, &wire);
    assert_eq!(events.len(), 6);
    assert_eq!(s.active_requests(), 3);
    for id in [1u16, 3, 5] {
        assert!(s.is_active(id));
        assert!(events.contains(&begin_event(id, Role::Responder, true)));
    }
    assert_eq!(server_output(&mut s), Vec::<u8>::new());

    // A fourth concurrent request is refused with OVERLOADED; the others are untouched.
    let events = feed_server(&mut s, &begin(2, RESPONDER, true));
    assert_eq!(events, vec![rejected(2, Rejection::TooManyRequests)]);
    assert_eq!(
        server_output(&mut s),
        [1, 3, 0, 2, 0, 8, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0]
    );
    assert_eq!(s.active_requests(), 3);
    let events = feed_server(&mut s, &record(STDIN, 3, b"three"));
    assert_eq!(events, vec![stdin_event(3, b"three")]);

    // Once one ends, a new one fits.
    s.end_request(5, 0, ProtocolStatus::RequestComplete)
        .unwrap();
    server_output(&mut s);
    let events = feed_server(&mut s, &begin(2, RESPONDER, true));
    assert_eq!(events, vec![begin_event(2, Role::Responder, true)]);
}

#[test]
fn get_values_reports_mpxs_conns_1_when_multiplexing() {
    let mut s = server_with(|_| {});
    assert!(s.config().multiplex);
    feed_server(&mut s, &get_values_query(&[b"FCGI_MPXS_CONNS"]));
    assert_eq!(
        server_output(&mut s),
        get_values_answer(&[(b"FCGI_MPXS_CONNS", b"1")])
    );
}

#[test]
fn multiplexing_off_answers_cant_mpx_conn_and_leaves_the_running_request_untouched() {
    let mut s = server_with(|c| c.multiplex = false);
    assert_eq!(s.config().concurrent_requests(), 1);
    let events = feed_server(&mut s, &begun(1, RESPONDER, true));
    assert_eq!(events.len(), 2);

    let events = feed_server(
        &mut s,
        &[
            begin(2, RESPONDER, true),
            record(PARAMS, 2, &nv(b"A", b"b")),
            record(PARAMS, 2, &[]),
            record(STDIN, 2, b"not for us"),
        ]
        .concat(),
    );
    assert_eq!(events, vec![rejected(2, Rejection::CantMpxConn)]);
    assert_eq!(
        server_output(&mut s),
        [1, 3, 0, 2, 0, 8, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]
    );

    // Request 1 still gets its body and can respond.
    let events = feed_server(
        &mut s,
        &[record(STDIN, 1, b"body"), record(STDIN, 1, &[])].concat(),
    );
    assert_eq!(
        events,
        vec![stdin_event(1, b"body"), Event::StdinEnd { id: 1 }]
    );
    s.send_stdout(1, Bytes::from_static(b"ok")).unwrap();
    s.end_request(1, 0, ProtocolStatus::RequestComplete)
        .unwrap();
    let records = server_records(&mut s);
    assert_eq!(stream_content(&records, STDOUT, 1), b"ok");
    assert_eq!(records.last().unwrap().rtype, END_REQUEST);

    // After it ended, the next request is accepted.
    let events = feed_server(&mut s, &begin(2, RESPONDER, true));
    assert_eq!(events, vec![begin_event(2, Role::Responder, true)]);
}

#[test]
fn get_values_reports_mpxs_conns_0_without_multiplexing() {
    let mut s = server_with(|c| c.multiplex = false);
    feed_server(&mut s, &get_values_query(&[b"FCGI_MPXS_CONNS"]));
    assert_eq!(
        server_output(&mut s),
        get_values_answer(&[(b"FCGI_MPXS_CONNS", b"0")])
    );
}

#[test]
fn unconfigured_roles_get_unknown_role() {
    let mut s = server_with(|_| {}); // Responder only
    let events = feed_server(
        &mut s,
        &[
            begin(1, AUTHORIZER, true),
            begin(2, FILTER, true),
            begin(3, 9, true),
            begin(4, 0, true),
        ]
        .concat(),
    );
    assert_eq!(
        events,
        (1..=4)
            .map(|id| rejected(id, Rejection::UnknownRole))
            .collect::<Vec<_>>()
    );
    let mut expected = Vec::new();
    for id in 1..=4u8 {
        expected.extend([1, 3, 0, id, 0, 8, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0]);
    }
    assert_eq!(server_output(&mut s), expected);
    assert_eq!(s.active_requests(), 0);

    let mut none = server_with(|c| c.roles = RoleSet::NONE);
    assert_eq!(
        feed_server(&mut none, &begin(1, RESPONDER, true)),
        vec![rejected(1, Rejection::UnknownRole)]
    );

    let mut all = server_with(|c| c.roles = RoleSet::ALL);
    assert_eq!(
        feed_server(
            &mut all,
            &[
                begin(1, RESPONDER, true),
                begin(2, AUTHORIZER, false),
                begin(3, FILTER, true)
            ]
            .concat()
        ),
        vec![
            begin_event(1, Role::Responder, true),
            begin_event(2, Role::Authorizer, false),
            begin_event(3, Role::Filter, true),
        ]
    );
    assert_eq!(
        feed_server(&mut all, &begin(4, 4, true)),
        vec![rejected(4, Rejection::UnknownRole)]
    );
}

#[test]
fn rejection_protocol_statuses() {
    assert_eq!(
        Rejection::CantMpxConn.protocol_status(),
        ProtocolStatus::CantMpxConn
    );
    assert_eq!(
        Rejection::UnknownRole.protocol_status(),
        ProtocolStatus::UnknownRole
    );
    for r in [
        Rejection::TooManyRequests,
        Rejection::ParamsTooLarge,
        Rejection::ShuttingDown,
    ] {
        assert_eq!(r.protocol_status(), ProtocolStatus::Overloaded);
    }
}

#[test]
fn refused_request_without_keep_conn_closes_the_connection() {
    let mut s = server_with(|_| {});
    feed_server(&mut s, &begin(1, FILTER, false));
    assert!(s.should_close());
    let mut s = server_with(|_| {});
    feed_server(&mut s, &begin(1, FILTER, true));
    assert!(!s.should_close());
}

// ---------------------------------------------------------------------------------------
// GET_VALUES (spec 4.1)
// ---------------------------------------------------------------------------------------

#[test]
fn get_values_answers_from_the_real_config() {
    let mut s = server_with(|c| {
        c.max_conns = 7;
        c.max_reqs = u32::MAX;
        c.multiplex = false;
    });
    feed_server(&mut s, &get_values_query(&ALL_NAMES));
    assert_eq!(
        server_output(&mut s),
        get_values_answer(&[
            (b"FCGI_MAX_CONNS", b"7"),
            (b"FCGI_MAX_REQS", b"4294967295"),
            (b"FCGI_MPXS_CONNS", b"0"),
        ])
    );

    let mut s = server_with(|c| {
        c.max_conns = 0;
        c.max_reqs = 1000;
    });
    feed_server(&mut s, &get_values_query(&ALL_NAMES));
    let out = server_output(&mut s);
    assert_eq!(
        out,
        get_values_answer(&[
            (b"FCGI_MAX_CONNS", b"0"),
            (b"FCGI_MAX_REQS", b"1000"),
            (b"FCGI_MPXS_CONNS", b"1"),
        ])
    );
    // 17 + 19 + 18 = 54 content bytes, 2 padding.
    assert_eq!(&out[..8], &[1, 10, 0, 0, 0, 54, 2, 0]);
}

#[test]
fn get_values_omits_unknown_names() {
    let mut s = server_with(|_| {});
    feed_server(
        &mut s,
        &get_values_query(&[
            b"FOO",
            b"FCGI_MAX_REQS",
            b"fcgi_max_conns",
            b"FCGI_MAX_CONN",
        ]),
    );
    assert_eq!(
        server_output(&mut s),
        get_values_answer(&[(b"FCGI_MAX_REQS", b"1024")])
    );

    // Nothing known: an empty answer, as php-fpm gives.
    feed_server(&mut s, &get_values_query(&[b"NOPE"]));
    assert_eq!(server_output(&mut s), [1, 10, 0, 0, 0, 0, 0, 0]);
    feed_server(&mut s, &record(GET_VALUES, 0, &[]));
    assert_eq!(server_output(&mut s), [1, 10, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn get_values_ignores_values_in_the_query() {
    let mut s = server_with(|c| c.max_conns = 3);
    feed_server(
        &mut s,
        &record(GET_VALUES, 0, &nv(b"FCGI_MAX_CONNS", b"999")),
    );
    assert_eq!(
        server_output(&mut s),
        get_values_answer(&[(b"FCGI_MAX_CONNS", b"3")])
    );
}

#[test]
fn get_values_is_answered_in_the_middle_of_a_request() {
    let mut s = server_with(|c| c.multiplex = false);
    let block = nv_block(&[(b"REQUEST_METHOD", b"PUT"), (b"CONTENT_LENGTH", b"4")]);
    let events = feed_server(
        &mut s,
        &[begin(1, RESPONDER, false), record(PARAMS, 1, &block[..9])].concat(),
    );
    assert_eq!(events.len(), 1);
    // Between two halves of a pair.
    assert_eq!(
        feed_server(&mut s, &get_values_query(&[b"FCGI_MPXS_CONNS"])),
        vec![]
    );
    assert_eq!(
        server_output(&mut s),
        get_values_answer(&[(b"FCGI_MPXS_CONNS", b"0")])
    );
    let events = feed_server(
        &mut s,
        &[
            record(PARAMS, 1, &block[9..]),
            record(PARAMS, 1, &[]),
            record(STDIN, 1, b"ab"),
        ]
        .concat(),
    );
    let Event::Params { params, .. } = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(params.get_str("REQUEST_METHOD"), Some("PUT"));
    assert_eq!(params.get_str("CONTENT_LENGTH"), Some("4"));
    // In the middle of STDIN, and after the application started writing.
    s.send_stdout(1, Bytes::from_static(b"partial")).unwrap();
    feed_server(&mut s, &get_values_query(&[b"FCGI_MAX_REQS"]));
    let events = feed_server(
        &mut s,
        &[record(STDIN, 1, b"cd"), record(STDIN, 1, &[])].concat(),
    );
    assert_eq!(
        events,
        vec![stdin_event(1, b"cd"), Event::StdinEnd { id: 1 }]
    );
    let records = server_records(&mut s);
    assert_eq!(
        records.iter().map(|r| r.rtype).collect::<Vec<_>>(),
        vec![STDOUT, GET_VALUES_RESULT]
    );
    assert_eq!(parse_nv_block(&records[1].content).unwrap()[0].1, b"1024");
}

// ---------------------------------------------------------------------------------------
// UNKNOWN_TYPE (spec 4.2)
// ---------------------------------------------------------------------------------------

#[test]
fn unknown_management_type_gets_unknown_type_with_that_byte() {
    for t in [0u8, 12, 42, 0x80, 0xFF] {
        let mut s = server_with(|_| {});
        // With content and odd padding, to be sure neither leaks into the answer.
        let events = feed_server(&mut s, &record_padded(t, 0, b"what is this", 3));
        assert_eq!(events, vec![]);
        assert_eq!(
            server_output(&mut s),
            [1, 11, 0, 0, 0, 8, 0, 0, t, 0, 0, 0, 0, 0, 0, 0],
            "type {t}"
        );
        // The connection carries on.
        feed_server(&mut s, &get_values_query(&[b"FCGI_MPXS_CONNS"]));
        assert_eq!(
            server_output(&mut s),
            get_values_answer(&[(b"FCGI_MPXS_CONNS", b"1")])
        );
    }
}

#[test]
fn unknown_record_type_for_an_active_request_is_ignored() {
    let mut s = server_with(|_| {});
    feed_server(&mut s, &begun(1, RESPONDER, true));
    assert_eq!(feed_server(&mut s, &record(42, 1, b"future")), vec![]);
    assert_eq!(server_output(&mut s), Vec::<u8>::new());
    assert_eq!(
        feed_server(&mut s, &record(STDIN, 1, b"x")),
        vec![stdin_event(1, b"x")]
    );
}

// ---------------------------------------------------------------------------------------
// Inactive request ids (spec 3.3)
// ---------------------------------------------------------------------------------------

fn serve_one(s: &mut ServerConnection, id: u16, keep_conn: bool) -> Vec<u8> {
    let events = feed_server(s, &responder_request(id, keep_conn, &[(b"Q", b"1")], b"in"));
    assert_eq!(events, {
        let mut p = fcgi_core::Params::new();
        p.push(b"Q", b"1").unwrap();
        vec![
            begin_event(id, Role::Responder, keep_conn),
            Event::Params { id, params: p },
            stdin_event(id, b"in"),
            Event::StdinEnd { id },
        ]
    });
    s.send_stdout(id, Bytes::from_static(b"out")).unwrap();
    s.end_request(id, 0, ProtocolStatus::RequestComplete)
        .unwrap();
    server_output(s)
}

#[test]
fn late_abort_after_end_request_is_ignored_and_the_id_is_reusable() {
    let mut s = server_with(|c| c.multiplex = false);
    let first = serve_one(&mut s, 1, true);
    assert!(!s.is_active(1));
    assert_eq!(feed_server(&mut s, &record(ABORT_REQUEST, 1, &[])), vec![]);
    assert_eq!(server_output(&mut s), Vec::<u8>::new());
    assert!(!s.should_close());
    let second = serve_one(&mut s, 1, true);
    assert_eq!(first, second);
}

#[test]
fn stray_records_for_unknown_ids_are_ignored() {
    let mut s = server_with(|_| {});
    let stray = [
        record(STDIN, 9, b"stray body"),
        record(STDIN, 9, &[]),
        record(PARAMS, 9, &nv(b"A", b"b")),
        record(PARAMS, 9, &[]),
        record(DATA, 9, b"d"),
        record(ABORT_REQUEST, 9, &[]),
        record(STDOUT, 9, b"o"),
        record(END_REQUEST, 9, &[0; 8]),
    ]
    .concat();
    assert_eq!(feed_server(&mut s, &stray), vec![]);
    assert_eq!(server_output(&mut s), Vec::<u8>::new());
    // Also while another request is active, and without disturbing it.
    feed_server(&mut s, &begun(1, RESPONDER, true));
    assert_eq!(feed_server(&mut s, &stray), vec![]);
    assert_eq!(
        feed_server(&mut s, &record(STDIN, 1, b"mine")),
        vec![stdin_event(1, b"mine")]
    );
    assert_eq!(server_output(&mut s), Vec::<u8>::new());
}

// ---------------------------------------------------------------------------------------
// ABORT_REQUEST (spec 5.4)
// ---------------------------------------------------------------------------------------

fn check_abort(before_abort: &[u8], setup_events: usize) {
    let mut s = server_with(|c| c.multiplex = false);
    let events = feed_server(&mut s, before_abort);
    assert_eq!(events.len(), setup_events, "{events:?}");
    // Two ABORTs (a web server may repeat it) give exactly one event.
    let events = feed_server(
        &mut s,
        &[record(ABORT_REQUEST, 1, &[]), record(ABORT_REQUEST, 1, &[])].concat(),
    );
    assert_eq!(events, vec![Event::Abort { id: 1 }]);
    assert!(
        s.is_active(1),
        "the application ends the request, not the core"
    );
    assert_eq!(server_output(&mut s), Vec::<u8>::new());
    s.end_request(1, 0x0102_0304, ProtocolStatus::RequestComplete)
        .unwrap();
    let out = server_output(&mut s);
    assert_eq!(
        &out[out.len() - 16..],
        &[1, 3, 0, 1, 0, 8, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0]
    );
    let records = parse_wire(&out);
    assert!(
        records
            .iter()
            .all(|r| r.rtype != STDOUT || r.content.is_empty())
    );
    assert!(!s.is_active(1));
    assert!(s.should_close());
    // Whatever else the web server still sends for that id is ignored.
    assert_eq!(
        feed_server(
            &mut s,
            &[record(STDIN, 1, b"late"), record(ABORT_REQUEST, 1, &[])].concat()
        ),
        vec![]
    );
    assert_eq!(
        s.end_request(1, 0, ProtocolStatus::RequestComplete),
        Err(Error::Api(ApiError::UnknownRequest(1)))
    );
}

#[test]
fn abort_during_params() {
    let wire = [
        begin(1, RESPONDER, false),
        record(PARAMS, 1, &nv(b"A", b"b")),
    ]
    .concat();
    check_abort(&wire, 1);
}

#[test]
fn abort_during_stdin() {
    let wire = [begun(1, RESPONDER, false), record(STDIN, 1, b"part")].concat();
    check_abort(&wire, 3);
}

#[test]
fn abort_after_stdin_end() {
    let wire = responder_request(1, false, &[(b"A", b"b")], b"all");
    check_abort(&wire, 4);
}

#[test]
fn abort_after_stdin_end_exact_output() {
    let mut s = server_with(|_| {});
    feed_server(&mut s, &responder_request(1, true, &[], b""));
    assert_eq!(
        feed_server(&mut s, &record(ABORT_REQUEST, 1, &[])),
        vec![Event::Abort { id: 1 }]
    );
    s.end_request(1, 1, ProtocolStatus::RequestComplete)
        .unwrap();
    assert_eq!(
        server_output(&mut s),
        [record(STDOUT, 1, &[]), end_request_record(1, 1, 0)].concat()
    );
}

// ---------------------------------------------------------------------------------------
// Ending requests, keep_conn and closing (spec 3.5, 5.1, 5.3, 5.5)
// ---------------------------------------------------------------------------------------

#[test]
fn end_request_terminates_streams_exact_bytes() {
    let mut s = server_with(|_| {});
    feed_server(&mut s, &responder_request(1, true, &[], b""));
    s.send_stdout(1, Bytes::from_static(b"Status: 200\r\n\r\nhi"))
        .unwrap();
    s.end_request(1, 0x0A0B_0C0D, ProtocolStatus::RequestComplete)
        .unwrap();
    let mut expected = vec![1, 6, 0, 1, 0, 17, 7, 0];
    expected.extend_from_slice(b"Status: 200\r\n\r\nhi");
    expected.extend([0; 7]);
    expected.extend([1, 6, 0, 1, 0, 0, 0, 0]);
    expected.extend([1, 3, 0, 1, 0, 8, 0, 0, 0x0A, 0x0B, 0x0C, 0x0D, 0, 0, 0, 0]);
    assert_eq!(server_output(&mut s), expected);

    // With STDERR used, it is terminated too.
    let mut s = server_with(|_| {});
    feed_server(&mut s, &responder_request(2, true, &[], b""));
    s.send_stderr(2, Bytes::from_static(b"oops")).unwrap();
    s.send_stdout(2, Bytes::from_static(b"x")).unwrap();
    s.send_stderr(2, Bytes::from_static(b"again")).unwrap();
    s.end_request(2, 0, ProtocolStatus::RequestComplete)
        .unwrap();
    let records = server_records(&mut s);
    let kinds: Vec<(u8, usize)> = records.iter().map(|r| (r.rtype, r.content.len())).collect();
    assert_eq!(
        kinds,
        vec![
            (STDERR, 4),
            (STDOUT, 1),
            (STDERR, 5),
            (STDOUT, 0),
            (STDERR, 0),
            (END_REQUEST, 8)
        ]
    );
}

#[test]
fn keep_conn_clear_closes_after_end_request() {
    let mut s = server_with(|_| {});
    feed_server(&mut s, &responder_request(1, false, &[], b""));
    assert!(!s.should_close());
    s.end_request(1, 0, ProtocolStatus::RequestComplete)
        .unwrap();
    assert!(s.should_close());
}

#[test]
fn keep_conn_set_leaves_the_connection_open() {
    let mut s = server_with(|_| {});
    serve_one(&mut s, 1, true);
    assert!(!s.should_close());
    assert!(s.wants_input());
}

#[test]
fn multiplexed_close_waits_for_every_request() {
    let mut s = server_with(|_| {});
    feed_server(
        &mut s,
        &[begun(1, RESPONDER, false), begun(2, RESPONDER, true)].concat(),
    );
    s.end_request(1, 0, ProtocolStatus::RequestComplete)
        .unwrap();
    assert!(!s.should_close(), "request 2 is still running");
    s.end_request(2, 0, ProtocolStatus::RequestComplete)
        .unwrap();
    assert!(s.should_close());
}

#[test]
fn shutdown_refuses_new_requests_and_closes_when_idle() {
    let mut s = server_with(|_| {});
    feed_server(&mut s, &begun(1, RESPONDER, true));
    s.shutdown();
    assert!(!s.should_close());
    assert_eq!(
        feed_server(&mut s, &begin(2, RESPONDER, true)),
        vec![rejected(2, Rejection::ShuttingDown)]
    );
    assert_eq!(server_output(&mut s), end_request_record(2, 0, 2));
    // The running request carries on.
    assert_eq!(
        feed_server(&mut s, &record(STDIN, 1, b"go")),
        vec![stdin_event(1, b"go")]
    );
    s.send_stdout(1, Bytes::from_static(b"done")).unwrap();
    s.end_request(1, 0, ProtocolStatus::RequestComplete)
        .unwrap();
    assert!(s.should_close());

    let mut idle = server_with(|_| {});
    assert!(!idle.should_close());
    idle.shutdown();
    assert!(idle.should_close());
}

#[test]
fn close_after_active_serves_new_requests_then_closes_when_idle() {
    let mut s = server_with(|_| {});
    feed_server(&mut s, &begun(1, RESPONDER, true));
    s.close_after_active();
    assert!(!s.should_close());
    // Unlike shutdown(), a request that begins now is served, not refused.
    assert_eq!(
        feed_server(&mut s, &begin(2, RESPONDER, true)),
        vec![begin_event(2, Role::Responder, true)]
    );
    assert_eq!(server_output(&mut s), Vec::<u8>::new());
    s.end_request(1, 0, ProtocolStatus::RequestComplete)
        .unwrap();
    assert!(!s.should_close(), "request 2 is still active");
    s.end_request(2, 0, ProtocolStatus::RequestComplete)
        .unwrap();
    assert!(s.should_close());

    let mut idle = server_with(|_| {});
    idle.close_after_active();
    assert!(idle.should_close());
}

#[test]
fn eof_aborts_every_active_request_once() {
    let mut s = server_with(|_| {});
    feed_server(
        &mut s,
        &[
            begun(1, RESPONDER, true),
            begun(2, RESPONDER, true),
            begin(3, RESPONDER, true),
            record(ABORT_REQUEST, 2, &[]),
        ]
        .concat(),
    );
    assert_eq!(s.handle_eof(), Ok(()));
    assert_eq!(
        drain_server_events(&mut s),
        vec![Event::Abort { id: 1 }, Event::Abort { id: 3 }]
    );
    assert!(!s.wants_input());
    assert_eq!(s.handle_eof(), Ok(()));
    assert_eq!(drain_server_events(&mut s), vec![]);
    // Input after EOF is not consumed.
    let mut input = BytesMut::from(&begin(4, RESPONDER, true)[..]);
    assert_eq!(s.handle_input(&mut input), Ok(()));
    assert_eq!(input.len(), 16);
    assert!(!s.should_close());
    for id in 1..=3 {
        s.end_request(id, 0, ProtocolStatus::RequestComplete)
            .unwrap();
    }
    assert!(s.should_close());

    let mut idle = server_with(|_| {});
    assert_eq!(idle.handle_eof(), Ok(()));
    assert!(idle.should_close());
    assert_eq!(drain_server_events(&mut idle), vec![]);
}

#[test]
fn eof_in_the_middle_of_a_record_is_reported_after_the_aborts() {
    let mut s = server_with(|_| {});
    let mut wire = [
        begin(1, RESPONDER, true),
        record(PARAMS, 1, &nv(b"ABC", b"def")),
    ]
    .concat();
    wire.truncate(wire.len() - 3);
    let events = feed_server(&mut s, &wire);
    assert_eq!(events.len(), 1);
    assert_eq!(
        s.handle_eof(),
        Err(Error::Malformed(Malformed::TruncatedRecord))
    );
    assert_eq!(drain_server_events(&mut s), vec![Event::Abort { id: 1 }]);
}

// ---------------------------------------------------------------------------------------
// Role rules (spec 6.2 Responder, 6.3 Authorizer, 6.4 Filter)
// ---------------------------------------------------------------------------------------

fn wrong_phase(id: u16) -> Error {
    Error::Api(ApiError::WrongPhase { request_id: id })
}

#[test]
fn nobody_writes_before_params_end() {
    for (role, id) in [(RESPONDER, 1u16), (AUTHORIZER, 2), (FILTER, 3)] {
        let mut s = server_with(|c| c.roles = RoleSet::ALL);
        feed_server(
            &mut s,
            &[begin(id, role, true), record(PARAMS, id, &nv(b"A", b"b"))].concat(),
        );
        assert_eq!(
            s.send_stdout(id, Bytes::from_static(b"x")),
            Err(wrong_phase(id))
        );
        assert_eq!(
            s.send_stderr(id, Bytes::from_static(b"x")),
            Err(wrong_phase(id))
        );
        assert_eq!(s.send_stdout(id, Bytes::new()), Err(wrong_phase(id)));
        assert_eq!(s.transmit_len(), 0);
    }
}

#[test]
fn responder_may_write_before_stdin_ends() {
    let mut s = server_with(|_| {});
    feed_server(
        &mut s,
        &[begun(1, RESPONDER, true), record(STDIN, 1, b"a")].concat(),
    );
    s.send_stdout(1, Bytes::from_static(b"early")).unwrap();
    s.send_stderr(1, Bytes::from_static(b"note")).unwrap();
    assert_eq!(
        feed_server(
            &mut s,
            &[record(STDIN, 1, b"b"), record(STDIN, 1, &[])].concat()
        ),
        vec![stdin_event(1, b"b"), Event::StdinEnd { id: 1 }]
    );
    let records = server_records(&mut s);
    assert_eq!(stream_content(&records, STDOUT, 1), b"early");
    assert_eq!(stream_content(&records, STDERR, 1), b"note");
}

#[test]
fn filter_must_not_write_before_stdin_ends_and_receives_data() {
    let mut s = server_with(|c| c.roles = RoleSet::FILTER);
    let events = feed_server(
        &mut s,
        &[
            begin(1, FILTER, true),
            record(PARAMS, 1, &nv(b"FCGI_DATA_LENGTH", b"6")),
            record(PARAMS, 1, &[]),
            record(STDIN, 1, b"in"),
        ]
        .concat(),
    );
    assert_eq!(events.len(), 3);
    assert_eq!(
        s.send_stdout(1, Bytes::from_static(b"x")),
        Err(wrong_phase(1))
    );
    assert_eq!(
        s.send_stderr(1, Bytes::from_static(b"x")),
        Err(wrong_phase(1))
    );
    let events = feed_server(&mut s, &record(STDIN, 1, &[]));
    assert_eq!(events, vec![Event::StdinEnd { id: 1 }]);
    // Now it may write, while DATA still arrives.
    let events = feed_server(&mut s, &record(DATA, 1, b"fil"));
    assert_eq!(
        events,
        vec![Event::Data {
            id: 1,
            data: Bytes::from_static(b"fil")
        }]
    );
    s.send_stdout(1, Bytes::from_static(b"FIL")).unwrap();
    let events = feed_server(
        &mut s,
        &[record(DATA, 1, b"ter"), record(DATA, 1, &[])].concat(),
    );
    assert_eq!(
        events,
        vec![
            Event::Data {
                id: 1,
                data: Bytes::from_static(b"ter")
            },
            Event::DataEnd { id: 1 }
        ]
    );
    s.send_stdout(1, Bytes::from_static(b"TER")).unwrap();
    s.end_request(1, 0, ProtocolStatus::RequestComplete)
        .unwrap();
    assert_eq!(
        stream_content(&server_records(&mut s), STDOUT, 1),
        b"FILTER"
    );
}

#[test]
fn filter_data_before_stdin_end_is_a_violation() {
    let mut s = server_with(|c| c.roles = RoleSet::FILTER);
    feed_server(&mut s, &begun(1, FILTER, true));
    assert_eq!(
        try_feed_server(&mut s, &record(DATA, 1, b"early")),
        Err(unexpected(DATA, 1))
    );
}

#[test]
fn authorizer_tolerates_empty_stdin_and_may_write_after_params() {
    let mut s = server_with(|c| c.roles = RoleSet::AUTHORIZER);
    let events = feed_server(
        &mut s,
        &[begun(1, AUTHORIZER, true), record(STDIN, 1, &[])].concat(),
    );
    assert_eq!(events.len(), 2, "no StdinEnd for an Authorizer: {events:?}");
    s.send_stdout(
        1,
        Bytes::from_static(b"Status: 200\r\nVariable-USER: bob\r\n\r\n"),
    )
    .unwrap();
    s.end_request(1, 0, ProtocolStatus::RequestComplete)
        .unwrap();
    assert_eq!(server_records(&mut s).last().unwrap().rtype, END_REQUEST);
}

#[test]
fn authorizer_receiving_stdin_is_a_violation() {
    let mut s = server_with(|c| c.roles = RoleSet::AUTHORIZER);
    feed_server(&mut s, &begun(1, AUTHORIZER, true));
    assert_eq!(
        try_feed_server(&mut s, &record(STDIN, 1, b"body")),
        Err(unexpected(STDIN, 1))
    );
}

#[test]
fn data_for_a_responder_is_a_violation() {
    let mut s = server_with(|_| {});
    feed_server(&mut s, &responder_request(1, true, &[], b""));
    assert_eq!(
        try_feed_server(&mut s, &record(DATA, 1, b"d")),
        Err(unexpected(DATA, 1))
    );
    let mut s = server_with(|_| {});
    feed_server(&mut s, &responder_request(1, true, &[], b""));
    assert_eq!(
        try_feed_server(&mut s, &record(DATA, 1, &[])),
        Err(unexpected(DATA, 1))
    );
}

#[test]
fn stdin_before_params_end_is_a_violation() {
    for stdin in [record(STDIN, 1, b"x"), record(STDIN, 1, &[])] {
        let mut s = server_with(|_| {});
        feed_server(
            &mut s,
            &[
                begin(1, RESPONDER, true),
                record(PARAMS, 1, &nv(b"A", b"b")),
            ]
            .concat(),
        );
        assert_eq!(try_feed_server(&mut s, &stdin), Err(unexpected(STDIN, 1)));
    }
}

#[test]
fn stream_records_after_their_terminator_are_violations() {
    let mut s = server_with(|_| {});
    feed_server(&mut s, &begun(1, RESPONDER, true));
    assert_eq!(
        try_feed_server(&mut s, &record(PARAMS, 1, &nv(b"A", b"b"))),
        Err(unexpected(PARAMS, 1))
    );
    let mut s = server_with(|_| {});
    feed_server(&mut s, &responder_request(1, true, &[], b""));
    assert_eq!(
        try_feed_server(&mut s, &record(STDIN, 1, b"more")),
        Err(unexpected(STDIN, 1))
    );
}

#[test]
fn records_the_web_server_never_sends_are_violations_for_active_ids() {
    for t in [
        END_REQUEST,
        STDOUT,
        STDERR,
        GET_VALUES,
        GET_VALUES_RESULT,
        UNKNOWN_TYPE,
    ] {
        let mut s = server_with(|_| {});
        feed_server(&mut s, &begun(1, RESPONDER, true));
        assert_eq!(
            try_feed_server(&mut s, &record(t, 1, &[0; 8])),
            Err(unexpected(t, 1)),
            "type {t}"
        );
    }
}

#[test]
fn duplicate_begin_for_an_active_id_is_a_violation() {
    let mut s = server_with(|_| {});
    feed_server(&mut s, &begin(1, RESPONDER, true));
    assert_eq!(
        try_feed_server(&mut s, &begin(1, RESPONDER, true)),
        Err(Error::Violation(Violation::DuplicateBegin(1)))
    );
}

#[test]
fn unsupported_version_is_malformed() {
    for v in [0u8, 2, 0xFF] {
        let mut s = server_with(|_| {});
        assert_eq!(
            try_feed_server(
                &mut s,
                &raw_record(v, BEGIN_REQUEST, 1, &begin_body(1, 0), &[])
            ),
            Err(Error::Malformed(Malformed::UnsupportedVersion(v)))
        );
    }
    // Also in the middle of a request.
    let mut s = server_with(|_| {});
    feed_server(&mut s, &begun(1, RESPONDER, true));
    assert_eq!(
        try_feed_server(&mut s, &raw_record(2, STDIN, 1, b"x", &[])),
        Err(Error::Malformed(Malformed::UnsupportedVersion(2)))
    );
}

#[test]
fn fatal_errors_latch() {
    let mut s = server_with(|_| {});
    feed_server(&mut s, &begin(1, RESPONDER, true));
    let err = Error::Violation(Violation::DuplicateBegin(1));
    assert_eq!(
        try_feed_server(&mut s, &begin(1, RESPONDER, true)),
        Err(err)
    );
    assert!(!s.wants_input());
    let mut valid = BytesMut::from(&get_values_query(&[b"FCGI_MPXS_CONNS"])[..]);
    assert_eq!(s.handle_input(&mut valid), Err(err));
    assert_eq!(valid.len(), 32, "nothing consumed after a fatal error");
    assert_eq!(s.handle_input(&mut BytesMut::new()), Err(err));
    assert_eq!(server_output(&mut s), Vec::<u8>::new());
}

#[test]
fn commands_for_unknown_requests_are_api_errors() {
    let mut s = server_with(|_| {});
    let unknown = Error::Api(ApiError::UnknownRequest(9));
    assert_eq!(s.send_stdout(9, Bytes::from_static(b"x")), Err(unknown));
    assert_eq!(s.send_stderr(9, Bytes::from_static(b"x")), Err(unknown));
    assert_eq!(
        s.end_request(9, 0, ProtocolStatus::RequestComplete),
        Err(unknown)
    );
    serve_one(&mut s, 9, true);
    assert_eq!(
        s.end_request(9, 0, ProtocolStatus::RequestComplete),
        Err(unknown)
    );
    assert_eq!(s.transmit_len(), 0);
}

// ---------------------------------------------------------------------------------------
// Back-pressure (Limits::max_buffered_input / max_buffered_output)
// ---------------------------------------------------------------------------------------

/// Per-event accounting cost documented in `Limits` (beyond the payload).
const EVENT_COST: usize = 64;

fn event_cost(e: &Event) -> usize {
    EVENT_COST
        + match e {
            Event::Stdin { data, .. } | Event::Data { data, .. } => data.len(),
            Event::Params { params, .. } => params.wire_bytes().len(),
            _ => 0,
        }
}

#[test]
fn input_back_pressure_stops_consuming_until_events_are_polled() {
    const MAX: usize = 1000;
    const CHUNK: usize = 100;
    let mut limits = Limits::default();
    limits.max_buffered_input = MAX;
    let mut s = server_with(|c| c.limits = limits);
    let body = pattern(40 * CHUNK);
    let mut wire = begun(1, RESPONDER, true);
    for piece in body.chunks(CHUNK) {
        wire.extend(record(STDIN, 1, piece));
    }
    wire.extend(record(STDIN, 1, &[]));
    let mut input = BytesMut::from(&wire[..]);

    s.handle_input(&mut input).unwrap();
    assert!(
        !input.is_empty(),
        "everything was consumed despite the limit"
    );
    assert!(!s.wants_input());
    // Without polling, nothing more is taken.
    let left = input.len();
    s.handle_input(&mut input).unwrap();
    assert_eq!(input.len(), left);

    let mut received = Vec::new();
    let mut rounds = 0;
    loop {
        let events = drain_server_events(&mut s);
        let queued: usize = events.iter().map(event_cost).sum();
        assert!(
            queued <= MAX + CHUNK + EVENT_COST,
            "{queued} bytes were queued at once"
        );
        for e in events {
            if let Event::Stdin { data, .. } = e {
                received.extend_from_slice(&data);
            }
        }
        assert!(s.wants_input());
        if input.is_empty() {
            break;
        }
        s.handle_input(&mut input).unwrap();
        rounds += 1;
        assert!(rounds < 100, "no progress");
    }
    assert!(rounds >= 4, "only {rounds} rounds");
    assert_eq!(received, body);
}

#[test]
fn output_back_pressure_refuses_sends_and_stops_input() {
    let mut limits = Limits::default();
    limits.max_buffered_output = 4096;
    let mut s = server_with(|c| c.limits = limits);
    feed_server(
        &mut s,
        &[begun(1, RESPONDER, true), record(STDIN, 1, b"a")].concat(),
    );
    assert_eq!(s.send_capacity(), 4096);
    s.send_stdout(1, pattern(5000)).unwrap();
    assert_eq!(s.send_capacity(), 0);
    let full = Error::Api(ApiError::OutputFull);
    assert_eq!(s.send_stdout(1, Bytes::from_static(b"x")), Err(full));
    assert_eq!(s.send_stderr(1, Bytes::from_static(b"x")), Err(full));
    let queued = s.transmit_len();
    assert!(!s.wants_input());

    // Input (even a GET_VALUES, whose answer would grow the queue) waits.
    let more = [
        record(STDIN, 1, b"b"),
        get_values_query(&[b"FCGI_MPXS_CONNS"]),
    ]
    .concat();
    let mut input = BytesMut::from(&more[..]);
    s.handle_input(&mut input).unwrap();
    assert_eq!(input.len(), more.len());
    assert_eq!(s.transmit_len(), queued);
    assert_eq!(drain_server_events(&mut s), vec![]);

    // Writing the queue out releases both.
    let written = server_output(&mut s);
    assert_eq!(
        stream_content(&parse_wire(&written), STDOUT, 1),
        pattern(5000)
    );
    assert!(s.wants_input());
    assert_eq!(s.send_capacity(), 4096);
    s.handle_input(&mut input).unwrap();
    assert!(input.is_empty());
    assert_eq!(drain_server_events(&mut s), vec![stdin_event(1, b"b")]);
    s.send_stdout(1, Bytes::from_static(b"x")).unwrap();

    // Ending a request is always possible, even with a full queue.
    s.send_stdout(1, pattern(5000)).unwrap();
    assert_eq!(s.send_capacity(), 0);
    s.end_request(1, 0, ProtocolStatus::RequestComplete)
        .unwrap();
    let records = server_records(&mut s);
    assert_eq!(records.last().unwrap().rtype, END_REQUEST);
}

#[test]
fn eof_right_after_a_complete_record_under_back_pressure_is_clean() {
    // The last STDIN record ends exactly at the end of the input (no padding) and its
    // payload exhausts the event budget: decoding stops before the record's end is noted.
    let mut limits = Limits::default();
    limits.max_buffered_input = 100;
    let mut s = server_with(|c| c.limits = limits);
    feed_server(&mut s, &begun(1, RESPONDER, false));
    let wire = raw_record(1, STDIN, 1, &pattern(200), &[]);
    let mut input = BytesMut::from(&wire[..]);
    s.handle_input(&mut input).unwrap();
    assert!(input.is_empty());
    assert!(!s.wants_input());
    assert_eq!(
        s.handle_eof(),
        Ok(()),
        "a whole record is not a truncated one"
    );
    let events = drain_server_events(&mut s);
    assert_eq!(events.len(), 2);
    assert_eq!(events[1], Event::Abort { id: 1 });
}

#[test]
fn partial_advance_releases_output_back_pressure() {
    let mut limits = Limits::default();
    limits.max_buffered_output = 1024;
    let mut s = server_with(|c| c.limits = limits);
    feed_server(&mut s, &begun(1, RESPONDER, true));
    s.send_stdout(1, pattern(2000)).unwrap();
    assert!(!s.wants_input());
    let total = s.transmit_len();
    s.advance_transmit(total - 1000);
    assert_eq!(s.transmit_len(), 1000);
    assert_eq!(s.send_capacity(), 24);
    assert!(s.wants_input());
}

/// Spec 3.3: once the application ends a request, its id is inactive — events still queued
/// for it are not reported (the web server may reuse the id right after our END_REQUEST).
#[test]
fn ending_a_request_drops_its_queued_events() {
    use bytes::BytesMut;
    use fcgi_core::server::{Event, ServerConfig, ServerConnection};
    let mut conn = ServerConnection::new(ServerConfig::default());
    let mut input = BytesMut::from(
        &[
            1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, // BEGIN id 1, keep_conn
            1, 4, 0, 1, 0, 0, 0, 0, // empty PARAMS
            1, 5, 0, 1, 0, 3, 5, 0, b'a', b'b', b'c', 0, 0, 0, 0, 0, // STDIN "abc"
            1, 5, 0, 1, 0, 0, 0, 0, // empty STDIN
            1, 1, 0, 2, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, // BEGIN id 2
        ][..],
    );
    conn.handle_input(&mut input).unwrap();
    assert!(matches!(
        conn.poll_event(),
        Some(Event::BeginRequest { id: 1, .. })
    ));
    conn.end_request(1, 0, fcgi_core::ProtocolStatus::Overloaded)
        .unwrap();
    // Params/Stdin/StdinEnd of request 1 are gone; request 2's begin is still there.
    assert!(matches!(
        conn.poll_event(),
        Some(Event::BeginRequest { id: 2, .. })
    ));
    assert_eq!(conn.poll_event(), None);
}

/// `expects_input` / `awaiting_input` follow each role's streams (spec 6.2-6.4): params,
/// then STDIN (Responder, Filter), then DATA (Filter); nothing after PARAMS for an
/// Authorizer; false for an inactive id.
#[test]
fn expects_input_follows_the_role_streams() {
    let mut s = server_with(|c| {
        c.multiplex = true;
        c.roles = RoleSet::ALL;
    });
    let feed = |s: &mut ServerConnection, bytes: Vec<u8>| {
        s.handle_input(&mut BytesMut::from(&bytes[..]))
            .expect("input");
        while s.poll_event().is_some() {}
    };
    assert!(!s.awaiting_input());
    feed(&mut s, begin(1, RESPONDER, true));
    feed(&mut s, begin(2, AUTHORIZER, true));
    feed(&mut s, begin(3, FILTER, true));
    for id in 1..=3 {
        assert!(s.expects_input(id), "{id} before its params end");
    }
    for id in 1..=3 {
        feed(&mut s, record(PARAMS, id, &[]));
    }
    assert!(s.expects_input(1));
    assert!(!s.expects_input(2), "an Authorizer gets no body");
    assert!(s.expects_input(3));
    feed(&mut s, record(STDIN, 1, &[]));
    feed(&mut s, record(STDIN, 3, &[]));
    assert!(!s.expects_input(1));
    assert!(s.expects_input(3), "a Filter's DATA follows");
    assert!(s.awaiting_input());
    feed(&mut s, record(DATA, 3, &[]));
    assert!(!s.expects_input(3));
    assert!(!s.awaiting_input());
    assert!(!s.expects_input(9), "inactive id");
    assert!(Role::Responder.reads_stdin() && !Role::Responder.reads_data());
    assert!(!Role::Authorizer.reads_stdin() && !Role::Authorizer.reads_data());
    assert!(Role::Filter.reads_stdin() && Role::Filter.reads_data());
}

/// An empty record for a stream that already ended, on a request still active, is ignored
/// (fastcgi-client 0.12 sends a second empty STDIN; C libfcgi and php-fpm ignore it): no
/// event, no error, and the request goes on. A non-empty one stays a violation (see
/// `stream_records_after_their_terminator_are_violations`), and so does an empty `DATA`
/// for a role without `DATA`.
#[test]
fn repeated_empty_stream_terminators_are_ignored() {
    let mut s = server_with(|c| c.roles = RoleSet::ALL);
    feed_server(&mut s, &responder_request(1, true, &[], b"body"));
    let events = feed_server(
        &mut s,
        &[
            record(STDIN, 1, &[]),
            record(PARAMS, 1, &[]),
            record(STDIN, 1, &[]),
        ]
        .concat(),
    );
    assert_eq!(events, vec![], "repeated ends are not reported again");
    s.send_stdout(1, Bytes::from_static(b"Status: 204\r\n\r\n"))
        .unwrap();
    s.end_request(1, 0, ProtocolStatus::RequestComplete)
        .unwrap();
    assert_eq!(server_records(&mut s).last().unwrap().rtype, END_REQUEST);

    // A Filter: repeated PARAMS, STDIN and DATA ends, each after its stream ended.
    let mut s = server_with(|c| c.roles = RoleSet::ALL);
    feed_server(&mut s, &begun(2, FILTER, true));
    feed_server(&mut s, &record(STDIN, 2, &[]));
    assert!(feed_server(&mut s, &record(STDIN, 2, &[])).is_empty());
    assert!(s.expects_input(2), "DATA is still to come");
    feed_server(&mut s, &record(DATA, 2, b"file"));
    feed_server(&mut s, &record(DATA, 2, &[]));
    assert!(
        feed_server(
            &mut s,
            &[record(DATA, 2, &[]), record(PARAMS, 2, &[])].concat()
        )
        .is_empty()
    );
    assert!(s.is_active(2));
}
