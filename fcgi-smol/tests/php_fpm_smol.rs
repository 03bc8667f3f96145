//! Interop: the fcgi-smol FastCGI **client** on smol's executor against real php-fpm
//! (Debian `php8.2-fpm`), each scenario over TCP and over a Unix socket — the shared
//! `fcgi_testkit::php_fpm_suite` (scenarios, assertions and skip policy are documented
//! there): an executor with two threads per test, one run only inside `block_on` for the
//! restart scenario.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness_smol;

use harness_smol::SmolHarness;

fcgi_testkit::php_fpm_suite!(SmolHarness);
