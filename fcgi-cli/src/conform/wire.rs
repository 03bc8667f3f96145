//! Records as `fcgi conform` writes them: byte for byte under the check's control (padding,
//! record sizes, pairs split anywhere, ids, malformed input), which no well-behaved client
//! produces. Records are built with fcgi-core's `Header` and pair encoding, and read back
//! with its `RecordReader`.

use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use fcgi_core::record::{Header, MAX_CONTENT_LEN, Record, RecordReader, RecordType};
use fcgi_tokio::Backend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

/// Record type bytes (spec 8).
pub(crate) const BEGIN: u8 = 1;
pub(crate) const ABORT: u8 = 2;
pub(crate) const END: u8 = 3;
pub(crate) const PARAMS: u8 = 4;
pub(crate) const STDIN: u8 = 5;
pub(crate) const STDOUT: u8 = 6;
pub(crate) const STDERR: u8 = 7;
pub(crate) const DATA: u8 = 8;
pub(crate) const GET_VALUES: u8 = 9;
pub(crate) const GET_VALUES_RESULT: u8 = 10;
pub(crate) const UNKNOWN_TYPE: u8 = 11;

/// Protocol status bytes of `END_REQUEST`.
pub(crate) const REQUEST_COMPLETE: u8 = 0;
pub(crate) const CANT_MPX_CONN: u8 = 1;
pub(crate) const OVERLOADED: u8 = 2;
pub(crate) const UNKNOWN_ROLE: u8 = 3;

/// One record: header, `content`, `padding` zero bytes. `content` must fit in a record.
pub(crate) fn record(ty: u8, id: u16, content: &[u8], padding: u8) -> Vec<u8> {
    let len = u16::try_from(content.len().min(MAX_CONTENT_LEN)).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(8 + content.len() + usize::from(padding));
    Header::new(RecordType::from(ty), id, len, padding).encode(&mut out);
    out.extend_from_slice(&content[..usize::from(len)]);
    out.resize(out.len() + usize::from(padding), 0);
    out
}

/// A stream: `data` cut at `cuts` (offsets, ascending) and at 65535 bytes, each record with
/// `padding`, then the empty record that ends it.
pub(crate) fn stream(ty: u8, id: u16, data: &[u8], cuts: &[usize], padding: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bounds: Vec<usize> = cuts
        .iter()
        .copied()
        .filter(|&c| c > 0 && c < data.len())
        .collect();
    bounds.push(data.len());
    for end in bounds {
        while start < end {
            let stop = end.min(start + MAX_CONTENT_LEN);
            out.extend(record(ty, id, &data[start..stop], padding));
            start = stop;
        }
    }
    out.extend(record(ty, id, &[], padding));
    out
}

/// `BEGIN_REQUEST` for `role` (1 responder, 2 authorizer, 3 filter, or any other value).
pub(crate) fn begin(id: u16, role: u16, keep_conn: bool) -> Vec<u8> {
    let r = role.to_be_bytes();
    record(
        BEGIN,
        id,
        &[r[0], r[1], u8::from(keep_conn), 0, 0, 0, 0, 0],
        0,
    )
}

/// The encoded name-value block of `pairs`.
pub(crate) fn pairs(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in pairs {
        // Lengths here are far below 2^31: encoding cannot fail.
        let _ = fcgi_core::params::encode_pair(&mut out, name, value);
    }
    out
}

/// A whole request: `BEGIN_REQUEST`, the params block as one stream, `STDIN` (for a
/// Responder and a Filter), `DATA` (for a Filter).
pub(crate) fn request(id: u16, role: u16, keep_conn: bool, params: &[u8], stdin: &[u8]) -> Vec<u8> {
    let mut out = begin(id, role, keep_conn);
    out.extend(stream(PARAMS, id, params, &[], 0));
    if role != 2 {
        out.extend(stream(STDIN, id, stdin, &[], 0));
    }
    out
}

