//! Trusted paths: the data directory and the admin socket's directory may
//! be changed only by the daemon's own user or root, or another user could
//! swap the node key or plant files the daemon then writes through.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::local::effective_uid;

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error(
        "{what} {path} is owned by uid {owner}, not by this user (uid {me}) or root, so that \
         user could replace the files peerd keeps there; run `chown {me} {path}` or choose \
         another path"
    )]
    Owner {
        what: &'static str,
        path: PathBuf,
        owner: u32,
        me: u32,
    },
    #[error(
        "{what} {path} is writable by group or others (mode {mode:04o}), so they could \
         replace the files peerd keeps there; run `chmod go-w {path}` or choose another path"
    )]
    Writable {
        what: &'static str,
        path: PathBuf,
        mode: u32,
    },
    #[error("{what} {path} is not a directory")]
    NotADirectory { what: &'static str, path: PathBuf },
    #[error("cannot check {what} {path}: {source}")]
    Check {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

/// Checks `dir` (which need not exist yet) and every directory above it:
/// each must belong to us or root, `dir` must not be writable by group or
/// others, and an ancestor only if it is sticky (like /tmp), where nobody
/// may rename what is ours. `what` names `dir` in the messages.
pub fn check_dir(what: &'static str, dir: &Path) -> Result<(), TrustError> {
    let check_error = |path: &Path, source| TrustError::Check {
        what,
        path: path.to_owned(),
        source,
    };
    let absolute = std::path::absolute(dir).map_err(|e| check_error(dir, e))?;
    let mut existing = absolute.as_path();
    while !existing.exists() {
        existing = existing.parent().unwrap_or(Path::new("/"));
    }
    let real = existing
        .canonicalize()
        .map_err(|e| check_error(existing, e))?;
    let me = effective_uid();
    let mut own = existing == absolute;
    for path in real.ancestors() {
        let meta = std::fs::metadata(path).map_err(|e| check_error(path, e))?;
        if !meta.is_dir() {
            return Err(TrustError::NotADirectory {
                what,
                path: path.to_owned(),
            });
        }
        let name = || if own { dir.to_owned() } else { path.to_owned() };
        let what = if own { what } else { "the directory above it," };
        if meta.uid() != me && meta.uid() != 0 {
            return Err(TrustError::Owner {
                what,
                path: name(),
                owner: meta.uid(),
                me,
            });
        }
        let mode = meta.permissions().mode() & 0o7777;
        let sticky = mode & 0o1000 != 0;
        if mode & 0o022 != 0 && (own || !sticky) {
            return Err(TrustError::Writable {
                what,
                path: name(),
                mode,
            });
        }
        own = false;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::Permissions;

    #[test]
    fn a_private_dir_under_tmp_is_trusted_and_so_is_one_yet_to_be_made() {
        let dir = tempfile::tempdir().unwrap();
        check_dir("the data directory", dir.path()).unwrap();
        check_dir("the data directory", &dir.path().join("a/b")).unwrap();
    }

    #[test]
    fn a_writable_dir_is_refused_with_the_fix_and_so_is_what_is_below_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), Permissions::from_mode(0o777)).unwrap();
        let message = check_dir("the data directory", dir.path())
            .unwrap_err()
            .to_string();
        assert!(message.contains("chmod go-w"), "{message}");
        assert!(
            message.contains(&dir.path().display().to_string()),
            "{message}"
        );
        let below = dir.path().join("data");
        let message = check_dir("the data directory", &below)
            .unwrap_err()
            .to_string();
        assert!(message.contains("the directory above it"), "{message}");
    }

    #[test]
    fn a_sticky_ancestor_is_trusted_but_a_sticky_data_dir_is_not() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), Permissions::from_mode(0o1777)).unwrap();
        check_dir("the data directory", &dir.path().join("data")).unwrap();
        assert!(check_dir("the data directory", dir.path()).is_err());
    }
}
