//! Any `futures-io` stream as a driver transport, and request bodies from `AsyncRead`s.

use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use fcgi_driver::client::RequestBody;
use fcgi_driver::runtime::Transport;
use futures_io::{AsyncRead, AsyncWrite};

/// How much a single read may bring in (the size of the per-thread scratch buffer).
const READ_CHUNK: usize = 32 * 1024;

/// Wraps any `futures-io` byte stream (async-net, async-std, a TLS stream, a mock) as a
/// connection the driver can pump.
#[derive(Debug)]
pub struct FuturesIo<T>(pub T);

impl<T> Transport for FuturesIo<T>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    fn poll_read_buf(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        read_into(Pin::new(&mut self.0), cx, buf)
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

thread_local! {
    /// One initialised read buffer per thread, zeroed once: a `futures-io` read needs an
    /// initialised slice, and zeroing a fresh one for every read (most of them bring a few
    /// hundred bytes, some only `Pending`) was 15% of a kept-alive request's server CPU
    /// (perf). Per thread rather than per connection, so idle connections hold none.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// Appends one read's worth of bytes to `buf`: read into the thread's scratch buffer, the
/// bytes read copied out (the copy costs what was read; zeroing cost the whole chunk).
fn read_into<R: AsyncRead + ?Sized>(
    reader: Pin<&mut R>,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
) -> Poll<io::Result<usize>> {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => {
            let r = reader.poll_read(cx, &mut scratch);
            if let Poll::Ready(Ok(n)) = &r {
                buf.extend_from_slice(&scratch[..*n]);
            }
            r
        }
        // In use (a reader whose poll reads another `FuturesIo` on this thread): a zeroed
        // chunk of `buf` itself.
        Err(_) => {
            let start = buf.len();
            buf.resize(start + READ_CHUNK, 0);
            let r = reader.poll_read(cx, &mut buf[start..]);
            let n = match &r {
                Poll::Ready(Ok(n)) => *n,
                _ => 0,
            };
            buf.truncate(start + n);
            r
        }
    })
}

/// A streamed request body read from any `futures-io` `AsyncRead`, in pieces of up to
/// 32 KiB, with back-pressure.
pub fn body_from_reader(reader: impl AsyncRead + Send + Unpin + 'static) -> RequestBody {
    RequestBody::stream(ReaderStream {
        reader,
        buf: BytesMut::new(),
    })
}

struct ReaderStream<R> {
    reader: R,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> futures_core::Stream for ReaderStream<R> {
    type Item = io::Result<bytes::Bytes>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match read_into(Pin::new(&mut this.reader), cx, &mut this.buf) {
            Poll::Ready(Ok(0)) => Poll::Ready(None),
            Poll::Ready(Ok(_)) => Poll::Ready(Some(Ok(this.buf.split().freeze()))),
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
#[allow(clippy::panic)] // test assertions
mod tests {
    use super::*;

    /// Gives its bytes in pieces of at most `piece`.
    struct Pieces {
        data: Vec<u8>,
        piece: usize,
    }

    impl AsyncRead for Pieces {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            out: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            let n = self.piece.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data.drain(..n);
            Poll::Ready(Ok(n))
        }
    }

    /// A reader whose own read goes through `read_into` on the same thread (the scratch
    /// buffer is then in use).
    struct Nested(Pieces);

    impl AsyncRead for Nested {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            out: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            let mut inner = BytesMut::new();
            let r = read_into(Pin::new(&mut self.0), cx, &mut inner);
            out[..inner.len()].copy_from_slice(&inner);
            r
        }
    }

    fn read_all(mut reader: Pin<&mut (impl AsyncRead + ?Sized)>) -> BytesMut {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut buf = BytesMut::from(&b"kept:"[..]);
        for _ in 0..1000 {
            match read_into(reader.as_mut(), &mut cx, &mut buf) {
                Poll::Ready(Ok(0)) => return buf,
                Poll::Ready(Ok(_)) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        panic!("never ended")
    }

    #[test]
    fn reads_append_exactly_what_arrived() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut reader = Pieces {
            data: data.clone(),
            piece: 7_000,
        };
        let buf = read_all(Pin::new(&mut reader));
        assert_eq!(&buf[..5], b"kept:");
        assert_eq!(&buf[5..], &data[..]);
    }

    #[test]
    fn a_read_inside_a_read_does_not_share_the_scratch_buffer() {
        let data = vec![9u8; 50_000];
        let mut reader = Nested(Pieces {
            data: data.clone(),
            piece: 1_000,
        });
        let buf = read_all(Pin::new(&mut reader));
        assert_eq!(&buf[5..], &data[..]);
    }
}
