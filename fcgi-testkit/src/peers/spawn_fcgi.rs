//! spawn-fcgi starting an application binary with its listening socket on fd 0
//! (`spawn-fcgi -n ... -- BINARY`: spawn-fcgi binds, moves the socket to fd 0 and execs the
//! application in the same process, which is therefore the process we stop).
//!
//! The application must print a line containing `FastCGI on` to stderr once it serves (the
//! echo examples do).

use std::path::Path;

use super::{Ready, RunningPeer, launch, peer_command, peer_dir};
use crate::app::AppAddr;
use crate::tools::{SPAWN_FCGI, require};

/// What the application prints once it accepts connections.
pub const READY_LINE: &str = "FastCGI on";

/// Where spawn-fcgi binds the socket it hands over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Socket {
    /// A free loopback TCP port.
    Tcp,
    /// A Unix socket in the peer's temporary directory.
    Unix,
}

/// A running spawned application.
#[derive(Debug)]
pub struct Spawned {
    /// The application process (spawn-fcgi exec'd into it).
    pub peer: RunningPeer,
    /// Where it listens.
    pub addr: AppAddr,
}

/// Starts `binary` under spawn-fcgi, with `env` as its only environment besides `PATH`.
pub fn start(binary: &Path, socket: Socket, env: &[(&str, &str)]) -> Option<Spawned> {
    let bin = require(&SPAWN_FCGI)?;
    let dir = peer_dir("spawn-fcgi");
    let sock = dir.path().join("app.sock");
    let ready = match socket {
        Socket::Tcp => Ready::PortAndLog(READY_LINE),
        Socket::Unix => Ready::Log(READY_LINE),
    };
    let peer = launch("spawn-fcgi", dir, Vec::new(), ready, |port| {
        let mut cmd = peer_command(&bin);
        cmd.envs(env.iter().copied()).arg("-n");
        match socket {
            Socket::Tcp => cmd.args(["-a", "127.0.0.1", "-p", &port.to_string()]),
            Socket::Unix => {
                let _ = std::fs::remove_file(&sock);
                cmd.arg("-s").arg(&sock).args(["-M", "0777"])
            }
        };
        cmd.arg("--").arg(binary);
        Ok(cmd)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let addr = match socket {
        Socket::Tcp => AppAddr::Tcp(peer.addr()),
        Socket::Unix => AppAddr::Unix(sock),
    };
    Some(Spawned { peer, addr })
}
