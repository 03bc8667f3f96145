//! The measured process (`fcgi-bench-client __run ...`, started pinned by the parent): one
//! client, `connections` worker tasks each sending one request at a time, a warm-up, then
//! the measured window, and one result line on stdout for the parent.
//!
//! The window is framed by the main task: after the warm-up it takes a snapshot (requests
//! done, errors, the clock, CPU times: see `cpu.rs`) and opens the latency histogram; after
//! `secs` it takes the second snapshot and tells the workers to stop. Requests are counted as they complete, so a request begun in the warm-up and ended
//! in the window counts in the window (as one in flight at its end does not: the same at
//! both ends). Workers still running 10 s after the stop are aborted and counted as `stuck`
//! (that bounds every request's wait without a timer per request, which would be part of
//! what is measured).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::clients::{EXPECTED_STDOUT, FastcgiClient, Ours, Rama, Raw, Session};
use crate::cpu;

/// Longest latency the histogram records exactly (longer ones are clamped).
const MAX_LATENCY_US: u64 = 60_000_000;
/// How long the workers get to finish their last request after the window.
const DRAIN: Duration = Duration::from_secs(10);
/// Pause after a second failed request in a row (a dead backend must not make a worker
/// spin).
const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// Which tokio scheduler runs the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// `new_current_thread`: everything on the process's one thread.
    CurrentThread,
    /// `new_multi_thread` with one worker thread (the main thread only waits).
    MultiThread1,
}

impl Flavor {
    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text {
            "current" => Some(Self::CurrentThread),
            "multi1" => Some(Self::MultiThread1),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::CurrentThread => "current",
            Self::MultiThread1 => "multi1",
        }
    }
}

/// What the child is asked to do.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) client: String,
    pub(crate) addr: SocketAddr,
    pub(crate) connections: usize,
    pub(crate) warmup: Duration,
    pub(crate) secs: Duration,
    pub(crate) flavor: Flavor,
    /// The backend's process id, for its CPU time.
    pub(crate) backend_pid: Option<u32>,
}

/// The window's result, as the child prints it and the parent reads it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outcome {
    /// Requests ended in the window, failed ones included.
    pub(crate) requests: u64,
    /// Requests failed in the window.
    pub(crate) errors: u64,
    /// Workers aborted, their request unanswered 10 s after the window.
    pub(crate) stuck: u64,
    pub(crate) seconds: f64,
    /// This process's CPU time in the window, user and system.
    pub(crate) user_us: f64,
    pub(crate) sys_us: f64,
    /// The backend's CPU time in the window.
    pub(crate) backend_us: f64,
    /// CPU time of everything else on the machine in the window.
    pub(crate) foreign_us: f64,
    /// CPUs of the machine.
    pub(crate) cpus: f64,
    pub(crate) p50_us: u64,
    pub(crate) p99_us: u64,
    /// The first error's text, if any (for the log).
    pub(crate) first_error: String,
}

impl Outcome {
    /// One line of `key=value` fields (the error text last: it may hold spaces).
    pub(crate) fn to_line(&self) -> String {
        format!(
            "requests={} errors={} stuck={} seconds={:.6} user_us={:.0} sys_us={:.0} backend_us={:.0} foreign_us={:.0} cpus={} p50_us={} p99_us={} first_error={}",
            self.requests,
            self.errors,
            self.stuck,
            self.seconds,
            self.user_us,
            self.sys_us,
            self.backend_us,
            self.foreign_us,
            self.cpus,
            self.p50_us,
            self.p99_us,
            self.first_error.replace('\n', " ")
        )
    }

    /// Reads [`to_line`](Self::to_line)'s format back; `None` if a number is missing.
    pub(crate) fn from_line(line: &str) -> Option<Self> {
        let (numbers, first_error) = line.split_once(" first_error=")?;
        let field = |key: &str| {
            numbers
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        };
        let int = |key: &str| field(key)?.parse::<u64>().ok();
        let float = |key: &str| field(key)?.parse::<f64>().ok();
        Some(Self {
            requests: int("requests")?,
            errors: int("errors")?,
            stuck: int("stuck")?,
            seconds: float("seconds")?,
            user_us: float("user_us")?,
            sys_us: float("sys_us")?,
            backend_us: float("backend_us")?,
            foreign_us: float("foreign_us")?,
            cpus: float("cpus")?,
            p50_us: int("p50_us")?,
            p99_us: int("p99_us")?,
            first_error: first_error.trim().to_owned(),
        })
    }
}

/// Shared between the main task and the workers.
#[derive(Default)]
struct Control {
    stop: AtomicBool,
    measuring: AtomicBool,
    done: AtomicU64,
    failed: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

/// A worker's latency histogram.
struct Tally {
    latency: Histogram<u64>,
}

/// Runs `job` and returns the window's result (an error if the runtime cannot start).
pub(crate) fn run(job: &Job) -> Result<Outcome, String> {
    let runtime = match job.flavor {
        Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Flavor::MultiThread1 => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build(),
    }
    .map_err(|e| format!("tokio runtime: {e}"))?;
    let empty = Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).map_err(|e| e.to_string())?;
    // Everything, the main task too, runs as a task: with the multi-thread flavour the
    // main thread then only waits.
    let job = job.clone();
    runtime
        .block_on(async move {
            tokio::spawn(async move { window(&job, empty).await })
                .await
                .map_err(|e| format!("main task: {e}"))
        })
        .and_then(|r| r)
}

