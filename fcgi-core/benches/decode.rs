//! Decoding throughput of fcgi-core, each figure next to a baseline measured in the same run.
//!
//! - `stdout_16MiB`: a client connection with one request in flight reads 16 MiB of
//!   `STDOUT` (256 records of 65528 content bytes, 8-byte aligned, no padding needed),
//!   events drained; the raw `record::Decoder` on the same bytes; a plain `memcpy`
//!   (`copy_from_slice`) of the same 16 MiB. All three report GiB/s of wire bytes.
//! - `stdout_16MiB_read_path`: the same stream through a reused read buffer, copy included:
//!   what an adapter pays per read (the copy stands in for the socket read) with and without
//!   decoding.
//! - `typical_request`: a `ServerConnection` receiving a typical nginx request (BEGIN + 39
//!   params ≈ 1.5 KB + empty STDIN, events polled), next to `httparse` parsing the equivalent
//!   HTTP/1.1 request head (same method, URI and headers).
//!
//! How each input is kept fresh without measuring its preparation is explained in
//! `fcgi-core/PERFORMANCE.md` (section "Method"). Run with
//! `cargo bench -p fcgi-core --bench decode`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use fcgi_core::client::{self, ClientConfig, ClientConnection};
use fcgi_core::record::{Decoder, Fragment, MAX_ALIGNED_CONTENT_LEN, Role};
use fcgi_core::server::{self, ServerConfig, ServerConnection};
use fcgi_core::{Params, ProtocolStatus};

#[path = "support/typical.rs"]
mod typical;

/// Records in the STDOUT stream: 256 × (8 + 65528) bytes = 16 MiB exactly.
const STREAM_RECORDS: usize = 256;
const STREAM_CONTENT: usize = STREAM_RECORDS * MAX_ALIGNED_CONTENT_LEN;

/// Requests prepared per timed batch in `typical_request` (see PERFORMANCE.md).
const BATCH: usize = 8;

// ---------------------------------------------------------------------------------------
// The units of work. Each returns what it decoded, so that nothing can be optimised away
// and so that the setup can check it once.

/// Feeds `input` to a client connection until it is consumed, draining events after every
/// call (the run-loop rule; back-pressure stops `handle_input` every 256 KiB).
#[inline(never)]
fn client_read(conn: &mut ClientConnection, input: &mut BytesMut) -> usize {
    let mut stdout = 0;
    loop {
        let before = input.len();
        conn.handle_input(input).unwrap();
        while let Some(event) = conn.poll_event() {
            match event {
                client::Event::Stdout { data, .. } => stdout += data.len(),
                other => panic!("unexpected {other:?}"),
            }
        }
        if input.is_empty() {
            return stdout;
        }
        assert!(input.len() < before || conn.wants_input(), "no progress");
    }
}

/// The raw record decoder over the whole input.
#[inline(never)]
fn decoder_read(decoder: &mut Decoder, input: &mut BytesMut) -> usize {
    let mut content = 0;
    while let Some(fragment) = decoder.decode(input) {
        if let Fragment::Content(data) = fragment {
            content += data.len();
        }
    }
    content
}

/// A server connection receives one request and its events are polled into `events`, as
/// an application takes them (dropping them — freeing the `Params` — is the application's
/// business, after it has used them). Returns the number of pairs. Never inlined, so that
/// a profiler attributes its cost (see PERFORMANCE.md, "Instruction counts").
#[inline(never)]
fn server_receive(
    conn: &mut ServerConnection,
    input: &mut BytesMut,
    events: &mut Vec<server::Event>,
) -> usize {
    conn.handle_input(input).unwrap();
    let mut pairs = 0;
    while let Some(event) = conn.poll_event() {
        if let server::Event::Params { params, .. } = &event {
            pairs = params.len();
        }
        events.push(event);
    }
    pairs
}

