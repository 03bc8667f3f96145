//! Record layer behaviour (spec sections 3.3, 5.1, 5.5 and 8): header and fixed-body codecs,
//! preservation of unknown values, padding on input and output, streaming decoding, and the
//! zero-copy handling of stream payloads.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use fcgi_core::client::{self, ClientConfig, ClientConnection};
use fcgi_core::record::{
    BeginRequestBody, Decoder, EndRequestBody, Fragment, HEADER_LEN, Header, KEEP_CONN,
    MAX_ALIGNED_CONTENT_LEN, MAX_CONTENT_LEN, NULL_REQUEST_ID, Padding, ProtocolStatus, Record,
    RecordReader, RecordType, Role, UnknownTypeBody, VERSION_1,
};
use fcgi_core::server::{self, RoleSet, ServerConfig, ServerConnection};
use fcgi_core::{Error, Malformed, Params};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// Headers and type bytes (spec 3.3, 8)
// ---------------------------------------------------------------------------------------

const ALL_TYPES: [(u8, RecordType); 11] = [
    (1, RecordType::BeginRequest),
    (2, RecordType::AbortRequest),
    (3, RecordType::EndRequest),
    (4, RecordType::Params),
    (5, RecordType::Stdin),
    (6, RecordType::Stdout),
    (7, RecordType::Stderr),
    (8, RecordType::Data),
    (9, RecordType::GetValues),
    (10, RecordType::GetValuesResult),
    (11, RecordType::UnknownType),
];

#[test]
fn header_encodes_and_decodes_every_known_type_exactly() {
    for (byte, rt) in ALL_TYPES {
        let h = Header::new(rt, 0x1234, 0xABCD, 0x5A);
        let expected = [1, byte, 0x12, 0x34, 0xAB, 0xCD, 0x5A, 0];
        assert_eq!(h.to_array(), expected, "{rt:?}");
        let mut out = Vec::new();
        h.encode(&mut out);
        assert_eq!(out, expected);
        let parsed = Header::parse(&expected).unwrap();
        assert_eq!(parsed, h);
        assert_eq!(parsed.record_type, rt);
        assert_eq!(parsed.body_len(), 0xABCD + 0x5A);
        assert_eq!(RecordType::from(byte), rt);
        assert_eq!(u8::from(rt), byte);
    }
}

#[test]
fn header_preserves_unknown_type_byte() {
    for byte in [0u8, 12, 42, 0x80, 0xFF] {
        let parsed = Header::parse(&[1, byte, 0, 0, 0, 8, 0, 0]).unwrap();
        assert_eq!(parsed.record_type, RecordType::Unknown(byte));
        assert_eq!(parsed.to_array()[1], byte);
        assert!(!parsed.record_type.is_stream());
    }
}

#[test]
fn record_type_byte_round_trips_for_all_256_values() {
    for b in 0..=255u8 {
        let rt = RecordType::from(b);
        assert_eq!(u8::from(rt), b);
        assert_eq!(rt.is_stream(), (4..=8).contains(&b), "type {b}");
        assert_eq!(matches!(rt, RecordType::Unknown(_)), !(1..=11).contains(&b));
    }
}

#[test]
fn header_parse_needs_eight_bytes_and_ignores_reserved_and_version() {
    assert_eq!(Header::parse(&[1, 5, 0, 1, 0, 0, 0]), None);
    assert_eq!(Header::parse(&[]), None);
    // Reserved byte 0xEE is ignored on input and written as 0; extra bytes are ignored.
    let h = Header::parse(&[1, 5, 0, 1, 0, 3, 5, 0xEE, 9, 9]).unwrap();
    assert_eq!(h, Header::new(RecordType::Stdin, 1, 3, 5));
    assert_eq!(h.to_array()[7], 0);
    // An unknown version is kept for the caller to report, not rejected by the codec.
    let v2 = Header::parse(&[2, 1, 0, 1, 0, 8, 0, 0]).unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(HEADER_LEN, 8);
    assert_eq!(VERSION_1, 1);
    assert_eq!(NULL_REQUEST_ID, 0);
}

// ---------------------------------------------------------------------------------------
// Fixed bodies, Role, ProtocolStatus (spec 4.2, 5.1, 5.5)
// ---------------------------------------------------------------------------------------

