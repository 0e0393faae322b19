//! Inbound handshakes in progress, counted per source for admission, and
//! awaitable per address so a dial can wait for the peer's own handshake
//! instead of starting a second connection.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::time::Instant;

use super::admission::Load;

#[derive(Debug, Default)]
pub(crate) struct PendingHandshakes {
    state: Mutex<State>,
    finished: Notify,
}

#[derive(Debug, Default)]
struct State {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
    per_addr: HashMap<SocketAddr, usize>,
}

impl PendingHandshakes {
    pub(crate) fn load(&self, from: SocketAddr, connections: usize) -> Load {
        let state = self.lock();
        Load {
            connections,
            pending: state.total,
            pending_from_ip: state.per_ip.get(&from.ip()).copied().unwrap_or(0),
        }
    }

    pub(crate) fn total(&self) -> usize {
        self.lock().total
    }

    pub(crate) fn begin(self: &Arc<Self>, from: SocketAddr) -> PendingPermit {
        let mut state = self.lock();
        state.total += 1;
        *state.per_ip.entry(from.ip()).or_default() += 1;
        *state.per_addr.entry(from).or_default() += 1;
        PendingPermit {
            pending: self.clone(),
            from,
        }
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

/// One inbound handshake in progress; dropping it ends it.
#[derive(Debug)]
pub(crate) struct PendingPermit {
    pending: Arc<PendingHandshakes>,
    from: SocketAddr,
}

impl Drop for PendingPermit {
    fn drop(&mut self) {
        let mut state = self.pending.lock();
        state.total -= 1;
        decrement(&mut state.per_ip, self.from.ip());
        decrement(&mut state.per_addr, self.from);
        drop(state);
        self.pending.finished.notify_waiters();
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
        assert_eq!(
            pending.load(addr(3), 5),
            Load {
                connections: 5,
                pending: 2,
                pending_from_ip: 2
            }
        );
        drop(a);
        assert_eq!(pending.load(addr(3), 0).pending, 1);
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
