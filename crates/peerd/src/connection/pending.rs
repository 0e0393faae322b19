//! Inbound handshakes in progress, kept per source for admission (counts,
//! the heaviest source, the oldest handshake, and ending one to make room),
//! and awaitable per address so a dial can wait for the peer's own
//! handshake instead of starting a second connection.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::admission::{Load, Victim};

#[derive(Debug, Default)]
pub(crate) struct PendingHandshakes {
    state: Mutex<State>,
    finished: Notify,
}

#[derive(Debug, Default)]
struct State {
    total: usize,
    next_id: u64,
    /// Oldest first, per source.
    per_source: HashMap<IpAddr, VecDeque<Handshake>>,
    per_addr: HashMap<SocketAddr, usize>,
}

#[derive(Debug)]
struct Handshake {
    id: u64,
    from: SocketAddr,
    started: Instant,
    evicted: CancellationToken,
}

/// Where a client comes from, for fairness: its IPv4 address, or the /64
/// of its IPv6 address (one host commonly has a whole /64).
pub(crate) fn source_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !0u128 << 64)),
        },
    }
}

impl PendingHandshakes {
    pub(crate) fn load(&self, from: SocketAddr, connections: usize) -> Load {
        let state = self.lock();
        let source = source_of(from.ip());
        let now = Instant::now();
        Load {
            connections,
            pending: state.total,
            pending_from_source: state.per_source.get(&source).map_or(0, VecDeque::len),
            heaviest_source: state
                .per_source
                .values()
                .map(VecDeque::len)
                .max()
                .unwrap_or(0),
            oldest: state
                .per_source
                .values()
                .filter_map(|handshakes| handshakes.front())
                .map(|oldest| now.saturating_duration_since(oldest.started))
                .max()
                .unwrap_or_default(),
        }
    }

    pub(crate) fn total(&self) -> usize {
        self.lock().total
    }

    pub(crate) fn begin(self: &Arc<Self>, from: SocketAddr) -> PendingPermit {
        let mut state = self.lock();
        state.total += 1;
        state.next_id += 1;
        let id = state.next_id;
        let evicted = CancellationToken::new();
        let handshake = Handshake {
            id,
            from,
            started: Instant::now(),
            evicted: evicted.clone(),
        };
        let source = source_of(from.ip());
        state
            .per_source
            .entry(source)
            .or_default()
            .push_back(handshake);
        *state.per_addr.entry(from).or_default() += 1;
        PendingPermit {
            pending: self.clone(),
            source,
            id,
            evicted,
        }
    }

    /// Ends the `victim` handshake: it no longer counts, and its task stops.
    pub(crate) fn evict(&self, victim: Victim) {
        let mut state = self.lock();
        let source = match victim {
            Victim::HeaviestSource => state
                .per_source
                .iter()
                .max_by_key(|(_, handshakes)| handshakes.len())
                .map(|(source, _)| *source),
            Victim::Oldest => state
                .per_source
                .iter()
                .filter_map(|(source, handshakes)| Some((*source, handshakes.front()?.started)))
                .min_by_key(|(_, started)| *started)
                .map(|(source, _)| source),
        };
        let Some(source) = source else { return };
        if let Some(handshake) = state.remove(source, None) {
            handshake.evicted.cancel();
        }
        drop(state);
        self.finished.notify_waiters();
    }

