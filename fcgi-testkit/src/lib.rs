//! # fcgi-testkit
//!
//! Interop tests of our FastCGI **server** behind real web servers, shared by every runtime
//! adapter (fcgi-tokio, and fcgi-smol on smol and async-std): the adapter's test file only
//! says how to start the echo application on its runtime, and [`interop_suite!`] generates
//! the same tests for it.
//!
//! - [`app`]: where the application under test listens ([`app::AppAddr`]), and what it saw
//!   ([`app::Stats`]: accepted connections, requests per connection, roles, app statuses),
//!   collected by wrappers around any [`fcgi_driver`] listener and handler.
//! - [`peers`]: nginx, Apache httpd, lighttpd, HAProxy and spawn-fcgi started as child
//!   processes on loopback with per-test temporary directories, configs written by the test,
//!   stopped (with their workers) when dropped; `cgi-fcgi` run as a bounded command.
//! - [`http`]: a small blocking HTTP/1.1 client with timeouts.
//! - [`echo`]: a strict parser of the echo application's answer (`fcgi_echo`).
//! - [`scenarios`]: the checks, one function per peer and setup.
//! - [`php_fpm`] and [`php_fpm_suite`](mod@php_fpm_suite): real php-fpm as the application,
//!   and the scenarios of our **client** against it, generic over a [`behaviour::Harness`]
//!   ([`php_fpm_suite!`] generates the tests for one adapter).
//! - [`soak`]: the soak benchmark of a server and a client pool (a bench binary per
//!   adapter runs it), measuring a fresh process against one that served a million short
//!   connections.
//! - [`tools`]: finding the peer programs, and the skip policy: a missing program fails the
//!   test when `CI=true`, and is otherwise reported on stderr as `SKIPPED: ...`.
//!
//! Every socket operation has a timeout and every wait is a bounded loop.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// A test kit reports failures by panicking, with the peer's logs attached.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

pub mod app;
pub mod behaviour;
pub mod echo;
pub mod http;
pub mod peers;
pub mod php_fpm;
pub mod php_fpm_suite;
pub mod process;
pub mod scenarios;
pub mod soak;
pub mod tools;

pub use app::{App, AppAddr, AppParts, Listen, StartApp, Stats};

/// Generates the interop tests for one runtime adapter.
///
/// `start` is a [`StartApp`]: it binds where [`Listen`] says, serves
/// `fcgi_echo::handler` (all roles, multiplexing on) wrapped by
/// [`Stats::listener`] and [`Stats::handler`], and returns the bound address and a guard
/// that stops the server when dropped. `echo_example` returns the path of the adapter's
/// `echo` example binary (see [`tools::example_binary`]), used for the spawn-fcgi tests.
///
/// ```text
/// fcgi_testkit::interop_suite!(start = start_echo, echo_example = echo_example);
/// ```
#[macro_export]
macro_rules! interop_suite {
    (start = $start:path, echo_example = $example:path $(,)?) => {
        fn __tcp() -> $crate::App {
            $crate::App::start_tcp($start)
        }
        fn __unix() -> $crate::App {
            $crate::App::start_unix($start)
        }

        #[test]
        fn example_drains_on_sigint() {
            $crate::scenarios::example_drains_on_sigint(&$example());
        }

        #[test]
        fn nginx_tcp_keepalive() {
            $crate::scenarios::nginx_responder(&__tcp(), true);
        }
        #[test]
        fn nginx_tcp_without_keep_conn() {
            $crate::scenarios::nginx_responder(&__tcp(), false);
        }
        #[test]
        fn nginx_unix_keepalive() {
            $crate::scenarios::nginx_responder(&__unix(), true);
        }
        #[test]
        fn nginx_big_bodies_tcp() {
            $crate::scenarios::nginx_big_bodies(&__tcp());
        }
        #[test]
        fn nginx_big_bodies_unix() {
            $crate::scenarios::nginx_big_bodies(&__unix());
        }
        #[test]
        fn nginx_client_abort_cancels_handler() {
            $crate::scenarios::nginx_client_abort(&__tcp());
        }
        #[test]
        fn apache_proxy_fcgi_tcp() {
            $crate::scenarios::apache_responder(&__tcp());
        }
        #[test]
        fn apache_proxy_fcgi_unix() {
            $crate::scenarios::apache_responder(&__unix());
        }
        #[test]
        fn apache_authnz_fcgi_authorizer() {
            $crate::scenarios::apache_authorizer(&__tcp());
        }
        #[test]
        fn lighttpd_tcp() {
            $crate::scenarios::lighttpd_responder(&__tcp());
        }
        #[test]
        fn lighttpd_unix() {
            $crate::scenarios::lighttpd_responder(&__unix());
        }
        #[test]
        fn lighttpd_authorizer() {
            $crate::scenarios::lighttpd_authorizer(&__tcp());
        }
        #[test]
        fn haproxy_tcp_multiplexed() {
            $crate::scenarios::haproxy_responder(&__tcp());
        }
        #[test]
        fn haproxy_unix_multiplexed() {
            $crate::scenarios::haproxy_responder(&__unix());
        }
        #[test]
        fn cgi_fcgi_tcp() {
            $crate::scenarios::cgi_fcgi(&__tcp());
        }
        #[test]
        fn cgi_fcgi_unix() {
            $crate::scenarios::cgi_fcgi(&__unix());
        }
        #[test]
        fn spawn_fcgi_inherited_tcp_socket() {
            $crate::scenarios::spawn_fcgi_inherited_tcp(&$example());
        }
        #[test]
        fn spawn_fcgi_inherited_unix_socket() {
            $crate::scenarios::spawn_fcgi_inherited_unix(&$example());
        }
        #[test]
        fn spawn_fcgi_web_server_addrs() {
            $crate::scenarios::spawn_fcgi_web_server_addrs(&$example());
        }
    };
}
