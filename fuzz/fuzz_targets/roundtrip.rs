//! Encode → decode round trips of the stateless codecs, on `arbitrary` values.
//!
//! - `Params`: pushed pairs → wire bytes (compared with the reference encoder) → decoded by
//!   `decode_pairs` and by `ParamsReader` in pieces → the same pairs, and an equal `Params`;
//! - `Header`: fields → 8 bytes → `Header::parse` → the same fields; any 8 bytes → parse →
//!   encode gives them back with the reserved byte zeroed;
//! - `RecordType`, `Role`, `ProtocolStatus` and the three fixed bodies: value ↔ bytes;
//! - `Transmit`: records queued with `push_record`/`push_stream`, written out through an
//!   arbitrary mix of `pop` and `chunks` + `advance`, and read back with `RecordReader`:
//!   the same records, framed by the padding policy.
#![no_main]

use arbitrary::Arbitrary;
use bytes::{Bytes, BytesMut};
use fcgi_core::params::{ParamsReader, decode_pairs, length_prefix_len};
use fcgi_core::record::{
    BeginRequestBody, EndRequestBody, Header, Padding, ProtocolStatus, RecordReader, RecordType,
    Role, UnknownTypeBody,
};
use fcgi_core::transmit::Transmit;
use fcgi_core::{Error, Malformed, Params};
use fcgi_fuzz::rng::Rng;
use fcgi_fuzz::wire::{self, max_content, padding_for};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Pair {
    name: Vec<u8>,
    value: Vec<u8>,
    /// Grows the value past 127 bytes (4-byte length form) when non-zero.
    grow: u8,
}

#[derive(Debug, Arbitrary)]
enum Queued {
    Record {
        rtype: u8,
        id: u16,
        len: u16,
    },
    Stream {
        rtype: u8,
        id: u16,
        len: u16,
        big: bool,
    },
}

#[derive(Debug, Arbitrary)]
struct Input {
    pairs: Vec<Pair>,
    splits: Vec<u8>,
    header: [u8; 8],
    body: [u8; 8],
    body_len: u8,
    role: u16,
    status: u8,
    app_status: u32,
    keep_conn: bool,
    queued: Vec<Queued>,
    padding_none: bool,
    writes: Vec<u16>,
}

fuzz_target!(|input: Input| run(input));

fn run(input: Input) {
    params_roundtrip(&input);
    header_roundtrip(&input);
    bodies_roundtrip(&input);
    transmit_roundtrip(&input);
}

fn params_roundtrip(input: &Input) {
    let mut params = Params::with_capacity(16, 2);
    let mut owned = Vec::new();
    let mut reference = Vec::new();
    for p in input.pairs.iter().take(64) {
        let mut value = p.value.clone();
        if p.grow != 0 {
            value.resize(128 + usize::from(p.grow) * 37, p.grow);
        }
        params.push(&p.name, &value).expect("short components");
        wire::encode_pair(&mut reference, &p.name, &value);
        owned.push((p.name.clone(), value));
    }
    assert_eq!(params.wire_bytes(), &reference[..], "Params encoding");
    for (n, v) in &owned {
        let want = if n.len() < 128 { 1 } else { 4 };
        assert_eq!(length_prefix_len(n.len()), want);
        assert_eq!(
            length_prefix_len(v.len()),
            if v.len() < 128 { 1 } else { 4 }
        );
    }
    let expect: Vec<(&[u8], &[u8])> = owned.iter().map(|(n, v)| (&n[..], &v[..])).collect();
    assert!(params.iter().eq(expect.iter().copied()));

    let mut decoded = Vec::new();
    decode_pairs(params.wire_bytes(), |n, v| decoded.push((n, v))).expect("own encoding");
    assert_eq!(decoded, expect, "decode_pairs");

    // Reader, fed in pieces sized by `splits`.
    let wire_bytes = params.wire_bytes();
    let mut reader = ParamsReader::new(wire_bytes.len());
    let mut pos = 0;
    let mut sizes = input.splits.iter().map(|&s| usize::from(s) + 1);
    while pos < wire_bytes.len() {
        let n = sizes
            .next()
            .unwrap_or(wire_bytes.len())
            .min(wire_bytes.len() - pos);
        reader
            .push(&wire_bytes[pos..pos + n])
            .expect("within the cap");
        pos += n;
    }
    let back = reader.finish().expect("complete block");
    assert_eq!(back, params, "decoded Params differ from the pushed ones");

    // A block cut short inside its last pair is refused by both decoders.
    if !wire_bytes.is_empty() {
        let cut = &wire_bytes[..wire_bytes.len() - 1];
        assert_eq!(
            decode_pairs(cut, |_, _| {}),
            Err(Error::Malformed(Malformed::TruncatedPair))
        );
        let mut r = ParamsReader::new(usize::MAX);
        r.push(cut).expect("no cap");
        assert_eq!(r.finish(), Err(Error::Malformed(Malformed::TruncatedPair)));
    }
}

