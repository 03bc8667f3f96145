//! Real php-fpm as the FastCGI **application**, for testing our **client** on any runtime.
//!
//! [`PhpFpm::start`] writes a php-fpm configuration and a small document root of test
//! scripts ([`scripts`]) into a fresh temporary directory, starts `php-fpm -n -F [-R] -y CONF`
//! in its own process group (environment cleared, no `php.ini`: every PHP setting the tests
//! depend on is pinned in the pool), and waits, bounded, until php-fpm logs that it is ready.
//! The pool is `pm = static` with a small `pm.max_children`, `clear_env = yes`,
//! `catch_workers_output = yes`, and listens on a free loopback TCP port or on a Unix socket
//! in the temporary directory. [`PhpFpm::stop`] and [`PhpFpm::restart`] (same address) stop
//! the whole process group by its id and wait until no process of it is left running, so
//! every connection to the old workers is closed when they return.
//!
//! Nothing here depends on an async runtime; the scenarios themselves, generic over the
//! runtime adapter, are in [`crate::php_fpm_suite`](mod@crate::php_fpm_suite).
//!
//! Skip policy: [`require_php_fpm`] (called by [`PhpFpm::start`]) fails under `CI=true` when
//! php-fpm is missing, and otherwise prints
//! `SKIPPED: php-fpm not installed (apt-get install php8.2-fpm)` and returns `None`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::app::AppAddr;
use crate::peers::{peer_command, peer_dir};
use crate::process::{GroupChild, free_port, wait_for};
use crate::tools::{Tool, find_binary, is_root, missing};

/// Debian's php-fpm 8.2 (`php-fpm8.2`); `php-fpm` and any `/usr/sbin/php-fpm*` are accepted
/// too, see [`find_php_fpm`].
pub const PHP_FPM: Tool = Tool {
    name: "php-fpm",
    binary: "php-fpm8.2",
    package: "php8.2-fpm",
};

/// The pool's `pm.status_path`: a request whose `SCRIPT_NAME` and `REQUEST_URI` are this path
/// gets php-fpm's plain-text status page (see [`parse_status`]).
pub const STATUS_PATH: &str = "/status";

/// The text php-fpm logs once it accepts requests.
const READY_LINE: &str = "ready to handle connections";

/// How long php-fpm may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// How long the processes of a stopped php-fpm may take to be gone.
const GONE_TIMEOUT: Duration = Duration::from_secs(10);

/// Start attempts (a free TCP port may be taken between our probe and php-fpm's bind).
const START_ATTEMPTS: usize = 3;

/// The test scripts written into every document root (file name, PHP source).
///
/// Each one is small and deterministic:
///
/// - `/server.php`: one line per `$_SERVER` entry, `server NAME=VALUE`, then one per
///   `$_GET` entry, `get NAME=VALUE`, then `pid=<worker pid>`. Control characters and
///   backslashes in values are escaped C-style (`addcslashes`), so every entry is one line;
///   [`parse_lines`] reads them back.
/// - `/post.php`: reads `php://input` and prints `method=`, `content_type=`,
///   `content_length=`, `len=` (bytes read) and `sha1=` (hex) lines. Logged in
///   [`PhpFpm::hits`] as `post`.
/// - `/stream.php?chunks=N&size=S[&marker=M&wait_at=K]`: `Content-Type:
///   application/octet-stream`, then N chunks of S bytes, chunk `i` being byte `i % 256`
///   repeated, each followed by `flush()`. With a marker, before chunk K it waits (up to
///   10 s) for the marker file `M` ([`PhpFpm::set_marker`]); if it never appears it prints
///   `MARKER-TIMEOUT` and stops, so a test that waits on the marker fails on the content,
///   never on a clock.
/// - `/stderr.php?marker=M`: `out 1\n` on stdout and `error_log('err 1')`, flush; waits for
///   marker `M`; then `out 2\n` and `error_log('err 2')`, flush; then `out 3\n`.
/// - `/pid.php`: the worker's pid (`getmypid()`) and nothing else. Logged in
///   [`PhpFpm::hits`] as `pid`.
/// - `/wait.php?marker=M`: waits for marker `M`, then prints the worker's pid (or
///   `MARKER-TIMEOUT`): a request that stays in flight until the test lets it go.
/// - `/sleep.php?ms=T[&tick=P]`: sleeps T ms, printing and flushing a `.` every P ms when
///   `tick` is given, then prints `done`.
pub fn scripts() -> &'static [(&'static str, &'static str)] {
    &[
        ("_lib.php", LIB_PHP),
        ("server.php", SERVER_PHP),
        ("post.php", POST_PHP),
        ("stream.php", STREAM_PHP),
        ("stderr.php", STDERR_PHP),
        ("pid.php", PID_PHP),
        ("wait.php", WAIT_PHP),
        ("sleep.php", SLEEP_PHP),
    ]
}

