//! CPU time, three ways, for the edges of the measured window: this process's own
//! (`getrusage(RUSAGE_SELF)`, user and system apart), the backend's (`/proc/PID/stat`), and
//! the whole machine's (`/proc/stat`). The machine's minus the two is what other people's
//! work took meanwhile: the disturbance a run saw on this shared machine.
//!
//! (Time the kernel spends in softirq, where loopback TCP delivers packets, is accounted to
//! no process here, and is left out of the machine's figure too: `user + nice + system`.)

/// CPU time so far, in µs.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Times {
    /// This process, user mode.
    pub(crate) user: f64,
    /// This process, system mode.
    pub(crate) sys: f64,
    /// The backend process (user + system), if known.
    pub(crate) backend: f64,
    /// Every CPU of the machine, busy (user + nice + system).
    pub(crate) machine: f64,
}

impl Times {
    /// Now, for this process, the backend `backend_pid` and the machine.
    pub(crate) fn now(backend_pid: Option<u32>) -> Self {
        let (user, sys) = own_us();
        Self {
            user,
            sys,
            backend: backend_pid.and_then(process_us).unwrap_or(0.0),
            machine: machine_busy_us().unwrap_or(0.0),
        }
    }
}

/// User and system CPU time of this whole process so far, in µs (`getrusage(RUSAGE_SELF)`).
fn own_us() -> (f64, f64) {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a valid, writable `rusage`; RUSAGE_SELF is a valid `who`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return (0.0, 0.0);
    }
    // SAFETY: zero-initialised, and filled by a successful getrusage.
    let usage = unsafe { usage.assume_init() };
    let us = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    (us(usage.ru_utime), us(usage.ru_stime))
}

/// µs per clock tick of `/proc` (`sysconf(_SC_CLK_TCK)`, 100 Hz if unknown).
fn tick_us() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    1e6 / if hz > 0 { hz as f64 } else { 100.0 }
}

/// User + system time of process `pid`, in µs (`utime` and `stime` of `/proc/PID/stat`).
fn process_us(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5): 11 and 12 after the name.
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks * tick_us())
}

/// Busy time of every CPU so far (`user + nice + system` of `/proc/stat`'s `cpu` line), µs.
fn machine_busy_us() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: f64 = line
        .split_whitespace()
        .skip(1)
        .take(3)
        .filter_map(|v| v.parse::<f64>().ok())
        .sum();
    Some(ticks * tick_us())
}

/// The share of the machine's CPUs busy over `window` (the caller sleeps through it).
pub(crate) fn busy_share(window: std::time::Duration) -> f64 {
    let before = machine_busy_us().unwrap_or(0.0);
    std::thread::sleep(window);
    let after = machine_busy_us().unwrap_or(0.0);
    (after - before) / (window.as_secs_f64().max(1e-9) * 1e6 * cpus())
}

/// CPUs online in the machine (not this pinned process's one: `sysconf`), for the share
/// of the machine others used.
pub(crate) fn cpus() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n > 0 { n as f64 } else { 1.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_and_machine_times_move_forward() {
        let a = Times::now(Some(std::process::id()));
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let b = Times::now(Some(std::process::id()));
        assert!(b.user + b.sys > a.user + a.sys);
        assert!(b.machine >= a.machine && b.machine > 0.0);
        // Ticks of 10 ms: the process's own /proc figure may still read 0.
        assert!(b.backend >= a.backend);
    }
}
