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
            tracing::warn!(target: "fcgi_http::gateway", error = %e, "cannot check the script");
            Err(GatewayError::NoSuchScript(shown))
        }
    }
}
