//! Helpers shared by the integration tests.
//!
//! Records and name-value pairs are built and parsed here by hand, without the crate's own
//! codecs, so that a bug in those codecs cannot hide itself by being on both sides of a test.
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use fcgi_core::Error;
use fcgi_core::client::{self, ClientConnection};
use fcgi_core::server::{self, ServerConnection};

// Record type bytes (spec section 8).
pub(crate) const BEGIN_REQUEST: u8 = 1;
pub(crate) const ABORT_REQUEST: u8 = 2;
pub(crate) const END_REQUEST: u8 = 3;
pub(crate) const PARAMS: u8 = 4;
pub(crate) const STDIN: u8 = 5;
pub(crate) const STDOUT: u8 = 6;
pub(crate) const STDERR: u8 = 7;
pub(crate) const DATA: u8 = 8;
pub(crate) const GET_VALUES: u8 = 9;
pub(crate) const GET_VALUES_RESULT: u8 = 10;
pub(crate) const UNKNOWN_TYPE: u8 = 11;

// Role values (spec section 5.1).
pub(crate) const RESPONDER: u16 = 1;
pub(crate) const AUTHORIZER: u16 = 2;
pub(crate) const FILTER: u16 = 3;

/// Number of proptest cases: 256 unless `PROPTEST_CASES` says otherwise.
pub(crate) fn proptest_cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// One record with every byte chosen by the caller (version, padding bytes included).
pub(crate) fn raw_record(
    version: u8,
    rtype: u8,
    id: u16,
    content: &[u8],
    padding: &[u8],
) -> Vec<u8> {
    assert!(content.len() <= 0xFFFF && padding.len() <= 0xFF);
    let mut out = Vec::with_capacity(8 + content.len() + padding.len());
    out.push(version);
    out.push(rtype);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&(content.len() as u16).to_be_bytes());
    out.push(padding.len() as u8);
    out.push(0);
    out.extend_from_slice(content);
    out.extend_from_slice(padding);
    out
}

/// A version-1 record padded with zeros to a multiple of 8, as nginx and php-fpm write them.
pub(crate) fn record(rtype: u8, id: u16, content: &[u8]) -> Vec<u8> {
    let pad = (8 - content.len() % 8) % 8;
    raw_record(1, rtype, id, content, &vec![0; pad])
}

/// A version-1 record with `pad_len` padding bytes of non-zero garbage.
pub(crate) fn record_padded(rtype: u8, id: u16, content: &[u8], pad_len: u8) -> Vec<u8> {
    let padding: Vec<u8> = (0..pad_len).map(|i| 0xA5 ^ i).collect();
    raw_record(1, rtype, id, content, &padding)
}

/// The 8-byte `BEGIN_REQUEST` body.
pub(crate) fn begin_body(role: u16, flags: u8) -> [u8; 8] {
    let r = role.to_be_bytes();
    [r[0], r[1], flags, 0, 0, 0, 0, 0]
}

/// A whole `BEGIN_REQUEST` record.
pub(crate) fn begin(id: u16, role: u16, keep_conn: bool) -> Vec<u8> {
    record(BEGIN_REQUEST, id, &begin_body(role, u8::from(keep_conn)))
}

/// The exact 16 bytes of an `END_REQUEST` record with zero padding and reserved bytes.
pub(crate) fn end_request_record(id: u16, app_status: u32, protocol_status: u8) -> Vec<u8> {
    let mut body = [0u8; 8];
    body[..4].copy_from_slice(&app_status.to_be_bytes());
    body[4] = protocol_status;
    record(END_REQUEST, id, &body)
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 128 {
        out.push(len as u8);
    } else {
        out.extend_from_slice(&(len as u32 | 0x8000_0000).to_be_bytes());
    }
}

/// One name-value pair in wire format.
pub(crate) fn nv(name: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    push_len(&mut out, name.len());
    push_len(&mut out, value.len());
    out.extend_from_slice(name);
    out.extend_from_slice(value);
    out
}

