//! The self-contained demo: a FastCGI client (the web-server side, like nginx) and a FastCGI
//! server (the application side, like php-fpm) wired together in memory, with every record
//! that crosses the "wire" printed as it goes.
//!
//! ```text
//! cargo run -p fcgi-core --example demo
//! ```
//!
//! It runs two multiplexed requests at once (one of them sends a 70 000-byte body, so you
//! see it split into records of at most 65528 bytes), a `GET_VALUES` query, and an abort.

use bytes::{Bytes, BytesMut};
use fcgi_core::client::{self, ClientConfig, ClientConnection};
use fcgi_core::record::{Record, RecordReader, RecordType, Role};
use fcgi_core::server::{self, ServerConfig, ServerConnection};
use fcgi_core::{Error, ProtocolStatus};

fn main() -> Result<(), Error> {
    let mut client = ClientConnection::new({
        let mut c = ClientConfig::default();
        c.max_concurrent_requests = 8;
        c
    });
    let mut server = ServerConnection::new(ServerConfig::default());
    let mut to_server = Tap::new("web server -> app");
    let mut to_client = Tap::new("app -> web server");

    client.get_values(&[b"FCGI_MAX_CONNS", b"FCGI_MAX_REQS", b"FCGI_MPXS_CONNS"])?;
    let small = client.begin_request(Role::Responder, true)?;
    for (n, v) in [
        ("REQUEST_METHOD", "GET"),
        ("REQUEST_URI", "/hello?name=fcgi"),
        ("QUERY_STRING", "name=fcgi"),
        ("SCRIPT_FILENAME", "/srv/hello.php"),
    ] {
        client.send_param(small, n.as_bytes(), v.as_bytes())?;
    }
    client.end_params(small)?;
    client.end_stdin(small)?;

    let upload = client.begin_request(Role::Responder, true)?;
    client.send_param(upload, b"REQUEST_METHOD", b"POST")?;
    client.send_param(upload, b"CONTENT_LENGTH", b"70000")?;
    client.end_params(upload)?;
    client.send_stdin(upload, Bytes::from(vec![b'x'; 70_000]))?;
    client.end_stdin(upload)?;

    let aborted = client.begin_request(Role::Responder, true)?;
    client.send_param(aborted, b"REQUEST_METHOD", b"GET")?;
    client.end_params(aborted)?;
    client.abort(aborted)?;

    let mut app = App::default();
    let mut responses: Vec<(u16, Vec<u8>)> = Vec::new();
    // Input buffers persist: what back-pressure leaves unconsumed is fed again next round.
    let (mut server_in, mut client_in) = (BytesMut::new(), BytesMut::new());
    for _ in 0..100 {
        let mut moved = false;
        while let Some(chunk) = client.poll_transmit() {
            moved = true;
            to_server.show(&chunk);
            server_in.extend_from_slice(&chunk);
        }
        server.handle_input(&mut server_in)?;
        while let Some(event) = server.poll_event() {
            moved = true;
            app.on_event(&mut server, event)?;
        }
        while let Some(chunk) = server.poll_transmit() {
            moved = true;
            to_client.show(&chunk);
            client_in.extend_from_slice(&chunk);
        }
        client.handle_input(&mut client_in)?;
        while let Some(event) = client.poll_event() {
            moved = true;
            match event {
                client::Event::Stdout { id, data } => {
                    match responses.iter_mut().find(|r| r.0 == id) {
                        Some(r) => r.1.extend_from_slice(&data),
                        None => responses.push((id, data.to_vec())),
                    }
                }
                client::Event::EndRequest {
                    id,
                    app_status,
                    protocol_status,
                } => {
                    println!(
                        "   == request {id} ended: app status {app_status}, {protocol_status:?}"
                    );
                }
                client::Event::Values(values) => println!("   == GET_VALUES answer: {values:?}"),
                other => println!("   == {other:?}"),
            }
        }
        if !moved && server_in.is_empty() && client_in.is_empty() {
            break;
        }
    }
    for (id, body) in responses {
        println!(
            "\nresponse to request {id}:\n{}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(())
}

/// The application: answers every request once its body is in.
#[derive(Default)]
struct App {
    bodies: Vec<(u16, usize)>,
}

impl App {
    fn on_event(&mut self, conn: &mut ServerConnection, event: server::Event) -> Result<(), Error> {
        match event {
            server::Event::BeginRequest { id, .. } => self.bodies.push((id, 0)),
            server::Event::Stdin { id, data } => {
                if let Some(b) = self.bodies.iter_mut().find(|b| b.0 == id) {
                    b.1 += data.len();
                }
            }
            server::Event::StdinEnd { id } => {
                let len = self.bodies.iter().find(|b| b.0 == id).map_or(0, |b| b.1);
                let text =
                    format!("Content-Type: text/plain\r\n\r\nrequest {id}: {len} body bytes\n");
                conn.send_stderr(id, Bytes::from_static(b"a line for the error log"))?;
                conn.send_stdout(id, Bytes::from(text))?;
                conn.end_request(id, 0, ProtocolStatus::RequestComplete)?;
            }
            server::Event::Abort { id } => {
                conn.end_request(id, 130, ProtocolStatus::RequestComplete)?
            }
            _ => {}
        }
        Ok(())
    }
}

/// Prints every record crossing one direction of the wire.
struct Tap {
    label: &'static str,
    reader: RecordReader,
    buf: BytesMut,
}

impl Tap {
    fn new(label: &'static str) -> Self {
        Self {
            label,
            reader: RecordReader::new(),
            buf: BytesMut::new(),
        }
    }

    fn show(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        while let Some(Record { header, content }) = self.reader.read(&mut self.buf) {
            let shown = match header.record_type {
                RecordType::Stdout | RecordType::Stderr | RecordType::Params
                    if content.len() <= 80 =>
                {
                    format!(" {:?}", String::from_utf8_lossy(&content))
                }
                _ if content.len() <= 16 => format!(" {:02x?}", &content[..]),
                _ => String::new(),
            };
            println!(
                "{:<18} {:<16} id={:<2} content={:<5} padding={}{}",
                self.label,
                format!("{:?}", header.record_type),
                header.request_id,
                header.content_length,
                header.padding_length,
                shown
            );
        }
    }
}