/// What `httparse` does with the equivalent HTTP/1.1 head; returns the number of headers.
/// Never inlined, like `server_receive`.
#[inline(never)]
fn httparse_head<'a>(head: &'a [u8], headers: &mut [httparse::Header<'a>; 64]) -> usize {
    let mut req = httparse::Request::new(headers);
    let status = req.parse(head).unwrap();
    assert!(status.is_complete());
    black_box((req.method, req.path));
    req.headers.len()
}

// ---------------------------------------------------------------------------------------
// 16 MiB of STDOUT.

/// A client connection with one request in flight (its request already written out).
fn client_in_flight() -> ClientConnection {
    let mut conn = ClientConnection::new(ClientConfig::default());
    let id = conn.begin_request(Role::Responder, true).unwrap();
    assert_eq!(id, 1);
    conn.end_params(id).unwrap();
    conn.end_stdin(id).unwrap();
    while conn.poll_transmit().is_some() {}
    conn
}

/// Times `read` over a fresh copy of `wire` per iteration. The copy goes into one reused
/// read buffer *before* the clock starts (it is reclaimed in place, since every payload of
/// the previous iteration was dropped), so only decoding is measured.
fn time_fresh_copies(
    iters: u64,
    wire: &[u8],
    buf: &mut BytesMut,
    mut read: impl FnMut(&mut BytesMut) -> usize,
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        buf.clear();
        buf.extend_from_slice(wire);
        let start = Instant::now();
        let n = read(buf);
        total += start.elapsed();
        black_box(n);
    }
    total
}

fn stdout_stream(c: &mut Criterion) {
    let wire = typical::stdout_stream(1, STREAM_CONTENT, MAX_ALIGNED_CONTENT_LEN);
    assert_eq!(wire.len(), 16 << 20);

    // Check once that every variant decodes the whole stream.
    let mut buf = BytesMut::with_capacity(wire.len());
    buf.extend_from_slice(&wire);
    assert_eq!(
        client_read(&mut client_in_flight(), &mut buf),
        STREAM_CONTENT
    );
    buf.extend_from_slice(&wire);
    assert_eq!(decoder_read(&mut Decoder::new(), &mut buf), STREAM_CONTENT);

    let mut group = c.benchmark_group("stdout_16MiB");
    group.throughput(Throughput::Bytes(wire.len() as u64));

    let mut dst = vec![0u8; wire.len()];
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&wire));
            black_box(&mut dst);
        });
    });

    // Decoding alone: every iteration needs a fresh 16 MiB input, whose (untimed) copy
    // costs ~100x the decoding. Criterion plans iteration counts by wall time, setup
    // included, so the run stays within the measurement time; flat sampling with fewer,
    // equal samples suits that (≈ 1,000 timed passes in the default 2 s).
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(20);

    let mut conn = client_in_flight();
    group.bench_function("client_connection", |b| {
        b.iter_custom(|iters| {
            time_fresh_copies(iters, &wire, &mut buf, |input| {
                client_read(&mut conn, input)
            })
        });
    });

    let mut decoder = Decoder::new();
    group.bench_function("record_decoder", |b| {
        b.iter_custom(|iters| {
            time_fresh_copies(iters, &wire, &mut buf, |input| {
                decoder_read(&mut decoder, input)
            })
        });
    });
    group.finish();

    // The whole read path: copy into the reused read buffer (standing in for the socket
    // read), then decode. The difference between the two is what decoding adds.
    let mut group = c.benchmark_group("stdout_16MiB_read_path");
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("copy_into_read_buffer", |b| {
        b.iter(|| {
            buf.clear();
            buf.extend_from_slice(black_box(&wire));
            black_box(&mut buf);
        });
    });
    let mut conn = client_in_flight();
    group.bench_function("copy_into_read_buffer+client_connection", |b| {
        b.iter(|| {
            buf.clear();
            buf.extend_from_slice(black_box(&wire));
            client_read(&mut conn, &mut buf)
        });
    });
    group.finish();
}

// ---------------------------------------------------------------------------------------
// A typical request.

