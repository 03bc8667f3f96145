//! What the gateway checks on the file system before it sends a request: that the resolved
//! script is a regular file inside the local root. All of it runs off the executor.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::error::GatewayError;
use super::upload::{Unblock, off_executor};

/// Checks that `script_name` (the decoded `SCRIPT_NAME`, starting with `/`) names a regular
/// file inside `root`, both resolved through symbolic links: a missing file, a directory, or
/// a link leading out of the root is [`GatewayError::NoSuchScript`].
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))] // `e` is only logged
pub(crate) async fn check_script(
    unblock: &Unblock,
    root: &Path,
    script_name: &[u8],
) -> Result<(), GatewayError> {
    let root = root.to_owned();
    let relative = PathBuf::from(OsStr::from_bytes(
        script_name.strip_prefix(b"/").unwrap_or(script_name),
    ));
    let shown = String::from_utf8_lossy(script_name).into_owned();
    let found = off_executor(unblock, move || -> io::Result<bool> {
        let root = std::fs::canonicalize(&root)?;
        let script = match std::fs::canonicalize(root.join(&relative)) {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            // `x.jpg/y.php`: a file used as a directory.
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => return Ok(false),
            Err(e) => return Err(e),
        };
        Ok(script.starts_with(&root) && std::fs::metadata(&script)?.is_file())
    })
    .await;
    match found {
        Ok(true) => Ok(()),
        Ok(false) => Err(GatewayError::NoSuchScript(shown)),
        // The root itself is gone or unreadable: nothing can be checked, nothing is run.
        Err(e) => {
            crate::__log_warn!(target: "fcgi_http::gateway", error = %e, "cannot check the script");
            Err(GatewayError::NoSuchScript(shown))
        }
    }
}

/// What try-files mode does with a request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TryFiles {
    /// Run the script the path names (the split-path resolution's).
    Script,
    /// Serve this file (checked: a regular file inside the root).
    Static(PathBuf),
    /// A directory named without its `/`: redirect there.
    AddSlash,
    /// Run the front controller.
    FrontController,
}

/// Looks `path` (decoded, `/`-prefixed) up in `root`: an existing file is a script to run if
/// `script` (the split-path resolution's `SCRIPT_NAME`, if the path names a script) is the
/// path itself, a static file otherwise; a directory needs its `/`, then its index
/// (`script` again, the path + index) must exist; a path whose split-path script exists
/// runs it; anything else goes to the front controller. Nothing outside the root counts.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))] // `e` is only logged
pub(crate) async fn try_files(
    unblock: &Unblock,
    root: &Path,
    path: &[u8],
    trailing_slash: bool,
    script: Option<&[u8]>,
) -> Result<TryFiles, GatewayError> {
    let root = root.to_owned();
    let relative = |p: &[u8]| PathBuf::from(OsStr::from_bytes(p.strip_prefix(b"/").unwrap_or(p)));
    let target = relative(path);
    let script_path = script.map(relative);
    let names_itself = script.is_some_and(|s| s == path);
    let decided = off_executor(unblock, move || -> io::Result<TryFiles> {
        let root = std::fs::canonicalize(&root)?;
        // A path inside the root, resolved, with its metadata; `None` if it is not there.
        let inside = |p: &Path| -> Option<(PathBuf, std::fs::Metadata)> {
            let real = std::fs::canonicalize(root.join(p)).ok()?;
            let meta = std::fs::metadata(&real).ok()?;
            real.starts_with(&root).then_some((real, meta))
        };
        if let Some((real, meta)) = inside(&target) {
            if meta.is_file() {
                return Ok(if names_itself {
                    TryFiles::Script
                } else {
                    TryFiles::Static(real)
                });
            }
            if meta.is_dir() && !trailing_slash {
                return Ok(TryFiles::AddSlash);
            }
        }
        let script_exists = script_path
            .as_deref()
            .and_then(inside)
            .is_some_and(|(_, meta)| meta.is_file());
        Ok(if script_exists {
            TryFiles::Script
        } else {
            TryFiles::FrontController
        })
    })
    .await;
    decided.map_err(|e| {
        crate::__log_warn!(target: "fcgi_http::gateway", error = %e, "cannot look up the path");
        GatewayError::NoSuchScript(String::from_utf8_lossy(path).into_owned())
    })
}
