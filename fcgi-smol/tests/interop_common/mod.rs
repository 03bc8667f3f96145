//! Starting the echo application on fcgi-smol for the shared interop suite (included by the
//! per-executor test files).

use std::sync::Arc;
use std::thread::JoinHandle;

use fcgi_core::server::RoleSet;
use fcgi_smol::server::{ServerOptions, ShutdownHandle, WebServerAddrs};
use fcgi_smol::{Listener, SmolRuntime};
use fcgi_testkit::{AppAddr, AppParts, Listen, Stats};

/// Which executor runs the server and its handlers.
#[derive(Clone, Copy)]
#[allow(dead_code)] // each test binary uses one executor
pub(crate) enum Executor {
    Smol,
    AsyncStd,
}

/// Stops the server and joins its thread when dropped.
struct Running {
    handle: ShutdownHandle,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn block_on<T>(executor: Executor, f: impl std::future::Future<Output = T>) -> T {
    match executor {
        Executor::Smol => smol::block_on(f),
        Executor::AsyncStd => async_std::task::block_on(f),
    }
}

fn runtime(executor: Executor) -> SmolRuntime {
    match executor {
        Executor::Smol => SmolRuntime::new(|task| smol::spawn(task).detach()),
        Executor::AsyncStd => SmolRuntime::new(|task| {
            async_std::task::spawn(task);
        }),
    }
}

/// The echo application: all roles, multiplexing on, any peer address allowed.
pub(crate) fn start_echo(executor: Executor, listen: Listen, stats: Arc<Stats>) -> AppParts {
    let (listener, addr) = block_on(executor, async {
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
    let rt = runtime(executor);
    let server = fcgi_smol::server(rt.clone(), opts);
    let handle = server.shutdown_handle();
    let handler = stats.handler(fcgi_echo::handler(rt));
    let listener = stats.listener(listener);
    let thread = std::thread::spawn(move || {
        block_on(executor, async move {
            if let Err(e) = server.serve(listener, handler).await {
                eprintln!("echo server: {e}");
            }
        });
    });
    AppParts {
        addr,
        guard: Box::new(Running {
            handle,
            thread: Some(thread),
        }),
    }
}

pub(crate) fn echo_example() -> std::path::PathBuf {
    fcgi_testkit::tools::example_binary("fcgi-smol", "echo")
}
