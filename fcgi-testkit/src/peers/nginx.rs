//! nginx with `fastcgi_pass` (master and one worker, in the foreground).
//!
//! The echo knobs come from the query string: `echo_bytes`, `echo_stderr`, `echo_sleep`,
//! `echo_status` become the params `ECHO_BODY_BYTES`, `ECHO_STDERR`, `ECHO_SLEEP_MS`,
//! `ECHO_STATUS` (`fastcgi_param ... $arg_... if_not_empty`).

use std::fmt::Write as _;

use super::{Ready, RunningPeer, launch, peer_command, peer_dir};
use crate::app::AppAddr;
use crate::tools::{NGINX, is_root, require};

/// How nginx talks to the application.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// `fastcgi_keep_conn on` with an upstream `keepalive` pool (requests reuse one
    /// connection), or nginx's default of one connection per request.
    pub keep_conn: bool,
}

/// Starts nginx in front of the application at `app`.
pub fn start(app: &AppAddr, opts: Options) -> Option<RunningPeer> {
    let bin = require(&NGINX)?;
    let dir = peer_dir("nginx");
    let root = dir.path().to_path_buf();
    let conf = root.join("nginx.conf");
    let error_log = root.join("error.log");
    let server = match app {
        AppAddr::Tcp(a) => a.to_string(),
        AppAddr::Unix(p) => format!("unix:{}", p.display()),
    };
    let peer = launch("nginx", dir, vec![error_log.clone()], Ready::Port, |port| {
        let r = root.display();
        let mut c = String::new();
        if is_root() {
            // Workers must reach our temporary directories and sockets.
            c.push_str("user root root;\n");
        }
        let _ = write!(
            c,
            "daemon off;
master_process on;
worker_processes 1;
pid {r}/nginx.pid;
error_log {r}/error.log info;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {r}/client_body;
  fastcgi_temp_path {r}/fastcgi;
  proxy_temp_path {r}/proxy;
  uwsgi_temp_path {r}/uwsgi;
  scgi_temp_path {r}/scgi;
  client_max_body_size 64m;
  upstream echo {{
    server {server};
    {keepalive}
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      fastcgi_pass echo;
      {keep_conn}
      fastcgi_param QUERY_STRING $query_string;
      fastcgi_param REQUEST_METHOD $request_method;
      fastcgi_param CONTENT_TYPE $content_type;
      fastcgi_param CONTENT_LENGTH $content_length;
      fastcgi_param SCRIPT_NAME $fastcgi_script_name;
      fastcgi_param REQUEST_URI $request_uri;
      fastcgi_param DOCUMENT_URI $document_uri;
      fastcgi_param SERVER_PROTOCOL $server_protocol;
      fastcgi_param GATEWAY_INTERFACE CGI/1.1;
      fastcgi_param SERVER_SOFTWARE nginx;
      fastcgi_param REMOTE_ADDR $remote_addr;
      fastcgi_param SERVER_PORT $server_port;
      fastcgi_param ECHO_BODY_BYTES $arg_echo_bytes if_not_empty;
      fastcgi_param ECHO_STDERR $arg_echo_stderr if_not_empty;
      fastcgi_param ECHO_SLEEP_MS $arg_echo_sleep if_not_empty;
      fastcgi_param ECHO_STATUS $arg_echo_status if_not_empty;
    }}
  }}
}}
",
            keepalive = if opts.keep_conn { "keepalive 8;" } else { "" },
            keep_conn = if opts.keep_conn {
                "fastcgi_keep_conn on;"
            } else {
                ""
            },
        );
        std::fs::write(&conf, c)?;
        let mut cmd = peer_command(&bin);
        cmd.arg("-p")
            .arg(&root)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(&error_log);
        Ok(cmd)
    });
    Some(peer.unwrap_or_else(|e| panic!("{e}")))
}
