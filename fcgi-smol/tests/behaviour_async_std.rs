//! The shared behavioural suite (fcgi-testkit) on fcgi-smol with async-std's executor.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness_async_std;

use harness_async_std::AsyncStdHarness;

fcgi_testkit::behaviour_suite!(AsyncStdHarness);
