//! A deterministic generator (splitmix64) for choices the fuzzer steers through a seed.
//!
//! The raw-bytes targets keep their input as close to a wire transcript as possible, so the
//! split points and the simulated application's decisions are not read from bytes
//! interleaved with the stream: the generator is seeded from a hash of the whole input
//! (prefix included). Every mutation, wherever it lands, therefore also draws new split
//! points and new application choices, which explores the harness's behaviours far better
//! than a few dedicated seed bytes that a mutation rarely hits (measured: a planted
//! client-side bug went unfound for 11 000 runs with 4 seed bytes, and is one mutation away
//! with the hash). The recorded transcripts stay usable as seeds as they are.

/// Most chunks a fine split mode (1: one byte, 2: up to 8 bytes) gives per input; see
/// [`Rng::chunks`].
pub const MAX_FINE_CHUNKS: usize = 512;

/// splitmix64 state.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from arbitrary bytes.
    pub fn new(seed: &[u8]) -> Self {
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        for &b in seed {
            s = (s ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3);
        }
        Self(s)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// A value in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability 1/`n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// The length of the next input chunk under split `mode` (always at least 1).
    ///
    /// Modes: 0 everything at once, 1 one byte at a time, 2 up to 8 bytes (splits headers),
    /// 3 up to 64, 4 up to 1024, 5 up to 9000 (around a php-fpm record), 6 and 7 a mix.
    pub fn chunk_len(&mut self, mode: u8, remaining: usize) -> usize {
        let n = match mode % 8 {
            0 => remaining,
            1 => 1,
            2 => self.range(1, 8),
            3 => self.range(1, 64),
            4 => self.range(1, 1024),
            5 => self.range(1, 9000),
            _ => match self.below(4) {
                0 => 1,
                1 => self.range(1, 16),
                2 => self.range(1, 300),
                _ => remaining,
            },
        };
        n.clamp(1, remaining.max(1))
    }

    /// Chunk lengths covering `total` bytes under split `mode`.
    ///
    /// The fine modes (1 and 2) give at most about [`MAX_FINE_CHUNKS`] chunks: when they would
    /// give more, they apply to a window of that many chunks that starts at a random offset,
    /// and the bytes before and after it come in pieces of up to 1024 bytes (mode 4). Feeding
    /// an 8 KiB input one byte at a time costs 8000 rounds of a harness, most of them going
    /// over the same decoder states again; the window still puts a split at every byte of
    /// the stretch it covers, and it moves with every mutation (the generator is seeded from
    /// the whole input). Below the cap, and for the other modes, nothing changes: the same
    /// draws give the same chunks as before the cap existed.
    pub fn chunks(&mut self, mode: u8, total: usize) -> Vec<usize> {
        let mut out = Vec::new();
        if mode % 8 == 1 && total > MAX_FINE_CHUNKS {
            // Mode 1 draws nothing: the loop below would come to the same point.
            self.windowed(mode, total, &mut out);
            return out;
        }
        let mut left = total;
        while left > 0 {
            if out.len() == MAX_FINE_CHUNKS && matches!(mode % 8, 1 | 2) {
                out.clear();
                self.windowed(mode, total, &mut out);
                return out;
            }
            let n = self.chunk_len(mode, left);
            out.push(n);
            left -= n;
        }
        out
    }

    /// `total` bytes with `mode` only on a window of at most `MAX_FINE_CHUNKS` chunks.
    fn windowed(&mut self, mode: u8, total: usize, out: &mut Vec<usize>) {
        let start = self.below(total);
        self.coarse(start, out);
        let mut left = total - start;
        let mut fine = 0;
        while left > 0 && fine < MAX_FINE_CHUNKS {
            let n = self.chunk_len(mode, left);
            out.push(n);
            left -= n;
            fine += 1;
        }
        self.coarse(left, out);
    }

    /// Pieces of up to 1024 bytes (mode 4) covering `len` bytes.
    fn coarse(&mut self, len: usize, out: &mut Vec<usize>) {
        let mut left = len;
        while left > 0 {
            let n = self.chunk_len(4, left);
            out.push(n);
            left -= n;
        }
    }

    /// `len` bytes that depend on `tag`, so that misplaced or reordered payloads do not
    /// compare equal by accident: a slice of a fixed table of pseudo-random bytes, at an
    /// offset drawn from `tag`.
    ///
    /// The bytes are not copied (the `Bytes` points into the table), which matters because
    /// harness code runs instrumented for coverage: computing payloads byte by byte took
    /// half the time of `roundtrip` and a good part of `ops`, which queue up to 24 or 256
    /// payloads of up to 67 KB per input. Payloads longer than `PAYLOAD_SPAN` (none of the
    /// targets asks for one) repeat the slice.
    pub fn payload(tag: u32, len: usize) -> bytes::Bytes {
        let table = payload_table();
        let at = (Rng(u64::from(tag)).next_u64() % PAYLOAD_SPAN as u64) as usize;
        if len <= PAYLOAD_SPAN {
            return bytes::Bytes::from_static(&table[at..at + len]);
        }
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let n = (len - out.len()).min(PAYLOAD_SPAN);
            out.extend_from_slice(&table[at..at + n]);
        }
        out.into()
    }
}

/// Payloads start anywhere in the first `PAYLOAD_SPAN` bytes of the table and are at most
/// that long without repeating.
const PAYLOAD_SPAN: usize = 1 << 17;

/// `2 * PAYLOAD_SPAN` pseudo-random bytes, made once per process.
fn payload_table() -> &'static [u8] {
    static TABLE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut rng = Rng(0x5EED_F00D_CAFE_D00D);
        (0..2 * PAYLOAD_SPAN / 8)
            .flat_map(|_| rng.next_u64().to_le_bytes())
            .collect()
    })
}
