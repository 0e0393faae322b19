//! Calls waiting for a node to become reachable (`wait_for_ready`), counted
//! per node so a down node cannot pile up unbounded work.

use std::sync::Arc;

use dashmap::DashMap;

use crate::identity::NodeId;

#[derive(Debug, Clone, Default)]
pub(super) struct WaitingCalls {
    per_node: Arc<DashMap<NodeId, usize>>,
}

impl WaitingCalls {
    /// A place in `node`'s queue, or `None` if `limit` calls already wait.
    pub(crate) fn enter(&self, node: NodeId, limit: usize) -> Option<WaitingPlace> {
        let mut waiting = self.per_node.entry(node).or_default();
        if *waiting >= limit {
            return None;
        }
        *waiting += 1;
        Some(WaitingPlace {
            calls: self.clone(),
            node,
        })
    }
}

pub(super) struct WaitingPlace {
    calls: WaitingCalls,
    node: NodeId,
}

impl Drop for WaitingPlace {
    fn drop(&mut self) {
        self.calls.per_node.remove_if_mut(&self.node, |_, waiting| {
            *waiting -= 1;
            *waiting == 0
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_is_bounded_per_node_and_frees_its_places() {
        let calls = WaitingCalls::default();
        let (a, b) = (NodeId::from_bytes([1; 32]), NodeId::from_bytes([2; 32]));
        let first = calls.enter(a, 2).unwrap();
        let _second = calls.enter(a, 2).unwrap();
        assert!(calls.enter(a, 2).is_none());
        assert!(
            calls.enter(b, 2).is_some(),
            "other nodes have their own queue"
        );
        drop(first);
        assert!(calls.enter(a, 2).is_some());
    }
}
