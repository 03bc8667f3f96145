//! The shared behavioural suite (fcgi-testkit) on fcgi-smol with smol's executor.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness_smol;

use harness_smol::SmolHarness;

fcgi_testkit::behaviour_suite!(SmolHarness);
