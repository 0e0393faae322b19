//! Methods served as bytes: the router's fallback handler serves every
//! method it has no route for (a gateway forwarding calls it has no schema
//! for), reading requests and sending responses as encoded protobuf.

use bytes::Bytes;
use tokio::sync::mpsc;

use super::Status;
use super::io::FrameReader;
use super::wire::codec::FrameType;
use super::wire::outgoing::{Encode, OutFrames};

/// The request messages of a call served by the fallback, as bytes.
#[derive(Debug)]
pub struct RawRequests {
    reader: FrameReader,
}

impl RawRequests {
    pub(crate) fn new(reader: FrameReader) -> Self {
        Self { reader }
    }

    /// The next request's bytes, or `None` once the caller has finished.
    pub async fn message(&mut self) -> Result<Option<Bytes>, Status> {
        Ok(self.reader.next_of(FrameType::Message).await?)
    }
}

/// Where the fallback sends response messages, as bytes.
#[derive(Debug)]
pub struct RawResponses {
    frames: mpsc::Sender<OutFrames>,
}

impl RawResponses {
    pub(crate) fn new(frames: mpsc::Sender<OutFrames>) -> Self {
        Self { frames }
    }

    /// Queues one encoded message; waits while the stream's queue is full
    /// (backpressure from the caller). Fails once the caller has gone away.
    pub async fn send(&mut self, message: &[u8]) -> Result<(), Status> {
        let mut frame = OutFrames::new();
        frame.put_message(FrameType::Message, &Slice(message));
        self.frames
            .send(frame)
            .await
            .map_err(|_| Status::cancelled("the caller is gone"))
    }
}

struct Slice<'a>(&'a [u8]);

impl Encode for Slice<'_> {
    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn encode_raw(&self, out: &mut OutFrames) {
        bytes::BufMut::put_slice(out, self.0);
    }
}
