//! A request's handler task: runs the application's [`Handler`] and ends the request exactly
//! once — when it returns, when it is cancelled (abort, closed connection, shutdown
//! deadline), when it panics, or when the runtime drops the task.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use super::handler::{Handler, Request, Response};
use super::shared::{Cork, Shared, Ticket};
use super::state::ServerState;
use crate::stats::Token;
use crate::sync::lock;

/// Application status reported for a request whose handler was cancelled (abort, closed
/// connection, shutdown deadline) or panicked: what a shell reports for a process killed by
/// SIGTERM (128 + 15).
pub const CANCELLED_APP_STATUS: u32 = 143;

/// The request-ending half of a handler task.
pub(crate) struct HandlerTask {
    pub(crate) shared: Arc<Mutex<Shared>>,
    /// The connection's write coalescing (see [`Cork`]).
    pub(crate) cork: Arc<Cork>,
    pub(crate) state: Arc<ServerState>,
    pub(crate) ticket: Ticket,
    pub(crate) done: bool,
    /// Counts the task in [`ServerStats::handler_tasks`](super::ServerStats).
    pub(crate) _live: Token,
}

impl HandlerTask {
    /// Runs `handler` on the request unless it is cancelled first (see
    /// [`Shared::poll_cancelled`]), then ends the request. Each poll is corked: what the
    /// handler queues in it leaves in one write.
    pub(crate) async fn run<H: Handler>(
        mut self,
        handler: Arc<H>,
        request: Request,
        response: Response,
    ) {
        // Pinned in this future (which the driver boxes once), not boxed on its own: one
        // allocation per request fewer.
        let work = std::pin::pin!(handler.handle(request, response));
        let mut cancellable = Cancellable {
            work: CatchUnwind(work),
            shared: &self.shared,
            ticket: self.ticket,
        };
        let cork = &self.cork;
        let shared = &self.shared;
        let outcome = std::future::poll_fn(|cx| {
            let _corked = cork.enter(shared);
            Pin::new(&mut cancellable).poll(cx)
        })
        .await;
        let status = match outcome {
            Some(Ok(status)) => status,
            Some(Err(())) | None => CANCELLED_APP_STATUS,
        };
        self.end(status);
    }

    fn end(&mut self, app_status: u32) {
        if self.done {
            return;
        }
        self.done = true;
        lock(&self.shared).finish_ticket(self.ticket, app_status);
        self.state.release_request();
    }
}

impl Drop for HandlerTask {
    fn drop(&mut self) {
        self.end(CANCELLED_APP_STATUS);
    }
}

/// Polls `work` unless its request was cancelled; then drops it (cancellation by drop).
struct Cancellable<'a, F> {
    work: F,
    shared: &'a Mutex<Shared>,
    ticket: Ticket,
}

impl<F: Future + Unpin> Future for Cancellable<'_, F> {
    type Output = Option<F::Output>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if lock(self.shared).poll_cancelled(self.ticket, cx).is_ready() {
            return Poll::Ready(None);
        }
        Pin::new(&mut self.work).poll(cx).map(Some)
    }
}

/// Turns a panic in the handler into `Err(())`, so that one bad request cannot take an
/// executor thread (smol, async-std) down with it.
struct CatchUnwind<F>(F);

impl<F: Future> Future for CatchUnwind<Pin<&mut F>> {
    type Output = Result<F::Output, ()>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = self.0.as_mut();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.poll(cx)))
            .map_or(Poll::Ready(Err(())), |p| p.map(Ok))
    }
}
