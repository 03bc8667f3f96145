//! `fcgi gateway` driven as a user drives it, with curl: out of the box (the echo
//! application in-process), HTTPS with certificate files, two backends one of which is dead,
//! and a php-fpm site. Started and stopped by PID (SIGTERM: a graceful stop, exit 0).
//! The PHP gateway's full demo (TLS self-signed, try-files, HTTP/2, graceful stop with a
//! request in flight) is `fcgi-http/examples/scripts/php_gateway.sh`.
//!
//! curl or php-fpm missing: `SKIPPED:` locally, a failure under `CI=true`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use fcgi_testkit::php_fpm::{Options, PhpFpm, Socket};

const FCGI: &str = env!("CARGO_BIN_EXE_fcgi");

/// curl, or `None` (skipped locally, a failure under `CI=true`).
fn curl_installed() -> bool {
    let found = Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "curl is not installed (apt-get install curl)"
        );
        eprintln!("SKIPPED: curl not installed (apt-get install curl)");
    }
    found
}

/// A running `fcgi gateway`, killed when dropped.
struct Gateway {
    child: Child,
    url: String,
    lines: mpsc::Receiver<String>,
}

impl Gateway {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(FCGI)
            .arg("gateway")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start fcgi gateway");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let first = lines
            .recv_timeout(Duration::from_secs(20))
            .expect("fcgi gateway printed nothing");
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://") || w.starts_with("https://"))
            .unwrap_or_else(|| panic!("no URL in {first:?}"))
            .trim_end_matches('/')
            .to_owned();
        Self { child, url, lines }
    }

    /// SIGTERM; the exit status, and whether it said it stopped.
    fn stop(mut self) -> (i32, bool) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The reader thread may still hold the last lines: read to its end (the pipe
                // is closed, so it ends).
                let mut said = false;
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
                    said |= line == "fcgi gateway: stopped";
                }
                return (status.code().unwrap_or(-1), said);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("fcgi gateway did not stop within 15 s of SIGTERM");
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `curl ARGS`: (status code, HTTP version, body).
fn curl(args: &[&str]) -> (u16, String, String) {
    let out: Output = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "-w",
            "\n%{http_code} %{http_version}",
        ])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').unwrap_or(("", &text));
    let (code, version) = tail.split_once(' ').unwrap_or((tail, ""));
    (
        code.parse().unwrap_or(0),
        version.to_owned(),
        body.to_owned(),
    )
}

#[test]
fn out_of_the_box_it_serves_the_echo_application() {
    if !curl_installed() {
        return;
    }
    let gw = Gateway::start(&[]);
    let (code, _, body) = curl(&["-d", "hello", &format!("{}/shop/cart.php/add?id=7", gw.url)]);
    assert_eq!(code, 200, "{body}");
    for line in [
        "role: responder",
        "param: SCRIPT_NAME=/shop/cart.php",
        "param: PATH_INFO=/add",
        "param: QUERY_STRING=id=7",
        "param: REQUEST_METHOD=POST",
        "param: REMOTE_ADDR=127.0.0.1",
        "stdin-length: 5",
    ] {
        assert!(body.contains(line), "missing {line:?}:\n{body}");
    }
    let (code, version, _) = curl(&["--http2-prior-knowledge", &format!("{}/x.php", gw.url)]);
    assert_eq!((code, version.as_str()), (200, "2"));
    assert_eq!(
        gw.stop(),
        (0, true),
        "SIGTERM: exit 0 after saying it stopped"
    );
}

#[test]
fn https_with_certificate_files() {
    if !curl_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let gw = Gateway::start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    assert!(gw.url.starts_with("https://"), "{}", gw.url);
    let port = gw.url.rsplit(':').next().unwrap().to_owned();
    let url = format!("https://localhost:{port}/index.php");
    let (code, version, body) = curl(&["--cacert", cert.to_str().unwrap(), &url]);
    assert_eq!((code, version.as_str()), (200, "2"), "{body}");
    assert!(body.contains("param: HTTPS=on"), "{body}");
    // Without the certificate, curl refuses: the verification above was real.
    let (code, _, _) = curl(&[&url]);
    assert_eq!(code, 0);
    assert_eq!(gw.stop().0, 0);
}

#[test]
fn bad_tls_files_and_arguments_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let junk = junk.to_str().unwrap();
    for args in [
        &["--tls-cert", junk, "--tls-key", junk][..],
        &["--tls-cert", junk][..],
        &["--backend", "nonsense"][..],
        &[
            "--front-controller",
            "index.php",
            "--try-files",
            "index.php",
        ][..],
        &["--try-files", "index.php"][..],
    ] {
        let out = Command::new(FCGI)
            .arg("gateway")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn php_fpm_behind_it_with_a_dead_second_backend() {
    if !curl_installed() {
        return;
    }
    let Some(fpm) = PhpFpm::start(Options::new(Socket::Tcp, 3)) else {
        return;
    };
    let root = fpm.docroot();
    std::fs::write(
        format!("{root}/hello.php"),
        "<?php\necho 'hello from ', $_SERVER['SERVER_NAME'], ' port ', $_SERVER['SERVER_PORT'];\n",
    )
    .unwrap();
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("tcp:{}", l.local_addr().unwrap())
    };
    let backends = format!("{dead},{}", fpm.addr().backend());
    let gw = Gateway::start(&["--backend", &backends, "--root", &root]);
    let port = gw.url.rsplit(':').next().unwrap().to_owned();
    let mut failed = 0;
    for _ in 0..20 {
        let (code, _, body) = curl(&["-H", "Host: shop.test", &format!("{}/hello.php", gw.url)]);
        match code {
            200 => assert_eq!(body, format!("hello from shop.test port {port}")),
            502 => failed += 1,
            other => panic!("status {other}: {body}"),
        }
    }
    assert!(failed <= 1, "{failed} of 20 requests failed");
    // A missing script: 404 from the local-root check, php-fpm never asked.
    let (code, _, _) = curl(&[&format!("{}/missing.php", gw.url)]);
    assert_eq!(code, 404);
    assert_eq!(gw.stop().0, 0);
}
