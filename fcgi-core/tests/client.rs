//! The web-server side (`ClientConnection`), rule by rule: request ids (spec 3.3), the
//! records it writes for each role (5.1 - 5.3, 6.2 - 6.4), aborts (5.4), what it reports
//! from the application's records (4.1, 4.2, 5.3, 5.5), keep-alive and closing (3.5), and
//! the records an application never sends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use fcgi_core::client::{ClientConfig, ClientConnection, Event};
use fcgi_core::record::Role;
use fcgi_core::server::{self, RoleSet, ServerConfig, ServerConnection};
use fcgi_core::{ApiError, Error, Limits, Params, ProtocolStatus, Violation};

fn client_with(max: u16) -> ClientConnection {
    let mut config = ClientConfig::default();
    config.max_concurrent_requests = max;
    ClientConnection::new(config)
}

fn end(id: u16) -> Vec<u8> {
    end_request_record(id, 0, 0)
}

fn end_event(id: u16, app_status: u32, protocol_status: ProtocolStatus) -> Event {
    Event::EndRequest {
        id,
        app_status,
        protocol_status,
    }
}

fn stdout_event(id: u16, data: &'static [u8]) -> Event {
    Event::Stdout {
        id,
        data: Bytes::from_static(data),
    }
}

fn stderr_event(id: u16, data: &'static [u8]) -> Event {
    Event::Stderr {
        id,
        data: Bytes::from_static(data),
    }
}

fn wrong_phase(id: u16) -> Error {
    Error::Api(ApiError::WrongPhase { request_id: id })
}

// ---------------------------------------------------------------------------------------
// Request ids (spec 3.3)
// ---------------------------------------------------------------------------------------

#[test]
fn begin_request_returns_the_lowest_free_id_and_exact_bytes() {
    let mut c = client_with(3);
    assert_eq!(c.begin_request(Role::Responder, true), Ok(1));
    assert_eq!(c.begin_request(Role::Filter, true), Ok(2));
    assert_eq!(c.begin_request(Role::Authorizer, true), Ok(3));
    assert_eq!(
        client_output(&mut c),
        [
            [1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0],
            [1, 1, 0, 2, 0, 8, 0, 0, 0, 3, 1, 0, 0, 0, 0, 0],
            [1, 1, 0, 3, 0, 8, 0, 0, 0, 2, 1, 0, 0, 0, 0, 0],
        ]
        .concat()
    );
    assert_eq!(c.requests_in_flight(), 3);
    assert!(!c.can_begin());
    assert_eq!(
        c.begin_request(Role::Responder, true),
        Err(Error::Api(ApiError::NoFreeRequestId(3)))
    );
    assert_eq!(c.transmit_len(), 0, "a refused begin queues nothing");

    feed_client(&mut c, &end(2));
    assert!(c.can_begin());
    assert_eq!(c.begin_request(Role::Responder, true), Ok(2));
    feed_client(&mut c, &[end(3), end(1)].concat());
    assert_eq!(c.begin_request(Role::Responder, true), Ok(1));
    assert_eq!(c.begin_request(Role::Responder, true), Ok(3));
}

#[test]
fn an_id_is_reused_only_after_its_end_request() {
    let mut c = client_with(2);
    assert_eq!(c.begin_request(Role::Responder, true), Ok(1));
    c.end_params(1).unwrap();
    c.end_stdin(1).unwrap();
    // The request sent everything and even got output: still in flight.
    feed_client(&mut c, &record(STDOUT, 1, b"x"));
    c.abort(1).unwrap();
    assert!(c.is_in_flight(1));
    assert_eq!(c.begin_request(Role::Responder, true), Ok(2));
    assert_eq!(
        c.begin_request(Role::Responder, true),
        Err(Error::Api(ApiError::NoFreeRequestId(2)))
    );
    assert_eq!(
        feed_client(&mut c, &end(1)),
        vec![end_event(1, 0, ProtocolStatus::RequestComplete)]
    );
    assert!(!c.is_in_flight(1));
    assert_eq!(c.begin_request(Role::Responder, true), Ok(1));
}