/// Several pairs in wire format, concatenated.
pub(crate) fn nv_block(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    pairs.iter().flat_map(|(n, v)| nv(n, v)).collect()
}

/// Decodes a complete name-value block; `None` if it ends inside a pair.
pub(crate) fn parse_nv_block(mut block: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    fn len(b: &mut &[u8]) -> Option<usize> {
        let first = *b.first()?;
        if first < 0x80 {
            *b = &b[1..];
            return Some(usize::from(first));
        }
        let four: [u8; 4] = b.get(..4)?.try_into().ok()?;
        *b = &b[4..];
        Some((u32::from_be_bytes(four) & 0x7FFF_FFFF) as usize)
    }
    let mut pairs = Vec::new();
    while !block.is_empty() {
        let n = len(&mut block)?;
        let v = len(&mut block)?;
        if block.len() < n + v {
            return None;
        }
        pairs.push((block[..n].to_vec(), block[n..n + v].to_vec()));
        block = &block[n + v..];
    }
    Some(pairs)
}

/// One record as the test's own parser sees it on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WireRecord {
    pub(crate) version: u8,
    pub(crate) rtype: u8,
    pub(crate) id: u16,
    pub(crate) reserved: u8,
    pub(crate) content: Vec<u8>,
    pub(crate) padding: Vec<u8>,
}

/// Splits bytes into records; panics if anything is left over.
pub(crate) fn parse_wire(mut bytes: &[u8]) -> Vec<WireRecord> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        assert!(bytes.len() >= 8, "partial header: {bytes:?}");
        let clen = usize::from(u16::from_be_bytes([bytes[4], bytes[5]]));
        let plen = usize::from(bytes[6]);
        assert!(bytes.len() >= 8 + clen + plen, "partial record");
        out.push(WireRecord {
            version: bytes[0],
            rtype: bytes[1],
            id: u16::from_be_bytes([bytes[2], bytes[3]]),
            reserved: bytes[7],
            content: bytes[8..8 + clen].to_vec(),
            padding: bytes[8 + clen..8 + clen + plen].to_vec(),
        });
        bytes = &bytes[8 + clen + plen..];
    }
    out
}

/// Asserts our output padding policy: version 1, reserved byte 0, zero padding bytes,
/// content + padding a multiple of 8 and never above 65535.
pub(crate) fn assert_aligned(records: &[WireRecord]) {
    for r in records {
        assert_eq!(r.version, 1);
        assert_eq!(r.reserved, 0);
        assert!(r.padding.iter().all(|&b| b == 0), "non-zero padding");
        assert_eq!(
            (r.content.len() + r.padding.len()) % 8,
            0,
            "not aligned: {r:?}"
        );
        assert!(r.padding.len() < 8, "more padding than needed");
        assert!(r.content.len() + r.padding.len() <= 0xFFFF);
    }
}

/// Concatenated content of every record of type `rtype` for `id`.
pub(crate) fn stream_content(records: &[WireRecord], rtype: u8, id: u16) -> Vec<u8> {
    records
        .iter()
        .filter(|r| r.rtype == rtype && r.id == id)
        .flat_map(|r| r.content.iter().copied())
        .collect()
}

/// A whole Responder request: BEGIN, PARAMS (one record + terminator), STDIN (+ terminator).
pub(crate) fn responder_request(
    id: u16,
    keep_conn: bool,
    pairs: &[(&[u8], &[u8])],
    stdin: &[u8],
) -> Vec<u8> {
    let mut out = begin(id, RESPONDER, keep_conn);
    let block = nv_block(pairs);
    if !block.is_empty() {
        out.extend(record(PARAMS, id, &block));
    }
    out.extend(record(PARAMS, id, &[]));
    if !stdin.is_empty() {
        out.extend(record(STDIN, id, stdin));
    }
    out.extend(record(STDIN, id, &[]));
    out
}

// ---- Server driving ----

