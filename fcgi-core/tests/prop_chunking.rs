//! Chunking invariance: a valid byte stream fed to a connection in any split — whole, one
//! byte at a time, or random pieces — yields the same events (after joining adjacent
//! pieces of one stream, since record boundaries carry no meaning, spec 3.3) and the same
//! transmitted bytes. Both are also checked against an independent model of the spec, so
//! the suite proves correctness, not only consistency.
//!
//! Case counts: `PROPTEST_CASES` overrides the defaults; the RNG seed is fixed unless
//! `PROPTEST_RNG_SEED` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod pair;

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Bytes, BytesMut};
use fcgi_core::client::{self, ClientConfig, ClientConnection};
use fcgi_core::record::{Padding, Role};
use fcgi_core::server::{self, Rejection, RoleSet, ServerConfig, ServerConnection};
use fcgi_core::{Params, ProtocolStatus};
use pair::{Chunker, pattern};
use proptest::prelude::*;
use proptest::sample::Index;

// ---------------------------------------------------------------------------------------
// Records and helpers
// ---------------------------------------------------------------------------------------

/// A deterministic generator for the incidental bytes (padding lengths, reserved bytes).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A padding length for `len` content bytes: none, 8-aligned, or anything 0..=255
    /// (receivers must accept any padding).
    fn padding(&mut self, len: usize) -> u8 {
        match self.next() % 3 {
            0 => 0,
            1 => ((8 - len % 8) % 8) as u8,
            _ => (self.next() % 256) as u8,
        }
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        pattern(self.next(), len).to_vec()
    }
}

/// Each request's params, and their wire encoding.
type ParamsById = BTreeMap<u16, (Params, Vec<u8>)>;

/// One record as put on the wire by the generator.
#[derive(Debug, Clone)]
struct Rec {
    rtype: u8,
    id: u16,
    content: Vec<u8>,
    padding: u8,
    /// The header's reserved byte, which receivers must ignore.
    reserved: u8,
}

impl Rec {
    fn new(rng: &mut Rng, rtype: u8, id: u16, content: Vec<u8>) -> Self {
        let padding = rng.padding(content.len());
        let reserved = (rng.next() % 256) as u8;
        Self {
            rtype,
            id,
            content,
            padding,
            reserved,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let id = self.id.to_be_bytes();
        let len = u16::try_from(self.content.len()).unwrap().to_be_bytes();
        out.extend_from_slice(&[
            1,
            self.rtype,
            id[0],
            id[1],
            len[0],
            len[1],
            self.padding,
            self.reserved,
        ]);
        out.extend_from_slice(&self.content);
        // Padding bytes are garbage: receivers skip them without looking.
        out.extend((0..self.padding).map(|i| i.wrapping_mul(37) ^ 0xA5));
    }
}

/// Merges per-request record queues into one wire order, preserving each queue's order.
fn interleave(mut queues: Vec<Vec<Rec>>, choices: &[u8]) -> Vec<Rec> {
    for q in &mut queues {
        q.reverse();
    }
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        let live: Vec<usize> = (0..queues.len())
            .filter(|&i| !queues[i].is_empty())
            .collect();
        if live.is_empty() {
            return out;
        }
        let c = choices.get(at).map_or(at, |&c| usize::from(c));
        at += 1;
        let q = live[c % live.len()];
        out.push(queues[q].pop().unwrap());
    }
}

/// The record a connection writes, exactly (zero padding bytes).
fn record_bytes(rtype: u8, id: u16, content: &[u8], padding: Padding) -> Vec<u8> {
    let pad = padding.padding_for(content.len());
    let mut out = Vec::new();
    let id = id.to_be_bytes();
    let len = u16::try_from(content.len()).unwrap().to_be_bytes();
    out.extend_from_slice(&[1, rtype, id[0], id[1], len[0], len[1], pad, 0]);
    out.extend_from_slice(content);
    out.extend(std::iter::repeat_n(0u8, usize::from(pad)));
    out
}