const LIB_PHP: &str = r#"<?php
// Waits (at most 10 s) for the marker file the test writes; false if it never came.
function wait_marker(string $name): bool {
    $path = __DIR__ . '/../markers/' . basename($name);
    for ($i = 0; $i < 1000; $i++) {
        clearstatcache();
        if ($name !== '' && is_file($path)) {
            return true;
        }
        usleep(10000);
    }
    return false;
}
// Appends "SCRIPT PID" to DIR/hits.log: every execution, counted on php-fpm's side.
function hit(string $script): void {
    $line = $script . ' ' . getmypid() . "\n";
    file_put_contents(dirname(__DIR__) . '/hits.log', $line, FILE_APPEND | LOCK_EX);
}
function esc($v): string {
    return is_scalar($v) ? addcslashes((string) $v, "\0..\37\\") : gettype($v);
}
"#;

const SERVER_PHP: &str = r#"<?php
require __DIR__ . '/_lib.php';
header('Content-Type: text/plain');
foreach ($_SERVER as $k => $v) {
    echo 'server ', $k, '=', esc($v), "\n";
}
foreach ($_GET as $k => $v) {
    echo 'get ', $k, '=', esc($v), "\n";
}
echo 'pid=', getmypid(), "\n";
"#;

const POST_PHP: &str = r#"<?php
require __DIR__ . '/_lib.php';
hit('post');
header('Content-Type: text/plain');
$body = file_get_contents('php://input');
echo 'method=', $_SERVER['REQUEST_METHOD'], "\n";
echo 'content_type=', $_SERVER['CONTENT_TYPE'] ?? '', "\n";
echo 'content_length=', $_SERVER['CONTENT_LENGTH'] ?? '', "\n";
echo 'len=', strlen($body), "\n";
echo 'sha1=', sha1($body), "\n";
"#;

const STREAM_PHP: &str = r#"<?php
require __DIR__ . '/_lib.php';
header('Content-Type: application/octet-stream');
$chunks = (int) ($_GET['chunks'] ?? 0);
$size = (int) ($_GET['size'] ?? 65536);
$marker = $_GET['marker'] ?? '';
$wait_at = $marker === '' ? -1 : (int) ($_GET['wait_at'] ?? 0);
for ($i = 0; $i < $chunks; $i++) {
    if ($i === $wait_at && !wait_marker($marker)) {
        echo "\nMARKER-TIMEOUT\n";
        exit;
    }
    echo str_repeat(chr($i % 256), $size);
    flush();
}
"#;

const STDERR_PHP: &str = r#"<?php
require __DIR__ . '/_lib.php';
header('Content-Type: text/plain');
echo "out 1\n";
error_log('err 1');
flush();
if (!wait_marker($_GET['marker'] ?? '')) {
    echo "MARKER-TIMEOUT\n";
    exit;
}
echo "out 2\n";
error_log('err 2');
flush();
echo "out 3\n";
"#;

