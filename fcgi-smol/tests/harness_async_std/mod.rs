//! The async-std [`Harness`] of the shared suites (`fcgi_testkit::behaviour`,
//! `fcgi_testkit::php_fpm_suite`): tasks on async-std's global (multi-threaded) executor, or
//! — where a scenario asks for a single-threaded one — on the thread-local executor that
//! `async_std::task::block_on` runs (`task::spawn_local`, behind async-std's `unstable`
//! feature).

use std::future::Future;

use fcgi_smol::{Listener, SmolConnector, SmolRuntime, Stream};
use fcgi_testkit::behaviour::Harness;

// A macro-only module: a test crate that includes several harnesses loads it once each.
#[allow(clippy::duplicate_mod)]
#[path = "../harness_io/mod.rs"]
mod harness_io;

/// async-std's executor; `local` spawns onto the `block_on` thread's executor.
pub(crate) struct AsyncStdHarness {
    local: bool,
}

impl Harness for AsyncStdHarness {
    type Rt = SmolRuntime;
    type Io = Stream;
    type Listener = Listener;
    type Connector = SmolConnector;

    fn new() -> Self {
        Self { local: false }
    }

    fn new_single_threaded() -> Self {
        Self { local: true }
    }

    fn runtime(&self) -> SmolRuntime {
        if self.local {
            // Every spawn of a single-threaded scenario happens on the `block_on` thread
            // (nothing else runs tasks), so they all land on its local executor.
            SmolRuntime::new(|f| {
                async_std::task::spawn_local(f);
            })
        } else {
            SmolRuntime::new(|f| {
                async_std::task::spawn(f);
            })
        }
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        async_std::task::block_on(future)
    }

    harness_io::futures_io_sockets!();
}
