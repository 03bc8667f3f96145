//! Encoding cost of fcgi-core: the commands that produce output, and draining that output
//! (the chunks are dropped, as after a write).
//!
//! - `encode/server_response`: a `ServerConnection` answers a request with a typical PHP
//!   response: headers (`Status`, `Content-Type`, `Set-Cookie`, ...), a 4 KiB body (queued
//!   by reference, not copied) and `end_request` (empty `STDOUT` + `END_REQUEST`).
//! - `encode/client_request`: a `ClientConnection` sends the typical request of the
//!   `decode` benchmark: `BEGIN_REQUEST`, 39 params, the empty `PARAMS`, the empty `STDIN`.
//!
//! Both run on warmed keep-alive connections; requests are begun or ended outside the
//! clock, 8 at a time (see `fcgi-core/PERFORMANCE.md`, section "Method"). Run with
//! `cargo bench -p fcgi-core --bench encode`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use fcgi_core::client::{ClientConfig, ClientConnection};
use fcgi_core::record::{EndRequestBody, Padding, RecordType, Role};
use fcgi_core::server::{ServerConfig, ServerConnection};
use fcgi_core::{Params, ProtocolStatus};

#[path = "support/typical.rs"]
mod typical;

/// Requests begun (server) or ended (client) per untimed step.
const BATCH: u16 = 8;

/// Drains the transmit queue as an adapter would after writing it; returns the bytes.
fn drain(mut pop: impl FnMut() -> Option<bytes::Bytes>) -> usize {
    let mut written = 0;
    while let Some(chunk) = pop() {
        written += chunk.len();
    }
    written
}

fn server_response(group: &mut BenchmarkGroup<'_, WallTime>) {
    let params: Params = typical::typical_params();
    let head = typical::response_head();
    let body = typical::response_body();
    let padded = |n: usize| n + usize::from(Padding::Align8.padding_for(n));
    // STDOUT(head) + STDOUT(body) + empty STDOUT + END_REQUEST.
    let wire_len = 8 + padded(head.len()) + 8 + padded(body.len()) + 8 + 16;

    // BATCH requests (ids 1..=BATCH), read before the clock starts.
    let mut requests = Vec::new();
    for id in 1..=BATCH {
        requests.extend_from_slice(&typical::request_wire(&params, id, true));
    }
    let mut conn = ServerConnection::new(ServerConfig::default());
    let mut input = BytesMut::with_capacity(requests.len());
    let begin_batch = |conn: &mut ServerConnection, input: &mut BytesMut| {
        input.clear();
        input.extend_from_slice(&requests);
        conn.handle_input(input).unwrap();
        while conn.poll_event().is_some() {}
        assert_eq!(conn.active_requests(), usize::from(BATCH));
    };
    let respond = |conn: &mut ServerConnection, id: u16| -> usize {
        conn.send_stdout(id, head.clone()).unwrap();
        conn.send_stdout(id, body.clone()).unwrap();
        conn.end_request(id, 0, ProtocolStatus::RequestComplete)
            .unwrap();
        drain(|| conn.poll_transmit())
    };

    // Check once (and warm up every buffer).
    begin_batch(&mut conn, &mut input);
    for id in 1..=BATCH {
        assert_eq!(respond(&mut conn, id), wire_len);
    }

    group.throughput(Throughput::Bytes(wire_len as u64));
    group.bench_function("server_response", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(u64::from(BATCH)) as u16;
                begin_batch(&mut conn, &mut input);
                let start = Instant::now();
                for id in 1..=n {
                    black_box(respond(&mut conn, id));
                }
                total += start.elapsed();
                for id in n + 1..=BATCH {
                    respond(&mut conn, id);
                }
                left -= u64::from(n);
            }
            total
        });
    });
}

fn client_request(group: &mut BenchmarkGroup<'_, WallTime>) {
    let params: Params = typical::typical_params();
    let expected = typical::request_wire(&params, 1, true);
    let mut config = ClientConfig::default();
    config.max_concurrent_requests = BATCH;
    let mut conn = ClientConnection::new(config);

    // The application's answers that end requests 1..=BATCH, read outside the clock.
    let mut ends = Vec::new();
    let end = EndRequestBody {
        app_status: 0,
        protocol_status: ProtocolStatus::RequestComplete,
    };
    for id in 1..=BATCH {
        typical::put_record(&mut ends, RecordType::Stdout, id, &[]);
        typical::put_record(&mut ends, RecordType::EndRequest, id, &end.to_array());
    }
    let mut input = BytesMut::with_capacity(ends.len());
    let end_batch = |conn: &mut ClientConnection, input: &mut BytesMut| {
        input.clear();
        input.extend_from_slice(&ends);
        conn.handle_input(input).unwrap();
        while conn.poll_event().is_some() {}
        assert_eq!(conn.requests_in_flight(), 0);
    };
    let send = |conn: &mut ClientConnection| -> usize {
        let id = conn.begin_request(Role::Responder, true).unwrap();
        conn.send_params(id, &params).unwrap();
        conn.end_params(id).unwrap();
        conn.end_stdin(id).unwrap();
        drain(|| conn.poll_transmit())
    };

    // Check once that the bytes are the typical request's, then warm up.
    let id = conn.begin_request(Role::Responder, true).unwrap();
    conn.send_params(id, &params).unwrap();
    conn.end_params(id).unwrap();
    conn.end_stdin(id).unwrap();
    let mut wire = Vec::new();
    while let Some(chunk) = conn.poll_transmit() {
        wire.extend_from_slice(&chunk);
    }
    assert_eq!(wire, expected);
    for _ in 1..BATCH {
        assert_eq!(send(&mut conn), expected.len());
    }
    end_batch(&mut conn, &mut input);

    group.throughput(Throughput::Bytes(expected.len() as u64));
    group.bench_function("client_request", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(u64::from(BATCH));
                let start = Instant::now();
                for _ in 0..n {
                    black_box(send(&mut conn));
                }
                total += start.elapsed();
                for _ in n..u64::from(BATCH) {
                    send(&mut conn);
                }
                end_batch(&mut conn, &mut input);
                left -= n;
            }
            total
        });
    });
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    server_response(&mut group);
    client_request(&mut group);
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = encode
}
criterion_main!(benches);
