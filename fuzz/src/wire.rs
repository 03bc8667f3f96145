//! Reference parsers for records (spec 3.3) and name-value pairs (spec 3.4), written
//! independently of `fcgi_core`, and checkers for the byte streams each side writes.
//!
//! The checkers panic (which the fuzzer reports as a crash) when a stream breaks a rule the
//! writer promises: version 1, zero reserved byte, padding exactly as the policy says and
//! made of zeros, stream terminators once and last, nothing for a request after its
//! `END_REQUEST` (server), no stream record after `ABORT_REQUEST` (client), name-value pairs
//! not split across
//! records unless they cannot fit in one.

use std::collections::BTreeMap;

use fcgi_core::record::Padding;

/// Record type bytes (spec 8).
pub mod ty {
    /// `FCGI_BEGIN_REQUEST`
    pub const BEGIN: u8 = 1;
    /// `FCGI_ABORT_REQUEST`
    pub const ABORT: u8 = 2;
    /// `FCGI_END_REQUEST`
    pub const END: u8 = 3;
    /// `FCGI_PARAMS`
    pub const PARAMS: u8 = 4;
    /// `FCGI_STDIN`
    pub const STDIN: u8 = 5;
    /// `FCGI_STDOUT`
    pub const STDOUT: u8 = 6;
    /// `FCGI_STDERR`
    pub const STDERR: u8 = 7;
    /// `FCGI_DATA`
    pub const DATA: u8 = 8;
    /// `FCGI_GET_VALUES`
    pub const GET_VALUES: u8 = 9;
    /// `FCGI_GET_VALUES_RESULT`
    pub const GET_VALUES_RESULT: u8 = 10;
    /// `FCGI_UNKNOWN_TYPE`
    pub const UNKNOWN_TYPE: u8 = 11;
}

/// One record found by [`parse_records`]: its content is complete, its padding may not be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefRecord<'a> {
    /// Version byte.
    pub version: u8,
    /// Type byte.
    pub rtype: u8,
    /// Request id.
    pub id: u16,
    /// Content bytes (complete).
    pub content: &'a [u8],
    /// Declared padding length.
    pub padding_len: u8,
    /// The padding bytes present in the input (fewer than declared if the input ends).
    pub padding: &'a [u8],
    /// The reserved header byte.
    pub reserved: u8,
}

/// What [`parse_records`] found.
#[derive(Debug, Clone)]
pub struct Parsed<'a> {
    /// Every record whose content is complete, in order.
    pub records: Vec<RefRecord<'a>>,
    /// True when the input ends exactly at a record boundary (padding included).
    pub at_boundary: bool,
}

/// Splits a byte stream into records, the simple way: one pass over one slice.
pub fn parse_records(buf: &[u8]) -> Parsed<'_> {
    let mut records = Vec::new();
    let mut rest = buf;
    loop {
        if rest.len() < 8 {
            return Parsed {
                records,
                at_boundary: rest.is_empty(),
            };
        }
        let clen = usize::from(rest[4]) << 8 | usize::from(rest[5]);
        let plen = rest[6];
        if rest.len() < 8 + clen {
            return Parsed {
                records,
                at_boundary: false,
            };
        }
        let pad_have = usize::from(plen).min(rest.len() - 8 - clen);
        records.push(RefRecord {
            version: rest[0],
            rtype: rest[1],
            id: u16::from(rest[2]) << 8 | u16::from(rest[3]),
            content: &rest[8..8 + clen],
            padding_len: plen,
            padding: &rest[8 + clen..8 + clen + pad_have],
            reserved: rest[7],
        });
        if pad_have < usize::from(plen) {
            return Parsed {
                records,
                at_boundary: false,
            };
        }
        rest = &rest[8 + clen + pad_have..];
    }
}

/// A name-value pair, owned.
pub type Pair = (Vec<u8>, Vec<u8>);

