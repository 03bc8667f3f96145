//! Interop: our tokio FastCGI server (the echo application) behind real web servers —
//! nginx, Apache httpd (mod_proxy_fcgi, mod_authnz_fcgi), lighttpd (Responder and
//! Authorizer), HAProxy (multiplexed), libfcgi's cgi-fcgi — and the echo example started by
//! spawn-fcgi with its listening socket on fd 0.
//!
//! The peers, the HTTP client and the scenarios live in `fcgi-testkit` and are shared with
//! the other runtime adapters; this file only starts the server on tokio. A missing peer
//! program fails the test under `CI=true` and is skipped (with a `SKIPPED:` line) otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use fcgi_core::server::RoleSet;
use fcgi_testkit::{AppAddr, AppParts, Listen, Stats};
use fcgi_tokio::server::{ServerOptions, WebServerAddrs};
use fcgi_tokio::{Listener, TokioRuntime};

/// Stops the server and its runtime when dropped.
struct Running {
    handle: fcgi_tokio::server::ShutdownHandle,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

/// The echo application on a background multi-thread tokio runtime: all roles,
/// multiplexing on, any peer address allowed.
fn start_echo(listen: Listen, stats: Arc<Stats>) -> AppParts {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (listener, addr) = runtime.block_on(async {
        match listen {
            Listen::Tcp(addr) => {
                let l = Listener::bind_tcp(addr).await.expect("bind tcp");
                let bound = l.local_addr().expect("tcp address");
                (l, AppAddr::Tcp(bound))
            }
            Listen::Unix(path) => (
                Listener::bind_unix(&path).expect("bind unix"),
                AppAddr::Unix(path),
            ),
        }
    });
    let mut opts = ServerOptions::default();
    opts.core.multiplex = true;
    opts.core.roles = RoleSet::ALL;
    opts.web_server_addrs = WebServerAddrs::Any;
    let server = fcgi_tokio::server(opts);
    let handle = server.shutdown_handle();
    let handler = stats.handler(fcgi_echo::handler(TokioRuntime));
    let listener = stats.listener(listener);
    runtime.spawn(async move {
        if let Err(e) = server.serve(listener, handler).await {
            eprintln!("echo server: {e}");
        }
    });
    AppParts {
        addr,
        guard: Box::new(Running {
            handle,
            runtime: Some(runtime),
        }),
    }
}

fn echo_example() -> std::path::PathBuf {
    fcgi_testkit::tools::example_binary("fcgi-tokio", "echo")
}

fcgi_testkit::interop_suite!(start = start_echo, echo_example = echo_example);
