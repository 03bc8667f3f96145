//! Inputs shared by the `decode` benchmark and the `alloc_count` test, so that both measure
//! the very same "typical request".
//!
//! The typical request is what nginx sends for a browser's GET: the 26 CGI variables of the
//! real nginx transcript `tests/fixtures/get_query.request.bin`, plus the headers a browser
//! adds (cookie, referer, client hints, ...), which takes the `PARAMS` block to ≈ 1.5 KB and
//! 39 pairs. The HTTP/1.1 head used as the `httparse` baseline is generated from the same
//! variables (method, URI, protocol and every `HTTP_*` variable as a header).
#![allow(dead_code)]

use bytes::{BufMut, Bytes};
use fcgi_core::Params;
use fcgi_core::params::decode_pairs;
use fcgi_core::record::{
    BeginRequestBody, Header, MAX_ALIGNED_CONTENT_LEN, Padding, RecordReader, RecordType, Role,
};

/// The nginx → php-fpm transcript the typical request starts from.
const GET_QUERY: &[u8] = include_bytes!("../../tests/fixtures/get_query.request.bin");

/// Request headers a desktop browser typically adds beyond the fixture's curl-like set, as
/// nginx forwards them (`HTTP_` + upper-cased name).
const BROWSER_HEADERS: [(&str, &str); 13] = [
    (
        "HTTP_COOKIE",
        "session=6f1c2b9e0d8a4f7cb3e5a1d27c9e8f40; csrftoken=Zx81kQp0LmN3vB7tR2yW5uE9iO4aS6dF; \
         _ga=GA1.1.1234567890.1700000000; _gid=GA1.1.987654321.1700000000; theme=dark; lang=en",
    ),
    (
        "HTTP_REFERER",
        "https://www.example.com/catalog/shoes/running?page=2&sort=price_asc",
    ),
    ("HTTP_ACCEPT_LANGUAGE", "en-US,en;q=0.9,de;q=0.8,fr;q=0.7"),
    (
        "HTTP_SEC_CH_UA",
        "\"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"",
    ),
    ("HTTP_SEC_CH_UA_MOBILE", "?0"),
    ("HTTP_SEC_CH_UA_PLATFORM", "\"Linux\""),
    ("HTTP_SEC_FETCH_SITE", "same-origin"),
    ("HTTP_SEC_FETCH_MODE", "navigate"),
    ("HTTP_SEC_FETCH_DEST", "document"),
    ("HTTP_UPGRADE_INSECURE_REQUESTS", "1"),
    ("HTTP_CACHE_CONTROL", "max-age=0"),
    ("HTTP_X_FORWARDED_FOR", "203.0.113.195, 198.51.100.17"),
    ("HTTP_X_FORWARDED_PROTO", "https"),
];

/// The `PARAMS` of `get_query.request.bin`, in wire order.
pub(crate) fn fixture_params() -> Params {
    let mut input = bytes::BytesMut::from(GET_QUERY);
    let mut reader = RecordReader::new();
    let mut params = Params::new();
    while let Some(record) = reader.read(&mut input) {
        if record.header.record_type == RecordType::Params {
            decode_pairs(&record.content, |n, v| {
                params.push(n, v).expect("fixture pair fits");
            })
            .expect("fixture PARAMS decode");
        }
    }
    assert!(
        input.is_empty() && reader.is_at_boundary(),
        "fixture ends cleanly"
    );
    params
}

/// The typical request's CGI variables (≈ 1.5 KB of wire format, 39 pairs).
pub(crate) fn typical_params() -> Params {
    let mut params = Params::new();
    for (name, value) in fixture_params().iter() {
        // A browser's User-Agent and Accept instead of the recorder's short ones.
        let value: &[u8] = match name {
            b"HTTP_USER_AGENT" => {
                b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                  Chrome/124.0.0.0 Safari/537.36"
            }
            b"HTTP_ACCEPT" => {
                b"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,\
                  image/webp,*/*;q=0.8"
            }
            b"HTTP_ACCEPT_ENCODING" => b"gzip, deflate, br",
            b"HTTP_CONNECTION" => b"keep-alive",
            _ => value,
        };
        params.push(name, value).expect("pair fits");
    }
    for (name, value) in BROWSER_HEADERS {
        params
            .push(name.as_bytes(), value.as_bytes())
            .expect("pair fits");
    }
    params
}

