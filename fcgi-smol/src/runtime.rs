//! Spawning through the caller's executor; timers from `async-io`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use fcgi_driver::runtime::{BlockingWork, BoxFuture, Runtime};

type SpawnFn = dyn Fn(BoxFuture<()>) + Send + Sync;

/// A runtime made of the caller's spawn function and `async-io` timers.
#[derive(Clone)]
pub struct SmolRuntime {
    spawn: Arc<SpawnFn>,
}

impl fmt::Debug for SmolRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SmolRuntime")
    }
}

impl SmolRuntime {
    /// A runtime spawning with `spawn`, which must run the future to completion in the
    /// background (e.g. `|f| smol::spawn(f).detach()` or `|f| { async_std::task::spawn(f); }`).
    pub fn new(spawn: impl Fn(BoxFuture<()>) + Send + Sync + 'static) -> Self {
        Self {
            spawn: Arc::new(spawn),
        }
    }
}

impl Runtime for SmolRuntime {
    fn spawn(&self, future: BoxFuture<()>) {
        (self.spawn)(future);
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        Box::pin(async move {
            async_io::Timer::after(duration).await;
        })
    }

    fn spawn_blocking(&self, work: BlockingWork) -> BoxFuture<()> {
        // The `blocking` crate's thread pool (what smol's `unblock` uses); a panic in `work`
        // ends the pool thread's job and is reported by `unblock` (its result is missing).
        Box::pin(blocking::unblock(move || {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        }))
    }
}