#[test]
fn default_allows_one_request_and_the_limit_can_be_raised() {
    let mut c = ClientConnection::new(ClientConfig::default());
    assert_eq!(c.config().max_concurrent_requests, 1);
    assert_eq!(c.begin_request(Role::Responder, true), Ok(1));
    assert_eq!(
        c.begin_request(Role::Responder, true),
        Err(Error::Api(ApiError::NoFreeRequestId(1)))
    );
    c.set_max_concurrent_requests(2);
    assert_eq!(c.begin_request(Role::Responder, true), Ok(2));
    let mut none = client_with(0);
    assert_eq!(
        none.begin_request(Role::Responder, true),
        Err(Error::Api(ApiError::NoFreeRequestId(0)))
    );
}

// ---------------------------------------------------------------------------------------
// What the client writes, per role (spec 5.1 - 5.3, 6.2 - 6.4)
// ---------------------------------------------------------------------------------------

#[test]
fn responder_request_exact_bytes() {
    let mut c = ClientConnection::new(ClientConfig::default());
    let id = c.begin_request(Role::Responder, false).unwrap();
    c.send_param(id, b"REQUEST_METHOD", b"POST").unwrap();
    c.send_param(id, b"CONTENT_LENGTH", b"5").unwrap();
    c.end_params(id).unwrap();
    c.send_stdin(id, Bytes::from_static(b"hello")).unwrap();
    c.end_stdin(id).unwrap();
    let block = nv_block(&[(b"REQUEST_METHOD", b"POST"), (b"CONTENT_LENGTH", b"5")]);
    assert_eq!(block.len(), 37);
    assert_eq!(
        client_output(&mut c),
        [
            vec![1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0],
            vec![1, 4, 0, 1, 0, 37, 3, 0],
            block,
            vec![0; 3],
            vec![1, 4, 0, 1, 0, 0, 0, 0],
            vec![1, 5, 0, 1, 0, 5, 3, 0],
            b"hello".to_vec(),
            vec![0; 3],
            vec![1, 5, 0, 1, 0, 0, 0, 0],
        ]
        .concat()
    );
}

#[test]
fn authorizer_sends_no_stdin() {
    let mut c = ClientConnection::new(ClientConfig::default());
    let id = c.begin_request(Role::Authorizer, true).unwrap();
    assert_eq!(
        c.send_stdin(id, Bytes::from_static(b"x")),
        Err(wrong_phase(id))
    );
    c.send_param(id, b"REMOTE_USER", b"bob").unwrap();
    c.end_params(id).unwrap();
    let queued = c.transmit_len();
    assert_eq!(
        c.send_stdin(id, Bytes::from_static(b"x")),
        Err(wrong_phase(id))
    );
    assert_eq!(c.send_stdin(id, Bytes::new()), Err(wrong_phase(id)));
    assert_eq!(c.end_stdin(id), Err(wrong_phase(id)));
    assert_eq!(
        c.send_data(id, Bytes::from_static(b"x")),
        Err(wrong_phase(id))
    );
    assert_eq!(c.transmit_len(), queued, "a refused command queues nothing");
    let kinds: Vec<u8> = client_records(&mut c).iter().map(|r| r.rtype).collect();
    assert_eq!(kinds, vec![BEGIN_REQUEST, PARAMS, PARAMS]);
}

#[test]
fn filter_sends_data_only_after_stdin_ends() {
    let mut c = ClientConnection::new(ClientConfig::default());
    let id = c.begin_request(Role::Filter, true).unwrap();
    c.end_params(id).unwrap();
    c.send_stdin(id, Bytes::from_static(b"in")).unwrap();
    assert_eq!(
        c.send_data(id, Bytes::from_static(b"d")),
        Err(wrong_phase(id))
    );
    assert_eq!(c.end_data(id), Err(wrong_phase(id)));
    c.end_stdin(id).unwrap();
    client_output(&mut c);
    assert_eq!(
        c.send_stdin(id, Bytes::from_static(b"x")),
        Err(wrong_phase(id))
    );
    c.send_data(id, Bytes::from_static(b"file")).unwrap();
    c.end_data(id).unwrap();
    assert_eq!(
        client_output(&mut c),
        [
            vec![1, 8, 0, 1, 0, 4, 4, 0, b'f', b'i', b'l', b'e', 0, 0, 0, 0],
            vec![1, 8, 0, 1, 0, 0, 0, 0],
        ]
        .concat()
    );
    assert_eq!(
        c.send_data(id, Bytes::from_static(b"x")),
        Err(wrong_phase(id))
    );
}