/// Starts the workers, frames the window, collects the result.
async fn window(job: &Job, empty: Histogram<u64>) -> Result<Outcome, String> {
    let control = Arc::new(Control::default());
    let mut workers = tokio::task::JoinSet::new();
    let ours = (job.client == "ours").then(|| Ours::client(job.addr, job.connections));
    for _ in 0..job.connections {
        let (control, empty) = (Arc::clone(&control), empty.clone());
        match job.client.as_str() {
            "ours" => {
                let client = ours.clone().ok_or("no client")?;
                workers.spawn(worker(Ours::new(client), control, empty))
            }
            "rama-fastcgi" => workers.spawn(worker(Rama::new(job.addr), control, empty)),
            "fastcgi-client" => workers.spawn(worker(FastcgiClient::new(job.addr), control, empty)),
            "raw" => workers.spawn(worker(Raw::new(job.addr), control, empty)),
            other => return Err(format!("unknown client {other}")),
        };
    }
    tokio::time::sleep(job.warmup).await;
    let before = Snapshot::take(&control, job.backend_pid);
    control.measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(job.secs).await;
    control.measuring.store(false, Ordering::Relaxed);
    let after = Snapshot::take(&control, job.backend_pid);
    control.stop.store(true, Ordering::Relaxed);
    let (latency, stuck) = drain(&mut workers, empty).await;
    let first_error = control
        .first_error
        .lock()
        .map(|e| e.clone().unwrap_or_default())
        .unwrap_or_default();
    Ok(Outcome {
        requests: after.done - before.done,
        errors: after.failed - before.failed,
        stuck,
        seconds: (after.at - before.at).as_secs_f64(),
        user_us: after.cpu.user - before.cpu.user,
        sys_us: after.cpu.sys - before.cpu.sys,
        backend_us: after.cpu.backend - before.cpu.backend,
        foreign_us: ((after.cpu.machine - before.cpu.machine)
            - (after.cpu.user + after.cpu.sys - before.cpu.user - before.cpu.sys)
            - (after.cpu.backend - before.cpu.backend))
            .max(0.0),
        cpus: cpu::cpus(),
        p50_us: latency.value_at_quantile(0.5),
        p99_us: latency.value_at_quantile(0.99),
        first_error,
    })
}

/// Waits (at most [`DRAIN`]) for the workers; merges their histograms. Returns the merged
/// histogram and how many workers had to be aborted.
async fn drain(
    workers: &mut tokio::task::JoinSet<Tally>,
    mut latency: Histogram<u64>,
) -> (Histogram<u64>, u64) {
    let deadline = tokio::time::Instant::now() + DRAIN;
    while let Ok(Some(joined)) = tokio::time::timeout_at(deadline, workers.join_next()).await {
        if let Ok(tally) = joined {
            // Same bounds: adding cannot fail.
            let _ = latency.add(&tally.latency);
        }
    }
    let stuck = workers.len() as u64;
    workers.abort_all();
    (latency, stuck)
}

/// The counters and clocks at one edge of the window.
struct Snapshot {
    done: u64,
    failed: u64,
    at: Instant,
    cpu: cpu::Times,
}

impl Snapshot {
    fn take(control: &Control, backend_pid: Option<u32>) -> Self {
        Self {
            done: control.done.load(Ordering::Relaxed),
            failed: control.failed.load(Ordering::Relaxed),
            at: Instant::now(),
            cpu: cpu::Times::now(backend_pid),
        }
    }
}

/// One worker: requests one after the other until told to stop.
async fn worker<S: Session>(mut session: S, control: Arc<Control>, empty: Histogram<u64>) -> Tally {
    let mut tally = Tally { latency: empty };
    let mut failing = 0u32;
    while !control.stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let outcome = match session.request().await {
            Ok(EXPECTED_STDOUT) => Ok(()),
            Ok(n) => Err(format!("{n} bytes of STDOUT, {EXPECTED_STDOUT} expected")),
            Err(e) => Err(e),
        };
        if control.measuring.load(Ordering::Relaxed) {
            let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            tally.latency.saturating_record(us.clamp(1, MAX_LATENCY_US));
        }
        control.done.fetch_add(1, Ordering::Relaxed);
        let Err(e) = outcome else {
            failing = 0;
            continue;
        };
        control.failed.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut first) = control.first_error.lock() {
            first.get_or_insert(e);
        }
        session.reset();
        // A lost connection costs a reconnect; a second failure in a row (the backend
        // gone) a pause too.
        failing += 1;
        if failing > 1 {
            tokio::time::sleep(ERROR_PAUSE).await;
        }
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_line_round_trip() {
        let o = Outcome {
            requests: 10,
            errors: 2,
            stuck: 1,
            seconds: 3.0,
            user_us: 5.0,
            sys_us: 6.0,
            backend_us: 9.0,
            foreign_us: 10.0,
            cpus: 2.0,
            p50_us: 7,
            p99_us: 8,
            first_error: "read: connection reset".into(),
        };
        let back = Outcome::from_line(&o.to_line());
        assert!(back.is_some_and(|b| b.requests == 10
            && b.stuck == 1
            && b.p99_us == 8
            && b.foreign_us == 10.0
            && b.first_error == "read: connection reset"));
        assert!(Outcome::from_line("garbage").is_none());
    }
}
