//! A small blocking HTTP/1.1 client over `std::net::TcpStream`, with a timeout on every
//! socket operation: enough to send GET and POST (Content-Length or chunked bodies) and read
//! status, headers and a body framed by Content-Length, chunked encoding or connection close.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Timeout of connect and of each read and write.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

const MAX_HEAD: usize = 64 * 1024;

/// How a request body is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestBody {
    /// No body and no framing header.
    None,
    /// `Content-Length` framing.
    Sized(Vec<u8>),
    /// `Transfer-Encoding: chunked`, in chunks of at most `chunk` bytes.
    Chunked {
        /// The body.
        data: Vec<u8>,
        /// The largest chunk.
        chunk: usize,
    },
}

/// An HTTP request to send.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method.
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// Extra header fields (`Host`, framing and `Connection` are added).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: RequestBody,
}

impl Request {
    /// A GET of `target`.
    pub fn get(target: &str) -> Self {
        Self {
            method: "GET".into(),
            target: target.into(),
            headers: Vec::new(),
            body: RequestBody::None,
        }
    }

    /// A POST of `body` to `target`, with `Content-Length`.
    pub fn post(target: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            method: "POST".into(),
            target: target.into(),
            headers: vec![("Content-Type".into(), "application/octet-stream".into())],
            body: RequestBody::Sized(body.into()),
        }
    }

    /// A POST of `body` to `target`, chunked in pieces of at most `chunk` bytes.
    pub fn post_chunked(target: &str, body: impl Into<Vec<u8>>, chunk: usize) -> Self {
        Self {
            body: RequestBody::Chunked {
                data: body.into(),
                chunk: chunk.max(1),
            },
            ..Self::post(target, Vec::new())
        }
    }

    /// Adds a header field.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The request body bytes, whatever the framing.
    pub fn body_bytes(&self) -> &[u8] {
        match &self.body {
            RequestBody::None => &[],
            RequestBody::Sized(d) | RequestBody::Chunked { data: d, .. } => d,
        }
    }

    fn write_to(&self, w: &mut impl Write, host: &str, close: bool) -> io::Result<()> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {host}\r\n",
            self.method, self.target
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        match &self.body {
            RequestBody::None => {}
            RequestBody::Sized(d) => head.push_str(&format!("Content-Length: {}\r\n", d.len())),
            RequestBody::Chunked { .. } => head.push_str("Transfer-Encoding: chunked\r\n"),
        }
        if close {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        w.write_all(head.as_bytes())?;
        match &self.body {
            RequestBody::None => {}
            RequestBody::Sized(d) => w.write_all(d)?,
            RequestBody::Chunked { data, chunk } => {
                for piece in data.chunks(*chunk) {
                    w.write_all(format!("{:x}\r\n", piece.len()).as_bytes())?;
                    w.write_all(piece)?;
                    w.write_all(b"\r\n")?;
                }
                w.write_all(b"0\r\n\r\n")?;
            }
        }
        w.flush()
    }
}

/// How the response body was delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body by definition (HEAD, 1xx, 204, 304).
    None,
    /// `Content-Length`.
    Length,
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Read until the server closed the connection.
    Close,
}

/// A response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// Header fields in received order.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
    /// How the body was framed.
    pub framing: Framing,
}

impl Response {
    /// The first header field named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy), for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn closes(&self) -> bool {
        self.framing == Framing::Close
            || self
                .header("Connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// A persistent HTTP/1.1 connection (keep-alive): requests are sent one after the other.
#[derive(Debug)]
pub struct Connection {
    reader: BufReader<TcpStream>,
    host: String,
    open: bool,
}

impl Connection {
    /// Connects to `addr` with timeouts on connect, reads and writes.
    pub fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            reader: BufReader::with_capacity(64 * 1024, stream),
            host: addr.to_string(),
            open: true,
        })
    }

    /// Sends `req` and reads its response, keeping the connection open.
    pub fn send(&mut self, req: &Request) -> io::Result<Response> {
        self.exchange(req, false)
    }

    fn exchange(&mut self, req: &Request, close: bool) -> io::Result<Response> {
        if !self.open {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the server closed this connection",
            ));
        }
        req.write_to(self.reader.get_mut(), &self.host, close)?;
        let resp = read_response(&mut self.reader, req.method == "HEAD")?;
        if resp.closes() {
            self.open = false;
        }
        Ok(resp)
    }
}

