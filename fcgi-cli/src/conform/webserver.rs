//! `fcgi conform --web-server`: the other direction. `fcgi` is a strict recording
//! application; a web server (nginx, Apache, lighttpd, HAProxy, a gateway) is pointed at it
//! and sent the listed HTTP requests (`--drive URL` sends them itself). Each request is
//! judged on what the web server put on the wire: ids, the CGI variables (RFC 3875 §4.1) and
//! their values, record sizes, padding, pairs split across records, `STDIN` framing and
//! `CONTENT_LENGTH`, keep-conn.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use fcgi_core::record::RecordReader;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::wire::{self, ABORT, BEGIN, DATA, GET_VALUES, PARAMS, STDIN};
use super::{Check, Outcome};

/// One HTTP request the web server is sent.
pub(crate) struct Drive {
    pub(crate) n: u32,
    pub(crate) method: &'static str,
    pub(crate) what: &'static str,
    /// Extra header lines (`Name: value`).
    headers: Vec<String>,
    /// The body, and whether it goes chunked (no Content-Length).
    body: Vec<u8>,
    chunked: bool,
}

impl Drive {
    fn path(&self) -> String {
        format!("/conform/{}.php?conform={}&q=a%20b", self.n, self.n)
    }

    fn query(&self) -> String {
        format!("conform={}&q=a%20b", self.n)
    }

    /// The request as curl would send it, for a user running them by hand.
    pub(crate) fn curl(&self, base: &str) -> String {
        let mut c = format!("curl -sS -X {} '{base}{}'", self.method, self.path());
        if self.method == "HEAD" {
            c = format!("curl -sS -I '{base}{}'", self.path());
        }
        for h in self.headers.iter().take(2) {
            c.push_str(&format!(" -H '{}'", h.chars().take(60).collect::<String>()));
        }
        if !self.body.is_empty() {
            c.push_str(&format!(
                " --data-binary @<(head -c {} /dev/zero)",
                self.body.len()
            ));
            if self.chunked {
                c.push_str(" -H 'Transfer-Encoding: chunked'");
            }
        }
        c
    }

