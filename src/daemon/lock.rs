//! The data directory's lock: an exclusive flock on the directory itself,
//! held for the daemon's life, so two daemons never share one identity.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another peerd is running with the data directory {0}: two daemons must not share one \
         identity; stop that one, or give this one its own --data-dir"
    )]
    Held(PathBuf),
    #[error("cannot lock the data directory {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// Released when dropped, or by the kernel when the process ends however it ends.
#[derive(Debug)]
pub struct DataDirLock {
    _dir: File,
}

impl DataDirLock {
    /// Takes the lock, or fails at once if another process holds it.
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        let io_error = |source| LockError::Io {
            path: dir.to_owned(),
            source,
        };
        let file = File::open(dir).map_err(io_error)?;
        // SAFETY: flock only reads the descriptor, which `file` keeps open.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if locked == 0 {
            return Ok(Self { _dir: file });
        }
        match io::Error::last_os_error() {
            e if e.kind() == io::ErrorKind::WouldBlock => Err(LockError::Held(dir.to_owned())),
            e => Err(io_error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_fails_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        let err = DataDirLock::acquire(dir.path()).unwrap_err();
        assert!(matches!(err, LockError::Held(_)), "{err}");
        drop(first);
        DataDirLock::acquire(dir.path()).unwrap();
    }
}
