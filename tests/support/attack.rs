//! Hostile peers' building blocks shared by the hostile-peer tests and the
//! soak: attacker nodes, raw request headers, streams held open, and a
//! daemon's small limits with the worst-case memory they allow.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use peerd::connection::NodeConnection;
use peerd::node_service::proto::EchoRequest;
use peerd::rpc::wire::codec::{FrameType, MAX_CONTROL_FRAME, put_message_frame};
use peerd::rpc::wire::proto::RequestHeader;
use peerd::{Identity, Node};
use tokio::task::JoinHandle;

pub const THIRTY_ONE_YEARS: Duration = Duration::from_secs(31 * 365 * 86_400);

/// A node with a fresh identity on `addr`.
pub fn attacker_on(addr: SocketAddr) -> Node {
    Node::builder(Identity::generate())
        .listen(addr)
        .bind()
        .expect("bind")
}

/// A request header frame for `method` with a timeout and metadata.
pub fn header(method: &str, timeout: Duration, metadata: HashMap<String, String>) -> BytesMut {
    let header = RequestHeader {
        method: method.into(),
        timeout_micros: timeout.as_micros() as u64,
        metadata,
    };
    let mut out = BytesMut::new();
    put_message_frame(&mut out, FrameType::Header, &header);
    out
}

/// `entries` metadata entries of a few bytes each: ~65 KiB for 8,700.
pub fn tiny_metadata(entries: usize) -> HashMap<String, String> {
    (0..entries)
        .map(|i| (format!("{i:x}"), String::new()))
        .collect()
}

pub fn echo_request(delay_millis: u32, payload: usize) -> EchoRequest {
    EchoRequest {
        payload: vec![7; payload].into(),
        delay_millis,
    }
}

/// Opens `streams` streams on `connection`, writes `bytes` on each (shared,
/// not copied) and keeps them open (finished if `finish`) until each has
/// its answer or the task is aborted.
pub fn hold_streams(
    connection: NodeConnection,
    streams: usize,
    bytes: Bytes,
    finish: bool,
) -> JoinHandle<Vec<Vec<u8>>> {
    tokio::spawn(async move {
        let mut held = Vec::new();
        for _ in 0..streams {
            let Ok((mut send, recv, guard)) = connection.open_stream().await else {
                break;
            };
            let _ = send.write_chunk(bytes.clone()).await;
            if finish {
                let _ = send.finish();
            }
            held.push((send, recv, guard));
        }
        // Whatever the callee answered on each stream, as it comes.
        let mut answers = Vec::new();
        for (_send, mut recv, _guard) in held {
            match tokio::time::timeout(THIRTY_ONE_YEARS, recv.read_to_end(1 << 20)).await {
                Ok(Ok(answer)) => answers.push(answer),
                _ => answers.push(Vec::new()),
            }
        }
        answers
    })
}

/// A daemon's limits small enough that the worst-case memory of
/// docs/reliability.md is a small figure.
pub struct DaemonLimits {
    pub connections: usize,
    pub streams: usize,
    pub stream_window: usize,
    pub connection_window: usize,
    pub handlers: usize,
    pub message: usize,
    pub metadata: usize,
}

impl DaemonLimits {
    /// A stream's and its call's own state (quinn's stream, the call's
    /// future and task, the context), beyond the buffers counted apart.
    pub const STREAM_STATE: usize = 4 << 10;

    /// `--set` flags for `peerd run`.
    pub fn flags(&self) -> Vec<String> {
        [
            format!("transport.max_connections={}", self.connections),
            format!("transport.max_concurrent_streams={}", self.streams),
            format!("transport.stream_receive_window={}", self.stream_window),
            format!(
                "transport.connection_receive_window={}",
                self.connection_window
            ),
            format!("rpc.max_handlers={}", self.handlers),
            format!("rpc.max_message_size={}", self.message),
            format!("rpc.max_metadata_bytes={}", self.metadata),
        ]
        .into_iter()
        .flat_map(|set| ["--set".to_owned(), set])
        .collect()
    }

    /// Per connection: QUIC's unread bytes, and per stream a header frame
    /// being assembled, its decoded metadata and its state; per node, a
    /// request message per handler slot.
    pub fn memory_bound(&self) -> usize {
        let control_frame = MAX_CONTROL_FRAME as usize + 5;
        let per_stream = control_frame + self.metadata + Self::STREAM_STATE;
        self.connections * (self.connection_window + self.streams * per_stream)
            + self.handlers * (self.message + 5)
    }
}
