//! The relay's side of `peerd.relay.v1.Relay`. `Reserve` keeps a queue of
//! offers for its caller; `Connect` admits a circuit, offers it to the
//! target and waits for the target's `Accept`, whose two stream halves it
//! then splices to its own: packets pass through as they came, counted
//! against the circuit's byte budget and bounded by its time limit.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::ledger::{Ledger, Refusal};
use super::proto::{self, Packet, reserve_event::Event};
use super::{CIRCUIT_KEY, RelayConfig, SERVICE, TARGET_KEY};
use crate::addressing::{AddressBook, RelayAddr};
use crate::identity::NodeId;
use crate::paths::is_virtual;
use crate::rpc::{CallContext, Handlers, RequestStream, ResponseSink, Status};

/// Offers queued for one reserved node; more at once are refused.
const OFFERS: usize = 8;
/// How long the target has to take an offered circuit: two round trips
/// (the offer, then its `Accept`), well within the 3 s a peerd caller
/// gives the whole opening, so that the caller hears why.
const ACCEPT_WITHIN: Duration = Duration::from_secs(2);

/// The serving side of `peerd.relay.v1.Relay`. Cheap to clone.
#[derive(Clone)]
pub struct RelayServer {
    inner: Arc<Inner>,
}

struct Inner {
    config: RelayConfig,
    /// This relay's id, listed as the relay of each reserved node.
    local: NodeId,
    /// The relay node's address book, where reserved nodes get it listed.
    addresses: AddressBook,
    state: Mutex<State>,
    counters: Counters,
    /// Where a copy of each forwarded packet goes, when tapped.
    tap: OnceLock<mpsc::Sender<Bytes>>,
}

struct State {
    ledger: Ledger,
    /// Each reserved node's offer queue, with its reservation's generation.
    offers: HashMap<NodeId, (u64, mpsc::Sender<proto::Offer>)>,
    /// Circuits offered and not yet taken, by number.
    waiting: HashMap<u64, Waiting>,
}

struct Waiting {
    target: NodeId,
    leg: oneshot::Sender<Leg>,
}

/// The target's leg, handed from its `Accept` to the caller's `Connect`.
struct Leg {
    packets: RequestStream<Packet>,
    sink: ResponseSink<Packet>,
    ended: oneshot::Sender<Status>,
}

#[derive(Default)]
struct Counters {
    circuits_opened: AtomicU64,
    refused_reservations: AtomicU64,
    refused_circuits: AtomicU64,
    over_budget: AtomicU64,
    bytes: AtomicU64,
}

/// What a relay is doing and has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Reservations held now.
    pub reservations: usize,
    /// Circuits running now.
    pub circuits: usize,
    /// Circuits that were spliced.
    pub circuits_opened: u64,
    /// Reservations refused at the limit.
    pub refused_reservations: u64,
    /// Circuits refused: no reservation, or a limit.
    pub refused_circuits: u64,
    /// Circuits closed for spending their byte budget.
    pub over_budget: u64,
    /// Packet bytes forwarded, both ways.
    pub bytes: u64,
}

