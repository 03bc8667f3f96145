//! The backend every client talks to: C libfcgi's hello server, started fresh for each
//! measurement, pinned to CPU 0, in a process group of its own, and killed by that group's
//! id when dropped — through `kill(2)` with the id, never a `kill` command line, where a
//! mistyped negative number once meant every process of the machine.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a backend may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A running backend; killed (its whole process group) when dropped.
pub(crate) struct Backend(Child);

impl Backend {
    /// Starts `program 127.0.0.1:PORT` pinned to CPU 0 and waits until it accepts.
    pub(crate) fn start(program: &Path, port: u16) -> Result<Self, String> {
        let child = Command::new("taskset")
            .args(["-c", "0"])
            .arg(program)
            .arg(format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("start {}: {e}", program.display()))?;
        let mut backend = Self(child);
        let until = Instant::now() + START_TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = backend.0.try_wait() {
                return Err(format!("{} exited: {status}", program.display()));
            }
            if Instant::now() > until {
                return Err(format!("not listening after {} s", START_TIMEOUT.as_secs()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(backend)
    }
}

impl Backend {
    /// The backend's process id (`taskset` execs it: the same process).
    pub(crate) fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        kill_group(&self.0);
        let _ = self.0.wait();
    }
}

/// Kills the process group led by `child` (started with `process_group(0)`): SIGKILL to
/// the group id, checked to be a real, positive id.
pub(crate) fn kill_group(child: &Child) {
    let Ok(id) = i32::try_from(child.id()) else {
        return;
    };
    if let Some(pgid) = rustix::process::Pid::from_raw(id)
        && pgid.as_raw_nonzero().get() > 1
    {
        let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
    }
}

/// A port nobody listens on right now.
pub(crate) fn free_port() -> Option<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .ok()
}
