//! The blocking server (`fcgi_smol::blocking`): plain-function handlers reading the body with
//! `Read` and writing with `Write`, served by the same driver — bodies both ways beyond every
//! buffer (back-pressure through blocking calls), sixteen requests at once (each handler on a
//! thread of its own), STDERR and the app status, and a graceful shutdown that ends `serve`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use fcgi_smol::blocking::{BlockingRequest, BlockingResponse, BlockingServer};
use fcgi_smol::client::{Backend, ClientOptions, ClientRequest};
use fcgi_smol::server::ServerOptions;
use fcgi_smol::{Listener, SmolRuntime};

/// Echoes the body back after a head; `STATUS` and `SAY` params set the app status and a
/// STDERR line.
fn echo(req: &mut BlockingRequest, out: &mut BlockingResponse) -> u32 {
    let mut body = Vec::new();
    if req.read_to_end(&mut body).is_err() {
        return 1;
    }
    if let Some(say) = req.params().get("SAY".as_bytes()) {
        let say = say.to_vec();
        if out.stderr(&say).is_err() {
            return 1;
        }
    }
    let head = format!(
        "Content-Type: application/octet-stream\r\nX-Len: {}\r\n\r\n",
        body.len()
    );
    if out.write_all(head.as_bytes()).is_err() || out.write_all(&body).is_err() {
        return 1;
    }
    req.params()
        .get_str("STATUS")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

struct Running {
    addr: SocketAddr,
    stop: fcgi_smol::server::ShutdownHandle,
    done: mpsc::Receiver<std::io::Result<()>>,
}

fn start() -> Running {
    // A listener opened with std::net, as a blocking program would.
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listener = Listener::from_std_tcp(std_listener).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = BlockingServer::new(ServerOptions::default());
    let stop = server.shutdown_handle();
    let (tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(server.serve(listener, echo));
    });
    Running { addr, stop, done }
}

fn client(addr: SocketAddr) -> fcgi_smol::Client {
    let rt = SmolRuntime::new(|task| smol::spawn(task).detach());
    fcgi_smol::client(rt, Backend::Tcp(addr), ClientOptions::default())
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn blocking_handlers_serve_bodies_both_ways_concurrently_and_stop_gracefully() {
    let server = start();
    let client = client(server.addr);
    smol::block_on(async {
        // 4 MiB each way: far beyond the input budget and the transmit buffer.
        let body = pattern(4 << 20);
        let request = ClientRequest::responder()
            .param("SAY", "hello stderr")
            .param("STATUS", "3")
            .stdin(body.clone());
        let response = client.send(request).await.unwrap();
        let (out, end) = response.collect(8 << 20).await.unwrap();
        let head = format!(
            "Content-Type: application/octet-stream\r\nX-Len: {}\r\n\r\n",
            body.len()
        );
        assert!(
            out.starts_with(head.as_bytes()),
            "{:?}",
            &out[..60.min(out.len())]
        );
        assert_eq!(&out[head.len()..], &body[..], "the body came back whole");
        assert_eq!(end.app_status, 3);
        assert_eq!(&end.stderr[..], b"hello stderr");

        // Sixteen at once, each on its own handler thread.
        let requests = (0..16).map(|i| {
            let client = client.clone();
            smol::spawn(async move {
                let body = pattern(1000 + i);
                let request = ClientRequest::responder().stdin(body.clone());
                let (out, end) = client.send(request).await?.collect(1 << 20).await?;
                Ok::<_, fcgi_smol::client::ClientError>((out, end.app_status, body))
            })
        });
        for task in requests.collect::<Vec<_>>() {
            let (out, status, body) = task.await.unwrap();
            assert_eq!(status, 0);
            assert!(out.ends_with(&body));
        }
    });
    server.stop.shutdown();
    let ended = server.done.recv_timeout(Duration::from_secs(15));
    assert!(
        matches!(ended, Ok(Ok(()))),
        "serve ends after shutdown: {ended:?}"
    );
}
