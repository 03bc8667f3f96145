//! Codec properties: record framing (spec 3.3) and name-value pairs (spec 3.4) round-trip
//! through the streaming readers whatever the input splits; garbage never panics and only
//! fails with the documented errors; connections fed random bytes stay within their
//! configured memory bounds.
//!
//! Case counts: `PROPTEST_CASES` overrides the defaults; the RNG seed is fixed unless
//! `PROPTEST_RNG_SEED` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod pair;

use bytes::{Bytes, BytesMut};
use fcgi_core::client::{self, ClientConfig, ClientConnection};
use fcgi_core::params::{
    ParamsReader, decode_pairs, encode_pair, encoded_pair_len, length_prefix_len,
};
use fcgi_core::record::{
    BeginRequestBody, Decoder, EndRequestBody, Fragment, Header, RecordReader, RecordType, Role,
    UnknownTypeBody,
};
use fcgi_core::server::{self, RoleSet, ServerConfig, ServerConnection};
use fcgi_core::{Error, LimitExceeded, Malformed, Params, ProtocolStatus};
use pair::{Chunker, pattern};
use proptest::prelude::*;
use proptest::sample::Index;

/// Accounting cost of one queued event beyond its payload (`limits::EVENT_COST`).
const EVENT_COST: usize = 64;

fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        Just(vec![1usize]),
        prop::collection::vec(1usize..=16, 1..=8),
        prop::collection::vec(1usize..=5000, 1..=8),
    ]
}

// ---------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct RawRecord {
    rtype: u8,
    id: u16,
    len: usize,
    padding: u8,
}

fn raw_record() -> impl Strategy<Value = RawRecord> {
    (
        any::<u8>(),
        prop_oneof![Just(0u16), 1u16..=4, any::<u16>()],
        prop_oneof![12 => 0usize..=16, 12 => 0usize..=4096, 1 => 65_000usize..=65_535],
        prop_oneof![Just(0u8), 0u8..=7, any::<u8>()],
    )
        .prop_map(|(rtype, id, len, padding)| RawRecord {
            rtype,
            id,
            len,
            padding,
        })
}

/// Encodes records (garbage in the reserved byte and padding) and returns the wire, each
/// record's header and content, and the offset where each record ends.
fn encode_records(recs: &[RawRecord], seed: u64) -> (Vec<u8>, Vec<(Header, Bytes)>, Vec<usize>) {
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    let mut ends = Vec::new();
    for (i, r) in recs.iter().enumerate() {
        let content = pattern(seed.wrapping_add(i as u64), r.len);
        let header = Header::new(RecordType::from(r.rtype), r.id, r.len as u16, r.padding);
        let mut bytes = header.to_array();
        bytes[7] = (i as u8).wrapping_mul(31); // reserved: ignored by receivers
        wire.extend_from_slice(&bytes);
        wire.extend_from_slice(&content);
        wire.extend((0..r.padding).map(|k| k ^ 0x5A));
        ends.push(wire.len());
        expected.push((header, content));
    }
    (wire, expected, ends)
}

// ---------------------------------------------------------------------------------------
// Name-value pairs
// ---------------------------------------------------------------------------------------

/// Name-value pairs as owned bytes, in order.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Lengths around the 1-byte/4-byte boundary (127/128) and a few KiB.
fn pair_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 0usize..=10,
        4 => 124usize..=132,
        2 => 0usize..=400,
        1 => 2000usize..=6000,
    ]
}

fn pairs() -> impl Strategy<Value = Pairs> {
    prop::collection::vec(
        (
            prop::option::weighted(0.3, 0u8..3),
            pair_len(),
            pair_len(),
            any::<u64>(),
        ),
        0..=12,
    )
    .prop_map(|specs| {
        specs
            .into_iter()
            .map(|(pooled, nl, vl, seed)| {
                let name = match pooled {
                    Some(k) => vec![b'D', b'0' + k],
                    None => pattern(seed, nl).to_vec(),
                };
                (name, pattern(!seed, vl).to_vec())
            })
            .collect()
    })
}

