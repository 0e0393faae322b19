//! One end of a circuit, on the caller or on the target: packets quinn
//! sends to the circuit's virtual path leave as `Packet` messages of the
//! relay call, and the call's messages arrive as packets from that path.
//! The two directions run at once, each on its half of the split call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prost::Message;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::proto::Packet;
use crate::paths::CircuitPath;
use crate::rpc::{Encoded, Status, StreamingCall};

/// Carries packets until the relay ends the call, the path goes direct or
/// is renewed (no more packets come out of it), no packet has passed for
/// `idle` (the QUIC connection on it is gone), or `cancel` fires. Counts
/// the bytes it carries both ways in `carried`.
pub(super) async fn run(
    call: StreamingCall<Encoded, Encoded>,
    mut path: CircuitPath,
    idle: Duration,
    cancel: CancellationToken,
    carried: &AtomicU64,
) -> Result<(), Status> {
    let inbox = path.inbox();
    let (mut sender, mut call) = call.split();
    let started = Instant::now();
    let last_packet = AtomicU64::new(0);
    let passed = || {
        let now = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        last_packet.store(now, Ordering::Relaxed);
    };
    let outgoing = async {
        while let Some(packet) = path.outgoing().await {
            carried.fetch_add(packet.len() as u64, Ordering::Relaxed);
            let message = Packet {
                data: packet,
                ..Packet::default()
            }
            .encode_to_vec();
            sender.send_encoded(&message).await?;
            passed();
        }
        Ok(())
    };
    let incoming = async {
        while let Some(message) = call.message_encoded().await? {
            let packet = Packet::decode(message)
                .map_err(|e| Status::internal(format!("a relay sent a malformed packet: {e}")))?;
            carried.fetch_add(packet.data.len() as u64, Ordering::Relaxed);
            inbox.deliver(packet.data);
            passed();
        }
        Ok(())
    };
    let quiet = async {
        loop {
            tokio::time::sleep(idle / 4).await;
            let last = Duration::from_millis(last_packet.load(Ordering::Relaxed));
            if started.elapsed().saturating_sub(last) >= idle {
                return Ok(());
            }
        }
    };
    tokio::select! {
        ended = outgoing => ended,
        ended = incoming => ended,
        ended = quiet => ended,
        () = cancel.cancelled() => Ok(()),
    }
}
