//! The checks of a FastCGI **application** (what php-fpm is): each opens its own
//! connections, writes records byte for byte, and judges the answer against a rule of the
//! spec (section numbers of the 1996 specification, as in `specifications/fastcgi.md`).

use std::collections::BTreeMap;
use std::time::Duration;

use fcgi_tokio::Backend;

use super::wire::{self, Answer, Wire};
use super::{Check, Outcome};

/// What every check needs: where the application is, and the requests to send it.
pub(crate) struct Target {
    pub(crate) backend: Backend,
    pub(crate) timeout: Duration,
    pub(crate) root: String,
    pub(crate) path: String,
}

impl Target {
    /// The params of a `GET` of the target path, with `extra` pairs.
    fn params(
        &self,
        method: &str,
        content_length: Option<usize>,
        extra: &[(&[u8], &[u8])],
    ) -> Vec<u8> {
        let root = self.root.trim_end_matches('/');
        let filename = format!("{root}{}", self.path);
        let length = content_length.map(|n| n.to_string()).unwrap_or_default();
        let mut pairs: Vec<(&[u8], &[u8])> = vec![
            (b"GATEWAY_INTERFACE", b"CGI/1.1"),
            (b"SERVER_PROTOCOL", b"HTTP/1.1"),
            (b"SERVER_SOFTWARE", b"fcgi-conform"),
            (b"REQUEST_METHOD", method.as_bytes()),
            (b"REQUEST_URI", self.path.as_bytes()),
            (b"DOCUMENT_URI", self.path.as_bytes()),
            (b"SCRIPT_NAME", self.path.as_bytes()),
            (b"SCRIPT_FILENAME", filename.as_bytes()),
            (b"DOCUMENT_ROOT", root.as_bytes()),
            (b"QUERY_STRING", b""),
            (b"SERVER_NAME", b"localhost"),
            (b"SERVER_PORT", b"80"),
            (b"SERVER_ADDR", b"127.0.0.1"),
            (b"REMOTE_ADDR", b"127.0.0.1"),
            (b"REMOTE_PORT", b"40000"),
            (b"REDIRECT_STATUS", b"200"),
            (b"HTTP_HOST", b"localhost"),
        ];
        if content_length.is_some() {
            pairs.push((b"CONTENT_LENGTH", length.as_bytes()));
            pairs.push((b"CONTENT_TYPE", b"application/octet-stream"));
        }
        pairs.extend_from_slice(extra);
        wire::pairs(&pairs)
    }

    fn get(&self) -> Vec<u8> {
        self.params("GET", None, &[])
    }

    /// A new connection with `bytes` already written on it.
    async fn open(&self, bytes: &[u8]) -> Result<Wire, Outcome> {
        let mut wire = self.connect().await?;
        wire.send(bytes)
            .await
            .map_err(|e| Outcome::Fail(format!("cannot send: {e}")))?;
        Ok(wire)
    }

    async fn connect(&self) -> Result<Wire, Outcome> {
        Wire::connect(&self.backend, self.timeout)
            .await
            .map_err(|e| Outcome::Fail(format!("cannot connect: {e}")))
    }
}

/// The result of `answer()`: complete, or why not.
fn completed(answer: std::io::Result<Option<Answer>>) -> Result<Answer, String> {
    match answer {
        Err(e) => Err(format!("no END_REQUEST ({e})")),
        Ok(None) => Err("the connection was closed before END_REQUEST".into()),
        Ok(Some(a)) => match a.end {
            Some((_, wire::REQUEST_COMPLETE)) => Ok(a),
            Some((_, status)) => Err(format!("END_REQUEST with protocol status {status}")),
            None => Err("no END_REQUEST".into()),
        },
    }
}

/// Sends a whole request on `wire` and reads it to its end.
async fn round_trip(
    wire: &mut Wire,
    id: u16,
    keep: bool,
    params: &[u8],
    stdin: &[u8],
) -> Result<Answer, String> {
    wire.send(&wire::request(id, 1, keep, params, stdin))
        .await
        .map_err(|e| format!("cannot send: {e}"))?;
    completed(wire.answer(id).await)
}

