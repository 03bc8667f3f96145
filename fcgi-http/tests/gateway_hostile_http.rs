//! What an HTTP client sees when the FastCGI application fails around its response head: a
//! failure already known when the head would be sent is a `502`; a failure after the head
//! went out is a response visibly cut off (no last chunk, or fewer bytes than its
//! `Content-Length`), then the connection closes. The gateway is served by hyper and read with
//! a raw socket, so these are the bytes a real client gets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod mock_backend;

use std::sync::{Arc, Mutex};

use mock_backend::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

type Gate = Arc<Mutex<Option<oneshot::Receiver<()>>>>;

fn gate() -> (oneshot::Sender<()>, Gate) {
    let (tx, rx) = oneshot::channel();
    (tx, Arc::new(Mutex::new(Some(rx))))
}

/// A backend answering its one request with `first` (records written at once), then, when
/// `gate` opens, with `then`; then it closes the connection.
async fn scripted(
    first: Vec<u8>,
    gate: Option<Gate>,
    then: Vec<u8>,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    backend(
        1,
        Arc::new(move |_, mut sock| {
            let (first, then, gate) = (first.clone(), then.clone(), gate.clone());
            Box::pin(async move {
                if let Ok(Some(_)) = read_request(&mut sock).await {
                    let _ = sock.write_all(&first).await;
                    let rx = gate.and_then(|g| g.lock().unwrap().take());
                    if let Some(rx) = rx {
                        let _ = rx.await;
                    }
                    let _ = sock.write_all(&then).await;
                }
            })
        }),
    )
    .await
}

async fn through_http(backend_addr: std::net::SocketAddr, request: &str) -> String {
    let gw = gateway(backend_addr, |_| {});
    let (addr, server) = serve_http(gw).await;
    let answer = bounded(http_exchange(addr, request)).await;
    server.abort();
    String::from_utf8_lossy(&answer).into_owned()
}

fn status_line(answer: &str) -> &str {
    answer.lines().next().unwrap_or("")
}

/// The application writes its head and part of the body, then closes the connection (a
/// worker crash); all of it has arrived when the head would be sent: `502`, not a response
/// with no status line.
#[tokio::test]
async fn closing_after_the_head_and_part_of_the_body_is_a_502() {
    let head = recs(STDOUT, 1, b"Content-Type: text/plain\r\n\r\npartial body");
    let (addr, task) = scripted(head, None, Vec::new()).await;
    let answer = through_http(addr, &raw_get("/a.php")).await;
    assert_eq!(status_line(&answer), "HTTP/1.1 502 Bad Gateway", "{answer}");
    assert!(!answer.contains("partial body"), "{answer}");
    task.abort();
}

/// The stream ends inside a record (a header announcing 100 bytes, 10 of them sent, then the
/// connection closes), after the head and part of the body: `502`.
#[tokio::test]
async fn a_stream_ending_inside_a_record_is_a_502() {
    let mut out = recs(STDOUT, 1, b"Content-Type: text/plain\r\n\r\nsome body");
    out.extend_from_slice(&[1, STDOUT, 0, 1, 0, 100, 0, 0]);
    out.extend_from_slice(b"0123456789");
    let (addr, task) = scripted(out, None, Vec::new()).await;
    let answer = through_http(addr, &raw_get("/a.php")).await;
    assert_eq!(status_line(&answer), "HTTP/1.1 502 Bad Gateway", "{answer}");
    task.abort();
}

/// `Content-Length: 100` over a 3-byte body, then `END_REQUEST`: `502` (nginx's "upstream
/// prematurely closed"), never a 200 with a short body, nor nothing at all.
#[tokio::test]
async fn a_content_length_larger_than_the_body_is_a_502() {
    let out = full_answer(
        1,
        b"Content-Type: text/plain\r\nContent-Length: 100\r\n\r\nabc",
    );
    let (addr, task) = scripted(out, None, Vec::new()).await;
    let answer = through_http(addr, &raw_get("/a.php")).await;
    assert_eq!(status_line(&answer), "HTTP/1.1 502 Bad Gateway", "{answer}");
    task.abort();
}

