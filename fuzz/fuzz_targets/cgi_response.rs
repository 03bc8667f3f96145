//! `fcgi_http::response::CgiResponseParser` on an arbitrary CGI response (what a FastCGI
//! application writes on `STDOUT`), fed whole and in random pieces.
//!
//! Input: 2 prefix bytes (split mode, config selector), then the stream. Whatever the bytes,
//! the parser never panics; the outcome (head or error kind, status, headers) does not depend
//! on how the stream is split; the body it hands back plus the pieces after it are exactly
//! the stream's tail after the head; and a head is never accepted beyond the size cap.
#![no_main]

use bytes::Bytes;
use fcgi_fuzz::rng::Rng;
use fcgi_fuzz::split_prefix;
use fcgi_http::response::{CgiResponseParser, Head, LocalRedirect, ParserConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| run(data));

/// What a parse came to, comparable across splits.
#[derive(Debug, PartialEq)]
enum Outcome {
    Response {
        status: u16,
        headers: Vec<(String, Vec<u8>)>,
        body: Vec<u8>,
    },
    Redirect {
        path: String,
        body: Vec<u8>,
    },
    Error(String),
    Incomplete,
}

fn config(selector: u8) -> ParserConfig {
    ParserConfig::default()
        .max_head_len(match selector % 4 {
            0 => 64 * 1024,
            1 => 64,
            2 => 1,
            _ => 300,
        })
        .local_redirect(if selector & 4 == 0 {
            LocalRedirect::Internal
        } else {
            LocalRedirect::Found302
        })
        .default_content_type(
            (selector & 8 != 0).then(|| http::HeaderValue::from_static("text/html")),
        )
}

fn parse(stream: &[u8], chunks: &[usize], selector: u8) -> Outcome {
    let max = config(selector).max_head_len;
    let mut parser = CgiResponseParser::new(config(selector));
    let mut pos = 0;
    for &n in chunks {
        let piece = Bytes::copy_from_slice(&stream[pos..pos + n]);
        pos += n;
        match parser.feed(piece) {
            Ok(None) => continue,
            Err(e) => {
                return Outcome::Error(
                    format!("{e:?}")
                        .split('(')
                        .next()
                        .unwrap_or("")
                        .split(' ')
                        .next()
                        .unwrap_or("")
                        .to_owned(),
                );
            }
            Ok(Some(parsed)) => {
                // Head bytes = everything consumed before the body.
                let head_len = pos - parsed.body.len();
                assert!(
                    head_len <= max,
                    "head of {head_len} bytes accepted over cap {max}"
                );
                let mut body = parsed.body.to_vec();
                body.extend_from_slice(&stream[pos..]);
                assert_eq!(body, &stream[head_len..], "body is the stream's tail");
                return match parsed.head {
                    Head::Response(parts) => Outcome::Response {
                        status: parts.status.as_u16(),
                        headers: parts
                            .headers
                            .iter()
                            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
                            .collect(),
                        body,
                    },
                    Head::InternalRedirect { path } => Outcome::Redirect {
                        path: path.as_str().to_owned(),
                        body,
                    },
                };
            }
        }
    }
    match parser.finish() {
        Ok(()) => unreachable!("finish before a head is always an error"),
        Err(_) => Outcome::Incomplete,
    }
}

fn run(data: &[u8]) {
    let ([mode, selector], stream) = split_prefix::<2>(data);
    let whole = parse(stream, &[stream.len()], selector);
    let mut rng = Rng::new(data);
    let chunks = rng.chunks(mode, stream.len());
    let pieces = parse(stream, &chunks, selector);
    match (&whole, &pieces) {
        // The cap is checked as bytes arrive, so a stream that ends inside an over-long head
        // may be "too large" piecewise and incomplete whole, or the reverse; both refuse it.
        (Outcome::Error(_) | Outcome::Incomplete, Outcome::Error(_) | Outcome::Incomplete) => {}
        _ => assert_eq!(whole, pieces, "outcome depends on the split: {chunks:?}"),
    }
}
