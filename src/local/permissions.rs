//! Who may use a local socket (the admin socket, the gateway's): the
//! daemon's user, root, and members of the socket's configured group
//! (`admin.group`, `gateway.group`), enforced by the socket file's mode and
//! checked again on every connection from the peer's credentials.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use tokio::net::UnixStream;

use super::is_daemon_user_or_root;

/// A connecting process as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    pub uid: u32,
    pub pid: Option<i32>,
    pub gid: u32,
    /// Supplementary groups, from /proc (empty if it could not be read).
    pub groups: Vec<u32>,
}

/// The permitted set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permitted {
    pub daemon_uid: u32,
    pub group: Option<u32>,
}

impl Permitted {
    pub fn allows(&self, peer: &PeerIdentity) -> bool {
        let in_group = self
            .group
            .is_some_and(|group| peer.gid == group || peer.groups.contains(&group));
        is_daemon_user_or_root(peer.uid, self.daemon_uid) || in_group
    }
}

/// The credentials of the process at the other end of `stream`.
pub fn peer_identity(stream: &UnixStream) -> io::Result<PeerIdentity> {
    let cred = stream.peer_cred()?;
    let groups = cred
        .pid()
        .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .map(|status| supplementary_groups(&status))
        .unwrap_or_default();
    Ok(PeerIdentity {
        uid: cred.uid(),
        pid: cred.pid(),
        gid: cred.gid(),
        groups,
    })
}

/// The `Groups:` line of a /proc/<pid>/status file.
fn supplementary_groups(status: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Groups:"))
        .map(|groups| {
            groups
                .split_whitespace()
                .filter_map(|g| g.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The gid of a group given by name or number on this system (/etc/group).
pub fn system_group(name: &str) -> Option<u32> {
    let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
    resolve_group(name, &groups)
}

/// Gives a socket file just bound the mode of its permitted set: 0600, or
/// 0660 and owned by `group`. Returns its owner, the daemon's uid.
pub fn restrict_socket(path: &Path, group: Option<u32>) -> io::Result<u32> {
    let mode = match group {
        Some(gid) => {
            std::os::unix::fs::chown(path, None, Some(gid))?;
            0o660
        }
        None => 0o600,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(std::fs::metadata(path)?.uid())
}

/// A group given by name (looked up in `group_file`, /etc/group's format)
/// or by number.
fn resolve_group(name: &str, group_file: &str) -> Option<u32> {
    if let Ok(gid) = name.parse() {
        return Some(gid);
    }
    group_file.lines().find_map(|line| {
        let mut fields = line.split(':');
        let found = fields.next()? == name;
        let gid = fields.nth(1)?.parse().ok()?;
        found.then_some(gid)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32, gid: u32, groups: &[u32]) -> PeerIdentity {
        PeerIdentity {
            uid,
            pid: None,
            gid,
            groups: groups.to_vec(),
        }
    }

    #[test]
    fn the_daemons_user_root_and_group_members_are_permitted_and_no_one_else() {
        let alone = Permitted {
            daemon_uid: 900,
            group: None,
        };
        assert!(alone.allows(&peer(900, 900, &[])));
        assert!(alone.allows(&peer(0, 0, &[])));
        assert!(!alone.allows(&peer(1000, 1000, &[900])));
        let shared = Permitted {
            group: Some(4242),
            ..alone
        };
        assert!(shared.allows(&peer(1000, 4242, &[])), "primary group");
        assert!(
            shared.allows(&peer(1000, 1000, &[27, 4242])),
            "supplementary"
        );
        assert!(!shared.allows(&peer(1001, 1001, &[27])));
    }

    #[test]
    fn groups_are_read_from_proc_and_resolved_by_name_or_number() {
        let status = "Name:\tpython3\nUid:\t1000\t1000\t1000\t1000\nGroups:\t27 4242 \n";
        assert_eq!(supplementary_groups(status), vec![27, 4242]);
        assert_eq!(supplementary_groups("Name: x\n"), Vec::<u32>::new());
        let file = "root:x:0:\npeerd-agents:x:4242:alice,bob\n";
        assert_eq!(resolve_group("peerd-agents", file), Some(4242));
        assert_eq!(resolve_group("77", file), Some(77));
        assert_eq!(resolve_group("nobody-here", file), None);
    }

    #[tokio::test]
    async fn a_socket_peer_reports_this_processs_credentials() {
        let (ours, _theirs) = UnixStream::pair().unwrap();
        let identity = peer_identity(&ours).unwrap();
        assert_eq!(identity.pid, Some(std::process::id() as i32));
        let own_status = std::fs::read_to_string("/proc/self/status").unwrap();
        assert_eq!(identity.groups, supplementary_groups(&own_status));
    }
}
