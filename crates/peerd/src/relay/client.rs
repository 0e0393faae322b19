//! The nodes' side of the relay. A node behind NAT holds reservations on
//! its relays, renewing each when it ends, and takes every circuit offered;
//! a node that calls one behind NAT opens a circuit through a relay the
//! callee lists, and dials the callee's virtual path after its addresses.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prost::Message;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::proto::{self, reserve_event::Event};
use super::{ACCEPT, CIRCUIT_KEY, CONNECT, RESERVE, TARGET_KEY, circuit};
use crate::addressing::{AddressBook, RelayAddr, RelayList};
use crate::connection::{CloseCode, NodeConnectionManager};
use crate::discovery::Backoff;
use crate::identity::NodeId;
use crate::node_service;
use crate::paths::{CircuitPath, Paths};
use crate::rpc::{CallOptions, Encoded, RelayedPath, Relayer, RpcClient, Status, StreamingCall};

/// How long a reservation's call is asked to last; the relay's
/// `max_call_deadline` cuts it, and the reservation is then renewed.
const RESERVATION_CALL: Duration = Duration::from_secs(3600);
/// How long a circuit's call is asked to last; the relay's
/// `circuit_duration` ends it sooner.
const CIRCUIT_CALL: Duration = Duration::from_secs(3600);
/// How long opening a circuit may take: the relay's offer and the
/// target's answer, each a round trip.
const OPEN_WITHIN: Duration = Duration::from_secs(3);
/// A reservation renewed at once after one that lasted this long.
const HEALTHY_AFTER: Duration = Duration::from_secs(30);
/// Offered circuits taken at once, from all relays together: a relay that
/// offers more is ignored rather than let it open paths without end.
const MAX_TAKEN: usize = 32;
/// A circuit is renewed once it has spent this share of its time or bytes.
const RENEW_AT: f64 = 0.8;
/// How often the caller looks at what its circuit has spent.
const RENEW_CHECK: Duration = Duration::from_millis(250);
/// How long the callee keeps a connection whose circuit ended, in case the
/// caller moved it to a renewed circuit.
const MOVE_GRACE: Duration = Duration::from_secs(2);

/// Reservations held and circuits open through relays. Cheap to clone.
#[derive(Clone)]
pub struct Relays {
    inner: Arc<Inner>,
}

struct Inner {
    /// Calls relays directly, at their own addresses: never through a
    /// relay itself.
    client: RpcClient,
    manager: NodeConnectionManager,
    paths: Paths,
    addresses: AddressBook,
    /// Relays a task keeps a reservation on, held now or being renewed,
    /// as this node lists them in `Info`: listed from the start, so that
    /// the relay's first question on the new connection already learns it.
    kept: RelayList,
    /// Reservations the relay has confirmed and still holds.
    held: RelayList,
    /// Permits for offered circuits being taken or carried.
    taking: Arc<Semaphore>,
    /// A circuit that carried nothing for this long is closed: the QUIC
    /// connection on it is gone.
    idle: Duration,
    backoff: Backoff,
    cancel: CancellationToken,
    tasks: TaskTracker,
    /// The node's runtime: `reserve_on` may be called from outside it.
    runtime: tokio::runtime::Handle,
}

