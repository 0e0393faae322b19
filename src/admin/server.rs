//! The admin socket's listener: owner-only file mode, a peer-credential check
//! on every connection, one request per connection, bounded in size and time.
//! A file at the socket path that is not a socket is never deleted.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::failure::Failure;
use super::handlers::AdminContext;
use super::handlers::handle;
use super::protocol::{Request, Response, max_request_line};
use crate::config::Settings;
use crate::local::{
    Busy, Permitted, Slot, Slots, effective_uid, peer_identity, restrict_socket, system_group,
};

/// How often a request whose client sent its end of input checks whether
/// the client is still there.
const HANG_UP_POLL: Duration = Duration::from_millis(100);

/// After a failed accept (out of descriptors), before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum AdminServerError {
    #[error("another daemon is already listening on the admin socket {0}")]
    InUse(PathBuf),
    #[error(
        "the admin socket path {0} exists and is not a socket; peerd never deletes it: \
         choose another --admin-socket, or move that file away yourself"
    )]
    NotASocket(PathBuf),
    #[error(
        "the admin socket {path} belongs to uid {owner}, not to this user (uid {me}) or root; \
         remove it as its owner, or choose another --admin-socket"
    )]
    ForeignSocket { path: PathBuf, owner: u32, me: u32 },
    #[error("cannot create the admin socket {path}: {source}")]
    Bind { path: PathBuf, source: io::Error },
    #[error("admin.group {0:?} is not a group of this system")]
    UnknownGroup(String),
}

pub struct AdminServer {
    listener: UnixListener,
    path: PathBuf,
    max_connections: usize,
    terms: Terms,
}

impl AdminServer {
    /// `admin.max_connections` at once, of which half may wait on the
    /// network (ping, call, connect, find), so `status` and `health` always
    /// get a slot. Its users are the daemon's, root and `admin.group`'s
    /// members; requests may carry a `call` of up to `rpc.max_message_size`.
    pub fn bind(path: &Path, settings: &Settings) -> Result<Self, AdminServerError> {
        let bind_error = |source| AdminServerError::Bind {
            path: path.to_owned(),
            source,
        };
        if Self::check_path(path)? {
            std::fs::remove_file(path).map_err(bind_error)?;
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(bind_error)?;
        }
        let group = settings
            .admin_group
            .as_deref()
            .map(|name| {
                system_group(name).ok_or_else(|| AdminServerError::UnknownGroup(name.into()))
            })
            .transpose()?;
        let listener = UnixListener::bind(path).map_err(bind_error)?;
        let daemon_uid = restrict_socket(path, group).map_err(bind_error)?;
        Ok(Self {
            listener,
            path: path.to_owned(),
            max_connections: settings.admin.max_connections,
            terms: Terms {
                permitted: Permitted { daemon_uid, group },
                timeout: settings.admin.timeout,
                max_request_line: max_request_line(settings.rpc.max_message_size as usize),
            },
        })
    }

