//! `params::ParamsReader` (fed in pieces) and `params::decode_pairs` on an arbitrary
//! name-value block.
//!
//! Input: 4 prefix bytes (split mode, cap selector, 2 salt bytes; split points come from a
//! hash of the whole input), then the block. Both
//! decoders must agree with a reference parse; the `Params` they build must answer
//! `get`/`get_all`/`iter`/`wire_pairs` consistently; re-encoding the pairs gives the original
//! bytes exactly when the block used the shortest length forms. Under a byte cap, the reader
//! must refuse a block exactly when the reference says the cap is crossed: by the bytes
//! received, or by a pair whose declared length goes beyond it.
#![no_main]

use fcgi_core::params::{ParamsReader, decode_pairs, encode_pair, encoded_pair_len};
use fcgi_core::{Error, LimitExceeded, Malformed, Params};
use fcgi_fuzz::rng::Rng;
use fcgi_fuzz::split_prefix;
use fcgi_fuzz::wire::{self, PairScanner, is_canonical, parse_pairs};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| run(data));

fn feed(reader: &mut ParamsReader, block: &[u8], chunks: &[usize], rng: &mut Rng) {
    let mut pos = 0;
    for &n in chunks {
        if rng.one_in(8) {
            reader.reserve_hint(rng.below(70_000));
        }
        reader.push(&block[pos..pos + n]).expect("no cap");
        pos += n;
        assert_eq!(reader.len(), pos);
        assert_eq!(reader.is_empty(), pos == 0);
    }
}

fn check_params(params: &Params, pairs: &[(&[u8], &[u8])]) {
    assert_eq!(params.len(), pairs.len());
    assert_eq!(params.is_empty(), pairs.is_empty());
    assert!(params.iter().eq(pairs.iter().copied()), "iter differs");
    assert!(
        params.iter().rev().eq(pairs.iter().rev().copied()),
        "iter().rev() differs"
    );
    let mut joined = Vec::new();
    for (piece, (n, v)) in params.wire_pairs().zip(pairs) {
        assert_eq!(
            parse_pairs(piece).as_deref(),
            Some(&[(*n, *v)][..]),
            "wire_pairs piece"
        );
        joined.extend_from_slice(piece);
    }
    assert_eq!(params.wire_pairs().count(), pairs.len());
    assert_eq!(
        joined,
        params.wire_bytes(),
        "wire_pairs do not cover wire_bytes"
    );
    for (name, _) in pairs.iter().take(16) {
        let all: Vec<&[u8]> = pairs
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .collect();
        assert!(params.get_all(name).eq(all.iter().copied()), "get_all");
        assert_eq!(
            params.get(name),
            all.last().copied(),
            "get returns the last value"
        );
        let s = core::str::from_utf8(name).ok();
        if let Some(s) = s {
            let want = all.last().and_then(|v| core::str::from_utf8(v).ok());
            assert_eq!(params.get_str(s), want, "get_str");
        }
    }
    // A name longer than every name present is absent.
    let longest = pairs.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let absent = vec![b'x'; longest + 1];
    assert_eq!(params.get(&absent), None);
    assert_eq!(params.get_all(&absent).count(), 0);
}

fn run(data: &[u8]) {
    let ([mode, limit_sel, _, _], block) = split_prefix::<4>(data);
    let mut rng = Rng::new(data);
    let reference = parse_pairs(block);

    // decode_pairs on the whole block.
    let mut decoded = Vec::new();
    let r = decode_pairs(block, |n, v| decoded.push((n, v)));
    match &reference {
        Some(pairs) => {
            assert_eq!(r, Ok(()));
            assert_eq!(&decoded, pairs, "decode_pairs differs from the reference");
        }
        None => assert_eq!(r, Err(Error::Malformed(Malformed::TruncatedPair))),
    }

    // ParamsReader without a cap, fed in pieces.
    let chunks = rng.chunks(mode, block.len());
    let mut reader = ParamsReader::new(usize::MAX);
    feed(&mut reader, block, &chunks, &mut rng);
    let finished = reader.finish();
    let Some(pairs) = reference else {
        assert_eq!(finished, Err(Error::Malformed(Malformed::TruncatedPair)));
        check_capped(block, limit_sel, &chunks, None);
        return;
    };
    let params = finished.expect("reference decoded the block");
    assert_eq!(
        params.wire_bytes(),
        block,
        "Params keeps the received bytes"
    );
    check_params(&params, &pairs);

    // Re-encoding.
    let mut rebuilt = Params::new();
    let mut by_fn = Vec::new();
    let mut by_ref = Vec::new();
    for (n, v) in &pairs {
        rebuilt.push(n, v).expect("short components");
        let before = by_fn.len();
        encode_pair(&mut by_fn, n, v).expect("short components");
        assert_eq!(encoded_pair_len(n, v), Ok(by_fn.len() - before));
        assert_eq!(wire::encoded_pair_len(n, v), by_fn.len() - before);
        wire::encode_pair(&mut by_ref, n, v);
    }
    assert_eq!(rebuilt.wire_bytes(), &by_ref[..], "Params::push encoding");
    assert_eq!(by_fn, by_ref, "encode_pair encoding");
    assert_eq!(
        rebuilt.wire_bytes() == block,
        is_canonical(block),
        "re-encoding"
    );
    if is_canonical(block) {
        assert_eq!(
            rebuilt, params,
            "canonical block: pushed and decoded Params are equal"
        );
    }
    check_params(&rebuilt, &pairs);
    check_capped(block, limit_sel, &chunks, Some(&params));
}

/// The same block under a cap: each push fails exactly when the reference says so.
fn check_capped(block: &[u8], sel: u8, chunks: &[usize], whole: Option<&Params>) {
    let limit = match sel % 8 {
        0 => 0,
        1 => 1,
        2 => 7,
        3 => 64,
        4 => 300,
        5 => block.len(),
        6 => block.len().saturating_sub(1),
        _ => usize::from(sel),
    };
    let mut reader = ParamsReader::new(limit);
    let mut scanner = PairScanner::default();
    let mut pos = 0;
    for &n in chunks {
        let after = pos + n;
        let over = after > limit
            || scanner
                .pending_end(&block[..after])
                .is_some_and(|end| end > limit);
        let r = reader.push(&block[pos..after]);
        if over {
            assert_eq!(
                r,
                Err(Error::Limit(LimitExceeded::Params { limit })),
                "cap {limit} at {after}"
            );
            return;
        }
        assert_eq!(r, Ok(()), "cap {limit} refused at {after} bytes");
        pos = after;
    }
    match whole {
        Some(p) => assert_eq!(reader.finish().as_ref(), Ok(p)),
        None => assert!(reader.finish().is_err()),
    }
}