/// Name-value encoding, written independently of the crate's encoder.
fn model_pair(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
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

fn model_len(buf: &[u8]) -> Option<(usize, usize)> {
    let first = *buf.first()?;
    if first & 0x80 == 0 {
        return Some((usize::from(first), 1));
    }
    let b: [u8; 4] = buf.get(..4)?.try_into().ok()?;
    Some(((u32::from_be_bytes(b) & 0x7FFF_FFFF) as usize, 4))
}

/// Whether a `PARAMS` stream whose first `prefix` bytes arrived is over `limit`: more bytes
/// than the limit, or a pair whose length prefixes are complete and that would end beyond
/// it (refused before its bytes arrive).
fn params_over_limit(prefix: &[u8], limit: usize) -> bool {
    if prefix.len() > limit {
        return true;
    }
    let mut at = 0;
    loop {
        let Some((name_len, a)) = model_len(&prefix[at..]) else {
            return false;
        };
        let Some((value_len, b)) = model_len(&prefix[at + a..]) else {
            return false;
        };
        let end = at + a + b + name_len + value_len;
        if end > prefix.len() {
            return end > limit;
        }
        at = end;
    }
}

/// Feeds `wire` to a connection in the pieces `chunker` gives, honouring back-pressure
/// (events are polled, output written, and the unconsumed rest fed again).
macro_rules! feed {
    ($conn:expr, $wire:expr, $chunker:expr, $events:expr, $tx:expr) => {{
        let mut input = BytesMut::new();
        for piece in $chunker.split($wire) {
            input.extend_from_slice(piece);
            loop {
                let before = input.len();
                $conn.handle_input(&mut input).expect("valid stream");
                let mut polled = 0;
                while let Some(ev) = $conn.poll_event() {
                    $events.push(ev);
                    polled += 1;
                }
                while let Some(chunk) = $conn.poll_transmit() {
                    $tx.extend_from_slice(&chunk);
                }
                if input.is_empty() {
                    break;
                }
                assert!(
                    input.len() < before || polled > 0,
                    "no progress with {} bytes pending",
                    input.len()
                );
            }
        }
    }};
}

fn join(a: &Bytes, b: &Bytes) -> Bytes {
    let mut v = a.to_vec();
    v.extend_from_slice(b);
    Bytes::from(v)
}

/// Joins adjacent pieces of the same stream of the same request.
fn normalize_server(events: Vec<server::Event>) -> Vec<server::Event> {
    use server::Event as E;
    let mut out: Vec<E> = Vec::new();
    for ev in events {
        match (out.last_mut(), &ev) {
            (Some(E::Stdin { id: a, data: d }), E::Stdin { id: b, data: e }) if a == b => {
                *d = join(d, e);
            }
            (Some(E::Data { id: a, data: d }), E::Data { id: b, data: e }) if a == b => {
                *d = join(d, e);
            }
            _ => out.push(ev),
        }
    }
    out
}

fn normalize_client(events: Vec<client::Event>) -> Vec<client::Event> {
    use client::Event as E;
    let mut out: Vec<E> = Vec::new();
    for ev in events {
        match (out.last_mut(), &ev) {
            (Some(E::Stdout { id: a, data: d }), E::Stdout { id: b, data: e }) if a == b => {
                *d = join(d, e);
            }
            (Some(E::Stderr { id: a, data: d }), E::Stderr { id: b, data: e }) if a == b => {
                *d = join(d, e);
            }
            _ => out.push(ev),
        }
    }
    out
}

/// A short description of an event (payloads by length only), for failure messages.
fn brief<E: std::fmt::Debug>(events: &[E], at: Option<usize>) -> String {
    let Some(at) = at else {
        return String::from("(common prefix)");
    };
    let lo = at.saturating_sub(2);
    events
        .iter()
        .enumerate()
        .skip(lo)
        .take(5)
        .map(|(i, e)| {
            let mut d = format!("{e:?}");
            d.truncate(90);
            format!("[{i}] {d}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn first_difference<E: PartialEq>(a: &[E], b: &[E]) -> Option<usize> {
    if a == b {
        return None;
    }
    Some(
        a.iter()
            .zip(b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len())),
    )
}

fn chunk_plans() -> impl Strategy<Value = Vec<Vec<usize>>> {
    prop::collection::vec(
        prop_oneof![
            prop::collection::vec(1usize..=9, 1..=8),
            prop::collection::vec(1usize..=300, 1..=8),
            prop::collection::vec(1usize..=20_000, 1..=4),
        ],
        2..=3,
    )
}

fn small_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        6 => 0usize..=16,
        3 => 120usize..=136,
        2 => 0usize..=700,
        1 => 2000usize..=5000,
    ]
}

// ---------------------------------------------------------------------------------------
// Web server → application
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct SrvReq {
    role: u16,
    flags: u8,
    /// (name length, value length); contents are seeded.
    pairs: Vec<(usize, usize)>,
    param_splits: Vec<Index>,
    stdin: Vec<usize>,
    data: Vec<usize>,
    /// Authorizers only: send the empty `STDIN` some web servers send anyway.
    authorizer_stdin: bool,
    abort: Option<Index>,
    double_abort: bool,
    /// A record of an unknown type (>= 12 or 0) at a random point.
    unknown: Option<(Index, u8)>,
}

#[derive(Debug, Clone)]
enum Mgmt {
    /// `GET_VALUES` for these names (indexes into `QUERY_NAMES`) with these value lengths.
    GetValues(Vec<(usize, usize)>),
    /// Any other type byte on id 0.
    Other(u8, usize),
}

const QUERY_NAMES: [&[u8]; 5] = [
    b"FCGI_MAX_CONNS",
    b"FCGI_MAX_REQS",
    b"FCGI_MPXS_CONNS",
    b"FCGI_SOMETHING",
    b"",
];

#[derive(Debug, Clone)]
struct SrvScenario {
    ids: BTreeSet<u16>,
    reqs: Vec<SrvReq>,
    mgmt: Vec<Mgmt>,
    /// Records for ids never begun: (type, id, content length).
    strays: Vec<(u8, u16, usize)>,
    choices: Vec<u8>,
    max_requests: u16,
    max_params_bytes: usize,
    max_buffered_input: usize,
    max_conns: u32,
    max_reqs: u32,
    padding: Padding,
    seed: u64,
    chunks: Vec<Vec<usize>>,
}

fn srv_req() -> impl Strategy<Value = SrvReq> {
    (
        prop_oneof![6 => 1u16..=3, 1 => Just(0u16), 1 => 4u16..=u16::MAX],
        any::<u8>(),
        prop::collection::vec(
            (
                small_len(),
                prop_oneof![8 => small_len(), 1 => 5000usize..=20_000],
            ),
            0..=6,
        ),
        prop::collection::vec(any::<Index>(), 0..=6),
        prop::collection::vec(1usize..=3000, 0..=4),
        prop::collection::vec(1usize..=3000, 0..=4),
        any::<bool>(),
        prop::option::weighted(0.25, any::<Index>()),
        any::<bool>(),
        prop::option::weighted(0.25, (any::<Index>(), prop_oneof![Just(0u8), 12u8..=255])),
    )
        .prop_map(
            |(
                role,
                flags,
                pairs,
                param_splits,
                stdin,
                data,
                authorizer_stdin,
                abort,
                double_abort,
                unknown,
            )| SrvReq {
                role,
                flags,
                pairs,
                param_splits,
                stdin,
                data,
                authorizer_stdin,
                abort,
                double_abort,
                unknown,
            },
        )
}

fn mgmt() -> impl Strategy<Value = Mgmt> {
    prop_oneof![
        prop::collection::vec(
            (
                0usize..QUERY_NAMES.len(),
                prop_oneof![4 => Just(0usize), 1 => 0usize..=200]
            ),
            0..=6
        )
        .prop_map(Mgmt::GetValues),
        (
            any::<u8>().prop_filter("not GET_VALUES", |t| *t != 9),
            0usize..=300
        )
            .prop_map(|(t, len)| Mgmt::Other(t, len)),
    ]
}

fn srv_scenario() -> impl Strategy<Value = SrvScenario> {
    (
        prop::collection::btree_set(prop_oneof![1u16..=12, 1u16..=u16::MAX], 1..=6),
        prop::collection::vec(srv_req(), 6),
        prop::collection::vec(mgmt(), 0..=4),
        prop::collection::vec(
            (
                prop::sample::select(vec![2u8, 3, 4, 5, 6, 8]),
                1u16..=u16::MAX,
                0usize..=64,
            ),
            0..=3,
        ),
        prop::collection::vec(any::<u8>(), 0..=256),
        1u16..=8,
        prop_oneof![256usize..=8192, Just(1 << 20)],
        prop_oneof![1usize..=256, 1usize..=8192, Just(256 * 1024)],
        (any::<u32>(), any::<u32>()),
        prop_oneof![Just(Padding::Align8), Just(Padding::None)],
        any::<u64>(),
        chunk_plans(),
    )
        .prop_map(
            |(
                ids,
                reqs,
                mgmt,
                strays,
                choices,
                max_requests,
                max_params_bytes,
                max_buffered_input,
                (max_conns, max_reqs),
                padding,
                seed,
                chunks,
            )| SrvScenario {
                ids,
                reqs,
                mgmt,
                strays,
                choices,
                max_requests,
                max_params_bytes,
                max_buffered_input,
                max_conns,
                max_reqs,
                padding,
                seed,
                chunks,
            },
        )
}

impl SrvScenario {
    fn config(&self) -> ServerConfig {
        let mut c = ServerConfig::default();
        c.multiplex = true;
        c.roles = RoleSet::ALL;
        c.limits.max_concurrent_requests = self.max_requests;
        c.max_conns = self.max_conns;
        c.max_reqs = self.max_reqs;
        c.padding = self.padding;
        c.limits.max_params_bytes = self.max_params_bytes;
        c.limits.max_buffered_input = self.max_buffered_input;
        c
    }

    /// The wire records, plus each request's params (for the model).
    fn records(&self) -> (Vec<Rec>, ParamsById) {
        let mut rng = Rng(self.seed);
        let mut queues = Vec::new();
        let mut params_of = BTreeMap::new();
        for (&id, spec) in self.ids.iter().zip(&self.reqs) {
            let mut q = Vec::new();
            let mut body = spec.role.to_be_bytes().to_vec();
            body.push(spec.flags);
            body.extend(rng.bytes(5)); // reserved bytes: ignored
            q.push(Rec::new(&mut rng, 1, id, body));
            let mut params = Params::new();
            let mut wire = Vec::new();
            for &(nl, vl) in &spec.pairs {
                let (n, v) = (rng.bytes(nl), rng.bytes(vl));
                params.push(&n, &v).unwrap();
                model_pair(&mut wire, &n, &v);
            }
            // PARAMS records split the block anywhere, even inside a length prefix.
            let mut cuts: Vec<usize> = spec
                .param_splits
                .iter()
                .map(|i| i.index(wire.len() + 1))
                .filter(|&p| p > 0 && p < wire.len())
                .collect();
            cuts.push(wire.len());
            cuts.sort_unstable();
            cuts.dedup();
            let mut from = 0;
            for cut in cuts {
                while from < cut {
                    let to = cut.min(from + 65_535);
                    q.push(Rec::new(&mut rng, 4, id, wire[from..to].to_vec()));
                    from = to;
                }
            }
            q.push(Rec::new(&mut rng, 4, id, Vec::new()));
            params_of.insert(id, (params, wire));
            let role = Role::from(spec.role);
            if role == Role::Authorizer {
                if spec.authorizer_stdin {
                    q.push(Rec::new(&mut rng, 5, id, Vec::new()));
                }
            } else {
                for &len in &spec.stdin {
                    let content = rng.bytes(len);
                    q.push(Rec::new(&mut rng, 5, id, content));
                }
                q.push(Rec::new(&mut rng, 5, id, Vec::new()));
            }
            if role == Role::Filter {
                for &len in &spec.data {
                    let content = rng.bytes(len);
                    q.push(Rec::new(&mut rng, 8, id, content));
                }
                q.push(Rec::new(&mut rng, 8, id, Vec::new()));
            }
            if let Some((at, t)) = &spec.unknown {
                let content = rng.bytes(20);
                let pos = 1 + at.index(q.len());
                q.insert(pos, Rec::new(&mut rng, *t, id, content));
            }
            if let Some(at) = &spec.abort {
                // The web server aborts after a random prefix and sends nothing more for
                // this request (except, maybe, a duplicate abort).
                q.truncate(1 + at.index(q.len()));
                q.push(Rec::new(&mut rng, 2, id, Vec::new()));
                if spec.double_abort {
                    q.push(Rec::new(&mut rng, 2, id, Vec::new()));
                }
            }
            queues.push(q);
        }
        for m in &self.mgmt {
            let rec = match m {
                Mgmt::GetValues(names) => {
                    let mut content = Vec::new();
                    for &(n, vl) in names {
                        let v = rng.bytes(vl);
                        model_pair(&mut content, QUERY_NAMES[n], &v);
                    }
                    Rec::new(&mut rng, 9, 0, content)
                }
                Mgmt::Other(t, len) => {
                    let content = rng.bytes(*len);
                    Rec::new(&mut rng, *t, 0, content)
                }
            };
            queues.push(vec![rec]);
        }
        for &(t, id, len) in &self.strays {
            if self.ids.contains(&id) {
                continue;
            }
            let content = if t == 3 { rng.bytes(8) } else { rng.bytes(len) };
            queues.push(vec![Rec::new(&mut rng, t, id, content)]);
        }
        (interleave(queues, &self.choices), params_of)
    }
}

#[derive(Debug)]
struct ModelReq {
    role: Role,
    params_wire: Vec<u8>,
    params_done: bool,
    stdin_done: bool,
    aborted: bool,
}

/// What the spec says a server connection reports and writes for `records`, then EOF.
fn server_model(
    s: &SrvScenario,
    records: &[Rec],
    params_of: &ParamsById,
) -> (Vec<server::Event>, Vec<u8>) {
    use server::Event as E;
    let mut events = Vec::new();
    let mut tx = Vec::new();
    let mut active: BTreeMap<u16, ModelReq> = BTreeMap::new();
    let end = |tx: &mut Vec<u8>, id: u16, status: u8| {
        tx.extend(record_bytes(
            3,
            id,
            &[0, 0, 0, 0, status, 0, 0, 0],
            s.padding,
        ));
    };
    for rec in records {
        let id = rec.id;
        if id == 0 {
            if rec.rtype == 9 {
                let mut wanted = [false; 3];
                let mut at = 0;
                while at < rec.content.len() {
                    let (nl, a) = model_len(&rec.content[at..]).unwrap();
                    let (vl, b) = model_len(&rec.content[at + a..]).unwrap();
                    let name = &rec.content[at + a + b..at + a + b + nl];
                    for (i, q) in QUERY_NAMES[..3].iter().enumerate() {
                        wanted[i] |= name == *q;
                    }
                    at += a + b + nl + vl;
                }
                let mut content = Vec::new();
                let values = [
                    s.max_conns.to_string(),
                    s.max_reqs.to_string(),
                    "1".to_string(),
                ];
                for i in 0..3 {
                    if wanted[i] {
                        model_pair(&mut content, QUERY_NAMES[i], values[i].as_bytes());
                    }
                }
                tx.extend(record_bytes(10, 0, &content, s.padding));
            } else {
                tx.extend(record_bytes(
                    11,
                    0,
                    &[rec.rtype, 0, 0, 0, 0, 0, 0, 0],
                    s.padding,
                ));
            }
            continue;
        }
        if rec.rtype == 1 {
            let role = Role::from(u16::from_be_bytes([rec.content[0], rec.content[1]]));
            let keep_conn = rec.content[2] & 1 != 0;
            if active.len() >= usize::from(s.max_requests) {
                events.push(E::Rejected {
                    id,
                    reason: Rejection::TooManyRequests,
                });
                end(&mut tx, id, 2);
            } else if matches!(role, Role::Unknown(_)) {
                events.push(E::Rejected {
                    id,
                    reason: Rejection::UnknownRole,
                });
                end(&mut tx, id, 3);
            } else {
                active.insert(
                    id,
                    ModelReq {
                        role,
                        params_wire: Vec::new(),
                        params_done: false,
                        stdin_done: false,
                        aborted: false,
                    },
                );
                events.push(E::BeginRequest {
                    id,
                    role,
                    keep_conn,
                });
            }
            continue;
        }
        let Some(req) = active.get_mut(&id) else {
            continue; // inactive id: ignored (spec 3.3)
        };
        let empty = rec.content.is_empty();
        match rec.rtype {
            2 => {
                if !req.aborted {
                    req.aborted = true;
                    events.push(E::Abort { id });
                }
            }
            4 if !empty => {
                req.params_wire.extend_from_slice(&rec.content);
                if params_over_limit(&req.params_wire, s.max_params_bytes) {
                    active.remove(&id);
                    events.push(E::Rejected {
                        id,
                        reason: Rejection::ParamsTooLarge,
                    });
                    end(&mut tx, id, 2);
                }
            }
            4 => {
                let (params, wire) = &params_of[&id];
                assert_eq!(&req.params_wire, wire, "generator: params stream");
                req.params_done = true;
                events.push(E::Params {
                    id,
                    params: params.clone(),
                });
            }
            5 if req.role == Role::Authorizer => assert!(empty && req.params_done),
            5 if !empty => events.push(E::Stdin {
                id,
                data: Bytes::from(rec.content.clone()),
            }),
            5 => {
                req.stdin_done = true;
                events.push(E::StdinEnd { id });
            }
            8 if !empty => events.push(E::Data {
                id,
                data: Bytes::from(rec.content.clone()),
            }),
            8 => events.push(E::DataEnd { id }),
            t => assert!(t == 0 || t >= 12, "generator: type {t}"),
        }
    }
    // EOF: every active request not yet aborted is aborted, in id order.
    for (&id, req) in &active {
        if !req.aborted {
            events.push(E::Abort { id });
        }
    }
    (events, tx)
}

// ---------------------------------------------------------------------------------------
// Application → web server
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct CliReq {
    /// (on stderr, length) pieces, in order.
    pieces: Vec<(bool, usize)>,
    stdout_end: bool,
    stderr_end: bool,
    unknown: Option<(Index, u8)>,
    /// `END_REQUEST` (app status, protocol status), or none: the request stays in flight.
    end: Option<(u32, u8)>,
    /// Stray stream records after the end (ignored: the id is no longer in flight).
    after_end: Vec<usize>,
}

#[derive(Debug, Clone)]
enum CliMgmt {
    Values(Vec<(usize, usize)>),
    UnknownType(u8),
    Other(u8, usize),
}

#[derive(Debug, Clone)]
struct CliScenario {
    reqs: Vec<CliReq>,
    mgmt: Vec<CliMgmt>,
    strays: Vec<(u8, usize)>,
    choices: Vec<u8>,
    max_buffered_input: usize,
    seed: u64,
    chunks: Vec<Vec<usize>>,
}

fn cli_scenario() -> impl Strategy<Value = CliScenario> {
    let req = (
        prop::collection::vec((any::<bool>(), 1usize..=3000), 0..=6),
        any::<bool>(),
        any::<bool>(),
        prop::option::weighted(0.25, (any::<Index>(), prop_oneof![Just(0u8), 12u8..=255])),
        prop::option::weighted(0.8, (any::<u32>(), any::<u8>())),
        prop::collection::vec(1usize..=100, 0..=2),
    )
        .prop_map(
            |(pieces, stdout_end, stderr_end, unknown, end, after_end)| CliReq {
                pieces,
                stdout_end,
                stderr_end,
                unknown,
                end,
                after_end,
            },
        );
    let mgmt = prop_oneof![
        prop::collection::vec((small_len(), small_len()), 0..=4).prop_map(CliMgmt::Values),
        any::<u8>().prop_map(CliMgmt::UnknownType),
        (
            any::<u8>().prop_filter("answers", |t| *t != 10 && *t != 11),
            0usize..=100
        )
            .prop_map(|(t, l)| CliMgmt::Other(t, l)),
    ];
    (
        prop::collection::vec(req, 1..=6),
        prop::collection::vec(mgmt, 0..=4),
        prop::collection::vec((prop::sample::select(vec![3u8, 6, 7]), 1usize..=50), 0..=3),
        prop::collection::vec(any::<u8>(), 0..=256),
        prop_oneof![1usize..=256, 1usize..=8192, Just(256 * 1024)],
        any::<u64>(),
        chunk_plans(),
    )
        .prop_map(
            |(reqs, mgmt, strays, choices, max_buffered_input, seed, chunks)| CliScenario {
                reqs,
                mgmt,
                strays,
                choices,
                max_buffered_input,
                seed,
                chunks,
            },
        )
}

impl CliScenario {
    fn connection(&self) -> ClientConnection {
        let mut c = ClientConfig::default();
        c.max_concurrent_requests = self.reqs.len() as u16;
        c.limits.max_buffered_input = self.max_buffered_input;
        let mut conn = ClientConnection::new(c);
        for i in 0..self.reqs.len() {
            let id = conn.begin_request(Role::Responder, true).unwrap();
            assert_eq!(usize::from(id), i + 1);
        }
        while conn.poll_transmit().is_some() {}
        conn
    }

    fn records(&self) -> Vec<Rec> {
        let mut rng = Rng(self.seed);
        let mut queues = Vec::new();
        for (i, spec) in self.reqs.iter().enumerate() {
            let id = i as u16 + 1;
            let mut q = Vec::new();
            for &(stderr, len) in &spec.pieces {
                let content = rng.bytes(len);
                q.push(Rec::new(&mut rng, if stderr { 7 } else { 6 }, id, content));
            }
            if spec.stdout_end {
                q.push(Rec::new(&mut rng, 6, id, Vec::new()));
            }
            if spec.stderr_end {
                q.push(Rec::new(&mut rng, 7, id, Vec::new()));
            }
            if let Some((at, t)) = &spec.unknown {
                let content = rng.bytes(9);
                let pos = at.index(q.len() + 1);
                q.insert(pos, Rec::new(&mut rng, *t, id, content));
            }
            if let Some((app, ps)) = spec.end {
                let mut body = app.to_be_bytes().to_vec();
                body.push(ps);
                body.extend(rng.bytes(3)); // reserved
                q.push(Rec::new(&mut rng, 3, id, body));
                for &len in &spec.after_end {
                    let content = rng.bytes(len);
                    q.push(Rec::new(&mut rng, 6, id, content));
                }
            }
            queues.push(q);
        }
        for m in &self.mgmt {
            let rec = match m {
                CliMgmt::Values(pairs) => {
                    let mut content = Vec::new();
                    for &(nl, vl) in pairs {
                        let (n, v) = (rng.bytes(nl), rng.bytes(vl));
                        model_pair(&mut content, &n, &v);
                    }
                    assert!(content.len() <= 65_535, "generator: one record");
                    Rec::new(&mut rng, 10, 0, content)
                }
                CliMgmt::UnknownType(t) => {
                    let mut body = vec![*t];
                    body.extend(rng.bytes(7));
                    Rec::new(&mut rng, 11, 0, body)
                }
                CliMgmt::Other(t, len) => {
                    let content = rng.bytes(*len);
                    Rec::new(&mut rng, *t, 0, content)
                }
            };
            queues.push(vec![rec]);
        }
        for &(t, len) in &self.strays {
            // An id never begun.
            let id = self.reqs.len() as u16 + 1 + (len as u16 % 7);
            let content = if t == 3 { rng.bytes(8) } else { rng.bytes(len) };
            queues.push(vec![Rec::new(&mut rng, t, id, content)]);
        }
        interleave(queues, &self.choices)
    }
}

/// What the spec says a client connection reports for `records`, then EOF.
fn client_model(n: usize, records: &[Rec]) -> Vec<client::Event> {
    use client::Event as E;
    let mut in_flight: BTreeSet<u16> = (1..=n as u16).collect();
    let mut events = Vec::new();
    for rec in records {
        if rec.id == 0 {
            match rec.rtype {
                10 => {
                    let mut p = Params::new();
                    let mut at = 0;
                    while at < rec.content.len() {
                        let (nl, a) = model_len(&rec.content[at..]).unwrap();
                        let (vl, b) = model_len(&rec.content[at + a..]).unwrap();
                        let s = at + a + b;
                        p.push(&rec.content[s..s + nl], &rec.content[s + nl..s + nl + vl])
                            .unwrap();
                        at = s + nl + vl;
                    }
                    events.push(E::Values(p));
                }
                11 => events.push(E::UnknownType {
                    record_type: rec.content[0],
                }),
                _ => {}
            }
            continue;
        }
        if !in_flight.contains(&rec.id) {
            continue;
        }
        let data = Bytes::from(rec.content.clone());
        match rec.rtype {
            6 if !data.is_empty() => events.push(E::Stdout { id: rec.id, data }),
            7 if !data.is_empty() => events.push(E::Stderr { id: rec.id, data }),
            6 | 7 => {}
            3 => {
                in_flight.remove(&rec.id);
                let c = &rec.content;
                events.push(E::EndRequest {
                    id: rec.id,
                    app_status: u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                    protocol_status: ProtocolStatus::from(c[4]),
                });
            }
            t => assert!(t == 0 || t >= 12, "generator: type {t}"),
        }
    }
    for id in in_flight {
        events.push(E::Truncated { id });
    }
    events
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

fn chunkers(plans: &[Vec<usize>]) -> Vec<(String, Chunker)> {
    let mut out = vec![
        ("whole".to_string(), Chunker::whole()),
        ("bytewise".to_string(), Chunker::bytewise()),
    ];
    for p in plans {
        out.push((format!("{p:?}"), Chunker::new(p.clone())));
    }
    out
}

proptest! {
    #![proptest_config(pair::proptest_config(64))]

    /// A multiplexed web-server stream (interleaved requests, params split anywhere,
    /// random paddings and reserved bytes, GET_VALUES, unknown management types, unknown
    /// record types, stray records, aborts, rejections by role, count and params size)
    /// gives the same events and the same output bytes in every chunking, and both match
    /// the model; EOF then aborts every request still active.
    #[test]
    fn server_events_and_output_independent_of_chunking(s in srv_scenario()) {
        let (records, params_of) = s.records();
        let mut wire = Vec::new();
        for r in &records {
            r.encode(&mut wire);
        }
        let (want_events, want_tx) = server_model(&s, &records, &params_of);
        let want_events = normalize_server(want_events);
        for (name, mut chunker) in chunkers(&s.chunks) {
            let mut conn = ServerConnection::new(s.config());
            let mut events = Vec::new();
            let mut tx = Vec::new();
            feed!(conn, &wire, chunker, events, tx);
            prop_assert_eq!(conn.handle_eof(), Ok(()));
            while let Some(ev) = conn.poll_event() {
                events.push(ev);
            }
            prop_assert!(conn.poll_transmit().is_none(), "EOF wrote output");
            prop_assert!(!conn.wants_input());
            let events = normalize_server(events);
            prop_assert!(
                events == want_events,
                "chunking {}: {} events, model {}\ngot:\n{}\nmodel:\n{}",
                name,
                events.len(),
                want_events.len(),
                brief(&events, first_difference(&events, &want_events)),
                brief(&want_events, first_difference(&events, &want_events))
            );
            prop_assert!(tx == want_tx, "chunking {}: output differs", name);
        }
    }

    /// An application stream (interleaved STDOUT/STDERR of several requests, stream
    /// terminators, END_REQUEST with any status, records after END_REQUEST, records for
    /// ids never begun, GET_VALUES_RESULT, UNKNOWN_TYPE, other id-0 types, unknown record
    /// types) gives the same events in every chunking, matching the model; input never
    /// makes the client write; EOF reports every request still in flight as truncated.
    #[test]
    fn client_events_independent_of_chunking(s in cli_scenario()) {
        let records = s.records();
        let mut wire = Vec::new();
        for r in &records {
            r.encode(&mut wire);
        }
        let want = normalize_client(client_model(s.reqs.len(), &records));
        for (name, mut chunker) in chunkers(&s.chunks) {
            let mut conn = s.connection();
            let mut events = Vec::new();
            let mut tx = Vec::new();
            feed!(conn, &wire, chunker, events, tx);
            prop_assert!(tx.is_empty(), "chunking {}: input made the client write", name);
            conn.handle_eof();
            while let Some(ev) = conn.poll_event() {
                events.push(ev);
            }
            prop_assert_eq!(conn.requests_in_flight(), 0);
            prop_assert!(conn.should_close());
            let events = normalize_client(events);
            prop_assert!(
                events == want,
                "chunking {}: {} events, model {}\ngot:\n{}\nmodel:\n{}",
                name,
                events.len(),
                want.len(),
                brief(&events, first_difference(&events, &want)),
                brief(&want, first_difference(&events, &want))
            );
        }
    }
}
