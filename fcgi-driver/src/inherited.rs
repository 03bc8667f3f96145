//! The listening socket a web server hands over as file descriptor 0 (spec 2.2, 3.2:
//! `FCGI_LISTENSOCK_FILENO`), as Apache mod_fcgid, lighttpd and spawn-fcgi do.

use std::io;
use std::os::fd::AsFd;

/// A listening socket inherited on fd 0, in blocking mode as received (adapters switch it to
/// non-blocking when they register it).
#[derive(Debug)]
pub enum InheritedListener {
    /// A TCP listening socket.
    Tcp(std::net::TcpListener),
    /// A Unix-domain listening socket.
    Unix(std::os::unix::net::UnixListener),
}

/// Returns the listening socket on fd 0 if there is one.
///
/// Detection follows the spec: fd 0 is a socket and `getpeername` on it fails with
/// `ENOTCONN` (a connected socket, a pipe, a terminal or a closed fd 0 all answer otherwise).
/// fd 0 itself is left open; the returned listener owns a duplicate of it.
pub fn inherited_listener() -> io::Result<Option<InheritedListener>> {
    let Ok(fd) = io::stdin().as_fd().try_clone_to_owned() else {
        return Ok(None); // fd 0 is closed
    };
    let probe = std::net::TcpStream::from(fd.try_clone()?);
    match probe.peer_addr() {
        Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
        _ => return Ok(None),
    }
    drop(probe);
    let tcp = std::net::TcpListener::from(fd);
    if tcp.local_addr().is_ok() {
        return Ok(Some(InheritedListener::Tcp(tcp)));
    }
    let unix = std::os::unix::net::UnixListener::from(std::os::fd::OwnedFd::from(tcp));
    unix.local_addr()?;
    Ok(Some(InheritedListener::Unix(unix)))
}
