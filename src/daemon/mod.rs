//! `peerd run`: the daemon's life from start to exit. It checks and locks its
//! paths, loads or creates the identity, binds the node and the admin socket,
//! tells systemd it is ready, and on SIGTERM/SIGINT saves the peer book,
//! drains calls for the grace period and exits within a bound.

mod lock;
mod netchecks;
mod paths;
mod peers;
mod reach;
mod trust;

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use lock::{DataDirLock, LockError};
pub use paths::Paths;
pub use reach::reach_addrs;
pub use trust::{TrustError, check_dir};

use crate::admin::{AdminContext, AdminServer, AdminServerError};
use crate::browser::{self, BrowserError, Browsers};
use crate::config::{DEFAULT_METRICS, MetricsListen, Settings};
use crate::gateway::{Gateway, GatewayError};
use crate::metrics::{BrowserInfo, MetricsServer, MetricsServerError, Readiness};
use peerd::connection::{BindError, bind_std};
use peerd::identity::{KeyFileError, load_or_create_key};
use peerd::{Node, addressing::ParsePeerAddrError};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Untrusted(#[from] TrustError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Key(#[from] KeyFileError),
    #[error("invalid entry in {key}: {source}")]
    Peer {
        key: &'static str,
        source: ParsePeerAddrError,
    },
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error(
        "cannot listen on UDP {addr}: it is in use (by another peerd?); choose another port with --listen or the `listen` key"
    )]
    ListenInUse { addr: SocketAddr },
    #[error(transparent)]
    Admin(#[from] AdminServerError),
    #[error(transparent)]
    Metrics(#[from] MetricsServerError),
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error(transparent)]
    Browser(#[from] BrowserError),
    #[error("cannot listen for signals: {0}")]
    Signals(io::Error),
}

fn listen_error(error: BindError) -> DaemonError {
    match error {
        BindError::Socket { addr, source } if source.kind() == io::ErrorKind::AddrInUse => {
            DaemonError::ListenInUse { addr }
        }
        other => DaemonError::Bind(other),
    }
}

/// SIGTERM completes within `shutdown_grace` plus this: the close of every
/// connection (at most 2 s), the listeners' and tasks' stop, and the exit.
pub const SHUTDOWN_MARGIN: Duration = Duration::from_secs(5);
/// The part of [`SHUTDOWN_MARGIN`] left for the runtime to stop its tasks
/// once [`run`] has returned.
pub const EXIT_WAIT: Duration = Duration::from_secs(1);

/// Runs the daemon until SIGTERM or SIGINT, then shuts it down in order.
pub async fn run(settings: Settings) -> Result<(), DaemonError> {
    let paths = Paths::resolve(&settings);
    let _lock = prepare_paths(&paths)?;
    // Before the key: a port in use must not leave a new identity behind.
    let socket = bind_std(settings.listen, &settings.transport).map_err(listen_error)?;
    let (identity, created) = load_or_create_key(&paths.key_file)?;
    if created {
        tracing::info!(key = %paths.key_file.display(), "created a new node identity");
    }
    let configured = peers::Configured::from_settings(&settings)?;
    let root = CancellationToken::new();
    let gateway = Gateway::new(&settings.gateway, &settings.rpc);
    let browsers =
        (settings.browser.enabled).then(|| Browsers::new(&settings.browser, &settings.rpc));
    let builder = Node::builder(identity).bound(socket);
    let builder = match &browsers {
        Some(browsers) => builder.hosted(browsers.incoming().handler()),
        None => builder,
    };
    let builder = match settings.relay.enabled {
        true => builder.relay(settings.relay.limits.clone()),
        false => builder,
    };
    let node = builder
        .transport(settings.transport.clone())
        .rpc(settings.rpc.clone())
        .fallback(gateway.inbound().handler())
        .discovery(settings.discovery.clone())
        .cancel_token(root.child_token())
        .bind()?;
    let book = paths.data_dir.join(peers::PEER_BOOK);
    let reach = reach_addrs(node.local_addr());
    let browsers = browsers
        .map(|browsers| browsers.start(node.clone(), root.child_token()))
        .transpose()?;
    let mut context = AdminContext::new(node.clone(), Instant::now(), reach, book.clone());
    context.browser = browsers.as_ref().map(|started| started.listening.clone());
    peers::load_book(&node, &book);
    let admin = AdminServer::bind(&paths.admin_socket, &settings)?;
    let gateway_metrics = gateway.metrics().clone();
    let browser_metrics = browsers
        .as_ref()
        .map(|started| started.listening.metrics.clone());
    context.metrics.append(move || {
        let browsers = browser_metrics.as_ref().map(|metrics| metrics.render());
        gateway_metrics.render() + &browsers.unwrap_or_default()
    });
    let gateway = gateway
        .start(
            node.clone(),
            &paths.agent_socket,
            context.reach_addrs.clone(),
            root.child_token(),
        )
        .await?;
    let metrics = bind_metrics(settings.metrics.listen)
        .await?
        .map(|server| server.with_limits(settings.metrics.limits));
    let metrics = match &browsers {
        Some(started) => {
            metrics.map(|server| server.with_browser_info(browser_info(&node, &started.listening)))
        }
        None => metrics,
    };
    let mut terminate = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;

    let tasks = TaskTracker::new();
    tasks.spawn(admin.serve(context.clone(), root.child_token()));
    let use_relays = settings.nat.use_relays;
    tasks.spawn(netchecks::run(
        context.clone(),
        use_relays,
        root.child_token(),
    ));
    tasks.spawn(gateway.serving);
    let browser_addr = browsers.map(|started| {
        tasks.spawn(started.serving);
        started.listening.addr
    });
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
    announce_gateway(gateway.socket.as_deref(), gateway.tcp);
    announce_browsers(browser_addr, metrics_addr);

    let signal_name = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    tracing::info!(signal = signal_name, grace = ?settings.shutdown_grace, "shutting down");
    notify_systemd(sd_notify::NotifyState::Stopping);
    context.draining.cancel();
    // First, before anything that can wait: an overrun stop keeps the book.
    peers::save_book(&node, &book);
    let stop = async {
        node.shutdown(settings.shutdown_grace).await;
        root.cancel();
        tasks.close();
        tasks.wait().await;
    };
    let bound = settings.shutdown_grace + SHUTDOWN_MARGIN - EXIT_WAIT;
    match tokio::time::timeout(bound, stop).await {
        Ok(()) => tracing::info!("stopped"),
        Err(_) => {
            tracing::warn!(?bound, "shutdown overran its bound: exiting anyway");
            root.cancel();
        }
    }
    Ok(())
}

/// Refuses paths another user could change, or a socket path holding
/// something else, before anything is created; then makes and locks the
/// data directory.
fn prepare_paths(paths: &Paths) -> Result<DataDirLock, DaemonError> {
    check_dir("the data directory", &paths.data_dir)?;
    let socket_dir = paths
        .admin_socket
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    check_dir("the admin socket's directory", socket_dir)?;
    AdminServer::check_path(&paths.admin_socket)?;
    make_data_dir(&paths.data_dir)?;
    Ok(DataDirLock::acquire(&paths.data_dir)?)
}

/// Refuses a data directory another user could change, then creates it
/// (mode 0700) if it does not exist.
pub fn make_data_dir(path: &Path) -> Result<(), DaemonError> {
    check_dir("the data directory", path)?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| DaemonError::DataDir {
            path: path.to_owned(),
            source,
        })
}

