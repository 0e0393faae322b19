//! Limits of discovery, as a plain struct with documented defaults: what one
//! FindNode answer, one lookup and all lookups together may cost this node
//! and the nodes it dials.

use std::time::Duration;

/// What discovery may spend; `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// A whole lookup, with the service search or announcement around it,
    /// gives up after this. Default 10 s.
    pub lookup_timeout: Duration,
    /// Lookups running at once on this node; more wait for a turn within
    /// their own deadline. Default 16.
    pub max_lookups: usize,
    /// FindNode questions one lookup asks at most, answered or not.
    /// Default 60 (3 k).
    pub max_queries_per_lookup: usize,
    /// Dials per second to addresses learned from other nodes' answers (a
    /// token bucket, bursts of the same size). Dials to nodes already
    /// connected are free. Default 20.
    pub learned_dials_per_second: u32,
    /// How long a routing-table member that is not connected has to answer
    /// a Ping before a newcomer takes its place. Default 2 s.
    pub liveness_timeout: Duration,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        Self {
            lookup_timeout: Duration::from_secs(10),
            max_lookups: 16,
            max_queries_per_lookup: 60,
            learned_dials_per_second: 20,
            liveness_timeout: Duration::from_secs(2),
        }
    }
}
