//! The admin socket's listener: owner-only file mode, a peer-credential check
//! on every connection, one request per connection, bounded in size and time.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::handlers::AdminContext;
use super::handlers::handle;
use super::policy::may_administer;
use super::protocol::{MAX_REQUEST_LINE, Request, Response};

/// A client must send its request within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Admin connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum AdminServerError {
    #[error("another daemon is already listening on the admin socket {0}")]
    InUse(PathBuf),
    #[error("cannot create the admin socket {path}: {source}")]
    Bind { path: PathBuf, source: io::Error },
}

pub struct AdminServer {
    listener: UnixListener,
    path: PathBuf,
    daemon_uid: u32,
}

impl AdminServer {
    pub fn bind(path: &Path) -> Result<Self, AdminServerError> {
        let bind_error = |source| AdminServerError::Bind {
            path: path.to_owned(),
            source,
        };
        remove_stale_socket(path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(bind_error)?;
        }
        let listener = UnixListener::bind(path).map_err(bind_error)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(bind_error)?;
        // We just created the file, so its owner is our effective uid.
        let daemon_uid = std::fs::metadata(path).map_err(bind_error)?.uid();
        Ok(Self {
            listener,
            path: path.to_owned(),
            daemon_uid,
        })
    }

    /// Serves requests until `cancel`, then removes the socket file.
    pub async fn serve(self, context: AdminContext, cancel: CancellationToken) {
        let connections = TaskTracker::new();
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let slot = tokio::select! {
                () = cancel.cancelled() => break,
                slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            };
            let stream = tokio::select! {
                () = cancel.cancelled() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!("admin socket accept failed: {e}");
                        continue;
                    }
                },
            };
            let (context, uid) = (context.clone(), self.daemon_uid);
            connections.spawn(async move {
                serve_connection(stream, &context, uid).await;
                drop(slot);
            });
        }
        connections.close();
        connections.wait().await;
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A socket file left by a daemon that died is removed; a live one is not.
fn remove_stale_socket(path: &Path) -> Result<(), AdminServerError> {
    if !path.exists() {
        return Ok(());
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(AdminServerError::InUse(path.to_owned()));
    }
    std::fs::remove_file(path).map_err(|source| AdminServerError::Bind {
        path: path.to_owned(),
        source,
    })
}

async fn serve_connection(mut stream: UnixStream, context: &AdminContext, daemon_uid: u32) {
    let response = match stream.peer_cred() {
        Ok(cred) if may_administer(cred.uid(), daemon_uid) => answer(&mut stream, context).await,
        Ok(cred) => {
            tracing::warn!(
                uid = cred.uid(),
                "admin request refused: not the daemon's user"
            );
            Response::Error {
                message: format!(
                    "permission denied: uid {} may not administer this daemon",
                    cred.uid()
                ),
            }
        }
        Err(e) => Response::Error {
            message: format!("cannot read peer credentials: {e}"),
        },
    };
    let mut line = serde_json::to_vec(&response).unwrap_or_default();
    line.push(b'\n');
    let _ = stream.write_all(&line).await;
}

async fn answer(stream: &mut UnixStream, context: &AdminContext) -> Response {
    let request = match tokio::time::timeout(REQUEST_TIMEOUT, read_request(stream)).await {
        Ok(Ok(request)) => request,
        Ok(Err(message)) => return Response::Error { message },
        Err(_) => {
            return Response::Error {
                message: format!("no request within {REQUEST_TIMEOUT:?}"),
            };
        }
    };
    tracing::debug!(?request, "admin request");
    // A client that hangs up cancels its request (a `find` stops its lookup).
    let outcome = tokio::select! {
        outcome = handle(context, request) => outcome,
        () = hung_up(stream) => Err("the client hung up".to_owned()),
    };
    match outcome {
        Ok(result) => Response::Ok { result },
        Err(message) => Response::Error { message },
    }
}

/// Resolves once the client has closed its side (or the socket failed).
/// Bytes it sends after its request line are read and dropped.
async fn hung_up(stream: &mut UnixStream) {
    let mut sink = [0u8; 256];
    while let Ok(read) = stream.read(&mut sink).await {
        if read == 0 {
            return;
        }
    }
}

async fn read_request(stream: &mut UnixStream) -> Result<Request, String> {
    let mut line = String::new();
    let mut reader = BufReader::new(stream.take(MAX_REQUEST_LINE as u64));
    reader
        .read_line(&mut line)
        .await
        .map_err(|e| e.to_string())?;
    if !line.ends_with('\n') {
        return Err(format!(
            "the request must be one line of at most {MAX_REQUEST_LINE} bytes"
        ));
    }
    serde_json::from_str(&line).map_err(|e| format!("malformed request: {e}"))
}