impl Relays {
    /// Relays reached with `client`, whose circuits end at `paths` and
    /// carry connections of `manager`, for nodes whose relays `addresses`
    /// lists; the relays it keeps reservations on are listed in `kept`.
    /// `idle` is the QUIC idle timeout of the connections the circuits
    /// carry. Needs a tokio runtime, where its tasks will run.
    pub fn new(
        client: RpcClient,
        manager: NodeConnectionManager,
        paths: Paths,
        addresses: AddressBook,
        kept: RelayList,
        idle: Duration,
        cancel: CancellationToken,
    ) -> Self {
        let inner = Inner {
            client,
            manager,
            paths,
            addresses,
            kept,
            held: RelayList::default(),
            taking: Arc::new(Semaphore::new(MAX_TAKEN)),
            idle,
            backoff: Backoff::default(),
            cancel,
            tasks: TaskTracker::new(),
            runtime: tokio::runtime::Handle::current(),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Holds a reservation on `relay` from now until shutdown, renewing it
    /// whenever it ends: after the relay's call limit at once, after a
    /// failure with backoff (0.5 s doubling to 60 s). False if one is kept
    /// there already.
    pub fn reserve_on(&self, relay: RelayAddr) -> bool {
        if self.inner.kept.list().contains(&relay) {
            return false;
        }
        self.inner.kept.add(relay);
        let relays = self.clone();
        let cancel = self.inner.cancel.clone();
        let holding = async move {
            tokio::select! {
                () = relays.hold(relay) => {}
                () = cancel.cancelled() => {}
            }
        };
        self.spawn(holding);
        true
    }

    /// Runs `task` on the node's runtime, owned by the tracker that
    /// `shutdown` waits for.
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.inner.tasks.spawn_on(task, &self.inner.runtime);
    }

    /// The reservations held now.
    pub fn held(&self) -> Vec<RelayAddr> {
        self.inner.held.list()
    }

    /// Waits for the tasks to end, after the node's token was cancelled.
    pub async fn shutdown(&self) {
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }

    async fn hold(&self, relay: RelayAddr) {
        let mut failures = 0;
        loop {
            let started = Instant::now();
            let ended = self.reserve_once(relay).await;
            let healthy = started.elapsed() >= HEALTHY_AFTER;
            match ended {
                Ok(()) => failures = 0,
                Err(status) => {
                    tracing::info!(relay = %relay, %status, "reservation lost; renewing");
                    failures = if healthy { 0 } else { failures + 1 };
                }
            }
            if failures > 0 {
                let unit = crate::discovery::random_unit();
                tokio::time::sleep(self.inner.backoff.delay(failures - 1, unit)).await;
            }
        }
    }

    /// One reservation, from the call that makes it to its end.
    async fn reserve_once(&self, relay: RelayAddr) -> Result<(), Status> {
        let options = CallOptions::default()
            .with_addr(relay.addr)
            .with_timeout(RESERVATION_CALL);
        let request = proto::ReserveRequest {
            relay_addr: relay.addr.to_string(),
        };
        let client = &self.inner.client;
        let mut events = client
            .server_streaming::<_, proto::ReserveEvent>(relay.relay, RESERVE, &request, &options)
            .await?;
        match events.message().await? {
            Some(proto::ReserveEvent {
                event: Some(Event::Reserved(_)),
            }) => {}
            _ => {
                return Err(Status::internal(
                    "the relay did not confirm the reservation",
                ));
            }
        }
        let _held = Held::new(&self.inner.held, relay);
        tracing::info!(relay = %relay, "reservation held");
        while let Some(event) = events.message().await? {
            if let Some(Event::Offer(offer)) = event.event {
                self.take_offer(relay, offer);
            }
        }
        Ok(())
    }

    /// Takes an offered circuit: its `Accept` leg becomes a virtual path,
    /// where the caller's handshake arrives.
    fn take_offer(&self, relay: RelayAddr, offer: proto::Offer) {
        let Ok(permit) = self.inner.taking.clone().try_acquire_owned() else {
            tracing::debug!(relay = %relay, "{MAX_TAKEN} offered circuits open: offer ignored");
            return;
        };
        let relays = self.clone();
        let cancel = self.inner.cancel.child_token();
        self.spawn(async move {
            let options = CallOptions::default()
                .with_addr(relay.addr)
                .with_metadata(CIRCUIT_KEY, offer.circuit.to_string())
                .with_timeout(CIRCUIT_CALL);
            let client = &relays.inner.client;
            let call = match client
                .bidi_streaming_encoded(relay.relay, ACCEPT, &options)
                .await
            {
                Ok(call) => call,
                Err(status) => {
                    tracing::debug!(relay = %relay, %status, "offered circuit not taken");
                    return;
                }
            };
            let path = relays.inner.paths.open_circuit();
            let addr = path.addr();
            tracing::debug!(relay = %relay, caller = %offer.caller, path = %addr, "circuit taken");
            let carried = AtomicU64::new(0);
            let idle = relays.inner.idle;
            let ended = circuit::run(call, path, idle, cancel.clone(), &carried).await;
            drop(permit);
            // A caller that renewed the circuit moves its connection to the
            // renewal with its next packet: give that packet time to come.
            tokio::select! {
                () = tokio::time::sleep(MOVE_GRACE) => relays.circuit_ended(addr, ended),
                () = cancel.cancelled() => {}
            }
        });
    }

    /// Opens a circuit to `target` through `relay`, and carries the path
    /// over it, and over the circuits that renew it; the path's address and
    /// what holds it open.
    async fn open_through(&self, target: NodeId, relay: RelayAddr) -> Result<RelayedPath, Status> {
        let (call, limits) = self.open_call(target, relay).await?;
        let path = self.inner.paths.open_circuit();
        let addr = path.addr();
        let cancel = self.inner.cancel.child_token();
        let hold = cancel.clone().drop_guard();
        let relays = self.clone();
        self.spawn(async move {
            let circuit = Circuit {
                target,
                relay,
                call,
                path,
                limits,
            };
            let ended = relays.carry(addr, circuit, cancel).await;
            relays.circuit_ended(addr, ended);
        });
        Ok(RelayedPath { addr, hold })
    }

    /// The caller's leg of a new circuit to `target`, once the relay said
    /// the target took it, with the circuit's limits.
    async fn open_call(
        &self,
        target: NodeId,
        relay: RelayAddr,
    ) -> Result<(StreamingCall<Encoded, Encoded>, Limits), Status> {
        let options = CallOptions::default()
            .with_addr(relay.addr)
            .with_metadata(TARGET_KEY, target.to_string())
            .with_timeout(CIRCUIT_CALL);
        let opening = async {
            let client = &self.inner.client;
            let mut call = client
                .bidi_streaming_encoded(relay.relay, CONNECT, &options)
                .await?;
            // The relay's first, empty packet says the target took it.
            let opened = call
                .message_encoded()
                .await?
                .ok_or_else(|| Status::unavailable("the relay ended the circuit at once"))?;
            let opened = proto::Packet::decode(opened)
                .map_err(|e| Status::internal(format!("a relay's first packet: {e}")))?;
            Ok((call, Limits::of(&opened)))
        };
        tokio::time::timeout(OPEN_WITHIN, opening)
            .await
            .map_err(|_| Status::unavailable(format!("no circuit within {OPEN_WITHIN:?}")))?
    }

    /// Carries the path at `addr` over `circuit`, then over each circuit
    /// that renews it, opened when the one before has spent 4/5 of its
    /// time or bytes and put in its place before it is let go (the callee
    /// sees the new circuit as its peer moving, which QUIC allows a
    /// client). Returns how the last circuit ended.
    async fn carry(
        &self,
        addr: SocketAddr,
        mut circuit: Circuit,
        cancel: CancellationToken,
    ) -> Result<(), Status> {
        loop {
            let carried = AtomicU64::new(0);
            let started = Instant::now();
            let Circuit {
                target,
                relay,
                call,
                path,
                limits,
            } = circuit;
            let running = circuit::run(call, path, self.inner.idle, cancel.clone(), &carried);
            tokio::pin!(running);
            let renewal = loop {
                tokio::select! {
                    ended = &mut running => return ended,
                    () = tokio::time::sleep(RENEW_CHECK) => {}
                }
                let spent = carried.load(Ordering::Relaxed);
                if !limits.nearly_spent(started.elapsed(), spent) {
                    continue;
                }
                match self.open_call(target, relay).await {
                    Ok(opened) => break opened,
                    Err(status) => {
                        tracing::debug!(relay = %relay, %status, "circuit not renewed yet")
                    }
                }
            };
            let Some(path) = self.inner.paths.renew(addr) else {
                // The path went direct meanwhile: the old circuit ends.
                return running.await;
            };
            let (call, limits) = renewal;
            circuit = Circuit {
                target,
                relay,
                call,
                path,
                limits,
            };
            tracing::debug!(relay = %relay, target = %target.short(), "circuit renewed");
            self.nudge(target);
        }
    }

    /// Sends a ping over the renewed circuit at once, so that the callee's
    /// QUIC moves to it before its end of the old circuit closes.
    fn nudge(&self, target: NodeId) {
        let client = self.inner.client.clone();
        let options = CallOptions::default().with_timeout(OPEN_WITHIN);
        self.spawn(async move {
            let _ = node_service::ping(&client, target, &options).await;
        });
    }

    /// Closes the connection a circuit carried, unless a punch moved it to
    /// a direct path or (on the callee, after `MOVE_GRACE`) the caller
    /// moved it to a renewed circuit: nothing reaches its peer any more,
    /// and calls should fail now and dial again rather than wait for the
    /// idle timeout.
    fn circuit_ended(&self, path: SocketAddr, ended: Result<(), Status>) {
        if self.inner.paths.direct_of(path).is_some() {
            return;
        }
        for connection in self.inner.manager.connections() {
            if connection.remote_address() == path {
                let node = connection.remote_node_id().short();
                match &ended {
                    Ok(()) => tracing::debug!(%node, "relay circuit ended"),
                    Err(status) => tracing::info!(%node, %status, "relay circuit ended"),
                }
                connection.close(CloseCode::PathLost);
            }
        }
    }
}

/// One circuit of a relayed path, on the caller's side.
struct Circuit {
    target: NodeId,
    relay: RelayAddr,
    call: StreamingCall<Encoded, Encoded>,
    path: CircuitPath,
    limits: Limits,
}

/// What a relay lets one circuit carry, from its first packet; 0 for a
/// limit it did not say.
#[derive(Debug, Clone, Copy)]
struct Limits {
    bytes: u64,
    duration: Duration,
}

impl Limits {
    fn of(opened: &proto::Packet) -> Self {
        Self {
            bytes: opened.circuit_bytes,
            duration: Duration::from_secs(opened.circuit_seconds),
        }
    }