fn header_roundtrip(input: &Input) {
    let raw = input.header;
    let h = Header::parse(&raw).expect("8 bytes");
    assert_eq!(h.version, raw[0]);
    assert_eq!(u8::from(h.record_type), raw[1]);
    assert_eq!(h.request_id, u16::from_be_bytes([raw[2], raw[3]]));
    assert_eq!(h.content_length, u16::from_be_bytes([raw[4], raw[5]]));
    assert_eq!(h.padding_length, raw[6]);
    assert_eq!(Header::from_array(&raw), h);
    let mut zeroed = raw;
    zeroed[7] = 0;
    assert_eq!(
        h.to_array(),
        zeroed,
        "encode(parse(bytes)) zeroes only the reserved byte"
    );
    let mut out = Vec::new();
    h.encode(&mut out);
    assert_eq!(out, zeroed);
    assert_eq!(
        Header::parse(&h.to_array()),
        Some(h),
        "parse(encode(header))"
    );
    assert_eq!(Header::parse(&raw[..7]), None);

    let built = Header::new(
        RecordType::from(raw[1]),
        h.request_id,
        h.content_length,
        h.padding_length,
    );
    assert_eq!(built.version, 1);
    assert_eq!(Header::parse(&built.to_array()), Some(built));

    let rt = RecordType::from(raw[1]);
    assert_eq!(u8::from(rt), raw[1]);
    assert_eq!(rt.is_stream(), (4..=8).contains(&raw[1]));
    assert_eq!(
        matches!(rt, RecordType::Unknown(_)),
        raw[1] == 0 || raw[1] > 11
    );
}

fn bodies_roundtrip(input: &Input) {
    let role = Role::from(input.role);
    assert_eq!(u16::from(role), input.role);
    assert_eq!(
        matches!(role, Role::Unknown(_)),
        !(1..=3).contains(&input.role)
    );
    let status = ProtocolStatus::from(input.status);
    assert_eq!(u8::from(status), input.status);

    let b = BeginRequestBody {
        role,
        keep_conn: input.keep_conn,
    };
    let bytes = b.to_array();
    assert_eq!(&bytes[..2], &input.role.to_be_bytes());
    assert_eq!(bytes[2], u8::from(input.keep_conn));
    assert!(bytes[3..].iter().all(|&x| x == 0));
    assert_eq!(BeginRequestBody::parse(&bytes), Ok(b));

    let e = EndRequestBody {
        app_status: input.app_status,
        protocol_status: status,
    };
    let bytes = e.to_array();
    assert_eq!(&bytes[..4], &input.app_status.to_be_bytes());
    assert_eq!(bytes[4], input.status);
    assert_eq!(EndRequestBody::parse(&bytes), Ok(e));

    let u = UnknownTypeBody {
        record_type: input.status,
    };
    assert_eq!(UnknownTypeBody::parse(&u.to_array()), Ok(u));

    // Arbitrary body bytes: reserved bytes and unknown flag bits are ignored.
    let raw = input.body;
    let b = BeginRequestBody::parse(&raw).expect("8 bytes");
    assert_eq!(u16::from(b.role), u16::from_be_bytes([raw[0], raw[1]]));
    assert_eq!(b.keep_conn, raw[2] & 1 != 0);
    let e = EndRequestBody::parse(&raw).expect("8 bytes");
    assert_eq!(
        e.app_status,
        u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]])
    );
    assert_eq!(u8::from(e.protocol_status), raw[4]);
    assert_eq!(
        UnknownTypeBody::parse(&raw).map(|u| u.record_type),
        Ok(raw[0])
    );

    // Any other length is refused, naming the length.
    let len = usize::from(input.body_len % 17);
    let slice = vec![0u8; len];
    if len != 8 {
        for r in [
            BeginRequestBody::parse(&slice).map(|_| ()),
            EndRequestBody::parse(&slice).map(|_| ()),
            UnknownTypeBody::parse(&slice).map(|_| ()),
        ] {
            assert!(matches!(
                r,
                Err(Error::Malformed(Malformed::BodyLength { len: l, .. })) if l == len
            ));
        }
    }
}

