//! Nodes whose `Info` answer is recent enough to trust, so a node that
//! reconnects soon after (an idle connection closed, a redial) is not asked
//! again. Bounded: when full, the oldest answer is forgotten.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::identity::NodeId;

#[derive(Debug)]
pub(super) struct FreshAnswers {
    answered: Mutex<HashMap<NodeId, Instant>>,
    fresh_for: Duration,
    capacity: usize,
}

impl FreshAnswers {
    pub(crate) fn new(fresh_for: Duration, capacity: usize) -> Self {
        Self {
            answered: Mutex::default(),
            fresh_for,
            capacity,
        }
    }

    /// Whether `node` answered within `fresh_for` before `now`.
    pub(crate) fn is_fresh(&self, node: NodeId, now: Instant) -> bool {
        self.lock()
            .get(&node)
            .is_some_and(|&answered| now.saturating_duration_since(answered) < self.fresh_for)
    }

    /// Notes that `node` answered at `now`.
    pub(crate) fn record(&self, node: NodeId, now: Instant) {
        let mut answered = self.lock();
        if answered.len() >= self.capacity && !answered.contains_key(&node) {
            answered.retain(|_, &mut at| now.saturating_duration_since(at) < self.fresh_for);
            if answered.len() >= self.capacity
                && let Some(oldest) = answered.iter().min_by_key(|(_, at)| **at).map(|(n, _)| *n)
            {
                answered.remove(&oldest);
            }
        }
        answered.insert(node, now);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<NodeId, Instant>> {
        self.answered.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(n: u8) -> NodeId {
        NodeId::from_bytes([n; 32])
    }

    #[test]
    fn an_answer_is_fresh_for_its_time_only() {
        let answers = FreshAnswers::new(Duration::from_secs(60), 8);
        let start = Instant::now();
        assert!(!answers.is_fresh(node(1), start), "never answered");
        answers.record(node(1), start);
        assert!(answers.is_fresh(node(1), start + Duration::from_secs(59)));
        assert!(!answers.is_fresh(node(1), start + Duration::from_secs(60)));
        assert!(!answers.is_fresh(node(2), start), "per node");
    }

    #[test]
    fn when_full_stale_answers_go_first_then_the_oldest() {
        let answers = FreshAnswers::new(Duration::from_secs(60), 2);
        let start = Instant::now();
        answers.record(node(1), start);
        answers.record(node(2), start + Duration::from_secs(30));
        let later = start + Duration::from_secs(70);
        answers.record(node(3), later);
        assert!(answers.is_fresh(node(2), later) && answers.is_fresh(node(3), later));
        answers.record(node(4), later + Duration::from_secs(1));
        assert!(!answers.is_fresh(node(2), later), "the oldest made room");
        assert!(answers.is_fresh(node(3), later) && answers.is_fresh(node(4), later));
        assert_eq!(answers.lock().len(), 2);
    }
}
