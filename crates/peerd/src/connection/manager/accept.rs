//! The accept loop: admission of inbound handshakes, then verification and
//! registration of each in its own task, so a slow peer delays nobody.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument;

use super::Shared;
use crate::connection::Direction;
use crate::connection::admission::{Admission, admit};
use crate::connection::pending::PendingPermit;
use crate::connection::tally::HandshakeOutcome;
use crate::tls::node_id_from_peer_identity;

pub(super) async fn accept_loop(shared: Arc<Shared>) {
    loop {
        let incoming = tokio::select! {
            () = shared.cancel.cancelled() => return,
            incoming = shared.endpoint.accept() => match incoming {
                Some(incoming) => incoming,
                None => return,
            },
        };
        let from = incoming.remote_address();
        let load = shared
            .pending
            .load(from, shared.open.load(Ordering::Acquire));
        let validated = incoming.remote_address_validated() || !incoming.may_retry();
        let admission = admit(load, validated, &shared.config);
        if let Admission::Evict(victim) = admission {
            tracing::debug!(%from, ?load, ?victim, "a pending handshake gives way to a newcomer");
            shared.pending.evict(victim);
        }
        match admission {
            Admission::Accept | Admission::Evict(_) => {
                let permit = shared.pending.begin(from);
                let span = tracing::debug_span!("handshake", %from);
                shared
                    .tasks
                    .spawn(handshake(shared.clone(), incoming, permit).instrument(span));
            }
            Admission::Retry => {
                shared.refused.fetch_add(1, Ordering::Relaxed);
                // may_retry() was checked above, so this cannot fail.
                let _ = incoming.retry();
            }
            Admission::Refuse => {
                shared.refused.fetch_add(1, Ordering::Relaxed);
                let refused = HandshakeOutcome::Refused;
                let tally = &shared.tally;
                tally.handshake(Direction::Inbound, refused, Duration::ZERO);
                tracing::debug!(%from, ?load, "refusing inbound connection");
                incoming.refuse();
            }
        }
    }
}

async fn handshake(shared: Arc<Shared>, incoming: quinn::Incoming, permit: PendingPermit) {
    let started = Instant::now();
    let outcome = |outcome| {
        let tally = &shared.tally;
        tally.handshake(Direction::Inbound, outcome, started.elapsed());
    };
    let connecting = match incoming.accept() {
        Ok(connecting) => connecting,
        Err(e) => {
            outcome(HandshakeOutcome::Failed);
            return tracing::debug!("inbound handshake failed: {e}");
        }
    };
    let quic = tokio::select! {
        () = shared.cancel.cancelled() => return,
        () = permit.evicted() => {
            outcome(HandshakeOutcome::Refused);
            return tracing::debug!("inbound handshake evicted for a newcomer");
        }
        result = tokio::time::timeout(shared.config.handshake_timeout, connecting) => match result {
            Ok(Ok(quic)) => quic,
            Ok(Err(e)) => {
                outcome(HandshakeOutcome::Failed);
                return tracing::debug!("inbound handshake failed: {e}");
            }
            Err(_) => {
                outcome(HandshakeOutcome::TimedOut);
                return tracing::debug!("inbound handshake timed out");
            }
        },
    };
    // The verifier accepted exactly one Ed25519 certificate, so this only
    // fails if quinn's view of the peer disagrees with the handshake's.
    let node = match node_id_from_peer_identity(quic.peer_identity()) {
        Ok(node) => node,
        Err(e) => {
            outcome(HandshakeOutcome::Failed);
            return tracing::warn!("inbound connection without a node identity: {e}");
        }
    };
    if let Err(e) = shared.register(quic, node, Direction::Inbound) {
        outcome(HandshakeOutcome::Refused);
        return tracing::debug!(node = %node.short(), "inbound connection closed: {e}");
    }
    outcome(HandshakeOutcome::Ok);
    shared.accepted.fetch_add(1, Ordering::Relaxed);
    drop(permit);
}
