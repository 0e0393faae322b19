//! The key file: created atomically with mode 0600, and refused when anyone
//! but the owner could read it, when another user owns it, or when it is not
//! a small regular file (a symlink, a FIFO, a huge file).

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{Identity, IdentityError};

/// Why the key file could not be used. Each variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file's mode lets group or others read it (any of `0o077` set);
    /// the key is refused rather than trusted after it may have leaked.
    #[error(
        "key file {path} is readable by group or others (mode {mode:04o}); \
         run `chmod 600 {path}` or remove it to make a new identity"
    )]
    TooOpen {
        /// The key file.
        path: PathBuf,
        /// Its permission bits (`mode & 0o777`).
        mode: u32,
    },
    /// Another non-root user owns the file and could have swapped the key.
    #[error(
        "key file {path} is owned by uid {owner}, not by this user (uid {me}) or root; \
         run `chown {me} {path}` if the key is yours, or remove it to make a new identity"
    )]
    ForeignOwner {
        /// The key file.
        path: PathBuf,
        /// The uid that owns it.
        owner: u32,
        /// This process's effective uid.
        me: u32,
    },
    /// The path is a symbolic link: what it points to could be anyone's.
    #[error(
        "key file {path} is a symbolic link, which peerd does not follow; \
         put the key itself there"
    )]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// The path is not a regular file (a FIFO would hang start-up).
    #[error("key file {path} is not a regular file")]
    NotAFile {
        /// The path, which names a directory, FIFO, socket or device.
        path: PathBuf,
    },
    /// The file is too large to be a key; it is not read.
    #[error("key file {path} is larger than {MAX_KEY_FILE} bytes ({size}): not a node key")]
    TooLarge {
        /// The key file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
    },
    /// The file's metadata or contents could not be read; `NotFound` when
    /// there is no file.
    #[error("cannot read key file {path}: {source}")]
    Read {
        /// The key file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A new key file could not be written; `AlreadyExists` when the path
    /// already exists.
    #[error("cannot create key file {path}: {source}")]
    Write {
        /// The key file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The file was read but does not hold a PKCS#8 PEM Ed25519 key.
    #[error("key file {path} is not a usable node key: {source}")]
    Invalid {
        /// The key file.
        path: PathBuf,
        /// Why the contents are not a key.
        source: IdentityError,
    },
}

/// Loads the identity at `path`, creating a new one if the file does not exist.
/// Returns whether it was created, so the caller can say so.
pub fn load_or_create_key(path: &Path) -> Result<(Identity, bool), KeyFileError> {
    match read_key(path) {
        Err(KeyFileError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            let identity = Identity::generate();
            match write_new_key(path, &identity) {
                Ok(()) => Ok((identity, true)),
                // Another process created it first: use theirs.
                Err(KeyFileError::Write { source, .. })
                    if source.kind() == io::ErrorKind::AlreadyExists =>
                {
                    Ok((read_key(path)?, false))
                }
                Err(e) => Err(e),
            }
        }
        other => other.map(|identity| (identity, false)),
    }
}

/// The largest key file read; a PEM Ed25519 key is about 120 bytes.
pub(crate) const MAX_KEY_FILE: u64 = 16 * 1024;

/// Reads the key at `path`. The file is opened without following a symlink
/// and without blocking (a FIFO must not hang start-up), then checked on
/// the open descriptor, so what is checked is what is read.
pub fn read_key(path: &Path) -> Result<Identity, KeyFileError> {
    let path_buf = || path.to_owned();
    let read_error = |source| KeyFileError::Read {
        path: path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => KeyFileError::Symlink { path: path_buf() },
            _ => read_error(e),
        })?;
    let meta = file.metadata().map_err(read_error)?;
    if !meta.is_file() {
        return Err(KeyFileError::NotAFile { path: path_buf() });
    }
    let me = effective_uid();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(KeyFileError::ForeignOwner {
            path: path_buf(),
            owner: meta.uid(),
            me,
        });
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::TooOpen {
            path: path_buf(),
            mode,
        });
    }
    if meta.len() > MAX_KEY_FILE {
        return Err(KeyFileError::TooLarge {
            path: path_buf(),
            size: meta.len(),
        });
    }
    let mut pem = String::new();
    file.take(MAX_KEY_FILE)
        .read_to_string(&mut pem)
        .map_err(read_error)?;
    Identity::from_pkcs8_pem(&pem).map_err(|source| KeyFileError::Invalid {
        path: path_buf(),
        source,
    })
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Writes `identity` to `path`, which must not exist yet. The key is written
/// to a private temporary file, synced, then linked into place, so a crash
/// never leaves a half-written key and an existing key is never replaced.
pub fn write_new_key(path: &Path, identity: &Identity) -> Result<(), KeyFileError> {
    let write_error = |source| KeyFileError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(write_error)?;
    let temp = dir.join(format!(".{}.tmp-{}", file_name(path), std::process::id()));
    let result = write_private(&temp, identity.to_pkcs8_pem().as_bytes())
        .and_then(|()| fs::hard_link(&temp, path))
        .and_then(|()| fs::File::open(dir)?.sync_all());
    let _ = fs::remove_file(&temp);
    result.map_err(write_error)
}

fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "key".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_a_private_key_file_and_loads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/node.key");
        let (created, was_new) = load_or_create_key(&path).unwrap();
        assert!(was_new);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (loaded, was_new) = load_or_create_key(&path).unwrap();
        assert!(!was_new);
        assert_eq!(loaded.node_id(), created.node_id());
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn a_key_readable_by_others_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        write_new_key(&path, &Identity::generate()).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_key(&path).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, KeyFileError::TooOpen { mode: 0o644, .. }));
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("chmod 600"), "{message}");
        assert!(
            load_or_create_key(&path).is_err(),
            "never silently replaced"
        );
    }

    #[test]
    fn an_existing_key_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let first = Identity::generate();
        write_new_key(&path, &first).unwrap();
        assert!(write_new_key(&path, &Identity::generate()).is_err());
        assert_eq!(read_key(&path).unwrap().node_id(), first.node_id());
    }

    #[test]
    fn symlinks_fifos_and_huge_files_are_refused_without_reading() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.key");
        write_new_key(&real, &Identity::generate()).unwrap();
        let link = dir.path().join("link.key");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(matches!(read_key(&link), Err(KeyFileError::Symlink { .. })));
        let fifo = dir.path().join("fifo.key");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success());
        assert!(matches!(
            read_key(&fifo),
            Err(KeyFileError::NotAFile { .. })
        ));
        fs::OpenOptions::new()
            .append(true)
            .open(&real)
            .unwrap()
            .set_len(MAX_KEY_FILE + 1)
            .unwrap();
        let err = read_key(&real).unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
    }

    #[test]
    fn a_corrupt_key_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        write_private(&path, b"not a key").unwrap();
        let message = read_key(&path).unwrap_err().to_string();
        assert!(message.contains("node.key"), "{message}");
    }
}
