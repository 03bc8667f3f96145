//! Property tests over a whole in-memory conversation: a `ClientConnection` and a
//! `ServerConnection` joined by the [`pair`] driver, with random multiplexed requests,
//! random chunking in both directions, random aborts and random responses. Every byte of
//! every stream must arrive in order on the right request, every request must end exactly
//! once on both sides, ids must not be reused early, and both sides must end idle.
//!
//! Case counts: `PROPTEST_CASES` overrides the defaults; the RNG seed is fixed unless
//! `PROPTEST_RNG_SEED` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod pair;

use std::collections::BTreeMap;

use bytes::Bytes;
use fcgi_core::client::{ClientConfig, ClientConnection};
use fcgi_core::params::decode_pairs;
use fcgi_core::record::{Padding, RecordReader, RecordType, VERSION_1};
use fcgi_core::server::{RoleSet, ServerConfig, ServerConnection};
use fcgi_core::{Params, ProtocolStatus, Role};
use pair::{Chunker, Op, Pair, Piece, Plan, Reply, ScriptedClient, ScriptedServer, pattern};
use proptest::prelude::*;
use proptest::sample::Index;

/// Upper bound on driver steps for one case (a livelock fails instead of hanging).
const MAX_STEPS: usize = 2_000_000;

// ---------------------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct ParamSpec {
    /// A name from a small pool (so duplicates occur), or a random one of this length.
    pooled: Option<u8>,
    name_len: usize,
    value_len: usize,
}

#[derive(Debug, Clone)]
struct ReplySpec {
    refuse: bool,
    /// (on stderr, length)
    pieces: Vec<(bool, usize)>,
    echo: bool,
    app_status: u32,
}

#[derive(Debug, Clone)]
struct ReqSpec {
    role: Role,
    params: Vec<ParamSpec>,
    bulk_params: bool,
    stdin: Vec<usize>,
    data: Vec<usize>,
    abort: Option<Index>,
    reply: ReplySpec,
}

#[derive(Debug, Clone)]
struct Scenario {
    requests: Vec<ReqSpec>,
    last_keep_conn: bool,
    choices: Vec<u8>,
    to_server: Vec<usize>,
    to_client: Vec<usize>,
    seed: u64,
    get_values: bool,
}

fn small_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        6 => 0usize..=16,
        3 => 120usize..=136,
        2 => 0usize..=700,
        1 => 2000usize..=5000,
    ]
}

fn param_spec() -> impl Strategy<Value = ParamSpec> {
    (
        prop::option::weighted(0.3, 0u8..4),
        small_len(),
        prop_oneof![40 => small_len(), 1 => 65_520usize..=70_000],
    )
        .prop_map(|(pooled, name_len, value_len)| ParamSpec {
            pooled,
            name_len,
            value_len,
        })
}

fn body_pieces() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![4 => 0usize..=600, 1 => 0usize..=6000], 0..=4)
}

fn reply_spec() -> impl Strategy<Value = ReplySpec> {
    (
        prop::bool::weighted(0.08),
        prop::collection::vec(
            (
                any::<bool>(),
                prop_oneof![30 => 0usize..=3000, 1 => 65_536usize..=70_000],
            ),
            0..=5,
        ),
        prop::bool::weighted(0.3),
        any::<u32>(),
    )
        .prop_map(|(refuse, pieces, echo, app_status)| ReplySpec {
            refuse,
            pieces,
            echo,
            app_status,
        })
}

fn req_spec() -> impl Strategy<Value = ReqSpec> {
    (
        prop_oneof![
            Just(Role::Responder),
            Just(Role::Filter),
            Just(Role::Authorizer)
        ],
        prop::collection::vec(param_spec(), 0..=6),
        any::<bool>(),
        body_pieces(),
        body_pieces(),
        prop::option::weighted(0.25, any::<Index>()),
        reply_spec(),
    )
        .prop_map(
            |(role, params, bulk_params, stdin, data, abort, reply)| ReqSpec {
                role,
                params,
                bulk_params,
                stdin,
                data,
                abort,
                reply,
            },
        )
}

/// Write sizes: from one byte at a time to far more than a record.
fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        1 => Just(vec![1usize]),
        2 => prop::collection::vec(1usize..=16, 1..=6),
        3 => prop::collection::vec(1usize..=2048, 1..=6),
        2 => prop::collection::vec(1usize..=100_000, 1..=4),
        2 => prop::collection::vec(prop_oneof![1usize..=3, 60_000usize..=100_000], 1..=6),
    ]
}