fn ref_len(b: &[u8]) -> Option<(usize, usize)> {
    let first = *b.first()?;
    if first < 0x80 {
        return Some((usize::from(first), 1));
    }
    if b.len() < 4 {
        return None;
    }
    let n = (usize::from(first & 0x7F) << 24)
        | (usize::from(b[1]) << 16)
        | (usize::from(b[2]) << 8)
        | usize::from(b[3]);
    Some((n, 4))
}

/// `(name, value, total wire size, both lengths canonical)`.
type RefPair<'a> = (&'a [u8], &'a [u8], usize, bool);

/// One pair at the front of `b`.
fn ref_pair(b: &[u8]) -> Option<RefPair<'_>> {
    let (nl, a) = ref_len(b)?;
    let (vl, c) = ref_len(&b[a..])?;
    let start = a + c;
    if b.len() - start < nl || b.len() - start - nl < vl {
        return None;
    }
    let canonical = (nl < 128) == (a == 1) && (vl < 128) == (c == 1);
    Some((
        &b[start..start + nl],
        &b[start + nl..start + nl + vl],
        start + nl + vl,
        canonical,
    ))
}

/// A borrowed name-value pair.
pub type PairRef<'a> = (&'a [u8], &'a [u8]);

/// The complete pairs at the front of `block` and how many bytes they take.
pub fn parse_pairs_prefix(block: &[u8]) -> (Vec<PairRef<'_>>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some((n, v, total, _)) = ref_pair(&block[at..]) {
        out.push((n, v));
        at += total;
    }
    (out, at)
}

/// Every pair of `block`, or `None` when it ends inside a pair.
pub fn parse_pairs(block: &[u8]) -> Option<Vec<PairRef<'_>>> {
    let (pairs, used) = parse_pairs_prefix(block);
    (used == block.len()).then_some(pairs)
}

/// True when every length prefix of a well-formed `block` uses the shortest form.
pub fn is_canonical(block: &[u8]) -> bool {
    let mut at = 0;
    while let Some((_, _, total, canonical)) = ref_pair(&block[at..]) {
        if !canonical {
            return false;
        }
        at += total;
    }
    true
}

/// Appends a pair in the canonical wire form.
pub fn encode_pair(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    for len in [name.len(), value.len()] {
        if len < 128 {
            out.push(len as u8);
        } else {
            out.extend_from_slice(&(len as u32 | 0x8000_0000).to_be_bytes());
        }
    }
    out.extend_from_slice(name);
    out.extend_from_slice(value);
}

/// Wire size of a pair in canonical form.
pub fn encoded_pair_len(name: &[u8], value: &[u8]) -> usize {
    let prefix = |n: usize| if n < 128 { 1 } else { 4 };
    prefix(name.len()) + prefix(value.len()) + name.len() + value.len()
}

/// Padding the policy prescribes after `clen` content bytes: up to the next multiple of 8,
/// except that content + padding never exceeds 65535 (content above 65528 gets none).
pub fn padding_for(padding: Padding, clen: usize) -> usize {
    match padding {
        Padding::Align8 => {
            let pad = (8 - clen % 8) % 8;
            if clen + pad > 65535 { 0 } else { pad }
        }
        _ => 0,
    }
}

/// Largest record content under the policy.
pub fn max_content(padding: Padding) -> usize {
    match padding {
        Padding::Align8 => 65528,
        _ => 65535,
    }
}

/// Bytes a stream send of `len` payload bytes adds to the transmit queue.
pub fn stream_wire_len(len: usize, padding: Padding) -> usize {
    let max = max_content(padding);
    let mut left = len;
    let mut total = 0;
    while left > 0 {
        let piece = left.min(max);
        total += 8 + piece + padding_for(padding, piece);
        left -= piece;
    }
    total
}

/// Bytes one record with `clen` content bytes takes.
pub fn record_wire_len(clen: usize, padding: Padding) -> usize {
    8 + clen + padding_for(padding, clen)
}

