//! Hole punching, `peerd.nat.v1.HolePunch`: two nodes connected through a
//! relay try each other's observed addresses, and move their connection to
//! the direct path once a probe round trip proves it both ways. The QUIC
//! connection keeps its virtual address throughout (`paths`), so calls in
//! flight never see the switch (docs/nat.md).
//!
//! 1. The caller, which dialed through the relay, sends `Start` with a
//!    token and the addresses its peers see it at.
//! 2. The callee sends openers to those addresses, then answers with its
//!    own token and addresses.
//! 3. The caller sends hellos; the callee acks each, the caller confirms,
//!    the callee switches and confirms back, and the caller switches.
//!
//! - `session`: that exchange, without sockets.
//! - here: [`Puncher`]: the `Start` handler, the caller's side, and the
//!   task that hands each probe to its session.

mod session;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::proto::{PunchRequest, PunchResponse};
use crate::connection::{Direction, EventKind, NodeConnectionManager};
use crate::identity::NodeId;
use crate::node_service;
use crate::paths::{Paths, Probe, ProbeReceiver, Token, is_virtual};
use crate::rpc::{CallContext, CallOptions, Handlers, RpcClient, Status};
use session::{Role, Session, Step};

/// The service's full name.
pub const PUNCH_SERVICE: &str = "peerd.nat.v1.HolePunch";
/// Start a punch over a relayed connection.
pub const PUNCH_START: &str = "peerd.nat.v1.HolePunch/Start";

/// How long a punch may take: the caller's hellos go out for this long,
/// and the callee keeps its session this long after answering, so it can
/// switch only within the caller's window.
const PUNCH_FOR: Duration = Duration::from_secs(3);
/// How long after its last hello the caller still waits for the callee's
/// confirm: one the callee sent at the end of its window is still on its
/// way, and a callee that switched must be followed.
const CONFIRM_GRACE: Duration = Duration::from_secs(1);
/// Hellos go out this often to each of the callee's addresses.
const HELLO_EVERY: Duration = Duration::from_millis(100);
/// Addresses taken from either side.
const MAX_ADDRS: usize = 4;
/// How long `Start` may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// How long each question for this node's observed address may take: the
/// callee asks while the caller waits for its answer.
const OBSERVED_TIMEOUT: Duration = Duration::from_secs(1);
/// Peers asked where they see this node, at most.
const ASKED_FOR_ADDRS: usize = 2;
/// Punches running at once, both roles together; one per path.
const MAX_SESSIONS: usize = 64;

/// Counts of punches, as the caller saw them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PunchStats {
    /// Punches started.
    pub attempts: u64,
    /// Punches that moved their connection to a direct path.
    pub direct: u64,
    /// Punches after which the connection stayed on its relay.
    pub failed: u64,
}

/// Runs punches for one node. Cheap to clone.
#[derive(Clone)]
pub struct Puncher {
    inner: Arc<Inner>,
}

