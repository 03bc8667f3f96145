//! Real web servers in front of the application: each `start` writes a config into a fresh
//! temporary directory, starts the server in the foreground on a free loopback port (its own
//! process group, environment cleared), waits (bounded) until it accepts connections, and
//! returns a [`RunningPeer`] that stops the whole process group when dropped.
//!
//! Every `start` returns `None` when the program is missing and the skip policy says to skip
//! (see [`crate::tools::require`]).

pub mod apache;
pub mod cgi_fcgi;
pub mod haproxy;
pub mod lighttpd;
pub mod nginx;
pub mod spawn_fcgi;

use std::fs::OpenOptions;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::http::{self, Request, Response};
use crate::process::{GroupChild, accepts, free_port, wait_for};
use crate::tools::PEER_PATH;

/// How long a peer may take to start accepting connections.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);

/// How many free ports to try (another process may grab a port between our probe and the
/// peer's bind).
const START_ATTEMPTS: usize = 3;

/// A running peer (web server or spawner).
#[derive(Debug)]
pub struct RunningPeer {
    // Dropped first: the processes go before their directory.
    process: GroupChild,
    name: &'static str,
    addr: SocketAddr,
    logs: Vec<PathBuf>,
    dir: tempfile::TempDir,
}

impl RunningPeer {
    /// What it is.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Where it listens (HTTP for web servers, FastCGI for spawn-fcgi).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its temporary directory (config, logs, pid file).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process group leader's pid.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Whether the leader process still runs.
    pub fn is_running(&self) -> bool {
        !self.process.has_exited()
    }

    /// Everything it logged so far: its error log(s) and its stdout/stderr.
    pub fn logs(&self) -> String {
        read_logs(&self.logs)
    }

    /// Waits (bounded) until its logs contain `needle`; panics with the logs otherwise.
    #[track_caller]
    pub fn expect_log(&self, needle: &str) {
        if wait_for("a log line", Duration::from_secs(10), || {
            Ok(self.logs().contains(needle))
        })
        .is_err()
        {
            panic!(
                "{}'s logs never contained {needle:?}:\n{}",
                self.name,
                self.logs()
            );
        }
    }

    /// Sends one HTTP request (new connection) and returns the response; panics with the
    /// peer's logs on an I/O or framing error.
    #[track_caller]
    pub fn send(&self, req: &Request) -> Response {
        match http::send(self.addr, req) {
            Ok(r) => r,
            Err(e) => panic!(
                "{} {} via {}: {e}\n{}",
                req.method,
                req.target,
                self.name,
                self.logs()
            ),
        }
    }

    /// Stops it now (also done on drop).
    pub fn stop(&mut self) {
        self.process.stop();
    }
}

impl Drop for RunningPeer {
    fn drop(&mut self) {
        self.process.stop();
        if std::thread::panicking() {
            eprintln!(
                "==== {} logs (test failed) ====\n{}",
                self.name,
                self.logs()
            );
        }
    }
}

/// A command for a peer binary with a cleared environment (only `PATH` and `LANG=C`), so the
/// test's environment (`FCGI_WEB_SERVER_ADDRS`, proxies, ...) does not leak into it.
pub fn peer_command(binary: &Path) -> Command {
    let mut cmd = Command::new(binary);
    cmd.env_clear().env("PATH", PEER_PATH).env("LANG", "C");
    cmd
}

/// A fresh temporary directory for a peer, readable by everyone (workers may drop root).
pub fn peer_dir(name: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix(&format!("fcgi-{name}-"))
        .tempdir()
        .expect("temporary directory");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod peer directory");
    dir
}

/// When a starting peer counts as ready.
#[derive(Debug, Clone, Copy)]
pub enum Ready<'a> {
    /// `127.0.0.1:port` accepts connections.
    Port,
    /// The port accepts connections and the logs contain this text.
    PortAndLog(&'a str),
    /// The logs contain this text (a peer that does not listen on the port).
    Log(&'a str),
}

/// Starts a peer: for up to three free ports, `prepare(port)` writes the config and returns
/// the command; the process's stdout and stderr go to `NAME.out` in `dir`; the peer is ready
/// when `ready` holds while the process still runs.
pub fn launch(
    name: &'static str,
    dir: tempfile::TempDir,
    mut logs: Vec<PathBuf>,
    ready: Ready<'_>,
    mut prepare: impl FnMut(u16) -> io::Result<Command>,
) -> io::Result<RunningPeer> {
    let out_path = dir.path().join(format!("{name}.out"));
    logs.push(out_path.clone());
    let mut failures = String::new();
    for _ in 0..START_ATTEMPTS {
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut cmd = prepare(port)?;
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&out_path)?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out));
        let mut process = GroupChild::spawn(name, &mut cmd)?;
        let started = wait_for(&format!("{name} to start ({addr})"), START_TIMEOUT, || {
            if process.has_exited() {
                return Err(format!("{name} exited during start-up"));
            }
            Ok(match ready {
                Ready::Port => accepts(addr),
                Ready::PortAndLog(needle) => read_logs(&logs).contains(needle) && accepts(addr),
                Ready::Log(needle) => read_logs(&logs).contains(needle),
            })
        })
        // Still running after it accepted: it was ours, not a port collision.
        .and_then(|()| {
            if process.has_exited() {
                Err(format!("{name} exited during start-up"))
            } else {
                Ok(())
            }
        });
        match started {
            Ok(()) => {
                return Ok(RunningPeer {
                    process,
                    name,
                    addr,
                    logs,
                    dir,
                });
            }
            Err(e) => {
                process.stop();
                failures.push_str(&format!("{e}\n{}\n", read_logs(&logs)));
            }
        }
    }
    Err(io::Error::other(format!(
        "{name} did not start after {START_ATTEMPTS} attempts:\n{failures}"
    )))
}

fn read_logs(paths: &[PathBuf]) -> String {
    let mut all = String::new();
    for path in paths {
        if let Ok(bytes) = std::fs::read(path) {
            all.push_str(&format!("--- {} ---\n", path.display()));
            all.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    all
}
