//! Unreliable datagrams (RFC 9221) between nodes, over the connection
//! they already have, addressed to a service by name (docs/protocol.md
//! §3.2). Each datagram is one QUIC DATAGRAM frame: a byte giving the
//! length of the service's name, the name, then the message. What a
//! subscriber does not take in time is dropped and counted, never queued
//! without bound.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{BufMut, Bytes, BytesMut};
use dashmap::DashMap;
use tokio::sync::mpsc;

use crate::identity::NodeId;

/// The longest service name a datagram can carry (its length is one byte).
pub const MAX_SERVICE_NAME: usize = 255;

/// A datagram received for a subscribed service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// The node that sent it, authenticated by its connection.
    pub from: NodeId,
    /// The message, without the service's name.
    pub payload: Bytes,
}

/// Why a datagram could not be sent, or a service not subscribed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatagramError {
    /// The message and the service's name do not fit in one datagram on
    /// this connection's path.
    #[error(
        "a datagram of {size} bytes (message and service name) is over this path's limit of {limit} bytes; nothing was sent"
    )]
    TooLarge {
        /// The datagram's size.
        size: usize,
        /// What the connection can carry now (`max_datagram_size`).
        limit: usize,
    },
    /// The service name is empty or longer than [`MAX_SERVICE_NAME`].
    #[error("a datagram's service name must be 1 to {MAX_SERVICE_NAME} bytes, got {0}")]
    BadServiceName(usize),
    /// This node has no connection to the node.
    #[error("no connection to node {0} is open (datagrams use one, they dial none)")]
    NotConnected(NodeId),
    /// The peer did not enable datagrams on this connection.
    #[error("node {0} does not accept datagrams")]
    UnsupportedByPeer(NodeId),
    /// The connection closed.
    #[error("the connection to node {0} is closed")]
    ConnectionLost(NodeId),
    /// Someone already receives this service's datagrams.
    #[error("the service {0:?} has a datagram subscriber already")]
    AlreadySubscribed(String),
}

/// Datagram counters since the node started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DatagramStats {
    /// Handed to QUIC to send (QUIC may still drop one its send buffer has
    /// no room for, or the network lose it).
    pub sent: u64,
    /// Taken by a subscriber's queue.
    pub received: u64,
    /// Dropped on arrival: the subscriber's queue was full.
    pub dropped: u64,
    /// Dropped on arrival: no subscriber for its service, or malformed.
    pub unrouted: u64,
}

/// The services' queues and the counters. Shared by a node's connections.
#[derive(Debug, Default)]
pub(super) struct DatagramRouter {
    services: DashMap<String, mpsc::Sender<Datagram>>,
    sent: AtomicU64,
    received: AtomicU64,
    dropped: AtomicU64,
    unrouted: AtomicU64,
}

impl DatagramRouter {
    /// A queue of `capacity` datagrams for `service`; the service is free
    /// again once the receiver is dropped.
    pub(super) fn subscribe(
        &self,
        service: &str,
        capacity: usize,
    ) -> Result<mpsc::Receiver<Datagram>, DatagramError> {
        check_name(service)?;
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        match self.services.entry(service.to_owned()) {
            dashmap::Entry::Occupied(mut taken) if taken.get().is_closed() => {
                taken.insert(sender);
            }
            dashmap::Entry::Occupied(_) => {
                return Err(DatagramError::AlreadySubscribed(service.to_owned()));
            }
            dashmap::Entry::Vacant(free) => {
                free.insert(sender);
            }
        }
        Ok(receiver)
    }

