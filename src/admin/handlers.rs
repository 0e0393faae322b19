//! What each admin request does, against the running node.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use super::calls;
use super::failure::Failure;
use super::protocol::Request;
use super::reports::{
    BookReport, BrowserServing, CallReport, ConnectReport, ConnectionFigures, ForgetReport,
    IdReport, NetcheckReport, PeerReport, PingReport, RelayServing, RetryReport, ServiceReport,
    StatusReport,
};
use peerd::Node;
use peerd::connection::{Direction, NodeConnection};
use peerd::discovery::{PinState, peer_book};
use peerd::identity::NodeId;
use peerd::node::PathKind;

use crate::metrics::Metrics;
use peerd::addressing::{AddressSource, ParsePeerAddrError, PeerAddr};
use peerd::discovery::ReachError;
use peerd::nat::NatReport;
use peerd::node_service;
use peerd::rpc::CallOptions;

/// Admin calls that reach other nodes give up after this.
const REMOTE_TIMEOUT: Duration = Duration::from_secs(10);

/// The daemon state the admin API reads. `ready` and `draining` are one-way
/// switches, set by cancelling them.
#[derive(Clone)]
pub struct AdminContext {
    pub node: Node,
    /// The node's metrics, shared with the /metrics listener.
    pub metrics: Metrics,
    pub started: Instant,
    pub reach_addrs: Vec<SocketAddr>,
    /// The peer book's file, saved when an entry is forgotten.
    pub book: PathBuf,
    /// The last netcheck's findings, for `status`.
    pub last_netcheck: Arc<Mutex<Option<NatReport>>>,
    pub ready: tokio_util::sync::CancellationToken,
    pub draining: tokio_util::sync::CancellationToken,
    /// The browser agents' listener, with `browser.enabled`.
    pub browser: Option<crate::browser::Listening>,
}

impl AdminContext {
    pub fn new(node: Node, started: Instant, reach_addrs: Vec<SocketAddr>, book: PathBuf) -> Self {
        Self {
            metrics: Metrics::of(&node),
            node,
            started,
            reach_addrs,
            book,
            last_netcheck: Arc::default(),
            ready: tokio_util::sync::CancellationToken::new(),
            draining: tokio_util::sync::CancellationToken::new(),
            browser: None,
        }
    }

    /// Runs a netcheck and keeps its findings for `status`.
    pub async fn netcheck(&self) -> NatReport {
        let report = self.node.netcheck().await;
        *self.last_netcheck.lock().unwrap_or_else(|e| e.into_inner()) = Some(report.clone());
        report
    }

    /// Started, and not draining for shutdown.
    pub fn is_ready(&self) -> bool {
        self.ready.is_cancelled() && !self.draining.is_cancelled()
    }
}

pub async fn handle(context: &AdminContext, request: Request) -> Result<Value, Failure> {
    match request {
        Request::Status => to_json(status(context)),
        Request::Peers => to_json(peers(context)),
        Request::Id => to_json(IdReport {
            node_id: context.node.id().to_string(),
            addrs: context
                .reach_addrs
                .iter()
                .map(ToString::to_string)
                .collect(),
        }),
        Request::Health => to_json(serde_json::json!({ "ready": context.is_ready() })),
        Request::Connect {
            peer,
            timeout_millis,
        } => to_json(connect(context, &peer, remote_timeout(timeout_millis)).await?),
        Request::Disconnect { node } => {
            to_json(serde_json::json!({ "closed": context.node.manager().disconnect(node) }))
        }
        Request::Book => to_json(book(context)),
        Request::Forget { node } => to_json(forget(context, node)?),
        Request::Ping {
            node,
            addr,
            timeout_millis,
        } => {
            let options = CallOptions::default().with_timeout(remote_timeout(timeout_millis));
            to_json(ping(context, node, addr, &options).await?)
        }
        Request::Services => to_json(context.node.discovery().announced()),
        Request::Netcheck => to_json(NetcheckReport {
            nat: context.netcheck().await,
            publishes: context
                .reach_addrs
                .iter()
                .map(ToString::to_string)
                .collect(),
        }),
        Request::FindService { name } => to_json(find_service(context, &name).await),
        Request::Call {
            node,
            addr,
            method,
            body,
            timeout_millis,
            metadata,
        } => {
            let options = CallOptions {
                timeout: Some(remote_timeout(timeout_millis)),
                metadata,
                ..CallOptions::default()
            };
            to_json(call(context, node, addr, &method, &body, &options).await?)
        }
    }
}

/// The timeout a request asked for, else the default for work that waits
/// on other nodes.
fn remote_timeout(millis: Option<u64>) -> Duration {
    millis.map_or(REMOTE_TIMEOUT, Duration::from_millis)
}

fn to_json(value: impl Serialize) -> Result<Value, Failure> {
    serde_json::to_value(value).map_err(|e| Failure::other(e.to_string()))
}