#[test]
fn responder_never_sends_data_and_streams_follow_their_order() {
    let mut c = ClientConnection::new(ClientConfig::default());
    let id = c.begin_request(Role::Responder, true).unwrap();
    assert_eq!(
        c.send_stdin(id, Bytes::from_static(b"x")),
        Err(wrong_phase(id))
    );
    c.send_param(id, b"A", b"b").unwrap();
    c.end_params(id).unwrap();
    assert_eq!(c.send_param(id, b"A", b"b"), Err(wrong_phase(id)));
    assert_eq!(c.end_params(id), Err(wrong_phase(id)));
    assert_eq!(
        c.send_data(id, Bytes::from_static(b"x")),
        Err(wrong_phase(id))
    );
    c.end_stdin(id).unwrap();
    assert_eq!(
        c.send_data(id, Bytes::from_static(b"x")),
        Err(wrong_phase(id))
    );
    assert_eq!(c.end_stdin(id), Err(wrong_phase(id)));
}

#[test]
fn commands_for_requests_not_in_flight_are_api_errors() {
    let mut c = ClientConnection::new(ClientConfig::default());
    let unknown = Error::Api(ApiError::UnknownRequest(4));
    assert_eq!(c.send_param(4, b"A", b"b"), Err(unknown));
    assert_eq!(c.end_params(4), Err(unknown));
    assert_eq!(c.send_stdin(4, Bytes::from_static(b"x")), Err(unknown));
    assert_eq!(c.end_stdin(4), Err(unknown));
    assert_eq!(c.send_data(4, Bytes::from_static(b"x")), Err(unknown));
    assert_eq!(c.end_data(4), Err(unknown));
    assert_eq!(c.abort(4), Err(unknown));
    assert_eq!(c.transmit_len(), 0);
}

