//! The four clients, each behind the same small interface ([`Session`]): one value per
//! worker task, which sends one request, reads its whole response and returns how many
//! `STDOUT` bytes came back. Every client sends the same request: a GET of `/index.php`
//! with the same 13 params ([`PARAMS`]), an empty body, `FCGI_KEEP_CONN` set, one request
//! at a time per connection, request id 1.
//!
//! - `ours`: fcgi-tokio's pooled [`fcgi_tokio::Client`], shared by every worker (the pool
//!   holds one connection per worker).
//! - `rama-fastcgi`: rama-fastcgi 0.4's `send_on` on a kept `TcpStream` per worker (its own
//!   `FastCgiClient` opens a connection per request).
//! - `fastcgi-client`: fastcgi-client 0.12 in keep-alive mode, a client per worker.
//! - `raw`: the physical limit of a client on the same runtime: the request's bytes built
//!   once, then write them, read until the `END_REQUEST` record (walking record headers,
//!   nothing decoded), repeat.
//!
//! A session that failed is [`reset`](Session::reset): the next request reconnects (the
//! third-party clients and the raw loop hold a stream that may be mid-record).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use fcgi_tokio::client::{ClientOptions, ClientRequest, Multiplexing};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The params every client sends, in this order (the ones nginx's `fastcgi_params` and
/// `fcgi bench` send for a GET, minus the HTTP headers).
pub(crate) const PARAMS: [(&str, &str); 13] = [
    ("SCRIPT_FILENAME", "/var/www/html/index.php"),
    ("REQUEST_METHOD", "GET"),
    ("REQUEST_URI", "/index.php"),
    ("SCRIPT_NAME", "/index.php"),
    ("QUERY_STRING", ""),
    ("SERVER_PROTOCOL", "HTTP/1.1"),
    ("GATEWAY_INTERFACE", "CGI/1.1"),
    ("SERVER_SOFTWARE", "fcgi-bench-client"),
    ("REMOTE_ADDR", "127.0.0.1"),
    ("SERVER_NAME", "localhost"),
    ("SERVER_PORT", "80"),
    ("CONTENT_LENGTH", ""),
    ("DOCUMENT_ROOT", "/var/www/html"),
];

/// What the backend (`bench/c/hello_libfcgi.c`) answers on `STDOUT`: an answer of any other
/// length counts as an error.
pub(crate) const EXPECTED_STDOUT: usize = b"Content-Type: text/plain\r\n\r\nhello".len();

/// The longest wait for a connection to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The clients, by the names the command line and the table use.
pub(crate) const NAMES: [&str; 4] = ["ours", "rama-fastcgi", "fastcgi-client", "raw"];

/// How each client holds its connections (the table's "connections" column).
pub(crate) fn connections_note(name: &str, connections: usize) -> String {
    match name {
        "ours" => format!("{connections} kept (one pooled Client)"),
        "rama-fastcgi" => format!("{connections} kept (send_on)"),
        "fastcgi-client" => format!("{connections} kept (keep-alive mode)"),
        _ => format!("{connections} kept"),
    }
}

/// One worker's client: sends a request and reads its whole response.
pub(crate) trait Session: Send + 'static {
    /// One request; `Ok(n)`: the response ended well with `n` bytes of `STDOUT`.
    fn request(&mut self) -> impl Future<Output = Result<usize, String>> + Send;
    /// Forgets the connection after a failure (the next request opens a new one).
    fn reset(&mut self);
}

/// A TCP connection to `addr` with `TCP_NODELAY` (as every client here sets it), within
/// [`CONNECT_TIMEOUT`].
async fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| "connect timeout".to_owned())?
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("nodelay: {e}"))?;
    Ok(stream)
}

/// Our pooled client, shared by every worker.
pub(crate) struct Ours {
    client: fcgi_tokio::Client,
    params: fcgi_tokio::fcgi_core::Params,
}

impl Ours {
    /// The client for `workers` workers: as many kept connections, no multiplexing (libfcgi
    /// does not), the timeouts of `fcgi bench`'s default (10 s).
    pub(crate) fn client(addr: SocketAddr, workers: usize) -> fcgi_tokio::Client {
        let mut options = ClientOptions::default();
        options.max_connections = workers;
        options.keep_alive = true;
        options.multiplexing = Multiplexing::Off;
        let timeout = Duration::from_secs(10);
        options.connect_timeout = timeout;
        options.pool_timeout = timeout;
        options.read_timeout = timeout;
        options.write_timeout = timeout;
        fcgi_tokio::client(fcgi_tokio::Backend::Tcp(addr), options)
    }

    /// A worker's handle on the shared `client`.
    pub(crate) fn new(client: fcgi_tokio::Client) -> Self {
        let mut request = ClientRequest::responder();
        for (name, value) in PARAMS {
            request.push_param(name, value);
        }
        Self {
            client,
            params: request.params().clone(),
        }
    }
}