/// A server connection that has served one keep-alive request (id 1), so that every
/// buffer has its working size.
fn warm_server(wire: &[u8]) -> ServerConnection {
    let mut conn = ServerConnection::new(ServerConfig::default());
    let mut input = BytesMut::from(wire);
    server_receive(&mut conn, &mut input, &mut Vec::new());
    conn.end_request(1, 0, ProtocolStatus::RequestComplete)
        .unwrap();
    while conn.poll_transmit().is_some() {}
    conn
}

/// A warmed keep-alive connection with its read buffer and the application's event list.
type Slot = (ServerConnection, BytesMut, Vec<server::Event>);

/// Times `n` keep-alive requests, one per slot: read into each buffer before the clock
/// starts; received and polled under the clock; the events dropped inside or outside the
/// clock; the requests ended (the application's answer) outside it.
fn time_keepalive(slots: &mut [Slot], wire: &[u8], drop_events_timed: bool) -> Duration {
    for (_, buf, _) in slots.iter_mut() {
        buf.clear();
        buf.extend_from_slice(wire);
    }
    let start = Instant::now();
    for (conn, buf, events) in slots.iter_mut() {
        black_box(server_receive(conn, buf, events));
        if drop_events_timed {
            events.clear();
        }
    }
    let elapsed = start.elapsed();
    for (conn, _, events) in slots.iter_mut() {
        events.clear();
        conn.end_request(1, 0, ProtocolStatus::RequestComplete)
            .unwrap();
        while conn.poll_transmit().is_some() {}
    }
    elapsed
}

fn typical_request(c: &mut Criterion) {
    let params: Params = typical::typical_params();
    let head = typical::http_head(&params);
    // As nginx sends it: request id 1, with and without keep-alive.
    let keepalive = typical::request_wire(&params, 1, true);
    let one_shot = typical::request_wire(&params, 1, false);

    // Check once that both sides see the same request.
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let http_headers = httparse_head(&head, &mut headers);
    let fcgi_http_vars = params
        .iter()
        .filter(|(n, _)| n.starts_with(b"HTTP_"))
        .count();
    assert_eq!(http_headers, fcgi_http_vars);
    let mut conn = warm_server(&keepalive);
    let mut input = BytesMut::from(&keepalive[..]);
    let mut events = Vec::new();
    assert_eq!(
        server_receive(&mut conn, &mut input, &mut events),
        params.len()
    );
    assert_eq!(events.len(), 3);
    drop(conn);

    let mut group = c.benchmark_group("typical_request");
    group.throughput(Throughput::Elements(1));

    group.bench_function("httparse", |b| {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        b.iter(|| httparse_head(black_box(&head), &mut headers));
    });

    // Keep-alive: BATCH warmed connections (nginx sends one request at a time per
    // connection), each with its own reused read buffer; see `time_keepalive`.
    let mut slots: Vec<Slot> = (0..BATCH)
        .map(|_| {
            let conn = warm_server(&keepalive);
            (conn, BytesMut::with_capacity(4096), Vec::with_capacity(8))
        })
        .collect();
    for (name, drop_events_timed) in [
        ("server_connection_keepalive", false),
        ("server_connection_keepalive+drop_events", true),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters as usize;
                while left > 0 {
                    let n = left.min(BATCH);
                    total += time_keepalive(&mut slots[..n], &keepalive, drop_events_timed);
                    left -= n;
                }
                total
            });
        });
    }

    // One request per connection (nginx's default): BATCH new connections and inputs are
    // made before the clock starts; receiving and polling is timed; dropping the
    // connections and events is not.
    group.bench_function("server_connection_new", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters as usize;
            while left > 0 {
                let n = left.min(BATCH);
                let mut batch: Vec<Slot> = (0..n)
                    .map(|_| {
                        (
                            ServerConnection::new(ServerConfig::default()),
                            BytesMut::from(&one_shot[..]),
                            Vec::with_capacity(8),
                        )
                    })
                    .collect();
                let start = Instant::now();
                for (conn, input, events) in &mut batch {
                    black_box(server_receive(conn, input, events));
                }
                total += start.elapsed();
                drop(batch);
                left -= n;
            }
            total
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = stdout_stream, typical_request
}
criterion_main!(benches);
