//! Heap allocations made by the core while it receives and sends typical traffic.
//!
//! A counting `#[global_allocator]` wraps the system allocator. It counts only on a thread
//! that has switched counting on (a thread-local flag), and only while it is on, so the test
//! harness's other threads — and every allocation a test makes to prepare its input — are
//! never counted. Each measured section calls nothing but the core (`handle_input`,
//! `poll_event`, commands, `poll_transmit`); inputs are built before it and events are
//! dropped inside it (a `dealloc` is not counted).
//!
//! The bounds asserted here are the performance goals of the core (see `PERFORMANCE.md`):
//! a regression that adds an allocation to the hot paths fails these tests.
#![allow(unsafe_code)] // `GlobalAlloc` can only be implemented with `unsafe impl`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::{Bytes, BytesMut};
use fcgi_core::ProtocolStatus;
use fcgi_core::client::{self, ClientConfig, ClientConnection};
use fcgi_core::record::{EndRequestBody, RecordType, Role};
use fcgi_core::server::{self, ServerConfig, ServerConnection};

#[path = "../benches/support/typical.rs"]
mod typical;

// ---------------------------------------------------------------------------------------
// The counting allocator.

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
    static REALLOCS: Cell<usize> = const { Cell::new(0) };
    static BYTES: Cell<usize> = const { Cell::new(0) };
}

struct CountingAlloc;

