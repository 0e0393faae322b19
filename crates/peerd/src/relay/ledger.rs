//! The relay's admission, without sockets: who holds a reservation, how
//! many circuits run, for the relay and for each node on either end.

use std::collections::HashMap;

use super::RelayConfig;
use crate::identity::NodeId;

/// Why the relay refuses a reservation or a circuit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The relay holds `max_reservations` already.
    #[error("the relay holds its limit of {0} reservations")]
    Reservations(usize),
    /// The target holds no reservation on this relay.
    #[error("{0} holds no reservation on this relay")]
    NoReservation(NodeId),
    /// The relay runs `max_circuits` already.
    #[error("the relay runs its limit of {0} circuits")]
    Circuits(usize),
    /// The node runs `max_circuits_per_node` already, as caller or target.
    #[error("{node} has its share of {limit} circuits on this relay")]
    NodeCircuits {
        /// The node at its limit.
        node: NodeId,
        /// `max_circuits_per_node`.
        limit: usize,
    },
}

/// The counts behind every admission.
#[derive(Debug)]
pub(crate) struct Ledger {
    config: RelayConfig,
    /// The generation of each node's current reservation.
    reservations: HashMap<NodeId, u64>,
    /// Circuits each node is an end of.
    ends: HashMap<NodeId, usize>,
    circuits: usize,
    issued: u64,
}

impl Ledger {
    pub(crate) fn new(config: RelayConfig) -> Self {
        Self {
            config,
            reservations: HashMap::new(),
            ends: HashMap::new(),
            circuits: 0,
            issued: 0,
        }
    }

    /// Admits `node`'s reservation, replacing one it holds; the number
    /// names it for `unreserve`.
    pub(crate) fn reserve(&mut self, node: NodeId) -> Result<u64, Refusal> {
        let limit = self.config.max_reservations;
        if !self.reservations.contains_key(&node) && self.reservations.len() >= limit {
            return Err(Refusal::Reservations(limit));
        }
        let generation = self.next();
        self.reservations.insert(node, generation);
        Ok(generation)
    }

    /// Ends reservation `generation` of `node`, unless a newer one
    /// replaced it.
    pub(crate) fn unreserve(&mut self, node: NodeId, generation: u64) {
        if self.reservations.get(&node) == Some(&generation) {
            self.reservations.remove(&node);
        }
    }

    /// Admits a circuit from `caller` to `target`; the number names it.
    pub(crate) fn open(&mut self, caller: NodeId, target: NodeId) -> Result<u64, Refusal> {
        if !self.reservations.contains_key(&target) {
            return Err(Refusal::NoReservation(target));
        }
        if self.circuits >= self.config.max_circuits {
            return Err(Refusal::Circuits(self.config.max_circuits));
        }
        let limit = self.config.max_circuits_per_node;
        for node in [caller, target] {
            if self.ends.get(&node).copied().unwrap_or(0) >= limit {
                return Err(Refusal::NodeCircuits { node, limit });
            }
        }
        for node in [caller, target] {
            *self.ends.entry(node).or_default() += 1;
        }
        self.circuits += 1;
        Ok(self.next())
    }

    /// Ends a circuit `open` admitted.
    pub(crate) fn close(&mut self, caller: NodeId, target: NodeId) {
        self.circuits = self.circuits.saturating_sub(1);
        for node in [caller, target] {
            if let Some(count) = self.ends.get_mut(&node) {
                *count -= 1;
                if *count == 0 {
                    self.ends.remove(&node);
                }
            }
        }
    }

    pub(crate) fn reservations(&self) -> usize {
        self.reservations.len()
    }

    pub(crate) fn circuits(&self) -> usize {
        self.circuits
    }

    fn next(&mut self) -> u64 {
        self.issued += 1;
        self.issued
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    fn config() -> RelayConfig {
        RelayConfig {
            max_reservations: 2,
            max_circuits: 3,
            max_circuits_per_node: 2,
            ..RelayConfig::default()
        }
    }

    fn node() -> NodeId {
        Identity::generate().node_id()
    }

    #[test]
    fn reservations_stop_at_the_limit_and_a_node_may_renew_its_own() {
        let mut ledger = Ledger::new(config());
        let (a, b, c) = (node(), node(), node());
        let first = ledger.reserve(a).unwrap();
        ledger.reserve(b).unwrap();
        assert_eq!(ledger.reserve(c), Err(Refusal::Reservations(2)));
        let renewed = ledger.reserve(a).unwrap();
        ledger.unreserve(a, first);
        assert_eq!(ledger.reservations(), 2, "the stale end keeps the renewal");
        ledger.unreserve(a, renewed);
        assert!(ledger.reserve(c).is_ok());
    }

    #[test]
    fn circuits_need_a_reservation_and_stop_at_each_limit() {
        let mut ledger = Ledger::new(config());
        let (target, other, callers) = (node(), node(), [node(), node(), node()]);
        assert_eq!(
            ledger.open(callers[0], target),
            Err(Refusal::NoReservation(target))
        );
        ledger.reserve(target).unwrap();
        ledger.reserve(other).unwrap();
        ledger.open(callers[0], target).unwrap();
        ledger.open(callers[1], target).unwrap();
        assert_eq!(
            ledger.open(callers[2], target),
            Err(Refusal::NodeCircuits {
                node: target,
                limit: 2
            })
        );
        ledger.open(callers[0], other).unwrap();
        assert_eq!(
            ledger.open(callers[0], other),
            Err(Refusal::Circuits(3)),
            "the relay's total is checked first"
        );
        ledger.close(callers[0], target);
        ledger.open(callers[0], other).unwrap();
        ledger.close(callers[1], target);
        assert_eq!(
            ledger.open(callers[0], target),
            Err(Refusal::NodeCircuits {
                node: callers[0],
                limit: 2
            })
        );
        assert_eq!(ledger.circuits(), 2);
    }
}