fn scenario(max_requests: usize) -> impl Strategy<Value = Scenario> {
    (
        prop::collection::vec(req_spec(), 1..=max_requests),
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..=64),
        chunk_sizes(),
        chunk_sizes(),
        any::<u64>(),
        prop::bool::weighted(0.3),
    )
        .prop_map(
            |(requests, last_keep_conn, choices, to_server, to_client, seed, get_values)| {
                Scenario {
                    requests,
                    last_keep_conn,
                    choices,
                    to_server,
                    to_client,
                    seed,
                    get_values,
                }
            },
        )
}

/// Turns a scenario into client plans and server replies (contents are seeded patterns,
/// distinct for every stream piece).
fn build(s: &Scenario) -> (Vec<Plan>, Vec<Reply>) {
    let mut plans = Vec::new();
    let mut replies = Vec::new();
    let n = s.requests.len();
    for (r, spec) in s.requests.iter().enumerate() {
        let seed = |kind: u64, i: usize| {
            s.seed
                .wrapping_add((r as u64) << 40)
                .wrapping_add(kind << 32)
                .wrapping_add(i as u64)
        };
        let mut params = Params::new();
        for (i, p) in spec.params.iter().enumerate() {
            let name = match p.pooled {
                Some(k) => format!("HTTP_DUP_{k}").into_bytes().into(),
                None => pattern(seed(1, i), p.name_len),
            };
            params
                .push(&name, &pattern(seed(2, i), p.value_len))
                .unwrap();
        }
        let mut ops = Vec::new();
        if spec.bulk_params {
            ops.push(Op::Params(params));
        } else {
            for (name, value) in params.iter() {
                ops.push(Op::Param(
                    Bytes::copy_from_slice(name),
                    Bytes::copy_from_slice(value),
                ));
            }
        }
        ops.push(Op::EndParams);
        if spec.role != Role::Authorizer {
            for (i, &len) in spec.stdin.iter().enumerate() {
                ops.push(Op::Stdin(pattern(seed(3, i), len)));
            }
            ops.push(Op::EndStdin);
        }
        if spec.role == Role::Filter {
            for (i, &len) in spec.data.iter().enumerate() {
                ops.push(Op::Data(pattern(seed(4, i), len)));
            }
            ops.push(Op::EndData);
        }
        if let Some(at) = &spec.abort {
            // The client aborts after a random prefix of its script and sends nothing more.
            ops.truncate(at.index(ops.len() + 1));
            ops.push(Op::Abort);
        }
        plans.push(Plan {
            role: spec.role,
            keep_conn: r + 1 < n || s.last_keep_conn,
            ops,
        });
        let pieces = spec
            .reply
            .pieces
            .iter()
            .enumerate()
            .map(|(i, &(stderr, len))| {
                let b = pattern(seed(5, i), len);
                if stderr {
                    Piece::Stderr(b)
                } else {
                    Piece::Stdout(b)
                }
            })
            .collect();
        replies.push(Reply {
            refuse: spec.reply.refuse.then_some(ProtocolStatus::Overloaded),
            pieces,
            echo: spec.reply.echo,
            app_status: spec.reply.app_status,
        });
    }
    (plans, replies)
}

// ---------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------

/// Every record on a tapped wire: version 1, padding as configured, content within the
/// policy's maximum, and the stream ends on a record boundary. For the client's wire, a
/// `PARAMS` record holds whole pairs, except a pair too large for one record, which is
/// spread over full records.
fn check_wire(wire: &[u8], padding: Padding, from_client: bool) -> Result<(), TestCaseError> {
    let mut reader = RecordReader::new();
    let mut input = bytes::BytesMut::from(wire);
    // Largest content of one record, from the spec and the padding policy.
    let max = match padding {
        Padding::Align8 => 65_528,
        _ => 65_535,
    };
    let mut pending: BTreeMap<u16, (Vec<u8>, Vec<usize>)> = BTreeMap::new();
    while let Some(rec) = reader.read(&mut input) {
        let h = rec.header;
        prop_assert_eq!(h.version, VERSION_1);
        let (content, pad) = (usize::from(h.content_length), usize::from(h.padding_length));
        match padding {
            // Content + padding a multiple of 8 with minimal padding, and within 65535 in
            // total (php-fpm resets the connection beyond that): at most 65528 content bytes.
            Padding::Align8 => {
                prop_assert!(pad < 8 && (content + pad) % 8 == 0, "padding of {:?}", h);
                prop_assert!(content + pad <= 65_535, "record of {} + {}", content, pad);
            }
            _ => prop_assert_eq!(pad, 0, "padding of {:?}", h),
        }
        if from_client && h.record_type == RecordType::Params {
            let (buf, lens) = pending.entry(h.request_id).or_default();
            if rec.content.is_empty() {
                prop_assert!(buf.is_empty(), "PARAMS ended inside a split pair");
                continue;
            }
            if buf.is_empty() && decode_pairs(&rec.content, |_, _| {}).is_ok() {
                continue;
            }
            buf.extend_from_slice(&rec.content);
            lens.push(rec.content.len());
            let mut pairs = 0;
            if decode_pairs(buf, |_, _| pairs += 1).is_ok() {
                prop_assert_eq!(pairs, 1, "a split group holds one pair");
                prop_assert!(
                    buf.len() > max,
                    "pair of {} bytes split needlessly",
                    buf.len()
                );
                prop_assert!(lens[..lens.len() - 1].iter().all(|&l| l == max));
                buf.clear();
                lens.clear();
            }
        }
        if from_client
            && h.record_type == RecordType::AbortRequest
            && let Some((buf, _)) = pending.get(&h.request_id)
        {
            prop_assert!(buf.is_empty(), "ABORT inside a split pair");
        }
    }
    prop_assert!(input.is_empty() && reader.is_at_boundary());
    Ok(())
}