/// Sends one request on a new connection (`Connection: close`) and reads the response.
pub fn send(addr: SocketAddr, req: &Request) -> io::Result<Response> {
    Connection::connect(addr)?.exchange(req, true)
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn read_line(r: &mut impl BufRead, budget: &mut usize) -> io::Result<String> {
    let mut line = Vec::new();
    let n = r
        .by_ref()
        .take(*budget as u64)
        .read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before a complete response head",
        ));
    }
    *budget = budget.saturating_sub(n);
    if line.last() != Some(&b'\n') {
        return Err(bad("response head too long or cut"));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| bad("response head is not UTF-8"))
}

/// Reads one response (skipping interim 1xx responses) from `r`.
pub fn read_response(r: &mut impl BufRead, head_request: bool) -> io::Result<Response> {
    loop {
        let mut budget = MAX_HEAD;
        let status_line = read_line(r, &mut budget)?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        if !version.starts_with("HTTP/1.") {
            return Err(bad(format!("not an HTTP/1.x status line: {status_line:?}")));
        }
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(format!("bad status line: {status_line:?}")))?;
        let reason = parts.next().unwrap_or_default().to_owned();
        let mut headers = Vec::new();
        loop {
            let line = read_line(r, &mut budget)?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| bad(format!("bad header line: {line:?}")))?;
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        if (100..200).contains(&status) {
            continue;
        }
        let mut resp = Response {
            status,
            reason,
            headers,
            body: Vec::new(),
            framing: Framing::None,
        };
        if head_request || status == 204 || status == 304 {
            return Ok(resp);
        }
        let chunked = resp
            .header("Transfer-Encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        if chunked {
            resp.framing = Framing::Chunked;
            resp.body = read_chunked(r)?;
        } else if let Some(len) = resp.header("Content-Length") {
            let len: usize = len
                .parse()
                .map_err(|_| bad(format!("bad Content-Length {len:?}")))?;
            resp.framing = Framing::Length;
            resp.body = vec![0; len];
            r.read_exact(&mut resp.body)?;
        } else {
            resp.framing = Framing::Close;
            r.read_to_end(&mut resp.body)?;
        }
        return Ok(resp);
    }
}

fn read_chunked(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut budget = MAX_HEAD;
        let line = read_line(r, &mut budget)?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| bad(format!("bad chunk size line {line:?}")))?;
        if size == 0 {
            // Trailer fields, then the empty line.
            while !read_line(r, &mut budget)?.is_empty() {}
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        if !read_line(r, &mut budget)?.is_empty() {
            return Err(bad("chunk not followed by CRLF"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> io::Result<Response> {
        read_response(&mut BufReader::new(raw), false)
    }

    #[test]
    fn reads_content_length_bodies() {
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhelloEXTRA").unwrap();
        assert_eq!((r.status, r.reason.as_str()), (200, "OK"));
        assert_eq!(r.body, b"hello");
        assert_eq!(r.framing, Framing::Length);
        assert_eq!(r.header("x"), Some("y"));
    }

    #[test]
    fn reads_chunked_bodies_with_extensions_and_trailers() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                    3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: v\r\n\r\n";
        let r = parse(raw).unwrap();
        assert_eq!(r.body, b"abc0123456789abcdef");
        assert_eq!(r.framing, Framing::Chunked);
    }

    #[test]
    fn reads_close_delimited_bodies_and_skips_interim_responses() {
        let r =
            parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 403 Forbidden\r\n\r\ndenied").unwrap();
        assert_eq!(r.status, 403);
        assert_eq!(r.body, b"denied");
        assert_eq!(r.framing, Framing::Close);
    }

    #[test]
    fn rejects_cut_and_malformed_responses() {
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort").is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Le").is_err());
        assert!(parse(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err());
    }

    #[test]
    fn writes_chunked_requests() {
        let mut out = Vec::new();
        Request::post_chunked("/p?q", b"abcde".to_vec(), 2)
            .write_to(&mut out, "h:1", true)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("POST /p?q HTTP/1.1\r\nHost: h:1\r\n"),
            "{text}"
        );
        assert!(text.contains("Transfer-Encoding: chunked\r\n"), "{text}");
        assert!(
            text.ends_with("\r\n\r\n2\r\nab\r\n2\r\ncd\r\n1\r\ne\r\n0\r\n\r\n"),
            "{text}"
        );
    }
}
