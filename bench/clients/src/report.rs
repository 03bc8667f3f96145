//! The markdown table: per client the mean of its runs, and the ratios to rama-fastcgi's
//! `send_on` (requests/s) and to the raw loop (requests/s and CPU per request); then each
//! run's figures and the first error seen, so that a disturbed run can be told apart.

use std::fmt::Write as _;

use crate::clients::connections_note;
use crate::measure::Outcome;

/// What one run measured, per request and per second.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Figures {
    /// Requests answered well per second.
    pub(crate) rps: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    /// Client CPU (user + system) per request, µs.
    pub(crate) cpu_us: f64,
    /// The system time's share of the client's CPU.
    pub(crate) sys_share: f64,
    /// Backend CPU per request, µs.
    pub(crate) backend_us: f64,
    /// Share of the machine's CPUs others used during the window.
    pub(crate) other_load: f64,
}

impl Figures {
    pub(crate) fn of(o: &Outcome) -> Self {
        let ok = o.requests.saturating_sub(o.errors) as f64;
        let per_request = |us: f64| {
            if o.requests > 0 {
                us / o.requests as f64
            } else {
                0.0
            }
        };
        let cpu = o.user_us + o.sys_us;
        Self {
            rps: ok / o.seconds.max(1e-9),
            p50_ms: o.p50_us as f64 / 1000.0,
            p99_ms: o.p99_us as f64 / 1000.0,
            cpu_us: per_request(cpu),
            sys_share: o.sys_us / cpu.max(1e-9),
            backend_us: per_request(o.backend_us),
            other_load: o.foreign_us / (o.seconds.max(1e-9) * 1e6 * o.cpus.max(1.0)),
        }
    }

    /// The mean of `runs`' figures.
    fn mean(runs: &[Outcome]) -> Self {
        let n = runs.len().max(1) as f64;
        let mut m = Self::default();
        for f in runs.iter().map(Self::of) {
            m.rps += f.rps / n;
            m.p50_ms += f.p50_ms / n;
            m.p99_ms += f.p99_ms / n;
            m.cpu_us += f.cpu_us / n;
            m.sys_share += f.sys_share / n;
            m.backend_us += f.backend_us / n;
            m.other_load += f.other_load / n;
        }
        m
    }
}

/// `a ÷ b` as `1.23×`, or `—` without a base.
fn ratio(a: f64, b: Option<f64>) -> String {
    match b {
        Some(b) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "—".to_owned(),
    }
}

/// The table for `results` (clients in that order); `about` is the paragraph above it.
pub(crate) fn table(results: &[(&str, Vec<Outcome>)], connections: usize, about: &str) -> String {
    let runs: Vec<&(&str, Vec<Outcome>)> = results
        .iter()
        .filter(|(_, runs)| !runs.is_empty())
        .collect();
    let means: Vec<(&str, Figures, u64)> = runs
        .iter()
        .map(|(name, runs)| {
            let errors = runs.iter().map(|o| o.errors + o.stuck).sum();
            (*name, Figures::mean(runs), errors)
        })
        .collect();
    let of = |name: &str| means.iter().find(|(n, ..)| *n == name).map(|(_, m, _)| *m);
    let rama = of("rama-fastcgi").map(|m| m.rps);
    let raw = of("raw");
    let mut t = format!("{about}\n\n");
    t.push_str(
        "| client | connections | req/s | p50 ms | p99 ms | client CPU µs/req | sys share | backend CPU µs/req | req/s ÷ rama-fastcgi | req/s ÷ raw | CPU ÷ raw | errors | others' load |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (name, m, errors) in &means {
        let _ = writeln!(
            t,
            "| {name} | {} | {:.0} | {:.3} | {:.3} | {:.2} | {:.0}% | {:.2} | {} | {} | {} | {errors} | {:.0}% |",
            connections_note(name, connections),
            m.rps,
            m.p50_ms,
            m.p99_ms,
            m.cpu_us,
            m.sys_share * 100.0,
            m.backend_us,
            ratio(m.rps, rama),
            ratio(m.rps, raw.map(|r| r.rps)),
            ratio(m.cpu_us, raw.map(|r| r.cpu_us)),
            m.other_load * 100.0,
        );
    }
    t.push_str("\nEach run (req/s / client CPU µs per request / others' load):");
    for (name, runs) in &runs {
        let each: Vec<String> = runs
            .iter()
            .map(|o| {
                let f = Figures::of(o);
                format!(
                    "{:.0} / {:.2} / {:.0}%",
                    f.rps,
                    f.cpu_us,
                    f.other_load * 100.0
                )
            })
            .collect();
        let _ = write!(t, " {name}: {};", each.join(", "));
    }
    t.pop();
    t.push('\n');
    for (name, runs) in &runs {
        if let Some(o) = runs.iter().find(|o| !o.first_error.is_empty()) {
            let _ = writeln!(t, "\n{name}'s first error: {}", o.first_error);
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(requests: u64, cpu_us: f64) -> Outcome {
        Outcome {
            requests,
            seconds: 1.0,
            user_us: cpu_us * 0.75,
            sys_us: cpu_us * 0.25,
            foreign_us: 500_000.0,
            cpus: 2.0,
            p50_us: 100,
            p99_us: 200,
            ..Outcome::default()
        }
    }

    #[test]
    fn ratios_against_rama_and_raw() {
        let results = vec![
            ("ours", vec![run(2000, 20_000.0)]),
            ("rama-fastcgi", vec![run(1000, 40_000.0)]),
            ("raw", vec![run(4000, 20_000.0)]),
        ];
        let t = table(&results, 16, "about");
        let ours = t
            .lines()
            .find(|l| l.starts_with("| ours"))
            .unwrap_or_default();
        assert!(ours.contains("| 2000 |"), "{ours}");
        assert!(ours.contains("| 2.00× | 0.50× | 2.00× |"), "{ours}");
        assert!(ours.contains("| 25% |"), "{ours}");
        assert!(ours.ends_with("| 0 | 25% |"), "{ours}");
    }

    #[test]
    fn no_base_no_ratio() {
        let t = table(&[("ours", vec![run(10, 10.0)])], 16, "about");
        assert!(t.contains("| — | — | — |"));
    }
}
