//! rama-fastcgi 0.4 (crates.io) answering like every benchmark server. TCP only here.
use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use fcgi_bench_servers::{BIG, HEAD, HELLO, Listen, listen_arg};
use rama_core::service::service_fn;
use rama_fastcgi::FastCgiServer;
use rama_fastcgi::server::{FastCgiRequest, FastCgiResponse};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

async fn hello(mut req: FastCgiRequest) -> Result<FastCgiResponse, Infallible> {
    let mut sink = Vec::new();
    let _ = req.stdin.read_to_end(&mut sink).await;
    let big = req
        .param(b"REQUEST_URI")
        .is_some_and(|u| u.starts_with(b"/big"));
    let mut out = HEAD.to_vec();
    if big {
        out.resize(out.len() + BIG, b'x');
    } else {
        out.extend_from_slice(HELLO);
    }
    Ok(FastCgiResponse::new(Bytes::from(out)))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let Listen::Tcp(addr) = listen_arg() else {
        eprintln!("rama-fastcgi: TCP only here");
        std::process::exit(2);
    };
    let server = Arc::new(FastCgiServer::new(service_fn(hello)));
    let listener = TcpListener::bind(addr).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let server = Arc::clone(&server);
        tokio::spawn(async move {
            let _ = server.serve_connection(stream).await;
        });
    }
}