fn note(realloc: bool, size: usize) {
    // `try_with`: never touch a thread-local that is being torn down. The cells hold plain
    // integers with const initialisers, so reading them never allocates.
    let on = COUNTING.try_with(Cell::get).unwrap_or(false);
    if on {
        let cell = if realloc { &REALLOCS } else { &ALLOCS };
        let _ = cell.try_with(|c| c.set(c.get() + 1));
        let _ = BYTES.try_with(|c| c.set(c.get() + size));
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// bookkeeping touches only thread-local integers and cannot allocate.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(false, layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(false, layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(true, new_size);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// What a measured section asked of the allocator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    /// `alloc` + `alloc_zeroed` calls.
    allocs: usize,
    /// `realloc` calls (a buffer grown in place or moved).
    reallocs: usize,
    /// Bytes requested by those calls.
    bytes: usize,
}

impl Counts {
    /// Every call that may have taken new memory.
    fn total(&self) -> usize {
        self.allocs + self.reallocs
    }
}

/// Runs `f` with counting switched on for this thread only.
fn count<R>(f: impl FnOnce() -> R) -> (R, Counts) {
    ALLOCS.with(|c| c.set(0));
    REALLOCS.with(|c| c.set(0));
    BYTES.with(|c| c.set(0));
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    let counts = Counts {
        allocs: ALLOCS.with(Cell::get),
        reallocs: REALLOCS.with(Cell::get),
        bytes: BYTES.with(Cell::get),
    };
    (r, counts)
}

/// The allocator really counts (and only what runs inside `count`): guards the guards.
#[test]
fn counting_allocator_counts_only_inside_the_measured_section() {
    let before: Vec<u8> = Vec::with_capacity(64);
    let (v, c) = count(|| {
        let mut v: Vec<u64> = Vec::with_capacity(4);
        v.extend(0..100); // grows: realloc(s)
        v
    });
    drop(before);
    assert_eq!(c.allocs, 1, "{c:?}");
    assert!(c.reallocs >= 1, "{c:?}");
    assert!(c.bytes >= 100 * 8, "{c:?}");
    assert_eq!(v.len(), 100);
    let (_, none) = count(|| 1 + 1);
    assert_eq!(none.total(), 0);
    // Another thread allocating 1 MiB while this one counts is not counted here. The
    // barrier (a futex) lets the measured section wait for it without allocating.
    let barrier = std::sync::Barrier::new(2);
    std::thread::scope(|s| {
        s.spawn(|| {
            barrier.wait();
            let v = vec![1u8; 1 << 20];
            assert_eq!(v.len(), 1 << 20);
            barrier.wait();
        });
        let ((), c) = count(|| {
            barrier.wait();
            barrier.wait();
        });
        assert_eq!(c.total(), 0, "{c:?}");
    });
}

// ---------------------------------------------------------------------------------------
// Helpers.

fn server_events(conn: &mut ServerConnection) -> Vec<server::Event> {
    let mut out = Vec::new();
    while let Some(e) = conn.poll_event() {
        out.push(e);
    }
    out
}

fn drain_transmit<F: FnMut(Bytes)>(mut pop: impl FnMut() -> Option<Bytes>, mut f: F) {
    while let Some(chunk) = pop() {
        f(chunk);
    }
}

/// Feeds a whole typical request to `conn` and checks the events it produces, outside any
/// measured section. Returns the number of pairs seen.
fn receive_request_unmeasured(conn: &mut ServerConnection, wire: &[u8]) -> usize {
    let mut input = BytesMut::from(wire);
    conn.handle_input(&mut input).unwrap();
    assert!(input.is_empty());
    let events = server_events(conn);
    assert_eq!(events.len(), 3, "{events:?}");
    match &events[1] {
        server::Event::Params { params, .. } => params.len(),
        other => panic!("expected Params, got {other:?}"),
    }
}

fn answer_unmeasured(conn: &mut ServerConnection, id: u16) {
    conn.send_stdout(id, typical::response_head()).unwrap();
    conn.send_stdout(id, typical::response_body()).unwrap();
    conn.end_request(id, 0, ProtocolStatus::RequestComplete)
        .unwrap();
    drain_transmit(|| conn.poll_transmit(), drop);
}

// ---------------------------------------------------------------------------------------
// Server side: receiving.

/// Goal: ≤ 4 allocations to receive a typical request (BEGIN + 39 params ≈ 1.5 KB + empty
/// STDIN) on a warmed-up keep-alive connection. Measured: the `Params` buffers (wire bytes +
/// index) and nothing else when the read buffer is reused; +1 (the `bytes` shared header)
/// when the request arrives in a brand-new `BytesMut`.
#[test]
fn server_receives_typical_request_on_warm_connection_within_4_allocations() {
    let params = typical::typical_params();
    let wire = typical::request_wire(&params, 1, true);
    let mut conn = ServerConnection::new(ServerConfig::default());

    println!(
        "typical request: {} pairs, {} bytes of PARAMS content, {} bytes on the wire",
        params.len(),
        params.wire_bytes().len(),
        wire.len()
    );
    assert_eq!(params.len(), 39);
    assert!((1400..=1700).contains(&params.wire_bytes().len()));

    // First request on a new connection: also sizes the event queue, the request table and
    // the record buffer (reported, bounded loosely).
    let mut input = BytesMut::from(&wire[..]);
    let (events, cold) = count(|| {
        conn.handle_input(&mut input).unwrap();
        let mut n = 0;
        while conn.poll_event().is_some() {
            n += 1;
        }
        n
    });
    assert_eq!(events, 3);
    answer_unmeasured(&mut conn, 1);
    println!("server, typical request, first on a new connection: {cold:?}");
    // As measured: the event queue, the request table, the Params buffers and the shared
    // header of the fresh input buffer.
    assert!(cold.total() <= 5, "{cold:?}");

    // Second request, arriving in a brand-new input buffer.
    let mut input = BytesMut::from(&wire[..]);
    let (pairs, fresh) = count(|| {
        conn.handle_input(&mut input).unwrap();
        let mut pairs = 0;
        while let Some(e) = conn.poll_event() {
            if let server::Event::Params { params, .. } = &e {
                pairs = params.len();
            }
        }
        pairs
    });
    assert_eq!(pairs, params.len());
    assert!(input.is_empty());
    answer_unmeasured(&mut conn, 1);
    println!("server, typical request, fresh input buffer: {fresh:?}");

    // Third request, read into the same buffer the second one came in (what an adapter
    // does: one long-lived read buffer per connection).
    input.extend_from_slice(&wire);
    let (pairs, reused) = count(|| {
        conn.handle_input(&mut input).unwrap();
        let mut pairs = 0;
        while let Some(e) = conn.poll_event() {
            if let server::Event::Params { params, .. } = &e {
                pairs = params.len();
            }
        }
        pairs
    });
    assert_eq!(pairs, params.len());
    answer_unmeasured(&mut conn, 1);
    println!("server, typical request, reused input buffer: {reused:?}");

    assert!(fresh.total() <= 4, "{fresh:?}");
    assert!(reused.total() <= 4, "{reused:?}");
    // Tighter, as measured: the Params wire buffer and its index, nothing else.
    assert!(reused.total() <= 2, "{reused:?}");
    assert!(
        fresh.total() <= reused.total() + 1,
        "{fresh:?} vs {reused:?}"
    );
    // The Params buffers are sized once: no growth while the pairs are copied in.
    assert_eq!(reused.reallocs, 0, "{reused:?}");
}

/// Goal: 0 allocations per STDIN record. 100 STDIN records (1000..=1007 bytes each, every
/// padding length) fed at once into a warmed connection, events polled: the payloads are
/// split off the input buffer. A brand-new input buffer costs at most one allocation in
/// total (the shared header `bytes` creates when the buffer is first split), whatever the
/// number of records.
#[test]
fn server_stdin_records_cost_no_allocation_per_record() {
    let params = typical::typical_params();
    let mut head = typical::request_wire(&params, 1, true);
    head.truncate(head.len() - 8); // no empty STDIN: the body follows
    let mut conn = ServerConnection::new(ServerConfig::default());

    let mut measure = |n: usize, reuse: Option<&mut BytesMut>| -> Counts {
        let mut input = BytesMut::from(&head[..]);
        conn.handle_input(&mut input).unwrap();
        assert_eq!(server_events(&mut conn).len(), 2);
        let body = typical::stdin_records(1, n);
        let mut fresh = BytesMut::from(&body[..]);
        let input = match reuse {
            Some(buf) => {
                buf.extend_from_slice(&body);
                buf
            }
            None => &mut fresh,
        };
        let ((bytes, records, ended), c) = count(|| {
            conn.handle_input(input).unwrap();
            let (mut bytes, mut records, mut ended) = (0, 0, false);
            while let Some(e) = conn.poll_event() {
                match e {
                    server::Event::Stdin { data, .. } => {
                        bytes += data.len();
                        records += 1;
                    }
                    server::Event::StdinEnd { .. } => ended = true,
                    other => panic!("{other:?}"),
                }
            }
            (bytes, records, ended)
        });
        assert!(input.is_empty());
        assert_eq!(records, n);
        assert_eq!(bytes, (0..n).map(|i| 1000 + i % 8).sum::<usize>());
        assert!(ended);
        answer_unmeasured(&mut conn, 1);
        c
    };

    let _warm = measure(100, None);
    let one = measure(1, None);
    let hundred = measure(100, None);
    println!("server, 1 STDIN record + end, fresh buffer: {one:?}");
    println!("server, 100 STDIN records + end, fresh buffer: {hundred:?}");
    assert!(hundred.total() <= 1, "{hundred:?}");
    assert_eq!(
        hundred, one,
        "the cost must not depend on the number of records"
    );

    // Adapter-like: one read buffer reused across requests. After the first split it is
    // shared, and it is reclaimed in place once the payloads are dropped.
    let mut buf = BytesMut::with_capacity(256 * 1024);
    let _warm = measure(100, Some(&mut buf));
    let reused = measure(100, Some(&mut buf));
    println!("server, 100 STDIN records + end, reused buffer: {reused:?}");
    assert_eq!(reused.total(), 0, "{reused:?}");
}

// ---------------------------------------------------------------------------------------
// Client side: receiving.

/// A response on a warmed client connection: STDOUT records cost nothing each, and the
/// whole response (STDERR + STDOUT records + END_REQUEST) costs nothing with a reused read
/// buffer.
#[test]
fn client_stdout_records_cost_no_allocation_per_record() {
    let params = typical::typical_params();
    let mut conn = ClientConnection::new(ClientConfig::default());
    let mut buf = BytesMut::with_capacity(1 << 20);

    let measure = |conn: &mut ClientConnection, n: usize, buf: &mut BytesMut| -> Counts {
        let id = conn.begin_request(Role::Responder, true).unwrap();
        conn.send_params(id, &params).unwrap();
        conn.end_params(id).unwrap();
        conn.end_stdin(id).unwrap();
        drain_transmit(|| conn.poll_transmit(), drop);

        let mut response = Vec::new();
        typical::put_record(&mut response, RecordType::Stderr, id, b"PHP Notice: x");
        response.extend_from_slice(&typical::stdout_stream(id, n * 8000, 8000));
        typical::put_record(&mut response, RecordType::Stdout, id, &[]);
        let end = EndRequestBody {
            app_status: 0,
            protocol_status: ProtocolStatus::RequestComplete,
        };
        typical::put_record(&mut response, RecordType::EndRequest, id, &end.to_array());
        buf.extend_from_slice(&response);

        let ((stdout, ended), c) = count(|| {
            conn.handle_input(buf).unwrap();
            let (mut stdout, mut ended) = (0, false);
            while let Some(e) = conn.poll_event() {
                match e {
                    client::Event::Stdout { data, .. } => stdout += data.len(),
                    client::Event::Stderr { .. } => {}
                    client::Event::EndRequest { .. } => ended = true,
                    other => panic!("{other:?}"),
                }
            }
            (stdout, ended)
        });
        assert!(buf.is_empty());
        assert_eq!(stdout, n * 8000);
        assert!(ended);
        c
    };

    let _warm = measure(&mut conn, 25, &mut buf);
    let _warm = measure(&mut conn, 25, &mut buf);
    let few = measure(&mut conn, 2, &mut buf);
    let many = measure(&mut conn, 25, &mut buf);
    println!("client, response with 2 STDOUT records, reused buffer: {few:?}");
    println!("client, response with 25 STDOUT records, reused buffer: {many:?}");
    assert_eq!(
        many, few,
        "the cost must not depend on the number of records"
    );
    assert_eq!(many.total(), 0, "{many:?}");
}

// ---------------------------------------------------------------------------------------
// Sending.

/// Sending a typical response (headers + 4 KiB body + end) on a warmed server connection,
/// the output written out (and its chunks dropped) as it is produced: no allocation.
#[test]
fn server_sends_typical_response_on_warm_connection_without_allocating() {
    let params = typical::typical_params();
    let wire = typical::request_wire(&params, 1, true);
    let mut conn = ServerConnection::new(ServerConfig::default());
    let head = typical::response_head();
    let body = typical::response_body();
    let mut results = Vec::new();
    for _ in 0..3 {
        receive_request_unmeasured(&mut conn, &wire);
        let (written, c) = count(|| {
            conn.send_stdout(1, head.clone()).unwrap();
            conn.send_stdout(1, body.clone()).unwrap();
            conn.end_request(1, 0, ProtocolStatus::RequestComplete)
                .unwrap();
            let mut written = 0;
            drain_transmit(|| conn.poll_transmit(), |b| written += b.len());
            written
        });
        // STDOUT(head) + STDOUT(4096) + empty STDOUT + END_REQUEST, padded.
        let head_len =
            head.len() + usize::from(fcgi_core::record::Padding::Align8.padding_for(head.len()));
        assert_eq!(written, 8 + head_len + 8 + 4096 + 8 + 16);
        results.push(c);
    }
    println!("server, send typical response, warm: {:?}", results[2]);
    // As measured: none. The header bytes go into the transmit buffer, which is reclaimed
    // in place once the previous response's chunks are dropped; the body is referenced.
    assert_eq!(results[2].total(), 0, "{:?}", results[2]);
}

/// Sending a typical request (BEGIN + 39 params + empty PARAMS + empty STDIN) on a warmed
/// client connection, the output written out (and its chunks dropped) as it is produced: no
/// allocation.
#[test]
fn client_sends_typical_request_on_warm_connection_without_allocating() {
    let params = typical::typical_params();
    let expected = typical::request_wire(&params, 1, true);
    let mut conn = ClientConnection::new(ClientConfig::default());
    let end = {
        let mut v = Vec::new();
        let body = EndRequestBody {
            app_status: 0,
            protocol_status: ProtocolStatus::RequestComplete,
        };
        typical::put_record(&mut v, RecordType::Stdout, 1, &[]);
        typical::put_record(&mut v, RecordType::EndRequest, 1, &body.to_array());
        v
    };
    let mut results = Vec::new();
    for _ in 0..3 {
        // Room for the chunks, made before counting starts.
        let mut wire: Vec<Bytes> = Vec::with_capacity(16);
        let ((), c) = count(|| {
            let id = conn.begin_request(Role::Responder, true).unwrap();
            conn.send_params(id, &params).unwrap();
            conn.end_params(id).unwrap();
            conn.end_stdin(id).unwrap();
            drain_transmit(|| conn.poll_transmit(), |b| wire.push(b));
        });
        assert!(wire.len() <= 16);
        let flat: Vec<u8> = wire.iter().flat_map(|b| b.iter().copied()).collect();
        assert_eq!(flat, expected);
        results.push(c);
        let mut input = BytesMut::from(&end[..]);
        conn.handle_input(&mut input).unwrap();
        while conn.poll_event().is_some() {}
    }
    println!("client, send typical request, warm: {:?}", results[2]);
    // As measured: none. The pairs are staged in a reused buffer and the records coalesced
    // into the transmit buffer, both reclaimed in place once the chunks are dropped.
    assert_eq!(results[2].total(), 0, "{:?}", results[2]);
}