/// Name-value encoding written from the spec, independently of the crate.
fn model_encode(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, v) in pairs {
        for len in [n.len(), v.len()] {
            if len < 128 {
                out.push(len as u8);
            } else {
                out.extend_from_slice(&(len as u32 | 0x8000_0000).to_be_bytes());
            }
        }
        out.extend_from_slice(n);
        out.extend_from_slice(v);
    }
    out
}

fn collect_pairs(block: &[u8]) -> Result<Pairs, Error> {
    let mut out = Vec::new();
    decode_pairs(block, |n, v| out.push((n.to_vec(), v.to_vec())))?;
    Ok(out)
}

/// Feeds `block` to a reader in `pieces`; the first error ends it.
fn read_params(block: &[u8], limit: usize, sizes: &[usize]) -> Result<Params, Error> {
    let mut reader = ParamsReader::new(limit);
    for piece in Chunker::new(sizes.to_vec()).split(block) {
        reader.push(piece)?;
    }
    assert_reader_len(&reader, block.len());
    reader.finish()
}

fn assert_reader_len(reader: &ParamsReader, len: usize) {
    assert_eq!(reader.len(), len);
    assert_eq!(reader.is_empty(), len == 0);
}

/// Garbage biased towards interesting length prefixes.
fn garbage() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => any::<u8>(),
            2 => 0u8..=8,
            1 => prop::sample::select(vec![0x7F, 0x80, 0xFF, 0x00]),
        ],
        0..=96,
    )
}

// ---------------------------------------------------------------------------------------
// Structured garbage for connections
// ---------------------------------------------------------------------------------------

/// One record header + content + zero padding.
fn record(version: u8, rtype: u8, id: u16, content: &[u8], padding: u8) -> Vec<u8> {
    let mut out = vec![version, rtype];
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&(content.len() as u16).to_be_bytes());
    out.extend_from_slice(&[padding, 0]);
    out.extend_from_slice(content);
    out.extend(std::iter::repeat_n(0u8, usize::from(padding)));
    out
}

/// A hostile but plausible stream for one side: mostly records a peer of that side sends,
/// for active ids 1..=3 (in any order, so protocol violations happen), management records,
/// records for inactive ids and unknown types (both ignored), plus fully random records
/// and raw noise.
fn hostile_stream(to_server: bool) -> impl Strategy<Value = Vec<u8>> {
    let peer_types: Vec<u8> = if to_server {
        vec![1, 2, 4, 4, 5, 5, 8]
    } else {
        vec![3, 6, 6, 7]
    };
    let rec = (
        0u8..=20,
        prop::sample::select(peer_types),
        1u16..=3,
        any::<u8>(),
        prop_oneof![4 => 0usize..=24, 1 => 0usize..=600],
        0u8..=9,
        any::<u64>(),
        prop::option::weighted(0.01, prop::collection::vec(any::<u8>(), 0..=12)),
    )
        .prop_map(
            move |(kind, peer_type, id, byte, len, padding, seed, noise)| {
                let random = pattern(seed, len).to_vec();
                let pairs = model_encode(&[(pattern(seed, len % 20).to_vec(), Vec::new())]);
                let fixed = |first: [u8; 3]| {
                    let mut b = first.to_vec();
                    b.extend_from_slice(&[0; 5]);
                    b
                };
                let mut out = match kind {
                    // What this side's peer sends, for an active id, with a plausible body.
                    0..=9 => {
                        let content = match peer_type {
                            1 => fixed([0, 1 + byte % 4, byte]), // role 1..=4, any flags
                            3 => fixed([0, 0, byte]),            // END_REQUEST
                            4 if seed % 3 == 0 => Vec::new(),
                            4 => pairs,
                            2 => Vec::new(),
                            _ if seed % 4 == 0 => Vec::new(),
                            _ => random,
                        };
                        record(1, peer_type, id, &content, padding)
                    }
                    // Management records.
                    10..=13 => {
                        let (t, content) = match (to_server, byte % 3) {
                            (true, 0) => (9, pairs),
                            (false, 0) => (10, pairs),
                            (false, 1) => (11, fixed([byte, 0, 0])),
                            _ => (byte, random),
                        };
                        record(1, t, 0, &content, padding)
                    }
                    // Inactive ids, unknown types: ignored.
                    14..=16 => record(1, byte, 4 + (seed % 6) as u16, &random, padding),
                    17..=18 => record(1, 12 + byte % 244, id, &random, padding),
                    // Any type and body; rarely a wrong version.
                    19 => record(1, (seed % 13) as u8, id, &random, padding),
                    _ => record(byte % 3, (seed % 13) as u8, id, &random, padding),
                };
                if let Some(noise) = noise {
                    out.extend_from_slice(&noise);
                }
                out
            },
        );
    prop::collection::vec(rec, 0..=40).prop_map(|v| v.concat())
}

