//! The peer book on disk: the address book saved as JSON in the data
//! directory, replaced atomically so a crash leaves the old or the new file,
//! never a mix.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::addressing::{AddressBook, PeerEntry};
use crate::identity::NodeId;

const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct SavedBook {
    version: u32,
    peers: Vec<SavedPeer>,
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

/// Adds the saved peers to `book`. A missing file is an empty book.
pub fn load(path: &Path, book: &AddressBook) -> Result<usize, PeerBookError> {
    let text = match fs::read_to_string(path) {
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
    let saved: SavedBook = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    if saved.version != FORMAT_VERSION {
        return Err(invalid(format!(
            "format version {} (expected {FORMAT_VERSION})",
            saved.version
        )));
    }
    let count = saved.peers.len();
    for peer in saved.peers {
        book.restore(peer.node_id, peer.entry);
    }
    Ok(count)
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
    let write = || -> io::Result<()> {
        let mut file = fs::File::create(&temp)?;
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
}
