//! An iterative Kademlia lookup as a pure state machine: it says whom to ask
//! next and takes their answers; `run` drives it with α queries in flight
//! until it ends or its deadline passes. A lookup asks a bounded number of
//! nodes and never dials one address twice, whatever its answers say.

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::distance::closer_to;
use super::routing_table::Contact;
use crate::identity::NodeId;

/// Queries in flight at once (Kademlia's α).
pub(crate) const ALPHA: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    Fresh,
    Asked,
    Answered,
    Failed,
}

#[derive(Debug)]
pub(crate) struct Lookup {
    target: NodeId,
    local: NodeId,
    k: usize,
    stop_when_found: bool,
    /// Sorted by distance to the target, closest first.
    candidates: Vec<(Contact, Progress)>,
    /// Every address a candidate has: one address is one node, so a second
    /// id claiming it is a lie, or a reuse that can wait for the next lookup.
    addresses: HashSet<SocketAddr>,
    /// Questions left before the lookup stops asking.
    queries_left: usize,
}

impl Lookup {
    /// `stop_when_found`: finish as soon as the target itself is known (a
    /// node lookup), rather than once the k closest have answered.
    /// `max_queries`: the most nodes it asks, answered or not.
    pub(crate) fn new(
        local: NodeId,
        target: NodeId,
        k: usize,
        seeds: Vec<Contact>,
        stop_when_found: bool,
        max_queries: usize,
    ) -> Self {
        let mut lookup = Self {
            target,
            local,
            k,
            stop_when_found,
            candidates: Vec::new(),
            addresses: HashSet::new(),
            queries_left: max_queries,
        };
        lookup.learn(seeds);
        lookup
    }

    /// Contacts to ask now, marked as asked: up to α in flight, from the k
    /// closest that have not failed.
    pub(crate) fn next_queries(&mut self) -> Vec<Contact> {
        if self.finished_early() {
            return Vec::new();
        }
        let in_flight = self.count(Progress::Asked);
        let mut picked = Vec::new();
        let mut budget = self.queries_left;
        for (contact, progress) in self.live_closest_mut() {
            if picked.len() + in_flight >= ALPHA || budget == 0 {
                break;
            }
            if *progress == Progress::Fresh {
                *progress = Progress::Asked;
                picked.push(contact.clone());
                budget -= 1;
            }
        }
        self.queries_left = budget;
        picked
    }

    pub(crate) fn answered(&mut self, from: NodeId, contacts: Vec<Contact>) {
        self.set(from, Progress::Answered);
        self.learn(contacts);
    }

    pub(crate) fn failed(&mut self, from: NodeId) {
        self.set(from, Progress::Failed);
    }

    /// The target's own contact, if some node told us where it is.
    pub(crate) fn found(&self) -> Option<&Contact> {
        self.candidates
            .iter()
            .map(|(c, _)| c)
            .find(|c| c.node == self.target)
    }

    /// The k closest contacts that answered.
    pub(crate) fn closest_answered(&self) -> Vec<Contact> {
        self.candidates
            .iter()
            .filter(|(_, p)| *p == Progress::Answered)
            .take(self.k)
            .map(|(c, _)| c.clone())
            .collect()
    }

    fn finished_early(&self) -> bool {
        self.stop_when_found && self.found().is_some()
    }

    fn live_closest_mut(&mut self) -> impl Iterator<Item = &mut (Contact, Progress)> {
        let k = self.k;
        self.candidates
            .iter_mut()
            .filter(|(_, p)| *p != Progress::Failed)
            .take(k)
    }

    fn learn(&mut self, contacts: Vec<Contact>) {
        for contact in contacts {
            if contact.node == self.local
                || contact.addrs.iter().any(|a| self.addresses.contains(a))
                || self.candidates.iter().any(|(c, _)| c.node == contact.node)
            {
                continue;
            }
            self.addresses.extend(contact.addrs.iter().copied());
            self.candidates.push((contact, Progress::Fresh));
        }
        let target = self.target;
        self.candidates
            .sort_by(|(a, _), (b, _)| closer_to(&target, &a.node, &b.node));
    }

    fn set(&mut self, node: NodeId, progress: Progress) {
        if let Some((_, p)) = self.candidates.iter_mut().find(|(c, _)| c.node == node) {
            *p = progress;
        }
    }

    fn count(&self, progress: Progress) -> usize {
        self.candidates
            .iter()
            .filter(|(_, p)| *p == progress)
            .count()
    }
}

