//! The node's handler slots, shared fairly between sources (a caller's
//! IPv4 address or IPv6 /64), then between the callers (node ids) of each
//! source: identities are free, addresses less so. While slots are free
//! any caller takes one. When none is, a caller whose source holds fewer
//! than the busiest source less one takes the newest slot of that source's
//! busiest caller, or, within its own source, of a caller holding more than
//! itself plus one (that call ends with RESOURCE_EXHAUSTED); a freed slot
//! goes to the waiting caller whose source, then itself, holds the fewest.
//! So n sources that all want more than their share hold ⌊limit / n⌋ or
//! ⌈limit / n⌉ each, and no number of busy identities keeps a newcomer from
//! a slot.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};

use rustc_hash::FxHashMap;
use tokio::sync::oneshot;

use crate::connection::source_of;
use crate::identity::NodeId;
use crate::rpc::cancel::CallCancel;
use crate::rpc::status::CallError;
use crate::rpc::{CallContext, Status};

/// A slot among the node's `max_handlers` for `call`'s caller.
pub(crate) async fn handler_slot<'a>(
    slots: &'a HandlerSlots,
    call: &CallContext,
) -> Result<Slot<'a>, Status> {
    let source = source_of(call.caller_address.ip());
    // By the connection's node: a host can mint any number of hosted
    // agents, so they share its slots rather than add to them.
    slots
        .acquire(call.peer(), source)
        .await
        .ok_or_else(|| Status::unavailable("the node is shutting down"))
}

/// Runs `work` until it ends or its slot goes to a caller under its share.
pub(crate) async fn until_revoked(
    slot: &Slot<'_>,
    work: impl std::future::Future<Output = Result<(), Status>>,
) -> Result<(), Status> {
    tokio::select! {
        biased;
        result = work => result,
        () = slot.revoked() => Err(CallError::SlotRevoked.into()),
    }
}

#[derive(Debug)]
pub(crate) struct HandlerSlots {
    limit: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    in_use: usize,
    /// Calls waiting, all callers together: a release with none skips the
    /// search for the caller to serve.
    waiting: usize,
    next_id: u64,
    callers: FxHashMap<NodeId, Caller>,
    /// Slots held per source.
    sources: FxHashMap<IpAddr, usize>,
}

#[derive(Debug)]
struct Caller {
    /// Where the caller was when its entry was made; its slots count there
    /// until it holds and awaits none.
    source: IpAddr,
    /// Slots held, oldest first (ids only grow).
    held: VecDeque<Holder>,
    waiting: VecDeque<oneshot::Sender<Slot<'static>>>,
}

#[derive(Debug)]
struct Holder {
    id: u64,
    revoked: CallCancel,
}

/// A slot, given back on drop. Its call must end when `revoked` fires.
#[derive(Debug)]
pub(crate) struct Slot<'a> {
    slots: Option<&'a HandlerSlots>,
    caller: NodeId,
    id: u64,
    revoked: CallCancel,
}

impl HandlerSlots {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            state: Mutex::default(),
        }
    }

    pub(crate) fn in_use(&self) -> usize {
        self.lock().in_use
    }

    /// A slot for `caller` from `source`: at once, taken from a caller over
    /// its share, or the next one freed that is `caller`'s turn. `None`
    /// only if the slots went away, which they do not while borrowed.
    pub(crate) async fn acquire(&self, caller: NodeId, source: IpAddr) -> Option<Slot<'_>> {
        let granted = {
            let mut state = self.lock();
            state.enter(caller, source);
            if let Some(slot) = state.try_take(caller, self.limit) {
                return Some(self.attach(slot));
            }
            let (grant, granted) = oneshot::channel();
            let waiting = &mut state.caller(caller).waiting;
            let before = waiting.len();
            waiting.retain(|waiter| !waiter.is_closed());
            let dropped = before - waiting.len();
            waiting.push_back(grant);
            state.waiting = state.waiting + 1 - dropped;
            Waiting {
                slots: self,
                granted,
            }
        };
        granted.await
    }

    fn attach(&self, mut slot: Slot<'static>) -> Slot<'_> {
        Slot {
            slots: Some(self),
            caller: slot.caller,
            id: slot.id,
            revoked: std::mem::take(&mut slot.revoked),
        }
    }

    fn release(&self, caller: NodeId, id: u64) {
        let mut state = self.lock();
        if !state.forget(caller, id) {
            // Revoked: the slot already went to another caller.
            return;
        }
        while state.waiting > 0 {
            let Some(next) = state.fewest_held_waiting() else {
                break;
            };
            state.waiting -= 1;
            let waiter = state
                .callers
                .get_mut(&next)
                .and_then(|c| c.waiting.pop_front());
            let Some(waiter) = waiter else { continue };
            let slot = state.hold(next);
            match waiter.send(slot) {
                Ok(()) => return,
                // Its call ended while waiting: the next one.
                Err(slot) => {
                    state.forget(next, slot.id);
                }
            }
        }
        state.in_use -= 1;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("handler slots lock poisoned")
    }
}

