//! The task that owns one connection for its whole life: it hands the peer's
//! streams to the handler, closes the connection when idle, and takes it out
//! of the map the moment it closes, whoever closed it.

use std::sync::Arc;

use super::{IncomingStream, Shared};
use crate::connection::{CloseCode, NodeConnection};

pub(super) async fn drive(shared: Arc<Shared>, conn: NodeConnection) {
    let reason = serve(&shared, &conn).await;
    shared.unregister(&conn, reason);
}

async fn serve(shared: &Shared, conn: &NodeConnection) -> String {
    let config = &shared.config;
    loop {
        tokio::select! {
            () = shared.cancel.cancelled() => {
                conn.close(CloseCode::ShuttingDown);
                return "shutting down".into();
            }
            () = conn.activity().idle_expired(config.connection_idle_ttl, config.drain_linger) => {
                let code = if conn.is_draining() { CloseCode::Superseded } else { CloseCode::Idle };
                conn.close(code);
                return format!("{code:?}").to_lowercase();
            }
            accepted = conn.quic().accept_bi() => match accepted {
                Ok((send, recv)) => {
                    let guard = conn.begin_stream();
                    shared.handler.handle_stream(IncomingStream { connection: conn.clone(), send, recv, guard });
                }
                Err(e) => return e.to_string(),
            },
        }
    }
}
