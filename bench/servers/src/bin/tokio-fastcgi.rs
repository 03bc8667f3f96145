//! tokio-fastcgi 1.3 (crates.io) answering like every benchmark server. TCP only here.
use std::io::Read;

use fcgi_bench_servers::{BIG, HEAD, HELLO, Listen, listen_arg};
use tokio::net::TcpListener;
use tokio_fastcgi::{RequestResult, Requests};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let Listen::Tcp(addr) = listen_arg() else {
        eprintln!("tokio-fastcgi: TCP only here");
        std::process::exit(2);
    };
    let listener = TcpListener::bind(addr).await?;
    loop {
        let (mut stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let mut requests = Requests::from_split_socket(stream.split(), 16, 16);
            while let Ok(Some(request)) = requests.next().await {
                let _ = request
                    .process(|request| async move {
                        let mut sink = Vec::new();
                        let _ = request.get_stdin().read_to_end(&mut sink);
                        let big = request
                            .get_str_param("request_uri")
                            .or_else(|| request.get_str_param("REQUEST_URI"))
                            .is_some_and(|u| u.starts_with("/big"));
                        let mut out = request.get_stdout();
                        if out.write(HEAD).await.is_err() {
                            return RequestResult::Complete(1);
                        }
                        if big {
                            let chunk = vec![b'x'; 64 * 1024];
                            for _ in 0..BIG / chunk.len() {
                                if out.write(&chunk).await.is_err() {
                                    return RequestResult::Complete(1);
                                }
                            }
                        } else if out.write(HELLO).await.is_err() {
                            return RequestResult::Complete(1);
                        }
                        RequestResult::Complete(0)
                    })
                    .await;
            }
        });
    }
}