struct Inner {
    paths: Paths,
    /// Set by `start`: the handler exists before the node's client does.
    /// Taken when the node stops: the manager holds the router, which
    /// holds this handler, and the cycle would keep the endpoint alive.
    wired: Mutex<Option<Wired>>,
    /// By the token a session's probes must carry.
    sessions: Mutex<HashMap<Token, Entry>>,
    attempts: AtomicU64,
    direct: AtomicU64,
    failed: AtomicU64,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

#[derive(Clone)]
struct Wired {
    client: RpcClient,
    manager: NodeConnectionManager,
}

struct Entry {
    session: Session,
    /// The virtual address of the connection being moved.
    path: SocketAddr,
    switched: Option<oneshot::Sender<SocketAddr>>,
}

impl Puncher {
    /// Punches over `paths`, until `cancel`; its handler answers once
    /// `start` has run.
    pub fn new(paths: Paths, cancel: CancellationToken) -> Self {
        let inner = Inner {
            paths,
            wired: Mutex::new(None),
            sessions: Mutex::default(),
            attempts: AtomicU64::new(0),
            direct: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            cancel,
            tasks: TaskTracker::new(),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Starts handing `probes` to sessions, and punching every connection
    /// this node dials through a relay, with `client` over `manager`'s
    /// connections. Only the first call starts anything.
    pub fn start(&self, probes: ProbeReceiver, client: RpcClient, manager: NodeConnectionManager) {
        let mut wired = self.inner.wired.lock().expect("wired lock");
        if wired.is_some() || self.inner.cancel.is_cancelled() {
            return;
        }
        *wired = Some(Wired { client, manager });
        self.spawn(self.clone().dispatch(probes));
        self.spawn(self.clone().watch());
        let (inner, cancel) = (self.inner.clone(), self.inner.cancel.clone());
        self.inner.tasks.spawn(async move {
            cancel.cancelled().await;
            inner.wired.lock().expect("wired lock").take();
        });
    }

    fn wired(&self) -> Result<Wired, Status> {
        let wired = self.inner.wired.lock().expect("wired lock");
        wired
            .clone()
            .ok_or_else(|| Status::unavailable("the node is starting or stopping"))
    }

    /// The service's handlers: the callee's side.
    pub fn handlers(&self) -> Handlers {
        let puncher = self.clone();
        Handlers::new(PUNCH_SERVICE).unary(
            "Start",
            move |context: CallContext, request: PunchRequest| {
                let puncher = puncher.clone();
                async move { puncher.answer(&context, request).await }
            },
        )
    }

    /// The counts now.
    pub fn stats(&self) -> PunchStats {
        let inner = &self.inner;
        PunchStats {
            attempts: inner.attempts.load(Ordering::Relaxed),
            direct: inner.direct.load(Ordering::Relaxed),
            failed: inner.failed.load(Ordering::Relaxed),
        }
    }

    /// Waits for the tasks to end, after the node's token was cancelled.
    pub async fn shutdown(&self) {
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let cancel = self.inner.cancel.clone();
        self.inner.tasks.spawn(async move {
            tokio::select! {
                () = task => {}
                () = cancel.cancelled() => {}
            }
        });
    }

    /// Hands each probe to the session its token names.
    async fn dispatch(self, mut probes: ProbeReceiver) {
        while let Some((from, probe)) = probes.recv().await {
            let (Probe::Hello(token) | Probe::Ack(token) | Probe::Confirm(token)) = probe;
            let mut sessions = self.inner.sessions.lock().expect("sessions lock");
            let Some(entry) = sessions.get_mut(&token) else {
                continue;
            };
            for step in entry.session.on_probe(from, probe) {
                match step {
                    Step::Send(to, probe) => {
                        let _ = self.inner.paths.send_probe(to, probe);
                    }
                    Step::Switch(to) => {
                        self.inner.paths.go_direct(entry.path, to);
                        if let Some(switched) = entry.switched.take() {
                            let _ = switched.send(to);
                        }
                    }
                }
            }
        }
    }

    /// Punches each connection this node dials through a relay, and
    /// forgets a path once its connection closed.
    async fn watch(self) {
        let Ok(wired) = self.wired() else {
            return;
        };
        let mut events = wired.manager.subscribe();
        loop {
            let event = match events.recv().await {
                Ok(event) => event,
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            };
            if !is_virtual(event.remote_address) {
                continue;
            }
            match event.kind {
                EventKind::Connected if event.direction == Direction::Outbound => {
                    let puncher = self.clone();
                    let (node, path) = (event.node, event.remote_address);
                    self.spawn(async move { puncher.punch(node, path).await });
                }
                EventKind::Connected => {}
                EventKind::Disconnected { .. } => self.inner.paths.forget(event.remote_address),
            }
        }
    }

    /// The caller's side of one punch.
    async fn punch(self, node: NodeId, path: SocketAddr) {
        self.inner.attempts.fetch_add(1, Ordering::Relaxed);
        let moved = self.try_punch(node, path).await;
        let short = node.short();
        match moved {
            Ok(direct) => {
                self.inner.direct.fetch_add(1, Ordering::Relaxed);
                tracing::info!(node = %short, %direct, "relayed connection moved to a direct path");
            }
            Err(why) => {
                self.inner.failed.fetch_add(1, Ordering::Relaxed);
                tracing::info!(node = %short, %why, "hole punch failed; the connection stays relayed");
            }
        }
    }

    async fn try_punch(&self, node: NodeId, path: SocketAddr) -> Result<SocketAddr, Status> {
        let own = random_token();
        let request = PunchRequest {
            token: Bytes::copy_from_slice(&own),
            addrs: self
                .observed()
                .await
                .iter()
                .map(ToString::to_string)
                .collect(),
        };
        let options = CallOptions::default().with_timeout(CALL_TIMEOUT);
        let client = &self.wired()?.client;
        let response: PunchResponse = client.unary(node, PUNCH_START, &request, &options).await?;
        let peer = token_of(&response.token)?;
        let theirs = addrs_of(&response.addrs);
        if theirs.is_empty() {
            return Err(Status::unavailable("the peer knows no address of its own"));
        }
        let (switched, mut moved) = oneshot::channel();
        let entry = Entry {
            session: Session::new(Role::Caller, own, peer),
            path,
            switched: Some(switched),
        };
        let _registered = Registered::admit(self, own, entry)?;
        let hellos = async {
            let until = tokio::time::Instant::now() + PUNCH_FOR;
            while tokio::time::Instant::now() < until {
                for addr in &theirs {
                    let _ = self.inner.paths.send_probe(*addr, Probe::Hello(peer));
                }
                tokio::time::sleep(HELLO_EVERY).await;
            }
            tokio::time::sleep(CONFIRM_GRACE).await;
        };
        tokio::select! {
            direct = &mut moved => direct.map_err(|_| Status::cancelled("the punch was dropped")),
            () = hellos => Err(Status::deadline_exceeded(format!(
                "no probe came back within {PUNCH_FOR:?} from {theirs:?}"
            ))),
        }
    }

    /// The callee's side: openers to the caller's addresses, then our own.
    async fn answer(
        &self,
        context: &CallContext,
        request: PunchRequest,
    ) -> Result<PunchResponse, Status> {
        let path = context.caller_address();
        if !is_virtual(path) {
            return Err(Status::invalid_argument(
                "a punch is asked over a relayed connection",
            ));
        }
        let peer = token_of(&request.token)?;
        let own = random_token();
        let entry = Entry {
            session: Session::new(Role::Callee, own, peer),
            path,
            switched: None,
        };
        let registered = Registered::admit(self, own, entry)?;
        for addr in addrs_of(&request.addrs) {
            if let Err(e) = self.inner.paths.send_opener(addr, Probe::Hello(peer)) {
                tracing::debug!(%addr, error = %e, "opener not sent");
            }
        }
        let addrs = self.observed().await;
        // The session outlives the answer: the caller's hellos follow it.
        self.spawn(async move {
            tokio::time::sleep(PUNCH_FOR).await;
            drop(registered);
        });
        Ok(PunchResponse {
            token: Bytes::copy_from_slice(&own),
            addrs: addrs.iter().map(ToString::to_string).collect(),
        })
    }

    /// Where peers see this node: the observed address in the `Info`
    /// answers of a few peers connected directly.
    async fn observed(&self) -> Vec<SocketAddr> {
        let Ok(wired) = self.wired() else {
            return Vec::new();
        };
        let direct: Vec<NodeId> = wired
            .manager
            .connections()
            .into_iter()
            .filter(|c| !is_virtual(c.remote_address()))
            .map(|c| c.remote_node_id())
            .take(ASKED_FOR_ADDRS)
            .collect();
        let mut asking = JoinSet::new();
        for node in direct {
            let client = wired.client.clone();
            let options = CallOptions::default().with_timeout(OBSERVED_TIMEOUT);
            asking.spawn(async move { node_service::info(&client, node, &options).await });
        }
        let mut addrs = Vec::new();
        while let Some(answer) = asking.join_next().await {
            if let Ok(Ok(info)) = answer
                && let Ok(addr) = info.observed_addr.parse::<SocketAddr>()
                && !addrs.contains(&addr)
            {
                addrs.push(addr);
            }
        }
        addrs
    }
}

/// A session in the table while this lives.
struct Registered {
    inner: Arc<Inner>,
    token: Token,
}

impl Registered {
    /// Registers `entry`, unless a punch runs on its path already or
    /// `MAX_SESSIONS` run: a peer asking again and again gets openers (and
    /// this node's probes) sent once at a time.
    fn admit(puncher: &Puncher, token: Token, entry: Entry) -> Result<Self, Status> {
        let inner = puncher.inner.clone();
        {
            let mut sessions = inner.sessions.lock().expect("sessions lock");
            if sessions.values().any(|running| running.path == entry.path) {
                return Err(Status::resource_exhausted(
                    "a punch on this connection runs already",
                ));
            }
            if sessions.len() >= MAX_SESSIONS {
                let busy = format!("{MAX_SESSIONS} punches are running; try again");
                return Err(Status::resource_exhausted(busy));
            }
            sessions.insert(token, entry);
        }
        Ok(Self { inner, token })
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.inner
            .sessions
            .lock()
            .expect("sessions lock")
            .remove(&self.token);
    }
}

fn random_token() -> Token {
    let mut token = [0; 16];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut token);
    token
}

fn token_of(bytes: &[u8]) -> Result<Token, Status> {
    bytes.try_into().map_err(|_| {
        Status::invalid_argument(format!("a punch token is 16 bytes, not {}", bytes.len()))
    })
}

/// The addresses a peer sent that a probe could go to.
fn addrs_of(addrs: &[String]) -> Vec<SocketAddr> {
    addrs
        .iter()
        .filter_map(|a| a.parse::<SocketAddr>().ok())
        .filter(|a| !is_virtual(*a) && a.port() != 0 && !a.ip().is_unspecified())
        .take(MAX_ADDRS)
        .collect()
}