/// How a request ended, as the application said it.
#[derive(Debug, Default)]
pub(crate) struct Answer {
    pub(crate) stdout: BytesMut,
    pub(crate) stderr: BytesMut,
    /// `(app_status, protocol_status)` from `END_REQUEST`.
    pub(crate) end: Option<(u32, u8)>,
}

enum Io {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// A connection to the application, read record by record, every wait bounded.
pub(crate) struct Wire {
    io: Io,
    reader: RecordReader,
    input: BytesMut,
    timeout: Duration,
    /// Records read for other ids or types while waiting for something else.
    pub(crate) others: Vec<Record>,
    /// Content bytes in `others`.
    kept: usize,
}

/// The most an answer's `STDOUT`, its `STDERR`, or the records kept aside may hold: far
/// beyond what any check asks for, and a bound on what a hostile application can make the
/// tool hold.
pub(crate) const MAX_KEPT: usize = 1 << 20;

fn too_much(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the application sent more than {MAX_KEPT} bytes of {what}"),
    )
}

impl Wire {
    /// Connects within `timeout`.
    pub(crate) async fn connect(backend: &Backend, timeout: Duration) -> io::Result<Self> {
        let io = tokio::time::timeout(timeout, async {
            Ok::<_, io::Error>(match backend {
                Backend::Tcp(addr) => {
                    let s = TcpStream::connect(addr).await?;
                    s.set_nodelay(true)?;
                    Io::Tcp(s)
                }
                Backend::Name { host, port } => {
                    let s = TcpStream::connect((host.as_str(), *port)).await?;
                    s.set_nodelay(true)?;
                    Io::Tcp(s)
                }
                Backend::Unix(path) => Io::Unix(UnixStream::connect(path).await?),
                other => {
                    return Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        format!("cannot connect to {other}"),
                    ));
                }
            })
        })
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timeout"))??;
        Ok(Self {
            io,
            reader: RecordReader::new(),
            input: BytesMut::with_capacity(16 * 1024),
            timeout,
            others: Vec::new(),
            kept: 0,
        })
    }

    /// Writes `bytes` (within the timeout).
    pub(crate) async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let write = async {
            match &mut self.io {
                Io::Tcp(s) => s.write_all(bytes).await,
                Io::Unix(s) => s.write_all(bytes).await,
            }
        };
        tokio::time::timeout(self.timeout, write)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "write timeout"))?
    }

    /// The next record; `Ok(None)` when the application closed the connection; an error of
    /// kind `TimedOut` when nothing came within `wait`.
    pub(crate) async fn next_within(&mut self, wait: Duration) -> io::Result<Option<Record>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(record) = self.reader.read(&mut self.input) {
                return Ok(Some(record));
            }
            self.input.reserve(16 * 1024);
            let read = async {
                match &mut self.io {
                    Io::Tcp(s) => s.read_buf(&mut self.input).await,
                    Io::Unix(s) => s.read_buf(&mut self.input).await,
                }
            };
            match tokio::time::timeout_at(deadline, read).await {
                Err(_) => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "no answer"));
                }
                Ok(Ok(0)) => return Ok(None),
                Ok(Ok(_)) => {}
                // A reset is the application closing the connection too.
                Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(None),
                Ok(Err(e)) => return Err(e),
            }
        }
    }

    /// The next record within the check timeout.
    pub(crate) async fn next(&mut self) -> io::Result<Option<Record>> {
        self.next_within(self.timeout).await
    }

    /// Keeps a record read while waiting for something else, within [`MAX_KEPT`].
    fn keep(&mut self, record: Record) -> io::Result<()> {
        self.kept += record.content.len();
        if self.kept > MAX_KEPT {
            return Err(too_much("records for other ids or types"));
        }
        self.others.push(record);
        Ok(())
    }

    /// Reads until `END_REQUEST` for `id` (records for other ids are kept in `others`).
    /// `Ok(None)`: the connection closed first. `STDOUT` or `STDERR` over [`MAX_KEPT`] is an
    /// error.
    pub(crate) async fn answer(&mut self, id: u16) -> io::Result<Option<Answer>> {
        let mut answer = Answer::default();
        loop {
            let Some(record) = self.next().await? else {
                return Ok(None);
            };
            let ty = u8::from(record.header.record_type);
            if record.header.request_id != id {
                self.keep(record)?;
                continue;
            }
            let (stream, what) = match ty {
                STDOUT => (&mut answer.stdout, "STDOUT"),
                STDERR => (&mut answer.stderr, "STDERR"),
                END if record.content.len() >= 5 => {
                    let c = &record.content;
                    answer.end = Some((u32::from_be_bytes([c[0], c[1], c[2], c[3]]), c[4]));
                    return Ok(Some(answer));
                }
                _ => {
                    self.keep(record)?;
                    continue;
                }
            };
            if stream.len() + record.content.len() > MAX_KEPT {
                return Err(too_much(what));
            }
            stream.extend_from_slice(&record.content);
        }
    }

    /// Waits for a management record of type `ty` (id 0). `Ok(None)`: closed first.
    pub(crate) async fn management(&mut self, ty: u8) -> io::Result<Option<Bytes>> {
        loop {
            let Some(record) = self.next().await? else {
                return Ok(None);
            };
            if record.header.request_id == 0 && u8::from(record.header.record_type) == ty {
                return Ok(Some(record.content));
            }
            self.keep(record)?;
        }
    }

    /// Ends our side (the application reads end of stream) and waits, within the timeout,
    /// for the application to close its side: what it held for the connection is then gone,
    /// so the next check does not race its clean-up (a connection limit filled by a check
    /// before it, say).
    pub(crate) async fn hang_up(mut self) {
        let shut = match &mut self.io {
            Io::Tcp(s) => s.shutdown().await,
            Io::Unix(s) => s.shutdown().await,
        };
        if shut.is_ok() {
            let wait = self.timeout;
            self.closes_within(wait).await;
        }
    }

    /// Whether the application closes the connection within `wait` (records arriving
    /// meanwhile are kept in `others`).
    pub(crate) async fn closes_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await {
                Ok(None) => return true,
                Ok(Some(record)) => {
                    if self.keep(record).is_err() {
                        return false; // still talking, past the cap: not closing
                    }
                }
                Err(e) => return e.kind() != io::ErrorKind::TimedOut,
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// An application that answers request 1 with `stdout_bytes` of STDOUT, then ends it.
    async fn application(stdout_bytes: usize) -> Backend {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let chunk = vec![b'x'; 60_000];
            let mut left = stdout_bytes;
            while left > 0 {
                let n = left.min(chunk.len());
                if s.write_all(&record(STDOUT, 1, &chunk[..n], 0))
                    .await
                    .is_err()
                {
                    return;
                }
                left -= n;
            }
            let _ = s.write_all(&record(STDOUT, 1, &[], 0)).await;
            let _ = s.write_all(&record(END, 1, &[0; 8], 0)).await;
        });
        Backend::Tcp(addr)
    }

    #[tokio::test]
    async fn an_answer_is_read_up_to_the_cap() {
        let backend = application(MAX_KEPT).await;
        let mut wire = Wire::connect(&backend, Duration::from_secs(5))
            .await
            .unwrap();
        let answer = wire.answer(1).await.unwrap().expect("an answer");
        assert_eq!(answer.stdout.len(), MAX_KEPT);
        assert_eq!(answer.end, Some((0, 0)));
    }

    #[tokio::test]
    async fn an_answer_over_the_cap_is_an_error_not_memory() {
        let backend = application(MAX_KEPT + 1).await;
        let mut wire = Wire::connect(&backend, Duration::from_secs(5))
            .await
            .unwrap();
        let e = wire.answer(1).await.expect_err("over the cap");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    }
}
