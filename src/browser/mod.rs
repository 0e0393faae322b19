//! Browser agents (docs/browser.md, docs/protocol.md §11): web pages
//! connect over WebTransport, prove their Ed25519 key, and then call any
//! node through this daemon, serve calls other nodes make to their node
//! id, and exchange datagrams.
//!
//! - `listener`: the WebTransport endpoint on its own UDP port, and the
//!   session limit.
//! - `certificates`: the short-lived ECDSA certificates pages pin, rotated.
//! - `session`: one page's session: the proof (`handshake`), then its
//!   streams and datagrams until it ends.
//! - `outgoing`: a page's call to a node; `incoming`: a node's call to a
//!   page (the RPC server's hosted handler); `datagrams`: both ways.
//! - `pages`: the connected pages by node id.

mod certificates;
mod datagrams;
mod frames;
mod handshake;
mod incoming;
mod listener;
mod metrics;
mod outgoing;
mod pages;
mod session;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use peerd::Node;
use peerd::identity::to_hex;
use peerd::rpc::RpcConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use certificates::{CertificateError, Certificates, MAX_VALIDITY, MIN_VALIDITY};
pub use incoming::Incoming;
pub use listener::BrowserError;
pub use metrics::BrowserMetrics;
use pages::Pages;

/// The generated messages of `proto/peerd/browser/v1/browser.proto`.
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/peerd.browser.v1.rs"));
}

/// The `browser.*` keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserSettings {
    /// Off by default: it opens a second UDP port.
    pub enabled: bool,
    pub listen: SocketAddr,
    pub certificate_validity: Duration,
    pub max_sessions: usize,
    pub max_calls_per_session: usize,
    /// Datagrams waiting for one page, per service; more are dropped.
    pub datagram_queue: usize,
}

impl Default for BrowserSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 7734)),
            certificate_validity: Duration::from_secs(7 * 86_400),
            max_sessions: 64,
            max_calls_per_session: 64,
            datagram_queue: 1024,
        }
    }
}

/// What every session serves from.
struct Shared {
    node: Node,
    pages: Pages,
    certificates: Arc<Certificates>,
    settings: BrowserSettings,
    rpc: RpcConfig,
    metrics: Arc<BrowserMetrics>,
    tasks: TaskTracker,
    cancel: CancellationToken,
}

/// Browser agents before the node binds: the RPC server's hosted handler
/// needs the pages, and the sessions need the node.
pub struct Browsers {
    settings: BrowserSettings,
    rpc: RpcConfig,
    pages: Pages,
    metrics: Arc<BrowserMetrics>,
}

/// The WebTransport listener, serving.
pub struct Started {
    pub listening: Listening,
    pub serving: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
}

/// What the daemon tells about its listener: `/browser` and `status`.
#[derive(Clone)]
pub struct Listening {
    pub addr: SocketAddr,
    pub certificates: Arc<Certificates>,
    pub metrics: Arc<BrowserMetrics>,
}

impl Listening {
    /// The hex pins a page passes: the current certificate's, the next's.
    pub fn hashes(&self) -> Vec<String> {
        self.certificates
            .hashes()
            .iter()
            .map(|h| to_hex(h))
            .collect()
    }
}

impl Browsers {
    pub fn new(settings: &BrowserSettings, rpc: &RpcConfig) -> Self {
        Self {
            settings: settings.clone(),
            rpc: rpc.clone(),
            pages: Pages::default(),
            metrics: Arc::default(),
        }
    }

    /// The RPC server's handler for calls to the pages connected here.
    pub fn incoming(&self) -> Incoming {
        Incoming {
            pages: self.pages.clone(),
            metrics: self.metrics.clone(),
            max_message: self.rpc.max_message_size,
        }
    }

    /// Binds the listener; its future serves sessions and rotates the
    /// certificates until `cancel`.
    pub fn start(self, node: Node, cancel: CancellationToken) -> Result<Started, BrowserError> {
        let certificates = Arc::new(Certificates::new(self.settings.certificate_validity)?);
        let endpoint = listener::bind(&self.settings, certificates.clone())?;
        let addr = endpoint.local_addr().map_err(BrowserError::Bind)?;
        let listening = Listening {
            addr,
            certificates: certificates.clone(),
            metrics: self.metrics.clone(),
        };
        let shared = Arc::new(Shared {
            node,
            pages: self.pages,
            certificates,
            settings: self.settings,
            rpc: self.rpc,
            metrics: self.metrics,
            tasks: TaskTracker::new(),
            cancel,
        });
        Ok(Started {
            listening,
            serving: Box::pin(listener::serve(shared, endpoint)),
        })
    }
}

/// What a page reads before it connects: `GET /browser` on the metrics
/// listener answers this JSON (docs/browser.md).
/// An unspecified listen address is given as loopback's: pages on this
/// machine reach it there.
pub fn info_json(node: &Node, listening: &Listening) -> String {
    let addr = listening.addr;
    let host = match addr.ip().is_unspecified() {
        true => SocketAddr::from(([127, 0, 0, 1], addr.port())),
        false => addr,
    };
    serde_json::json!({
        "node_id": node.id().to_string(),
        "url": format!("https://{host}/"),
        "certificate_hashes": listening.hashes(),
    })
    .to_string()
}