const PID_PHP: &str = r#"<?php
require __DIR__ . '/_lib.php';
hit('pid');
echo getmypid();
"#;

const WAIT_PHP: &str = r#"<?php
require __DIR__ . '/_lib.php';
echo wait_marker($_GET['marker'] ?? '') ? getmypid() : 'MARKER-TIMEOUT';
"#;

const SLEEP_PHP: &str = r#"<?php
header('Content-Type: text/plain');
$ms = (int) ($_GET['ms'] ?? 0);
$tick = (int) ($_GET['tick'] ?? 0);
if ($tick > 0) {
    for ($t = 0; $t < $ms; $t += $tick) {
        echo '.';
        flush();
        usleep($tick * 1000);
    }
} else {
    usleep($ms * 1000);
}
echo "done\n";
"#;

/// Finds php-fpm: `php-fpm8.2`, then `php-fpm` (in `PATH` and the sbin directories), then
/// the highest-sorting `/usr/sbin/php-fpm*`.
pub fn find_php_fpm() -> Option<PathBuf> {
    if let Some(p) = ["php-fpm8.2", "php-fpm"].into_iter().find_map(find_binary) {
        return Some(p);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/sbin")
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("php-fpm"))
        .map(|e| e.path())
        .filter(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .collect();
    found.sort();
    found.pop()
}

/// The php-fpm binary, or `None` after applying the skip policy (panics under `CI=true`,
/// otherwise prints `SKIPPED: php-fpm not installed (apt-get install php8.2-fpm)`).
pub fn require_php_fpm() -> Option<PathBuf> {
    let found = find_php_fpm();
    if found.is_none() {
        missing("php-fpm not installed", PHP_FPM.package);
    }
    found
}

/// Where the pool listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Socket {
    /// A free port on 127.0.0.1.
    Tcp,
    /// `php-fpm.sock` in the temporary directory.
    Unix,
}

/// How to configure the pool.
#[derive(Debug, Clone)]
pub struct Options {
    /// TCP or Unix socket.
    pub socket: Socket,
    /// `pm.max_children` (the pool is `pm = static`: that many workers, all the time).
    pub max_children: u32,
    /// More `key = value` lines for the pool section.
    pub extra_pool_config: String,
}

impl Options {
    /// A pool of `max_children` workers on `socket`.
    pub fn new(socket: Socket, max_children: u32) -> Self {
        Self {
            socket,
            max_children,
            extra_pool_config: String::new(),
        }
    }
}

/// A running php-fpm (master and `max_children` workers) with its own directory:
///
/// ```text
/// DIR/php-fpm.conf   the configuration
/// DIR/php-fpm.log    php-fpm's error log (worker stderr included)
/// DIR/php-fpm.out    php-fpm's own stdout and stderr
/// DIR/www/           the document root, holding scripts()
/// DIR/markers/       marker files (set_marker)
/// DIR/hits.log       one line per execution of pid.php and post.php (hits)
/// DIR/php-fpm.sock   the socket, for Socket::Unix
/// ```
///
/// Dropping it stops php-fpm; if the thread is panicking, the logs are printed first.
#[derive(Debug)]
pub struct PhpFpm {
    // Dropped first: the processes go before their directory.
    process: Option<GroupChild>,
    bin: PathBuf,
    opts: Options,
    addr: AppAddr,
    starts: usize,
    dir: tempfile::TempDir,
}

