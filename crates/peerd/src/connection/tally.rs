//! What the manager counts over its life, for metrics: handshakes by
//! direction and outcome, how long the completed ones took, and the traffic of
//! connections that have closed (open ones are read from quinn when asked).

use std::ops::Add;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::Direction;
use crate::metrics::{Histogram, HistogramSnapshot};

/// How a handshake ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeOutcome {
    /// The handshake completed.
    Ok,
    /// TLS or QUIC said no: a wrong or missing node key, a bad certificate,
    /// an unreachable address.
    Failed,
    /// It did not finish within `TransportConfig::handshake_timeout`.
    TimedOut,
    /// Inbound only: admission refused it (connection or handshake limits).
    Refused,
}

impl HandshakeOutcome {
    /// Every outcome, in the order the tally indexes them.
    pub const ALL: [HandshakeOutcome; 4] = [Self::Ok, Self::Failed, Self::TimedOut, Self::Refused];

    /// A short lowercase name (`ok`, `failed`, `timeout`, `refused`), e.g. a
    /// metrics label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed => "failed",
            Self::TimedOut => "timeout",
            Self::Refused => "refused",
        }
    }
}

/// Bytes and losses on the wire, as quinn counts them: whole UDP datagrams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Bytes of UDP datagrams sent, QUIC headers and retransmissions included.
    pub sent_bytes: u64,
    /// Bytes of UDP datagrams received.
    pub received_bytes: u64,
    /// Packets sent that QUIC's loss detection declared lost.
    pub lost_packets: u64,
}

impl Traffic {
    /// The traffic so far of the connection with these quinn statistics.
    pub fn of(stats: &quinn::ConnectionStats) -> Self {
        Self {
            sent_bytes: stats.udp_tx.bytes,
            received_bytes: stats.udp_rx.bytes,
            lost_packets: stats.path.lost_packets,
        }
    }
}

impl Add for Traffic {
    type Output = Traffic;

    fn add(self, other: Traffic) -> Traffic {
        Traffic {
            sent_bytes: self.sent_bytes + other.sent_bytes,
            received_bytes: self.received_bytes + other.received_bytes,
            lost_packets: self.lost_packets + other.lost_packets,
        }
    }
}

/// The manager's counters since it started, shared by its tasks; read
/// them through `NodeConnectionManager::tally`. All counts only grow.
#[derive(Debug, Default)]
pub struct ConnectionTally {
    /// Indexed by `direction_index`, then by position in `HandshakeOutcome::ALL`.
    handshakes: [[AtomicU64; HandshakeOutcome::ALL.len()]; 2],
    handshake_time: [Histogram; 2],
    handshake_restarts: AtomicU64,
    closed_sent_bytes: AtomicU64,
    closed_received_bytes: AtomicU64,
    closed_lost_packets: AtomicU64,
}

fn direction_index(direction: Direction) -> usize {
    match direction {
        Direction::Outbound => 0,
        Direction::Inbound => 1,
    }
}

impl ConnectionTally {
    /// `took` is recorded for completed handshakes only.
    pub(crate) fn handshake(
        &self,
        direction: Direction,
        outcome: HandshakeOutcome,
        took: Duration,
    ) {
        let d = direction_index(direction);
        self.handshakes[d][outcome as usize].fetch_add(1, Ordering::Relaxed);
        if outcome == HandshakeOutcome::Ok {
            self.handshake_time[d].observe(took);
        }
    }

    /// A dial started a fresh handshake because its first was not done.
    pub(crate) fn handshake_restarted(&self) {
        self.handshake_restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds the final counts of a connection just taken out of the map.
    pub(crate) fn closed(&self, traffic: Traffic) {
        self.closed_sent_bytes
            .fetch_add(traffic.sent_bytes, Ordering::SeqCst);
        self.closed_received_bytes
            .fetch_add(traffic.received_bytes, Ordering::SeqCst);
        self.closed_lost_packets
            .fetch_add(traffic.lost_packets, Ordering::SeqCst);
    }

    /// Handshakes in `direction` that ended with `outcome`.
    pub fn handshakes(&self, direction: Direction, outcome: HandshakeOutcome) -> u64 {
        self.handshakes[direction_index(direction)][outcome as usize].load(Ordering::Relaxed)
    }

    /// How long the completed handshakes in `direction` took, from a dial's
    /// first attempt or an inbound one's acceptance to the connection being
    /// established.
    pub fn handshake_durations(&self, direction: Direction) -> HistogramSnapshot {
        self.handshake_time[direction_index(direction)].snapshot()
    }

    /// Fresh handshakes dials started on top of their first: each a sign of
    /// loss on the path to a node.
    pub fn handshake_restarts(&self) -> u64 {
        self.handshake_restarts.load(Ordering::Relaxed)
    }

    /// Traffic of every connection that has left the map.
    pub fn closed_traffic(&self) -> Traffic {
        Traffic {
            sent_bytes: self.closed_sent_bytes.load(Ordering::SeqCst),
            received_bytes: self.closed_received_bytes.load(Ordering::SeqCst),
            lost_packets: self.closed_lost_packets.load(Ordering::SeqCst),
        }
    }
}
