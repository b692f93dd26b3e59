//! Who owns a `.part` file: its writer holds an exclusive lock on it for as
//! long as it writes (`flock` on Unix, released by the kernel when the
//! process dies, however it dies), so a starting process recovers only the
//! `.part` files whose lock it can take, never one a running process still
//! writes.

use std::fs::File;
use std::io;
use std::path::Path;

/// Takes the exclusive lock without waiting: `Ok(false)` when another open
/// file holds it (another process, or another sink in this one).
pub(super) fn try_lock(file: &File) -> io::Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(error)) => Err(error),
    }
}

/// Whether `path` still names the open `file`. A lock is taken on an open
/// file, not on a name: between opening and locking, the writer may have
/// renamed its finished file away (recovering it then would publish its
/// lines twice), or a recovery may have removed a writer's new, still
/// unlocked and empty file.
#[cfg(unix)]
pub(super) fn still_named(file: &File, path: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let open = file.metadata()?;
    match std::fs::metadata(path) {
        Ok(named) => Ok(named.dev() == open.dev() && named.ino() == open.ino()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

/// Elsewhere (no platform the gateway ships for) only the name is checked:
/// the window it leaves is the one described above.
#[cfg(not(unix))]
pub(super) fn still_named(_file: &File, path: &Path) -> io::Result<bool> {
    path.try_exists()
}
