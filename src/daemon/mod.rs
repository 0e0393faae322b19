//! `peerd run`: the daemon's life from start to exit. It loads or creates the
//! identity, binds the node and the admin socket, tells systemd it is ready,
//! and on SIGTERM/SIGINT drains calls for the grace period before exiting.

mod paths;
mod peers;
mod reach;

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::signal::unix::{SignalKind, signal};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use paths::Paths;
pub use reach::reach_addrs;

use crate::admin::{AdminContext, AdminServer, AdminServerError};
use crate::config::Settings;
use crate::metrics::{MetricsServer, MetricsServerError, Readiness};
use peerd::connection::BindError;
use peerd::identity::{KeyFileError, load_or_create_key};
use peerd::{Node, addressing::ParsePeerAddrError};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Key(#[from] KeyFileError),
    #[error("invalid entry in {key}: {source}")]
    Peer {
        key: &'static str,
        source: ParsePeerAddrError,
    },
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error(transparent)]
    Admin(#[from] AdminServerError),
    #[error(transparent)]
    Metrics(#[from] MetricsServerError),
    #[error("cannot listen for signals: {0}")]
    Signals(io::Error),
}

/// Runs the daemon until SIGTERM or SIGINT, then shuts it down in order.
pub async fn run(settings: Settings) -> Result<(), DaemonError> {
    let paths = Paths::resolve(&settings);
    create_private_dir(&paths.data_dir)?;
    let (identity, created) = load_or_create_key(&paths.key_file)?;
    if created {
        tracing::info!(key = %paths.key_file.display(), "created a new node identity");
    }
    let configured = peers::Configured::from_settings(&settings)?;
    let root = CancellationToken::new();
    let node = Node::builder(identity)
        .listen(settings.listen)
        .transport(settings.transport.clone())
        .rpc(settings.rpc.clone())
        .discovery(settings.discovery.clone())
        .cancel_token(root.child_token())
        .bind()?;
    let context = AdminContext::new(node.clone(), Instant::now(), reach_addrs(node.local_addr()));
    let book = paths.data_dir.join(peers::PEER_BOOK);
    peers::load_book(&node, &book);
    let admin = AdminServer::bind(&paths.admin_socket)?;
    let metrics = match settings.metrics.listen {
        Some(addr) => Some(MetricsServer::bind(addr).await?),
        None => None,
    };
    let mut terminate = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;

    let tasks = TaskTracker::new();
    tasks.spawn(admin.serve(context.clone(), root.child_token()));
    tasks.spawn(peers::run(
        node.clone(),
        configured,
        book.clone(),
        root.child_token(),
    ));
    let metrics_addr =
        metrics.map(|server| serve_metrics(server, &context, &tasks, root.child_token()));
    context.ready.cancel();
    notify_systemd(sd_notify::NotifyState::Ready);
    announce(&context, &paths, metrics_addr);

    let signal_name = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    tracing::info!(signal = signal_name, grace = ?settings.shutdown_grace, "shutting down");
    notify_systemd(sd_notify::NotifyState::Stopping);
    context.draining.cancel();
    node.shutdown(settings.shutdown_grace).await;
    root.cancel();
    tasks.close();
    tasks.wait().await;
    peers::save_book(&node, &book);
    tracing::info!("stopped");
    Ok(())
}

fn create_private_dir(path: &Path) -> Result<(), DaemonError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| DaemonError::DataDir {
            path: path.to_owned(),
            source,
        })
}

/// Serves /metrics, /livez and /readyz until `cancel`, which comes after the
/// drain: probes answer (/readyz with 503) while calls finish.
fn serve_metrics(
    server: MetricsServer,
    context: &AdminContext,
    tasks: &TaskTracker,
    cancel: CancellationToken,
) -> SocketAddr {
    let addr = server.local_addr();
    let state = context.clone();
    let ready: Readiness = Arc::new(move || state.is_ready());
    tasks.spawn(server.serve(context.metrics.clone(), ready, cancel));
    addr
}

fn notify_systemd(state: sd_notify::NotifyState) {
    // Outside systemd NOTIFY_SOCKET is unset and this does nothing.
    if let Err(e) = sd_notify::notify(false, &[state]) {
        tracing::warn!("sd_notify failed: {e}");
    }
}

/// Tells the operator (on stdout) how to reach the node.
fn announce(context: &AdminContext, paths: &Paths, metrics: Option<SocketAddr>) {
    let node = &context.node;
    println!("peerd {} node {}", env!("CARGO_PKG_VERSION"), node.id());
    println!(
        "listening on {} (udp), admin socket {}",
        node.local_addr(),
        paths.admin_socket.display()
    );
    if let Some(addr) = metrics {
        println!("metrics: http://{addr}/metrics");
    }
    for addr in &context.reach_addrs {
        println!("reach: {}@{addr}", node.id());
    }
}