    /// Routes one received datagram; never waits.
    pub(super) fn deliver(&self, from: NodeId, frame: Bytes) {
        let queued = decode(&frame).and_then(|(service, payload)| {
            let queue = self.services.get(service)?;
            Some(queue.try_send(Datagram { from, payload }))
        });
        let counter = match queued {
            Some(Ok(())) => &self.received,
            Some(Err(mpsc::error::TrySendError::Full(_))) => &self.dropped,
            Some(Err(mpsc::error::TrySendError::Closed(_))) | None => &self.unrouted,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn count_sent(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn stats(&self) -> DatagramStats {
        DatagramStats {
            sent: self.sent.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            unrouted: self.unrouted.load(Ordering::Relaxed),
        }
    }
}

/// Sends `payload` to `service` on `quic`, if it fits.
pub(super) fn send(
    quic: &quinn::Connection,
    node: NodeId,
    service: &str,
    payload: &[u8],
    router: &DatagramRouter,
) -> Result<(), DatagramError> {
    check_name(service)?;
    let size = 1 + service.len() + payload.len();
    let limit = quic
        .max_datagram_size()
        .ok_or(DatagramError::UnsupportedByPeer(node))?;
    if size > limit {
        return Err(DatagramError::TooLarge { size, limit });
    }
    let mut frame = BytesMut::with_capacity(size);
    frame.put_u8(service.len() as u8);
    frame.put_slice(service.as_bytes());
    frame.put_slice(payload);
    quic.send_datagram(frame.freeze()).map_err(|e| match e {
        quinn::SendDatagramError::TooLarge => DatagramError::TooLarge { size, limit },
        quinn::SendDatagramError::ConnectionLost(_) => DatagramError::ConnectionLost(node),
        quinn::SendDatagramError::UnsupportedByPeer | quinn::SendDatagramError::Disabled => {
            DatagramError::UnsupportedByPeer(node)
        }
    })?;
    router.count_sent();
    Ok(())
}

fn check_name(service: &str) -> Result<(), DatagramError> {
    match service.len() {
        1..=MAX_SERVICE_NAME => Ok(()),
        len => Err(DatagramError::BadServiceName(len)),
    }
}

/// The service's name and the message, if the frame holds both; the
/// message shares the frame's buffer.
fn decode(frame: &Bytes) -> Option<(&str, Bytes)> {
    let len = usize::from(*frame.first()?);
    if len == 0 || frame.len() < 1 + len {
        return None;
    }
    let service = std::str::from_utf8(&frame[1..1 + len]).ok()?;
    Some((service, frame.slice(1 + len..)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(service: &str, payload: &[u8]) -> Bytes {
        let mut bytes = vec![service.len() as u8];
        bytes.extend_from_slice(service.as_bytes());
        bytes.extend_from_slice(payload);
        bytes.into()
    }

    #[test]
    fn a_frame_names_its_service_and_carries_the_rest() {
        let hi = frame("chat.v1", b"hi");
        let (service, payload) = decode(&hi).unwrap();
        assert_eq!((service, &payload[..]), ("chat.v1", &b"hi"[..]));
        assert_eq!(decode(&frame("x", b"")).unwrap().1, Bytes::new());
        for broken in [&b""[..], &[0][..], &[5, b'a'][..], &[1, 0xff][..]] {
            assert_eq!(decode(&Bytes::copy_from_slice(broken)), None, "{broken:?}");
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_and_strangers_are_unrouted() {
        let router = DatagramRouter::default();
        let mut queue = router.subscribe("chat.v1", 2).unwrap();
        let from = NodeId::from_bytes([1; 32]);
        for n in 0..5u8 {
            router.deliver(from, frame("chat.v1", &[n]));
        }
        router.deliver(from, frame("other", b"x"));
        router.deliver(from, Bytes::from_static(&[9]));
        let stats = router.stats();
        assert_eq!((stats.received, stats.dropped, stats.unrouted), (2, 3, 2));
        assert_eq!(queue.try_recv().unwrap().payload[..], [0]);
        assert_eq!(queue.try_recv().unwrap().payload[..], [1]);
    }

    #[test]
    fn a_service_has_one_subscriber_until_it_lets_go() {
        let router = DatagramRouter::default();
        let first = router.subscribe("chat.v1", 1).unwrap();
        assert_eq!(
            router.subscribe("chat.v1", 1).unwrap_err(),
            DatagramError::AlreadySubscribed("chat.v1".into())
        );
        drop(first);
        assert!(router.subscribe("chat.v1", 1).is_ok());
        assert_eq!(
            router.subscribe("", 1).unwrap_err(),
            DatagramError::BadServiceName(0)
        );
    }
}
