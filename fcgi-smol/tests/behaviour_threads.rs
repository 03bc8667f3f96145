//! The shared behavioural suite (fcgi-testkit) on the blocking server's runtime: a thread per
//! connection and per task (`fcgi_smol::blocking::thread_runtime`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness_threads;

use harness_threads::ThreadHarness;

fcgi_testkit::behaviour_suite!(ThreadHarness);
