//! The thread-per-connection [`Harness`] of the shared suite: `fcgi_smol::blocking`'s
//! [`thread_runtime`] (every spawned task on a thread of its own, `async_io::block_on`
//! driving it), the runtime under the blocking server.

use std::future::Future;

use fcgi_smol::blocking::thread_runtime;
use fcgi_smol::{Listener, SmolConnector, SmolRuntime, Stream};
use fcgi_testkit::behaviour::Harness;

// A macro-only module: a test crate that includes several harnesses loads it once each.
#[allow(clippy::duplicate_mod)]
#[path = "../harness_io/mod.rs"]
mod harness_io;

/// Threads, no executor: nothing to stop but the tasks' own threads, which end with them.
pub(crate) struct ThreadHarness;

impl Harness for ThreadHarness {
    type Rt = SmolRuntime;
    type Io = Stream;
    type Listener = Listener;
    type Connector = SmolConnector;

    fn new() -> Self {
        Self
    }

    /// Every task has its own thread here; there is no single-threaded flavour.
    fn new_single_threaded() -> Self {
        Self
    }

    fn runtime(&self) -> SmolRuntime {
        thread_runtime()
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        async_io::block_on(future)
    }

    harness_io::futures_io_sockets!();
}