/// A check whose whole work is one request on a fresh connection.
async fn one_request(t: &Target, bytes: Vec<u8>, what: &str) -> Outcome {
    let mut wire = match t.open(&bytes).await {
        Ok(w) => w,
        Err(o) => return o,
    };
    let outcome = match completed(wire.answer(1).await) {
        Ok(a) => Outcome::Pass(format!("{what}; {} STDOUT bytes", a.stdout.len())),
        Err(e) => Outcome::Fail(e),
    };
    wire.hang_up().await;
    outcome
}

/// Values the application declared, shared with the multiplexing check.
#[derive(Debug, Default)]
pub(crate) struct Declared {
    pub(crate) values: BTreeMap<String, String>,
}

const NAMES: [&str; 3] = ["FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS"];

fn get_values_record() -> Vec<u8> {
    let pairs: Vec<(&[u8], &[u8])> = NAMES.iter().map(|n| (n.as_bytes(), &b""[..])).collect();
    wire::record(wire::GET_VALUES, 0, &wire::pairs(&pairs), 0)
}

/// Decodes a `GET_VALUES_RESULT`, checking that it names only what was asked.
fn values_of(content: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let mut values = BTreeMap::new();
    fcgi_core::params::decode_pairs(content, |n, v| {
        values.insert(
            String::from_utf8_lossy(n).into_owned(),
            String::from_utf8_lossy(v).into_owned(),
        );
    })
    .map_err(|e| format!("GET_VALUES_RESULT is not a name-value block: {e}"))?;
    if let Some(other) = values.keys().find(|k| !NAMES.contains(&k.as_str())) {
        return Err(format!(
            "GET_VALUES_RESULT names {other}, which was not asked"
        ));
    }
    Ok(values)
}