/// The framing rules every record we write obeys.
fn check_framing(r: &RefRecord<'_>, padding: Padding) {
    assert_eq!(r.version, 1, "written record with version {}", r.version);
    assert_eq!(r.reserved, 0, "written record with non-zero reserved byte");
    // Records of a request carry at most what the policy allows; a management record
    // (a name-value block) may use all 65535 bytes.
    assert!(
        r.id == 0 || r.content.len() <= max_content(padding),
        "record too long"
    );
    assert_eq!(
        usize::from(r.padding_len),
        padding_for(padding, r.content.len()),
        "padding does not follow the policy {padding:?}"
    );
    assert!(r.padding.iter().all(|&b| b == 0), "non-zero padding bytes");
}

/// One request's worth of a server's output: the records between two `END_REQUEST`s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerSegment {
    /// `STDOUT` content.
    pub stdout: Vec<u8>,
    /// `STDERR` content.
    pub stderr: Vec<u8>,
    /// An empty `STDOUT` record was seen.
    pub stdout_closed: bool,
    /// An empty `STDERR` record was seen.
    pub stderr_closed: bool,
    /// `(app_status, protocol_status)` of the closing `END_REQUEST`, if any.
    pub end: Option<(u32, u8)>,
}

/// A server's whole output, checked and sorted by request.
#[derive(Debug, Clone, Default)]
pub struct ServerWire {
    /// Per request id, its segments in order (the last one may be open).
    pub segments: BTreeMap<u16, Vec<ServerSegment>>,
    /// `GET_VALUES_RESULT` answers.
    pub values: Vec<Vec<Pair>>,
    /// Type bytes reported in `UNKNOWN_TYPE`.
    pub unknown_types: Vec<u8>,
}

impl ServerWire {
    /// All `STDOUT` bytes written for `id`, across its segments.
    pub fn stdout(&self, id: u16) -> Vec<u8> {
        self.segments
            .get(&id)
            .map(|s| s.iter().map(|g| &g.stdout[..]).collect::<Vec<_>>().concat())
            .unwrap_or_default()
    }

    /// All `STDERR` bytes written for `id`.
    pub fn stderr(&self, id: u16) -> Vec<u8> {
        self.segments
            .get(&id)
            .map(|s| s.iter().map(|g| &g.stderr[..]).collect::<Vec<_>>().concat())
            .unwrap_or_default()
    }

    /// The `END_REQUEST`s written for `id`, in order.
    pub fn ends(&self, id: u16) -> Vec<(u32, u8)> {
        self.segments
            .get(&id)
            .map(|s| s.iter().filter_map(|g| g.end).collect())
            .unwrap_or_default()
    }
}