    /// Whether a circuit this old that carried `carried` bytes has spent
    /// 4/5 of either limit: time to open its renewal.
    fn nearly_spent(&self, age: Duration, carried: u64) -> bool {
        let late = !self.duration.is_zero() && age >= self.duration.mul_f64(RENEW_AT);
        let full = self.bytes > 0 && carried as f64 >= self.bytes as f64 * RENEW_AT;
        late || full
    }
}

impl Relayer for Relays {
    fn open(&self, node: NodeId) -> Pin<Box<dyn Future<Output = Option<RelayedPath>> + Send + '_>> {
        Box::pin(async move {
            let local = self.inner.manager.node_id();
            let relays = self.inner.addresses.relays(node).into_iter();
            // A relay is reached directly, never through itself.
            for relay in relays.filter(|relay| relay.relay != local) {
                match self.open_through(node, relay).await {
                    Ok(path) => return Some(path),
                    Err(status) => {
                        tracing::debug!(node = %node.short(), relay = %relay, %status, "no circuit");
                    }
                }
            }
            None
        })
    }
}

/// A confirmed reservation, in `held` while it lasts.
struct Held<'a> {
    held: &'a RelayList,
    relay: RelayAddr,
}

impl<'a> Held<'a> {
    fn new(held: &'a RelayList, relay: RelayAddr) -> Self {
        held.add(relay);
        Self { held, relay }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.held.remove(self.relay);
    }
}

impl std::fmt::Debug for Relays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relays")
            .field("held", &self.held())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_circuit_is_renewed_at_four_fifths_of_its_time_or_bytes() {
        let limits = Limits {
            bytes: 1000,
            duration: Duration::from_secs(10),
        };
        assert!(!limits.nearly_spent(Duration::from_secs(7), 799));
        assert!(limits.nearly_spent(Duration::from_secs(8), 0));
        assert!(limits.nearly_spent(Duration::ZERO, 800));
        let unlimited = Limits {
            bytes: 0,
            duration: Duration::ZERO,
        };
        assert!(!unlimited.nearly_spent(Duration::from_secs(3600), u64::MAX));
    }
}
