//! The key file: created atomically with mode 0600, and refused when anyone
//! but the owner could read it.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
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

/// Reads the identity at `path`: a PKCS#8 PEM Ed25519 key in a file only
/// its owner can read (mode `0o600` or tighter). Refuses a more open file
/// with [`KeyFileError::TooOpen`] before reading a byte of it.
pub fn read_key(path: &Path) -> Result<Identity, KeyFileError> {
    let read_error = |source| KeyFileError::Read {
        path: path.to_owned(),
        source,
    };
    let mode = fs::metadata(path).map_err(read_error)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    let pem = fs::read_to_string(path).map_err(read_error)?;
    Identity::from_pkcs8_pem(&pem).map_err(|source| KeyFileError::Invalid {
        path: path.to_owned(),
        source,
    })
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
    fn a_corrupt_key_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        write_private(&path, b"not a key").unwrap();
        let message = read_key(&path).unwrap_err().to_string();
        assert!(message.contains("node.key"), "{message}");
    }
}