/// Checks the event-queue bound after one `handle_input`: the budget is checked before
/// each decoding step and a step queues at most one event, so every event but the last
/// was queued while the total was below the budget.
fn check_event_bound(costs: &[usize], budget: usize) -> Result<(), TestCaseError> {
    if let Some((_, before_last)) = costs.split_last() {
        let total: usize = before_last.iter().sum();
        prop_assert!(
            total < budget,
            "{} bytes queued before the last event, budget {}",
            total,
            budget
        );
    }
    Ok(())
}

fn server_event_cost(ev: &server::Event) -> usize {
    EVENT_COST
        + match ev {
            server::Event::Params { params, .. } => params.wire_bytes().len(),
            server::Event::Stdin { data, .. } | server::Event::Data { data, .. } => data.len(),
            _ => 0,
        }
}

fn client_event_cost(ev: &client::Event) -> usize {
    EVENT_COST
        + match ev {
            client::Event::Values(params) => params.wire_bytes().len(),
            client::Event::Stdout { data, .. } | client::Event::Stderr { data, .. } => data.len(),
            _ => 0,
        }
}

/// Largest output one input record can add beyond the transmit cap: a GET_VALUES_RESULT
/// with all three answers (8 + 72 bytes), or one END_REQUEST / UNKNOWN_TYPE (16 bytes).
const ONE_ANSWER: usize = 80;

/// Transmit cap of the hostile-input server: a few answers.
const OUTPUT_CAP: usize = 64;

