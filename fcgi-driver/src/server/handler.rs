//! The application's view of a request: what it receives and how it answers.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use fcgi_core::{Params, Role};

use super::shared::{Shared, StreamKind, Ticket};
use crate::runtime::Peer;
use crate::sync::{NotifyWait, lock};

/// A FastCGI application: called once per request, concurrently for multiplexed requests.
///
/// It receives the [`Request`] (role, id, params, body streams) and a [`Response`] to stream
/// `STDOUT` and `STDERR` into, and returns the application status that ends the request (what
/// a CGI program would exit with; 0 for success). If the web server aborts the request or the
/// connection closes, the handler's future is dropped and the request is ended for it.
///
/// Any `Fn(Request, Response) -> impl Future<Output = u32>` is a handler:
///
/// ```
/// use fcgi_driver::server::{Request, Response};
/// async fn hello(_req: Request, mut out: Response) -> u32 {
///     match out.stdout("Content-Type: text/plain\r\n\r\nhello\n").await {
///         Ok(()) => 0,
///         Err(_) => 1,
///     }
/// }
/// fn assert_handler<H: fcgi_driver::server::Handler>(_: H) {}
/// assert_handler(hello);
/// ```
pub trait Handler: Send + Sync + 'static {
    /// Serves one request.
    fn handle(&self, request: Request, response: Response) -> impl Future<Output = u32> + Send;
}

impl<F, Fut> Handler for F
where
    F: Fn(Request, Response) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = u32> + Send,
{
    fn handle(&self, request: Request, response: Response) -> impl Future<Output = u32> + Send {
        self(request, response)
    }
}

/// One request, as the application sees it.
#[derive(Debug)]
pub struct Request {
    pub(crate) id: u16,
    pub(crate) role: Role,
    pub(crate) keep_conn: bool,
    pub(crate) params: Params,
    pub(crate) peer: Peer,
    pub(crate) stdin: Body,
    pub(crate) data: Body,
}

impl Request {
    /// The request id (unique among the connection's active requests).
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The role asked for.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether the web server keeps the connection open after this request.
    pub fn keep_conn(&self) -> bool {
        self.keep_conn
    }

    /// The CGI variables: lookup by name, iteration in received order.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The web server's address (the HTTP client's address is in `REMOTE_ADDR`).
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// The request body (`STDIN`); empty for an Authorizer.
    pub fn stdin(&mut self) -> &mut Body {
        &mut self.stdin
    }

    /// The file to filter (`DATA`); empty unless the role is Filter.
    pub fn data(&mut self) -> &mut Body {
        &mut self.data
    }

    /// Splits the request into its params and its two body streams.
    pub fn into_parts(self) -> (Params, Body, Body) {
        (self.params, self.stdin, self.data)
    }
}

/// An incoming byte stream of a request (`STDIN` or `DATA`), read with back-pressure:
/// while the application does not read, the connection stops reading from the socket once
/// its input budget is spent.
#[derive(Debug)]
pub struct Body {
    pub(crate) shared: Option<Arc<Mutex<Shared>>>,
    pub(crate) ticket: Ticket,
    pub(crate) kind: StreamKind,
}

impl Body {
    /// The next piece of the stream; `None` at its end. An error means the connection
    /// closed or the request was aborted before the stream ended.
    pub async fn chunk(&mut self) -> Option<io::Result<Bytes>> {
        std::future::poll_fn(|cx| self.poll_chunk(cx)).await
    }

    /// Poll version of [`chunk`](Self::chunk).
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        let Some(shared) = &self.shared else {
            return Poll::Ready(None);
        };
        lock(shared).poll_chunk(self.ticket, self.kind, cx)
    }

    /// Reads the whole stream, failing with `InvalidData` if it exceeds `limit` bytes.
    pub async fn to_vec(&mut self, limit: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(piece) = self.chunk().await {
            let piece = piece?;
            if out.len() + piece.len() > limit {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "body exceeds limit",
                ));
            }
            out.extend_from_slice(&piece);
        }
        Ok(out)
    }
}

impl futures_core::Stream for Body {
    type Item = io::Result<Bytes>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_chunk(cx)
    }
}

/// Where the application writes its answer: `STDOUT` and `STDERR`, interleaved freely, with
/// back-pressure (a write waits while the connection's transmit queue is full).
#[derive(Debug)]
pub struct Response {
    pub(crate) shared: Arc<Mutex<Shared>>,
    pub(crate) ticket: Ticket,
}

impl Response {
    /// The request id this response belongs to.
    pub fn id(&self) -> u16 {
        self.ticket.id
    }

    /// Writes response bytes (`STDOUT`: CGI headers, blank line, body).
    pub async fn stdout(&mut self, data: impl Into<Bytes>) -> io::Result<()> {
        self.write(StreamKind::Stdout, data.into()).await
    }

    /// Writes to the error stream (`STDERR`; web servers log it).
    pub async fn stderr(&mut self, data: impl Into<Bytes>) -> io::Result<()> {
        self.write(StreamKind::Stderr, data.into()).await
    }

    async fn write(&mut self, kind: StreamKind, data: Bytes) -> io::Result<()> {
        let mut data = Some(data);
        let mut wait = NotifyWait::default();
        std::future::poll_fn(|cx| {
            lock(&self.shared).poll_write(self.ticket, kind, &mut data, &mut wait, cx)
        })
        .await
    }
}
