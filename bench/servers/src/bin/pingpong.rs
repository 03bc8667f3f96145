//! The physical limit: a raw socket ping-pong with a FastCGI server's byte counts, on one
//! thread and one epoll loop (mio) — the fewest system calls an event-driven server can make.
//! It walks the records of each request without decoding them (but for a look for `/big` in
//! the params) and answers the request's empty `STDIN` record with prebuilt bytes.
use std::collections::HashMap;
use std::io::{self, Read, Write};

use fcgi_bench_servers::{BIG, HEAD, HELLO, Listen, listen_arg};
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Events, Interest, Poll, Token};

/// STDOUT records carrying the head and `body`, the empty STDOUT, END_REQUEST (id 1: every
/// client here sends one request at a time per connection).
fn answer(body: &[u8]) -> Vec<u8> {
    let mut stdout = HEAD.to_vec();
    stdout.extend_from_slice(body);
    let mut out = Vec::new();
    for piece in stdout.chunks(65528) {
        let len = (piece.len() as u16).to_be_bytes();
        let pad = (8 - piece.len() % 8) % 8;
        out.extend_from_slice(&[1, 6, 0, 1, len[0], len[1], pad as u8, 0]);
        out.extend_from_slice(piece);
        out.extend(std::iter::repeat_n(0, pad));
    }
    out.extend_from_slice(&[1, 6, 0, 1, 0, 0, 0, 0]);
    out.extend_from_slice(&[1, 3, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out
}

enum Sock {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Sock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.read(buf),
            Self::Unix(s) => s.read(buf),
        }
    }
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.write(buf),
            Self::Unix(s) => s.write(buf),
        }
    }
}

struct Conn {
    sock: Sock,
    input: Vec<u8>,
    output: Vec<u8>,
    sent: usize,
    keep: bool,
    big: bool,
    close_after_write: bool,
}

impl Conn {
    /// Walks the whole records received; queues an answer per ended request.
    fn process(&mut self, small: &[u8], big: &[u8]) {
        let mut at = 0;
        while self.input.len() - at >= 8 {
            let h = &self.input[at..at + 8];
            let (ty, len, pad) = (
                h[1],
                usize::from(u16::from_be_bytes([h[4], h[5]])),
                usize::from(h[6]),
            );
            if self.input.len() - at < 8 + len + pad {
                break;
            }
            let content = &self.input[at + 8..at + 8 + len];
            match ty {
                1 => self.keep = content.get(2).is_some_and(|f| f & 1 == 1),
                4 if len > 0 => self.big |= content.windows(4).any(|w| w == b"/big"),
                5 if len == 0 => {
                    self.output
                        .extend_from_slice(if self.big { big } else { small });
                    self.big = false;
                    self.close_after_write |= !self.keep;
                }
                _ => {}
            }
            at += 8 + len + pad;
        }
        self.input.drain(..at);
    }

    /// Writes what is queued; `Ok(true)` when all of it went out.
    fn flush(&mut self) -> io::Result<bool> {
        while self.sent < self.output.len() {
            match self.sock.write(&self.output[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        self.output.clear();
        self.sent = 0;
        Ok(true)
    }
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

fn main() -> io::Result<()> {
    let small = answer(HELLO);
    let big = answer(&vec![b'x'; BIG]);
    let mut poll = Poll::new()?;
    let mut listener = match listen_arg() {
        Listen::Tcp(addr) => Listener::Tcp(TcpListener::bind(addr)?),
        Listen::Unix(path) => {
            let _ = std::fs::remove_file(&path);
            Listener::Unix(UnixListener::bind(path)?)
        }
    };
    const LISTENER: Token = Token(0);
    match &mut listener {
        Listener::Tcp(l) => poll.registry().register(l, LISTENER, Interest::READABLE)?,
        Listener::Unix(l) => poll.registry().register(l, LISTENER, Interest::READABLE)?,
    }
    let mut conns: HashMap<Token, Conn> = HashMap::new();
    let mut next = 1usize;
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        poll.poll(&mut events, None)?;
        for event in &events {
            if event.token() == LISTENER {
                loop {
                    let sock = match &listener {
                        Listener::Tcp(l) => match l.accept() {
                            Ok((s, _)) => {
                                let _ = s.set_nodelay(true);
                                Sock::Tcp(s)
                            }
                            Err(_) => break,
                        },
                        Listener::Unix(l) => match l.accept() {
                            Ok((s, _)) => Sock::Unix(s),
                            Err(_) => break,
                        },
                    };
                    let token = Token(next);
                    next += 1;
                    let mut conn = Conn {
                        sock,
                        input: Vec::new(),
                        output: Vec::new(),
                        sent: 0,
                        keep: true,
                        big: false,
                        close_after_write: false,
                    };
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    let registered = match &mut conn.sock {
                        Sock::Tcp(s) => poll.registry().register(s, token, interest),
                        Sock::Unix(s) => poll.registry().register(s, token, interest),
                    };
                    if registered.is_ok() {
                        conns.insert(token, conn);
                    }
                }
                continue;
            }
            let token = event.token();
            let Some(conn) = conns.get_mut(&token) else {
                continue;
            };
            let mut done = false;
            if event.is_readable() {
                loop {
                    match conn.sock.read(&mut buf) {
                        Ok(0) => {
                            done = true;
                            break;
                        }
                        Ok(n) => conn.input.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => {
                            done = true;
                            break;
                        }
                    }
                }
                conn.process(&small, &big);
            }
            match conn.flush() {
                Ok(true) if conn.close_after_write => done = true,
                Ok(_) => {}
                Err(_) => done = true,
            }
            if done {
                conns.remove(&token);
            }
        }
    }
}