#[test]
fn role_values_round_trip_and_unknown_roles_are_preserved() {
    assert_eq!(Role::from(1), Role::Responder);
    assert_eq!(Role::from(2), Role::Authorizer);
    assert_eq!(Role::from(3), Role::Filter);
    for v in 0..=u16::MAX {
        let r = Role::from(v);
        assert_eq!(u16::from(r), v);
        assert_eq!(matches!(r, Role::Unknown(_)), !(1..=3).contains(&v));
    }
    let b = BeginRequestBody::parse(&[0xBE, 0xEF, 0, 0, 0, 0, 0, 0]).unwrap();
    assert_eq!(b.role, Role::Unknown(0xBEEF));
    assert_eq!(b.to_array(), [0xBE, 0xEF, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn protocol_status_values_round_trip_and_unknown_values_are_preserved() {
    let known = [
        (0, ProtocolStatus::RequestComplete),
        (1, ProtocolStatus::CantMpxConn),
        (2, ProtocolStatus::Overloaded),
        (3, ProtocolStatus::UnknownRole),
    ];
    for (b, s) in known {
        assert_eq!(ProtocolStatus::from(b), s);
    }
    for v in 0..=255u8 {
        let s = ProtocolStatus::from(v);
        assert_eq!(u8::from(s), v);
        assert_eq!(matches!(s, ProtocolStatus::Unknown(_)), v > 3);
    }
    let e = EndRequestBody::parse(&[0, 0, 0, 0, 0x77, 0, 0, 0]).unwrap();
    assert_eq!(e.protocol_status, ProtocolStatus::Unknown(0x77));
    assert_eq!(e.to_array()[4], 0x77);
}

#[test]
fn begin_request_body_exact_bytes_flags_and_reserved() {
    let b = BeginRequestBody {
        role: Role::Filter,
        keep_conn: true,
    };
    assert_eq!(b.to_array(), [0, 3, 1, 0, 0, 0, 0, 0]);
    let b = BeginRequestBody {
        role: Role::Authorizer,
        keep_conn: false,
    };
    assert_eq!(b.to_array(), [0, 2, 0, 0, 0, 0, 0, 0]);
    assert_eq!(KEEP_CONN, 1);
    // Unknown flag bits and reserved bytes are ignored; only bit 0 is keep_conn.
    let p = BeginRequestBody::parse(&[0, 1, 0xFF, 9, 9, 9, 9, 9]).unwrap();
    assert_eq!((p.role, p.keep_conn), (Role::Responder, true));
    let p = BeginRequestBody::parse(&[0, 1, 0xFE, 0, 0, 0, 0, 0]).unwrap();
    assert!(!p.keep_conn);
}

#[test]
fn end_request_body_exact_bytes_and_garbage_reserved_ignored() {
    let e = EndRequestBody {
        app_status: 0x0102_0304,
        protocol_status: ProtocolStatus::UnknownRole,
    };
    assert_eq!(e.to_array(), [1, 2, 3, 4, 3, 0, 0, 0]);
    let parsed = EndRequestBody::parse(&[0xFF, 0xFF, 0xFF, 0xFE, 2, b'o', b'.', b'p']).unwrap();
    assert_eq!(parsed.app_status, 0xFFFF_FFFE);
    assert_eq!(parsed.protocol_status, ProtocolStatus::Overloaded);
}

#[test]
fn unknown_type_body_exact_bytes() {
    let u = UnknownTypeBody { record_type: 0x2A };
    assert_eq!(u.to_array(), [0x2A, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        UnknownTypeBody::parse(&[200, 1, 2, 3, 4, 5, 6, 7])
            .unwrap()
            .record_type,
        200
    );
}

#[test]
fn fixed_bodies_of_wrong_length_are_malformed() {
    for len in [0usize, 7, 9, 16] {
        let content = vec![0u8; len];
        assert_eq!(
            BeginRequestBody::parse(&content),
            Err(Error::Malformed(Malformed::BodyLength {
                record: "BEGIN_REQUEST",
                len
            }))
        );
        assert_eq!(
            EndRequestBody::parse(&content),
            Err(Error::Malformed(Malformed::BodyLength {
                record: "END_REQUEST",
                len
            }))
        );
        assert_eq!(
            UnknownTypeBody::parse(&content),
            Err(Error::Malformed(Malformed::BodyLength {
                record: "UNKNOWN_TYPE",
                len
            }))
        );
    }
}

#[test]
fn connections_reject_fixed_bodies_of_wrong_length() {
    let mut s = ServerConnection::new(ServerConfig::default());
    let bad_begin = record(BEGIN_REQUEST, 1, &[0, 1, 0, 0, 0, 0, 0]);
    assert_eq!(
        try_feed_server(&mut s, &bad_begin),
        Err(Error::Malformed(Malformed::BodyLength {
            record: "BEGIN_REQUEST",
            len: 7
        }))
    );
    let mut c = ClientConnection::new(ClientConfig::default());
    c.begin_request(Role::Responder, true).unwrap();
    let bad_end = record(END_REQUEST, 1, &[0; 9]);
    assert_eq!(
        try_feed_client(&mut c, &bad_end),
        Err(Error::Malformed(Malformed::BodyLength {
            record: "END_REQUEST",
            len: 9
        }))
    );
}

// ---------------------------------------------------------------------------------------
// Padding on input: any value 0..=255 accepted, on every record type (spec 3.3)
// ---------------------------------------------------------------------------------------

/// Everything a server can receive: a Responder request with every stream non-empty and
/// terminated, a Filter request with STDIN and DATA, an Authorizer request with the empty
/// STDIN some servers send, an ABORT, a GET_VALUES and an unknown management type.
fn server_conversation(pad: u8) -> Vec<u8> {
    let rec = |t, id, c: &[u8]| record_padded(t, id, c, pad);
    let block = nv_block(&[(b"REQUEST_METHOD", b"POST"), (b"N", &[b'v'; 200])]);
    let mut w = Vec::new();
    w.extend(rec(BEGIN_REQUEST, 1, &begin_body(RESPONDER, 1)));
    w.extend(rec(PARAMS, 1, &block));
    w.extend(rec(PARAMS, 1, &[]));
    w.extend(rec(STDIN, 1, b"body bytes"));
    w.extend(rec(STDIN, 1, &[]));
    w.extend(rec(BEGIN_REQUEST, 2, &begin_body(FILTER, 1)));
    w.extend(rec(PARAMS, 2, &block));
    w.extend(rec(PARAMS, 2, &[]));
    w.extend(rec(STDIN, 2, b"in"));
    w.extend(rec(STDIN, 2, &[]));
    w.extend(rec(DATA, 2, b"file data"));
    w.extend(rec(DATA, 2, &[]));
    w.extend(rec(BEGIN_REQUEST, 3, &begin_body(AUTHORIZER, 1)));
    w.extend(rec(PARAMS, 3, &[]));
    w.extend(rec(STDIN, 3, &[]));
    w.extend(rec(ABORT_REQUEST, 3, &[]));
    w.extend(rec(GET_VALUES, 0, &nv(b"FCGI_MPXS_CONNS", b"")));
    w.extend(rec(42, 0, &[1, 2, 3]));
    w
}

#[test]
fn server_accepts_every_padding_length_on_every_record_type() {
    let run = |pad: u8| {
        let mut config = ServerConfig::default();
        config.roles = RoleSet::ALL;
        let mut s = ServerConnection::new(config);
        let events = merge_server_events(feed_server(&mut s, &server_conversation(pad)));
        (events, server_output(&mut s))
    };
    let (reference, reference_out) = run(0);
    assert_eq!(reference.len(), 13, "{reference:?}");
    assert!(reference.contains(&server::Event::Data {
        id: 2,
        data: Bytes::from_static(b"file data")
    }));
    assert!(reference.contains(&server::Event::Abort { id: 3 }));
    // GET_VALUES_RESULT (32 bytes) and UNKNOWN_TYPE (16 bytes).
    assert_eq!(reference_out.len(), 32 + 16);
    for pad in 1..=255u8 {
        let (events, out) = run(pad);
        assert_eq!(events, reference, "padding {pad}");
        assert_eq!(out, reference_out, "padding {pad}");
    }
}

fn client_conversation(pad: u8) -> Vec<u8> {
    let rec = |t, id, c: &[u8]| record_padded(t, id, c, pad);
    let mut w = Vec::new();
    w.extend(rec(STDERR, 1, b"warning"));
    w.extend(rec(STDOUT, 1, b"Status: 200\r\n\r\nhello"));
    w.extend(rec(STDOUT, 1, &[]));
    w.extend(rec(STDERR, 1, &[]));
    w.extend(rec(END_REQUEST, 1, &[0, 0, 0, 7, 0, 0, 0, 0]));
    w.extend(rec(GET_VALUES_RESULT, 0, &nv(b"FCGI_MPXS_CONNS", b"1")));
    w.extend(rec(UNKNOWN_TYPE, 0, &[42, 0, 0, 0, 0, 0, 0, 0]));
    w
}

#[test]
fn client_accepts_every_padding_length_on_every_record_type() {
    let run = |pad: u8| {
        let mut c = ClientConnection::new(ClientConfig::default());
        assert_eq!(c.begin_request(Role::Responder, true).unwrap(), 1);
        merge_client_events(feed_client(&mut c, &client_conversation(pad)))
    };
    let reference = run(0);
    let mut values = Params::new();
    values.push(b"FCGI_MPXS_CONNS", b"1").unwrap();
    assert_eq!(
        reference,
        vec![
            client::Event::Stderr {
                id: 1,
                data: Bytes::from_static(b"warning")
            },
            client::Event::Stdout {
                id: 1,
                data: Bytes::from_static(b"Status: 200\r\n\r\nhello")
            },
            client::Event::EndRequest {
                id: 1,
                app_status: 7,
                protocol_status: ProtocolStatus::RequestComplete
            },
            client::Event::Values(values),
            client::Event::UnknownType { record_type: 42 },
        ]
    );
    for pad in 1..=255u8 {
        assert_eq!(run(pad), reference, "padding {pad}");
    }
}

#[test]
fn padding_split_across_inputs_is_skipped() {
    // A STDIN record with 255 garbage padding bytes, fed so that the padding straddles
    // several inputs, followed by the terminator.
    let mut s = ServerConnection::new(ServerConfig::default());
    feed_server(
        &mut s,
        &[begin(1, RESPONDER, true), record(PARAMS, 1, &[])].concat(),
    );
    let wire = [record_padded(STDIN, 1, b"abc", 255), record(STDIN, 1, &[])].concat();
    let mut events = Vec::new();
    for piece in wire.chunks(100) {
        events.extend(feed_server(&mut s, piece));
    }
    assert_eq!(
        events,
        vec![
            server::Event::Stdin {
                id: 1,
                data: Bytes::from_static(b"abc")
            },
            server::Event::StdinEnd { id: 1 }
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Padding on output (spec 3.3: pad to 8; content + padding within 65535)
// ---------------------------------------------------------------------------------------

#[test]
fn padding_policy_values() {
    for len in 0..64usize {
        let pad = usize::from(Padding::Align8.padding_for(len));
        assert!(pad < 8 && (len + pad) % 8 == 0, "len {len}");
        assert_eq!(Padding::None.padding_for(len), 0);
    }
    // Content + padding never passes 65535: above 65528 there is no room to align.
    assert_eq!(Padding::Align8.padding_for(65527), 1);
    assert_eq!(Padding::Align8.padding_for(65528), 0);
    for len in 65529..=65535 {
        assert_eq!(Padding::Align8.padding_for(len), 0, "len {len}");
    }
    assert_eq!(Padding::default(), Padding::Align8);
    assert_eq!(Padding::Align8.max_content_len(), 65528);
    assert_eq!(Padding::None.max_content_len(), 65535);
    assert_eq!(MAX_ALIGNED_CONTENT_LEN, 65528);
    assert_eq!(MAX_CONTENT_LEN, 65535);
}

/// A server with request 1 (Responder) past its PARAMS, so it may write.
fn server_ready(padding: Padding) -> ServerConnection {
    let mut config = ServerConfig::default();
    config.padding = padding;
    let mut s = ServerConnection::new(config);
    feed_server(
        &mut s,
        &[begin(1, RESPONDER, true), record(PARAMS, 1, &[])].concat(),
    );
    s
}

fn client_ready(padding: Padding) -> ClientConnection {
    let mut config = ClientConfig::default();
    config.padding = padding;
    let mut c = ClientConnection::new(config);
    let id = c.begin_request(Role::Responder, true).unwrap();
    c.end_params(id).unwrap();
    client_output(&mut c);
    c
}

#[test]
fn server_stdout_output_is_aligned_and_records_stay_within_65535() {
    for (len, expected) in [
        (65535usize, vec![(65528usize, 0usize), (7, 1)]),
        (70000, vec![(65528, 0), (4472, 0)]),
        (65528, vec![(65528, 0)]),
        (13, vec![(13, 3)]),
    ] {
        let mut s = server_ready(Padding::Align8);
        let payload = pattern(len);
        s.send_stdout(1, payload.clone()).unwrap();
        let records = server_records(&mut s);
        assert_aligned(&records);
        let shape: Vec<(usize, usize)> = records
            .iter()
            .map(|r| (r.content.len(), r.padding.len()))
            .collect();
        assert_eq!(shape, expected, "send of {len}");
        assert!(records.iter().all(|r| r.rtype == STDOUT && r.id == 1));
        assert_eq!(stream_content(&records, STDOUT, 1), payload);
    }
}

#[test]
fn server_stderr_and_fixed_records_are_aligned() {
    let mut s = server_ready(Padding::Align8);
    s.send_stderr(1, pattern(70001)).unwrap();
    s.end_request(1, 0, ProtocolStatus::RequestComplete)
        .unwrap();
    let records = server_records(&mut s);
    assert_aligned(&records);
    let shape: Vec<(u8, usize, usize)> = records
        .iter()
        .map(|r| (r.rtype, r.content.len(), r.padding.len()))
        .collect();
    assert_eq!(
        shape,
        vec![
            (STDERR, 65528, 0),
            (STDERR, 4473, 7),
            (STDOUT, 0, 0),
            (STDERR, 0, 0),
            (END_REQUEST, 8, 0)
        ]
    );
}

#[test]
fn client_stdin_output_is_aligned_and_records_stay_within_65535() {
    for (len, expected) in [
        (65535usize, vec![(65528usize, 0usize), (7, 1)]),
        (70000, vec![(65528, 0), (4472, 0)]),
    ] {
        let mut c = client_ready(Padding::Align8);
        let payload = pattern(len);
        c.send_stdin(1, payload.clone()).unwrap();
        let records = client_records(&mut c);
        assert_aligned(&records);
        let shape: Vec<(usize, usize)> = records
            .iter()
            .map(|r| (r.content.len(), r.padding.len()))
            .collect();
        assert_eq!(shape, expected, "send of {len}");
        assert_eq!(stream_content(&records, STDIN, 1), payload);
    }
}

#[test]
fn padding_none_is_configurable_on_both_sides() {
    let mut s = server_ready(Padding::None);
    s.send_stdout(1, pattern(70000)).unwrap();
    s.send_stdout(1, Bytes::from_static(b"abc")).unwrap();
    s.end_request(1, 5, ProtocolStatus::RequestComplete)
        .unwrap();
    let out = server_output(&mut s);
    let records = parse_wire(&out);
    let shape: Vec<(u8, usize, usize)> = records
        .iter()
        .map(|r| (r.rtype, r.content.len(), r.padding.len()))
        .collect();
    assert_eq!(
        shape,
        vec![
            (STDOUT, 65535, 0),
            (STDOUT, 4465, 0),
            (STDOUT, 3, 0),
            (STDOUT, 0, 0),
            (END_REQUEST, 8, 0)
        ]
    );
    assert_eq!(
        &out[out.len() - 16..],
        &[1, 3, 0, 1, 0, 8, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0]
    );

    let mut config = ClientConfig::default();
    config.padding = Padding::None;
    let mut c = ClientConnection::new(config);
    c.begin_request(Role::Responder, false).unwrap();
    c.send_param(1, b"A", b"b").unwrap();
    c.end_params(1).unwrap();
    c.send_stdin(1, pattern(65536)).unwrap();
    let records = client_records(&mut c);
    let shape: Vec<(u8, usize, usize)> = records
        .iter()
        .map(|r| (r.rtype, r.content.len(), r.padding.len()))
        .collect();
    assert_eq!(
        shape,
        vec![
            (BEGIN_REQUEST, 8, 0),
            (PARAMS, 4, 0),
            (PARAMS, 0, 0),
            (STDIN, 65535, 0),
            (STDIN, 1, 0)
        ]
    );
}

#[test]
fn a_get_values_query_above_65528_bytes_is_not_padded_past_65535() {
    // One name of 65524 bytes: 4 + 1 + 65524 = 65529 content bytes, no room for padding.
    let name = vec![b'n'; 65524];
    let mut c = ClientConnection::new(ClientConfig::default());
    c.get_values(&[&name]).unwrap();
    let records = client_records(&mut c);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].content.len(), 65529);
    assert!(records[0].padding.is_empty());
    assert_eq!(parse_nv_block(&records[0].content).unwrap()[0].0, name);
    // A query that cannot fit one record is refused, nothing queued.
    let name = vec![b'n'; 65531];
    assert!(c.get_values(&[&name]).is_err());
    assert_eq!(c.transmit_len(), 0);
}

// ---------------------------------------------------------------------------------------
// Streaming decoding: chunking never changes the result
// ---------------------------------------------------------------------------------------

fn read_all(reader: &mut RecordReader, input: &mut BytesMut) -> Vec<Record> {
    std::iter::from_fn(|| reader.read(input)).collect()
}

/// Records via `RecordReader`, the input fed in pieces of the given sizes (cycled).
fn records_chunked(wire: &[u8], sizes: &[usize]) -> Vec<Record> {
    let mut reader = RecordReader::new();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < wire.len() {
        let n = sizes[i % sizes.len()].max(1).min(wire.len() - pos);
        i += 1;
        let mut input = BytesMut::from(&wire[pos..pos + n]);
        pos += n;
        out.extend(read_all(&mut reader, &mut input));
        assert!(input.is_empty());
    }
    assert!(reader.is_at_boundary());
    out
}

/// Content fragments joined per header, via the raw `Decoder`.
fn decoder_chunked(wire: &[u8], sizes: &[usize]) -> Vec<(Header, Vec<u8>)> {
    let mut d = Decoder::new();
    let mut out: Vec<(Header, Vec<u8>)> = Vec::new();
    let mut open: Option<(Header, Vec<u8>)> = None;
    let mut pos = 0;
    let mut i = 0;
    while pos < wire.len() {
        let n = sizes[i % sizes.len()].max(1).min(wire.len() - pos);
        i += 1;
        let mut input = BytesMut::from(&wire[pos..pos + n]);
        pos += n;
        while let Some(f) = d.decode(&mut input) {
            match f {
                Fragment::Header(h) => {
                    assert!(open.is_none());
                    open = Some((h, Vec::new()));
                }
                Fragment::Content(c) => {
                    assert!(!c.is_empty(), "empty content fragment");
                    open.as_mut().unwrap().1.extend_from_slice(&c);
                }
                Fragment::End(h) => {
                    let (oh, content) = open.take().unwrap();
                    assert_eq!(oh, h);
                    out.push((h, content));
                }
            }
        }
        assert!(input.is_empty());
    }
    assert!(d.is_at_boundary() && open.is_none());
    out
}

fn sample_wire() -> Vec<u8> {
    [
        begin(1, RESPONDER, true),
        record_padded(PARAMS, 1, &nv(b"NAME", &[b'x'; 300]), 255),
        record(PARAMS, 1, &[]),
        record_padded(STDIN, 1, &pattern(1000), 3),
        record_padded(STDIN, 1, &[], 17),
        raw_record(1, 200, 7, b"unknown", &[]),
        record(GET_VALUES, 0, &nv(b"FCGI_MAX_REQS", b"")),
    ]
    .concat()
}

#[test]
fn one_byte_at_a_time_gives_the_same_records_as_the_whole_buffer() {
    let wire = sample_wire();
    let whole = records_chunked(&wire, &[wire.len()]);
    assert_eq!(whole.len(), 7);
    assert_eq!(whole[1].content.len(), 1 + 4 + 4 + 300);
    assert_eq!(whole[3].content, pattern(1000));
    assert_eq!(whole[5].header.record_type, RecordType::Unknown(200));
    assert_eq!(records_chunked(&wire, &[1]), whole);
    let whole_frags = decoder_chunked(&wire, &[wire.len()]);
    let bytewise = decoder_chunked(&wire, &[1]);
    assert_eq!(bytewise, whole_frags);
    let as_records: Vec<(Header, Vec<u8>)> = whole
        .iter()
        .map(|r| (r.header, r.content.to_vec()))
        .collect();
    assert_eq!(whole_frags, as_records);
}

#[test]
fn decoder_reports_boundary_only_between_records() {
    let wire = record_padded(STDIN, 1, b"abc", 2);
    let mut d = Decoder::new();
    assert!(d.is_at_boundary());
    for (i, b) in wire.iter().enumerate() {
        let mut input = BytesMut::from(&[*b][..]);
        while d.decode(&mut input).is_some() {}
        let last = i == wire.len() - 1;
        assert_eq!(d.is_at_boundary(), last, "after byte {i}");
    }
}

fn arb_record() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u8>(),
        any::<u16>(),
        prop::collection::vec(any::<u8>(), 0..300),
        prop::collection::vec(any::<u8>(), 0..=255),
    )
        .prop_map(|(t, id, content, padding)| raw_record(1, t, id, &content, &padding))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(proptest_cases()))]

    #[test]
    fn any_chunking_gives_identical_records(
        records in prop::collection::vec(arb_record(), 0..8),
        sizes in prop::collection::vec(1usize..64, 1..8),
    ) {
        let wire = records.concat();
        let whole = records_chunked(&wire, &[wire.len().max(1)]);
        prop_assert_eq!(whole.len(), records.len());
        for (r, raw) in whole.iter().zip(&records) {
            prop_assert_eq!(&r.header.to_array()[..7], &raw[..7]);
            prop_assert_eq!(&r.content[..], &raw[8..8 + r.content.len()]);
        }
        prop_assert_eq!(&records_chunked(&wire, &sizes), &whole);
        prop_assert_eq!(&records_chunked(&wire, &[1]), &whole);
        prop_assert_eq!(decoder_chunked(&wire, &sizes), decoder_chunked(&wire, &[1]));
    }
}

// ---------------------------------------------------------------------------------------
// Zero copy: stream payloads are not copied (in or out)
// ---------------------------------------------------------------------------------------

fn points_into(data: &[u8], base: *const u8, len: usize) -> bool {
    let start = base as usize;
    let p = data.as_ptr() as usize;
    p >= start && p + data.len() <= start + len
}

#[test]
fn server_stdin_payload_points_into_the_input_allocation() {
    let mut s = ServerConnection::new(ServerConfig::default());
    let wire = responder_request(1, true, &[(b"A", b"b")], &pattern(5000));
    let mut input = BytesMut::from(&wire[..]);
    let (base, len) = (input.as_ptr(), input.len());
    s.handle_input(&mut input).unwrap();
    assert!(input.is_empty());
    let stdin: Vec<Bytes> = drain_server_events(&mut s)
        .into_iter()
        .filter_map(|e| match e {
            server::Event::Stdin { data, .. } => Some(data),
            _ => None,
        })
        .collect();
    assert_eq!(stdin.len(), 1);
    assert_eq!(stdin[0], pattern(5000));
    assert!(
        points_into(&stdin[0], base, len),
        "STDIN payload was copied"
    );
    // It sits exactly where the record's content was in the input.
    let offset = stdin[0].as_ptr() as usize - base as usize;
    assert_eq!(&wire[offset..offset + 5000], &stdin[0][..]);
}

#[test]
fn server_data_and_client_stdout_payloads_point_into_the_input_allocation() {
    let mut config = ServerConfig::default();
    config.roles = RoleSet::FILTER;
    let mut s = ServerConnection::new(config);
    let wire = [
        begin(1, FILTER, true),
        record(PARAMS, 1, &[]),
        record(STDIN, 1, &[]),
        record(DATA, 1, &pattern(3000)),
    ]
    .concat();
    let mut input = BytesMut::from(&wire[..]);
    let (base, len) = (input.as_ptr(), input.len());
    s.handle_input(&mut input).unwrap();
    let data = drain_server_events(&mut s)
        .into_iter()
        .find_map(|e| match e {
            server::Event::Data { data, .. } => Some(data),
            _ => None,
        })
        .unwrap();
    assert_eq!(data, pattern(3000));
    assert!(points_into(&data, base, len), "DATA payload was copied");

    let mut c = ClientConnection::new(ClientConfig::default());
    c.begin_request(Role::Responder, true).unwrap();
    let wire = [record(STDERR, 1, b"e"), record(STDOUT, 1, &pattern(4000))].concat();
    let mut input = BytesMut::from(&wire[..]);
    let (base, len) = (input.as_ptr(), input.len());
    c.handle_input(&mut input).unwrap();
    for e in drain_client_events(&mut c) {
        match e {
            client::Event::Stdout { data, .. } | client::Event::Stderr { data, .. } => {
                assert!(points_into(&data, base, len), "payload was copied");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn large_send_stdout_is_emitted_as_the_same_allocation() {
    // poll_transmit: the payload comes back out as chunks that are slices of the very
    // allocation handed in.
    let payload = pattern(70000);
    let mut s = server_ready(Padding::Align8);
    s.send_stdout(1, payload.clone()).unwrap();
    let chunks: Vec<Bytes> = std::iter::from_fn(|| s.poll_transmit()).collect();
    let shared: Vec<&Bytes> = chunks
        .iter()
        .filter(|c| points_into(c, payload.as_ptr(), payload.len()))
        .collect();
    assert_eq!(
        shared.len(),
        2,
        "{:?}",
        chunks.iter().map(Bytes::len).collect::<Vec<_>>()
    );
    assert_eq!(shared[0].as_ptr(), payload.as_ptr());
    assert_eq!(shared[0].len(), 65528);
    assert_eq!(shared[1].as_ptr(), payload[65528..].as_ptr());
    assert_eq!(shared[1].len(), 70000 - 65528);
    // And the whole is still a valid record sequence carrying the payload.
    let wire = chunks.concat();
    assert_eq!(stream_content(&parse_wire(&wire), STDOUT, 1), payload);

    // transmit_chunks: the same, without popping.
    let payload = pattern(10000);
    let mut s = server_ready(Padding::Align8);
    s.send_stdout(1, payload.clone()).unwrap();
    let slices: Vec<&[u8]> = s.transmit_chunks().collect();
    assert!(
        slices
            .iter()
            .any(|c| c.as_ptr() == payload.as_ptr() && c.len() == payload.len()),
        "payload was copied into the transmit queue"
    );
    let total: usize = slices.iter().map(|c| c.len()).sum();
    assert_eq!(total, s.transmit_len());
    assert_eq!(total, 8 + 10000);
}

#[test]
fn large_send_stdin_is_emitted_as_the_same_allocation() {
    let payload = pattern(40000);
    let mut c = client_ready(Padding::Align8);
    c.send_stdin(1, payload.clone()).unwrap();
    let slices: Vec<&[u8]> = c.transmit_chunks().collect();
    assert!(
        slices
            .iter()
            .any(|s| s.as_ptr() == payload.as_ptr() && s.len() == payload.len())
    );
    let chunks: Vec<Bytes> = std::iter::from_fn(|| c.poll_transmit()).collect();
    assert!(chunks.iter().any(|s| s.as_ptr() == payload.as_ptr()));
    assert_eq!(
        stream_content(&parse_wire(&chunks.concat()), STDIN, 1),
        payload
    );
}

#[test]
fn advance_transmit_partial_writes_keep_byte_order() {
    // A vectored writer that accepts 1000 bytes per call must see the same byte sequence as
    // one that pops everything.
    let build = || {
        let mut s = server_ready(Padding::Align8);
        s.send_stderr(1, Bytes::from_static(b"small")).unwrap();
        s.send_stdout(1, pattern(9000)).unwrap();
        s.send_stdout(1, Bytes::from_static(b"tail")).unwrap();
        s.end_request(1, 0, ProtocolStatus::RequestComplete)
            .unwrap();
        s
    };
    let mut reference = build();
    let expected = server_output(&mut reference);
    let mut s = build();
    let mut written = Vec::new();
    while s.transmit_len() > 0 {
        let mut budget = 1000;
        for c in s.transmit_chunks() {
            let n = c.len().min(budget);
            written.extend_from_slice(&c[..n]);
            budget -= n;
            if budget == 0 {
                break;
            }
        }
        s.advance_transmit(1000);
    }
    assert_eq!(written, expected);
    assert!(s.poll_transmit().is_none());
}

#[test]
fn record_reader_does_not_copy_content_that_arrives_whole() {
    let wire = record(STDOUT, 3, &pattern(1000));
    let mut input = BytesMut::from(&wire[..]);
    let (base, len) = (input.as_ptr(), input.len());
    let rec = RecordReader::new().read(&mut input).unwrap();
    assert_eq!(rec.header, Header::new(RecordType::Stdout, 3, 1000, 0));
    assert!(points_into(&rec.content, base, len));
}