struct Setup {
    server: ServerConfig,
    client: ClientConfig,
}

fn run_scenario(s: &Scenario, setup: Setup) -> Result<(), TestCaseError> {
    let (plans, replies) = build(s);
    let padding = setup.server.padding;
    let client_padding = setup.client.padding;
    let multiplex = setup.server.multiplex;
    let mut client_app = ScriptedClient::new(plans.clone(), s.choices.clone());
    let names: Vec<Vec<u8>> = vec![
        b"FCGI_MPXS_CONNS".to_vec(),
        b"FCGI_MAX_REQS".to_vec(),
        b"SOMETHING_ELSE".to_vec(),
    ];
    if s.get_values {
        client_app.get_values = Some(names);
    }
    let mut p = Pair::new(
        ClientConnection::new(setup.client),
        ServerConnection::new(setup.server),
        client_app,
        ScriptedServer::new(replies.clone()),
        Chunker::new(s.to_server.clone()),
        Chunker::new(s.to_client.clone()),
    )
    .with_tap();
    let result = p.run(MAX_STEPS);
    prop_assert!(result.is_ok(), "{:?}", result);

    let c = &p.client_app;
    let srv = &p.server_app;
    prop_assert!(c.errors.is_empty(), "client app: {:?}", c.errors);
    prop_assert!(srv.errors.is_empty(), "server app: {:?}", srv.errors);
    prop_assert!(srv.rejected.is_empty(), "rejections: {:?}", srv.rejected);
    prop_assert!(c.all_done(), "not every request begun and ended");

    // Both sides end idle.
    prop_assert!(p.is_idle(), "pair not idle");
    prop_assert_eq!(srv.active_len(), 0);
    let close = plans.iter().any(|pl| !pl.keep_conn);
    prop_assert_eq!(p.client.should_close(), close);
    prop_assert_eq!(p.server.should_close(), close);

    // GET_VALUES answered from the configuration; unknown names omitted.
    if s.get_values {
        prop_assert_eq!(c.values.len(), 1);
        let mut want = Params::new();
        want.push(b"FCGI_MAX_REQS", b"1024").unwrap();
        want.push(b"FCGI_MPXS_CONNS", if multiplex { b"1" } else { b"0" })
            .unwrap();
        prop_assert_eq!(&c.values[0], &want);
    } else {
        prop_assert!(c.values.is_empty());
    }
    prop_assert!(c.unknown_types.is_empty());

    // Match server incarnations to client requests: per id, in BEGIN order.
    prop_assert_eq!(srv.finished.len(), plans.len());
    let mut by_id: BTreeMap<u16, Vec<&pair::Served>> = BTreeMap::new();
    let mut served: Vec<&pair::Served> = srv.finished.iter().collect();
    served.sort_by_key(|x| x.seq);
    for (seq, x) in served.iter().enumerate() {
        prop_assert_eq!(x.seq, seq);
        by_id.entry(x.id).or_default().push(x);
    }
    let mut next_of_id: BTreeMap<u16, usize> = BTreeMap::new();
    for (r, sent) in c.sent.iter().enumerate() {
        let plan = &plans[r];
        let reply = &replies[r];
        let id = sent.id.expect("begun");
        let k = next_of_id.entry(id).or_insert(0);
        let x = by_id.get(&id).and_then(|v| v.get(*k)).copied();
        *k += 1;
        let Some(x) = x else {
            return Err(TestCaseError::fail(format!(
                "request {r} (id {id}) never served"
            )));
        };
        // BEGIN order on the server is the client's begin order.
        prop_assert_eq!(x.seq, r);
        prop_assert_eq!(x.role, plan.role);
        prop_assert_eq!(x.keep_conn, plan.keep_conn);
        // Exactly one END_REQUEST on each side, carrying what the application passed.
        prop_assert_eq!(sent.ends.len(), 1, "request {} ends {:?}", r, sent.ends);
        prop_assert_eq!(Some(sent.ends[0]), x.end);
        // What the server wrote is what the client read, byte for byte.
        prop_assert!(sent.stdout == x.stdout, "request {} stdout differs", r);
        prop_assert!(sent.stderr == x.stderr, "request {} stderr differs", r);

        if reply.refuse.is_some() {
            prop_assert_eq!(x.end, Some((0, ProtocolStatus::Overloaded)));
            prop_assert!(x.params.is_none() && x.stdin.is_empty() && x.data.is_empty());
            prop_assert!(x.stdout.is_empty() && x.stderr.is_empty());
            continue;
        }
        // What the client sent is what the server read, byte for byte.
        match &x.params {
            Some(params) => {
                prop_assert!(sent.params_ended);
                prop_assert!(
                    params == &sent.params,
                    "request {} params: server got {} pairs {:?}, client sent {} pairs {:?}",
                    r,
                    params.len(),
                    params
                        .iter()
                        .map(|(n, v)| (n.len(), v.len()))
                        .collect::<Vec<_>>(),
                    sent.params.len(),
                    sent.params
                        .iter()
                        .map(|(n, v)| (n.len(), v.len()))
                        .collect::<Vec<_>>()
                );
            }
            None => prop_assert!(!sent.params_ended, "request {} lost its params", r),
        }
        prop_assert!(x.stdin == sent.stdin, "request {} stdin differs", r);
        prop_assert_eq!(x.stdin_ended, sent.stdin_ended);
        prop_assert!(x.data == sent.data, "request {} data differs", r);
        prop_assert_eq!(x.data_ended, sent.data_ended);

        if x.aborted {
            prop_assert!(sent.abort_sent, "request {} aborted unasked", r);
            prop_assert_eq!(
                x.end,
                Some((pair::ABORTED_APP_STATUS, ProtocolStatus::RequestComplete))
            );
        } else {
            // Not aborted: the whole script ran (an abort may have come too late to be
            // sent) and the whole scripted answer went out.
            prop_assert!(
                plan.ops[sent.next_op..]
                    .iter()
                    .all(|o| matches!(o, Op::Abort))
            );
            let (out, err) = reply.expected_output(&x.stdin, &x.data);
            prop_assert!(x.stdout == out, "request {} stdout incomplete", r);
            prop_assert!(x.stderr == err, "request {} stderr incomplete", r);
            prop_assert_eq!(
                x.end,
                Some((reply.app_status, ProtocolStatus::RequestComplete))
            );
            if !sent.abort_sent {
                // Every planned input byte went through.
                let mut stdin = Vec::new();
                let mut data = Vec::new();
                for op in &plan.ops {
                    match op {
                        Op::Stdin(b) => stdin.extend_from_slice(b),
                        Op::Data(b) => data.extend_from_slice(b),
                        _ => {}
                    }
                }
                prop_assert!(x.stdin == stdin && x.data == data);
            }
        }
    }
    for (id, v) in &by_id {
        prop_assert_eq!(next_of_id.get(id).copied(), Some(v.len()));
    }

    let (c2s, s2c) = p.tap.as_ref().expect("tap");
    check_wire(c2s, client_padding, true)?;
    check_wire(s2c, padding, false)?;
    Ok(())
}

