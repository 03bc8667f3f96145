//! lighttpd with mod_fastcgi, in the foreground (`lighttpd -D`): Responder for everything,
//! and optionally Authorizer mode (`"mode" => "authorizer"`) in front of static files under
//! `/auth/`.
//!
//! lighttpd cannot copy a query parameter into a FastCGI param, so the echo knobs are fixed
//! in the config: each [`Options::query_env`] entry sets params for requests whose query
//! string is exactly the given one (`$HTTP["querystring"] == ...` + `setenv`).

use std::fmt::Write as _;

use super::{Ready, RunningPeer, launch, peer_command, peer_dir};
use crate::app::AppAddr;
use crate::tools::{LIGHTTPD, require};

/// The static file served under `/auth/` once the authorizer grants access.
pub const AUTH_FILE: &str = "/auth/ok.txt";
/// Its content.
pub const AUTH_FILE_BODY: &str = "lighttpd served this after the authorizer said yes\n";

/// How lighttpd is set up.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `(exact query string, param, value)`: requests with that query string get the param.
    pub query_env: Vec<(String, String, String)>,
    /// Put `/auth/` behind the application in Authorizer mode; granted requests get
    /// [`AUTH_FILE`] from the document root.
    pub authorizer: bool,
}

/// Starts lighttpd in front of the application at `app`.
pub fn start(app: &AppAddr, opts: &Options) -> Option<RunningPeer> {
    let bin = require(&LIGHTTPD)?;
    let dir = peer_dir("lighttpd");
    let root = dir.path().to_path_buf();
    let docroot = root.join("htdocs");
    std::fs::create_dir_all(docroot.join("auth")).expect("docroot");
    std::fs::write(
        docroot.join(AUTH_FILE.trim_start_matches('/')),
        AUTH_FILE_BODY,
    )
    .expect("static file");
    let conf = root.join("lighttpd.conf");
    let error_log = root.join("error.log");
    let backend = match app {
        AppAddr::Tcp(a) => format!("\"host\" => \"{}\", \"port\" => {}", a.ip(), a.port()),
        AppAddr::Unix(p) => format!("\"socket\" => \"{}\"", p.display()),
    };
    let peer = launch(
        "lighttpd",
        dir,
        vec![error_log.clone()],
        Ready::Port,
        |port| {
            let r = root.display();
            let d = docroot.display();
            let mut c = format!(
                "server.document-root = \"{d}\"
server.bind = \"127.0.0.1\"
server.port = {port}
server.errorlog = \"{r}/error.log\"
server.pid-file = \"{r}/lighttpd.pid\"
server.upload-dirs = ( \"{r}\" )
server.max-request-size = 65536
server.modules = ( \"mod_setenv\", \"mod_fastcgi\" )
"
            );
            for (query, param, value) in &opts.query_env {
                let _ = writeln!(
                    c,
                    "$HTTP[\"querystring\"] == \"{query}\" {{ setenv.add-environment = ( \"{param}\" => \"{value}\" ) }}"
                );
            }
            let responder = format!(
                "fastcgi.server = ( \"/\" => (( {backend}, \"check-local\" => \"disable\" )) )"
            );
            if opts.authorizer {
                let _ = writeln!(
                c,
                "$HTTP[\"url\"] =~ \"^/auth/\" {{
  fastcgi.server = ( \"/auth/\" => (( {backend}, \"check-local\" => \"disable\", \"mode\" => \"authorizer\", \"docroot\" => \"{d}\" )) )
}} else {{
  {responder}
}}"
            );
            } else {
                let _ = writeln!(c, "{responder}");
            }
            std::fs::write(&conf, c)?;
            let mut cmd = peer_command(&bin);
            cmd.arg("-D").arg("-f").arg(&conf);
            Ok(cmd)
        },
    );
    Some(peer.unwrap_or_else(|e| panic!("{e}")))
}
