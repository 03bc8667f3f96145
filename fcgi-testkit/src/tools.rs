//! Finding the peer programs and the example binaries, and the skip policy.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use crate::process::run_bounded;

/// A program a test needs and the Debian package that provides it.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    /// What it is, for messages.
    pub name: &'static str,
    /// The executable's file name.
    pub binary: &'static str,
    /// The Debian package to install.
    pub package: &'static str,
}

/// nginx (any flavour; `nginx-light` is enough).
pub const NGINX: Tool = Tool {
    name: "nginx",
    binary: "nginx",
    package: "nginx-light",
};
/// Apache httpd with mod_proxy_fcgi and mod_authnz_fcgi.
pub const APACHE: Tool = Tool {
    name: "apache2",
    binary: "apache2",
    package: "apache2",
};
/// lighttpd (mod_fastcgi is built in).
pub const LIGHTTPD: Tool = Tool {
    name: "lighttpd",
    binary: "lighttpd",
    package: "lighttpd",
};
/// HAProxy (FastCGI backends since 2.1).
pub const HAPROXY: Tool = Tool {
    name: "haproxy",
    binary: "haproxy",
    package: "haproxy",
};
/// libfcgi's `cgi-fcgi`, a FastCGI client in C.
pub const CGI_FCGI: Tool = Tool {
    name: "cgi-fcgi",
    binary: "cgi-fcgi",
    package: "libfcgi-bin",
};
/// spawn-fcgi, which starts an application with its listening socket on fd 0.
pub const SPAWN_FCGI: Tool = Tool {
    name: "spawn-fcgi",
    binary: "spawn-fcgi",
    package: "spawn-fcgi",
};

/// Directories searched besides `PATH` (daemons live in sbin, which a non-root `PATH` often
/// lacks).
const EXTRA_DIRS: &[&str] = &["/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/bin", "/bin"];

/// The `PATH` peers run with (their environment is otherwise cleared).
pub const PEER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Finds an executable by file name in `PATH` and the usual sbin directories.
pub fn find_binary(binary: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(binary))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether this run is CI (`CI=true`), where a missing peer is a failure.
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The path of `tool`, or `None` after applying the skip policy: under `CI=true` a missing
/// tool panics; otherwise a loud `SKIPPED:` line goes to stderr and the caller returns.
pub fn require(tool: &Tool) -> Option<PathBuf> {
    require_in(tool, is_ci())
}

fn require_in(tool: &Tool, ci: bool) -> Option<PathBuf> {
    match find_binary(tool.binary) {
        Some(p) => Some(p),
        None => {
            missing_in(&format!("{} not installed", tool.name), tool.package, ci);
            None
        }
    }
}

/// Applies the skip policy to something missing (a program, an Apache module).
pub fn missing(what: &str, package: &str) {
    missing_in(what, package, is_ci());
}

fn missing_in(what: &str, package: &str, ci: bool) {
    let msg = format!("{what} (apt-get install {package})");
    if ci {
        panic!("CI=true and a peer is missing: {msg}; .ci/run's peers step must install it");
    }
    eprintln!("\n**********\nSKIPPED: {msg}\n**********");
}

/// Whether we run as root (peers then need `user` settings that let their workers reach our
/// sockets and files).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Examples built (or checked) by this process already.
static BUILT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// The path of example `name` of package `package`, in the target directory of the running
/// test binary (`target/<profile>/examples/<name>`).
///
/// When cargo is available (`CARGO` is set for tests), it is asked to build the example first
/// (a no-op when up to date), so a stale binary is never used; a build that does not finish
/// within five minutes, or fails while a binary exists, falls back to that binary.
pub fn example_binary(package: &str, name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test binary>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let binary = profile_dir.join("examples").join(name);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if built.contains(&binary) {
        return binary;
    }
    if let Some(cargo) = std::env::var_os("CARGO") {
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-q", "-p", package, "--example", name]);
        if profile_dir.file_name().is_some_and(|p| p == "release") {
            cmd.arg("--release");
        }
        if let Ok(manifest_dir) = std::env::var("CARGO_MANIFEST_DIR") {
            cmd.current_dir(manifest_dir);
        }
        cmd.stdout(Stdio::null());
        match run_bounded(&mut cmd, Vec::new(), Duration::from_secs(300)) {
            Ok(out) if out.status.success() => {}
            Ok(out) if !is_executable(&binary) => panic!(
                "building example {name} of {package} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) if !is_executable(&binary) => {
                panic!("building example {name} of {package}: {e}")
            }
            _ => eprintln!("note: rebuilding example {name} failed; using {binary:?}"),
        }
    }
    assert!(
        is_executable(&binary),
        "example binary {binary:?} missing (cargo build -p {package} --example {name})"
    );
    built.push(binary.clone());
    binary
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOT_THERE: Tool = Tool {
        name: "no-such-peer",
        binary: "fcgi-testkit-no-such-binary",
        package: "no-such-package",
    };

    #[test]
    fn finds_programs_in_path_and_sbin() {
        assert!(find_binary("sh").is_some_and(|p| p.ends_with("sh")));
        assert_eq!(find_binary(NOT_THERE.binary), None);
    }

    #[test]
    fn a_missing_peer_is_skipped_outside_ci() {
        assert_eq!(require_in(&NOT_THERE, false), None);
    }

    #[test]
    #[should_panic(
        expected = "CI=true and a peer is missing: no-such-peer not installed (apt-get install no-such-package)"
    )]
    fn a_missing_peer_fails_under_ci() {
        let _ = require_in(&NOT_THERE, true);
    }
}
