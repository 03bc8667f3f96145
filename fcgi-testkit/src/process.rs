//! Child processes that never outlive their test: each peer runs in its own process group,
//! which is signalled as a whole (master and workers) and reaped on drop.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitId, WaitIdOptions, kill_process_group, waitid};

/// How long a stopped peer gets to exit on `SIGTERM` before its group gets `SIGKILL`.
const TERM_GRACE: Duration = Duration::from_secs(3);

/// A child process leading its own process group.
#[derive(Debug)]
pub struct GroupChild {
    name: String,
    child: Child,
    status: Option<ExitStatus>,
}

impl GroupChild {
    /// Spawns `cmd` as the leader of a new process group.
    pub fn spawn(name: &str, cmd: &mut Command) -> io::Result<Self> {
        cmd.process_group(0);
        let child = cmd
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("spawning {name}: {e}")))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            status: None,
        })
    }

    /// The process id (also the process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child, to take its pipes.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Whether the leader has exited. Does not reap it, so its pid (and so the group id)
    /// cannot be reused before [`stop`](Self::stop) signals the group.
    pub fn has_exited(&self) -> bool {
        if self.status.is_some() {
            return true;
        }
        let opts = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
        matches!(
            waitid(WaitId::Pid(Pid::from_child(&self.child)), opts),
            Ok(Some(_))
        )
    }

    /// Stops the whole group: `SIGTERM`, up to three seconds for the leader to exit, then
    /// `SIGKILL` for whatever is left of the group, then reaps the leader. Idempotent.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if self.status.is_some() {
            return self.status;
        }
        let pgid = Pid::from_child(&self.child);
        if !self.has_exited() {
            let _ = kill_process_group(pgid, Signal::TERM);
            let deadline = Instant::now() + TERM_GRACE;
            while !self.has_exited() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
        }
        // The leader is at most a zombie here, so the group id is still ours: workers that
        // outlived their master go too.
        let _ = kill_process_group(pgid, Signal::KILL);
        match self.child.wait() {
            Ok(status) => self.status = Some(status),
            Err(e) => eprintln!("fcgi-testkit: waiting for {}: {e}", self.name),
        }
        self.status
    }
}

impl Drop for GroupChild {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `cmd` to completion with `stdin` as its input, capturing stdout and stderr; kills it
/// (and its process group) if it runs longer than `timeout`.
pub fn run_bounded(cmd: &mut Command, stdin: Vec<u8>, timeout: Duration) -> io::Result<Output> {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = GroupChild::spawn(&format!("{cmd:?}"), cmd)?;
    let input = child.child_mut().stdin.take();
    let out = child.child_mut().stdout.take();
    let err = child.child_mut().stderr.take();
    let writer = thread::spawn(move || {
        if let Some(mut input) = input {
            // The program may exit without reading it all; that is its business.
            let _ = input.write_all(&stdin);
        }
    });
    let read_all = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = read_all(out.map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = read_all(err.map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + timeout;
    while !child.has_exited() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    let timed_out = !child.has_exited();
    let status = child.stop();
    let _ = writer.join();
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if timed_out {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "{cmd:?} ran longer than {timeout:?}; stderr: {}",
                String::from_utf8_lossy(&stderr)
            ),
        ));
    }
    let status = status.ok_or_else(|| io::Error::other("lost the exit status"))?;
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// A loopback TCP port that was free a moment ago (peers need a number in their config;
/// callers retry on the rare collision).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Polls `check` every 10 ms until it returns `Ok(true)`, fails with its `Err`, or
/// `timeout` passes.
pub fn wait_for(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<bool, String>,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if check()? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Whether something accepts TCP connections on `addr` (one connect with a short timeout).
pub fn accepts(addr: SocketAddr) -> bool {
    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(250)).is_ok()
}
