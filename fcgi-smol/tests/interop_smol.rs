//! Interop: our fcgi-smol server on smol's executor behind real web servers (nginx, Apache,
//! lighttpd, HAProxy, cgi-fcgi, spawn-fcgi with fd 0) — the very scenarios fcgi-tokio runs,
//! from `fcgi-testkit`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod interop_common;

fn start(
    listen: fcgi_testkit::Listen,
    stats: std::sync::Arc<fcgi_testkit::Stats>,
) -> fcgi_testkit::AppParts {
    interop_common::start_echo(interop_common::Executor::Smol, listen, stats)
}

fcgi_testkit::interop_suite!(start = start, echo_example = interop_common::echo_example);