impl State {
    /// Makes `caller`'s entry if it has none.
    fn enter(&mut self, caller: NodeId, source: IpAddr) {
        self.callers.entry(caller).or_insert_with(|| Caller {
            source,
            held: VecDeque::new(),
            waiting: VecDeque::new(),
        });
    }

    /// `caller`'s entry, which `enter` made.
    fn caller(&mut self, caller: NodeId) -> &mut Caller {
        self.callers.get_mut(&caller).expect("entered")
    }

    fn held_by_source(&self, source: IpAddr) -> usize {
        self.sources.get(&source).copied().unwrap_or(0)
    }

    fn try_take(&mut self, caller: NodeId, limit: usize) -> Option<Slot<'static>> {
        if self.in_use < limit {
            self.in_use += 1;
            return Some(self.hold(caller));
        }
        let victim = self.victim_for(caller)?;
        let taken = self.caller(victim).held.pop_back()?;
        taken.revoked.cancel();
        self.count_off(victim);
        Some(self.hold(caller))
    }

    /// The caller a slot is taken from for `caller`, if any is over its share.
    fn victim_for(&self, caller: NodeId) -> Option<NodeId> {
        let me = self.callers.get(&caller)?;
        let (busiest, most) = self.sources.iter().max_by_key(|(_, held)| **held)?;
        let source = match *most > self.held_by_source(me.source) + 1 {
            true => *busiest,
            false => me.source,
        };
        let (victim, theirs) = self
            .callers
            .iter()
            .filter(|(_, c)| c.source == source)
            .map(|(id, c)| (*id, c.held.len()))
            .max_by_key(|(_, held)| *held)?;
        let over = source != me.source || theirs > me.held.len() + 1;
        over.then_some(victim)
    }

    fn hold(&mut self, caller: NodeId) -> Slot<'static> {
        self.next_id += 1;
        let revoked = CallCancel::default();
        let holder = Holder {
            id: self.next_id,
            revoked: revoked.clone(),
        };
        let entry = self.caller(caller);
        entry.held.push_back(holder);
        let source = entry.source;
        *self.sources.entry(source).or_default() += 1;
        Slot {
            slots: None,
            caller,
            id: self.next_id,
            revoked,
        }
    }

    /// Takes slot `id` off `caller`'s list; false if it was revoked.
    fn forget(&mut self, caller: NodeId, id: u64) -> bool {
        let Some(entry) = self.callers.get_mut(&caller) else {
            return false;
        };
        let Ok(index) = entry.held.binary_search_by_key(&id, |h| h.id) else {
            return false;
        };
        entry.held.remove(index);
        self.count_off(caller);
        true
    }

    /// Counts a slot `caller` no longer holds off its source, and forgets
    /// the caller and its source once they hold and await nothing.
    fn count_off(&mut self, caller: NodeId) {
        let Some(entry) = self.callers.get(&caller) else {
            return;
        };
        let source = entry.source;
        if entry.held.is_empty() && entry.waiting.is_empty() {
            self.callers.remove(&caller);
        }
        if let Some(held) = self.sources.get_mut(&source) {
            *held -= 1;
            if *held == 0 {
                self.sources.remove(&source);
            }
        }
    }

    /// The waiting caller whose source, then itself, holds the fewest
    /// slots. Waiters whose calls have ended are not looked for here (that
    /// would cost every release a pass over every waiter): a grant to one
    /// fails, and the next is served.
    fn fewest_held_waiting(&self) -> Option<NodeId> {
        self.callers
            .iter()
            .filter(|(_, c)| !c.waiting.is_empty())
            .min_by_key(|(_, c)| (self.sources.get(&c.source).copied(), c.held.len()))
            .map(|(id, _)| *id)
    }
}

