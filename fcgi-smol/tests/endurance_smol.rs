//! The shared endurance suite (`fcgi_testkit::behaviour::endurance`) on fcgi-smol with
//! smol's executor: tens of thousands of short connections to our server and through our
//! client pool leave no task, request entry, registration or memory behind. A binary of its
//! own: the scenarios measure the process's resident memory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness_smol;

use harness_smol::SmolHarness;

fcgi_testkit::endurance_suite!(SmolHarness);