    /// Waits until no handshake from any of `addrs` is in progress, or the deadline.
    pub(crate) async fn wait_for(&self, addrs: &[SocketAddr], deadline: Instant) {
        loop {
            let finished = self.finished.notified();
            if !addrs.iter().any(|a| self.lock().per_addr.contains_key(a)) {
                return;
            }
            if tokio::time::timeout_at(deadline, finished).await.is_err() {
                return;
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("pending handshakes lock poisoned")
    }
}

impl State {
    /// Takes handshake `id` (the oldest if `None`) of `source` off the books.
    fn remove(&mut self, source: IpAddr, id: Option<u64>) -> Option<Handshake> {
        let handshakes = self.per_source.get_mut(&source)?;
        let index = match id {
            Some(id) => handshakes.iter().position(|h| h.id == id)?,
            None => 0,
        };
        let handshake = handshakes.remove(index)?;
        if handshakes.is_empty() {
            self.per_source.remove(&source);
        }
        self.total -= 1;
        decrement(&mut self.per_addr, handshake.from);
        Some(handshake)
    }
}

/// One inbound handshake in progress; dropping it ends it.
#[derive(Debug)]
pub(crate) struct PendingPermit {
    pending: Arc<PendingHandshakes>,
    source: IpAddr,
    id: u64,
    evicted: CancellationToken,
}

impl PendingPermit {
    /// Resolves when a newcomer took this handshake's slot.
    pub(crate) async fn evicted(&self) {
        self.evicted.cancelled().await
    }
}

impl Drop for PendingPermit {
    fn drop(&mut self) {
        // Gone already if it was evicted.
        let removed = self.pending.lock().remove(self.source, Some(self.id));
        if removed.is_some() {
            self.pending.finished.notify_waiters();
        }
    }
}

fn decrement<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: K) {
    if let Some(count) = counts.get_mut(&key) {
        *count -= 1;
        if *count == 0 {
            counts.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn counts_per_ip_and_forgets_finished_handshakes() {
        let pending = Arc::new(PendingHandshakes::default());
        let a = pending.begin(addr(1));
        let _b = pending.begin(addr(2));
        let load = pending.load(addr(3), 5);
        assert_eq!(
            (load.connections, load.pending, load.pending_from_source),
            (5, 2, 2)
        );
        drop(a);
        assert_eq!(pending.load(addr(3), 0).pending, 1);
    }

    #[test]
    fn an_ipv6_source_is_its_slash_64() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(source_of(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(source_of(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
        assert_eq!(source_of(ip("10.0.0.1")), ip("10.0.0.1"));
    }

    #[tokio::test(start_paused = true)]
    async fn eviction_ends_the_oldest_of_the_heaviest_source_once() {
        let pending = Arc::new(PendingHandshakes::default());
        let other = SocketAddr::from(([127, 0, 0, 2], 1));
        let oldest = pending.begin(addr(1));
        tokio::time::sleep(Duration::from_secs(1)).await;
        let _newer = pending.begin(addr(2));
        let _elsewhere = pending.begin(other);
        let load = pending.load(other, 0);
        assert_eq!(
            (load.heaviest_source, load.oldest),
            (2, Duration::from_secs(1))
        );
        pending.evict(Victim::HeaviestSource);
        assert!(oldest.evicted.is_cancelled());
        assert_eq!(pending.total(), 2);
        drop(oldest);
        assert_eq!(
            pending.total(),
            2,
            "an evicted permit is not counted off twice"
        );
        pending.evict(Victim::Oldest);
        assert_eq!(pending.total(), 1);
        assert_eq!(pending.load(other, 0).oldest, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_dial_resumes_when_the_handshake_ends() {
        let pending = Arc::new(PendingHandshakes::default());
        let permit = pending.begin(addr(1));
        let waiter = pending.clone();
        let start = Instant::now();
        let wait = tokio::spawn(async move {
            waiter
                .wait_for(&[addr(1)], Instant::now() + Duration::from_secs(10))
                .await
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(permit);
        wait.await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_is_bounded_by_the_deadline() {
        let pending = Arc::new(PendingHandshakes::default());
        let _stuck = pending.begin(addr(1));
        let start = Instant::now();
        pending
            .wait_for(&[addr(1)], start + Duration::from_secs(3))
            .await;
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        pending
            .wait_for(&[addr(2)], start + Duration::from_secs(100))
            .await;
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(3),
            "other addresses do not wait"
        );
    }
}