    /// Whether `path` may become the admin socket without touching anything
    /// but a stale socket of ours, which it returns `true` for: nothing
    /// there is fine; a live socket, a socket of another user or anything
    /// that is not a socket is refused.
    pub fn check_path(path: &Path) -> Result<bool, AdminServerError> {
        let meta = match std::fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(source) => {
                return Err(AdminServerError::Bind {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        if !meta.file_type().is_socket() {
            return Err(AdminServerError::NotASocket(path.to_owned()));
        }
        let me = effective_uid();
        if meta.uid() != me && meta.uid() != 0 {
            return Err(AdminServerError::ForeignSocket {
                path: path.to_owned(),
                owner: meta.uid(),
                me,
            });
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(AdminServerError::InUse(path.to_owned()));
        }
        Ok(true)
    }

    /// Serves requests until `cancel`, which also drops the connections
    /// being served, then removes the socket file.
    pub async fn serve(self, context: AdminContext, cancel: CancellationToken) {
        let connections = TaskTracker::new();
        let max = self.max_connections;
        let slots = Slots::new(max, max / 2);
        loop {
            let accepted = tokio::select! {
                () = cancel.cancelled() => break,
                accepted = self.listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("admin socket accept failed: {e}");
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                    }
                }
            };
            let slot = slots.admit();
            let (context, cancel) = (context.clone(), cancel.clone());
            let terms = self.terms;
            connections.spawn(async move {
                tokio::select! {
                    () = cancel.cancelled() => {}
                    () = slot.evicted() => {}
                    () = serve_connection(stream, &context, terms, &slot) => {}
                }
            });
        }
        connections.close();
        connections.wait().await;
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What every admin connection is held to.
#[derive(Debug, Clone, Copy)]
struct Terms {
    permitted: Permitted,
    /// For the request to arrive, and again for the answer to be taken.
    timeout: Duration,
    max_request_line: usize,
}

async fn serve_connection(
    mut stream: UnixStream,
    context: &AdminContext,
    terms: Terms,
    slot: &Slot,
) {
    let response = match peer_identity(&stream) {
        Ok(peer) if terms.permitted.allows(&peer) => {
            answer(&mut stream, context, slot, terms).await
        }
        Ok(peer) => {
            tracing::warn!(
                uid = peer.uid,
                gid = peer.gid,
                pid = ?peer.pid,
                "admin request refused: not the daemon's user, root or a member of admin.group"
            );
            Failure::other(format!(
                "permission denied: uid {} may not administer this daemon (its user, root and members of admin.group may)",
                peer.uid
            ))
            .into()
        }
        Err(e) => Failure::other(format!("cannot read peer credentials: {e}")).into(),
    };
    let mut line = serde_json::to_vec(&response).unwrap_or_default();
    line.push(b'\n');
    let _ = tokio::time::timeout(terms.timeout, stream.write_all(&line)).await;
}

async fn answer(
    stream: &mut UnixStream,
    context: &AdminContext,
    slot: &Slot,
    terms: Terms,
) -> Response {
    let timeout = terms.timeout;
    let reading = read_request(stream, terms.max_request_line);
    let request = match tokio::time::timeout(timeout, reading).await {
        Ok(Ok(request)) => request,
        Ok(Err(message)) => return Failure::invalid(message).into(),
        Err(_) => return Failure::other(format!("no request within {timeout:?}")).into(),
    };
    tracing::debug!(?request, "admin request");
    let _working = match waits_on_network(&request).then(|| slot.work()) {
        Some(Err(Busy(working))) => {
            return Failure::other(format!(
                "busy: {working} admin requests are waiting on the network; try again"
            ))
            .into();
        }
        working => working,
    };
    // A client that leaves cancels its request (a `find` stops its lookup).
    let outcome = tokio::select! {
        outcome = handle(context, request) => outcome,
        () = gone(stream) => Err(Failure::other("the client hung up")),
    };
    match outcome {
        Ok(result) => Response::Ok { result },
        Err(failure) => failure.into(),
    }
}

/// Requests whose answer waits on other nodes; the others are answered from
/// the node's state at once.
fn waits_on_network(request: &Request) -> bool {
    match request {
        Request::Connect { .. }
        | Request::Ping { .. }
        | Request::FindService { .. }
        | Request::Netcheck
        | Request::Call { .. } => true,
        Request::Status
        | Request::Peers
        | Request::Id
        | Request::Health
        | Request::Disconnect { .. }
        | Request::Book
        | Request::Forget { .. }
        | Request::Services => false,
    }
}

/// Resolves once the client has closed the connection (or the socket
/// failed). Bytes it sends after its request line are read and dropped. A
/// client that only shut down its sending side (`nc -U` at the end of its
/// input) still waits for the answer, so the end of its bytes is not taken
/// for leaving: only a hang-up of both directions is.
async fn gone(stream: &mut UnixStream) {
    let mut sink = [0u8; 256];
    while let Ok(read) = stream.read(&mut sink).await {
        if read == 0 {
            return hung_up(stream).await;
        }
    }
}

/// Waits until the peer has closed both directions: POLLHUP, which a
/// shutdown of its sending side alone does not raise. Polled, as tokio
/// reports no readiness for it.
async fn hung_up(stream: &UnixStream) {
    while !closed_both_ways(stream) {
        tokio::time::sleep(HANG_UP_POLL).await;
    }
}

fn closed_both_ways(stream: &UnixStream) -> bool {
    let mut poll = libc::pollfd {
        fd: stream.as_raw_fd(),
        events: 0,
        revents: 0,
    };
    // SAFETY: one pollfd for a descriptor the stream owns and keeps open
    // through the call; a timeout of 0 returns at once.
    let ready = unsafe { libc::poll(&mut poll, 1, 0) };
    ready > 0 && poll.revents & (libc::POLLHUP | libc::POLLERR) != 0
}

async fn read_request(stream: &mut UnixStream, max_line: usize) -> Result<Request, String> {
    let mut line = String::new();
    let mut reader = BufReader::new(stream.take(max_line as u64));
    reader
        .read_line(&mut line)
        .await
        .map_err(|e| e.to_string())?;
    if !line.ends_with('\n') {
        return Err(format!(
            "the request must be one line of at most {max_line} bytes (twice rpc.max_message_size and 64 KiB)"
        ));
    }
    serde_json::from_str(&line).map_err(|e| format!("malformed request: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_stale_socket_of_ours_may_be_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.sock");
        assert!(!AdminServer::check_path(&path).unwrap(), "nothing there");
        let live = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert!(matches!(
            AdminServer::check_path(&path),
            Err(AdminServerError::InUse(_))
        ));
        drop(live);
        assert!(
            AdminServer::check_path(&path).unwrap(),
            "stale: replaceable"
        );

        let file = dir.path().join("node.key");
        std::fs::write(&file, "key").unwrap();
        let link = dir.path().join("link.sock");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        for refused in [&file, &link] {
            let err = AdminServer::check_path(refused).unwrap_err();
            assert!(matches!(err, AdminServerError::NotASocket(_)), "{err}");
        }
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "key");
    }
}
