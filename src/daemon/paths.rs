//! Where the daemon keeps its files: the same rules for `peerd run` and for
//! the client subcommands, so they find each other.

use std::env;
use std::path::{Path, PathBuf};

use crate::config::Settings;

pub const KEY_FILE: &str = "node.key";
pub const ADMIN_SOCKET: &str = "admin.sock";
pub const AGENT_SOCKET: &str = "agent.sock";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub data_dir: PathBuf,
    pub key_file: PathBuf,
    pub admin_socket: PathBuf,
    /// The agent gateway's socket, unless `gateway.socket` names another.
    pub agent_socket: PathBuf,
}

impl Paths {
    /// Explicit settings win; then systemd's directories; then the XDG data
    /// directory of the user; then `./peerd-data`.
    pub fn resolve(settings: &Settings) -> Self {
        let data_dir = settings.data_dir.clone().unwrap_or_else(default_data_dir);
        let runtime_dir = env_dir("RUNTIME_DIRECTORY").unwrap_or_else(|| data_dir.clone());
        let admin_socket = settings
            .admin_socket
            .clone()
            .unwrap_or_else(|| runtime_dir.join(ADMIN_SOCKET));
        Self {
            agent_socket: runtime_dir.join(AGENT_SOCKET),
            key_file: data_dir.join(KEY_FILE),
            data_dir,
            admin_socket,
        }
    }
}

fn default_data_dir() -> PathBuf {
    env_dir("STATE_DIRECTORY")
        .or_else(|| env_dir("XDG_DATA_HOME").map(|d| d.join("peerd")))
        .or_else(|| env_dir("HOME").map(|d| d.join(".local/share/peerd")))
        .unwrap_or_else(|| Path::new("peerd-data").to_owned())
}

/// A directory named by an environment variable; systemd may list several
/// separated by ':' and the first is ours.
fn env_dir(var: &str) -> Option<PathBuf> {
    let value = env::var_os(var)?;
    let first = value
        .to_str()
        .map_or(value.clone(), |v| v.split(':').next().unwrap_or(v).into());
    (!first.is_empty()).then(|| PathBuf::from(first))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_settings_win() {
        let settings = Settings {
            data_dir: Some("/srv/peerd".into()),
            admin_socket: Some("/run/x.sock".into()),
            ..Settings::default()
        };
        let paths = Paths::resolve(&settings);
        assert_eq!(paths.key_file, Path::new("/srv/peerd/node.key"));
        assert_eq!(paths.admin_socket, Path::new("/run/x.sock"));
    }

    #[test]
    fn the_admin_socket_defaults_next_to_the_key() {
        let settings = Settings {
            data_dir: Some("/srv/peerd".into()),
            ..Settings::default()
        };
        if env::var_os("RUNTIME_DIRECTORY").is_none() {
            assert_eq!(
                Paths::resolve(&settings).admin_socket,
                Path::new("/srv/peerd/admin.sock")
            );
        }
    }
}
