//! The soak benchmark on tokio (see `fcgi_testkit::soak`): a fresh server and client pool
//! against the same process after a million short connections.
//!
//! ```sh
//! cargo bench -p fcgi-tokio --bench soak
//! FCGI_SOAK_CONNECTIONS=100000 cargo bench -p fcgi-tokio --bench soak   # shorter
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/harness/mod.rs"]
mod harness;

fn main() {
    fcgi_testkit::soak::main::<harness::TokioHarness>("fcgi-tokio");
}