    /// The raw HTTP/1.1 request (one per connection).
    fn raw(&self, host: &str) -> Vec<u8> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nX-Conform: request {}\r\n",
            self.method,
            self.path(),
            self.n
        );
        for h in &self.headers {
            head.push_str(h);
            head.push_str("\r\n");
        }
        let mut out = Vec::new();
        if self.body.is_empty() {
            head.push_str("\r\n");
            out.extend_from_slice(head.as_bytes());
        } else if self.chunked {
            head.push_str(
                "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
            );
            out.extend_from_slice(head.as_bytes());
            for piece in self.body.chunks(10_000) {
                out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                out.extend_from_slice(piece);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
        } else {
            head.push_str(&format!(
                "Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
                self.body.len()
            ));
            out.extend_from_slice(head.as_bytes());
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// The requests, in order.
pub(crate) fn drives() -> Vec<Drive> {
    let mut many = Vec::new();
    for i in 0..40 {
        many.push(format!("X-Header-{i}: value {i}"));
    }
    many.push(format!("X-Big: {}", "b".repeat(6000)));
    vec![
        Drive {
            n: 1,
            method: "GET",
            what: "a GET with a query",
            headers: vec![],
            body: vec![],
            chunked: false,
        },
        Drive {
            n: 2,
            method: "POST",
            what: "a POST of 100000 bytes",
            headers: vec![],
            body: vec![b'p'; 100_000],
            chunked: false,
        },
        Drive {
            n: 3,
            method: "GET",
            what: "a GET with 41 headers, one of 6000 bytes",
            headers: many,
            body: vec![],
            chunked: false,
        },
        Drive {
            n: 4,
            method: "HEAD",
            what: "a HEAD",
            headers: vec![],
            body: vec![],
            chunked: false,
        },
        Drive {
            n: 5,
            method: "POST",
            what: "a chunked POST of 30000 bytes",
            headers: vec![],
            body: vec![b'c'; 30_000],
            chunked: true,
        },
    ]
}

/// One request as the web server sent it.
#[derive(Debug, Default, Clone)]
pub(crate) struct Recorded {
    id: u16,
    role: u16,
    keep_conn: bool,
    /// `(content length, padding length)` of each PARAMS and STDIN record.
    params_records: Vec<(usize, usize)>,
    stdin_records: Vec<(usize, usize)>,
    block: Vec<u8>,
    params: Vec<(String, String)>,
    params_error: Option<String>,
    split_pairs: bool,
    stdin_len: usize,
    stdin_ended: bool,
    /// Protocol mistakes seen on the connection while this request was active.
    violations: Vec<String>,
}

impl Recorded {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn token(&self) -> Option<u32> {
        let query = self.param("QUERY_STRING")?;
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix("conform="))
            .and_then(|n| n.parse().ok())
    }
}

/// What the recorder shares with the judge.
#[derive(Default)]
pub(crate) struct Recorder {
    requests: Mutex<Vec<Recorded>>,
    /// Connection-level mistakes (before any request, or garbage).
    pub(crate) violations: Mutex<Vec<String>>,
}

/// Bounds on what a web server can make the recorder hold (it may be hostile or broken):
/// requests recorded (five are driven), violations noted, per request the record sizes
/// noted and the params block kept. Past them the rest is dropped, and said once.
const MAX_REQUESTS: usize = 1000;
const MAX_VIOLATIONS: usize = 1000;
const MAX_RECORDS_NOTED: usize = 100_000;
const MAX_PARAMS_BLOCK: usize = 1 << 20;

impl Recorder {
    fn add(&self, r: Recorded) {
        if let Ok(mut all) = self.requests.lock()
            && all.len() < MAX_REQUESTS
        {
            all.push(r);
        }
    }

    fn violation(&self, v: String) {
        if let Ok(mut all) = self.violations.lock() {
            if all.len() < MAX_VIOLATIONS {
                all.push(v);
            } else if all.len() == MAX_VIOLATIONS {
                all.push(format!(
                    "(more than {MAX_VIOLATIONS} violations; the rest dropped)"
                ));
            }
        }
    }

    pub(crate) fn by_token(&self) -> BTreeMap<u32, Recorded> {
        self.requests
            .lock()
            .map(|all| {
                all.iter()
                    .filter_map(|r| Some((r.token()?, r.clone())))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Whether every record boundary of `records` inside `block` falls between two pairs.
fn splits_pairs(block: &[u8], records: &[(usize, usize)]) -> bool {
    let mut boundaries = vec![0usize];
    let mut at = 0usize;
    let len_at = |b: &[u8], i: usize| -> Option<(usize, usize)> {
        let first = *b.get(i)?;
        if first & 0x80 == 0 {
            Some((usize::from(first), 1))
        } else {
            let bytes = b.get(i..i + 4)?;
            let n = u32::from_be_bytes([bytes[0] & 0x7f, bytes[1], bytes[2], bytes[3]]);
            Some((n as usize, 4))
        }
    };
    while at < block.len() {
        let Some((n, a)) = len_at(block, at) else {
            break;
        };
        let Some((v, b)) = len_at(block, at + a) else {
            break;
        };
        at += a + b + n + v;
        boundaries.push(at);
    }
    let mut offset = 0;
    for (len, _) in records {
        offset += len;
        if *len > 0 && offset < block.len() && !boundaries.contains(&offset) {
            return true;
        }
    }
    false
}

/// Serves one connection from the web server: records everything, answers each request.
pub(crate) async fn record_connection<S>(mut io: S, recorder: Arc<Recorder>, conn: usize)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut reader = RecordReader::new();
    let mut input = BytesMut::with_capacity(64 * 1024);
    let mut active: HashMap<u16, Recorded> = HashMap::new();
    loop {
        let record = match reader.read(&mut input) {
            Some(r) => r,
            None => {
                input.reserve(64 * 1024);
                match tokio::time::timeout(Duration::from_secs(120), io.read_buf(&mut input)).await
                {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
                    Ok(Ok(_)) => continue,
                }
            }
        };
        let h = record.header;
        let ty = u8::from(h.record_type);
        let id = h.request_id;
        if h.version != 1 {
            recorder.violation(format!(
                "connection {conn}: a record of version {}",
                h.version
            ));
            return;
        }
        if usize::from(h.content_length) + usize::from(h.padding_length) > 65535 {
            recorder.violation(format!(
                "connection {conn}: a record of {} content + {} padding bytes (over 65535: php-fpm resets)",
                h.content_length, h.padding_length
            ));
        }
        if id == 0 {
            let answer = match ty {
                GET_VALUES => wire::record(
                    wire::GET_VALUES_RESULT,
                    0,
                    &wire::pairs(&[
                        (b"FCGI_MAX_CONNS", b"64"),
                        (b"FCGI_MAX_REQS", b"64"),
                        (b"FCGI_MPXS_CONNS", b"1"),
                    ]),
                    0,
                ),
                BEGIN => {
                    recorder.violation(format!("connection {conn}: BEGIN_REQUEST with id 0"));
                    continue;
                }
                other => wire::record(wire::UNKNOWN_TYPE, 0, &[other, 0, 0, 0, 0, 0, 0, 0], 0),
            };
            if io.write_all(&answer).await.is_err() {
                return;
            }
            continue;
        }
        if ty == BEGIN {
            if active.contains_key(&id) {
                recorder.violation(format!(
                    "connection {conn}: BEGIN_REQUEST for active id {id}"
                ));
                continue;
            }
            let c = &record.content;
            if c.len() != 8 {
                recorder.violation(format!(
                    "connection {conn}: a BEGIN_REQUEST body of {} bytes",
                    c.len()
                ));
                continue;
            }
            active.insert(
                id,
                Recorded {
                    id,
                    role: u16::from_be_bytes([c[0], c[1]]),
                    keep_conn: c[2] & 1 == 1,
                    ..Recorded::default()
                },
            );
            continue;
        }
        let Some(r) = active.get_mut(&id) else {
            recorder.violation(format!(
                "connection {conn}: a record of type {ty} for inactive id {id}"
            ));
            continue;
        };
        let mut done = false;
        match ty {
            PARAMS => {
                note(&mut r.params_records, &record.content, h.padding_length);
                if record.content.is_empty() {
                    r.split_pairs = splits_pairs(&r.block, &r.params_records);
                    let mut pairs = Vec::new();
                    if let Err(e) = fcgi_core::params::decode_pairs(&r.block, |n, v| {
                        pairs.push((
                            String::from_utf8_lossy(n).into_owned(),
                            String::from_utf8_lossy(v).into_owned(),
                        ));
                    }) {
                        r.params_error.get_or_insert(e.to_string());
                    }
                    r.params = pairs;
                    // An Authorizer gets no STDIN.
                    done = r.role == 2;
                } else if r.block.len() + record.content.len() <= MAX_PARAMS_BLOCK {
                    r.block.extend_from_slice(&record.content);
                } else if r.params_error.is_none() {
                    r.params_error = Some(format!("params over {MAX_PARAMS_BLOCK} bytes"));
                }
            }
            STDIN => {
                note(&mut r.stdin_records, &record.content, h.padding_length);
                if record.content.is_empty() {
                    r.stdin_ended = true;
                    done = r.role != 3;
                } else {
                    r.stdin_len += record.content.len();
                }
            }
            DATA => done = record.content.is_empty(),
            ABORT => done = true,
            other if r.violations.len() < MAX_VIOLATIONS => r
                .violations
                .push(format!("a record of type {other} from the web server")),
            _ => {}
        }
        if done {
            let Some(r) = active.remove(&id) else {
                continue;
            };
            let keep = r.keep_conn;
            let token = r
                .token()
                .map_or_else(|| "request".to_owned(), |n| n.to_string());
            recorder.add(r);
            let body =
                format!("Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nrecorded {token}");
            let mut answer = wire::record(wire::STDOUT, id, body.as_bytes(), 0);
            answer.extend(wire::record(wire::STDOUT, id, &[], 0));
            answer.extend(wire::record(wire::END, id, &[0, 0, 0, 0, 0, 0, 0, 0], 0));
            if io.write_all(&answer).await.is_err() {
                return;
            }
            if !keep && active.is_empty() {
                let _ = io.shutdown().await;
                return;
            }
        }
    }
}

/// Sends each request to the web server at `base` (`http://HOST:PORT`), one connection each;
/// returns for each the status line it got.
pub(crate) async fn drive(base: &str, timeout: Duration) -> Result<BTreeMap<u32, String>, String> {
    let authority = base
        .strip_prefix("http://")
        .ok_or_else(|| format!("--drive {base:?}: expected http://HOST:PORT"))?
        .trim_end_matches('/');
    let mut statuses = BTreeMap::new();
    for d in drives() {
        let result = tokio::time::timeout(timeout, async {
            let mut sock = tokio::net::TcpStream::connect(authority)
                .await
                .map_err(|e| format!("cannot connect to {authority}: {e}"))?;
            sock.write_all(&d.raw(authority))
                .await
                .map_err(|e| e.to_string())?;
            let mut answer = Vec::new();
            let _ = sock.read_to_end(&mut answer).await;
            Ok::<_, String>(
                String::from_utf8_lossy(&answer)
                    .lines()
                    .next()
                    .unwrap_or("(no answer)")
                    .to_owned(),
            )
        })
        .await
        .unwrap_or_else(|_| Ok("(timed out)".to_owned()))?;
        statuses.insert(d.n, result);
    }
    Ok(statuses)
}

/// The CGI meta-variables a request must carry (RFC 3875 §4.1; `CONTENT_LENGTH` with a body).
const REQUIRED: [&str; 9] = [
    "GATEWAY_INTERFACE",
    "SERVER_PROTOCOL",
    "SERVER_SOFTWARE",
    "SERVER_NAME",
    "SERVER_PORT",
    "REQUEST_METHOD",
    "REMOTE_ADDR",
    "SCRIPT_NAME",
    "QUERY_STRING",
];

/// Judges each driven request; `report` gets every check.
pub(crate) fn judge(
    recorder: &Recorder,
    statuses: Option<&BTreeMap<u32, String>>,
    mut report: impl FnMut(Check, String, Outcome),
) {
    let recorded = recorder.by_token();
    for d in drives() {
        let label = format!("request {} ({})", d.n, d.what);
        let Some(r) = recorded.get(&d.n) else {
            let why = statuses.and_then(|s| s.get(&d.n)).map_or_else(
                || "not received".to_owned(),
                |s| format!("not received (HTTP answer: {s})"),
            );
            report(
                check("—", "received", "the request reached the application"),
                label,
                Outcome::Fail(why),
            );
            continue;
        };
        let mut at = |c: Check, o: Outcome| report(c, label.clone(), o);
        // Ids and protocol.
        at(
            check(
                "3.3",
                "ids",
                "a request id other than 0, no protocol mistake",
            ),
            if r.violations.is_empty() && r.id != 0 {
                Outcome::Pass(format!("id {}", r.id))
            } else {
                Outcome::Fail(r.violations.join("; "))
            },
        );
        // The CGI variables.
        let mut missing: Vec<&str> = REQUIRED
            .iter()
            .copied()
            .filter(|n| r.param(n).is_none())
            .collect();
        let has_body = !d.body.is_empty();
        if has_body && r.param("CONTENT_LENGTH").is_none_or(str::is_empty) {
            missing.push("CONTENT_LENGTH");
        }
        // A name must be usable as an environment variable: not empty, no `=`, no control
        // byte (RFC 3875's names are tokens).
        let bad_names: Vec<String> = r
            .params
            .iter()
            .filter(|(n, _)| n.is_empty() || n.bytes().any(|b| b == b'=' || b < 0x20 || b == 0x7f))
            .map(|(n, _)| format!("{n:?}"))
            .collect();
        at(
            check(
                "RFC 3875 4.1",
                "variables",
                "the CGI variables a request must carry",
            ),
            match (&r.params_error, missing.is_empty(), bad_names.is_empty()) {
                (Some(e), _, _) => Outcome::Fail(format!("the params do not decode: {e}")),
                (None, true, true) => Outcome::Pass(format!("{} params", r.params.len())),
                (None, false, _) => Outcome::Fail(format!("missing: {}", missing.join(", "))),
                (None, true, false) => {
                    Outcome::Fail(format!("unusable names: {}", bad_names.join(", ")))
                }
            },
        );
        let mut wrong = Vec::new();
        if r.param("REQUEST_METHOD") != Some(d.method) {
            wrong.push(format!("REQUEST_METHOD={:?}", r.param("REQUEST_METHOD")));
        }
        if r.param("QUERY_STRING") != Some(d.query().as_str()) {
            wrong.push(format!("QUERY_STRING={:?}", r.param("QUERY_STRING")));
        }
        let expected_header = format!("request {}", d.n);
        if r.param("HTTP_X_CONFORM") != Some(expected_header.as_str()) {
            wrong.push(format!("HTTP_X_CONFORM={:?}", r.param("HTTP_X_CONFORM")));
        }
        if d.n == 3 && r.param("HTTP_X_BIG").map(str::len) != Some(6000) {
            wrong.push("HTTP_X_BIG is not the 6000-byte header".to_owned());
        }
        at(
            check(
                "RFC 3875 4.1",
                "values",
                "the variables say what the HTTP request said",
            ),
            if wrong.is_empty() {
                Outcome::Pass("method, query string and headers as sent".into())
            } else {
                Outcome::Fail(wrong.join(", "))
            },
        );
        // Records.
        let all: Vec<&(usize, usize)> = r.params_records.iter().chain(&r.stdin_records).collect();
        let largest = all.iter().map(|(c, _)| *c).max().unwrap_or(0);
        let over = all.iter().any(|(c, p)| c + p > 65535);
        at(
            check("3.3", "record-size", "content + padding within 65535 bytes"),
            if over {
                Outcome::Fail("a record over 65535 bytes with its padding (php-fpm resets)".into())
            } else {
                Outcome::Pass(format!("largest record {largest} bytes"))
            },
        );
        let aligned = all.iter().all(|(c, p)| (c + p) % 8 == 0);
        at(
            check(
                "3.3",
                "padding",
                "records padded to a multiple of 8 (should)",
            ),
            Outcome::Pass(if aligned {
                "aligned".into()
            } else {
                "not aligned (allowed)".into()
            }),
        );
        at(
            check("5.2", "pairs", "name-value pairs and record boundaries"),
            Outcome::Pass(if r.split_pairs {
                "a pair is split across PARAMS records (allowed; php-fpm resets on it)".into()
            } else {
                format!(
                    "{} PARAMS records, no pair split",
                    r.params_records.len().saturating_sub(1)
                )
            }),
        );
        // STDIN.
        let expected = d.body.len();
        let declared = r
            .param("CONTENT_LENGTH")
            .and_then(|v| v.parse::<usize>().ok());
        at(
            check(
                "5.3",
                "stdin",
                "STDIN ended by an empty record, as long as CONTENT_LENGTH",
            ),
            if !r.stdin_ended {
                Outcome::Fail("STDIN was never ended".into())
            } else if r.stdin_len != expected {
                Outcome::Fail(format!(
                    "{} STDIN bytes for a {expected}-byte body",
                    r.stdin_len
                ))
            } else if has_body && declared != Some(expected) {
                Outcome::Fail(format!("CONTENT_LENGTH {declared:?} for {expected} bytes"))
            } else {
                Outcome::Pass(format!(
                    "{} bytes in {} records",
                    r.stdin_len,
                    r.stdin_records.len().saturating_sub(1)
                ))
            },
        );
        at(
            check("3.5", "keep-conn", "FCGI_KEEP_CONN (either is allowed)"),
            Outcome::Pass(if r.keep_conn {
                "set".into()
            } else {
                "not set".into()
            }),
        );
    }
    if let Ok(v) = recorder.violations.lock() {
        report(
            check(
                "3.3",
                "connections",
                "no protocol mistake on any connection",
            ),
            "all connections".into(),
            if v.is_empty() {
                Outcome::Pass("none".into())
            } else {
                Outcome::Fail(v.join("; "))
            },
        );
    }
}

fn check(section: &'static str, id: &'static str, title: &'static str) -> Check {
    Check { section, id, title }
}

/// Waits until every request that should have arrived was recorded, or `wait` passes. With
/// `statuses` (driven), a request the web server answered with anything but 200 never
/// reached us: it is not waited for.
pub(crate) async fn wait_for_all(
    recorder: &Recorder,
    statuses: Option<&BTreeMap<u32, String>>,
    wait: Duration,
) {
    let until = Instant::now() + wait;
    let want: Vec<u32> = drives()
        .iter()
        .map(|d| d.n)
        .filter(|n| statuses.is_none_or(|s| s.get(n).is_some_and(|line| line.contains(" 200"))))
        .collect();
    while Instant::now() < until {
        let got = recorder.by_token();
        if want.iter().all(|n| got.contains_key(n)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Notes a record's `(content length, padding length)`, up to [`MAX_RECORDS_NOTED`].
fn note(records: &mut Vec<(usize, usize)>, content: &[u8], padding: u8) {
    if records.len() < MAX_RECORDS_NOTED {
        records.push((content.len(), usize::from(padding)));
    }
}
