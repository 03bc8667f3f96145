//! FastCGI without async code: a handler is a plain function that reads the request body
//! with [`std::io::Read`] and writes the response with [`std::io::Write`], and
//! [`serve_tcp`] / [`serve_unix`] / [`serve_inherited`] answer FastCGI with it — as Go's
//! `fcgi.Serve` does.
//!
//! ```no_run
//! use std::io::Write;
//!
//! fn main() -> std::io::Result<()> {
//!     fcgi_smol::blocking::serve_tcp("127.0.0.1:9000".parse().unwrap(), |_req, out| {
//!         out.write_all(b"Content-Type: text/plain\r\n\r\nhello\n").map_or(1, |()| 0)
//!     })
//! }
//! ```
//!
//! A listener opened with `std::net` is served with [`serve`] and
//! [`Listener::from_std_tcp`] / [`Listener::from_std_unix`].
//!
//! Underneath it is the same server as everywhere else (fcgi-driver: every limit, timeout,
//! back-pressure rule, the lingering close), on [`thread_runtime`]: a thread per connection
//! (and per spawned task), timers and socket readiness from `async-io`. Each request's
//! handler runs on a thread of the `blocking` crate's pool, so a handler that blocks (a
//! database call, a file read) holds up nothing else; its reads and writes wait on the
//! connection like an async handler's do. A handler whose request is aborted or whose
//! connection closes is not stopped (a thread cannot be): its next read or write fails
//! with an error, and it should return then.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use fcgi_core::{Params, Role};
use fcgi_driver::server::{Request, Response, ServerOptions, ShutdownHandle};

use crate::{Listener, SmolRuntime};

/// A runtime that runs every spawned task on a thread of its own (driven by
/// `async_io::block_on`, which also drives the reactor): a thread per connection.
pub fn thread_runtime() -> SmolRuntime {
    SmolRuntime::new(|task| {
        // A task the system cannot give a thread to is dropped, which cancels it: a
        // connection then closes, a handler's request ends as cancelled.
        let _ = std::thread::Builder::new()
            .name("fcgi-connection".into())
            .spawn(move || async_io::block_on(task));
    })
}

/// The request as a blocking handler sees it: its params, and its body through
/// [`std::io::Read`].
#[derive(Debug)]
pub struct BlockingRequest {
    request: Request,
    /// What is left of the last body piece read.
    pending: Bytes,
}

impl BlockingRequest {
    /// The CGI variables: lookup by name, iteration in received order.
    pub fn params(&self) -> &Params {
        self.request.params()
    }

    /// The role asked for.
    pub fn role(&self) -> Role {
        self.request.role()
    }

    /// The request id.
    pub fn id(&self) -> u16 {
        self.request.id()
    }

    /// The async request underneath (for the `DATA` stream of a Filter, say).
    pub fn request_mut(&mut self) -> &mut Request {
        &mut self.request
    }
}

impl io::Read for BlockingRequest {
    /// Reads the request body (`STDIN`); `Ok(0)` at its end. An error means the request
    /// was aborted or its connection closed.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pending.is_empty() {
            match async_io::block_on(self.request.stdin().chunk()) {
                Some(Ok(piece)) => self.pending = piece,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending.split_to(n));
        Ok(n)
    }
}

/// The response as a blocking handler writes it: `STDOUT` through [`std::io::Write`]
/// (the CGI head first, then the body), `STDERR` through [`stderr`](Self::stderr).
#[derive(Debug)]
pub struct BlockingResponse {
    response: Response,
}

impl BlockingResponse {
    /// Writes to the error stream (`STDERR`: php-fpm's "Primary script unknown" travels
    /// there; web servers log it).
    pub fn stderr(&mut self, data: &[u8]) -> io::Result<()> {
        async_io::block_on(self.response.stderr(Bytes::copy_from_slice(data)))
    }
}

impl io::Write for BlockingResponse {
    /// Queues `buf` as `STDOUT`, waiting (with back-pressure) while the connection's
    /// transmit buffer is full. An error means the request was aborted or its connection
    /// closed.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        async_io::block_on(self.response.stdout(Bytes::copy_from_slice(buf)))?;
        Ok(buf.len())
    }

    /// Nothing to do: what is written is queued for the connection, which writes it out.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A blocking server: [`serve`](Self::serve) answers requests until the listener fails or
/// a [`ShutdownHandle`] stops it (gracefully: requests in flight are answered first, within
/// `ServerOptions::shutdown_timeout`).
#[derive(Debug)]
pub struct BlockingServer {
    server: crate::Server,
}

impl BlockingServer {
    /// A server with these options, on [`thread_runtime`].
    pub fn new(options: ServerOptions) -> Self {
        Self {
            server: crate::server(thread_runtime(), options),
        }
    }

    /// A handle that stops [`serve`](Self::serve) from any thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.server.shutdown_handle()
    }

    /// Serves `handler` on `listener`; returns when shut down (or the listener fails).
    /// The handler returns the application status (0 for success, as a CGI program's exit
    /// code).
    pub fn serve<F>(&self, listener: Listener, handler: F) -> io::Result<()>
    where
        F: Fn(&mut BlockingRequest, &mut BlockingResponse) -> u32 + Send + Sync + 'static,
    {
        let handler = Arc::new(handler);
        async_io::block_on(self.server.serve(listener, move |request, response| {
            let handler = Arc::clone(&handler);
            async move {
                blocking::unblock(move || {
                    let mut request = BlockingRequest {
                        request,
                        pending: Bytes::new(),
                    };
                    let mut response = BlockingResponse { response };
                    handler(&mut request, &mut response)
                })
                .await
            }
        }))
    }
}

/// Serves `handler` on `listener` with `options`, until the listener fails.
pub fn serve<F>(listener: Listener, options: ServerOptions, handler: F) -> io::Result<()>
where
    F: Fn(&mut BlockingRequest, &mut BlockingResponse) -> u32 + Send + Sync + 'static,
{
    BlockingServer::new(options).serve(listener, handler)
}

/// [`serve`] on a TCP address, with the default options.
pub fn serve_tcp<F>(addr: SocketAddr, handler: F) -> io::Result<()>
where
    F: Fn(&mut BlockingRequest, &mut BlockingResponse) -> u32 + Send + Sync + 'static,
{
    let listener = async_io::block_on(Listener::bind_tcp(addr))?;
    serve(listener, ServerOptions::default(), handler)
}

/// [`serve`] on a Unix socket path, with the default options.
pub fn serve_unix<F>(path: impl AsRef<Path>, handler: F) -> io::Result<()>
where
    F: Fn(&mut BlockingRequest, &mut BlockingResponse) -> u32 + Send + Sync + 'static,
{
    serve(
        Listener::bind_unix(path)?,
        ServerOptions::default(),
        handler,
    )
}

/// [`serve`] on the listening socket inherited as fd 0 (spawn-fcgi, mod_fcgid, systemd),
/// with the default options; `NotFound` when fd 0 is not a listening socket.
pub fn serve_inherited<F>(handler: F) -> io::Result<()>
where
    F: Fn(&mut BlockingRequest, &mut BlockingResponse) -> u32 + Send + Sync + 'static,
{
    let listener = Listener::inherited()?
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "fd 0 is not a listening socket"))?;
    serve(listener, ServerOptions::default(), handler)
}