proptest! {
    #![proptest_config(pair::proptest_config(256))]

    /// Spec 3.3: any sequence of records (any type byte, id, content length up to 65535,
    /// padding 0..=255, garbage in reserved byte and padding) is reassembled exactly by
    /// `RecordReader`, and `Decoder` yields header, non-empty content pieces that join to
    /// the content, then the end, whatever the input splits. Both are at a boundary
    /// exactly where a record (with its padding) ends.
    #[test]
    fn records_round_trip_in_any_split(
        recs in prop::collection::vec(raw_record(), 0..=8),
        seed in any::<u64>(),
        sizes in chunk_sizes(),
    ) {
        let (wire, expected, ends) = encode_records(&recs, seed);

        let mut reader = RecordReader::new();
        let mut input = BytesMut::new();
        let mut got = Vec::new();
        let mut fed = 0;
        for piece in Chunker::new(sizes.clone()).split(&wire) {
            input.extend_from_slice(piece);
            fed += piece.len();
            while let Some(rec) = reader.read(&mut input) {
                got.push((rec.header, rec.content));
            }
            prop_assert!(input.is_empty());
            prop_assert_eq!(reader.is_at_boundary(), fed == 0 || ends.contains(&fed));
        }
        prop_assert_eq!(&got, &expected);

        let mut decoder = Decoder::new();
        let mut input = BytesMut::new();
        let mut current: Option<(Header, Vec<u8>)> = None;
        let mut got = Vec::new();
        for piece in Chunker::new(sizes).split(&wire) {
            input.extend_from_slice(piece);
            while let Some(fragment) = decoder.decode(&mut input) {
                match fragment {
                    Fragment::Header(h) => {
                        prop_assert!(current.is_none(), "header inside a record");
                        current = Some((h, Vec::new()));
                    }
                    Fragment::Content(c) => {
                        prop_assert!(!c.is_empty(), "empty content fragment");
                        let (_, buf) = current.as_mut().expect("content before header");
                        buf.extend_from_slice(&c);
                    }
                    Fragment::End(h) => {
                        let (h0, buf) = current.take().expect("end before header");
                        prop_assert_eq!(h, h0);
                        got.push((h, Bytes::from(buf)));
                    }
                }
            }
            prop_assert!(input.is_empty());
        }
        prop_assert!(current.is_none());
        prop_assert!(decoder.is_at_boundary());
        prop_assert_eq!(&got, &expected);
    }

    /// Spec 3.3: header bytes decode and re-encode identically (reserved byte zeroed);
    /// fewer than 8 bytes do not parse.
    #[test]
    fn header_bytes_round_trip(mut b in any::<[u8; 8]>(), short in 0usize..8) {
        let h = Header::parse(&b).unwrap();
        prop_assert_eq!(Header::from_array(&b), h);
        prop_assert_eq!(h.body_len(), usize::from(h.content_length) + usize::from(h.padding_length));
        b[7] = 0;
        prop_assert_eq!(h.to_array(), b);
        prop_assert!(Header::parse(&b[..short]).is_none());
    }

    /// Spec 5.1, 5.5, 4.2: fixed 8-byte bodies round-trip; any 8 bytes parse (unknown
    /// flags and reserved bytes ignored) and re-encode canonically; any other length is
    /// `Malformed::BodyLength`.
    #[test]
    fn fixed_bodies_round_trip(
        role in any::<u16>(),
        keep_conn in any::<bool>(),
        app_status in any::<u32>(),
        status in any::<u8>(),
        b in any::<[u8; 8]>(),
        other in prop::collection::vec(any::<u8>(), 0..=20),
    ) {
        let begin = BeginRequestBody { role: Role::from(role), keep_conn };
        prop_assert_eq!(BeginRequestBody::parse(&begin.to_array()), Ok(begin));
        let end = EndRequestBody { app_status, protocol_status: ProtocolStatus::from(status) };
        prop_assert_eq!(EndRequestBody::parse(&end.to_array()), Ok(end));
        let unknown = UnknownTypeBody { record_type: status };
        prop_assert_eq!(UnknownTypeBody::parse(&unknown.to_array()), Ok(unknown));

        let parsed = BeginRequestBody::parse(&b).unwrap();
        prop_assert_eq!(parsed.to_array(), [b[0], b[1], b[2] & 1, 0, 0, 0, 0, 0]);
        let parsed = EndRequestBody::parse(&b).unwrap();
        prop_assert_eq!(parsed.to_array(), [b[0], b[1], b[2], b[3], b[4], 0, 0, 0]);
        let parsed = UnknownTypeBody::parse(&b).unwrap();
        prop_assert_eq!(parsed.to_array(), [b[0], 0, 0, 0, 0, 0, 0, 0]);

        if other.len() != 8 {
            for e in [
                BeginRequestBody::parse(&other).err(),
                EndRequestBody::parse(&other).err(),
                UnknownTypeBody::parse(&other).err(),
            ] {
                let ok = matches!(
                    e,
                    Some(Error::Malformed(Malformed::BodyLength { len, .. })) if len == other.len()
                );
                prop_assert!(ok, "{:?}", e);
            }
        }
    }

    /// Spec 3.4: `Params` encodes exactly as the spec says (1-byte lengths below 128, else
    /// 4 bytes with the high bit); the wire fed to `ParamsReader` in any pieces (splitting
    /// pairs and length prefixes anywhere) gives back equal `Params` (same order, same
    /// duplicates, same `get`/`get_all`); `decode_pairs` agrees; the byte limit is exact.
    #[test]
    fn params_round_trip_in_any_split(pairs in pairs(), sizes in chunk_sizes()) {
        let mut params = Params::new();
        let mut len = 0;
        for (n, v) in &pairs {
            params.push(n, v).unwrap();
            len += encoded_pair_len(n, v).unwrap();
            prop_assert_eq!(
                encoded_pair_len(n, v).unwrap(),
                length_prefix_len(n.len()) + length_prefix_len(v.len()) + n.len() + v.len()
            );
        }
        let wire = model_encode(&pairs);
        prop_assert_eq!(params.wire_bytes(), &wire[..]);
        prop_assert_eq!(wire.len(), len);
        prop_assert_eq!(params.len(), pairs.len());
        prop_assert_eq!(params.wire_pairs().collect::<Vec<_>>().concat(), wire.clone());
        for ((n, v), piece) in pairs.iter().zip(params.wire_pairs()) {
            let mut one = Vec::new();
            encode_pair(&mut one, n, v).unwrap();
            prop_assert_eq!(piece, &one[..]);
        }

        let read = read_params(&wire, wire.len(), &sizes).unwrap();
        prop_assert_eq!(&read, &params);
        let listed: Pairs =
            read.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
        prop_assert_eq!(&listed, &pairs);
        prop_assert_eq!(collect_pairs(&wire).unwrap(), pairs.clone());
        for (n, _) in &pairs {
            let last = pairs.iter().rev().find(|(m, _)| m == n).map(|(_, v)| &v[..]);
            prop_assert_eq!(read.get(n), last);
            let all: Vec<&[u8]> = pairs.iter().filter(|(m, _)| m == n).map(|(_, v)| &v[..]).collect();
            prop_assert_eq!(read.get_all(n).collect::<Vec<_>>(), all);
        }
        prop_assert_eq!(read.get(b"\xFFabsent\xFF"), None);

        if !wire.is_empty() {
            let limit = wire.len() - 1;
            prop_assert_eq!(
                read_params(&wire, limit, &sizes),
                Err(Error::Limit(LimitExceeded::Params { limit }))
            );
        }
    }

    /// Spec 3.4: a block cut anywhere decodes iff the cut is between pairs; otherwise both
    /// `decode_pairs` and `ParamsReader::finish` report `TruncatedPair`.
    #[test]
    fn truncated_params_are_detected(pairs in pairs(), cut in any::<Index>(), sizes in chunk_sizes()) {
        let wire = model_encode(&pairs);
        let cut = cut.index(wire.len() + 1);
        let mut boundaries = vec![0];
        for i in 1..=pairs.len() {
            boundaries.push(model_encode(&pairs[..i]).len());
        }
        let block = &wire[..cut];
        let whole = boundaries.contains(&cut);
        let decoded = collect_pairs(block);
        let read = read_params(block, wire.len(), &sizes);
        if whole {
            prop_assert!(decoded.is_ok() && read.is_ok());
        } else {
            prop_assert_eq!(decoded, Err(Malformed::TruncatedPair.into()));
            prop_assert_eq!(read, Err(Malformed::TruncatedPair.into()));
        }
    }

    /// Garbage never panics: `decode_pairs` succeeds or reports `TruncatedPair`;
    /// `ParamsReader` (with the block's own size as limit, in any pieces) succeeds exactly
    /// when `decode_pairs` does, with the same pairs, and otherwise fails with
    /// `TruncatedPair` or the limit (a declared length beyond the block); with a small
    /// limit it fails only with those two errors.
    #[test]
    fn garbage_pairs_fail_cleanly(block in garbage(), sizes in chunk_sizes(), small in 0usize..=16) {
        let decoded = collect_pairs(&block);
        if let Err(e) = &decoded {
            prop_assert_eq!(*e, Malformed::TruncatedPair.into());
        }
        let limit = block.len();
        match (read_params(&block, limit, &sizes), &decoded) {
            (Ok(params), Ok(pairs)) => {
                let listed: Pairs =
                    params.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
                prop_assert_eq!(&listed, pairs);
            }
            (Err(e), Err(_)) => prop_assert!(
                e == Malformed::TruncatedPair.into()
                    || e == Error::Limit(LimitExceeded::Params { limit }),
                "{:?}", e
            ),
            (r, d) => prop_assert!(false, "reader {:?} vs decode_pairs {:?}", r, d),
        }
        if let Err(e) = read_params(&block, small, &sizes) {
            prop_assert!(
                e == Malformed::TruncatedPair.into()
                    || e == Error::Limit(LimitExceeded::Params { limit: small }),
                "{:?}", e
            );
        }
    }

    /// Hostile input to the application side never panics; a failure is a protocol error
    /// (never an API error), latched for later calls; queued events never exceed the input
    /// budget by more than one event; with output never written, the transmit queue stops
    /// growing at its cap (one answer over at most) and input stops being consumed. When
    /// output is written, random application commands in between are either accepted or
    /// refused with an API error.
    #[test]
    fn server_survives_hostile_input(
        wire in hostile_stream(true),
        sizes in chunk_sizes(),
        multiplex in any::<bool>(),
        drain_output in any::<bool>(),
        budget in 1usize..=2048,
        commands in prop::collection::vec(any::<u8>(), 0..=64),
    ) {
        let mut config = ServerConfig::default();
        config.multiplex = multiplex;
        config.roles = RoleSet::ALL;
        config.limits.max_concurrent_requests = 2;
        config.limits.max_buffered_input = budget;
        config.limits.max_params_bytes = 256;
        config.limits.max_buffered_output = OUTPUT_CAP;
        let mut conn = ServerConnection::new(config);
        let mut input = BytesMut::new();
        let mut command = commands.iter().cycle();
        let mut failed = None;
        'feed: for piece in Chunker::new(sizes).split(&wire) {
            input.extend_from_slice(piece);
            loop {
                let before = input.len();
                if let Err(e) = conn.handle_input(&mut input) {
                    prop_assert!(!matches!(e, Error::Api(_)), "{:?}", e);
                    prop_assert_eq!(conn.handle_input(&mut input), Err(e));
                    prop_assert!(!conn.wants_input());
                    failed = Some(e);
                    break 'feed;
                }
                let mut costs = Vec::new();
                let mut ids = Vec::new();
                // Peek at the whole queue before reacting: the bound is on what one
                // handle_input call queued.
                while let Some(ev) = conn.poll_event() {
                    costs.push(server_event_cost(&ev));
                    if let server::Event::BeginRequest { id, .. }
                    | server::Event::Params { id, .. }
                    | server::Event::Abort { id }
                    | server::Event::StdinEnd { id } = ev
                    {
                        ids.push(id);
                    }
                }
                check_event_bound(&costs, budget)?;
                if drain_output {
                for id in ids {
                    let c = command.next().copied().unwrap_or(0);
                    let r = match c % 4 {
                        0 => conn.send_stdout(id, Bytes::from_static(b"out")),
                        1 => conn.send_stderr(id, Bytes::from_static(b"err")),
                        2 => conn.end_request(id, u32::from(c), ProtocolStatus::from(c / 4)),
                        _ => Ok(()),
                    };
                    prop_assert!(matches!(r, Ok(()) | Err(Error::Api(_))), "{:?}", r);
                }
                    while conn.poll_transmit().is_some() {}
                } else {
                    // Nobody writes the output: it may exceed the cap by one answer only.
                    prop_assert!(conn.transmit_len() <= OUTPUT_CAP + ONE_ANSWER, "{}", conn.transmit_len());
                }
                if input.is_empty() {
                    break;
                }
                if input.len() == before && costs.is_empty() {
                    // Stalled: only a full transmit queue may stop consumption.
                    prop_assert!(!drain_output && !conn.wants_input());
                    break 'feed;
                }
            }
        }
        if failed.is_none() {
            let eof = conn.handle_eof();
            prop_assert!(matches!(eof, Ok(()) | Err(Error::Malformed(Malformed::TruncatedRecord))));
            while conn.poll_event().is_some() {}
        }
    }

    /// Hostile input to the web-server side (with requests in flight) never panics; a
    /// failure is a protocol or limit error, latched; queued events stay within budget.
    #[test]
    fn client_survives_hostile_input(
        wire in hostile_stream(false),
        sizes in chunk_sizes(),
        in_flight in 1u16..=3,
        budget in 1usize..=2048,
    ) {
        let mut config = ClientConfig::default();
        config.max_concurrent_requests = 3;
        config.limits.max_buffered_input = budget;
        config.limits.max_params_bytes = 64;
        let mut conn = ClientConnection::new(config);
        for _ in 0..in_flight {
            let id = conn.begin_request(Role::Responder, true).unwrap();
            conn.send_param(id, b"A", b"B").unwrap();
        }
        while conn.poll_transmit().is_some() {}
        let mut input = BytesMut::new();
        'feed: for piece in Chunker::new(sizes).split(&wire) {
            input.extend_from_slice(piece);
            loop {
                let before = input.len();
                if let Err(e) = conn.handle_input(&mut input) {
                    prop_assert!(!matches!(e, Error::Api(_)), "{:?}", e);
                    prop_assert_eq!(conn.handle_input(&mut input), Err(e));
                    prop_assert!(!conn.wants_input());
                    break 'feed;
                }
                let mut costs = Vec::new();
                while let Some(ev) = conn.poll_event() {
                    costs.push(client_event_cost(&ev));
                }
                check_event_bound(&costs, budget)?;
                prop_assert!(conn.poll_transmit().is_none(), "input made the client write");
                if input.is_empty() {
                    break;
                }
                prop_assert!(input.len() < before || !costs.is_empty(), "stalled");
            }
        }
        conn.handle_eof();
        while conn.poll_event().is_some() {}
        prop_assert_eq!(conn.requests_in_flight(), 0);
    }

    /// `handle_eof` reports `TruncatedRecord` exactly when the peer stopped inside a
    /// record, whatever the input splits and the back-pressure budget (a complete last
    /// record is never taken for a truncated one).
    #[test]
    fn eof_detects_truncation_exactly(
        stdin in prop::collection::vec((1usize..=300, prop_oneof![Just(0u8), 0u8..=7, any::<u8>()]), 1..=8),
        cut in (any::<Index>(), any::<bool>(), -2isize..=2),
        sizes in chunk_sizes(),
        budget in prop_oneof![1usize..=200, Just(256 * 1024)],
    ) {
        let mut wire = Vec::new();
        let mut ends = vec![0];
        let mut push = |wire: &mut Vec<u8>, h: Header, content: &[u8]| {
            wire.extend_from_slice(&h.to_array());
            wire.extend_from_slice(content);
            wire.extend(std::iter::repeat_n(0u8, usize::from(h.padding_length)));
            ends.push(wire.len());
        };
        let begin = BeginRequestBody { role: Role::Responder, keep_conn: true }.to_array();
        push(&mut wire, Header::new(RecordType::BeginRequest, 1, 8, 0), &begin);
        push(&mut wire, Header::new(RecordType::Params, 1, 0, 3), &[]);
        for (i, &(len, pad)) in stdin.iter().enumerate() {
            let content = pattern(i as u64, len);
            push(&mut wire, Header::new(RecordType::Stdin, 1, len as u16, pad), &content);
        }
        // Anywhere, or close to a record end (where a wrong answer is likeliest).
        let (at, near_end, delta) = cut;
        let cut = if near_end {
            let end = ends[at.index(ends.len())];
            end.saturating_add_signed(delta).min(wire.len())
        } else {
            at.index(wire.len() + 1)
        };
        let mut config = ServerConfig::default();
        config.limits.max_buffered_input = budget;
        let mut conn = ServerConnection::new(config);
        let mut input = BytesMut::new();
        let mut stdin_bytes = 0;
        for piece in Chunker::new(sizes).split(&wire[..cut]) {
            input.extend_from_slice(piece);
            loop {
                conn.handle_input(&mut input).unwrap();
                let mut n = 0;
                while let Some(ev) = conn.poll_event() {
                    if let server::Event::Stdin { data, .. } = ev {
                        stdin_bytes += data.len();
                    }
                    n += 1;
                }
                if input.is_empty() {
                    break;
                }
                prop_assert!(n > 0, "stalled");
            }
        }
        let eof = conn.handle_eof();
        if ends.contains(&cut) {
            prop_assert_eq!(eof, Ok(()));
        } else {
            prop_assert_eq!(eof, Err(Malformed::TruncatedRecord.into()));
        }
        // Every content byte that arrived was delivered, truncated record or not.
        let mut expected = 0;
        let mut at = ends[2];
        for &(len, pad) in &stdin {
            let start = at + 8;
            expected += cut.clamp(start, start + len) - start;
            at = start + len + usize::from(pad);
        }
        prop_assert_eq!(stdin_bytes, expected);
    }
}

/// Every type byte, role and protocol status value survives the enum round trip.
#[test]
fn enum_values_round_trip() {
    for b in 0..=u8::MAX {
        assert_eq!(u8::from(RecordType::from(b)), b);
        assert_eq!(u8::from(ProtocolStatus::from(b)), b);
        assert_eq!(
            RecordType::from(b).is_stream(),
            matches!(b, 4..=8),
            "type {b}"
        );
    }
    for r in [0u16, 1, 2, 3, 4, 255, 256, u16::MAX] {
        assert_eq!(u16::from(Role::from(r)), r);
    }
}