impl PhpFpm {
    /// Starts php-fpm as `opts` says. `None` if it is not installed and the skip policy says
    /// to skip; panics (with the logs) if it does not start.
    pub fn start(opts: Options) -> Option<Self> {
        let bin = require_php_fpm()?;
        let dir = peer_dir("php-fpm");
        let root = dir.path();
        let www = root.join("www");
        let markers = root.join("markers");
        for d in [&www, &markers] {
            std::fs::create_dir(d).expect("create php-fpm directories");
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))
                .expect("chmod php-fpm directories");
        }
        for (name, source) in scripts() {
            std::fs::write(www.join(name), source).expect("write PHP script");
        }
        let addr = match opts.socket {
            Socket::Unix => AppAddr::Unix(root.join("php-fpm.sock")),
            // Replaced by a free port in `launch`.
            Socket::Tcp => AppAddr::Tcp(SocketAddr::from(([127, 0, 0, 1], 0))),
        };
        let mut fpm = Self {
            process: None,
            bin,
            opts,
            addr,
            starts: 0,
            dir,
        };
        if let Err(e) = fpm.launch(true) {
            panic!("php-fpm did not start: {e}\n{}", fpm.logs());
        }
        Some(fpm)
    }

    /// Where php-fpm listens.
    pub fn addr(&self) -> &AppAddr {
        &self.addr
    }

    /// The document root (absolute path, no trailing slash), holding [`scripts`].
    pub fn docroot(&self) -> String {
        self.dir.path().join("www").display().to_string()
    }

    /// The temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The master's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process
            .as_ref()
            .filter(|p| !p.has_exited())
            .map(GroupChild::pid)
    }

    /// How many times php-fpm was started (1 + restarts).
    pub fn starts(&self) -> usize {
        self.starts
    }

    /// Creates marker file `name` (what `stream.php` and `stderr.php` wait for).
    pub fn set_marker(&self, name: &str) {
        assert!(
            !name.is_empty() && !name.contains('/'),
            "bad marker name {name:?}"
        );
        let dir = self.dir.path().join("markers");
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, b"go").expect("write marker");
        std::fs::rename(&tmp, dir.join(name)).expect("rename marker");
    }

    /// The pids of the workers that executed `script` (`"pid"` or `"post"`), one entry per
    /// execution, in order: what php-fpm really ran, whatever the responses said.
    pub fn hits(&self, script: &str) -> Vec<u32> {
        let log = std::fs::read_to_string(self.dir.path().join("hits.log")).unwrap_or_default();
        log.lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(s, _)| *s == script)
            .map(|(_, pid)| {
                pid.parse()
                    .unwrap_or_else(|_| panic!("bad hits.log line for {script}: {pid:?}"))
            })
            .collect()
    }

    /// Everything php-fpm logged so far (error log, then its stdout/stderr).
    pub fn logs(&self) -> String {
        let mut all = String::new();
        for name in ["php-fpm.log", "php-fpm.out"] {
            if let Ok(bytes) = std::fs::read(self.dir.path().join(name)) {
                let _ = writeln!(all, "--- {name} ---");
                all.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
        all
    }

    /// Stops php-fpm: `SIGTERM` to its process group, `SIGKILL` to what is left after 3 s,
    /// then waits (bounded) until no process of the group runs any more, so every
    /// connection to its workers is closed. Idempotent.
    pub fn stop(&mut self) {
        let Some(mut process) = self.process.take() else {
            return;
        };
        let pgid = process.pid();
        process.stop();
        if let Err(e) = wait_for("php-fpm's processes to exit", GONE_TIMEOUT, || {
            Ok(!group_running(pgid))
        }) {
            panic!("{e}\n{}", self.logs());
        }
    }

    /// Stops php-fpm (see [`stop`](Self::stop)) and starts it again on the same address,
    /// with the same configuration. Panics (with the logs) if it does not come back.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.launch(false) {
            panic!("php-fpm did not restart: {e}\n{}", self.logs());
        }
    }

    /// Writes the configuration for the current address and starts php-fpm, ready when its
    /// error log has one more ready line than before. With `new_port` (first start on TCP)
    /// each attempt takes a fresh free port; otherwise the address is kept.
    fn launch(&mut self, new_port: bool) -> io::Result<()> {
        let root = self.dir.path().to_path_buf();
        let conf = root.join("php-fpm.conf");
        let log = root.join("php-fpm.log");
        let out_path = root.join("php-fpm.out");
        let mut failures = String::new();
        for attempt in 0..START_ATTEMPTS {
            if new_port && matches!(self.addr, AppAddr::Tcp(_)) {
                self.addr = AppAddr::Tcp(SocketAddr::from(([127, 0, 0, 1], free_port()?)));
            }
            std::fs::write(&conf, self.config())?;
            let ready_before = count_ready(&log);
            let out = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&out_path)?;
            let mut cmd = peer_command(&self.bin);
            cmd.arg("-n").arg("-F");
            if is_root() {
                cmd.arg("-R");
            }
            cmd.arg("-y")
                .arg(&conf)
                .current_dir(&root)
                .stdin(Stdio::null())
                .stdout(Stdio::from(out.try_clone()?))
                .stderr(Stdio::from(out));
            let mut process = GroupChild::spawn("php-fpm", &mut cmd)?;
            let started = wait_for("php-fpm to be ready", START_TIMEOUT, || {
                if process.has_exited() {
                    return Err("php-fpm exited during start-up".to_owned());
                }
                Ok(count_ready(&log) > ready_before)
            })
            .and_then(|()| {
                if process.has_exited() {
                    Err("php-fpm exited during start-up".to_owned())
                } else {
                    Ok(())
                }
            });
            match started {
                Ok(()) => {
                    self.process = Some(process);
                    self.starts += 1;
                    return Ok(());
                }
                Err(e) => {
                    let pgid = process.pid();
                    process.stop();
                    let _ = wait_for("php-fpm's processes to exit", GONE_TIMEOUT, || {
                        Ok(!group_running(pgid))
                    });
                    let _ = writeln!(failures, "attempt {}: {e}", attempt + 1);
                    if !new_port {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            }
        }
        Err(io::Error::other(failures))
    }

    fn config(&self) -> String {
        let r = self.dir.path().display();
        let listen = match &self.addr {
            AppAddr::Tcp(a) => a.to_string(),
            AppAddr::Unix(p) => p.display().to_string(),
        };
        let user = if is_root() {
            // -R lets the workers run as root, so they can read our files and markers.
            "user = root\ngroup = root\n"
        } else {
            ""
        };
        format!(
            "[global]
pid = {r}/php-fpm.pid
error_log = {r}/php-fpm.log
log_level = notice
daemonize = no
process_control_timeout = 2s

[test]
listen = {listen}
{user}pm = static
pm.max_children = {children}
pm.status_path = {STATUS_PATH}
clear_env = yes
catch_workers_output = yes
decorate_workers_output = no
; no script may outlive a test
request_terminate_timeout = 30s
; pinned: php-fpm runs with -n (no php.ini)
php_admin_flag[log_errors] = on
php_admin_flag[display_errors] = off
php_admin_flag[expose_php] = off
php_admin_value[output_buffering] = 0
php_admin_value[post_max_size] = 64M
php_admin_value[memory_limit] = 256M
{extra}
",
            children = self.opts.max_children.max(1),
            extra = self.opts.extra_pool_config,
        )
    }
}

