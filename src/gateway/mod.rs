//! The agent gateway (docs/gateway.md): a gRPC listener on a Unix socket
//! (and, if configured, loopback TCP) through which local programs in any
//! language call other nodes' methods, expose their own gRPC services to
//! other nodes, and ask about this node with `peerd.agent.v1.Agent`.

mod codec;
mod exposures;
mod inbound;
mod listener;
mod local;
mod metadata;
mod metrics;
mod outbound;
mod settings;
mod status;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use codec::RawCodec;
pub use exposures::{Allow, BackendTarget, Exposure, ExposureGuard, Exposures};
pub use inbound::Inbound;
pub use listener::{GatewayError, Listeners};
pub use metadata::{CALLER, NODE, SERVICE, is_forwarded};
pub use metrics::GatewayMetrics;
pub use settings::{ExposeSettings, GatewaySettings, GatewaySocket};

use peerd::Node;
use peerd::rpc::RpcConfig;

/// The generated messages of `proto/peerd/agent/v1/agent.proto`.
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/peerd.agent.v1.rs"));
}

/// The gateway's limits (the `gateway.*` keys and `rpc.max_message_size`).
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_message_size: usize,
    pub max_connections: usize,
    pub max_calls_per_connection: usize,
    pub max_calls_per_service: usize,
    pub stream_buffer: usize,
    /// The deadline of an agent's call that sets no `grpc-timeout`.
    pub default_deadline: Duration,
}

impl Limits {
    pub fn new(settings: &GatewaySettings, rpc: &RpcConfig) -> Self {
        Self {
            max_message_size: rpc.max_message_size as usize,
            max_connections: settings.max_connections,
            max_calls_per_connection: settings.max_calls_per_connection,
            max_calls_per_service: settings.max_calls_per_service,
            stream_buffer: settings.stream_buffer,
            default_deadline: rpc.default_deadline,
        }
    }
}

/// What every gateway connection serves from.
pub struct Shared {
    pub node: Node,
    pub exposures: Exposures,
    pub limits: Limits,
    pub metrics: Arc<GatewayMetrics>,
    /// Addresses peers reach this node at, for `WhoAmI`.
    pub reach_addrs: Vec<SocketAddr>,
    /// Every task of the gateway; waited for at shutdown.
    pub tasks: TaskTracker,
    pub cancel: CancellationToken,
}

/// Exposes the `[[gateway.expose]]` services; the guards keep them exposed.
pub fn expose_configured(
    settings: &GatewaySettings,
    exposures: &Exposures,
) -> Result<Vec<ExposureGuard>, String> {
    settings
        .expose
        .iter()
        .map(|entry| {
            let exposure = Exposure::new(
                entry.service.clone(),
                BackendTarget::parse(&entry.target)?,
                Allow::parse(&entry.allow)?,
                settings.max_calls_per_service,
            );
            exposures.add(exposure)
        })
        .collect()
}

/// The gateway before it listens: what the node's RPC server needs (the
/// exposures, for its fallback) exists before the node binds.
pub struct Gateway {
    settings: GatewaySettings,
    limits: Limits,
    exposures: Exposures,
    metrics: Arc<GatewayMetrics>,
}

/// A gateway listening: where, and the future that serves it.
pub struct Started {
    pub socket: Option<PathBuf>,
    pub tcp: Option<SocketAddr>,
    pub serving: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Gateway {
    pub fn new(settings: &GatewaySettings, rpc: &RpcConfig) -> Self {
        Self {
            limits: Limits::new(settings, rpc),
            settings: settings.clone(),
            exposures: Exposures::default(),
            metrics: Arc::default(),
        }
    }

    /// The RPC server's fallback for calls to exposed services.
    pub fn inbound(&self) -> Inbound {
        Inbound {
            exposures: self.exposures.clone(),
            limits: self.limits.clone(),
            metrics: self.metrics.clone(),
        }
    }

    pub fn metrics(&self) -> &Arc<GatewayMetrics> {
        &self.metrics
    }

    /// Exposes the configured services and binds the listeners;
    /// `default_socket` unless `gateway.socket` says otherwise.
    pub async fn start(
        self,
        node: Node,
        default_socket: &Path,
        reach_addrs: Vec<SocketAddr>,
        cancel: CancellationToken,
    ) -> Result<Started, GatewayError> {
        let socket = match &self.settings.socket {
            GatewaySocket::Off => None,
            GatewaySocket::Default => Some(default_socket.to_owned()),
            GatewaySocket::At(path) => Some(path.clone()),
        };
        let guards =
            expose_configured(&self.settings, &self.exposures).map_err(GatewayError::Expose)?;
        let listeners = Listeners::bind(
            socket.as_deref(),
            self.settings.listen,
            self.settings.group.as_deref(),
        )
        .await?;
        let shared = Arc::new(Shared {
            node,
            exposures: self.exposures,
            limits: self.limits,
            metrics: self.metrics,
            reach_addrs,
            tasks: TaskTracker::new(),
            cancel,
        });
        let (socket, tcp) = (
            listeners.socket_path().map(Path::to_owned),
            listeners.tcp_addr(),
        );
        let serving = Box::pin(async move {
            listeners.serve(shared.clone()).await;
            shared.tasks.close();
            shared.tasks.wait().await;
            drop(guards);
        });
        Ok(Started {
            socket,
            tcp,
            serving,
        })
    }
}

/// A call's answer to the agent: messages, then one status. A stream that
/// ends without a status (its queue was dropped) ends with UNAVAILABLE,
/// never with the OK an empty end would mean.
pub struct Answer {
    messages: ReceiverStream<Result<Bytes, tonic::Status>>,
    ended: bool,
    /// Counts the queued messages' bytes (`GatewayMetrics::buffered`),
    /// which their sender added.
    counted: Option<Arc<GatewayMetrics>>,
}

impl Answer {
    pub fn new(messages: mpsc::Receiver<Result<Bytes, tonic::Status>>) -> Self {
        Self {
            messages: ReceiverStream::new(messages),
            ended: false,
            counted: None,
        }
    }

    /// An answer whose sender counts each message's bytes into `metrics`.
    pub fn counted(
        messages: mpsc::Receiver<Result<Bytes, tonic::Status>>,
        metrics: Arc<GatewayMetrics>,
    ) -> Self {
        Self {
            messages: ReceiverStream::new(messages),
            ended: false,
            counted: Some(metrics),
        }
    }

    fn taken(&self, message: &Bytes) {
        taken(self.counted.as_deref(), message);
    }
}

fn taken(counted: Option<&GatewayMetrics>, message: &Bytes) {
    if let Some(metrics) = counted {
        metrics.unbuffer(message.len());
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        let queue = self.messages.as_mut();
        queue.close();
        while let Ok(item) = queue.try_recv() {
            if let Ok(message) = item {
                taken(self.counted.as_deref(), &message);
            }
        }
    }
}

impl Stream for Answer {
    type Item = Result<Bytes, tonic::Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let next = std::task::ready!(Pin::new(&mut self.messages).poll_next(cx));
        Poll::Ready(match next {
            Some(Ok(message)) => {
                self.taken(&message);
                Some(Ok(message))
            }
            Some(Err(status)) => {
                self.ended = true;
                Some(Err(status))
            }
            None => {
                self.ended = true;
                Some(Err(tonic::Status::unavailable(
                    "the gateway ended the call without its status",
                )))
            }
        })
    }
}