fn status(context: &AdminContext) -> StatusReport {
    let connections = context.node.manager().connections();
    let count = |direction| {
        connections
            .iter()
            .filter(|c| c.direction() == direction)
            .count()
    };
    let totals = context.metrics.call_totals();
    let calls_total = totals.served + totals.made;
    let errors = totals.served_errors + totals.made_errors;
    let uptime = context.started.elapsed();
    let node = &context.node;
    let paths = node.paths();
    StatusReport {
        node_id: context.node.id().to_string(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_secs: uptime.as_secs(),
        listen_addr: context.node.local_addr().to_string(),
        connections_inbound: count(Direction::Inbound),
        connections_outbound: count(Direction::Outbound),
        calls_in_flight: context.node.server().in_flight(),
        calls_total,
        calls_per_second: ratio(calls_total, uptime.as_secs_f64()),
        error_rate: ratio(errors, calls_total as f64),
        ready: context.is_ready(),
        reachability: context
            .last_netcheck
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone(),
        relays: node.relays_held().iter().map(ToString::to_string).collect(),
        paths_relayed: paths.relayed,
        paths_direct: paths.direct,
        relay: node.relay_server().map(|relay| {
            let stats = relay.stats();
            RelayServing {
                reservations: stats.reservations,
                circuits: stats.circuits,
            }
        }),
        browser: context.browser.as_ref().map(|listening| BrowserServing {
            listen_addr: listening.addr.to_string(),
            pages: listening.metrics.sessions(),
            certificate_hashes: listening.hashes(),
        }),
    }
}

/// `part / whole`, and 0 for an empty whole.
fn ratio(part: u64, whole: f64) -> f64 {
    if whole > 0.0 {
        part as f64 / whole
    } else {
        0.0
    }
}

fn peers(context: &AdminContext) -> Vec<PeerReport> {
    let pinned: HashMap<NodeId, PinState> = context.node.discovery().pinned().into_iter().collect();
    let connections = context.node.manager().connections();
    let mut peers: Vec<PeerReport> = connections
        .iter()
        .map(|c| connected_report(&context.node, c, pinned.contains_key(&c.remote_node_id())))
        .collect();
    let down = pinned
        .iter()
        .filter(|(node, _)| !connections.iter().any(|c| c.remote_node_id() == **node));
    peers.extend(down.map(|(node, state)| pinned_down_report(*node, state)));
    peers.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    peers
}

fn book(context: &AdminContext) -> Vec<BookReport> {
    let pinned: HashMap<NodeId, PinState> = context.node.discovery().pinned().into_iter().collect();
    let manager = context.node.manager();
    let mut entries = context.node.addresses().entries();
    entries.sort_by_key(|(node, entry)| (std::cmp::Reverse(entry.last_seen_unix), *node));
    entries
        .into_iter()
        .map(|(node, entry)| BookReport {
            node_id: node.to_string(),
            state: match manager.connection(node) {
                Some(_) => "connected",
                None => "offline",
            }
            .to_owned(),
            pinned: pinned.contains_key(&node),
            addrs: entry.addrs.iter().map(ToString::to_string).collect(),
            source: entry.source,
            last_seen_unix: entry.last_seen_unix,
            relays: entry.relays.iter().map(ToString::to_string).collect(),
        })
        .collect()
}

/// Forgets `node` and saves the book at once, so a restart does not bring
/// the entry back. A pinned peer is the configuration's to remove.
fn forget(context: &AdminContext, node: NodeId) -> Result<ForgetReport, Failure> {
    let pinned = context.node.discovery().pinned();
    if pinned.iter().any(|(pin, _)| *pin == node) {
        return Err(Failure::invalid(format!(
            "node {node} is pinned by the configuration (`peers` or --peer): remove it there"
        )));
    }
    let forgotten = context.node.discovery().forget(node);
    if forgotten {
        peer_book::save(&context.book, context.node.addresses())
            .map_err(|e| Failure::other(e.to_string()))?;
    }
    Ok(ForgetReport {
        node_id: node.to_string(),
        forgotten,
        connected: context.node.manager().connection(node).is_some(),
    })
}

fn connected_report(node: &Node, connection: &NodeConnection, pinned: bool) -> PeerReport {
    let stats = connection.stats();
    PeerReport {
        node_id: connection.remote_node_id().to_string(),
        state: if connection.is_draining() {
            "draining"
        } else {
            "connected"
        }
        .to_owned(),
        pinned,
        connection: Some(ConnectionFigures {
            direction: connection.direction(),
            remote_addr: remote_addr(node, connection),
            rtt_micros: connection.rtt().as_micros() as u64,
            age_secs: connection.created().elapsed().as_secs(),
            active_streams: connection.active_streams(),
            bytes_sent: stats.udp_tx.bytes,
            bytes_received: stats.udp_rx.bytes,
        }),
        retry: None,
    }
}

fn pinned_down_report(node: NodeId, state: &PinState) -> PeerReport {
    let (name, retry) = match state {
        PinState::Reconnecting {
            attempt,
            next_retry_millis,
            last_error,
        } => (
            "reconnecting",
            Some(RetryReport {
                attempt: *attempt,
                next_retry_millis: *next_retry_millis,
                last_error: last_error.clone(),
            }),
        ),
        PinState::Connecting { .. } | PinState::Connected => ("connecting", None),
    };
    PeerReport {
        node_id: node.to_string(),
        state: name.to_owned(),
        pinned: true,
        connection: None,
        retry,
    }
}

/// The call's options with the addresses of `host_port`, if given, to dial
/// (the address book learns them only once the call has worked: a
/// mistyped or dead address is not kept), and those addresses.
async fn dial_at(
    options: &CallOptions,
    node: NodeId,
    host_port: Option<String>,
) -> Result<(CallOptions, Vec<SocketAddr>), Failure> {
    let Some(host_port) = host_port else {
        return Ok((options.clone(), Vec::new()));
    };
    let peer = PeerAddr { node, host_port };
    let addrs = peer
        .resolve()
        .await
        .map_err(|e| Failure::invalid(format!("cannot resolve {}: {e}", peer.host_port)))?;
    let options = addrs
        .iter()
        .fold(options.clone(), |options, addr| options.with_addr(*addr));
    Ok((options, addrs))
}

fn learn(context: &AdminContext, node: NodeId, addrs: &[SocketAddr]) {
    if !addrs.is_empty() {
        context
            .node
            .addresses()
            .learn(node, addrs, AddressSource::Manual);
    }
}

/// `peer` is `<node-id>@<host>:<port>`, or a bare node id to dial where
/// the peer book or a lookup says it is.
async fn connect(
    context: &AdminContext,
    peer: &str,
    timeout: Duration,
) -> Result<ConnectReport, Failure> {
    let (node, at) = match peer.parse::<NodeId>() {
        Ok(node) => (node, None),
        Err(_) => {
            let peer: PeerAddr = peer
                .parse()
                .map_err(|e: ParsePeerAddrError| Failure::invalid(e.to_string()))?;
            (peer.node, Some(peer))
        }
    };
    let connecting = async {
        match at {
            Some(peer) => at_address(context, peer).await,
            None => by_id(context, node).await,
        }
    };
    let connection = tokio::time::timeout(timeout, connecting)
        .await
        .map_err(|_| {
            Failure::unreachable(format!("could not reach {peer} within {timeout:?}"))
        })??;
    Ok(ConnectReport {
        node_id: node.to_string(),
        direction: connection.direction(),
        remote_addr: remote_addr(&context.node, &connection),
    })
}

/// The connection's remote address, or for one on a virtual path how that
/// path reaches the peer: the virtual address means nothing to a reader.
fn remote_addr(node: &Node, connection: &NodeConnection) -> String {
    match node.path_of(connection.remote_address()) {
        PathKind::Udp => connection.remote_address().to_string(),
        PathKind::Relayed => "via relay".to_owned(),
        PathKind::Punched(direct) => format!("{direct} (punched)"),
    }
}

async fn at_address(context: &AdminContext, peer: PeerAddr) -> Result<NodeConnection, Failure> {
    let discovery = context.node.discovery();
    discovery
        .connect(&peer, AddressSource::Manual)
        .await
        .map_err(|e| match e {
            ReachError::Resolve { .. } => Failure::invalid(e.to_string()),
            ReachError::Connect(e) => Failure::of_connect(&e),
        })
}

async fn by_id(context: &AdminContext, node: NodeId) -> Result<NodeConnection, Failure> {
    context
        .node
        .client()
        .connect(node, &CallOptions::default())
        .await
        .map_err(|e| Failure::of_connect(&e))
}

async fn ping(
    context: &AdminContext,
    node: NodeId,
    addr: Option<String>,
    options: &CallOptions,
) -> Result<PingReport, Failure> {
    let (options, addrs) = dial_at(options, node, addr).await?;
    let rtt = node_service::ping(context.node.client(), node, &options)
        .await
        .map_err(|status| call_failure(context, node, &status))?;
    learn(context, node, &addrs);
    Ok(PingReport {
        node_id: node.to_string(),
        rtt_micros: rtt.as_micros() as u64,
    })
}

async fn call(
    context: &AdminContext,
    node: NodeId,
    addr: Option<String>,
    method: &str,
    body: &Value,
    options: &CallOptions,
) -> Result<CallReport, Failure> {
    let (options, addrs) = dial_at(options, node, addr).await?;
    let (method, response) = calls::call(context.node.client(), node, method, body, &options)
        .await
        .map_err(|failure| match failure {
            calls::CallFailure::Invalid(message) => Failure::invalid(message),
            calls::CallFailure::Status(status) => call_failure(context, node, &status),
        })?;
    learn(context, node, &addrs);
    Ok(CallReport { method, response })
}

fn call_failure(context: &AdminContext, node: NodeId, status: &peerd::rpc::Status) -> Failure {
    let connected = context.node.manager().connection(node).is_some();
    Failure::of_call(status, connected)
}

async fn find_service(context: &AdminContext, name: &str) -> Vec<ServiceReport> {
    let records = context.node.discovery().find_service(name).await;
    records
        .into_iter()
        .map(|r| ServiceReport {
            node_id: r.node_id,
            version: r.version,
            addrs: r.addrs.iter().map(ToString::to_string).collect(),
            ttl_remaining_secs: r.ttl_remaining_secs,
        })
        .collect()
}