/// The metrics listener `listen` asks for. `Auto` takes the default port if
/// it is free and any free loopback port if not (another daemon on this host
/// has it), saying so; an explicit address that is taken is an error.
async fn bind_metrics(listen: MetricsListen) -> Result<Option<MetricsServer>, MetricsServerError> {
    let server = match listen {
        MetricsListen::Off => return Ok(None),
        MetricsListen::At(addr) => MetricsServer::bind(addr).await?,
        MetricsListen::Auto => match MetricsServer::bind(DEFAULT_METRICS).await {
            Err(MetricsServerError::Bind { source, .. })
                if source.kind() == std::io::ErrorKind::AddrInUse =>
            {
                let server = MetricsServer::bind(SocketAddr::new(DEFAULT_METRICS.ip(), 0)).await?;
                tracing::warn!(
                    taken = %DEFAULT_METRICS,
                    addr = %server.local_addr(),
                    "the default metrics port is taken (another daemon?); set metrics.listen to choose one"
                );
                server
            }
            other => other?,
        },
    };
    Ok(Some(server))
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

/// What `/browser` answers: the listener's address and current pins.
fn browser_info(node: &Node, listening: &browser::Listening) -> BrowserInfo {
    let (node, listening) = (node.clone(), listening.clone());
    Arc::new(move || browser::info_json(&node, &listening))
}

/// Tells the operator where pages connect.
fn announce_browsers(addr: Option<SocketAddr>, metrics: Option<SocketAddr>) {
    let Some(addr) = addr else { return };
    match metrics {
        Some(metrics) => println!(
            "browser agents: WebTransport on {addr} (udp); pages read http://{metrics}/browser"
        ),
        None => println!(
            "browser agents: WebTransport on {addr} (udp); metrics.listen is off, so pages cannot read /browser"
        ),
    }
}

/// Tells the operator where agents reach the gateway.
fn announce_gateway(socket: Option<&Path>, tcp: Option<SocketAddr>) {
    if let Some(socket) = socket {
        println!("agent gateway: unix:{}", socket.display());
    }
    if let Some(addr) = tcp {
        println!("agent gateway: {addr}");
    }
}
