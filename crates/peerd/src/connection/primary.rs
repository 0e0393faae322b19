//! Which connection to a node both sides keep when there are two (a
//! simultaneous dial, or a peer that reconnected). Each side decides alone,
//! from facts both sides share, so they converge without talking.

use super::Direction;
use crate::identity::NodeId;

/// A connection as the decision sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub direction: Direction,
    /// Local registration order; larger is newer.
    pub sequence: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep {
    Current,
    New,
}

/// Keep the connection dialed by the node with the lower `NodeId`. Between two
/// connections dialed by the same node keep the newer one: that node dialed
/// again only because it no longer uses the older one.
pub(crate) fn keep(local: NodeId, remote: NodeId, current: Candidate, new: Candidate) -> Keep {
    let initiator = |c: Candidate| match c.direction {
        Direction::Outbound => local,
        Direction::Inbound => remote,
    };
    let (current_by, new_by) = (initiator(current), initiator(new));
    if current_by == new_by {
        if new.sequence > current.sequence {
            Keep::New
        } else {
            Keep::Current
        }
    } else if new_by < current_by {
        Keep::New
    } else {
        Keep::Current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOW: NodeId = NodeId::from_bytes([1; 32]);
    const HIGH: NodeId = NodeId::from_bytes([2; 32]);

    fn candidate(direction: Direction, sequence: u64) -> Candidate {
        Candidate {
            direction,
            sequence,
        }
    }

    /// What `local` keeps when it registers a connection in `first` and then
    /// one in `second` direction.
    fn kept(local: NodeId, remote: NodeId, first: Direction, second: Direction) -> Direction {
        let (first, second) = (candidate(first, 1), candidate(second, 2));
        match keep(local, remote, first, second) {
            Keep::Current => first.direction,
            Keep::New => second.direction,
        }
    }

    #[test]
    fn both_sides_keep_the_connection_dialed_by_the_lower_id_in_either_order() {
        use Direction::{Inbound, Outbound};
        // LOW's outbound connection is HIGH's inbound one: that is the one to keep.
        for (low_first, low_second) in [(Outbound, Inbound), (Inbound, Outbound)] {
            assert_eq!(kept(LOW, HIGH, low_first, low_second), Outbound);
        }
        for (high_first, high_second) in [(Outbound, Inbound), (Inbound, Outbound)] {
            assert_eq!(kept(HIGH, LOW, high_first, high_second), Inbound);
        }
    }

    #[test]
    fn a_redial_by_the_same_node_replaces_the_old_connection() {
        let old = candidate(Direction::Inbound, 1);
        let new = candidate(Direction::Inbound, 2);
        assert_eq!(keep(LOW, HIGH, old, new), Keep::New);
        assert_eq!(keep(HIGH, LOW, old, new), Keep::New);
        assert_eq!(keep(LOW, HIGH, new, old), Keep::Current);
    }
}
