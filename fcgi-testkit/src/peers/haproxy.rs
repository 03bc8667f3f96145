//! HAProxy with a FastCGI backend (`fcgi-app` + `use-fcgi-app`, `proto fcgi`), in the
//! foreground (`haproxy -db`), one thread, logging to stderr.
//!
//! The `fcgi-app` asks the application for `FCGI_MPXS_CONNS`/`FCGI_MAX_REQS`
//! (`option get-values`) and multiplexes when allowed (`option mpxs-conns`); the backend
//! shares connections between client sessions (`http-reuse always`). The application's
//! `STDERR` goes to the log (`log-stderr global`). The echo knobs come from the query string
//! (`echo_bytes`, `echo_stderr`, `echo_sleep`, `echo_status`) via `set-param`.

use std::fmt::Write as _;

use super::{Ready, RunningPeer, launch, peer_command, peer_dir};
use crate::app::AppAddr;
use crate::tools::{HAPROXY, require};

const KNOBS: &[(&str, &str)] = &[
    ("echo_bytes", "ECHO_BODY_BYTES"),
    ("echo_stderr", "ECHO_STDERR"),
    ("echo_sleep", "ECHO_SLEEP_MS"),
    ("echo_status", "ECHO_STATUS"),
];

/// Starts HAProxy in front of the application at `app`.
pub fn start(app: &AppAddr) -> Option<RunningPeer> {
    let bin = require(&HAPROXY)?;
    let dir = peer_dir("haproxy");
    let root = dir.path().to_path_buf();
    let conf = root.join("haproxy.cfg");
    let server = app.plain();
    let peer = launch("haproxy", dir, Vec::new(), Ready::Port, |port| {
        let r = root.display();
        let mut c = format!(
            "global
  nbthread 1
  pidfile {r}/haproxy.pid
  log stderr format raw local0 info
defaults
  mode http
  log global
  option httplog
  timeout connect 5s
  timeout client 30s
  timeout server 30s
fcgi-app echo
  docroot {r}
  log-stderr global
  option get-values
  option mpxs-conns
  option max-reqs 16
"
        );
        for (query, param) in KNOBS {
            let _ = writeln!(
                c,
                "  set-param {param} %[urlp({query})] if {{ urlp({query}) -m found }}"
            );
        }
        let _ = write!(
            c,
            "frontend fe
  bind 127.0.0.1:{port}
  default_backend be
backend be
  http-reuse always
  use-fcgi-app echo
  server app {server} proto fcgi
"
        );
        std::fs::write(&conf, c)?;
        let mut cmd = peer_command(&bin);
        cmd.arg("-db").arg("-f").arg(&conf);
        Ok(cmd)
    });
    Some(peer.unwrap_or_else(|e| panic!("{e}")))
}