fn shown(values: &BTreeMap<String, String>) -> String {
    if values.is_empty() {
        return "no value declared".into();
    }
    values
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn get_values_first(t: &Target, declared: &mut Declared) -> Outcome {
    let mut wire = match t.open(&get_values_record()).await {
        Ok(w) => w,
        Err(o) => return o,
    };
    match wire.management(wire::GET_VALUES_RESULT).await {
        Ok(Some(content)) => match values_of(&content) {
            Ok(values) => {
                let text = shown(&values);
                declared.values = values;
                Outcome::Pass(text)
            }
            Err(e) => Outcome::Fail(e),
        },
        Ok(None) => Outcome::Fail("the connection was closed instead".into()),
        Err(e) => Outcome::Fail(format!("no GET_VALUES_RESULT ({e})")),
    }
}

async fn get_values_during(t: &Target) -> Outcome {
    let mut wire = match t.connect().await {
        Ok(w) => w,
        Err(o) => return o,
    };
    // The request begun, its params half sent: the query comes in the middle.
    let params = t.get();
    let half = params.len() / 2;
    let mut first = wire::begin(1, 1, true);
    first.extend(wire::record(wire::PARAMS, 1, &params[..half], 0));
    first.extend(get_values_record());
    if let Err(e) = wire.send(&first).await {
        return Outcome::Fail(format!("cannot send: {e}"));
    }
    match wire.management(wire::GET_VALUES_RESULT).await {
        Ok(Some(content)) => {
            if let Err(e) = values_of(&content) {
                return Outcome::Fail(e);
            }
        }
        Ok(None) => return Outcome::Fail("the connection was closed instead".into()),
        Err(e) => return Outcome::Fail(format!("no GET_VALUES_RESULT ({e})")),
    }
    let mut rest = wire::record(wire::PARAMS, 1, &params[half..], 0);
    rest.extend(wire::record(wire::PARAMS, 1, &[], 0));
    rest.extend(wire::record(wire::STDIN, 1, &[], 0));
    if let Err(e) = wire.send(&rest).await {
        return Outcome::Fail(format!("cannot send the rest of the request: {e}"));
    }
    match completed(wire.answer(1).await) {
        Ok(_) => Outcome::Pass("answered mid-request, and the request completed".into()),
        Err(e) => Outcome::Fail(format!("answered, but then: {e}")),
    }
}

async fn get_values_after(t: &Target) -> Outcome {
    let mut wire = match t.connect().await {
        Ok(w) => w,
        Err(o) => return o,
    };
    if let Err(e) = round_trip(&mut wire, 1, true, &t.get(), b"").await {
        return Outcome::Fail(format!("the request before it: {e}"));
    }
    if let Err(e) = wire.send(&get_values_record()).await {
        return Outcome::Fail(format!("cannot send: {e}"));
    }
    match wire.management(wire::GET_VALUES_RESULT).await {
        Ok(Some(content)) => match values_of(&content) {
            Ok(_) => Outcome::Pass("answered after a kept-alive request".into()),
            Err(e) => Outcome::Fail(e),
        },
        Ok(None) => Outcome::Fail("the connection was closed instead".into()),
        Err(e) => Outcome::Fail(format!("no GET_VALUES_RESULT ({e})")),
    }
}

async fn unknown_type(t: &Target) -> Outcome {
    let mut wire = match t.open(&wire::record(200, 0, &[0; 8], 0)).await {
        Ok(w) => w,
        Err(o) => return o,
    };
    match wire.management(wire::UNKNOWN_TYPE).await {
        Ok(Some(content)) if content.first() == Some(&200) => {
            Outcome::Pass("UNKNOWN_TYPE naming type 200".into())
        }
        Ok(Some(content)) => Outcome::Fail(format!(
            "UNKNOWN_TYPE names type {:?}, not 200",
            content.first()
        )),
        Ok(None) => Outcome::Fail("the connection was closed instead".into()),
        Err(e) => Outcome::Fail(format!("no UNKNOWN_TYPE ({e})")),
    }
}

async fn keep_conn_off(t: &Target) -> Outcome {
    let mut wire = match t.connect().await {
        Ok(w) => w,
        Err(o) => return o,
    };
    if let Err(e) = round_trip(&mut wire, 1, false, &t.get(), b"").await {
        return Outcome::Fail(e);
    }
    if wire.closes_within(t.timeout).await {
        Outcome::Pass("completed, then the application closed the connection".into())
    } else {
        Outcome::Fail("the connection stayed open after a request without FCGI_KEEP_CONN".into())
    }
}

async fn keep_conn_on(t: &Target) -> Outcome {
    let mut wire = match t.connect().await {
        Ok(w) => w,
        Err(o) => return o,
    };
    for id in [1, 1, 2] {
        if let Err(e) = round_trip(&mut wire, id, true, &t.get(), b"").await {
            return Outcome::Fail(format!("request with id {id} on the kept connection: {e}"));
        }
    }
    if wire.closes_within(Duration::from_millis(200)).await {
        Outcome::Fail("the application closed a FCGI_KEEP_CONN connection".into())
    } else {
        Outcome::Pass("three requests (ids 1, 1, 2) on one connection, which stays open".into())
    }
}

async fn padding(t: &Target) -> Outcome {
    let params = t.params("POST", Some(10), &[]);
    let mut bytes = wire::record(wire::BEGIN, 1, &[0, 1, 0, 0, 0, 0, 0, 0], 255);
    // Whole pairs per record here: splitting pairs is a check of its own.
    bytes.extend(wire::stream(wire::PARAMS, 1, &params, &[], 7));
    bytes.extend(wire::stream(wire::STDIN, 1, b"0123456789", &[4], 255));
    one_request(t, bytes, "every record padded (7 and 255 bytes)").await
}

async fn split_pairs(t: &Target) -> Outcome {
    let params = t.get();
    // Cut inside the first pair's length prefix, inside a name, inside a value.
    let cuts = [1, 5, params.len() / 2, params.len() - 3];
    let mut bytes = wire::begin(1, 1, false);
    bytes.extend(wire::stream(wire::PARAMS, 1, &params, &cuts, 0));
    bytes.extend(wire::record(wire::STDIN, 1, &[], 0));
    one_request(t, bytes, "pairs cut across 5 PARAMS records").await
}

async fn length_boundaries(t: &Target) -> Outcome {
    let v127 = vec![b'a'; 127];
    let v128 = vec![b'b'; 128];
    let mut n128 = b"HTTP_X_".to_vec();
    n128.resize(128, b'N');
    let params = t.params(
        "GET",
        None,
        &[
            (b"HTTP_X_LEN127", &v127),
            (b"HTTP_X_LEN128", &v128),
            (&n128, b"x"),
        ],
    );
    one_request(
        t,
        wire::request(1, 1, false, &params, b""),
        "values of 127 and 128 bytes, a 128-byte name",
    )
    .await
}

async fn full_records(t: &Target) -> Outcome {
    let body = vec![b'z'; 65535 * 2];
    // A filler pair that makes the params block exactly 65535 bytes of whole pairs (a split
    // pair is a check of its own): 1-byte name length, 4-byte value length.
    let name = b"HTTP_X_FILL";
    let base = t.params("POST", Some(body.len()), &[]).len();
    let Some(fill) = 65535usize.checked_sub(base + 1 + 4 + name.len()) else {
        return Outcome::Skip("the base params are too large".into());
    };
    let filler = vec![b'f'; fill.max(128)];
    let params = t.params("POST", Some(body.len()), &[(name, &filler)]);
    let mut bytes = wire::begin(1, 1, false);
    bytes.extend(wire::stream(wire::PARAMS, 1, &params, &[], 0));
    bytes.extend(wire::stream(wire::STDIN, 1, &body, &[], 0));
    one_request(
        t,
        bytes,
        &format!(
            "a PARAMS record of {} bytes, STDIN records of 65535 bytes",
            params.len().min(65535)
        ),
    )
    .await
}

async fn multiplexing(t: &Target, declared: &Declared) -> Outcome {
    let mut wire = match t.connect().await {
        Ok(w) => w,
        Err(o) => return o,
    };
    // Request 1 waits for its one body byte; request 2 comes meanwhile.
    let mut bytes = wire::begin(1, 1, true);
    bytes.extend(wire::stream(
        wire::PARAMS,
        1,
        &t.params("POST", Some(1), &[]),
        &[],
        0,
    ));
    bytes.extend(wire::request(2, 1, true, &t.get(), b""));
    if let Err(e) = wire.send(&bytes).await {
        return Outcome::Fail(format!("cannot send: {e}"));
    }
    let says = declared.values.get("FCGI_MPXS_CONNS").map(String::as_str);
    let second = wire.answer(2).await;
    let behaviour = match second {
        Ok(Some(Answer {
            end: Some((_, wire::REQUEST_COMPLETE)),
            ..
        })) => "multiplexed",
        Ok(Some(Answer {
            end: Some((_, wire::CANT_MPX_CONN)),
            ..
        })) => "refused with CANT_MPX_CONN",
        Ok(Some(a)) => {
            return Outcome::Fail(format!("request 2 ended with {:?}", a.end));
        }
        Ok(None) => {
            return Outcome::Fail(
                "the connection was closed on a second request (expected CANT_MPX_CONN)".into(),
            );
        }
        Err(_) => "no answer while request 1 was open",
    };
    // Request 1's body, then its end.
    let mut rest = wire::record(wire::STDIN, 1, b"x", 0);
    rest.extend(wire::record(wire::STDIN, 1, &[], 0));
    let _ = wire.send(&rest).await;
    let first = completed(wire.answer(1).await);
    match (behaviour, says) {
        ("multiplexed", Some("0")) => {
            Outcome::Fail("multiplexes, but declares FCGI_MPXS_CONNS=0".into())
        }
        ("refused with CANT_MPX_CONN", Some("1")) => {
            Outcome::Fail("refuses a second request, but declares FCGI_MPXS_CONNS=1".into())
        }
        ("no answer while request 1 was open", _) => Outcome::Fail(
            "a second request on a busy connection was neither served nor refused with \
             CANT_MPX_CONN (queued)"
                .into(),
        ),
        (b, _) => match first {
            Ok(_) => Outcome::Pass(format!("{b}; request 1 completed after")),
            Err(e) => Outcome::Fail(format!("{b}, but request 1: {e}")),
        },
    }
}

async fn overloaded(t: &Target, declared: &Declared) -> Outcome {
    let Some(max) = declared
        .values
        .get("FCGI_MAX_CONNS")
        .and_then(|v| v.parse::<usize>().ok())
    else {
        return Outcome::Skip("FCGI_MAX_CONNS not declared".into());
    };
    if max > 64 {
        return Outcome::Skip(format!(
            "FCGI_MAX_CONNS={max}: too many connections to fill"
        ));
    }
    // Fill every connection with a request held open on its body, then one more. Each gets
    // time to be read: an application may make room by closing a connection on which no
    // request has begun yet, and those of the checks before must be gone too.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut held = Vec::new();
    for _ in 0..max {
        let Ok(mut w) = Wire::connect(&t.backend, t.timeout).await else {
            break;
        };
        let mut bytes = wire::begin(1, 1, false);
        bytes.extend(wire::stream(
            wire::PARAMS,
            1,
            &t.params("POST", Some(1), &[]),
            &[],
            0,
        ));
        if w.send(&bytes).await.is_err() {
            break;
        }
        held.push(w);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Time for the application to read them: a connection that has not begun a request is
    // one it may rightly close to make room.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut extra = match t.connect().await {
        Ok(w) => w,
        Err(_) => {
            return Outcome::Pass(format!(
                "{max} connections busy: the next one was refused at connect"
            ));
        }
    };
    let _ = extra.send(&wire::request(1, 1, false, &t.get(), b"")).await;
    let outcome = match extra.answer(1).await {
        Ok(Some(Answer {
            end: Some((_, wire::OVERLOADED)),
            ..
        })) => Outcome::Pass(format!("{max} connections busy: OVERLOADED")),
        Ok(Some(Answer {
            end: Some((_, wire::REQUEST_COMPLETE)),
            ..
        })) => Outcome::Fail(format!(
            "declares FCGI_MAX_CONNS={max}, but served connection {}",
            max + 1
        )),
        Ok(None) => Outcome::Pass(format!("{max} connections busy: the next one was closed")),
        Ok(Some(a)) => Outcome::Fail(format!("END_REQUEST {:?}", a.end)),
        // Not accepted while the others are busy: backpressure through the listen backlog
        // (php-fpm's way too); OVERLOADED is the application's option, not a duty.
        Err(_) => Outcome::Pass(format!(
            "{max} connections busy: connection {} waits in the listen backlog",
            max + 1
        )),
    };
    // Each held request ends when its connection does; waiting for that keeps the checks
    // after this one from finding every connection still taken.
    drop(extra);
    for w in held {
        w.hang_up().await;
    }
    outcome
}

async fn abort_before_end(t: &Target) -> Outcome {
    let mut wire = match t.connect().await {
        Ok(w) => w,
        Err(o) => return o,
    };
    let mut bytes = wire::begin(1, 1, true);
    bytes.extend(wire::stream(
        wire::PARAMS,
        1,
        &t.params("POST", Some(10), &[]),
        &[],
        0,
    ));
    bytes.extend(wire::record(wire::STDIN, 1, b"01234", 0));
    bytes.extend(wire::record(wire::ABORT, 1, &[], 0));
    if let Err(e) = wire.send(&bytes).await {
        return Outcome::Fail(format!("cannot send: {e}"));
    }
    match wire.answer(1).await {
        Ok(Some(Answer { end: Some(_), .. })) => {}
        Ok(_) => return Outcome::Fail("the connection was closed instead of END_REQUEST".into()),
        Err(e) => return Outcome::Fail(format!("no END_REQUEST for the aborted request ({e})")),
    }
    match round_trip(&mut wire, 1, true, &t.get(), b"").await {
        Ok(_) => {
            Outcome::Pass("END_REQUEST for the aborted request; the connection serves on".into())
        }
        Err(e) => Outcome::Fail(format!("ended, but the next request: {e}")),
    }
}

async fn abort_after_end(t: &Target) -> Outcome {
    let mut wire = match t.connect().await {
        Ok(w) => w,
        Err(o) => return o,
    };
    if let Err(e) = round_trip(&mut wire, 1, true, &t.get(), b"").await {
        return Outcome::Fail(format!("the first request: {e}"));
    }
    // Too late: request 1 is over. Then request 2.
    let mut bytes = wire::record(wire::ABORT, 1, &[], 0);
    bytes.extend(wire::request(2, 1, true, &t.get(), b""));
    if let Err(e) = wire.send(&bytes).await {
        return Outcome::Fail(format!("cannot send: {e}"));
    }
    match completed(wire.answer(2).await) {
        Ok(_) => {
            if wire.others.iter().any(|r| r.header.request_id == 1) {
                Outcome::Fail("answered the late ABORT_REQUEST for a finished request".into())
            } else {
                Outcome::Pass("the late ABORT_REQUEST was ignored; request 2 completed".into())
            }
        }
        Err(e) => Outcome::Fail(format!("after a late ABORT_REQUEST: {e}")),
    }
}

async fn inactive_ids(t: &Target) -> Outcome {
    let mut bytes = wire::record(wire::STDIN, 7, b"stray", 0);
    bytes.extend(wire::record(wire::PARAMS, 8, &t.get(), 0));
    bytes.extend(wire::record(wire::DATA, 9, b"stray", 0));
    bytes.extend(wire::request(1, 1, true, &t.get(), b""));
    let mut wire = match t.open(&bytes).await {
        Ok(w) => w,
        Err(o) => return o,
    };
    match completed(wire.answer(1).await) {
        Ok(_) => {
            if wire
                .others
                .iter()
                .any(|r| matches!(r.header.request_id, 7..=9))
            {
                Outcome::Fail("answered records for ids never begun".into())
            } else {
                Outcome::Pass("records for ids 7, 8, 9 ignored; request 1 completed".into())
            }
        }
        Err(e) => Outcome::Fail(format!("after records for inactive ids: {e}")),
    }
}

async fn unknown_role(t: &Target) -> Outcome {
    let mut wire = match t.open(&wire::request(1, 99, false, &t.get(), b"")).await {
        Ok(w) => w,
        Err(o) => return o,
    };
    match wire.answer(1).await {
        Ok(Some(Answer {
            end: Some((_, wire::UNKNOWN_ROLE)),
            ..
        })) => Outcome::Pass("END_REQUEST UNKNOWN_ROLE for role 99".into()),
        Ok(Some(a)) => Outcome::Fail(format!("END_REQUEST {:?}, not UNKNOWN_ROLE", a.end)),
        Ok(None) => Outcome::Fail("the connection was closed instead of UNKNOWN_ROLE".into()),
        Err(e) => Outcome::Fail(format!("no END_REQUEST ({e})")),
    }
}

async fn other_role(t: &Target, role: u16) -> Outcome {
    let mut wire = match t.connect().await {
        Ok(w) => w,
        Err(o) => return o,
    };
    let mut bytes = wire::begin(1, role, false);
    let data = b"<p>the data file</p>";
    let length = data.len().to_string();
    let params = if role == 3 {
        t.params(
            "GET",
            None,
            &[
                (b"FCGI_DATA_LENGTH", length.as_bytes()),
                (b"FCGI_DATA_LAST_MOD", b"0"),
            ],
        )
    } else {
        t.get()
    };
    bytes.extend(wire::stream(wire::PARAMS, 1, &params, &[], 0));
    if role == 3 {
        bytes.extend(wire::stream(wire::STDIN, 1, b"", &[], 0));
        bytes.extend(wire::stream(wire::DATA, 1, data, &[], 0));
    }
    if let Err(e) = wire.send(&bytes).await {
        return Outcome::Fail(format!("cannot send: {e}"));
    }
    match wire.answer(1).await {
        Ok(Some(Answer {
            end: Some((_, wire::UNKNOWN_ROLE)),
            ..
        })) => Outcome::Skip("not offered (UNKNOWN_ROLE)".into()),
        Ok(Some(Answer {
            end: Some((_, wire::REQUEST_COMPLETE)),
            stdout,
            ..
        })) => Outcome::Pass(format!("completed; {} STDOUT bytes", stdout.len())),
        Ok(Some(a)) => Outcome::Fail(format!("END_REQUEST {:?}", a.end)),
        Ok(None) => Outcome::Fail("the connection was closed instead of an answer".into()),
        Err(e) => Outcome::Fail(format!("no END_REQUEST ({e})")),
    }
}

async fn malformed_survived(t: &Target) -> Outcome {
    // A connection opened before the garbage must still be served after it. Its request is
    // begun first (a connection that has sent nothing is one an application at its
    // connection limit may rightly close to make room for the next; ours does), its body's
    // end sent only after the garbage.
    let mut head = wire::begin(1, 1, false);
    head.extend(wire::stream(wire::PARAMS, 1, &t.get(), &[], 0));
    let mut good = match t.open(&head).await {
        Ok(w) => w,
        Err(o) => return o,
    };
    // Time for the application to read it (as in the connection-limit check).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut bad = match t.connect().await {
        Ok(w) => w,
        Err(o) => return o,
    };
    let mut garbage = vec![9, 1, 0, 1, 0, 8, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
    garbage.extend(wire::record(wire::BEGIN, 1, &[0, 1], 0)); // a short BEGIN body
    let _ = bad.send(&garbage).await;
    let closed = bad.closes_within(t.timeout).await;
    if let Err(e) = good.send(&wire::stream(wire::STDIN, 1, &[], &[], 0)).await {
        return Outcome::Fail(format!("after another connection sent garbage: {e}"));
    }
    match completed(good.answer(1).await) {
        Ok(_) => Outcome::Pass(format!(
            "another connection was served after the garbage{}",
            if closed {
                " (the bad one was closed)"
            } else {
                ""
            }
        )),
        Err(e) => Outcome::Fail(format!("after another connection sent garbage: {e}")),
    }
}

async fn still_serving(t: &Target) -> Outcome {
    one_request(
        t,
        wire::request(1, 1, false, &t.get(), b""),
        "a request on a fresh connection after all the checks",
    )
    .await
}

/// Runs every application check in order; `report` is told each result as it comes.
pub(crate) async fn run(t: &Target, mut report: impl FnMut(Check, Outcome)) {
    let mut declared = Declared::default();
    macro_rules! check {
        ($section:expr, $id:expr, $title:expr, $run:expr) => {
            report(
                Check {
                    section: $section,
                    id: $id,
                    title: $title,
                },
                $run,
            )
        };
    }
    check!(
        "4.1",
        "get-values",
        "GET_VALUES on a new connection is answered",
        get_values_first(t, &mut declared).await
    );
    check!(
        "4.1",
        "get-values-during",
        "GET_VALUES in the middle of a request is answered",
        get_values_during(t).await
    );
    check!(
        "4.1",
        "get-values-after",
        "GET_VALUES after a request is answered",
        get_values_after(t).await
    );
    check!(
        "4.2",
        "unknown-type",
        "an unknown management record gets UNKNOWN_TYPE",
        unknown_type(t).await
    );
    check!(
        "3.5",
        "keep-conn-off",
        "without FCGI_KEEP_CONN the application closes after the request",
        keep_conn_off(t).await
    );
    check!(
        "3.5",
        "keep-conn-on",
        "with FCGI_KEEP_CONN the connection serves request after request",
        keep_conn_on(t).await
    );
    check!(
        "3.3",
        "padding",
        "padding on any record is accepted",
        padding(t).await
    );
    check!(
        "5.2",
        "split-pairs",
        "name-value pairs split across PARAMS records",
        split_pairs(t).await
    );
    check!(
        "3.4",
        "length-127-128",
        "1-byte and 4-byte lengths (127, 128)",
        length_boundaries(t).await
    );
    check!(
        "3.3",
        "record-65535",
        "records of 65535 content bytes",
        full_records(t).await
    );
    check!(
        "5.1",
        "multiplexing",
        "a second request on a busy connection: served, or CANT_MPX_CONN, as declared",
        multiplexing(t, &declared).await
    );
    check!(
        "5.1",
        "overloaded",
        "beyond FCGI_MAX_CONNS: OVERLOADED or refused",
        overloaded(t, &declared).await
    );
    check!(
        "5.4",
        "abort-before-end",
        "ABORT_REQUEST before the end: END_REQUEST, connection usable",
        abort_before_end(t).await
    );
    check!(
        "5.4",
        "abort-after-end",
        "ABORT_REQUEST for a finished request is ignored",
        abort_after_end(t).await
    );
    check!(
        "3.3",
        "inactive-ids",
        "records for ids never begun are ignored",
        inactive_ids(t).await
    );
    check!(
        "5.1",
        "unknown-role",
        "an unknown role gets END_REQUEST UNKNOWN_ROLE",
        unknown_role(t).await
    );
    check!(
        "6.3",
        "authorizer",
        "the Authorizer role, if offered",
        other_role(t, 2).await
    );
    check!(
        "6.4",
        "filter",
        "the Filter role, if offered",
        other_role(t, 3).await
    );
    check!(
        "3.3",
        "malformed-survived",
        "malformed input on one connection does not harm another",
        malformed_survived(t).await
    );
    check!(
        "—",
        "still-serving",
        "the application still serves after all of this",
        still_serving(t).await
    );
}
