//! tokio's spawner and timer for the driver.

use std::time::Duration;

use fcgi_driver::runtime::{BlockingWork, BoxFuture, Runtime};

/// The tokio runtime the current task runs on.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioRuntime;

impl Runtime for TokioRuntime {
    fn spawn(&self, future: BoxFuture<()>) {
        drop(tokio::spawn(future));
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        Box::pin(tokio::time::sleep(duration))
    }

    fn spawn_blocking(&self, work: BlockingWork) -> BoxFuture<()> {
        let task = tokio::task::spawn_blocking(work);
        Box::pin(async move {
            // A panic in `work` is reported by `unblock` (its result is missing).
            let _ = task.await;
        })
    }
}