/// Checks everything a `ServerConnection` wrote and sorts it by request.
pub fn check_server_wire(wire: &[u8], padding: Padding) -> ServerWire {
    let parsed = parse_records(wire);
    assert!(
        parsed.at_boundary,
        "server output does not end at a record boundary"
    );
    let mut out = ServerWire::default();
    for r in &parsed.records {
        check_framing(r, padding);
        if r.id == 0 {
            match r.rtype {
                ty::GET_VALUES_RESULT => {
                    let pairs = parse_pairs(r.content).expect("GET_VALUES_RESULT with bad pairs");
                    out.values.push(
                        pairs
                            .iter()
                            .map(|(n, v)| (n.to_vec(), v.to_vec()))
                            .collect(),
                    );
                }
                ty::UNKNOWN_TYPE => {
                    assert_eq!(r.content.len(), 8, "UNKNOWN_TYPE body length");
                    assert!(
                        r.content[1..].iter().all(|&b| b == 0),
                        "UNKNOWN_TYPE reserved"
                    );
                    assert_ne!(r.content[0], ty::GET_VALUES, "GET_VALUES reported unknown");
                    out.unknown_types.push(r.content[0]);
                }
                t => panic!("server wrote management record of type {t}"),
            }
            continue;
        }
        let segs = out.segments.entry(r.id).or_default();
        if segs.last().is_none_or(|s| s.end.is_some()) {
            segs.push(ServerSegment::default());
        }
        let seg = segs.last_mut().expect("pushed above");
        match r.rtype {
            ty::STDOUT => {
                assert!(
                    !seg.stdout_closed,
                    "STDOUT after its terminator (id {})",
                    r.id
                );
                if r.content.is_empty() {
                    seg.stdout_closed = true;
                } else {
                    seg.stdout.extend_from_slice(r.content);
                }
            }
            ty::STDERR => {
                assert!(
                    !seg.stderr_closed,
                    "STDERR after its terminator (id {})",
                    r.id
                );
                if r.content.is_empty() {
                    assert!(!seg.stderr.is_empty(), "empty STDERR stream terminated");
                    seg.stderr_closed = true;
                } else {
                    seg.stderr.extend_from_slice(r.content);
                }
            }
            ty::END => {
                assert_eq!(r.content.len(), 8, "END_REQUEST body length");
                assert!(
                    r.content[5..].iter().all(|&b| b == 0),
                    "END_REQUEST reserved"
                );
                if !seg.stdout.is_empty() {
                    assert!(seg.stdout_closed, "END_REQUEST before STDOUT terminator");
                }
                if !seg.stderr.is_empty() {
                    assert!(seg.stderr_closed, "END_REQUEST before STDERR terminator");
                }
                let app =
                    u32::from_be_bytes([r.content[0], r.content[1], r.content[2], r.content[3]]);
                seg.end = Some((app, r.content[4]));
            }
            t => panic!("server wrote record type {t} for request {}", r.id),
        }
    }
    out
}

/// One request's worth of a client's output: from its `BEGIN_REQUEST` to the next one
/// with the same id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientSegment {
    /// Role in `BEGIN_REQUEST`.
    pub role: u16,
    /// `FCGI_KEEP_CONN` flag.
    pub keep_conn: bool,
    /// `PARAMS` content, concatenated.
    pub params: Vec<u8>,
    /// Content length of each non-empty `PARAMS` record.
    pub params_records: Vec<usize>,
    /// An empty `PARAMS` record was seen.
    pub params_closed: bool,
    /// `STDIN` content.
    pub stdin: Vec<u8>,
    /// An empty `STDIN` record was seen.
    pub stdin_closed: bool,
    /// `DATA` content.
    pub data: Vec<u8>,
    /// An empty `DATA` record was seen.
    pub data_closed: bool,
    /// `ABORT_REQUEST` was sent.
    pub aborted: bool,
}

/// A client's whole output, checked and sorted by request.
#[derive(Debug, Clone, Default)]
pub struct ClientWire {
    /// Per request id, its segments in order.
    pub segments: BTreeMap<u16, Vec<ClientSegment>>,
    /// Names asked for in each `GET_VALUES`.
    pub get_values: Vec<Vec<Vec<u8>>>,
}

