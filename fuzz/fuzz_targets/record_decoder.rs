//! `record::Decoder` and `record::RecordReader` on arbitrary bytes.
//!
//! Input: 4 prefix bytes (split mode for the `Decoder`, split mode for the `RecordReader`,
//! 2 salt bytes; split points come from a hash of the whole input), then the byte stream. Both are compared with a one-pass reference parse of
//! the whole stream: same records (header fields and content), same "at a record boundary"
//! answer at the end. Splitting the input differently must never change anything.
#![no_main]

use bytes::BytesMut;
use fcgi_core::record::{Decoder, Fragment, Header, RecordReader};
use fcgi_fuzz::rng::Rng;
use fcgi_fuzz::split_prefix;
use fcgi_fuzz::wire::{RefRecord, parse_records};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| run(data));

type Rec = (Header, Vec<u8>);

fn same(r: &RefRecord<'_>, (h, content): &Rec) -> bool {
    h.version == r.version
        && u8::from(h.record_type) == r.rtype
        && h.request_id == r.id
        && usize::from(h.content_length) == r.content.len()
        && h.padding_length == r.padding_len
        && content[..] == *r.content
}

/// Feeds `stream` to a `Decoder` in the given chunks and rebuilds the records from the
/// fragments, checking the fragment grammar on the way.
fn with_decoder(stream: &[u8], chunks: &[usize]) -> (Vec<Rec>, bool) {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    let mut open: Option<(Header, Vec<u8>)> = None;
    let mut pos = 0;
    for &n in chunks {
        let mut input = BytesMut::from(&stream[pos..pos + n]);
        pos += n;
        while let Some(f) = d.decode(&mut input) {
            match f {
                Fragment::Header(h) => {
                    assert!(open.is_none(), "Header inside a record");
                    open = Some((h, Vec::new()));
                }
                Fragment::Content(c) => {
                    let (h, body) = open.as_mut().expect("Content outside a record");
                    assert!(!c.is_empty(), "empty Content fragment");
                    body.extend_from_slice(&c);
                    assert!(
                        body.len() <= usize::from(h.content_length),
                        "content overrun"
                    );
                }
                Fragment::End(h) => {
                    let (open_h, body) = open.take().expect("End outside a record");
                    assert_eq!(h, open_h, "End header differs from Header");
                    assert_eq!(body.len(), usize::from(h.content_length), "short content");
                    out.push((h, body));
                }
            }
            assert!(!d.is_at_boundary() || open.is_none());
        }
        assert!(input.is_empty(), "decode returned None with input left");
    }
    (out, d.is_at_boundary())
}

/// Feeds `stream` to a `RecordReader` in the given chunks.
fn with_reader(stream: &[u8], chunks: &[usize]) -> (Vec<Rec>, bool) {
    let mut r = RecordReader::new();
    let mut out = Vec::new();
    let mut pos = 0;
    for &n in chunks {
        let mut input = BytesMut::from(&stream[pos..pos + n]);
        pos += n;
        while let Some(rec) = r.read(&mut input) {
            assert_eq!(rec.content.len(), usize::from(rec.header.content_length));
            out.push((rec.header, rec.content.to_vec()));
        }
        assert!(input.is_empty(), "read returned None with input left");
    }
    (out, r.is_at_boundary())
}

fn run(data: &[u8]) {
    let ([mode_a, mode_b, _, _], stream) = split_prefix::<4>(data);
    let mut rng = Rng::new(data);
    let reference = parse_records(stream);

    for r in &reference.records {
        // Header parsing agrees with the reference, and encoding round-trips (reserved → 0).
        let start = r.content.as_ptr() as usize - stream.as_ptr() as usize - 8;
        let raw = &stream[start..start + 8];
        let h = Header::parse(raw).expect("8 bytes");
        let mut again = raw.to_vec();
        again[7] = 0;
        assert_eq!(h.to_array().to_vec(), again);
        assert_eq!(h.body_len(), r.content.len() + usize::from(r.padding_len));
    }

    let chunks_a = rng.chunks(mode_a, stream.len());
    let chunks_b = rng.chunks(mode_b, stream.len());
    let whole = if stream.is_empty() {
        vec![]
    } else {
        vec![stream.len()]
    };
    let runs = [
        with_decoder(stream, &chunks_a),
        with_decoder(stream, &whole),
        with_reader(stream, &chunks_b),
        with_reader(stream, &whole),
    ];
    for (i, (recs, boundary)) in runs.iter().enumerate() {
        assert_eq!(recs.len(), reference.records.len(), "run {i}: record count");
        for (r, rec) in reference.records.iter().zip(recs) {
            assert!(same(r, rec), "run {i}: record differs: {r:?} vs {rec:?}");
        }
        assert_eq!(*boundary, reference.at_boundary, "run {i}: boundary");
    }
}
