//! What every benchmark server answers, the same bytes whatever the implementation:
//! `/big...` gets a 1 MiB body, `/huge...` (ours only: the memory check) 1 GiB, anything
//! else `hello`; the request body is read to its end first.

use bytes::Bytes;
use fcgi_driver::server::{Handler, Request, Response};

/// The response head.
pub const HEAD: &[u8] = b"Content-Type: text/plain\r\n\r\n";
/// The small body.
pub const HELLO: &[u8] = b"hello";
/// The large body's size.
pub const BIG: usize = 1 << 20;
/// The memory check's body size.
pub const HUGE: usize = 1 << 30;

static CHUNK: [u8; 64 * 1024] = [b'x'; 64 * 1024];

/// Where a server listens: `tcp:HOST:PORT` or `unix:PATH` (the first argument).
pub enum Listen {
    /// A TCP address.
    Tcp(std::net::SocketAddr),
    /// A Unix socket path.
    Unix(std::path::PathBuf),
}

/// Reads the first argument.
pub fn listen_arg() -> Listen {
    let arg = std::env::args().nth(1).unwrap_or_default();
    if let Some(path) = arg.strip_prefix("unix:") {
        Listen::Unix(path.into())
    } else {
        let addr = arg.strip_prefix("tcp:").unwrap_or(&arg);
        Listen::Tcp(addr.parse().unwrap_or_else(|_| {
            eprintln!("usage: SERVER tcp:HOST:PORT|unix:PATH");
            std::process::exit(2)
        }))
    }
}

/// The benchmark application as an fcgi-driver handler.
pub fn hello() -> impl Handler {
    |mut req: Request, mut out: Response| async move {
        while let Some(piece) = req.stdin().chunk().await {
            if piece.is_err() {
                return 1;
            }
        }
        let uri = req.params().get(b"REQUEST_URI").unwrap_or_default();
        let size = if uri.starts_with(b"/big") {
            BIG
        } else if uri.starts_with(b"/huge") {
            HUGE
        } else {
            0
        };
        if out.stdout(Bytes::from_static(HEAD)).await.is_err() {
            return 1;
        }
        if size > 0 {
            for _ in 0..size / CHUNK.len() {
                if out.stdout(Bytes::from_static(&CHUNK)).await.is_err() {
                    return 1;
                }
            }
        } else if out.stdout(Bytes::from_static(HELLO)).await.is_err() {
            return 1;
        }
        0
    }
}