impl Drop for PhpFpm {
    fn drop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop();
        }
        if std::thread::panicking() {
            eprintln!("==== php-fpm logs (test failed) ====\n{}", self.logs());
        }
    }
}

fn count_ready(log: &Path) -> usize {
    std::fs::read(log)
        .map(|b| String::from_utf8_lossy(&b).matches(READY_LINE).count())
        .unwrap_or(0)
}

/// Whether a process of group `pgid` still runs (zombies do not count: their sockets are
/// closed already).
fn group_running(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.filter_map(Result::ok).any(|e| {
        let is_pid = e
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit());
        is_pid
            && std::fs::read_to_string(e.path().join("stat"))
                .ok()
                .and_then(|stat| {
                    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parens.
                    let rest = &stat[stat.rfind(')')? + 1..];
                    let mut fields = rest.split_whitespace();
                    let state = fields.next()?;
                    let pgrp: u32 = fields.nth(1)?.parse().ok()?;
                    Some(pgrp == pgid && state != "Z" && state != "X")
                })
                .unwrap_or(false)
    })
}

/// Splits a response's CGI header block (up to the first blank line, `\r\n\r\n`) from its
/// body; `None` if there is no blank line.
pub fn split_headers(stdout: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = stdout.windows(4).position(|w| w == b"\r\n\r\n")?;
    Some((&stdout[..at + 4], &stdout[at + 4..]))
}

