//! The smol [`Harness`] of the shared suites (`fcgi_testkit::behaviour`,
//! `fcgi_testkit::php_fpm_suite`): an `Executor` per scenario, run by two threads of its own,
//! or — where a scenario asks for a single-threaded one — run only inside `block_on`.

use std::future::Future;
use std::sync::Arc;
use std::thread::JoinHandle;

use fcgi_smol::{Listener, SmolConnector, SmolRuntime, Stream};
use fcgi_testkit::behaviour::Harness;

// A macro-only module: a test crate that includes several harnesses loads it once each.
#[allow(clippy::duplicate_mod)]
#[path = "../harness_io/mod.rs"]
mod harness_io;

/// A smol executor per scenario.
pub(crate) struct SmolHarness {
    ex: Arc<smol::Executor<'static>>,
    stop: Option<smol::channel::Sender<()>>,
    /// The executor's own threads; none when single-threaded, where `block_on` runs it.
    threads: Vec<JoinHandle<()>>,
}

impl Drop for SmolHarness {
    fn drop(&mut self) {
        drop(self.stop.take());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl SmolHarness {
    fn with_threads(n: usize) -> Self {
        let ex = Arc::new(smol::Executor::new());
        let (tx, rx) = smol::channel::unbounded::<()>();
        let threads = (0..n)
            .map(|_| {
                let (ex, rx) = (Arc::clone(&ex), rx.clone());
                std::thread::spawn(move || {
                    let _ = smol::block_on(ex.run(rx.recv()));
                })
            })
            .collect();
        Self {
            ex,
            stop: Some(tx),
            threads,
        }
    }
}

impl Harness for SmolHarness {
    type Rt = SmolRuntime;
    type Io = Stream;
    type Listener = Listener;
    type Connector = SmolConnector;

    fn new() -> Self {
        Self::with_threads(2)
    }

    fn new_single_threaded() -> Self {
        Self::with_threads(0)
    }

    fn runtime(&self) -> SmolRuntime {
        let ex = Arc::clone(&self.ex);
        SmolRuntime::new(move |f| ex.spawn(f).detach())
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        if self.threads.is_empty() {
            // Single-threaded: the executor's tasks run here, interleaved with `future`.
            smol::block_on(self.ex.run(future))
        } else {
            smol::block_on(future)
        }
    }

    harness_io::futures_io_sockets!();
}