/// Reads from `sock` into `seen` until `needle` appears (bounded by the test limit).
async fn read_until(sock: &mut TcpStream, seen: &mut Vec<u8>, needle: &[u8]) {
    let mut buf = [0u8; 4096];
    while !seen.windows(needle.len()).any(|w| w == needle) {
        let n = bounded(sock.read(&mut buf)).await.unwrap();
        assert!(
            n > 0,
            "closed before {:?}: {}",
            String::from_utf8_lossy(needle),
            String::from_utf8_lossy(seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
}

/// Reads from `sock` into `seen` until the server closes the connection.
async fn read_to_close(sock: &mut TcpStream, seen: &mut Vec<u8>) {
    let mut buf = [0u8; 4096];
    loop {
        match bounded(sock.read(&mut buf)).await {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// Runs one request whose backend writes `first`, and `then` only once the HTTP client has
/// received `marker`: returns everything the client received. Reaching `marker` at all shows
/// the read-ahead did not hold a streaming response back.
async fn streamed(first: Vec<u8>, marker: &[u8], then: Vec<u8>) -> String {
    let (open, gate) = gate();
    let (addr, task) = scripted(first, Some(gate), then).await;
    let (http, server) = serve_http(gateway(addr, |_| {})).await;
    let mut sock = TcpStream::connect(http).await.unwrap();
    sock.write_all(raw_get("/a.php").as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    read_until(&mut sock, &mut seen, marker).await;
    open.send(()).unwrap();
    read_to_close(&mut sock, &mut seen).await;
    server.abort();
    task.abort();
    String::from_utf8_lossy(&seen).into_owned()
}

/// A response streamed in two parts reaches the client part by part (the first before the
/// application writes the second) and ends properly.
#[tokio::test]
async fn a_streaming_response_is_not_held_back() {
    let first = recs(STDOUT, 1, b"Content-Type: text/plain\r\n\r\ntick one;");
    let mut then = recs(STDOUT, 1, b"tick two;");
    then.extend(full_answer(1, b""));
    let answer = streamed(first, b"tick one;", then).await;
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{answer}");
    assert!(answer.contains("tick two;"), "{answer}");
    assert!(
        answer.ends_with("\r\n0\r\n\r\n"),
        "not properly ended: {answer}"
    );
}

/// The connection closes after the head went out: the chunked body ends without its last
/// chunk, so the client can tell the response is incomplete.
#[tokio::test]
async fn a_failure_after_the_head_went_out_is_visibly_truncated_chunked() {
    let first = recs(STDOUT, 1, b"Content-Type: text/plain\r\n\r\nfirst part;");
    let then = recs(STDOUT, 1, b"second part;");
    let answer = streamed(first, b"first part;", then).await;
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{answer}");
    assert!(answer.contains("transfer-encoding: chunked"), "{answer}");
    assert!(
        !answer.ends_with("0\r\n\r\n"),
        "a cut-off body ended cleanly: {answer}"
    );
}

/// The same with a `Content-Length`: fewer body bytes than announced, then the close.
#[tokio::test]
async fn a_failure_after_the_head_went_out_is_visibly_truncated_with_a_length() {
    let first = recs(
        STDOUT,
        1,
        b"Content-Type: text/plain\r\nContent-Length: 1000\r\n\r\nfirst part;",
    );
    let then = recs(STDOUT, 1, b"second part;");
    let answer = streamed(first, b"first part;", then).await;
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{answer}");
    assert!(answer.contains("content-length: 1000"), "{answer}");
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    assert_eq!(body, "first part;second part;", "{answer}");
}

/// More body than the read-ahead holds, then the close, all at once: the failure is found
/// only after the head was returned, and hyper would drop the head it still holds if the body
/// failed at once; the client must get the status line and a visibly cut-off body.
#[tokio::test]
async fn a_large_body_cut_off_at_once_keeps_its_status_line() {
    let mut out = recs(STDOUT, 1, b"Content-Type: text/plain\r\n\r\n");
    out.extend(recs(STDOUT, 1, &vec![b'x'; 200 * 1024]));
    let (addr, task) = scripted(out, None, Vec::new()).await;
    let answer = through_http(addr, &raw_get("/a.php")).await;
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{:.200}", answer);
    assert!(
        !answer.ends_with("0\r\n\r\n"),
        "a cut-off body ended cleanly"
    );
    task.abort();
}

/// The application answers early: it reads none of a 16 MiB upload, sends a 4 MiB body and
/// ends the request while the upload is still arriving. The client, still sending, must get
/// the whole 4 MiB: the gateway reads the rest of the upload to its end in the background
/// (as nginx's lingering close does) instead of closing a socket with unread input, whose
/// reset would destroy response bytes the client has not read yet.
#[tokio::test]
async fn an_early_answer_during_a_large_upload_arrives_whole() {
    const ANSWER: usize = 4 << 20;
    const UPLOAD: usize = 16 << 20;
    let (addr, task) = backend(
        1,
        Arc::new(|_, mut sock| {
            Box::pin(async move {
                // BEGIN_REQUEST and the params, then answer at once.
                let mut params_ended = false;
                while !params_ended {
                    match read_rec(&mut sock).await {
                        Ok(Some(r)) => params_ended = r.ty == PARAMS && r.content.is_empty(),
                        _ => return,
                    }
                }
                let mut out = recs(STDOUT, 1, b"Content-Type: text/plain\r\n\r\n");
                out.extend(recs(STDOUT, 1, &vec![b'a'; ANSWER]));
                out.extend(full_answer(1, b""));
                let _ = sock.write_all(&out).await;
                // Then read whatever the gateway still sends, until it closes.
                let _ = wait_for_close_or_abort(&mut sock).await;
            })
        }),
    )
    .await;
    let (http, server) = serve_http(gateway(addr, |_| {})).await;
    let sock = TcpStream::connect(http).await.unwrap();
    let (mut reader, mut writer) = sock.into_split();
    let upload = tokio::spawn(async move {
        let head = format!(
            "POST /upload.php HTTP/1.1\r\nHost: gateway.test\r\nContent-Length: {UPLOAD}\r\n\r\n"
        );
        writer.write_all(head.as_bytes()).await?;
        let piece = vec![b'u'; 64 * 1024];
        for _ in 0..UPLOAD / piece.len() {
            writer.write_all(&piece).await?;
        }
        std::io::Result::Ok(writer)
    });
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    // Until the last chunk, or the server closes.
    while !seen.ends_with(b"\r\n0\r\n\r\n") {
        match bounded(reader.read(&mut buf)).await {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    let end = seen
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no response head");
    let head = String::from_utf8_lossy(&seen[..end]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    let body = &seen[end + 4..];
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    // The payload bytes: every 'a' (the chunk framing holds none).
    let decoded = body.iter().filter(|&&b| b == b'a').count();
    assert_eq!(decoded, ANSWER, "{head}");
    assert!(seen.ends_with(b"\r\n0\r\n\r\n"), "the response did not end");
    // And the whole upload was taken (the connection was not closed on the client).
    bounded(upload)
        .await
        .unwrap()
        .expect("the upload was cut off");
    server.abort();
    task.abort();
}