/// A caller's wait for a slot. Dropped with its call, it gives back a slot
/// granted to it in the meantime.
struct Waiting<'a> {
    slots: &'a HandlerSlots,
    granted: oneshot::Receiver<Slot<'static>>,
}

impl<'a> std::future::Future for Waiting<'a> {
    type Output = Option<Slot<'a>>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let slots = self.slots;
        std::pin::Pin::new(&mut self.granted)
            .poll(cx)
            .map(|granted| granted.ok().map(|slot| slots.attach(slot)))
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        // Closed first: a grant either arrived before, or fails to send.
        self.granted.close();
        if let Ok(slot) = self.granted.try_recv() {
            drop(self.slots.attach(slot));
        }
    }
}

impl Slot<'_> {
    /// Resolves when the slot is given to a caller under its share.
    pub(crate) async fn revoked(&self) {
        self.revoked.cancelled().await
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Some(slots) = self.slots {
            slots.release(self.caller, self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::identity::Identity;

    fn callers(n: usize) -> Vec<NodeId> {
        (0..n).map(|_| Identity::generate().node_id()).collect()
    }

    /// Callers of these tests come from sources of their own.
    fn own_source(caller: NodeId) -> IpAddr {
        let bytes = caller.as_bytes();
        IpAddr::from([10, bytes[0], bytes[1], bytes[2]])
    }

    async fn take(slots: &HandlerSlots, caller: NodeId) -> Option<Slot<'_>> {
        take_from(slots, caller, own_source(caller)).await
    }

    async fn take_from(slots: &HandlerSlots, caller: NodeId, source: IpAddr) -> Option<Slot<'_>> {
        tokio::time::timeout(Duration::from_millis(20), slots.acquire(caller, source))
            .await
            .ok()
            .flatten()
    }

    #[tokio::test(start_paused = true)]
    async fn free_slots_go_to_any_caller_up_to_the_limit() {
        let slots = HandlerSlots::new(3);
        let a = callers(1)[0];
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(take(&slots, a).await.expect("a free slot"));
        }
        assert!(take(&slots, a).await.is_none(), "over the limit it waits");
        assert_eq!(slots.in_use(), 3);
        drop(held);
        assert_eq!(slots.in_use(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_under_its_share_takes_the_newest_slot_of_the_busiest() {
        let slots = HandlerSlots::new(4);
        let (a, b) = (callers(1)[0], callers(1)[0]);
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(take(&slots, a).await.unwrap());
        }
        let first_of_b = take(&slots, b).await.expect("taken from a");
        let newest = held.last().unwrap();
        tokio::time::timeout(Duration::from_secs(1), newest.revoked())
            .await
            .expect("a's newest slot is revoked");
        let second_of_b = take(&slots, b).await.expect("a holds 3, b 1");
        assert!(take(&slots, b).await.is_none(), "2 each: b waits");
        assert_eq!(slots.in_use(), 4);
        drop(held);
        assert_eq!(slots.in_use(), 2, "revoked slots are not given back twice");
        drop((first_of_b, second_of_b));
        assert_eq!(slots.in_use(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_freed_slot_goes_to_the_waiting_caller_holding_the_fewest() {
        let slots = HandlerSlots::new(3);
        let (a, b) = (callers(1)[0], callers(1)[0]);
        let _a1 = take(&slots, a).await.unwrap();
        let _a2 = take(&slots, a).await.unwrap();
        let b1 = take(&slots, b).await.unwrap();
        // Full, and b (1) may not take from a (2): both wait, a first.
        let a_waits = slots.acquire(a, own_source(a));
        let b_waits = slots.acquire(b, own_source(b));
        tokio::pin!(a_waits, b_waits);
        assert!(futures_poll(&mut a_waits).is_none());
        assert!(futures_poll(&mut b_waits).is_none());
        drop(b1);
        let b2 = tokio::time::timeout(Duration::from_secs(1), b_waits)
            .await
            .expect("b holds fewer, though a waited first");
        assert!(b2.is_some());
        assert!(futures_poll(&mut a_waits).is_none());
        assert_eq!(slots.in_use(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_dropped_after_its_grant_gives_the_slot_back() {
        let slots = HandlerSlots::new(1);
        let (a, b) = (callers(1)[0], callers(1)[0]);
        let a1 = take(&slots, a).await.unwrap();
        let mut b_waits = Box::pin(slots.acquire(b, own_source(b)));
        assert!(futures_poll(&mut b_waits).is_none());
        drop(a1);
        assert_eq!(slots.in_use(), 1, "granted to b");
        drop(b_waits);
        assert_eq!(slots.in_use(), 0, "given back by b's dropped wait");
        assert!(take(&slots, a).await.is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn many_callers_converge_on_equal_shares() {
        let slots = HandlerSlots::new(64);
        let all = callers(8);
        let mut held = Vec::new();
        for _ in 0..64 {
            for caller in &all {
                if let Some(slot) = take(&slots, *caller).await {
                    held.push(slot);
                }
            }
        }
        held.retain(|slot| !slot.revoked.is_cancelled());
        for caller in &all {
            let count = held.iter().filter(|s| s.caller == *caller).count();
            assert_eq!(count, 8, "{caller:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_that_ended_is_passed_over() {
        let slots = HandlerSlots::new(1);
        let (a, b, c) = (callers(1)[0], callers(1)[0], callers(1)[0]);
        let a1 = take(&slots, a).await.unwrap();
        let mut b_waits = Box::pin(slots.acquire(b, own_source(b)));
        assert!(futures_poll(&mut b_waits).is_none());
        drop(b_waits);
        let mut c_waits = Box::pin(slots.acquire(c, own_source(c)));
        assert!(futures_poll(&mut c_waits).is_none());
        drop(a1);
        assert!(
            futures_poll(&mut c_waits).flatten().is_some(),
            "c, not b's ended wait"
        );
        assert!(slots.lock().callers.keys().all(|id| *id == c));
    }

    #[tokio::test(start_paused = true)]
    async fn identities_from_one_source_share_that_sources_share() {
        let slots = HandlerSlots::new(8);
        let crowd = callers(6);
        let (crowded, lone) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let newcomer = callers(1)[0];
        let mut held = Vec::new();
        for _ in 0..8 {
            for caller in &crowd {
                held.extend(take_from(&slots, *caller, crowded).await);
            }
            held.extend(take_from(&slots, newcomer, lone).await);
        }
        held.retain(|slot| !slot.revoked.is_cancelled());
        let newcomers = held.iter().filter(|s| s.caller == newcomer).count();
        assert_eq!(newcomers, 4, "half the slots, against 6 identities");
        for caller in &crowd {
            let count = held.iter().filter(|s| s.caller == *caller).count();
            assert!(count <= 1, "the crowd shares 4 slots: {count}");
        }
        drop(held);
        assert_eq!(slots.in_use(), 0);
        assert!(slots.lock().sources.is_empty() && slots.lock().callers.is_empty());
    }

    fn futures_poll<F: std::future::Future + Unpin>(future: &mut F) -> Option<F::Output> {
        let waker = std::task::Waker::noop();
        let mut context = std::task::Context::from_waker(waker);
        match std::pin::Pin::new(future).poll(&mut context) {
            std::task::Poll::Ready(output) => Some(output),
            std::task::Poll::Pending => None,
        }
    }
}