impl RelayServer {
    /// A relay with `config`'s limits, run by node `local`, which lists
    /// itself in `addresses` as the relay of each node reserved on it.
    pub fn new(config: RelayConfig, local: NodeId, addresses: AddressBook) -> Self {
        let state = State {
            ledger: Ledger::new(config.clone()),
            offers: HashMap::new(),
            waiting: HashMap::new(),
        };
        let inner = Inner {
            config,
            local,
            addresses,
            state: Mutex::new(state),
            counters: Counters::default(),
            tap: OnceLock::new(),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The counts now.
    pub fn stats(&self) -> RelayStats {
        let (reservations, circuits) = {
            let state = self.state();
            (state.ledger.reservations(), state.ledger.circuits())
        };
        let c = &self.inner.counters;
        RelayStats {
            reservations,
            circuits,
            circuits_opened: c.circuits_opened.load(Ordering::Relaxed),
            refused_reservations: c.refused_reservations.load(Ordering::Relaxed),
            refused_circuits: c.refused_circuits.load(Ordering::Relaxed),
            over_budget: c.over_budget.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
        }
    }

    /// Copies each packet the relay forwards from now on into the returned
    /// queue, while it has room: for tests that check what a relay sees.
    /// Only the first tap gets copies.
    #[cfg(feature = "test-utils")]
    pub fn tap(&self, room: usize) -> mpsc::Receiver<Bytes> {
        let (copies, tapped) = mpsc::channel(room);
        let _ = self.inner.tap.set(copies);
        tapped
    }

    /// The service's handlers.
    pub fn handlers(&self) -> Handlers {
        let (reserving, connecting, accepting) = (self.clone(), self.clone(), self.clone());
        Handlers::new(SERVICE)
            .server_streaming("Reserve", move |context, request, sink| {
                let server = reserving.clone();
                async move { server.reserve(context, request, sink).await }
            })
            .bidi_streaming("Connect", move |context, packets, sink| {
                let server = connecting.clone();
                async move { server.connect(context, packets, sink).await }
            })
            .bidi_streaming("Accept", move |context, packets, sink| {
                let server = accepting.clone();
                async move { server.accept(context, packets, sink).await }
            })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().expect("relay state lock")
    }

    async fn reserve(
        &self,
        context: CallContext,
        request: proto::ReserveRequest,
        mut sink: ResponseSink<proto::ReserveEvent>,
    ) -> Result<(), Status> {
        let node = context.peer();
        let listed = request
            .relay_addr
            .parse::<SocketAddr>()
            .ok()
            .filter(|addr| !is_virtual(*addr) && !addr.ip().is_unspecified())
            .ok_or_else(|| Status::invalid_argument("relay_addr is not ip:port"))?;
        let (queue, mut offered) = mpsc::channel(OFFERS);
        let generation = {
            let mut state = self.state();
            let generation = state.ledger.reserve(node).inspect_err(|_| {
                let refused = &self.inner.counters.refused_reservations;
                refused.fetch_add(1, Ordering::Relaxed);
            });
            let generation = generation.map_err(refusal_status)?;
            state.offers.insert(node, (generation, queue));
            generation
        };
        let _held = Held {
            server: self.clone(),
            node,
            generation,
        };
        let relay = RelayAddr {
            relay: self.inner.local,
            addr: listed,
        };
        self.inner.addresses.set_relays(node, &[relay]);
        tracing::debug!(node = %node.short(), "reservation held");
        let config = &self.inner.config;
        let reserved = proto::Reserved {
            circuit_bytes: config.circuit_bytes,
            circuit_seconds: config.circuit_duration.as_secs(),
        };
        sink.send(&event(Event::Reserved(reserved))).await?;
        loop {
            tokio::select! {
                offer = offered.recv() => match offer {
                    Some(offer) => sink.send(&event(Event::Offer(offer))).await?,
                    // A newer reservation of the same node took the queue.
                    None => return Ok(()),
                },
                () = context.cancelled() => return Err(Status::cancelled("the reservation ended")),
            }
        }
    }

    async fn connect(
        &self,
        context: CallContext,
        mut from_caller: RequestStream<Packet>,
        mut to_caller: ResponseSink<Packet>,
    ) -> Result<(), Status> {
        let caller = context.peer();
        let target = target_of(&context)?;
        let (open, leg) = self.admit(caller, target)?;
        let leg = match tokio::time::timeout(ACCEPT_WITHIN, leg).await {
            Ok(Ok(leg)) => leg,
            Ok(Err(_)) => return Err(Status::unavailable(format!("{target}'s reservation ended"))),
            Err(_) => {
                let waited = format!("{target} did not take the circuit within {ACCEPT_WITHIN:?}");
                return Err(Status::unavailable(waited));
            }
        };
        let Leg {
            mut packets,
            mut sink,
            ended,
        } = leg;
        let config = &self.inner.config;
        let opened = Packet {
            circuit_bytes: config.circuit_bytes,
            circuit_seconds: config.circuit_duration.as_secs(),
            ..Packet::default()
        };
        to_caller.send(&opened).await?;
        self.inner
            .counters
            .circuits_opened
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(caller = %caller.short(), target = %target.short(), circuit = open.circuit, "circuit open");
        let budget = Budget::new(&self.inner);
        let limit = Instant::now() + self.inner.config.circuit_duration;
        let both_ways = async {
            tokio::select! {
                done = budget.pump(&mut from_caller, &mut sink) => done,
                done = budget.pump(&mut packets, &mut to_caller) => done,
            }
        };
        let done = match tokio::time::timeout_at(limit, both_ways).await {
            Ok(done) => done,
            Err(_) => Err(Status::deadline_exceeded(format!(
                "the circuit reached its time limit of {:?}",
                self.inner.config.circuit_duration
            ))),
        };
        let _ = ended.send(done.clone().err().unwrap_or_else(Status::ok));
        done
    }

    /// Admits a circuit, offers it to `target`, and returns what takes it
    /// back when it ends, with where the target's leg will come.
    fn admit(
        &self,
        caller: NodeId,
        target: NodeId,
    ) -> Result<(Open, oneshot::Receiver<Leg>), Status> {
        let mut state = self.state();
        let refused = |refusal| {
            let counter = &self.inner.counters.refused_circuits;
            counter.fetch_add(1, Ordering::Relaxed);
            refusal_status(refusal)
        };
        let circuit = state.ledger.open(caller, target).map_err(refused)?;
        let open = Open {
            server: self.clone(),
            caller,
            target,
            circuit,
        };
        let offered = state.offers.get(&target).map(|(_, queue)| {
            queue.try_send(proto::Offer {
                circuit,
                caller: caller.to_string(),
            })
        });
        if !matches!(offered, Some(Ok(()))) {
            drop(state);
            let counter = &self.inner.counters.refused_circuits;
            counter.fetch_add(1, Ordering::Relaxed);
            let busy = format!("{target} has {OFFERS} circuit offers waiting");
            return Err(Status::resource_exhausted(busy));
        }
        let (leg, taken) = oneshot::channel();
        state.waiting.insert(circuit, Waiting { target, leg });
        Ok((open, taken))
    }

    async fn accept(
        &self,
        context: CallContext,
        packets: RequestStream<Packet>,
        sink: ResponseSink<Packet>,
    ) -> Result<(), Status> {
        let circuit: u64 = context
            .metadata()
            .get(CIRCUIT_KEY)
            .and_then(|circuit| circuit.parse().ok())
            .ok_or_else(|| {
                Status::invalid_argument(format!("no circuit number in {CIRCUIT_KEY}"))
            })?;
        let waiting = {
            let mut state = self.state();
            match state.waiting.get(&circuit) {
                Some(waiting) if waiting.target == context.peer() => state.waiting.remove(&circuit),
                _ => None,
            }
        };
        let waiting = waiting.ok_or_else(|| {
            Status::not_found(format!("no circuit {circuit} waits for this node"))
        })?;
        let (ended, end) = oneshot::channel();
        let leg = Leg {
            packets,
            sink,
            ended,
        };
        if waiting.leg.send(leg).is_err() {
            return Err(Status::unavailable(
                "the caller left before the circuit opened",
            ));
        }
        match end.await {
            Ok(status) if status.is_ok() => Ok(()),
            Ok(status) => Err(status),
            Err(_) => Err(Status::cancelled("the caller's leg ended")),
        }
    }
}

fn target_of(context: &CallContext) -> Result<NodeId, Status> {
    let target: NodeId = context
        .metadata()
        .get(TARGET_KEY)
        .ok_or_else(|| Status::invalid_argument(format!("no target node in {TARGET_KEY}")))?
        .parse()
        .map_err(|e| Status::invalid_argument(format!("{TARGET_KEY}: {e}")))?;
    if target == context.peer() {
        return Err(Status::invalid_argument("a circuit to oneself"));
    }
    Ok(target)
}

fn event(event: Event) -> proto::ReserveEvent {
    proto::ReserveEvent { event: Some(event) }
}

/// The status each refusal is answered with (docs/protocol.md §9.2).
fn refusal_status(refusal: Refusal) -> Status {
    match refusal {
        Refusal::NoReservation(_) => Status::not_found(refusal.to_string()),
        Refusal::Reservations(_) | Refusal::Circuits(_) | Refusal::NodeCircuits { .. } => {
            Status::resource_exhausted(refusal.to_string())
        }
    }
}

/// A reservation, ended when its call's handler returns.
struct Held {
    server: RelayServer,
    node: NodeId,
    generation: u64,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut state = self.server.state();
        state.ledger.unreserve(self.node, self.generation);
        if state
            .offers
            .get(&self.node)
            .is_some_and(|(generation, _)| *generation == self.generation)
        {
            state.offers.remove(&self.node);
            // Callers waiting for this node learn at once that it is gone.
            state
                .waiting
                .retain(|_, waiting| waiting.target != self.node);
            let inner = &self.server.inner;
            let others: Vec<RelayAddr> = (inner.addresses.relays(self.node).into_iter())
                .filter(|relay| relay.relay != inner.local)
                .collect();
            inner.addresses.set_relays(self.node, &others);
        }
    }
}

/// A circuit admitted, closed in the ledger when its `Connect` returns.
struct Open {
    server: RelayServer,
    caller: NodeId,
    target: NodeId,
    circuit: u64,
}

impl Drop for Open {
    fn drop(&mut self) {
        let mut state = self.server.state();
        state.ledger.close(self.caller, self.target);
        state.waiting.remove(&self.circuit);
    }
}

/// The bytes a circuit may still carry, spent by both directions.
struct Budget<'a> {
    left: AtomicU64,
    relay: &'a Inner,
}

impl<'a> Budget<'a> {
    fn new(relay: &'a Inner) -> Self {
        Self {
            left: AtomicU64::new(relay.config.circuit_bytes),
            relay,
        }
    }

    /// Forwards packets from one leg to the other until the sender ends
    /// its leg (OK), a leg fails, or the budget runs out.
    async fn pump(
        &self,
        from: &mut RequestStream<Packet>,
        to: &mut ResponseSink<Packet>,
    ) -> Result<(), Status> {
        while let Some(packet) = from.message().await? {
            let size = packet.data.len() as u64;
            let spent = self
                .left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                    left.checked_sub(size)
                });
            let counters = &self.relay.counters;
            if spent.is_err() {
                counters.over_budget.fetch_add(1, Ordering::Relaxed);
                return Err(Status::resource_exhausted(format!(
                    "the circuit spent its budget of {} bytes",
                    self.relay.config.circuit_bytes
                )));
            }
            if let Some(tap) = self.relay.tap.get() {
                let _ = tap.try_send(packet.data.clone());
            }
            to.send(&packet).await?;
            counters.bytes.fetch_add(size, Ordering::Relaxed);
        }
        Ok(())
    }
}
