//! The task that owns one connection for its whole life: it hands the peer's
//! streams to the handler, closes the connection when idle, and takes it out
//! of the map the moment it closes, whoever closed it. Beside it, a task
//! routes the connection's datagrams, so that the stream loop, on every
//! call's path, polls nothing more for them.

use std::sync::Arc;

use super::{IncomingStream, Shared};
use crate::connection::datagrams::DatagramRouter;
use crate::connection::served_streams::{ServedStream, ServedStreams};
use crate::connection::{CloseCode, NodeConnection};

pub(super) async fn drive(shared: Arc<Shared>, conn: NodeConnection) {
    let reason = serve(&shared, &conn).await;
    shared.unregister(&conn, reason);
}

/// Routes the connection's datagrams until it closes.
pub(super) async fn read_datagrams(router: Arc<DatagramRouter>, conn: NodeConnection) {
    while let Ok(frame) = conn.quic().read_datagram().await {
        router.deliver(conn.remote_node_id(), frame);
    }
}

async fn serve(shared: &Shared, conn: &NodeConnection) -> String {
    let config = &shared.config;
    // QUIC's stream limit frees a stream's credit as soon as both sides have
    // closed it, which can be before its handler has noticed: these slots
    // make "streams being served" exact, whatever the peer does.
    let mut slots = ServedStreams::new(config.max_concurrent_streams as usize);
    // Both waits live across streams: recreating them for every accepted
    // stream cost a registration each, on the call path.
    let cancelled = shared.cancel.cancelled();
    let idle_wait = || {
        conn.activity()
            .idle_expired(config.connection_idle_ttl, config.drain_linger)
    };
    let idle = idle_wait();
    tokio::pin!(cancelled, idle);
    loop {
        // The next stream first: a batch of streams is taken without polling
        // the other waits once per stream. They are polled whenever no stream
        // is ready, and the stream slots and tokio's task budget keep a
        // flood of streams from holding that off.
        tokio::select! {
            biased;
            accepted = next_stream(conn, &mut slots) => match accepted {
                Ok((send, recv, slot)) => {
                    let guard = conn.begin_stream().holding(slot);
                    shared.handler.handle_stream(IncomingStream { connection: conn.clone(), send, recv, guard });
                }
                Err(e) => return e.to_string(),
            },
            () = &mut cancelled => {
                conn.close(CloseCode::ShuttingDown);
                return "shutting down".into();
            }
            () = &mut idle => {
                if !conn.is_draining() && shared.pinned.contains(&conn.remote_node_id()) {
                    conn.activity().restart_idle();
                    idle.set(idle_wait());
                    continue;
                }
                let code = if conn.is_draining() { CloseCode::Superseded } else { CloseCode::Idle };
                conn.close(code);
                return format!("{code:?}").to_lowercase();
            }
        }
    }
}

/// Waits for a free slot, then for the peer's next stream. Until a slot is
/// free, further streams wait inside quinn, where they count against the
/// peer's stream limit.
async fn next_stream(
    conn: &NodeConnection,
    slots: &mut ServedStreams,
) -> Result<(quinn::SendStream, quinn::RecvStream, ServedStream), quinn::ConnectionError> {
    let slot = slots.take().await;
    let (send, recv) = conn.quic().accept_bi().await?;
    Ok((send, recv, slot))
}
