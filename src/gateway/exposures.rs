//! The services this node's agents expose to other nodes: each a gRPC
//! service name, the agent's server it is forwarded to, and who may call
//! it. Static ones come from `[[gateway.expose]]`; dynamic ones live as
//! long as the agent's `Expose` call (their guard is dropped with it).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tokio::sync::Semaphore;
use tonic::transport::{Channel, Endpoint, Uri};

use peerd::identity::NodeId;

/// How long connecting to an agent's server may take.
const BACKEND_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Where an agent serves an exposed service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendTarget {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl BackendTarget {
    /// `unix:/path` or `<loopback ip>:<port>`: the gateway forwards calls
    /// from the network only to programs on this machine.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(path) = text.strip_prefix("unix:") {
            return match path.starts_with('/') {
                true => Ok(Self::Unix(path.into())),
                false => Err(format!(
                    "target {text:?}: a unix socket path must be absolute"
                )),
            };
        }
        let addr: SocketAddr = text.parse().map_err(|_| {
            format!("target {text:?}: expected \"unix:/path\" or \"127.0.0.1:<port>\"")
        })?;
        match addr.ip().is_loopback() {
            true => Ok(Self::Tcp(addr)),
            false => Err(format!(
                "target {text:?}: only loopback addresses may be targets"
            )),
        }
    }
}

impl std::fmt::Display for BackendTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
            Self::Tcp(addr) => write!(f, "{addr}"),
        }
    }
}

/// Who may call an exposed service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allow {
    AnyNode,
    Nodes(HashSet<NodeId>),
}

impl Allow {
    /// `["*"]` or node ids; an empty list is refused: nothing is exposed
    /// by accident.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        if entries.is_empty() {
            return Err("allow must list node ids or \"*\" (any node)".into());
        }
        if entries.iter().any(|entry| entry == "*") {
            return Ok(Self::AnyNode);
        }
        let nodes = entries
            .iter()
            .map(|entry| {
                entry
                    .parse()
                    .map_err(|e| format!("allow entry {entry:?} is not a node id: {e}"))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self::Nodes(nodes))
    }

    pub fn permits(&self, node: NodeId) -> bool {
        match self {
            Self::AnyNode => true,
            Self::Nodes(nodes) => nodes.contains(&node),
        }
    }
}

/// One exposed service.
#[derive(Debug)]
pub struct Exposure {
    pub service: String,
    pub target: BackendTarget,
    pub allow: Allow,
    /// Connects on first use, and again after the backend restarts.
    pub channel: Channel,
    /// Calls forwarded to it at once (`gateway.max_calls_per_service`).
    pub calls: Arc<Semaphore>,
}

impl Exposure {
    /// Needs a tokio runtime: the channel's worker runs on it.
    pub fn new(service: String, target: BackendTarget, allow: Allow, max_calls: usize) -> Self {
        let channel = backend_channel(&target);
        Self {
            service,
            target,
            allow,
            channel,
            calls: Arc::new(Semaphore::new(max_calls)),
        }
    }
}

fn backend_channel(target: &BackendTarget) -> Channel {
    match target {
        BackendTarget::Tcp(addr) => Endpoint::from_shared(format!("http://{addr}"))
            .expect("a socket address is a valid authority")
            .connect_timeout(BACKEND_CONNECT_TIMEOUT)
            .connect_lazy(),
        BackendTarget::Unix(path) => {
            let path = path.clone();
            // The URI is not used: the connector dials the socket.
            Endpoint::from_static("http://localhost")
                .connect_timeout(BACKEND_CONNECT_TIMEOUT)
                .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move { UnixStream::connect(path).await.map(TokioIo::new) }
                }))
        }
    }
}

/// The table of exposed services, shared by the gateway and the RPC
/// server's fallback.
#[derive(Debug, Clone, Default)]
pub struct Exposures {
    services: Arc<RwLock<HashMap<String, Arc<Exposure>>>>,
}

impl Exposures {
    pub fn get(&self, service: &str) -> Option<Arc<Exposure>> {
        self.read().get(service).cloned()
    }

    /// Names of the services exposed now.
    pub fn names(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// Adds `exposure` until the guard is dropped; a name already exposed
    /// is refused.
    pub fn add(&self, exposure: Exposure) -> Result<ExposureGuard, String> {
        let mut services = self.services.write().unwrap_or_else(|e| e.into_inner());
        if services.contains_key(&exposure.service) {
            return Err(format!("service {} is already exposed", exposure.service));
        }
        let exposure = Arc::new(exposure);
        services.insert(exposure.service.clone(), exposure.clone());
        Ok(ExposureGuard {
            exposures: self.clone(),
            exposure,
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Exposure>>> {
        self.services.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// Keeps a service exposed; dropping it ends the exposure.
#[derive(Debug)]
pub struct ExposureGuard {
    exposures: Exposures,
    exposure: Arc<Exposure>,
}

impl Drop for ExposureGuard {
    fn drop(&mut self) {
        let mut services = self
            .exposures
            .services
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let ours = services
            .get(&self.exposure.service)
            .is_some_and(|current| Arc::ptr_eq(current, &self.exposure));
        if ours {
            services.remove(&self.exposure.service);
            tracing::info!(service = %self.exposure.service, "exposure ended");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_unix_sockets_or_loopback_ports() {
        assert_eq!(
            BackendTarget::parse("unix:/run/a.sock"),
            Ok(BackendTarget::Unix("/run/a.sock".into()))
        );
        assert!(BackendTarget::parse("unix:relative.sock").is_err());
        assert!(matches!(
            BackendTarget::parse("127.0.0.1:50051"),
            Ok(BackendTarget::Tcp(_))
        ));
        assert!(matches!(
            BackendTarget::parse("[::1]:50051"),
            Ok(BackendTarget::Tcp(_))
        ));
        let remote = BackendTarget::parse("192.0.2.7:50051").unwrap_err();
        assert!(remote.contains("loopback"), "{remote}");
        assert!(BackendTarget::parse("localhost:1").is_err());
    }

    #[test]
    fn allow_lists_must_be_given_and_name_nodes_or_any() {
        let id = NodeId::from_bytes([3; 32]);
        assert!(Allow::parse(&[]).is_err());
        assert_eq!(Allow::parse(&["*".into()]), Ok(Allow::AnyNode));
        let only = Allow::parse(&[id.to_string()]).unwrap();
        assert!(only.permits(id));
        assert!(!only.permits(NodeId::from_bytes([4; 32])));
        assert!(Allow::parse(&["bob".into()]).unwrap_err().contains("bob"));
    }

    #[tokio::test]
    async fn an_exposure_lasts_as_long_as_its_guard_and_names_are_unique() {
        let exposures = Exposures::default();
        let make = || {
            Exposure::new(
                "pkg.Svc".into(),
                BackendTarget::parse("unix:/nonexistent").unwrap(),
                Allow::AnyNode,
                4,
            )
        };
        let guard = exposures.add(make()).unwrap();
        assert!(exposures.get("pkg.Svc").is_some());
        assert!(
            exposures
                .add(make())
                .unwrap_err()
                .contains("already exposed")
        );
        drop(guard);
        assert!(exposures.get("pkg.Svc").is_none());
        assert!(exposures.add(make()).is_ok());
    }
}
