//! What a bench run does: the target, the load's shape, and when it stops.

use std::net::SocketAddr;
use std::time::Duration;

use super::BenchError;
use peerd::identity::NodeId;
use peerd::rpc::RpcConfig;

/// Bytes an `EchoRequest` or `EchoResponse` adds around its payload at most:
/// the field's tag, its length varint, and the delay field.
const ECHO_ENVELOPE: usize = 16;

/// When the measured phase ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Calls start until this much time has passed; those in flight finish.
    Duration(Duration),
    /// Exactly this many calls, answered or failed.
    Calls(u64),
}

/// A bench against one node's built-in `peerd.node.v1.Node/Echo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchConfig {
    /// The node to call.
    pub target: NodeId,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Calls in flight at any time, over all connections. Default 16.
    pub concurrency: usize,
    /// Bytes of payload sent, and echoed back, by each call. Default 1 KiB.
    pub payload_size: usize,
    /// Default: 10 seconds.
    pub stop: Stop,
    /// Distinct QUIC connections, each from its own ephemeral node; the calls
    /// in flight are spread evenly over them. Default 1.
    pub connections: usize,
    /// Calls made first and not counted, so the figures start from warm
    /// connections. Default 1 s.
    pub warmup: Duration,
    /// How long the target waits before answering (`EchoRequest.delay_millis`),
    /// to model a slow service. Default 0.
    pub server_delay: Duration,
    /// Deadline of each call. Default 10 s.
    pub timeout: Duration,
}

impl BenchConfig {
    /// The defaults documented on each field.
    pub fn new(target: NodeId, addr: SocketAddr) -> Self {
        Self {
            target,
            addr,
            concurrency: 16,
            payload_size: 1024,
            stop: Stop::Duration(Duration::from_secs(10)),
            connections: 1,
            warmup: Duration::from_secs(1),
            server_delay: Duration::ZERO,
            timeout: Duration::from_secs(10),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), BenchError> {
        let largest_payload = RpcConfig::default().max_message_size as usize - ECHO_ENVELOPE;
        if self.concurrency == 0 {
            Err(BenchError::NoConcurrency)
        } else if self.connections == 0 {
            Err(BenchError::NoConnection)
        } else if self.connections > self.concurrency {
            Err(BenchError::IdleConnections {
                connections: self.connections,
                concurrency: self.concurrency,
            })
        } else if matches!(self.stop, Stop::Calls(0) | Stop::Duration(Duration::ZERO)) {
            Err(BenchError::NothingToMeasure)
        } else if self.payload_size > largest_payload {
            Err(BenchError::PayloadTooLarge {
                size: self.payload_size,
                largest: largest_payload,
            })
        } else {
            Ok(())
        }
    }

    /// `server_delay` as the request field carries it: whole milliseconds,
    /// saturating.
    pub(crate) fn delay_millis(&self) -> u32 {
        u32::try_from(self.server_delay.as_millis()).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BenchConfig {
        BenchConfig::new(
            NodeId::from_bytes([7; 32]),
            "127.0.0.1:7733".parse().unwrap(),
        )
    }

    #[test]
    fn the_defaults_are_valid() {
        assert!(config().validate().is_ok());
    }

    #[test]
    fn a_load_without_calls_or_connections_is_refused() {
        let refused = |change: fn(&mut BenchConfig)| {
            let mut config = config();
            change(&mut config);
            config.validate().unwrap_err()
        };
        assert!(matches!(
            refused(|c| c.concurrency = 0),
            BenchError::NoConcurrency
        ));
        assert!(matches!(
            refused(|c| c.connections = 0),
            BenchError::NoConnection
        ));
        assert!(matches!(
            refused(|c| c.stop = Stop::Calls(0)),
            BenchError::NothingToMeasure
        ));
        assert!(matches!(
            refused(|c| c.stop = Stop::Duration(Duration::ZERO)),
            BenchError::NothingToMeasure
        ));
    }

    #[test]
    fn every_connection_must_carry_calls() {
        let mut config = config();
        config.concurrency = 4;
        config.connections = 4;
        assert!(config.validate().is_ok());
        config.connections = 5;
        assert!(matches!(
            config.validate(),
            Err(BenchError::IdleConnections {
                connections: 5,
                concurrency: 4
            })
        ));
    }

    #[test]
    fn a_payload_must_fit_in_one_message_both_ways() {
        let mut config = config();
        config.payload_size = 4 * 1024 * 1024;
        let err = config.validate().unwrap_err();
        assert!(matches!(err, BenchError::PayloadTooLarge { size, largest } if largest < size));
        config.payload_size = 4 * 1024 * 1024 - ECHO_ENVELOPE;
        assert!(config.validate().is_ok());
    }

    #[test]
    fn the_server_delay_is_sent_in_whole_milliseconds_and_saturates() {
        let mut config = config();
        config.server_delay = Duration::from_micros(2_999);
        assert_eq!(config.delay_millis(), 2);
        config.server_delay = Duration::from_secs(u64::MAX);
        assert_eq!(config.delay_millis(), u32::MAX);
    }
}
