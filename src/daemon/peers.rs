//! The daemon's part of discovery: configured peers and services, and the
//! peer book kept in the data directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::DaemonError;
use crate::config::Settings;
use peerd::discovery::peer_book;
use peerd::{Node, addressing::PeerAddr};

pub const PEER_BOOK: &str = "peers.json";
/// How often the peer book is written while running (and once at shutdown).
const SAVE_EVERY: Duration = Duration::from_secs(60);

/// The peers, bootstrap entries and services the configuration names, parsed.
pub struct Configured {
    pinned: Vec<PeerAddr>,
    bootstrap: Vec<PeerAddr>,
    services: Vec<(String, String)>,
    service_ttl: Duration,
}

impl Configured {
    pub fn from_settings(settings: &Settings) -> Result<Self, DaemonError> {
        let services = settings
            .services
            .iter()
            .map(|s| {
                let (name, version) = s.split_once('@').unwrap_or((s, ""));
                (name.to_owned(), version.to_owned())
            })
            .collect();
        Ok(Self {
            pinned: parse("peers", &settings.peers)?,
            bootstrap: parse("bootstrap", &settings.bootstrap)?,
            services,
            service_ttl: settings.service_ttl,
        })
    }
}

fn parse(key: &'static str, entries: &[String]) -> Result<Vec<PeerAddr>, DaemonError> {
    entries
        .iter()
        .map(|entry| {
            entry
                .parse()
                .map_err(|source| DaemonError::Peer { key, source })
        })
        .collect()
}

/// Loads the peer book; a damaged one is set aside (not lost) and the node
/// starts with an empty book.
pub fn load_book(node: &Node, path: &Path) {
    match peer_book::load(path, node.addresses()) {
        Ok(count) => tracing::info!(peers = count, book = %path.display(), "loaded the peer book"),
        Err(error) => {
            let aside = path.with_extension("json.damaged");
            let _ = std::fs::rename(path, &aside);
            tracing::warn!(%error, kept_as = %aside.display(), "starting with an empty peer book");
        }
    }
}

pub fn save_book(node: &Node, path: &Path) {
    if let Err(error) = peer_book::save(path, node.addresses()) {
        tracing::warn!(%error, "could not save the peer book");
    }
}

/// Pins, bootstraps, joins and announces as configured, then saves the peer
/// book every minute until `cancel`.
pub async fn run(node: Node, configured: Configured, book: PathBuf, cancel: CancellationToken) {
    let configure = async {
        for peer in configured.pinned {
            node.discovery().pin(peer);
        }
        node.discovery().bootstrap(&configured.bootstrap).await;
        node.discovery().join().await;
        for (name, version) in &configured.services {
            node.discovery()
                .announce(name, version, configured.service_ttl);
        }
    };
    tokio::select! {
        () = cancel.cancelled() => return,
        () = configure => {}
    }
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(SAVE_EVERY) => save_book(&node, &book),
        }
    }
}
