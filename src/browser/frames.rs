//! peerd's frames (docs/protocol.md §4.1) on a WebTransport stream: the
//! control stream and every call to or from a page carry them, so the
//! page's library frames calls exactly as a node does.

use bytes::{Bytes, BytesMut};
use peerd::rpc::wire::codec::{Frame, FrameDecoder, FrameType, Unframed, put_message_frame};
use peerd::rpc::{Code, Status};
use web_transport_quinn::{RecvStream, SendStream};

/// The most bytes taken from the stream at once.
const CHUNK: usize = 64 * 1024;

/// Frames as they arrive on a page's stream.
pub struct FrameStream {
    recv: RecvStream,
    input: Unframed,
    decoder: FrameDecoder,
}

impl FrameStream {
    /// Refuses MESSAGE frames over `max_message` bytes, HEADER and STATUS
    /// frames over 64 KiB.
    pub fn new(recv: RecvStream, max_message: u32) -> Self {
        Self {
            recv,
            input: Unframed::default(),
            decoder: FrameDecoder::new(max_message),
        }
    }

    /// The next frame, or `None` where the stream ends between frames.
    pub async fn next(&mut self) -> Result<Option<Frame>, Status> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.input).map_err(bad_frame)? {
                return Ok(Some(frame));
            }
            let chunk = self
                .recv
                .read_chunk(CHUNK, true)
                .await
                .map_err(|e| Status::cancelled(format!("the page's stream failed: {e}")))?;
            match chunk {
                Some(chunk) => self.input.push(chunk.bytes),
                None => {
                    self.decoder.finish(&self.input).map_err(bad_frame)?;
                    return Ok(None);
                }
            }
        }
    }

    /// The next frame, which must be a MESSAGE decoding as `M`.
    pub async fn message<M: prost::Message + Default>(&mut self) -> Result<M, Status> {
        match self.next().await? {
            Some(Frame {
                kind: FrameType::Message,
                payload,
            }) => M::decode(payload)
                .map_err(|e| Status::invalid_argument(format!("a message does not decode: {e}"))),
            other => Err(unexpected("a Message", other.as_ref())),
        }
    }

    /// Tells the page to stop sending (STOP_SENDING), as a cancelled call does.
    pub fn stop(&mut self) {
        let _ = self.recv.stop(Code::Cancelled as u32);
    }
}

/// A stream that ends in the middle of a frame, or frames it should not have.
fn bad_frame(error: impl std::fmt::Display) -> Status {
    Status::internal(format!("protocol error on the page's stream: {error}"))
}

pub fn unexpected(expected: &str, got: Option<&Frame>) -> Status {
    match got {
        None => Status::internal(format!("expected {expected} frame, the stream ended")),
        Some(frame) => Status::internal(format!(
            "expected {expected} frame, got a {:?} frame",
            frame.kind
        )),
    }
}

pub fn frame(kind: FrameType, message: &impl prost::Message) -> Bytes {
    let mut out = BytesMut::new();
    put_message_frame(&mut out, kind, message);
    out.freeze()
}

/// A MESSAGE frame carrying `payload`, already encoded.
pub fn message_frame(payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(payload.len() + 5);
    peerd::rpc::wire::codec::put_frame(&mut out, FrameType::Message, payload);
    out.freeze()
}

pub fn status_frame(status: &Status) -> Bytes {
    frame(FrameType::Status, &status.to_proto())
}

/// Writes `bytes` to the page, as one chunk.
pub async fn write(send: &mut SendStream, bytes: Bytes) -> Result<(), Status> {
    send.write_chunk(bytes)
        .await
        .map_err(|e| Status::cancelled(format!("the page's stream closed: {e}")))
}
