//! What every benchmark server answers, the same bytes whatever the implementation:
//! `/big...` gets a 1 MiB body, anything else `hello`; the request body is read to its end
//! first.

use bytes::Bytes;
use fcgi_driver::server::{Handler, Request, Response};

/// The response head.
pub const HEAD: &[u8] = b"Content-Type: text/plain\r\n\r\n";
/// The small body.
pub const HELLO: &[u8] = b"hello";
/// The large body's size.
pub const BIG: usize = 1 << 20;

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
        let big = req
            .params()
            .get(b"REQUEST_URI")
            .is_some_and(|u| u.starts_with(b"/big"));
        if out.stdout(Bytes::from_static(HEAD)).await.is_err() {
            return 1;
        }
        if big {
            for _ in 0..BIG / CHUNK.len() {
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