fn multiplexed_setup(max_client: u16) -> Setup {
    let mut server = ServerConfig::default();
    server.roles = RoleSet::ALL;
    server.multiplex = true;
    let mut client = ClientConfig::default();
    client.max_concurrent_requests = max_client;
    Setup { server, client }
}

proptest! {
    #![proptest_config(pair::proptest_config(48))]

    /// Up to 8 concurrent multiplexed requests of all three roles.
    #[test]
    fn pair_multiplexed_streams_arrive_intact(s in scenario(8), max_client in 1u16..=8) {
        run_scenario(&s, multiplexed_setup(max_client))?;
    }

    /// Sequential requests: the server does not multiplex, the client keeps one in flight,
    /// so every request reuses id 1 once the previous one ended.
    #[test]
    fn pair_sequential_without_multiplexing(s in scenario(5)) {
        let mut setup = multiplexed_setup(1);
        setup.server.multiplex = false;
        run_scenario(&s, setup)?;
    }

    /// No padding on either side: records carry up to 65535 bytes, with no padding.
    #[test]
    fn pair_unpadded_records(s in scenario(6), max_client in 1u16..=6) {
        let mut setup = multiplexed_setup(max_client);
        setup.server.padding = Padding::None;
        setup.client.padding = Padding::None;
        run_scenario(&s, setup)?;
    }
}