/// Appends one record with 8-byte alignment padding.
pub(crate) fn put_record(out: &mut Vec<u8>, rt: RecordType, id: u16, content: &[u8]) {
    let pad = Padding::Align8.padding_for(content.len());
    Header::new(rt, id, content.len() as u16, pad).encode(out);
    out.put_slice(content);
    out.put_bytes(0, usize::from(pad));
}

/// The request as nginx frames it: `BEGIN_REQUEST` (Responder), the pairs in `PARAMS`
/// records of at most 65528 bytes, the empty `PARAMS`, and an empty `STDIN` (no body).
pub(crate) fn request_wire(params: &Params, id: u16, keep_conn: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let begin = BeginRequestBody {
        role: Role::Responder,
        keep_conn,
    };
    put_record(&mut out, RecordType::BeginRequest, id, &begin.to_array());
    for chunk in params.wire_bytes().chunks(MAX_ALIGNED_CONTENT_LEN) {
        put_record(&mut out, RecordType::Params, id, chunk);
    }
    put_record(&mut out, RecordType::Params, id, &[]);
    put_record(&mut out, RecordType::Stdin, id, &[]);
    out
}

/// `HTTP_ACCEPT_ENCODING` → `Accept-Encoding`.
fn header_name(cgi: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(cgi.len());
    let mut upper = true;
    for &b in cgi {
        if b == b'_' {
            out.push(b'-');
            upper = true;
        } else {
            out.push(if upper {
                b.to_ascii_uppercase()
            } else {
                b.to_ascii_lowercase()
            });
            upper = false;
        }
    }
    out
}

/// The HTTP/1.1 request head the typical request stands for: same method, URI, protocol
/// and headers (every `HTTP_*` variable, in order).
pub(crate) fn http_head(params: &Params) -> Vec<u8> {
    let get = |n: &str| params.get(n.as_bytes()).expect("variable present");
    let mut out = Vec::new();
    out.put_slice(get("REQUEST_METHOD"));
    out.put_u8(b' ');
    out.put_slice(get("REQUEST_URI"));
    out.put_u8(b' ');
    out.put_slice(get("SERVER_PROTOCOL"));
    out.put_slice(b"\r\n");
    for (name, value) in params.iter() {
        if let Some(rest) = name.strip_prefix(b"HTTP_") {
            out.put_slice(&header_name(rest));
            out.put_slice(b": ");
            out.put_slice(value);
            out.put_slice(b"\r\n");
        }
    }
    out.put_slice(b"\r\n");
    out
}

/// A stream of `STDOUT` records for request `id`: `total` content bytes in records of
/// `content_len` bytes each (the last one shorter if need be), each padded to 8.
pub(crate) fn stdout_stream(id: u16, total: usize, content_len: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..content_len).map(|i| (i % 251) as u8).collect();
    let mut out = Vec::with_capacity(total + total / content_len * 16 + 16);
    let mut left = total;
    while left > 0 {
        let n = left.min(content_len);
        put_record(&mut out, RecordType::Stdout, id, &payload[..n]);
        left -= n;
    }
    out
}

/// `n` `STDIN` records for request `id` with payloads of 1000..=1007 bytes (so that every
/// padding length 0..=7 occurs), then the empty `STDIN` that ends the body.
pub(crate) fn stdin_records(id: u16, n: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..1007u32).map(|i| (i % 253) as u8).collect();
    let mut out = Vec::new();
    for i in 0..n {
        put_record(&mut out, RecordType::Stdin, id, &payload[..1000 + i % 8]);
    }
    put_record(&mut out, RecordType::Stdin, id, &[]);
    out
}

/// The headers of a typical PHP response (as php-fpm writes them to `STDOUT`).
pub(crate) fn response_head() -> Bytes {
    Bytes::from_static(
        b"Status: 200 OK\r\n\
          Content-Type: text/html; charset=UTF-8\r\n\
          Cache-Control: no-store, no-cache, must-revalidate\r\n\
          Pragma: no-cache\r\n\
          Set-Cookie: session=6f1c2b9e0d8a4f7cb3e5a1d27c9e8f40; path=/; HttpOnly; SameSite=Lax\r\n\
          Content-Length: 4096\r\n\
          \r\n",
    )
}

/// A 4 KiB response body.
pub(crate) fn response_body() -> Bytes {
    let body: Vec<u8> = (0..4096u32).map(|i| b'a' + (i % 26) as u8).collect();
    Bytes::from(body)
}
