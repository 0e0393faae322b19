//! Per-method call statistics of one role (server or client): requests by
//! status code, a duration histogram, and calls in flight. Method names are a
//! bounded set, so no peer or caller can grow the number of series.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::time::Instant;

use super::Code;
use crate::metrics::{Histogram, HistogramSnapshot};

/// Distinct method names a client records; later ones share `OTHER_METHOD`.
pub const MAX_CLIENT_METHODS: usize = 64;
/// The server's label for calls to methods it does not offer (or whose
/// header never arrived): a peer chooses those names, so they are not kept.
pub const UNKNOWN_METHOD: &str = "unknown";
/// The client's label for methods beyond `MAX_CLIENT_METHODS`.
pub const OTHER_METHOD: &str = "other";

const CODES: usize = Code::Unauthenticated as usize + 1;

/// Which end of the call this node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// This node serves the call.
    Server,
    /// This node makes the call.
    Client,
}

impl Role {
    /// `server` or `client`, e.g. a metrics label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Client => "client",
        }
    }
}

/// The calls of one role, per method.
#[derive(Debug)]
pub struct CallStats {
    role: Role,
    /// Filled in order; a set slot never changes.
    methods: Box<[OnceLock<MethodStats>]>,
    /// Stands for every method that has no slot.
    overflow: MethodStats,
    /// Taken only to add a method, so a name gets exactly one slot.
    adding: Mutex<()>,
    in_flight: AtomicU64,
}

/// One method's counters.
#[derive(Debug)]
pub struct MethodStats {
    name: Box<str>,
    by_code: [AtomicU64; CODES],
    duration: Histogram,
}

impl MethodStats {
    fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            by_code: Default::default(),
            duration: Histogram::default(),
        }
    }

    /// The full method name (`package.Service/Method`), or
    /// [`UNKNOWN_METHOD`] / [`OTHER_METHOD`] for the overflow.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Calls that ended with each code, for the codes seen at least once.
    pub fn requests(&self) -> impl Iterator<Item = (Code, u64)> + '_ {
        self.by_code.iter().enumerate().filter_map(|(code, count)| {
            let count = count.load(Ordering::Relaxed);
            (count > 0).then_some((Code::from_u32(code as u32), count))
        })
    }

    /// How long the finished calls took: on a server from accepting the
    /// stream, on a client from starting the call, to the call's end.
    pub fn duration(&self) -> HistogramSnapshot {
        self.duration.snapshot()
    }
}

/// Where a call's counts go: a method's slot, or the overflow.
#[derive(Debug, Clone, Copy)]
struct Slot(usize);

impl CallStats {
    /// The server's table: exactly the methods it routes, in route order.
    pub fn server(methods: &[impl AsRef<str>]) -> Self {
        let stats = Self::with_capacity(Role::Server, methods.len(), UNKNOWN_METHOD);
        for (slot, name) in stats.methods.iter().zip(methods) {
            let _ = slot.set(MethodStats::new(name.as_ref()));
        }
        stats
    }

    /// The client's table: the first `MAX_CLIENT_METHODS` names it calls.
    pub fn client() -> Self {
        Self::with_capacity(Role::Client, MAX_CLIENT_METHODS, OTHER_METHOD)
    }

    fn with_capacity(role: Role, capacity: usize, overflow: &str) -> Self {
        Self {
            role,
            methods: (0..capacity).map(|_| OnceLock::new()).collect(),
            overflow: MethodStats::new(overflow),
            adding: Mutex::new(()),
            in_flight: AtomicU64::new(0),
        }
    }

    /// Which end of the calls these counts are.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Calls started and not yet finished, all methods together.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Every method with a slot, then the overflow.
    pub fn methods(&self) -> impl Iterator<Item = &MethodStats> {
        self.methods
            .iter()
            .map_while(OnceLock::get)
            .chain([&self.overflow])
    }

    /// All finished calls and how many of them did not end with OK.
    pub fn totals(&self) -> (u64, u64) {
        self.methods().flat_map(MethodStats::requests).fold(
            (0, 0),
            |(calls, errors), (code, count)| {
                let failed = if code == Code::Ok { 0 } else { count };
                (calls + count, errors + failed)
            },
        )
    }

    /// Starts timing, from `started`, a server call. Its method is unknown
    /// until `route`. The caller passes the time it read for its own use,
    /// which saves a clock read per call.
    pub fn start_server_call(self: &Arc<Self>, started: Instant) -> CallRecord {
        self.start(Slot(self.methods.len()), started)
    }

