//! The caller's side of a request in flight.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::conn::{ConnShared, Slot};
use super::error::{ClientError, TimeoutKind};
use super::pool::Pool;
use super::request::ClientRequest;
use crate::runtime::BoxFuture;
use crate::sync::lock;

/// Where a request runs: its connection and its entry there.
pub(crate) struct Attached {
    pub(crate) shared: Arc<Mutex<ConnShared>>,
    pub(crate) pool: Arc<Pool>,
    pub(crate) slot: Slot,
    /// The connection had served requests before (so it may have died while idle).
    pub(crate) reused: bool,
}

impl Attached {
    /// The response is done with the request (see [`ConnShared::release`]); the connection
    /// may take another one.
    fn release(&self) {
        lock(&self.shared).release(self.slot);
        self.pool.given_back(&self.shared);
    }
}

/// Re-sends a request (for the retry-once rule) and provides timers to responses.
pub(crate) trait Resend: Send + Sync + 'static {
    fn resend(
        self: Arc<Self>,
        request: ClientRequest,
        fresh: bool,
    ) -> BoxFuture<Result<(Attached, Option<ClientRequest>), ClientError>>;
    fn sleep(&self, duration: std::time::Duration) -> BoxFuture<()>;
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResponseEnd {
    /// The application status (what a CGI program would exit with).
    pub app_status: u32,
    /// The `STDERR` output not yet taken with [`ClientResponse::stderr_chunk`], up to the
    /// configured maximum.
    pub stderr: Bytes,
    /// `STDERR` bytes dropped beyond that maximum.
    pub stderr_dropped: usize,
}

/// A response being received. `STDOUT` is read piece by piece as it arrives
/// ([`chunk`](Self::chunk)); `STDERR` is kept aside (bounded) and readable separately or at
/// the end. Dropping it before the end aborts the request: `ABORT_REQUEST` on a multiplexed
/// connection, closing the connection otherwise — never a leaked connection or worker.
pub struct ClientResponse {
    pub(crate) attached: Attached,
    pub(crate) backend: Arc<dyn Resend>,
    /// The request itself, kept for the retry-once rule while it still applies.
    pub(crate) replay: Option<ClientRequest>,
    pub(crate) deadline: Option<Instant>,
    pub(crate) finished: bool,
    pub(crate) timer: Option<BoxFuture<()>>,
}

impl fmt::Debug for ClientResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientResponse")
            .field("id", &self.attached.slot.id)
            .field("finished", &self.finished)
            .finish()
    }
}

fn retryable(e: &ClientError) -> bool {
    matches!(e, ClientError::Truncated | ClientError::Io(_))
}

impl ClientResponse {
    /// The request id on its connection.
    pub fn id(&self) -> u16 {
        self.attached.slot.id
    }

    fn poll_deadline(&mut self, cx: &mut std::task::Context<'_>) -> Poll<ClientError> {
        let Some(at) = self.deadline else {
            return Poll::Pending;
        };
        let now = Instant::now();
        if now >= at {
            return Poll::Ready(ClientError::Timeout(TimeoutKind::Total));
        }
        if self.timer.is_none() {
            self.timer = Some(self.backend.sleep(at - now));
        }
        if let Some(t) = &mut self.timer
            && t.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(ClientError::Timeout(TimeoutKind::Total));
        }
        Poll::Pending
    }

    /// If the connection died before any response byte and the request can be replayed
    /// (and ran on a reused connection), sends it again on a fresh connection.
    async fn maybe_retry(&mut self, e: &ClientError) -> Option<Result<(), ClientError>> {
        if !retryable(e)
            || !self.attached.reused
            || lock(&self.attached.shared).got_output(self.attached.slot)
        {
            return None;
        }
        let request = self.replay.take()?;
        Some(
            match Arc::clone(&self.backend).resend(request, true).await {
                Ok((attached, replay)) => {
                    self.attached.release();
                    self.attached = attached;
                    // Never replayed twice: the retry-once rule.
                    drop(replay);
                    Ok(())
                }
                Err(e) => Err(e),
            },
        )
    }

    /// The next piece of `STDOUT`; `None` once the request ended successfully. A truncated
    /// response, a refusal (`OVERLOADED`, ...) or a timeout is an error, never a short success.
    pub async fn chunk(&mut self) -> Option<Result<Bytes, ClientError>> {
        loop {
            let r = std::future::poll_fn(|cx| {
                if let Poll::Ready(e) = self.poll_deadline(cx) {
                    return Poll::Ready(Some(Err(e)));
                }
                lock(&self.attached.shared).poll_stdout(self.attached.slot, cx)
            })
            .await;
            match r {
                Some(Err(e)) => match self.maybe_retry(&e).await {
                    Some(Ok(())) => continue,
                    Some(Err(e2)) => {
                        self.finished = true;
                        return Some(Err(e2));
                    }
                    None => {
                        self.finished = true;
                        return Some(Err(e));
                    }
                },
                None => {
                    self.finished = true;
                    return None;
                }
                Some(Ok(b)) => {
                    self.replay = None; // output arrived: never replay now
                    return Some(Ok(b));
                }
            }
        }
    }

    /// The next piece of `STDERR` received so far (waiting for one if none is there);
    /// `None` once the request ended and no kept stderr is left.
    pub async fn stderr_chunk(&mut self) -> Option<Bytes> {
        std::future::poll_fn(|cx| lock(&self.attached.shared).poll_stderr(self.attached.slot, cx))
            .await
    }

    /// Waits for the end of the request, discarding `STDOUT` not read yet.
    pub async fn finish(mut self) -> Result<ResponseEnd, ClientError> {
        loop {
            let r = std::future::poll_fn(|cx| {
                if let Poll::Ready(e) = self.poll_deadline(cx) {
                    return Poll::Ready(Err(e));
                }
                lock(&self.attached.shared).poll_end(self.attached.slot, cx)
            })
            .await;
            match r {
                Ok((app_status, pieces, stderr_dropped)) => {
                    self.finished = true;
                    let mut stderr = BytesMut::new();
                    for p in pieces {
                        stderr.extend_from_slice(&p);
                    }
                    return Ok(ResponseEnd {
                        app_status,
                        stderr: stderr.freeze(),
                        stderr_dropped,
                    });
                }
                Err(e) => match self.maybe_retry(&e).await {
                    Some(Ok(())) => continue,
                    Some(Err(e2)) => return Err(e2),
                    None => return Err(e),
                },
            }
        }
    }

    /// Reads the whole `STDOUT` (failing with `Io(InvalidData)` beyond `limit` bytes) and the
    /// end of the request.
    pub async fn collect(mut self, limit: usize) -> Result<(Bytes, ResponseEnd), ClientError> {
        let mut out = BytesMut::new();
        while let Some(piece) = self.chunk().await {
            let piece = piece?;
            if out.len() + piece.len() > limit {
                return Err(ClientError::Io(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "FastCGI response exceeds the limit",
                )));
            }
            out.extend_from_slice(&piece);
        }
        let end = self.finish().await?;
        Ok((out.freeze(), end))
    }
}

impl Drop for ClientResponse {
    fn drop(&mut self) {
        self.attached.release();
    }
}