impl Session for Ours {
    async fn request(&mut self) -> Result<usize, String> {
        // As the gateway does: the params built per request, the response read piece by
        // piece, then its end.
        let request = ClientRequest::responder().params_from(self.params.clone());
        let mut response = self.client.send(request).await.map_err(|e| e.to_string())?;
        let mut received = 0;
        while let Some(piece) = response.chunk().await {
            received += piece.map_err(|e| e.to_string())?.len();
        }
        let end = response.finish().await.map_err(|e| e.to_string())?;
        if end.app_status != 0 {
            return Err(format!("app status {}", end.app_status));
        }
        Ok(received)
    }

    fn reset(&mut self) {
        // The pool replaces a broken connection by itself.
    }
}

/// rama-fastcgi 0.4's `send_on` over a kept connection.
pub(crate) struct Rama {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    params: Vec<(Bytes, Bytes)>,
}

impl Rama {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            stream: None,
            params: PARAMS
                .iter()
                .map(|(n, v)| {
                    (
                        Bytes::from_static(n.as_bytes()),
                        Bytes::from_static(v.as_bytes()),
                    )
                })
                .collect(),
        }
    }
}

impl Session for Rama {
    async fn request(&mut self) -> Result<usize, String> {
        if self.stream.is_none() {
            self.stream = Some(connect(self.addr).await?);
        }
        let stream = self.stream.as_mut().ok_or("no connection")?;
        let request = rama_fastcgi::client::FastCgiClientRequest::new(self.params.clone());
        let response = rama_fastcgi::client::send_on(stream, 1, request, true)
            .await
            .map_err(|e| format!("{e:?}"))?;
        if response.app_status != 0 {
            return Err(format!("app status {}", response.app_status));
        }
        Ok(response.stdout.len())
    }

    fn reset(&mut self) {
        self.stream = None;
    }
}

/// fastcgi-client 0.12's keep-alive client.
pub(crate) struct FastcgiClient {
    addr: SocketAddr,
    client: Option<KeepAlive>,
    params: fastcgi_client::Params<'static>,
}

type KeepAlive = fastcgi_client::Client<
    fastcgi_client::io::TokioCompat<TcpStream>,
    fastcgi_client::conn::KeepAlive,
>;

impl FastcgiClient {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        // Its default params (GATEWAY_INTERFACE, SERVER_SOFTWARE, SERVER_PROTOCOL) are
        // replaced by ours: the same 13 as every client.
        let mut params = fastcgi_client::Params::default();
        for (name, value) in PARAMS {
            params = params.custom(name, value);
        }
        Self {
            addr,
            client: None,
            params,
        }
    }
}

impl Session for FastcgiClient {
    async fn request(&mut self) -> Result<usize, String> {
        if self.client.is_none() {
            let stream = connect(self.addr).await?;
            self.client = Some(fastcgi_client::Client::new_keep_alive_tokio(stream));
        }
        let client = self.client.as_mut().ok_or("no connection")?;
        let request =
            fastcgi_client::Request::new(self.params.clone(), fastcgi_client::io::empty());
        let response = client.execute(request).await.map_err(|e| e.to_string())?;
        Ok(response.stdout.map_or(0, |s| s.len()))
    }

    fn reset(&mut self) {
        self.client = None;
    }
}

/// The physical limit: prebuilt request bytes, one write, reads until `END_REQUEST`.
pub(crate) struct Raw {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    request: Vec<u8>,
    /// The read buffer, zeroed once: room for the largest record.
    input: Box<[u8]>,
}

/// The largest record: header, 65535 content bytes, 255 padding bytes.
const MAX_RECORD: usize = HEADER + 65535 + 255;

/// FastCGI record types the raw client writes or looks for.
const BEGIN_REQUEST: u8 = 1;
const END_REQUEST: u8 = 3;
const PARAMS_RECORD: u8 = 4;
const STDIN: u8 = 5;
const STDOUT: u8 = 6;
/// A record header's length.
const HEADER: usize = 8;

impl Raw {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            stream: None,
            request: request_bytes(),
            input: vec![0; MAX_RECORD].into_boxed_slice(),
        }
    }
}

/// The whole request on the wire: `BEGIN_REQUEST` (Responder, keep-conn), one `PARAMS`
/// record with every pair, the empty `PARAMS` and the empty `STDIN`.
pub(crate) fn request_bytes() -> Vec<u8> {
    let mut pairs = Vec::new();
    for (name, value) in PARAMS {
        for len in [name.len(), value.len()] {
            push_length(&mut pairs, len);
        }
        pairs.extend_from_slice(name.as_bytes());
        pairs.extend_from_slice(value.as_bytes());
    }
    let mut out = Vec::with_capacity(pairs.len() + 48);
    push_record(&mut out, BEGIN_REQUEST, &[0, 1, 1, 0, 0, 0, 0, 0]);
    push_record(&mut out, PARAMS_RECORD, &pairs);
    push_record(&mut out, PARAMS_RECORD, &[]);
    push_record(&mut out, STDIN, &[]);
    out
}

