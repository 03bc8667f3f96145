//! The soak benchmark on fcgi-smol with smol's executor (see `fcgi_testkit::soak`): a fresh
//! server and client pool against the same process after a million short connections.
//!
//! ```sh
//! cargo bench -p fcgi-smol --bench soak
//! FCGI_SOAK_CONNECTIONS=100000 cargo bench -p fcgi-smol --bench soak   # shorter
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/harness_smol/mod.rs"]
mod harness_smol;

fn main() {
    fcgi_testkit::soak::main::<harness_smol::SmolHarness>("fcgi-smol");
}