fn transmit_roundtrip(input: &Input) {
    let padding = if input.padding_none {
        Padding::None
    } else {
        Padding::Align8
    };
    assert_eq!(padding.max_content_len(), max_content(padding));
    for n in [0usize, 1, 7, 8, 9, 65528, 65535] {
        assert_eq!(usize::from(padding.padding_for(n)), padding_for(padding, n));
    }

    let mut t = Transmit::default();
    // Expected records: (type, id, content), the content as slices of the payloads queued
    // (no copies: an input may queue 24 streams of up to 67 KB).
    let mut expected: Vec<(u8, u16, Bytes)> = Vec::new();
    let mut queued_len = 0;
    for (i, q) in input.queued.iter().take(24).enumerate() {
        match *q {
            Queued::Record { rtype, id, len } => {
                let content = Rng::payload(i as u32, usize::from(len) % 600);
                t.push_record(RecordType::from(rtype), id, &content, padding);
                queued_len += wire::record_wire_len(content.len(), padding);
                expected.push((rtype, id, content));
            }
            Queued::Stream {
                rtype,
                id,
                len,
                big,
            } => {
                let n = if big {
                    65_000 + usize::from(len % 2048)
                } else {
                    usize::from(len % 5000)
                };
                let data: Bytes = Rng::payload(i as u32, n);
                t.push_stream(RecordType::from(rtype), id, data.clone(), padding);
                queued_len += wire::stream_wire_len(n, padding);
                let mut at = 0;
                while at < n {
                    let piece = (n - at).min(max_content(padding));
                    expected.push((rtype, id, data.slice(at..at + piece)));
                    at += piece;
                }
            }
        }
        assert_eq!(t.len(), queued_len, "Transmit::len after a push");
    }
    assert_eq!(t.is_empty(), queued_len == 0);

    // Write out with an arbitrary mix of pop and chunks + advance.
    let mut out = Vec::new();
    let mut writes = input.writes.iter();
    while !t.is_empty() {
        let before = t.len();
        let listed: usize = t.chunks().map(<[u8]>::len).sum();
        assert_eq!(listed, before, "chunks cover len");
        match writes.next() {
            Some(&w) if w % 3 != 0 => {
                let n = usize::from(w).min(before);
                let mut left = n;
                for c in t.chunks() {
                    let take = c.len().min(left);
                    out.extend_from_slice(&c[..take]);
                    left -= take;
                }
                t.advance(n);
                assert_eq!(t.len(), before - n);
            }
            _ => {
                let c = t.pop().expect("non-empty");
                assert!(!c.is_empty());
                out.extend_from_slice(&c);
                assert_eq!(t.len(), before - c.len());
            }
        }
    }
    assert!(t.pop().is_none());
    t.advance(10); // beyond len: clamped
    assert_eq!(t.len(), 0);
    assert_eq!(out.len(), queued_len);

    let mut reader = RecordReader::new();
    let mut buf = BytesMut::from(&out[..]);
    let mut got = Vec::new();
    while let Some(rec) = reader.read(&mut buf) {
        let h = rec.header;
        assert_eq!(h.version, 1);
        assert_eq!(
            usize::from(h.padding_length),
            padding_for(padding, rec.content.len())
        );
        got.push((u8::from(h.record_type), h.request_id, rec.content));
    }
    assert!(buf.is_empty() && reader.is_at_boundary());
    assert_eq!(got, expected, "records read back differ from those queued");
    for r in wire::parse_records(&out).records {
        assert!(r.padding.iter().all(|&b| b == 0) && r.reserved == 0);
    }
}