/// Reads `server.php`'s lines: `(section, name) → value` with section `server` or `get`,
/// and `("pid", "")` for the pid line. Panics on a line of another shape.
pub fn parse_lines(body: &str) -> BTreeMap<(String, String), String> {
    let mut map = BTreeMap::new();
    for line in body.lines() {
        if let Some(pid) = line.strip_prefix("pid=") {
            map.insert(("pid".to_owned(), String::new()), pid.to_owned());
            continue;
        }
        let (section, entry) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("unexpected line {line:?} in:\n{body}"));
        let (name, value) = entry
            .split_once('=')
            .unwrap_or_else(|| panic!("unexpected line {line:?} in:\n{body}"));
        map.insert((section.to_owned(), name.to_owned()), value.to_owned());
    }
    map
}

/// Reads php-fpm's plain-text status page body (`name:   value` lines) into a map.
pub fn parse_status(body: &str) -> BTreeMap<String, String> {
    body.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// The SHA-1 of `data`, lower-case hex (what PHP's `sha1()` prints), so that a test can
/// check a body php-fpm hashed without another dependency.
pub fn sha1_hex(data: &[u8]) -> String {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let bit_len = (data.len() as u64).wrapping_mul(8);
    let mut tail = Vec::with_capacity(128);
    let full = data.len() - data.len() % 64;
    tail.extend_from_slice(&data[full..]);
    tail.push(0x80);
    while tail.len() % 64 != 56 {
        tail.push(0);
    }
    tail.extend_from_slice(&bit_len.to_be_bytes());
    for block in data[..full].chunks_exact(64).chain(tail.chunks_exact(64)) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (s, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *s = s.wrapping_add(v);
        }
    }
    h.iter().fold(String::with_capacity(40), |mut s, v| {
        let _ = write!(s, "{v:08x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_known_answers() {
        assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            sha1_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        // The 100 KiB body of fcgi-core's post_body fixture, as php-fpm hashed it.
        let body: Vec<u8> = (0..=255u8).cycle().take(102_400).collect();
        assert_eq!(sha1_hex(&body), "8b77024839e8dbd39af4052466122d9ec5d90aac");
        // 63, 64 and 65 bytes: padding across a block boundary.
        assert_eq!(
            sha1_hex(&[b'a'; 63]),
            "03f09f5b158a7a8cdad920bddc29b81c18a551f5"
        );
        assert_eq!(
            sha1_hex(&[b'a'; 64]),
            "0098ba824b5c16427bd7a1122a5a442a25ec644d"
        );
        assert_eq!(
            sha1_hex(&[b'a'; 65]),
            "11655326c708d70319be2610e8a57d9a5b959d3b"
        );
    }

    #[test]
    fn parses_server_lines_and_status() {
        let m = parse_lines("server A=1\nserver B=x=y\nget q=\\n\npid=42\n");
        assert_eq!(m[&("server".into(), "B".into())], "x=y");
        assert_eq!(m[&("get".into(), "q".into())], "\\n");
        assert_eq!(m[&("pid".into(), String::new())], "42");
        let s = parse_status("pool:   test\naccepted conn:   17\n");
        assert_eq!(s["accepted conn"], "17");
        assert_eq!(
            split_headers(b"A: b\r\n\r\nbody"),
            Some((&b"A: b\r\n\r\n"[..], &b"body"[..]))
        );
    }
}
