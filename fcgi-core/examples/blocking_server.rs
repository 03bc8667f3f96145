//! A FastCGI application served with `std::net` and plain threads — no async runtime.
//!
//! It shows that `fcgi-core` drives any IO: the loop a program writes to own every byte.
//! For a ready blocking server with the full set of limits and timeouts, use
//! `fcgi_smol::blocking` (`serve_tcp(addr, handler)`, the handler a plain function).
//! Each connection gets a thread (up to `MAX_CONNS`; beyond that new connections are closed
//! at once rather than queued), reads into a `BytesMut`, feeds the core, answers events and
//! writes the transmit queue with one vectored write per burst.
//!
//! ```text
//! cargo run -p fcgi-core --example blocking_server -- 127.0.0.1:9000
//! cgi-fcgi -bind -connect 127.0.0.1:9000     # or nginx: fastcgi_pass 127.0.0.1:9000;
//! ```
//!
//! Every Responder request is answered with `text/plain`: its method, URI, the number of
//! params and the body length. Every socket wait has a timeout (30 s idle).

use std::io::{self, IoSlice, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use fcgi_core::ProtocolStatus;
use fcgi_core::server::{Event, ServerConfig, ServerConnection};

const MAX_CONNS: usize = 64;
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9000".into());
    let listener = TcpListener::bind(&addr)?;
    eprintln!("blocking_server: FastCGI on {}", listener.local_addr()?);
    let live = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        if live.fetch_add(1, Ordering::SeqCst) >= MAX_CONNS {
            live.fetch_sub(1, Ordering::SeqCst);
            drop(stream); // refuse, never queue without bound
            continue;
        }
        let live = Arc::clone(&live);
        std::thread::spawn(move || {
            if let Err(e) = serve(stream) {
                eprintln!("connection: {e}");
            }
            live.fetch_sub(1, Ordering::SeqCst);
        });
    }
    Ok(())
}

/// What the application keeps per request until it answers.
struct Pending {
    id: u16,
    summary: String,
    body_len: usize,
}

fn serve(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    stream.set_write_timeout(Some(IDLE_TIMEOUT))?;
    let mut config = ServerConfig::default();
    config.max_conns = MAX_CONNS as u32;
    let mut conn = ServerConnection::new(config);
    let mut input = BytesMut::with_capacity(16 * 1024);
    let mut pending: Vec<Pending> = Vec::new();
    loop {
        // Feed what we have; read more only when the core has consumed everything.
        conn.handle_input(&mut input).map_err(io::Error::other)?;
        while let Some(event) = conn.poll_event() {
            on_event(&mut conn, &mut pending, event)?;
        }
        flush(&mut stream, &mut conn)?;
        if conn.should_close() {
            return Ok(());
        }
        if !input.is_empty() && conn.wants_input() {
            continue; // the core paused for back-pressure; events are drained, feed the rest
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            let _ = conn.handle_eof();
            while let Some(event) = conn.poll_event() {
                on_event(&mut conn, &mut pending, event)?;
            }
            return Ok(());
        }
        input.extend_from_slice(&chunk[..n]);
    }
}

fn on_event(
    conn: &mut ServerConnection,
    pending: &mut Vec<Pending>,
    event: Event,
) -> io::Result<()> {
    let err = io::Error::other;
    match event {
        Event::Params { id, params } => {
            let method = params.get_str("REQUEST_METHOD").unwrap_or("-");
            let uri = params.get_str("REQUEST_URI").unwrap_or("-");
            pending.push(Pending {
                id,
                summary: format!("{method} {uri}\nparams: {}\n", params.len()),
                body_len: 0,
            });
        }
        Event::Stdin { id, data } => {
            if let Some(p) = pending.iter_mut().find(|p| p.id == id) {
                p.body_len += data.len();
            }
        }
        Event::StdinEnd { id } => {
            if let Some(i) = pending.iter().position(|p| p.id == id) {
                let p = pending.swap_remove(i);
                let body = format!("{}body: {} bytes\n", p.summary, p.body_len);
                let head = format!(
                    "Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                conn.send_stdout(id, Bytes::from(head + &body))
                    .map_err(err)?;
                conn.end_request(id, 0, ProtocolStatus::RequestComplete)
                    .map_err(err)?;
            }
        }
        Event::Abort { id } => {
            pending.retain(|p| p.id != id);
            conn.end_request(id, 1, ProtocolStatus::RequestComplete)
                .map_err(err)?;
        }
        _ => {}
    }
    Ok(())
}

/// Writes the whole transmit queue, one vectored write per burst.
fn flush(stream: &mut TcpStream, conn: &mut ServerConnection) -> io::Result<()> {
    while conn.transmit_len() > 0 {
        let slices: Vec<IoSlice<'_>> = conn.transmit_chunks().map(IoSlice::new).collect();
        let n = stream.write_vectored(&slices)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        conn.advance_transmit(n);
    }
    Ok(())
}
