#![doc = include_str!("../README.md")]
//!
//! ---
//!
//! The echo application: the reference FastCGI application that `fcgi echo` (the `fcgi`
//! command line tool) and the `echo` examples of fcgi-tokio and fcgi-smol serve, and that the
//! interop and conformance checks drive. One implementation, so every runtime answers byte
//! for byte the same. Point a web server at it to see exactly what it sends (its params, its
//! body), or use it as a known application in tests.
//!
//! It is runtime-neutral: [`handler`] is an `fcgi_driver` [`Handler`] for any
//! [`Runtime`].
//!
//! - Responder: `Status: 200 OK`, `Content-Type: text/plain`, then `role: responder`,
//!   `request-id: ID`, one `param: NAME=VALUE` line per param in received order (name and
//!   value byte for byte as received, UTF-8 or not),
//!   `stdin-length: N`, a blank line, and the N stdin bytes verbatim.
//!   Params that change it: `ECHO_STDERR=text` (also written to `STDERR`), `ECHO_STATUS=n`
//!   (the app status), `ECHO_SLEEP_MS=n` (≤ 5000, wait before answering), `ECHO_BODY_BYTES=n`
//!   (answer n bytes of `x` instead, streamed, never built in memory).
//! - Authorizer: `HTTP_AUTHORIZATION` = `Bearer let-me-in` → `Status: 200 OK` with
//!   `Variable-AUTH_USER: echo`; otherwise `Status: 403 Forbidden` and body `denied`.
//! - Filter: `data-length: N`, a blank line, then the DATA bytes verbatim.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::io;
use std::time::Duration;

use bytes::Bytes;
use fcgi_core::Role;

use fcgi_driver::runtime::Runtime;
use fcgi_driver::server::{Handler, Request, Response};

/// Largest request body the echo app buffers (it must know the length before answering).
pub const MAX_ECHO_BODY: usize = 256 * 1024 * 1024;

static XS: [u8; 64 * 1024] = [b'x'; 64 * 1024];

/// The echo application as a [`Handler`]; `rt` provides the timer for `ECHO_SLEEP_MS`.
pub fn handler<R: Runtime>(rt: R) -> impl Handler {
    move |req: Request, out: Response| {
        let rt = rt.clone();
        async move { serve(rt, req, out).await.unwrap_or(1) }
    }
}

fn param_number(req: &Request, name: &str) -> Option<u64> {
    req.params().get_str(name)?.trim().parse().ok()
}

async fn serve<R: Runtime>(rt: R, mut req: Request, mut out: Response) -> io::Result<u32> {
    let status = param_number(&req, "ECHO_STATUS").map_or(0, |n| n as u32);
    if let Some(text) = req.params().get(b"ECHO_STDERR") {
        out.stderr(Bytes::copy_from_slice(text)).await?;
    }
    match req.role() {
        Role::Authorizer => {
            let granted = req.params().get(b"HTTP_AUTHORIZATION") == Some(b"Bearer let-me-in");
            sleep_if_asked(&rt, &req).await;
            if granted {
                out.stdout("Status: 200 OK\r\nVariable-AUTH_USER: echo\r\n\r\n")
                    .await?;
            } else {
                out.stdout("Status: 403 Forbidden\r\nContent-Type: text/plain\r\n\r\ndenied")
                    .await?;
            }
        }
        Role::Filter => {
            // A Filter reads all of STDIN before it may write.
            while let Some(piece) = req.stdin().chunk().await {
                piece?;
            }
            let data = req.data().to_vec(MAX_ECHO_BODY).await?;
            sleep_if_asked(&rt, &req).await;
            out.stdout(format!(
                "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\ndata-length: {}\n\n",
                data.len()
            ))
            .await?;
            out.stdout(data).await?;
        }
        _ => {
            let body = req.stdin().to_vec(MAX_ECHO_BODY).await?;
            sleep_if_asked(&rt, &req).await;
            if let Some(n) = param_number(&req, "ECHO_BODY_BYTES") {
                out.stdout("Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n")
                    .await?;
                let mut left = n;
                while left > 0 {
                    let take = left.min(XS.len() as u64) as usize;
                    out.stdout(Bytes::from_static(&XS[..take])).await?;
                    left -= take as u64;
                }
                return Ok(status);
            }
            // Names and values exactly as received (they need not be UTF-8).
            let mut text = format!(
                "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nrole: responder\nrequest-id: {}\n",
                req.id()
            )
            .into_bytes();
            for (name, value) in req.params().iter() {
                text.extend_from_slice(b"param: ");
                text.extend_from_slice(name);
                text.push(b'=');
                text.extend_from_slice(value);
                text.push(b'\n');
            }
            text.extend_from_slice(format!("stdin-length: {}\n\n", body.len()).as_bytes());
            out.stdout(text).await?;
            if !body.is_empty() {
                out.stdout(body).await?;
            }
        }
    }
    Ok(status)
}

async fn sleep_if_asked<R: Runtime>(rt: &R, req: &Request) {
    if let Some(ms) = param_number(req, "ECHO_SLEEP_MS") {
        rt.sleep(Duration::from_millis(ms.min(5000))).await;
    }
}

/// Where an echo example listens, from its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenArg {
    /// `--tcp ADDR`.
    Tcp(std::net::SocketAddr),
    /// `--unix PATH`.
    Unix(std::path::PathBuf),
    /// No address: fd 0 must be a listening socket.
    Inherited,
}

/// Parses `[--tcp ADDR | --unix PATH]` (the arguments after the program name).
///
/// ```
/// use fcgi_echo::{ListenArg, parse_listen};
/// let args = ["--tcp".to_owned(), "127.0.0.1:9000".to_owned()];
/// assert_eq!(parse_listen(&args), Ok(ListenArg::Tcp("127.0.0.1:9000".parse().unwrap())));
/// assert_eq!(parse_listen(&[]), Ok(ListenArg::Inherited));
/// assert!(parse_listen(&["--tcp".to_owned()]).is_err());
/// ```
pub fn parse_listen(args: &[String]) -> Result<ListenArg, String> {
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["--tcp", addr] => addr
            .parse()
            .map(ListenArg::Tcp)
            .map_err(|e| format!("bad address {addr:?}: {e}")),
        ["--unix", path] => Ok(ListenArg::Unix(path.into())),
        [] => Ok(ListenArg::Inherited),
        _ => Err("usage: echo [--tcp ADDR | --unix PATH]".to_owned()),
    }
}