/// Checks everything a `ClientConnection` wrote and sorts it by request.
pub fn check_client_wire(wire: &[u8], padding: Padding) -> ClientWire {
    let parsed = parse_records(wire);
    assert!(
        parsed.at_boundary,
        "client output does not end at a record boundary"
    );
    let mut out = ClientWire::default();
    for r in &parsed.records {
        check_framing(r, padding);
        if r.id == 0 {
            assert_eq!(
                r.rtype,
                ty::GET_VALUES,
                "client wrote management type {}",
                r.rtype
            );
            let pairs = parse_pairs(r.content).expect("GET_VALUES with bad pairs");
            assert!(
                pairs.iter().all(|(_, v)| v.is_empty()),
                "GET_VALUES with a value"
            );
            out.get_values
                .push(pairs.iter().map(|(n, _)| n.to_vec()).collect());
            continue;
        }
        let segs = out.segments.entry(r.id).or_default();
        if r.rtype == ty::BEGIN {
            assert_eq!(r.content.len(), 8, "BEGIN_REQUEST body length");
            assert!(r.content[2] & !1 == 0, "unknown BEGIN_REQUEST flag bits");
            assert!(
                r.content[3..].iter().all(|&b| b == 0),
                "BEGIN_REQUEST reserved"
            );
            segs.push(ClientSegment {
                role: u16::from_be_bytes([r.content[0], r.content[1]]),
                keep_conn: r.content[2] & 1 != 0,
                ..ClientSegment::default()
            });
            continue;
        }
        let seg = segs
            .last_mut()
            .unwrap_or_else(|| panic!("record type {} for never-begun id {}", r.rtype, r.id));
        let empty = r.content.is_empty();
        match r.rtype {
            ty::PARAMS => {
                assert!(!seg.params_closed && !seg.aborted, "PARAMS after end/abort");
                if empty {
                    seg.params_closed = true;
                    check_params_split(&seg.params, &seg.params_records, padding);
                } else {
                    seg.params.extend_from_slice(r.content);
                    seg.params_records.push(r.content.len());
                }
            }
            ty::STDIN => {
                assert!(seg.params_closed, "STDIN before PARAMS ended");
                assert_ne!(seg.role, 2, "STDIN for an Authorizer");
                assert!(!seg.stdin_closed && !seg.aborted, "STDIN after end/abort");
                if empty {
                    seg.stdin_closed = true;
                } else {
                    seg.stdin.extend_from_slice(r.content);
                }
            }
            ty::DATA => {
                assert_eq!(seg.role, 3, "DATA for a non-Filter request");
                assert!(seg.stdin_closed, "DATA before STDIN ended");
                assert!(!seg.data_closed && !seg.aborted, "DATA after end/abort");
                if empty {
                    seg.data_closed = true;
                } else {
                    seg.data.extend_from_slice(r.content);
                }
            }
            ty::ABORT => {
                // `abort` may be called again while the request is in flight; each call
                // sends one more (harmless) ABORT_REQUEST.
                assert!(empty, "ABORT_REQUEST with content");
                seg.aborted = true;
            }
            t => panic!("client wrote record type {t} for request {}", r.id),
        }
    }
    out
}

/// A complete `PARAMS` stream decodes, and no pair that fits in one record is split.
fn check_params_split(block: &[u8], records: &[usize], padding: Padding) {
    let pairs = parse_pairs(block).expect("PARAMS stream ends inside a pair");
    let mut boundaries = Vec::new();
    let mut at = 0;
    for len in records {
        at += len;
        boundaries.push(at);
    }
    let mut start = 0;
    for (n, v) in pairs {
        let total = encoded_pair_len(n, v);
        let end = start + total;
        if total <= max_content(padding) {
            assert!(
                !boundaries.iter().any(|&b| b > start && b < end),
                "a {total}-byte pair was split across PARAMS records"
            );
        }
        start = end;
    }
}

/// Where the first incomplete pair of `partial` (a prefix of a block) will end, if both of
/// its length prefixes are already there.
pub fn pending_pair_end(partial: &[u8]) -> Option<usize> {
    PairScanner::default().pending_end(partial)
}

/// [`pending_pair_end`] for the growing prefixes of one block, without parsing the pairs
/// already found again at each step (which made a block fed in N pieces cost N² work).
#[derive(Debug, Clone, Default)]
pub struct PairScanner {
    /// Bytes taken by the complete pairs found so far.
    complete: usize,
}

impl PairScanner {
    /// `pending_pair_end(partial)`, where `partial` extends the prefix of the previous call.
    pub fn pending_end(&mut self, partial: &[u8]) -> Option<usize> {
        while let Some((_, _, total, _)) = ref_pair(&partial[self.complete..]) {
            self.complete += total;
        }
        let rest = &partial[self.complete..];
        let (nl, a) = ref_len(rest)?;
        let (vl, c) = ref_len(&rest[a..])?;
        Some(self.complete + a + c + nl + vl)
    }
}
