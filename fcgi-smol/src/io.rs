//! Any `futures-io` stream as a driver transport, and request bodies from `AsyncRead`s.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use fcgi_driver::client::RequestBody;
use fcgi_driver::runtime::Transport;
use futures_io::{AsyncRead, AsyncWrite};

/// How much a single read may bring in. `futures-io` reads need an initialised buffer, so
/// this is also the zeroing cost per read.
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

/// Appends one read's worth of bytes to `buf`.
fn read_into<R: AsyncRead + ?Sized>(
    reader: Pin<&mut R>,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
) -> Poll<io::Result<usize>> {
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