/// Runs `lookup` to the end or to `deadline`, asking each contact with
/// `query`, which returns the contacts that node knows closest to the
/// target. Questions still out at the end are cancelled.
pub(crate) async fn run<Q, F, E>(mut lookup: Lookup, deadline: Instant, query: Q) -> Lookup
where
    Q: Fn(Contact) -> F,
    F: Future<Output = Result<Vec<Contact>, E>> + Send + 'static,
    E: Send + 'static,
{
    let mut in_flight = JoinSet::new();
    loop {
        for contact in lookup.next_queries() {
            let node = contact.node;
            let answer = query(contact);
            in_flight.spawn(async move { (node, answer.await) });
        }
        let joined = tokio::select! {
            joined = in_flight.join_next() => joined,
            () = tokio::time::sleep_until(deadline) => None,
        };
        let Some(joined) = joined else {
            return lookup;
        };
        match joined {
            Ok((node, Ok(contacts))) => lookup.answered(node, contacts),
            Ok((node, Err(_))) => lookup.failed(node),
            Err(_) => {} // a query task panicked: its node stays "asked" and is not retried.
        }
        if lookup.finished_early() {
            return lookup;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::net::SocketAddr;
    use std::sync::Arc;

    use super::*;

    fn node(i: u8) -> NodeId {
        let mut bytes = [0u8; 32];
        bytes[0] = i.wrapping_mul(37);
        bytes[31] = i;
        NodeId::from_bytes(bytes)
    }

    fn contact(i: u8) -> Contact {
        Contact {
            node: node(i),
            addrs: vec![SocketAddr::from(([127, 0, 0, 1], u16::from(i)))],
            relays: Vec::new(),
        }
    }

    fn far() -> Instant {
        Instant::now() + std::time::Duration::from_secs(3600)
    }

    /// A line of nodes where each knows only its neighbours.
    fn line(len: u8) -> Arc<HashMap<NodeId, Vec<Contact>>> {
        let mut knows = HashMap::new();
        for i in 0..len {
            let mut neighbours = Vec::new();
            if i > 0 {
                neighbours.push(contact(i - 1));
            }
            if i + 1 < len {
                neighbours.push(contact(i + 1));
            }
            knows.insert(node(i), neighbours);
        }
        Arc::new(knows)
    }

    #[tokio::test]
    async fn finds_the_end_of_a_line_of_twenty_nodes() {
        let network = line(20);
        let lookup = Lookup::new(node(0), node(19), 20, vec![contact(1)], true, 60);
        let done = run(lookup, far(), |c: Contact| {
            let network = network.clone();
            async move { Ok::<_, ()>(network[&c.node].clone()) }
        })
        .await;
        assert_eq!(done.found(), Some(&contact(19)));
    }

    #[tokio::test]
    async fn failed_nodes_are_skipped_and_the_lookup_ends() {
        let network = line(6);
        let lookup = Lookup::new(node(0), node(5), 20, vec![contact(1)], true, 60);
        let done = run(lookup, far(), |c: Contact| {
            let network = network.clone();
            async move {
                if c.node == node(3) {
                    return Err(());
                }
                Ok(network[&c.node].clone())
            }
        })
        .await;
        assert_eq!(done.found(), None, "the line is cut at node 3");
        assert!(done.closest_answered().iter().all(|c| c.node != node(3)));
    }

    #[test]
    fn never_more_than_alpha_queries_in_flight() {
        let seeds = (1..=10).map(contact).collect();
        let mut lookup = Lookup::new(node(0), node(50), 20, seeds, false, 60);
        assert_eq!(lookup.next_queries().len(), ALPHA);
        assert!(lookup.next_queries().is_empty());
        let first = lookup.closest_answered();
        assert!(first.is_empty());
        let asked: Vec<_> = lookup
            .candidates
            .iter()
            .filter(|(_, p)| *p == Progress::Asked)
            .map(|(c, _)| c.node)
            .collect();
        lookup.answered(asked[0], vec![]);
        assert_eq!(lookup.next_queries().len(), 1, "one answer frees one slot");
    }

    #[test]
    fn one_address_is_asked_once_whatever_ids_claim_it() {
        let shared = SocketAddr::from(([192, 0, 2, 1], 7733));
        let liars: Vec<Contact> = (1..=50)
            .map(|i| Contact {
                node: node(i),
                addrs: vec![shared],
                relays: Vec::new(),
            })
            .collect();
        let mut lookup = Lookup::new(node(0), node(99), 20, liars, false, 60);
        assert_eq!(lookup.next_queries().len(), 1);
        assert_eq!(lookup.candidates.len(), 1, "the other 49 were dropped");
    }

    #[test]
    fn a_lookup_asks_at_most_its_query_budget() {
        let mut lookup = Lookup::new(node(0), node(200), 20, vec![contact(1)], false, 5);
        let mut asked = 0;
        let mut next = 100;
        loop {
            let batch = lookup.next_queries();
            if batch.is_empty() {
                break;
            }
            for c in batch {
                asked += 1;
                // Every answer names three new nodes.
                let fresh = (next..next + 3).map(contact).collect();
                next += 3;
                lookup.answered(c.node, fresh);
            }
        }
        assert_eq!(asked, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_ends_a_lookup_whose_nodes_never_answer() {
        let lookup = Lookup::new(node(0), node(9), 20, vec![contact(1)], true, 60);
        let start = Instant::now();
        let deadline = start + std::time::Duration::from_secs(10);
        let done = run(lookup, deadline, |_| {
            std::future::pending::<Result<Vec<Contact>, ()>>()
        })
        .await;
        assert_eq!(start.elapsed(), std::time::Duration::from_secs(10));
        assert_eq!(done.found(), None);
    }
}
