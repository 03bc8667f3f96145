//! The read-ahead between a response head and the moment it is returned: a failure that is
//! already known then becomes a `502` instead of a response cut off after its status line.
//!
//! An HTTP server writes a response head only together with body bytes, or when the body has
//! nothing more for now; a body failing before that point makes hyper close the connection
//! with nothing written, and the client sees no status line at all. So before returning the
//! head, the gateway reads on, bounded:
//!
//! - until the first body bytes (or the end): a head alone gives the client nothing to use;
//! - then only what has already been received (nothing is waited for: a streaming response
//!   is never held back), up to [`READ_AHEAD_LIMIT`] bytes;
//! - up to `END_REQUEST`, when the whole response fits: then the body is checked against its
//!   `Content-Length` too.
//!
//! A failure found on the way (the connection closed or the stream ended inside a record, a
//! timeout, a body shorter than its `Content-Length`) is returned as a [`GatewayError`] (502,
//! or 504 for a timeout). A failure after the head went out ends the body with an error,
//! which an HTTP server turns into a visibly truncated response (see `GatewayBody`).

use std::future::Future;
use std::pin::pin;
use std::task::Poll;

use bytes::{Bytes, BytesMut};
use fcgi_driver::client::{ClientResponse, ResponseEnd};

use super::GatewayError;

/// At most this many body bytes are read ahead (kept in memory) before the head is returned.
pub(crate) const READ_AHEAD_LIMIT: usize = 64 * 1024;

/// What was read of a response body before its head is returned.
pub(crate) enum Ahead {
    /// The whole body: the request ended.
    Complete {
        /// The body.
        body: Bytes,
        /// How the request ended.
        end: ResponseEnd,
    },
    /// The body's first bytes; the rest is still to be read from `response`.
    Partial {
        /// The bytes read so far.
        first: Bytes,
        /// The response the rest streams from (boxed: it is much larger than the rest).
        response: Box<ClientResponse>,
    },
}

/// Reads ahead in `response`'s body (see the [module docs](self)); `first` are the body bytes
/// that came with the head, `announced` the head's `Content-Length`.
pub(crate) async fn read_ahead(
    first: Bytes,
    mut response: ClientResponse,
    announced: Option<u64>,
) -> Result<Ahead, GatewayError> {
    let mut held = Held::new(first);
    loop {
        if held.len() >= READ_AHEAD_LIMIT {
            return Ok(Ahead::Partial {
                first: held.into_bytes(),
                response: Box::new(response),
            });
        }
        let next = if held.len() == 0 {
            // Nothing to send with the head yet: wait for the first body bytes (bounded by
            // the client's read timeout).
            response.chunk().await
        } else {
            match already_received(response.chunk()).await {
                Some(next) => next,
                None => {
                    return Ok(Ahead::Partial {
                        first: held.into_bytes(),
                        response: Box::new(response),
                    });
                }
            }
        };
        match next {
            Some(Ok(piece)) => held.push(piece),
            Some(Err(error)) => return Err(error.into()),
            None => {
                // `STDOUT` ended with the request: the end is there already.
                let end = response.finish().await?;
                let body = held.into_bytes();
                if let Some(expected) = announced
                    && (body.len() as u64) < expected
                {
                    super::body::report(&end);
                    return Err(GatewayError::ShortBody {
                        expected,
                        received: body.len() as u64,
                    });
                }
                return Ok(Ahead::Complete { body, end });
            }
        }
    }
}

/// `future`'s output if it is ready now or after the runtime ran its other ready tasks once
/// (the connection's driver may be handling bytes that already arrived); `None` otherwise.
/// `ClientResponse::chunk` loses nothing when dropped unfinished.
async fn already_received<F: Future>(future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    let mut yielded = false;
    std::future::poll_fn(|cx| match future.as_mut().poll(cx) {
        Poll::Ready(output) => Poll::Ready(Some(output)),
        Poll::Pending if yielded => Poll::Ready(None),
        Poll::Pending => {
            // A yield, written here as the runtime-neutral two lines it is.
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

/// Body bytes held back: one piece without copying, several joined.
enum Held {
    One(Bytes),
    Many(BytesMut),
}

impl Held {
    fn new(first: Bytes) -> Self {
        Self::One(first)
    }

    fn len(&self) -> usize {
        match self {
            Self::One(b) => b.len(),
            Self::Many(b) => b.len(),
        }
    }

    fn push(&mut self, piece: Bytes) {
        match self {
            Self::One(b) if b.is_empty() => *b = piece,
            Self::One(b) => {
                let mut joined = BytesMut::with_capacity(b.len() + piece.len());
                joined.extend_from_slice(b);
                joined.extend_from_slice(&piece);
                *self = Self::Many(joined);
            }
            Self::Many(b) => b.extend_from_slice(&piece),
        }
    }

    fn into_bytes(self) -> Bytes {
        match self {
            Self::One(b) => b,
            Self::Many(b) => b.freeze(),
        }
    }
}
