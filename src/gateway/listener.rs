//! The gateway's listeners and connections: a Unix socket whose file mode
//! and peer-credential check admit only the permitted users, an optional
//! loopback TCP listener, and HTTP/2 (gRPC) served on each connection.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use tonic::Streaming;

use super::codec::RawCodec;
use super::{Answer, Shared, local, outbound};
use crate::local::{Permitted, peer_identity, restrict_socket, system_group};

/// How long open connections get to finish their calls at shutdown.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("another daemon is already listening on the gateway socket {0}")]
    InUse(PathBuf),
    #[error("cannot create the gateway socket {path}: {source}")]
    Bind { path: PathBuf, source: io::Error },
    #[error("cannot listen on {addr} for the gateway: {source}")]
    Tcp { addr: SocketAddr, source: io::Error },
    #[error("gateway.group {0:?} is not a group of this system")]
    UnknownGroup(String),
    #[error("gateway.expose: {0}")]
    Expose(String),
}

/// The bound listeners, before serving.
pub struct Listeners {
    unix: Option<(UnixListener, PathBuf)>,
    tcp: Option<TcpListener>,
    permitted: Permitted,
}

impl Listeners {
    /// Binds the socket at `socket` (mode 0600, or 0660 owned by `group`)
    /// and the TCP listener at `tcp`.
    pub async fn bind(
        socket: Option<&Path>,
        tcp: Option<SocketAddr>,
        group: Option<&str>,
    ) -> Result<Self, GatewayError> {
        let group = group
            .map(|name| system_group(name).ok_or_else(|| GatewayError::UnknownGroup(name.into())))
            .transpose()?;
        let mut permitted = Permitted {
            daemon_uid: u32::MAX,
            group,
        };
        let unix = match socket {
            Some(path) => {
                let (listener, uid) = bind_socket(path, group)?;
                permitted.daemon_uid = uid;
                Some((listener, path.to_owned()))
            }
            None => None,
        };
        let tcp = match tcp {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| GatewayError::Tcp { addr, source })?,
            ),
            None => None,
        };
        Ok(Self {
            unix,
            tcp,
            permitted,
        })
    }

    pub fn socket_path(&self) -> Option<&Path> {
        self.unix.as_ref().map(|(_, path)| path.as_path())
    }

    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    /// Serves agents until `shared.cancel`, then removes the socket file.
    pub async fn serve(self, shared: Arc<Shared>) {
        let slots = Arc::new(Semaphore::new(shared.limits.max_connections));
        let connections = TaskTracker::new();
        let cancel = shared.cancel.clone();
        let unix = self.unix.as_ref().map(|(listener, _)| listener);
        loop {
            let Ok(slot) = (tokio::select! {
                () = cancel.cancelled() => break,
                slot = slots.clone().acquire_owned() => slot,
            }) else {
                break;
            };
            let shared = shared.clone();
            tokio::select! {
                () = cancel.cancelled() => break,
                accepted = accept_unix(unix) => match accepted {
                    Ok(stream) => match peer_identity(&stream) {
                        Ok(peer) if self.permitted.allows(&peer) => {
                            connections.spawn(async move { serve_connection(shared, stream).await; drop(slot) });
                        }
                        Ok(peer) => tracing::warn!(uid = peer.uid, gid = peer.gid, pid = ?peer.pid, "gateway connection refused: not the daemon's user, root or a member of gateway.group"),
                        Err(e) => tracing::warn!("gateway connection refused: cannot read its credentials: {e}"),
                    },
                    Err(e) => tracing::warn!("gateway accept failed: {e}"),
                },
                accepted = accept_tcp(self.tcp.as_ref()) => match accepted {
                    Ok(stream) => {
                        connections.spawn(async move { serve_connection(shared, stream).await; drop(slot) });
                    }
                    Err(e) => tracing::warn!("gateway accept failed: {e}"),
                },
            }
        }
        connections.close();
        connections.wait().await;
        if let Some((_, path)) = &self.unix {
            let _ = std::fs::remove_file(path);
        }
    }
}

