//! Interop: our tokio FastCGI **client** against real php-fpm (Debian `php8.2-fpm`), each
//! scenario over TCP and over a Unix socket — the shared `fcgi_testkit::php_fpm_suite`
//! (scenarios, assertions and skip policy are documented there), run on tokio: a two-worker
//! multi-thread runtime per test, a current-thread one for the restart scenario.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use harness::TokioHarness;

fcgi_testkit::php_fpm_suite!(TokioHarness);
