//! Name-value pairs (spec sections 3.4 and 5.2): the 1-byte and 4-byte length forms, the
//! 2^31 - 1 ceiling, reassembly of pairs split across `PARAMS` records, the
//! `max_params_bytes` cap, truncated blocks, how the client packs pairs into records, and
//! `Params` lookups.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::Bytes;
use common::*;
use fcgi_core::client::{ClientConfig, ClientConnection};
use fcgi_core::params::{
    MAX_PAIR_COMPONENT_LEN, ParamsReader, decode_pairs, encode_pair, encoded_pair_len,
    length_prefix_len,
};
use fcgi_core::record::{Padding, Role};
use fcgi_core::server::{Event, Rejection, ServerConfig, ServerConnection};
use fcgi_core::{ApiError, Error, LimitExceeded, Limits, Malformed, Params};
use proptest::prelude::*;

/// Owned (name, value) pairs, in order.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

fn collect_pairs(block: &[u8]) -> Result<Pairs, Error> {
    let mut pairs = Vec::new();
    decode_pairs(block, |n, v| pairs.push((n.to_vec(), v.to_vec())))?;
    Ok(pairs)
}

fn params_of(events: &[Event], want: u16) -> Params {
    events
        .iter()
        .find_map(|e| match e {
            Event::Params { id, params } if *id == want => Some(params.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Params event for {want} in {events:?}"))
}

// ---------------------------------------------------------------------------------------
// Length forms (spec 3.4)
// ---------------------------------------------------------------------------------------

const BOUNDARIES: [(usize, &[u8]); 6] = [
    (0, &[0x00]),
    (1, &[0x01]),
    (127, &[0x7F]),
    (128, &[0x80, 0x00, 0x00, 0x80]),
    (65535, &[0x80, 0x00, 0xFF, 0xFF]),
    (65536, &[0x80, 0x01, 0x00, 0x00]),
];

#[test]
fn length_prefixes_are_exact_at_the_boundaries() {
    for (len, prefix) in BOUNDARIES {
        assert_eq!(length_prefix_len(len), prefix.len(), "len {len}");
        let component = vec![b'z'; len];

        // As the name (value empty).
        let mut out = Vec::new();
        encode_pair(&mut out, &component, b"").unwrap();
        let mut expected = prefix.to_vec();
        expected.push(0x00);
        expected.extend_from_slice(&component);
        assert_eq!(out, expected, "name of {len}");
        assert_eq!(encoded_pair_len(&component, b"").unwrap(), out.len());

        // As the value (name "N").
        let mut out = Vec::new();
        encode_pair(&mut out, b"N", &component).unwrap();
        let mut expected = vec![0x01];
        expected.extend_from_slice(prefix);
        expected.push(b'N');
        expected.extend_from_slice(&component);
        assert_eq!(out, expected, "value of {len}");
        assert_eq!(out, nv(b"N", &component));

        // And back.
        assert_eq!(
            collect_pairs(&out).unwrap(),
            vec![(b"N".to_vec(), component.clone())]
        );
        let mut p = Params::new();
        p.push(b"N", &component).unwrap();
        assert_eq!(p.wire_bytes(), &out[..]);
    }
}

#[test]
fn four_byte_form_is_accepted_for_short_lengths_on_input() {
    // Encoders must use 1 byte below 128, but a 4-byte prefix for a short length is
    // well-formed input.
    let block = [0x80, 0, 0, 2, 0x80, 0, 0, 1, b'H', b'I', b'!'];
    assert_eq!(
        collect_pairs(&block).unwrap(),
        vec![(b"HI".to_vec(), b"!".to_vec())]
    );
}

#[test]
fn max_component_constant_is_2_pow_31_minus_1_and_uses_four_bytes() {
    assert_eq!(MAX_PAIR_COMPONENT_LEN, (1usize << 31) - 1);
    assert_eq!(length_prefix_len(MAX_PAIR_COMPONENT_LEN), 4);
    assert_eq!(length_prefix_len(127), 1);
}

/// The largest length the wire can carry, `FF FF FF FF` (high bit = 4-byte form), is parsed
/// as 2^31 - 1 and checked against the cap from its prefix alone, without allocating.
#[test]
fn declared_length_2_pow_31_minus_1_is_parsed_exactly_and_capped_before_allocation() {
    let max = MAX_PAIR_COMPONENT_LEN;
    // Name "A" with a value of 2^31 - 1 bytes; a name of 2^31 - 1 bytes with an empty value.
    let as_value = [0x01, 0xFF, 0xFF, 0xFF, 0xFF, b'A'];
    let as_name = [0xFF, 0xFF, 0xFF, 0xFF, 0x00, b'A'];
    for (prefix, declared_total) in [
        (&as_value[..], 1 + 4 + 1 + max),
        (&as_name[..], 4 + 1 + max),
    ] {
        // A cap of exactly the pair's size accepts the prefix...
        let mut r = ParamsReader::new(declared_total);
        r.push(prefix).unwrap();
        assert_eq!(r.len(), prefix.len());
        // ...one byte less refuses it at once: the length was read as exactly 2^31 - 1.
        let mut r = ParamsReader::new(declared_total - 1);
        assert_eq!(
            r.push(prefix),
            Err(Error::Limit(LimitExceeded::Params {
                limit: declared_total - 1
            }))
        );
        // A complete-block decoder reports it as truncated instead of allocating.
        assert_eq!(
            collect_pairs(prefix),
            Err(Error::Malformed(Malformed::TruncatedPair))
        );
    }
}

#[test]
fn server_refuses_a_declared_2_pow_31_minus_1_value_with_overloaded() {
    let mut s = ServerConnection::new(ServerConfig::default());
    let events = feed_server(
        &mut s,
        &[
            begin(1, RESPONDER, true),
            record(PARAMS, 1, &[0x01, 0xFF, 0xFF, 0xFF, 0xFF, b'A']),
        ]
        .concat(),
    );
    assert_eq!(
        events[1],
        Event::Rejected {
            id: 1,
            reason: Rejection::ParamsTooLarge
        }
    );
    assert_eq!(server_output(&mut s), end_request_record(1, 0, 2));
}

/// A component of 2^31 bytes cannot be expressed. A real slice that long is needed to call
/// the encoders; it is allocated zeroed, which the OS maps lazily, and the encoders refuse
/// it from its length alone, so no page of it is ever touched.
#[cfg(target_pointer_width = "64")]
#[test]
fn components_of_2_pow_31_bytes_are_refused_before_anything_is_written() {
    const N: usize = 1 << 31;
    let mut probe: Vec<u8> = Vec::new();
    if probe.try_reserve_exact(N).is_err() {
        eprintln!("skipped: this machine refuses 2 GiB of address space");
        return;
    }
    drop(probe);
    let big = vec![0u8; N];

    // The boundary: 2^31 - 1 is fine, 2^31 is not.
    assert_eq!(
        encoded_pair_len(&big[..N - 1], b""),
        Ok(4 + 1 + MAX_PAIR_COMPONENT_LEN)
    );
    assert_eq!(
        encoded_pair_len(&big, b""),
        Err(Error::Api(ApiError::PairTooLong(N)))
    );
    assert_eq!(
        encoded_pair_len(b"", &big),
        Err(Error::Api(ApiError::PairTooLong(N)))
    );

    // encode_pair writes nothing.
    let mut out = b"prefix".to_vec();
    assert_eq!(
        encode_pair(&mut out, b"NAME", &big),
        Err(Error::Api(ApiError::PairTooLong(N)))
    );
    assert_eq!(
        encode_pair(&mut out, &big, b"v"),
        Err(Error::Api(ApiError::PairTooLong(N)))
    );
    assert_eq!(out, b"prefix");

    // Params::push adds nothing.
    let mut p = Params::new();
    p.push(b"A", b"1").unwrap();
    let before = p.clone();
    assert_eq!(
        p.push(b"NAME", &big),
        Err(Error::Api(ApiError::PairTooLong(N)))
    );
    assert_eq!(p, before);
    assert_eq!(p.len(), 1);

    // The client queues nothing and the request can carry on.
    let mut c = ClientConnection::new(ClientConfig::default());
    c.begin_request(Role::Responder, true).unwrap();
    let begin_bytes = client_output(&mut c);
    assert_eq!(
        c.send_param(1, b"NAME", &big),
        Err(Error::Api(ApiError::PairTooLong(N)))
    );
    assert_eq!(c.transmit_len(), 0);
    c.send_param(1, b"A", b"1").unwrap();
    c.end_params(1).unwrap();
    assert_eq!(
        client_output(&mut c),
        [record(PARAMS, 1, &nv(b"A", b"1")), record(PARAMS, 1, &[])].concat()
    );
    assert_eq!(begin_bytes, begin(1, RESPONDER, true));
}

// ---------------------------------------------------------------------------------------
// Pairs split across PARAMS records (spec 3.3, 5.2)
// ---------------------------------------------------------------------------------------

/// A block mixing 1-byte and 4-byte lengths in both positions, empty names and values.
fn mixed_block() -> (Pairs, Vec<u8>) {
    let pairs: Pairs = vec![
        (b"REQUEST_METHOD".to_vec(), b"GET".to_vec()),
        (vec![b'L'; 200], b"long name".to_vec()),
        (b"EMPTY".to_vec(), Vec::new()),
        (b"LONG_VALUE".to_vec(), vec![b'v'; 300]),
        (Vec::new(), b"no name".to_vec()),
        (b"REQUEST_METHOD".to_vec(), b"POST".to_vec()),
    ];
    let block: Vec<u8> = pairs.iter().flat_map(|(n, v)| nv(n, v)).collect();
    (pairs, block)
}

#[test]
fn params_reader_reassembles_a_pair_split_at_every_offset() {
    let (pairs, block) = mixed_block();
    // The block does contain 4-byte prefixes, so some split points fall inside one.
    assert_eq!(&block[19..23], &[0x80, 0, 0, 200]);
    for k in 0..=block.len() {
        let mut r = ParamsReader::new(1 << 20);
        r.push(&block[..k]).unwrap();
        r.push(&block[k..]).unwrap();
        assert_eq!(r.len(), block.len());
        let params = r.finish().unwrap();
        let got: Pairs = params
            .iter()
            .map(|(n, v)| (n.to_vec(), v.to_vec()))
            .collect();
        assert_eq!(got, pairs, "split at {k}");
        assert_eq!(params.wire_bytes(), &block[..]);
    }
}

#[test]
fn params_reader_reassembles_every_three_way_split() {
    let block = nv_block(&[(b"N", &[b'x'; 130]), (&[b'K'; 128], b"")]);
    let expected = collect_pairs(&block).unwrap();
    for i in 0..=block.len() {
        for j in i..=block.len() {
            let mut r = ParamsReader::new(4096);
            for piece in [&block[..i], &block[i..j], &block[j..]] {
                r.push(piece).unwrap();
            }
            let params = r.finish().unwrap();
            let got: Pairs = params
                .iter()
                .map(|(n, v)| (n.to_vec(), v.to_vec()))
                .collect();
            assert_eq!(got, expected, "splits at {i}, {j}");
        }
    }
}

#[test]
fn server_reassembles_params_split_across_records_at_every_offset() {
    let (pairs, block) = mixed_block();
    for k in 1..block.len() {
        let mut s = ServerConnection::new(ServerConfig::default());
        let wire = [
            begin(1, RESPONDER, true),
            record(PARAMS, 1, &block[..k]),
            record(PARAMS, 1, &block[k..]),
            record(PARAMS, 1, &[]),
        ]
        .concat();
        let events = feed_server(&mut s, &wire);
        assert_eq!(events.len(), 2, "split at {k}");
        let params = params_of(&events, 1);
        let got: Pairs = params
            .iter()
            .map(|(n, v)| (n.to_vec(), v.to_vec()))
            .collect();
        assert_eq!(got, pairs, "split at {k}");
    }
}

#[test]
fn server_reassembles_params_sent_one_byte_per_record() {
    let (pairs, block) = mixed_block();
    let mut wire = begin(7, RESPONDER, false);
    for b in &block {
        wire.extend(record(PARAMS, 7, &[*b]));
    }
    wire.extend(record(PARAMS, 7, &[]));
    let mut s = ServerConnection::new(ServerConfig::default());
    let params = params_of(&feed_server(&mut s, &wire), 7);
    assert_eq!(params.len(), pairs.len());
    assert_eq!(params.wire_bytes(), &block[..]);
}

// ---------------------------------------------------------------------------------------
// max_params_bytes (a configured cap; the spec leaves resource limits to the application,
// answering OVERLOADED per 5.5)
// ---------------------------------------------------------------------------------------

fn small_params_server(limit: usize) -> ServerConnection {
    let mut limits = Limits::default();
    limits.max_params_bytes = limit;
    let mut config = ServerConfig::default();
    config.limits = limits;
    config.multiplex = false;
    ServerConnection::new(config)
}

#[test]
fn declared_pair_length_beyond_cap_is_refused_before_its_bytes_arrive() {
    let mut s = small_params_server(1024);
    // The record announces 4101 content bytes; only the first 6 (both length prefixes and
    // the name) have arrived.
    let pair = nv(b"X", &[b'v'; 4096]);
    let mut partial = raw_record(1, PARAMS, 1, &pair, &[]);
    partial.truncate(8 + 6);
    let events = feed_server(&mut s, &[begin(1, RESPONDER, true), partial].concat());
    assert_eq!(
        events,
        vec![
            Event::BeginRequest {
                id: 1,
                role: Role::Responder,
                keep_conn: true
            },
            Event::Rejected {
                id: 1,
                reason: Rejection::ParamsTooLarge
            }
        ]
    );
    assert_eq!(
        server_output(&mut s),
        [1, 3, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0]
    );
    assert!(!s.is_active(1));
    assert!(!s.should_close());

    // The rest of that request is ignored (its id is inactive)...
    let rest = [
        pair[6..].to_vec(),
        record(PARAMS, 1, &[]),
        record(STDIN, 1, b"body"),
        record(STDIN, 1, &[]),
    ]
    .concat();
    assert_eq!(feed_server(&mut s, &rest), vec![]);
    assert_eq!(server_output(&mut s), Vec::<u8>::new());

    // ...and the connection serves the next request on the same id.
    let events = feed_server(&mut s, &responder_request(1, true, &[(b"A", b"b")], b"x"));
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(params_of(&events, 1).get(b"A"), Some(&b"b"[..]));
    s.send_stdout(1, Bytes::from_static(b"ok")).unwrap();
    s.end_request(1, 0, fcgi_core::ProtocolStatus::RequestComplete)
        .unwrap();
    let records = server_records(&mut s);
    assert_eq!(records.last().unwrap().content, [0, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn params_stream_total_beyond_cap_is_refused() {
    // Every pair is small, but together they pass 100 bytes.
    let mut s = small_params_server(100);
    let block = nv_block(&[(b"AAAAAAAAAA", &[b'1'; 40]), (b"BBBBBBBBBB", &[b'2'; 40])]);
    assert_eq!(block.len(), 104);
    let mut wire = begin(1, RESPONDER, true);
    wire.extend(record(PARAMS, 1, &block[..52]));
    wire.extend(record(PARAMS, 1, &block[52..]));
    wire.extend(record(PARAMS, 1, &[]));
    let events = feed_server(&mut s, &wire);
    assert_eq!(
        events.last(),
        Some(&Event::Rejected {
            id: 1,
            reason: Rejection::ParamsTooLarge
        })
    );
    assert_eq!(server_output(&mut s), end_request_record(1, 0, 2));

    // Exactly at the cap is accepted.
    let mut s = small_params_server(104);
    let events = feed_server(&mut s, &wire);
    assert_eq!(params_of(&events, 1).len(), 2);
}

#[test]
fn params_too_large_without_keep_conn_closes_after_the_refusal() {
    let mut s = small_params_server(16);
    let wire = [
        begin(1, RESPONDER, false),
        record(PARAMS, 1, &nv(b"NAME", &[b'v'; 64])),
    ]
    .concat();
    feed_server(&mut s, &wire);
    assert!(s.should_close());
}

#[test]
fn client_refuses_get_values_result_beyond_cap() {
    let mut limits = Limits::default();
    limits.max_params_bytes = 20;
    let mut config = ClientConfig::default();
    config.limits = limits;
    let mut c = ClientConnection::new(config);
    let big = nv(b"FCGI_MAX_CONNS", &[b'9'; 10]);
    assert_eq!(
        try_feed_client(&mut c, &record(GET_VALUES_RESULT, 0, &big)),
        Err(Error::Limit(LimitExceeded::Params { limit: 20 }))
    );
}

// ---------------------------------------------------------------------------------------
// Truncated blocks (spec 3.4: a block holds whole pairs)
// ---------------------------------------------------------------------------------------

#[test]
fn truncated_blocks_are_malformed() {
    let truncated: [&[u8]; 6] = [
        &[0x05],                         // value length missing
        &[0x80, 0x00],                   // 4-byte name length cut short
        &[0x01, 0x80, 0x00, 0x00],       // 4-byte value length cut short
        &[0x05, 0x00, b'a', b'b'],       // name cut short
        &[0x01, 0x03, b'a', b'b'],       // value cut short
        &[0x01, 0x01, b'a', b'b', 0x01], // a whole pair, then a partial one
    ];
    for block in truncated {
        assert_eq!(
            collect_pairs(block),
            Err(Error::Malformed(Malformed::TruncatedPair)),
            "{block:?}"
        );
        let mut r = ParamsReader::new(1024);
        r.push(block).unwrap();
        assert_eq!(
            r.finish().map(|p| p.len()),
            Err(Error::Malformed(Malformed::TruncatedPair))
        );
    }
    assert_eq!(collect_pairs(&[]).unwrap(), vec![]);
    assert_eq!(
        collect_pairs(&[0, 0]).unwrap(),
        vec![(Vec::new(), Vec::new())]
    );
}

#[test]
fn server_params_stream_ending_inside_a_pair_is_malformed_and_latched() {
    let mut s = ServerConnection::new(ServerConfig::default());
    let wire = [
        begin(1, RESPONDER, true),
        record(PARAMS, 1, &[0x04, 0x02, b'N', b'A']),
        record(PARAMS, 1, &[]),
    ]
    .concat();
    let err = Error::Malformed(Malformed::TruncatedPair);
    assert_eq!(try_feed_server(&mut s, &wire), Err(err));
    assert_eq!(try_feed_server(&mut s, &record(STDIN, 1, &[])), Err(err));
}

#[test]
fn truncated_get_values_blocks_are_malformed_on_both_sides() {
    let mut s = ServerConnection::new(ServerConfig::default());
    assert_eq!(
        try_feed_server(&mut s, &record(GET_VALUES, 0, &[0x0F, 0x00, b'F'])),
        Err(Error::Malformed(Malformed::TruncatedPair))
    );
    let mut c = ClientConnection::new(ClientConfig::default());
    assert_eq!(
        try_feed_client(&mut c, &record(GET_VALUES_RESULT, 0, &[0x0F, 0x01, b'F'])),
        Err(Error::Malformed(Malformed::TruncatedPair))
    );
}

// ---------------------------------------------------------------------------------------
// How the client packs pairs into PARAMS records
// ---------------------------------------------------------------------------------------

fn params_records(records: &[WireRecord]) -> Vec<&WireRecord> {
    records.iter().filter(|r| r.rtype == PARAMS).collect()
}

#[test]
fn client_never_splits_a_pair_that_fits_in_a_record() {
    let mut c = ClientConnection::new(ClientConfig::default());
    c.begin_request(Role::Responder, false).unwrap();
    let mut expected = Vec::new();
    for i in 0..100 {
        let name = format!("VAR_{i:04}");
        let value = vec![b'a' + (i % 26) as u8; 1000];
        c.send_param(1, name.as_bytes(), &value).unwrap();
        expected.extend(nv(name.as_bytes(), &value));
    }
    c.end_params(1).unwrap();
    let records = client_records(&mut c);
    assert_aligned(&records);
    let params = params_records(&records);
    assert_eq!(params.len(), 3, "two data records and the terminator");
    assert!(params[2].content.is_empty());
    let mut joined = Vec::new();
    for r in &params {
        assert!(r.content.len() <= 65528);
        assert!(
            parse_nv_block(&r.content).is_some(),
            "a PARAMS record ends inside a pair"
        );
        joined.extend_from_slice(&r.content);
    }
    assert_eq!(joined, expected);
}

#[test]
fn client_fills_a_record_exactly_then_starts_the_next_pair_in_a_new_one() {
    let mut c = ClientConnection::new(ClientConfig::default());
    c.begin_request(Role::Responder, true).unwrap();
    let a = vec![b'a'; 64994];
    let b = vec![b'b'; 522];
    assert_eq!(nv(b"A", &a).len() + nv(b"B", &b).len(), 65528);
    c.send_param(1, b"A", &a).unwrap();
    c.send_param(1, b"B", &b).unwrap();
    c.send_param(1, b"C", b"c").unwrap();
    c.end_params(1).unwrap();
    let records = client_records(&mut c);
    let lens: Vec<usize> = params_records(&records)
        .iter()
        .map(|r| r.content.len())
        .collect();
    assert_eq!(lens, vec![65528, 4, 0]);
}

#[test]
fn client_splits_a_pair_larger_than_a_record_and_the_server_reassembles_it() {
    for (padding, max) in [(Padding::Align8, 65528usize), (Padding::None, 65535)] {
        let mut config = ClientConfig::default();
        config.padding = padding;
        let mut c = ClientConnection::new(config);
        c.begin_request(Role::Responder, true).unwrap();
        let huge = pattern(100_000);
        c.send_param(1, b"A", b"b").unwrap();
        c.send_param(1, b"HUGE", &huge).unwrap();
        c.send_param(1, b"C", b"d").unwrap();
        c.end_params(1).unwrap();
        c.end_stdin(1).unwrap();
        let wire = client_output(&mut c);
        let records = parse_wire(&wire);
        let params = params_records(&records);
        let lens: Vec<usize> = params.iter().map(|r| r.content.len()).collect();
        let huge_len = nv(b"HUGE", &huge).len();
        assert_eq!(lens, vec![4, max, huge_len - max, 4, 0], "{padding:?}");
        assert!(
            parse_nv_block(&params[1].content).is_none(),
            "split expected"
        );

        let mut s = ServerConnection::new(ServerConfig::default());
        let p = params_of(&feed_server(&mut s, &wire), 1);
        assert_eq!(p.len(), 3);
        assert_eq!(p.get(b"HUGE"), Some(&huge[..]));
        assert_eq!(p.get_str("C"), Some("d"));
    }
}

#[test]
fn client_send_params_writes_pairs_in_order_with_duplicates() {
    let mut p = Params::new();
    p.push(b"B", b"1").unwrap();
    p.push(b"A", b"2").unwrap();
    p.push(b"B", b"3").unwrap();
    let mut c = ClientConnection::new(ClientConfig::default());
    c.begin_request(Role::Responder, true).unwrap();
    c.send_params(1, &p).unwrap();
    c.end_params(1).unwrap();
    let records = client_records(&mut c);
    assert_eq!(
        records[1].content,
        nv_block(&[(b"B", b"1"), (b"A", b"2"), (b"B", b"3")])
    );
    assert_eq!(records[1].content, p.wire_bytes());
}

// ---------------------------------------------------------------------------------------
// Params: lookups, order, duplicates
// ---------------------------------------------------------------------------------------

#[test]
fn params_lookup_last_wins_order_kept_duplicates_kept() {
    let mut p = Params::new();
    assert!(p.is_empty());
    p.push(b"HTTP_COOKIE", b"a=1").unwrap();
    p.push(b"REQUEST_METHOD", b"GET").unwrap();
    p.push(b"HTTP_COOKIE", b"b=2").unwrap();
    p.push(b"EMPTY", b"").unwrap();
    p.push(b"BIN", &[0xFF, 0xFE]).unwrap();
    assert_eq!(p.len(), 5);
    assert_eq!(p.get(b"HTTP_COOKIE"), Some(&b"b=2"[..]));
    assert_eq!(p.get(b"REQUEST_METHOD"), Some(&b"GET"[..]));
    assert_eq!(p.get(b"EMPTY"), Some(&b""[..]));
    assert_eq!(p.get(b"MISSING"), None);
    assert_eq!(p.get(b"HTTP_COOKI"), None);
    assert_eq!(p.get_str("BIN"), None, "not UTF-8");
    assert_eq!(p.get(b"BIN"), Some(&[0xFF, 0xFE][..]));
    assert_eq!(
        p.get_all(b"HTTP_COOKIE").collect::<Vec<_>>(),
        vec![&b"a=1"[..], &b"b=2"[..]]
    );
    assert_eq!(p.get_all(b"NOPE").count(), 0);
    let names: Vec<&[u8]> = p.iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        vec![
            &b"HTTP_COOKIE"[..],
            b"REQUEST_METHOD",
            b"HTTP_COOKIE",
            b"EMPTY",
            b"BIN"
        ]
    );
    assert_eq!(p.iter().len(), 5);
    assert_eq!(p.iter().next_back(), Some((&b"BIN"[..], &[0xFF, 0xFE][..])));
    let pieces: Vec<&[u8]> = p.wire_pairs().collect();
    assert_eq!(pieces.len(), 5);
    assert_eq!(pieces[0], &nv(b"HTTP_COOKIE", b"a=1")[..]);
    assert_eq!(pieces.concat(), p.wire_bytes());
}

#[test]
fn server_params_keep_duplicates_and_order() {
    let mut s = ServerConnection::new(ServerConfig::default());
    let events = feed_server(
        &mut s,
        &responder_request(
            1,
            true,
            &[(b"X", b"first"), (b"Y", b"y"), (b"X", b"second")],
            b"",
        ),
    );
    let p = params_of(&events, 1);
    assert_eq!(p.len(), 3);
    assert_eq!(p.get(b"X"), Some(&b"second"[..]));
    assert_eq!(p.get_all(b"X").count(), 2);
    assert_eq!(p.iter().nth(1), Some((&b"Y"[..], &b"y"[..])));
}

fn arb_pairs() -> impl Strategy<Value = Pairs> {
    let component = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..5),
        prop::collection::vec(any::<u8>(), 120..140),
    ];
    prop::collection::vec((component.clone(), component), 0..8)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(proptest_cases()))]

    #[test]
    fn pairs_round_trip_through_any_chunking(
        pairs in arb_pairs(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let mut p = Params::new();
        for (n, v) in &pairs {
            p.push(n, v).unwrap();
        }
        let block: Vec<u8> = pairs.iter().flat_map(|(n, v)| nv(n, v)).collect();
        prop_assert_eq!(p.wire_bytes(), &block[..]);
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(block.len() + 1)).collect();
        points.push(0);
        points.push(block.len());
        points.sort_unstable();
        let mut r = ParamsReader::new(block.len());
        for w in points.windows(2) {
            r.push(&block[w[0]..w[1]]).unwrap();
        }
        let back = r.finish().unwrap();
        prop_assert_eq!(&back, &p);
        let got: Pairs =
            back.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
        prop_assert_eq!(got, pairs);
    }
}