    /// Starts timing, from `started`, a client call of `method`.
    pub fn start_client_call(self: &Arc<Self>, method: &str, started: Instant) -> CallRecord {
        self.start(self.slot_for(method), started)
    }

    fn start(self: &Arc<Self>, slot: Slot, started: Instant) -> CallRecord {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        CallRecord {
            stats: self.clone(),
            slot,
            started,
            code: Code::Cancelled,
        }
    }

    /// The slot of `method`, adding it if there is room.
    fn slot_for(&self, method: &str) -> Slot {
        if let Some(slot) = self.find(method) {
            return slot;
        }
        let _adding = self.adding.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = self.find(method) {
            return slot;
        }
        match self.methods.iter().position(|s| s.get().is_none()) {
            Some(free) => {
                let _ = self.methods[free].set(MethodStats::new(method));
                Slot(free)
            }
            None => Slot(self.methods.len()),
        }
    }

    fn find(&self, method: &str) -> Option<Slot> {
        self.methods
            .iter()
            .map_while(OnceLock::get)
            .position(|stats| &*stats.name == method)
            .map(Slot)
    }

    fn stats(&self, slot: Slot) -> &MethodStats {
        self.methods
            .get(slot.0)
            .and_then(OnceLock::get)
            .unwrap_or(&self.overflow)
    }
}

/// One call being timed. Dropped without `end`, it counts as CANCELLED: the
/// caller abandoned it.
#[derive(Debug)]
pub struct CallRecord {
    stats: Arc<CallStats>,
    slot: Slot,
    started: Instant,
    code: Code,
}

impl CallRecord {
    /// Names the server method by its route index (its position in the
    /// list given to `CallStats::server`).
    pub fn route(&mut self, index: usize) {
        self.slot = Slot(index.min(self.stats.methods.len()));
    }

    /// Records the call as finished with `code`; the count and the duration
    /// are taken when the record drops, which this does.
    pub fn end(mut self, code: Code) {
        self.code = code;
    }
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        let method = self.stats.stats(self.slot);
        method.by_code[self.code as usize].fetch_add(1, Ordering::Relaxed);
        method.duration.observe(self.started.elapsed());
        self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(stats: &CallStats, method: &str, code: Code) -> u64 {
        let method = stats.methods().find(|m| m.name() == method).unwrap();
        method
            .requests()
            .find(|(c, _)| *c == code)
            .map_or(0, |(_, n)| n)
    }

    #[tokio::test]
    async fn server_calls_count_under_their_route_or_unknown() {
        let stats = Arc::new(CallStats::server(&["a.S/M", "a.S/N"]));
        let mut call = stats.start_server_call(Instant::now());
        assert_eq!(stats.in_flight(), 1);
        call.route(1);
        call.end(Code::Ok);
        stats
            .start_server_call(Instant::now())
            .end(Code::Unimplemented);
        assert_eq!(count(&stats, "a.S/N", Code::Ok), 1);
        assert_eq!(count(&stats, UNKNOWN_METHOD, Code::Unimplemented), 1);
        assert_eq!(stats.in_flight(), 0);
        assert_eq!(stats.totals(), (2, 1));
    }

    #[tokio::test]
    async fn a_dropped_call_counts_as_cancelled() {
        let stats = Arc::new(CallStats::client());
        drop(stats.start_client_call("a.S/M", Instant::now()));
        assert_eq!(count(&stats, "a.S/M", Code::Cancelled), 1);
        let method = stats.methods().next().unwrap();
        assert_eq!(method.duration().count, 1);
    }

    #[tokio::test]
    async fn client_methods_beyond_the_limit_share_one_label() {
        let stats = Arc::new(CallStats::client());
        for n in 0..MAX_CLIENT_METHODS + 5 {
            stats
                .start_client_call(&format!("a.S/M{n}"), Instant::now())
                .end(Code::Ok);
        }
        stats
            .start_client_call("a.S/M0", Instant::now())
            .end(Code::Ok);
        assert_eq!(stats.methods().count(), MAX_CLIENT_METHODS + 1);
        assert_eq!(count(&stats, "a.S/M0", Code::Ok), 2);
        assert_eq!(count(&stats, OTHER_METHOD, Code::Ok), 5);
    }
}
