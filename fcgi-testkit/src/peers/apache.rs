//! Apache httpd with mod_proxy_fcgi (`ProxyPass "/" "fcgi://..."`) and, optionally,
//! mod_authnz_fcgi in front of `/auth/`. Runs as `apache2 -X` (one process) from a config of
//! our own: modules loaded with `LoadModule` lines, `ServerRoot`, `PidFile` and `ErrorLog` in
//! the temporary directory (no reliance on the system's a2enmod state).
//!
//! The echo knobs come from the query string (`echo_bytes`, `echo_stderr`, `echo_sleep`,
//! `echo_status`), mapped with `ProxyFCGISetEnvIf` to `ECHO_*` params.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{Ready, RunningPeer, launch, peer_command, peer_dir};
use crate::app::AppAddr;
use crate::tools::{APACHE, is_root, missing, require};

const MODULE_DIRS: &[&str] = &[
    "/usr/lib/apache2/modules",
    "/usr/lib64/httpd/modules",
    "/usr/lib/httpd/modules",
];

const MODULES: &[(&str, &str)] = &[
    ("mpm_event_module", "mod_mpm_event.so"),
    ("authn_core_module", "mod_authn_core.so"),
    ("authz_core_module", "mod_authz_core.so"),
    ("proxy_module", "mod_proxy.so"),
    ("proxy_fcgi_module", "mod_proxy_fcgi.so"),
    ("authnz_fcgi_module", "mod_authnz_fcgi.so"),
];

/// The knobs: query parameter, param it sets, value pattern.
const KNOBS: &[(&str, &str, &str)] = &[
    ("echo_bytes", "ECHO_BODY_BYTES", "[0-9]+"),
    ("echo_stderr", "ECHO_STDERR", "[A-Za-z0-9_-]+"),
    ("echo_sleep", "ECHO_SLEEP_MS", "[0-9]+"),
    ("echo_status", "ECHO_STATUS", "[0-9]+"),
];

/// How Apache talks to the application.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `enablereuse=on` on the worker: keep FastCGI connections open between requests.
    pub reuse: bool,
    /// Put `/auth/` behind a mod_authnz_fcgi `authnz` provider on the application (TCP
    /// only): `Require` granted by the application's Authorizer role.
    pub authorizer: bool,
}

fn module_dir() -> Option<PathBuf> {
    MODULE_DIRS
        .iter()
        .map(PathBuf::from)
        .find(|d| MODULES.iter().all(|(_, file)| d.join(file).is_file()))
}

fn has_user(name: &str) -> bool {
    std::fs::read_to_string("/etc/passwd")
        .is_ok_and(|p| p.lines().any(|l| l.starts_with(&format!("{name}:"))))
}

/// Starts Apache in front of the application at `app`.
pub fn start(app: &AppAddr, opts: Options) -> Option<RunningPeer> {
    let bin = require(&APACHE)?;
    let Some(modules) = module_dir() else {
        missing(
            "Apache modules proxy, proxy_fcgi, authnz_fcgi, mpm_event not found",
            "apache2",
        );
        return None;
    };
    let dir = peer_dir("apache");
    let root = dir.path().to_path_buf();
    std::fs::create_dir_all(root.join("htdocs")).expect("docroot");
    let conf = root.join("httpd.conf");
    let error_log = root.join("error.log");
    let backend = match app {
        AppAddr::Tcp(a) => format!("fcgi://{a}/"),
        AppAddr::Unix(p) => format!("unix:{}|fcgi://localhost/", p.display()),
    };
    let peer = launch(
        "apache2",
        dir,
        vec![error_log.clone()],
        Ready::Port,
        |port| {
            std::fs::write(&conf, config(&root, &modules, &backend, app, port, opts))?;
            let mut cmd = peer_command(&bin);
            cmd.arg("-X").arg("-f").arg(&conf).current_dir(&root);
            Ok(cmd)
        },
    );
    Some(peer.unwrap_or_else(|e| panic!("{e}")))
}

fn config(
    root: &Path,
    modules: &Path,
    backend: &str,
    app: &AppAddr,
    port: u16,
    opts: Options,
) -> String {
    let r = root.display();
    let mut c = format!(
        "ServerRoot \"{r}\"
ServerName localhost
Listen 127.0.0.1:{port}
PidFile \"{r}/httpd.pid\"
ErrorLog \"{r}/error.log\"
LogLevel info
DefaultRuntimeDir \"{r}\"
DocumentRoot \"{r}/htdocs\"
Timeout 30
"
    );
    for (name, file) in MODULES {
        let _ = writeln!(c, "LoadModule {name} \"{}\"", modules.join(file).display());
    }
    if is_root() {
        // Apache refuses to serve as root; its workers become this user.
        if has_user("www-data") {
            c.push_str("User www-data\nGroup www-data\n");
        } else {
            c.push_str("User nobody\nGroup nogroup\n");
        }
    }
    for (query, param, pattern) in KNOBS {
        let _ = writeln!(
            c,
            "ProxyFCGISetEnvIf \"%{{QUERY_STRING}} =~ /(?:^|&){query}=({pattern})/\" {param} \"$1\""
        );
    }
    if opts.authorizer
        && let AppAddr::Tcp(a) = app
    {
        let _ = write!(
                c,
                "AuthnzFcgiDefineProvider authnz EchoAuth fcgi://{a}/
<Location \"/auth/\">
  CGIPassAuth On
  AuthType EchoBearer
  AuthName \"echo\"
  AuthnzFcgiCheckAuthnProvider EchoAuth Authoritative On RequireBasicAuth Off UserExpr \"%{{reqenv:AUTH_USER}}\"
  Require EchoAuth
</Location>
"
            );
    }
    let reuse = if opts.reuse { " enablereuse=on" } else { "" };
    let _ = writeln!(c, "ProxyPass \"/\" \"{backend}\"{reuse}");
    c
}