/// A name-value pair length: one byte below 128, four (high bit set) above.
fn push_length(out: &mut Vec<u8>, len: usize) {
    match u8::try_from(len) {
        Ok(short) if short < 128 => out.push(short),
        _ => {
            let long = u32::try_from(len).unwrap_or(u32::MAX >> 1) | 1 << 31;
            out.extend_from_slice(&long.to_be_bytes());
        }
    }
}

/// A record of request id 1, padded to a multiple of 8 bytes (the params fit one record).
fn push_record(out: &mut Vec<u8>, kind: u8, content: &[u8]) {
    let len = u16::try_from(content.len()).unwrap_or(u16::MAX);
    let pad = (8 - content.len() % 8) % 8;
    let [hi, lo] = len.to_be_bytes();
    out.extend_from_slice(&[1, kind, 0, 1, hi, lo, pad as u8, 0]);
    out.extend_from_slice(&content[..usize::from(len)]);
    out.extend(std::iter::repeat_n(0, pad));
}

/// What walking the records received so far found.
enum Walk {
    /// `END_REQUEST` came: the `STDOUT` bytes, and the application status.
    Ended { stdout: usize, app_status: u32 },
    /// More bytes are needed; the `STDOUT` bytes in the whole records walked, and where the
    /// first incomplete record starts.
    More { stdout: usize, consumed: usize },
}

/// Walks the whole records of `input` (of request 1, one request at a time).
fn walk(input: &[u8]) -> Walk {
    let mut at = 0;
    let mut stdout = 0;
    while input.len() - at >= HEADER {
        let h = &input[at..at + HEADER];
        let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
        let end = at + HEADER + len + usize::from(h[6]);
        if input.len() < end {
            break;
        }
        match h[1] {
            STDOUT => stdout += len,
            END_REQUEST if len >= 4 => {
                let c = &input[at + HEADER..at + HEADER + 4];
                let app_status = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
                return Walk::Ended { stdout, app_status };
            }
            _ => {}
        }
        at = end;
    }
    Walk::More {
        stdout,
        consumed: at,
    }
}

impl Raw {
    /// Reads until `END_REQUEST`; the `STDOUT` bytes. (A record never outgrows `input`:
    /// whole records walked are dropped from its front.)
    async fn read_response(stream: &mut TcpStream, input: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        let mut stdout = 0;
        loop {
            let n = stream.read(&mut input[filled..]).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            filled += n;
            match walk(&input[..filled]) {
                Walk::Ended {
                    stdout: last,
                    app_status: 0,
                } => return Ok(stdout + last),
                Walk::Ended { app_status, .. } => {
                    return Err(io::Error::other(format!("app status {app_status}")));
                }
                Walk::More {
                    stdout: walked,
                    consumed,
                } => {
                    stdout += walked;
                    input.copy_within(consumed..filled, 0);
                    filled -= consumed;
                }
            }
        }
    }
}

impl Session for Raw {
    async fn request(&mut self) -> Result<usize, String> {
        if self.stream.is_none() {
            self.stream = Some(connect(self.addr).await?);
        }
        let stream = self.stream.as_mut().ok_or("no connection")?;
        stream
            .write_all(&self.request)
            .await
            .map_err(|e| format!("write: {e}"))?;
        Self::read_response(stream, &mut self.input)
            .await
            .map_err(|e| format!("read: {e}"))
    }

    fn reset(&mut self) {
        self.stream = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bytes_are_whole_records() {
        let bytes = request_bytes();
        // BEGIN_REQUEST with keep-conn, then records to the end, all of request id 1.
        assert_eq!(&bytes[..8], &[1, BEGIN_REQUEST, 0, 1, 0, 8, 0, 0]);
        assert_eq!(bytes[10], 1);
        assert!(matches!(walk(&bytes), Walk::More { consumed, .. } if consumed == bytes.len()));
        assert_eq!(bytes.len() % 8, 0);
    }

    #[test]
    fn walk_finds_the_end() {
        let mut answer = Vec::new();
        push_record(
            &mut answer,
            STDOUT,
            b"Content-Type: text/plain\r\n\r\nhello",
        );
        push_record(&mut answer, STDOUT, &[]);
        let half = answer.len();
        push_record(&mut answer, END_REQUEST, &[0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(matches!(
            walk(&answer[..half + 3]),
            Walk::More { stdout: EXPECTED_STDOUT, consumed } if consumed == half
        ));
        assert!(matches!(
            walk(&answer),
            Walk::Ended {
                stdout: EXPECTED_STDOUT,
                app_status: 0
            }
        ));
    }

    #[test]
    fn long_lengths_take_four_bytes() {
        let mut out = Vec::new();
        push_length(&mut out, 127);
        push_length(&mut out, 300);
        assert_eq!(out, [127, 0x80, 0, 1, 44]);
    }
}
