//! Interop: the fcgi-smol FastCGI **client** on async-std's executor against real php-fpm
//! (Debian `php8.2-fpm`), each scenario over TCP and over a Unix socket — the shared
//! `fcgi_testkit::php_fpm_suite` (scenarios, assertions and skip policy are documented
//! there): async-std's global executor, and its `block_on` thread's local executor for the
//! restart scenario.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness_async_std;

use harness_async_std::AsyncStdHarness;

fcgi_testkit::php_fpm_suite!(AsyncStdHarness);
