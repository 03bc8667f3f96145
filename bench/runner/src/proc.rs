//! Processes of a run: started pinned to a CPU in a process group of their own, killed as a
//! group, and measured from `/proc` (CPU ticks of the whole group, peak resident memory).

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU ticks (user + system) of every process in process group `pgid`.
pub fn group_ticks(pgid: u32) -> u64 {
    let mut total = 0;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    for entry in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the command name (which may hold spaces) start after the last ')'.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // f[2] = pgrp, f[11] = utime, f[12] = stime (fields 5, 14, 15 of stat(5)).
        if f.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(pgid) {
            total += f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            total += f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    total
}

/// The server, killed (its whole process group) when dropped.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        // The whole group (php-fpm's workers too), by its id: never through a `kill`
        // command line, where a mistyped group id can read as -1 (every process).
        if let Some(pgid) = rustix::process::Pid::from_raw(self.0.id() as i32) {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
        let _ = self.0.wait();
    }
}

/// Starts `command` pinned to `cpu` (a `taskset` CPU list) in a process group of its own,
/// with its output discarded.
pub fn spawn_pinned(command: &Command, cpu: &str) -> Result<Running, String> {
    let mut pinned = Command::new("taskset");
    pinned
        .arg("-c")
        .arg(cpu)
        .arg(command.get_program())
        .args(command.get_args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => pinned.env(key, value),
            None => pinned.env_remove(key),
        };
    }
    pinned
        .spawn()
        .map(Running)
        .map_err(|e| format!("start {}: {e}", command.get_program().display()))
}

/// Waits (at most 15 s) until `ready` says so.
pub fn wait_until(what: &str, ready: impl Fn() -> bool) -> Result<(), String> {
    let until = Instant::now() + Duration::from_secs(15);
    while !ready() {
        if Instant::now() > until {
            return Err(format!("{what}: not ready after 15 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Resident memory (kB) of every process in group `pgid` (`VmRSS`).
pub fn group_rss_kib(pgid: u32) -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.flatten()
        .filter_map(|entry| {
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let rest = &stat[stat.rfind(')')? + 2..];
            let pgrp: u32 = rest.split_whitespace().nth(2)?.parse().ok()?;
            (pgrp == pgid).then(|| status_kib(&entry.path().join("status"), "VmRSS:"))
        })
        .flatten()
        .sum()
}

/// The largest resident memory (kB) process `pid` has had since it started or since
/// [`reset_peak`] (`VmHWM`).
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    status_kib(
        &std::path::Path::new("/proc")
            .join(pid.to_string())
            .join("status"),
        "VmHWM:",
    )
}

/// Resets process `pid`'s peak resident memory to its current one (`clear_refs` 5, Linux ≥
/// 4.0), so that [`peak_rss_kib`] measures from now on.
pub fn reset_peak(pid: u32) -> Result<(), String> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
        .map_err(|e| format!("cannot reset the peak RSS of {pid}: {e}"))
}

fn status_kib(path: &std::path::Path, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}
