//! libfcgi's `cgi-fcgi -bind -connect ADDR`: a FastCGI client in C. Its environment becomes
//! the params (std's `Command` passes it sorted by name, so the order is known), its stdin
//! the request body; it prints the application's `STDOUT` to stdout, `STDERR` to stderr,
//! and exits with the application status.

use std::process::Output;
use std::time::Duration;

use super::peer_command;
use crate::app::AppAddr;
use crate::process::run_bounded;
use crate::tools::{CGI_FCGI, require};

/// Longest a `cgi-fcgi` run may take.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends one request to `app` with exactly `params` (no `PATH`: the environment is the
/// params) and `stdin`; `None` if cgi-fcgi is missing and the test is skipped.
pub fn run(app: &AppAddr, params: &[(&str, &str)], stdin: &[u8]) -> Option<Output> {
    let bin = require(&CGI_FCGI)?;
    let mut cmd = peer_command(&bin);
    cmd.env_clear()
        .envs(params.iter().copied())
        .args(["-bind", "-connect"])
        .arg(app.plain());
    Some(
        run_bounded(&mut cmd, stdin.to_vec(), RUN_TIMEOUT)
            .unwrap_or_else(|e| panic!("cgi-fcgi -connect {}: {e}", app.plain())),
    )
}
