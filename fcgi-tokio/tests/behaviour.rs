//! The shared behavioural suite (`fcgi_testkit::behaviour`) on tokio: server and client
//! scenarios over loopback TCP and Unix sockets, some through fault-injecting streams.
//! Each test builds its own two-worker multi-thread runtime.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use harness::TokioHarness;

fcgi_testkit::behaviour_suite!(TokioHarness);
