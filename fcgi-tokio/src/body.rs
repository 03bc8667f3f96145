//! Request bodies from tokio readers.

use bytes::BytesMut;
use fcgi_driver::client::RequestBody;
use tokio::io::{AsyncRead, ReadBuf};

const PIECE: usize = 64 * 1024;

/// A streamed request body read from any tokio `AsyncRead` (a file, a socket, a pipe), in
/// pieces of up to 64 KiB, with back-pressure.
pub fn body_from_reader(reader: impl AsyncRead + Send + Unpin + 'static) -> RequestBody {
    let mut reader = reader;
    let mut buf = BytesMut::new();
    RequestBody::stream(futures_lite_stream(move |cx| {
        buf.resize(PIECE, 0);
        let mut rb = ReadBuf::new(&mut buf[..]);
        match std::pin::Pin::new(&mut reader).poll_read(cx, &mut rb) {
            std::task::Poll::Ready(Ok(())) => {
                let n = rb.filled().len();
                if n == 0 {
                    return std::task::Poll::Ready(None);
                }
                let piece = buf.split_to(n).freeze();
                std::task::Poll::Ready(Some(Ok(piece)))
            }
            std::task::Poll::Ready(Err(e)) => std::task::Poll::Ready(Some(Err(e))),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }))
}

/// A stream from a poll function.
fn futures_lite_stream<T, F>(f: F) -> PollStream<F>
where
    F: FnMut(&mut std::task::Context<'_>) -> std::task::Poll<Option<T>>,
{
    PollStream(f)
}

struct PollStream<F>(F);

impl<T, F> futures_core::Stream for PollStream<F>
where
    F: FnMut(&mut std::task::Context<'_>) -> std::task::Poll<Option<T>> + Unpin,
{
    type Item = T;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        (self.0)(cx)
    }
}