async fn accept_unix(listener: Option<&UnixListener>) -> io::Result<tokio::net::UnixStream> {
    match listener {
        Some(listener) => listener.accept().await.map(|(stream, _)| stream),
        None => std::future::pending().await,
    }
}

async fn accept_tcp(listener: Option<&TcpListener>) -> io::Result<tokio::net::TcpStream> {
    match listener {
        Some(listener) => {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        None => std::future::pending().await,
    }
}

/// Binds the socket file with the permitted set's mode; returns the
/// daemon's uid (the new file's owner).
fn bind_socket(path: &Path, group: Option<u32>) -> Result<(UnixListener, u32), GatewayError> {
    let bind_error = |source| GatewayError::Bind {
        path: path.to_owned(),
        source,
    };
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(GatewayError::InUse(path.to_owned()));
        }
        std::fs::remove_file(path).map_err(bind_error)?;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(bind_error)?;
    }
    let listener = UnixListener::bind(path).map_err(bind_error)?;
    let uid = restrict_socket(path, group).map_err(bind_error)?;
    Ok((listener, uid))
}

/// Serves one agent connection: HTTP/2, every request a gRPC call.
async fn serve_connection<S>(shared: Arc<Shared>, stream: S)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let calls = Arc::new(Semaphore::new(shared.limits.max_calls_per_connection));
    let streams = shared_streams(&calls);
    let cancel = shared.cancel.clone();
    let executor = TrackedExecutor(shared.tasks.clone());
    let service = hyper::service::service_fn(move |request| {
        let (shared, calls) = (shared.clone(), calls.clone());
        async move { Ok::<_, Infallible>(route(shared, calls, request).await) }
    });
    let mut builder = hyper::server::conn::http2::Builder::new(executor);
    // Room past the calls limit, so a call over it gets RESOURCE_EXHAUSTED
    // instead of waiting unseen in the agent's HTTP/2 queue.
    builder.max_concurrent_streams(streams);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        () = cancel.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(CLOSE_GRACE, connection).await;
        }
    }
}

/// HTTP/2 streams an agent may open at once on one connection: twice its
/// calls limit.
fn shared_streams(calls: &Semaphore) -> u32 {
    u32::try_from(calls.available_permits().saturating_mul(2)).unwrap_or(u32::MAX)
}

async fn route(
    shared: Arc<Shared>,
    calls: Arc<Semaphore>,
    request: http::Request<Incoming>,
) -> http::Response<tonic::body::Body> {
    let path = request.uri().path().to_owned();
    let limit = shared.limits.max_message_size;
    let mut grpc = tonic::server::Grpc::new(RawCodec)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let service = tower::service_fn(move |call: tonic::Request<Streaming<Bytes>>| {
        dispatch(shared.clone(), calls.clone(), path.clone(), call)
    });
    grpc.streaming(service, request).await
}

async fn dispatch(
    shared: Arc<Shared>,
    calls: Arc<Semaphore>,
    path: String,
    call: tonic::Request<Streaming<Bytes>>,
) -> Result<tonic::Response<Answer>, tonic::Status> {
    let method = path.strip_prefix('/').unwrap_or(&path);
    if !method.contains('/') {
        return Err(tonic::Status::unimplemented(format!(
            "{path:?} is not a gRPC method path (/package.Service/Method)"
        )));
    }
    match method.strip_prefix(local::SERVICE_PREFIX) {
        Some(local_method) => local::serve(shared.clone(), local_method, call).await,
        None => outbound::forward(shared, calls, method.to_owned(), call).await,
    }
}

/// Runs hyper's per-stream tasks in the gateway's task tracker.
#[derive(Clone)]
struct TrackedExecutor(TaskTracker);

impl<F> hyper::rt::Executor<F> for TrackedExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        self.0.spawn(future);
    }
}