#[test]
fn params_of_concurrent_requests_stay_apart() {
    let mut c = client_with(2);
    let a = c.begin_request(Role::Responder, true).unwrap();
    let b = c.begin_request(Role::Responder, true).unwrap();
    c.send_param(a, b"WHO", b"a1").unwrap();
    c.send_param(b, b"WHO", b"b1").unwrap();
    c.send_param(a, b"WHO", b"a2").unwrap();
    c.end_params(b).unwrap();
    c.end_params(a).unwrap();
    c.end_stdin(a).unwrap();
    c.end_stdin(b).unwrap();
    let wire = client_output(&mut c);
    let records = parse_wire(&wire);
    assert_eq!(
        stream_content(&records, PARAMS, a),
        nv_block(&[(b"WHO", b"a1"), (b"WHO", b"a2")])
    );
    assert_eq!(stream_content(&records, PARAMS, b), nv(b"WHO", b"b1"));
    let mut s = ServerConnection::new(ServerConfig::default());
    let events = feed_server(&mut s, &wire);
    let params: Vec<(u16, Vec<Vec<u8>>)> = events
        .iter()
        .filter_map(|e| match e {
            server::Event::Params { id, params } => {
                Some((*id, params.get_all(b"WHO").map(<[u8]>::to_vec).collect()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        params,
        vec![
            (b, vec![b"b1".to_vec()]),
            (a, vec![b"a1".to_vec(), b"a2".to_vec()])
        ]
    );
}

#[test]
fn params_staged_for_a_request_ended_early_do_not_leak_into_the_next_one() {
    let mut c = ClientConnection::new(ClientConfig::default());
    c.begin_request(Role::Responder, true).unwrap();
    c.send_param(1, b"OLD", b"x").unwrap();
    // The application refuses the request before its PARAMS stream ended.
    assert_eq!(
        feed_client(&mut c, &end_request_record(1, 0, 2)),
        vec![end_event(1, 0, ProtocolStatus::Overloaded)]
    );
    assert_eq!(
        c.end_params(1),
        Err(Error::Api(ApiError::UnknownRequest(1)))
    );
    client_output(&mut c);
    assert_eq!(c.begin_request(Role::Responder, true), Ok(1));
    c.send_param(1, b"NEW", b"y").unwrap();
    c.end_params(1).unwrap();
    let records = client_records(&mut c);
    assert_eq!(stream_content(&records, PARAMS, 1), nv(b"NEW", b"y"));
}

// ---------------------------------------------------------------------------------------
// ABORT_REQUEST (spec 5.4)
// ---------------------------------------------------------------------------------------

#[test]
fn abort_sends_abort_request_and_the_request_stays_in_flight() {
    let mut c = ClientConnection::new(ClientConfig::default());
    let id = c.begin_request(Role::Responder, true).unwrap();
    c.send_param(id, b"A", b"b").unwrap();
    client_output(&mut c);
    c.abort(id).unwrap();
    // The staged PARAMS go out first, then the ABORT.
    assert_eq!(
        client_output(&mut c),
        [
            record(PARAMS, 1, &nv(b"A", b"b")),
            vec![1, 2, 0, 1, 0, 0, 0, 0]
        ]
        .concat()
    );
    assert!(c.is_in_flight(id));
    assert_eq!(
        c.send_stdin(id, Bytes::from_static(b"x")),
        Err(wrong_phase(id))
    );
    // The application may still send output before it ends the request.
    assert_eq!(
        feed_client(
            &mut c,
            &[record(STDOUT, 1, b"bye"), end_request_record(1, 9, 0)].concat()
        ),
        vec![
            stdout_event(1, b"bye"),
            end_event(1, 9, ProtocolStatus::RequestComplete)
        ]
    );
    assert!(!c.is_in_flight(id));
    assert_eq!(c.abort(id), Err(Error::Api(ApiError::UnknownRequest(id))));
}

// ---------------------------------------------------------------------------------------
// What the client reports (spec 4.1, 4.2, 5.3, 5.5)
// ---------------------------------------------------------------------------------------

#[test]
fn stdout_and_stderr_interleave_in_wire_order() {
    let mut c = client_with(2);
    c.begin_request(Role::Responder, true).unwrap();
    c.begin_request(Role::Responder, true).unwrap();
    let wire = [
        record(STDOUT, 1, b"o1"),
        record(STDERR, 2, b"e2"),
        record(STDERR, 1, b"e1"),
        record(STDOUT, 2, b"o2"),
        record(STDOUT, 1, b"o1b"),
        record(STDOUT, 1, &[]),
        record(STDERR, 1, &[]),
        end_request_record(2, 0x0102_0304, 0),
        end_request_record(1, 0xFFFF_FFFF, 0),
    ]
    .concat();
    assert_eq!(
        feed_client(&mut c, &wire),
        vec![
            stdout_event(1, b"o1"),
            stderr_event(2, b"e2"),
            stderr_event(1, b"e1"),
            stdout_event(2, b"o2"),
            stdout_event(1, b"o1b"),
            end_event(2, 0x0102_0304, ProtocolStatus::RequestComplete),
            end_event(1, 0xFFFF_FFFF, ProtocolStatus::RequestComplete),
        ]
    );
}

#[test]
fn end_request_reports_every_protocol_status() {
    for (byte, status) in [
        (0u8, ProtocolStatus::RequestComplete),
        (1, ProtocolStatus::CantMpxConn),
        (2, ProtocolStatus::Overloaded),
        (3, ProtocolStatus::UnknownRole),
        (4, ProtocolStatus::Unknown(4)),
        (0xFF, ProtocolStatus::Unknown(0xFF)),
    ] {
        let mut c = ClientConnection::new(ClientConfig::default());
        c.begin_request(Role::Responder, true).unwrap();
        assert_eq!(
            feed_client(&mut c, &end_request_record(1, 42, byte)),
            vec![end_event(1, 42, status)]
        );
    }
}

#[test]
fn end_request_reserved_bytes_are_ignored() {
    let mut c = ClientConnection::new(ClientConfig::default());
    c.begin_request(Role::Responder, true).unwrap();
    let body = [0, 0, 0, 0, 0, b'o', b'.', b'p'];
    assert_eq!(
        feed_client(&mut c, &record(END_REQUEST, 1, &body)),
        vec![end_event(1, 0, ProtocolStatus::RequestComplete)]
    );
}

#[test]
fn get_values_query_exact_bytes_and_values_event() {
    let mut c = ClientConnection::new(ClientConfig::default());
    c.get_values(&[b"FCGI_MPXS_CONNS", b"FCGI_MAX_REQS"])
        .unwrap();
    let block = nv_block(&[(b"FCGI_MPXS_CONNS", b""), (b"FCGI_MAX_REQS", b"")]);
    assert_eq!(block.len(), 32);
    assert_eq!(
        client_output(&mut c),
        [vec![1, 9, 0, 0, 0, 32, 0, 0], block].concat()
    );
    let events = feed_client(
        &mut c,
        &record(
            GET_VALUES_RESULT,
            0,
            &nv_block(&[(b"FCGI_MPXS_CONNS", b"1"), (b"FCGI_MAX_REQS", b"50")]),
        ),
    );
    let mut expected = Params::new();
    expected.push(b"FCGI_MPXS_CONNS", b"1").unwrap();
    expected.push(b"FCGI_MAX_REQS", b"50").unwrap();
    assert_eq!(events, vec![Event::Values(expected)]);
    // Also while requests are in flight.
    c.begin_request(Role::Responder, true).unwrap();
    let events = feed_client(
        &mut c,
        &[
            record(STDOUT, 1, b"a"),
            record(GET_VALUES_RESULT, 0, &[]),
            record(STDOUT, 1, b"b"),
        ]
        .concat(),
    );
    assert_eq!(
        events,
        vec![
            stdout_event(1, b"a"),
            Event::Values(Params::new()),
            stdout_event(1, b"b")
        ]
    );
}

#[test]
fn unknown_type_event() {
    let mut c = ClientConnection::new(ClientConfig::default());
    assert_eq!(
        feed_client(&mut c, &[1, 11, 0, 0, 0, 8, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0]),
        vec![Event::UnknownType { record_type: 42 }]
    );
}

#[test]
fn other_management_records_are_ignored() {
    let mut c = ClientConnection::new(ClientConfig::default());
    let wire = [
        record(42, 0, b"future"),
        record(GET_VALUES, 0, &nv(b"FCGI_MPXS_CONNS", b"")),
        record(STDOUT, 0, b"nobody's"),
        record(END_REQUEST, 0, &[0; 8]),
    ]
    .concat();
    assert_eq!(feed_client(&mut c, &wire), vec![]);
    assert_eq!(c.transmit_len(), 0);
}

// ---------------------------------------------------------------------------------------
// Ids not in flight (spec 3.3), EOF and closing (spec 3.5)
// ---------------------------------------------------------------------------------------

#[test]
fn records_for_ids_not_in_flight_are_ignored() {
    let mut c = ClientConnection::new(ClientConfig::default());
    c.begin_request(Role::Responder, true).unwrap();
    let stray = [
        record(STDOUT, 2, b"not mine"),
        record(STDERR, 2, b"not mine"),
        record(STDOUT, 2, &[]),
        end(2),
        record(BEGIN_REQUEST, 7, &begin_body(RESPONDER, 0)),
    ]
    .concat();
    assert_eq!(feed_client(&mut c, &stray), vec![]);
    assert_eq!(
        feed_client(&mut c, &record(STDOUT, 1, b"mine")),
        vec![stdout_event(1, b"mine")]
    );
}

#[test]
fn a_second_end_request_for_the_same_id_is_ignored() {
    let mut c = ClientConnection::new(ClientConfig::default());
    c.begin_request(Role::Responder, true).unwrap();
    assert_eq!(
        feed_client(
            &mut c,
            &[
                end(1),
                end_request_record(1, 5, 2),
                record(STDOUT, 1, b"late")
            ]
            .concat()
        ),
        vec![end_event(1, 0, ProtocolStatus::RequestComplete)]
    );
    assert!(!c.should_close());
    assert_eq!(c.begin_request(Role::Responder, true), Ok(1));
}

#[test]
fn eof_truncates_every_request_in_flight() {
    let mut c = client_with(3);
    for _ in 0..3 {
        c.begin_request(Role::Responder, true).unwrap();
    }
    feed_client(&mut c, &[record(STDOUT, 2, b"partial"), end(2)].concat());
    assert!(!c.should_close());
    c.handle_eof();
    assert_eq!(
        drain_client_events(&mut c),
        vec![Event::Truncated { id: 1 }, Event::Truncated { id: 3 }]
    );
    assert_eq!(c.requests_in_flight(), 0);
    assert!(c.should_close());
    assert!(!c.wants_input());
    assert!(!c.can_begin());
    assert_eq!(
        c.begin_request(Role::Responder, true),
        Err(Error::Api(ApiError::Closing))
    );
    c.handle_eof();
    assert_eq!(drain_client_events(&mut c), vec![]);
    let mut input = BytesMut::from(&record(STDOUT, 1, b"x")[..]);
    assert_eq!(c.handle_input(&mut input), Ok(()));
    assert_eq!(drain_client_events(&mut c), vec![]);
}

#[test]
fn keep_conn_false_allows_no_further_request_and_closes_after_end() {
    let mut c = client_with(4);
    let id = c.begin_request(Role::Responder, false).unwrap();
    assert_eq!(
        c.begin_request(Role::Responder, true),
        Err(Error::Api(ApiError::Closing))
    );
    assert!(!c.can_begin());
    assert!(!c.should_close(), "the request is still in flight");
    feed_client(&mut c, &end(id));
    assert!(c.should_close());
    assert_eq!(
        c.begin_request(Role::Responder, true),
        Err(Error::Api(ApiError::Closing))
    );
}

#[test]
fn keep_conn_true_keeps_the_connection() {
    let mut c = ClientConnection::new(ClientConfig::default());
    for _ in 0..3 {
        let id = c.begin_request(Role::Responder, true).unwrap();
        assert_eq!(id, 1);
        feed_client(&mut c, &end(id));
        assert!(!c.should_close());
    }
}

// ---------------------------------------------------------------------------------------
// Records an application never sends (spec 8: direction of each type)
// ---------------------------------------------------------------------------------------

#[test]
fn records_only_a_web_server_sends_are_violations_for_in_flight_ids() {
    let cases: [(u8, &[u8]); 10] = [
        (BEGIN_REQUEST, &begin_body(RESPONDER, 1)),
        (ABORT_REQUEST, &[]),
        (PARAMS, b"\x01\x01ab"),
        (PARAMS, &[]),
        (STDIN, b"x"),
        (STDIN, &[]),
        (DATA, b"x"),
        (GET_VALUES, &[]),
        (GET_VALUES_RESULT, &[]),
        (UNKNOWN_TYPE, &[0; 8]),
    ];
    for (t, content) in cases {
        let mut c = ClientConnection::new(ClientConfig::default());
        c.begin_request(Role::Responder, true).unwrap();
        let err = Error::Violation(Violation::UnexpectedRecord {
            record_type: t,
            request_id: 1,
        });
        assert_eq!(
            try_feed_client(&mut c, &record(t, 1, content)),
            Err(err),
            "type {t}"
        );
        // Latched: later input gets the same error and is not consumed.
        let mut input = BytesMut::from(&end(1)[..]);
        assert_eq!(c.handle_input(&mut input), Err(err));
        assert_eq!(input.len(), 16);
        assert!(!c.wants_input());
    }
}

#[test]
fn unknown_record_types_for_in_flight_ids_are_ignored() {
    let mut c = ClientConnection::new(ClientConfig::default());
    c.begin_request(Role::Responder, true).unwrap();
    assert_eq!(
        feed_client(&mut c, &[record(99, 1, b"future"), end(1)].concat()),
        vec![end_event(1, 0, ProtocolStatus::RequestComplete)]
    );
}

// ---------------------------------------------------------------------------------------
// Back-pressure
// ---------------------------------------------------------------------------------------

/// A full transmit queue refuses more body bytes, but never holds the response back: the
/// web-server side writes nothing because of what it reads, and stopping its reads while an
/// upload waits for the application would deadlock a full-duplex exchange (the application
/// may answer before it reads the body).
#[test]
fn send_stdin_refused_when_the_transmit_queue_is_full_but_responses_still_flow() {
    let mut limits = Limits::default();
    limits.max_buffered_output = 2048;
    let mut config = ClientConfig::default();
    config.limits = limits;
    let mut c = ClientConnection::new(config);
    let id = c.begin_request(Role::Responder, true).unwrap();
    c.end_params(id).unwrap();
    c.send_stdin(id, pattern(3000)).unwrap();
    assert_eq!(c.send_capacity(), 0);
    assert_eq!(
        c.send_stdin(id, Bytes::from_static(b"x")),
        Err(Error::Api(ApiError::OutputFull))
    );
    assert!(
        c.wants_input(),
        "a full transmit queue does not stop the client's input"
    );
    let mut input = BytesMut::from(&record(STDOUT, 1, b"x")[..]);
    c.handle_input(&mut input).unwrap();
    assert!(
        input.is_empty(),
        "the response is read while the upload waits"
    );
    assert!(matches!(c.poll_event(), Some(Event::Stdout { id: 1, .. })));
    client_output(&mut c);
    c.send_stdin(id, Bytes::from_static(b"x")).unwrap();
}

#[test]
fn stdout_input_waits_until_events_are_polled() {
    let mut limits = Limits::default();
    limits.max_buffered_input = 500;
    let mut config = ClientConfig::default();
    config.limits = limits;
    let mut c = ClientConnection::new(config);
    c.begin_request(Role::Responder, true).unwrap();
    let body = pattern(5000);
    let mut wire = Vec::new();
    for piece in body.chunks(200) {
        wire.extend(record(STDOUT, 1, piece));
    }
    wire.extend(end(1));
    let mut input = BytesMut::from(&wire[..]);
    c.handle_input(&mut input).unwrap();
    assert!(!input.is_empty());
    assert!(!c.wants_input());
    let mut got = Vec::new();
    let mut ended = false;
    let mut rounds = 0;
    loop {
        let events = drain_client_events(&mut c);
        assert!(events.len() <= 4, "{} events queued at once", events.len());
        for e in events {
            match e {
                Event::Stdout { data, .. } => got.extend_from_slice(&data),
                Event::EndRequest { .. } => ended = true,
                other => panic!("{other:?}"),
            }
        }
        if input.is_empty() && c.poll_event().is_none() {
            break;
        }
        c.handle_input(&mut input).unwrap();
        rounds += 1;
        assert!(rounds < 200);
    }
    assert!(ended);
    assert_eq!(got, body);
}

// ---------------------------------------------------------------------------------------
// Round trip: our client against our server, for each role
// ---------------------------------------------------------------------------------------

/// Drives both sides to completion; the application echoes STDIN (and DATA) to STDOUT and
/// writes a note on STDERR.
fn round_trip(role: Role, stdin: &[u8], data: &[u8]) -> (Vec<Event>, Params) {
    let mut c = ClientConnection::new(ClientConfig::default());
    let mut config = ServerConfig::default();
    config.roles = RoleSet::ALL;
    let mut s = ServerConnection::new(config);
    let id = c.begin_request(role, false).unwrap();
    c.send_param(id, b"ROLE", format!("{role:?}").as_bytes())
        .unwrap();
    c.send_param(id, b"BIG", &[b'b'; 70_000]).unwrap();
    c.end_params(id).unwrap();
    if role != Role::Authorizer {
        c.send_stdin(id, Bytes::copy_from_slice(stdin)).unwrap();
        c.end_stdin(id).unwrap();
    }
    if role == Role::Filter {
        c.send_data(id, Bytes::copy_from_slice(data)).unwrap();
        c.end_data(id).unwrap();
    }
    let to_server = client_output(&mut c);
    let mut got_params = None;
    for e in feed_server(&mut s, &to_server) {
        match e {
            server::Event::Params { id, params } => {
                got_params = Some(params);
                if role != Role::Filter {
                    s.send_stderr(id, Bytes::from_static(b"note")).unwrap();
                }
                if role == Role::Authorizer {
                    s.send_stdout(id, Bytes::from_static(b"Status: 200\r\n\r\n"))
                        .unwrap();
                    s.end_request(id, 0, ProtocolStatus::RequestComplete)
                        .unwrap();
                }
            }
            server::Event::Stdin { id, data } if role == Role::Responder => {
                s.send_stdout(id, data).unwrap();
            }
            server::Event::Data { id, data } => s.send_stdout(id, data).unwrap(),
            server::Event::StdinEnd { id } if role == Role::Responder => {
                s.end_request(id, 0, ProtocolStatus::RequestComplete)
                    .unwrap();
            }
            server::Event::DataEnd { id } => {
                s.end_request(id, 3, ProtocolStatus::RequestComplete)
                    .unwrap();
            }
            _ => {}
        }
    }
    assert!(s.should_close());
    let events = merge_client_events(feed_client(&mut c, &server_output(&mut s)));
    assert!(c.should_close());
    (events, got_params.unwrap())
}

#[test]
fn round_trip_responder() {
    let stdin = pattern(100_000);
    let (events, params) = round_trip(Role::Responder, &stdin, b"");
    assert_eq!(params.get_str("ROLE"), Some("Responder"));
    assert_eq!(params.get(b"BIG").map(<[u8]>::len), Some(70_000));
    assert_eq!(
        events,
        vec![
            stderr_event(1, b"note"),
            Event::Stdout { id: 1, data: stdin },
            end_event(1, 0, ProtocolStatus::RequestComplete)
        ]
    );
}

#[test]
fn round_trip_authorizer() {
    let (events, params) = round_trip(Role::Authorizer, b"", b"");
    assert_eq!(params.get_str("ROLE"), Some("Authorizer"));
    assert_eq!(
        events,
        vec![
            stderr_event(1, b"note"),
            stdout_event(1, b"Status: 200\r\n\r\n"),
            end_event(1, 0, ProtocolStatus::RequestComplete)
        ]
    );
}

#[test]
fn round_trip_filter() {
    let (events, params) = round_trip(Role::Filter, b"ignored body", &pattern(3000));
    assert_eq!(params.get_str("ROLE"), Some("Filter"));
    // The Filter application echoes DATA only.
    assert_eq!(
        events,
        vec![
            Event::Stdout {
                id: 1,
                data: pattern(3000)
            },
            end_event(1, 3, ProtocolStatus::RequestComplete)
        ]
    );
}

/// `send_params` copies the pre-encoded pairs; its output must be byte-for-byte what adding
/// the same pairs one by one with `send_param` gives: packed into records, a pair split only
/// when it is larger than a record, after whatever pairs were already staged.
#[test]
fn send_params_writes_exactly_what_send_param_writes() {
    let big = vec![b'v'; 70_000];
    let medium = vec![b'm'; 30_000];
    let sets: Vec<Vec<(Vec<u8>, Vec<u8>)>> = vec![
        vec![],
        vec![
            (b"A".to_vec(), b"1".to_vec()),
            (b"EMPTY".to_vec(), Vec::new()),
        ],
        (0..40)
            .map(|i| (format!("HTTP_X_{i}").into_bytes(), vec![b'a'; 200 * i]))
            .collect(),
        vec![
            (b"SMALL".to_vec(), b"x".to_vec()),
            (b"BIG".to_vec(), big.clone()),
            (b"AFTER".to_vec(), b"y".to_vec()),
        ],
        vec![
            (b"M1".to_vec(), medium.clone()),
            (b"M2".to_vec(), medium.clone()),
            (b"M3".to_vec(), medium),
        ],
    ];
    for (n, pairs) in sets.iter().enumerate() {
        let mut params = Params::new();
        for (name, value) in pairs {
            params.push(name, value).unwrap();
        }
        let wire = |bulk: bool| {
            let mut c = ClientConnection::new(ClientConfig::default());
            let id = c.begin_request(Role::Responder, false).unwrap();
            // One pair staged before, so that both paths start mid-record.
            c.send_param(id, b"FIRST", b"0").unwrap();
            if bulk {
                c.send_params(id, &params).unwrap();
            } else {
                for (name, value) in params.iter() {
                    c.send_param(id, name, value).unwrap();
                }
            }
            c.end_params(id).unwrap();
            let mut out = Vec::new();
            while let Some(b) = c.poll_transmit() {
                out.extend_from_slice(&b);
            }
            out
        };
        assert_eq!(wire(true), wire(false), "param set {n}");
    }
}

/// A stream ends at its empty record: `STDOUT` (or `STDERR`) the application sends after it
/// is not part of the response. It is dropped and reported as `AfterStreamEnd`, never
/// delivered as more response bytes; the request still ends with its `END_REQUEST`.
#[test]
fn stream_bytes_after_the_terminator_are_dropped_and_reported() {
    let mut c = client_with(1);
    let id = c.begin_request(Role::Responder, true).unwrap();
    c.end_params(id).unwrap();
    c.end_stdin(id).unwrap();
    while c.poll_transmit().is_some() {}
    let events = feed_client(
        &mut c,
        &[
            record(STDOUT, id, b"Status: 200\r\n\r\nbody"),
            record(STDOUT, id, &[]),
            record(STDOUT, id, b"INJECTED"),
            record(STDERR, id, b"warn"),
            record(STDERR, id, &[]),
            record(STDERR, id, b"late"),
            end(id),
        ]
        .concat(),
    );
    assert_eq!(
        events,
        vec![
            stdout_event(id, b"Status: 200\r\n\r\nbody"),
            Event::AfterStreamEnd {
                id,
                stderr: false,
                len: 8
            },
            stderr_event(id, b"warn"),
            Event::AfterStreamEnd {
                id,
                stderr: true,
                len: 4
            },
            end_event(id, 0, ProtocolStatus::RequestComplete),
        ]
    );
}