/// Feeds `bytes` to the server in one `handle_input` call and returns the events.
pub(crate) fn try_feed_server(
    conn: &mut ServerConnection,
    bytes: &[u8],
) -> Result<Vec<server::Event>, Error> {
    let mut input = BytesMut::from(bytes);
    conn.handle_input(&mut input)?;
    assert!(
        input.is_empty(),
        "server left {} bytes unconsumed",
        input.len()
    );
    Ok(drain_server_events(conn))
}

/// Feeds `bytes` to the server and returns the events; panics on error.
pub(crate) fn feed_server(conn: &mut ServerConnection, bytes: &[u8]) -> Vec<server::Event> {
    match try_feed_server(conn, bytes) {
        Ok(events) => events,
        Err(e) => panic!("server handle_input failed: {e:?}"),
    }
}

pub(crate) fn drain_server_events(conn: &mut ServerConnection) -> Vec<server::Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

/// Everything in the server's transmit queue, via `poll_transmit`.
pub(crate) fn server_output(conn: &mut ServerConnection) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = conn.poll_transmit() {
        out.extend_from_slice(&chunk);
    }
    assert_eq!(conn.transmit_len(), 0);
    out
}

/// Server transmit queue parsed into records.
pub(crate) fn server_records(conn: &mut ServerConnection) -> Vec<WireRecord> {
    parse_wire(&server_output(conn))
}

// ---- Client driving ----

pub(crate) fn try_feed_client(
    conn: &mut ClientConnection,
    bytes: &[u8],
) -> Result<Vec<client::Event>, Error> {
    let mut input = BytesMut::from(bytes);
    conn.handle_input(&mut input)?;
    assert!(
        input.is_empty(),
        "client left {} bytes unconsumed",
        input.len()
    );
    Ok(drain_client_events(conn))
}

pub(crate) fn feed_client(conn: &mut ClientConnection, bytes: &[u8]) -> Vec<client::Event> {
    match try_feed_client(conn, bytes) {
        Ok(events) => events,
        Err(e) => panic!("client handle_input failed: {e:?}"),
    }
}

pub(crate) fn drain_client_events(conn: &mut ClientConnection) -> Vec<client::Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

pub(crate) fn client_output(conn: &mut ClientConnection) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = conn.poll_transmit() {
        out.extend_from_slice(&chunk);
    }
    assert_eq!(conn.transmit_len(), 0);
    out
}

pub(crate) fn client_records(conn: &mut ClientConnection) -> Vec<WireRecord> {
    parse_wire(&client_output(conn))
}

/// `n` bytes of a recognisable pattern.
pub(crate) fn pattern(n: usize) -> Bytes {
    (0..n).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into()
}

/// Merges consecutive stream-payload events of the same kind and id, so that event lists of
/// differently chunked inputs can be compared.
pub(crate) fn merge_server_events(events: Vec<server::Event>) -> Vec<server::Event> {
    use server::Event;
    let mut out: Vec<Event> = Vec::new();
    for ev in events {
        match (out.last_mut(), ev) {
            (Some(Event::Stdin { id: a, data: d }), Event::Stdin { id: b, data }) if *a == b => {
                *d = [&d[..], &data[..]].concat().into();
            }
            (Some(Event::Data { id: a, data: d }), Event::Data { id: b, data }) if *a == b => {
                *d = [&d[..], &data[..]].concat().into();
            }
            (_, ev) => out.push(ev),
        }
    }
    out
}

/// As [`merge_server_events`], for the client's `Stdout` / `Stderr`.
pub(crate) fn merge_client_events(events: Vec<client::Event>) -> Vec<client::Event> {
    use client::Event;
    let mut out: Vec<Event> = Vec::new();
    for ev in events {
        match (out.last_mut(), ev) {
            (Some(Event::Stdout { id: a, data: d }), Event::Stdout { id: b, data }) if *a == b => {
                *d = [&d[..], &data[..]].concat().into();
            }
            (Some(Event::Stderr { id: a, data: d }), Event::Stderr { id: b, data }) if *a == b => {
                *d = [&d[..], &data[..]].concat().into();
            }
            (_, ev) => out.push(ev),
        }
    }
    out
}
