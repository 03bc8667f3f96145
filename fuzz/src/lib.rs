//! Helpers shared by the fuzz targets of `fcgi-core`.
//!
//! Nothing here calls into the code under test in a way that could hide a bug: the reference
//! parsers in [`wire`] are written from the spec independently of `fcgi_core::record` and
//! `fcgi_core::params`, so the targets can compare the crate's answers with them.
//!
//! - [`rng`]: a tiny deterministic generator, seeded from fuzzer bytes, that picks split
//!   points and application behaviour;
//! - [`wire`]: reference record and name-value parsers, and checkers for the byte streams a
//!   connection writes;
//! - [`conf`]: configurations (limits, roles, padding) decoded from a few input bytes;
//! - [`drive`]: checked command wrappers and models of what each side was told to send.

pub mod conf;
pub mod drive;
pub mod rng;
pub mod wire;

/// Splits `data` into a fixed-size prefix (zero-filled when `data` is shorter) and the rest.
pub fn split_prefix<const N: usize>(data: &[u8]) -> ([u8; N], &[u8]) {
    let mut prefix = [0u8; N];
    let n = data.len().min(N);
    prefix[..n].copy_from_slice(&data[..n]);
    (prefix, &data[n..])
}
