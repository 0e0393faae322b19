//! Kademlia's XOR metric over node ids.

use std::cmp::Ordering;

use crate::identity::NodeId;

/// The XOR of two ids, compared as a 256-bit big-endian number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Distance([u8; 32]);

impl Distance {
    pub(crate) fn between(a: &NodeId, b: &NodeId) -> Self {
        let mut xor = [0u8; 32];
        for (out, (x, y)) in xor.iter_mut().zip(a.as_bytes().iter().zip(b.as_bytes())) {
            *out = x ^ y;
        }
        Self(xor)
    }

    /// The k-bucket this distance falls in: 255 for the farthest half of the
    /// id space, 0 for ids differing only in the last bit; `None` for zero.
    pub(crate) fn bucket(&self) -> Option<usize> {
        let leading_zeros: u32 = self
            .0
            .iter()
            .position(|byte| *byte != 0)
            .map(|i| i as u32 * 8 + self.0[i].leading_zeros())?;
        Some(255 - leading_zeros as usize)
    }
}

/// Orders ids by closeness to `target`.
pub(crate) fn closer_to(target: &NodeId, a: &NodeId, b: &NodeId) -> Ordering {
    Distance::between(target, a).cmp(&Distance::between(target, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(last: u8, first: u8) -> NodeId {
        let mut bytes = [0u8; 32];
        bytes[0] = first;
        bytes[31] = last;
        NodeId::from_bytes(bytes)
    }

    #[test]
    fn buckets_follow_the_highest_differing_bit() {
        let zero = id(0, 0);
        assert_eq!(Distance::between(&zero, &zero).bucket(), None);
        assert_eq!(Distance::between(&zero, &id(1, 0)).bucket(), Some(0));
        assert_eq!(Distance::between(&zero, &id(2, 0)).bucket(), Some(1));
        assert_eq!(Distance::between(&zero, &id(0, 0x80)).bucket(), Some(255));
    }

    #[test]
    fn xor_is_symmetric_and_orders_by_closeness() {
        let (a, b, c) = (id(1, 0), id(3, 0), id(0, 1));
        assert_eq!(Distance::between(&a, &b), Distance::between(&b, &a));
        assert_eq!(closer_to(&a, &b, &c), Ordering::Less);
    }
}
