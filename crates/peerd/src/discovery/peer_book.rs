//! The peer book on disk: the address book saved as JSON in the data
//! directory, replaced atomically so a crash leaves the old or the new file,
//! never a mix. Neither reading nor writing follows a symlink or waits on a
//! FIFO planted in its place; a bad entry costs that entry, not the book.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::addressing::{AddressBook, MAX_ADDRESSES_PER_NODE, MAX_NODES, PeerEntry};
use crate::identity::NodeId;

const FORMAT_VERSION: u32 = 1;
/// The largest peer book read: a full book (4,096 nodes with 8 addresses
/// each) is about 1.5 MB.
pub const MAX_BOOK_BYTES: u64 = 16 * 1024 * 1024;
/// One save at a time in this process (the data-dir lock keeps other
/// processes out), so a temporary file found on disk is never a live one.
static SAVING: Mutex<()> = Mutex::new(());

#[derive(Debug, Serialize)]
struct SavedBook {
    version: u32,
    peers: Vec<SavedPeer>,
}

/// A book as read: entries are decoded one by one.
#[derive(Debug, Deserialize)]
struct ReadBook {
    version: u32,
    peers: Vec<serde_json::Value>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedPeer {
    node_id: NodeId,
    #[serde(flatten)]
    entry: PeerEntry,
}

/// Why the peer book could not be loaded or saved. Each variant names the
/// file.
#[derive(Debug, thiserror::Error)]
pub enum PeerBookError {
    /// The file exists but could not be read.
    #[error("cannot read the peer book {path}: {source}")]
    Read {
        /// The peer book file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The file is not a peer book this version reads: not JSON of the
    /// expected shape, or another format version.
    #[error("the peer book {path} is not valid: {message}")]
    Invalid {
        /// The peer book file.
        path: PathBuf,
        /// What is wrong with it, for the log.
        message: String,
    },
    /// The new file could not be written, synced or renamed into place; a
    /// failure before the rename leaves the old file as it was.
    #[error("cannot write the peer book {path}: {source}")]
    Write {
        /// The peer book file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
}

/// Adds the saved peers to `book`, the address book's limits applied, and
/// returns how many. A missing file is an empty book; an entry that does not
/// decode, or one beyond the book's limit, is logged and dropped.
pub fn load(path: &Path, book: &AddressBook) -> Result<usize, PeerBookError> {
    let text = match read_bounded(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(source) => {
            return Err(PeerBookError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let invalid = |message: String| PeerBookError::Invalid {
        path: path.to_owned(),
        message,
    };
    let saved: ReadBook = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    if saved.version != FORMAT_VERSION {
        return Err(invalid(format!(
            "format version {} (expected {FORMAT_VERSION})",
            saved.version
        )));
    }
    let total = saved.peers.len();
    let mut restored = 0;
    for (index, value) in saved.peers.into_iter().enumerate() {
        match serde_json::from_value::<SavedPeer>(value) {
            Ok(mut peer) => {
                peer.entry.addrs.truncate(MAX_ADDRESSES_PER_NODE);
                book.restore(peer.node_id, peer.entry);
                restored += 1;
            }
            Err(error) => {
                tracing::warn!(book = %path.display(), index, %error, "dropped a bad peer book entry");
            }
        }
        if restored == MAX_NODES {
            tracing::warn!(book = %path.display(), dropped = total - index - 1, "the peer book holds more peers than the address book keeps");
            break;
        }
    }
    Ok(restored)
}

/// The file's text, if it is a regular file of at most [`MAX_BOOK_BYTES`].
fn read_bounded(path: &Path) -> io::Result<String> {
    let file = open_no_follow(OpenOptions::new().read(true), path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    if meta.len() > MAX_BOOK_BYTES {
        return Err(io::Error::other(format!(
            "{} bytes, more than the {MAX_BOOK_BYTES} read",
            meta.len()
        )));
    }
    let mut text = String::new();
    file.take(MAX_BOOK_BYTES).read_to_string(&mut text)?;
    Ok(text)
}

/// Opens without following a symlink at `path` and without waiting for a
/// FIFO's other end.
fn open_no_follow(options: &mut OpenOptions, path: &Path) -> io::Result<File> {
    options
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

/// Writes `book` to `path` through a synced temporary file and a rename.
pub fn save(path: &Path, book: &AddressBook) -> Result<(), PeerBookError> {
    let write_error = |source| PeerBookError::Write {
        path: path.to_owned(),
        source,
    };
    let mut peers: Vec<SavedPeer> = book
        .entries()
        .into_iter()
        .map(|(node_id, entry)| SavedPeer { node_id, entry })
        .collect();
    peers.sort_by_key(|p| std::cmp::Reverse(p.entry.last_seen_unix));
    let json = serde_json::to_vec_pretty(&SavedBook {
        version: FORMAT_VERSION,
        peers,
    })
    .map_err(|e| write_error(io::Error::other(e)))?;
    let temp = path.with_extension("json.tmp");
    let _saving = SAVING.lock().unwrap_or_else(|e| e.into_inner());
    let write = || -> io::Result<()> {
        let mut file = create_temp(&temp)?;
        file.write_all(&json)?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(write_error)
}

/// Creates `temp` afresh (O_EXCL, so never through a symlink or into a
/// FIFO). Whatever is already there is left over from a crash or planted:
/// it is unlinked (which never follows it) and the create tried once more.
fn create_temp(temp: &Path) -> io::Result<File> {
    let create = || open_no_follow(OpenOptions::new().write(true).create_new(true), temp);
    match create() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            tracing::warn!(temp = %temp.display(), "removing a stale peer book temporary file");
            fs::remove_file(temp)?;
            create()
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addressing::AddressSource;
    use std::net::SocketAddr;

    #[test]
    fn a_saved_book_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peers.json");
        let book = AddressBook::default();
        let node = NodeId::from_bytes([4; 32]);
        book.learn(
            node,
            &[SocketAddr::from(([10, 0, 0, 4], 7733))],
            AddressSource::Info,
        );
        save(&path, &book).unwrap();

        let again = AddressBook::default();
        assert_eq!(load(&path, &again).unwrap(), 1);
        assert_eq!(again.entries(), book.entries());
        assert!(!path.with_extension("json.tmp").exists());
    }

    #[test]
    fn a_missing_book_is_empty_and_a_corrupt_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peers.json");
        assert_eq!(load(&path, &AddressBook::default()).unwrap(), 0);
        fs::write(&path, "{ not json").unwrap();
        let err = load(&path, &AddressBook::default()).unwrap_err();
        assert!(err.to_string().contains("peers.json"), "{err}");
    }

    #[test]
    fn a_bad_entry_is_dropped_and_the_address_limit_applies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peers.json");
        let good = NodeId::from_bytes([5; 32]);
        let addrs: Vec<String> = (1..=20).map(|p| format!("10.0.0.1:{p}")).collect();
        let text = serde_json::json!({ "version": 1, "peers": [
            { "node_id": "bad", "addrs": [], "last_seen_unix": 1, "source": "info" },
            { "node_id": good, "addrs": addrs, "last_seen_unix": 1, "source": "info" },
        ]});
        fs::write(&path, text.to_string()).unwrap();
        let book = AddressBook::default();
        assert_eq!(load(&path, &book).unwrap(), 1, "the good entry of two");
        assert_eq!(book.get(good).len(), MAX_ADDRESSES_PER_NODE);
    }

    #[test]
    fn a_planted_temp_symlink_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peers.json");
        let victim = dir.path().join("victim");
        fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, path.with_extension("json.tmp")).unwrap();
        save(&path, &AddressBook::default()).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(load(&path, &AddressBook::default()).unwrap(), 0);
    }
}
