//! Frames over quinn streams: the codec fed from a `RecvStream`, and
//! encoded frames written to a `SendStream`.

use bytes::Bytes;

use super::StreamCode;
use super::codec::{Frame, FrameDecoder, FrameType, Unframed};
use super::outgoing::OutFrames;
use super::status::CallError;

/// Chunks taken from quinn at most per read. Few: the batch lives in every
/// pending read's future, and a call's frames rarely come in more chunks.
const READ_BATCH: usize = 4;

/// Reads whole frames from a stream.
#[derive(Debug)]
pub(crate) struct FrameReader {
    recv: quinn::RecvStream,
    decoder: FrameDecoder,
    buffer: Unframed,
}

impl FrameReader {
    pub fn new(recv: quinn::RecvStream, max_message: u32) -> Self {
        Self {
            recv,
            decoder: FrameDecoder::new(max_message),
            buffer: Unframed::default(),
        }
    }

    /// The next frame, or `None` at a clean end of stream.
    pub async fn next(&mut self) -> Result<Option<Frame>, CallError> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buffer)? {
                return Ok(Some(frame));
            }
            // Several chunks per call: quinn locks the connection once per read.
            let mut chunks: [Bytes; READ_BATCH] = Default::default();
            match self.recv.read_chunks(&mut chunks).await? {
                Some(count) => {
                    for chunk in chunks.into_iter().take(count) {
                        self.buffer.push(chunk);
                    }
                }
                None => {
                    self.decoder.finish(&self.buffer)?;
                    return Ok(None);
                }
            }
        }
    }

    /// The payload of the next frame, which must be of type `kind`; `None`
    /// at a clean end of stream.
    pub async fn next_of(&mut self, kind: FrameType) -> Result<Option<Bytes>, CallError> {
        match self.next().await? {
            Some(frame) if frame.kind == kind => Ok(Some(frame.payload)),
            Some(frame) => Err(CallError::Protocol(format!(
                "expected a {kind:?} frame, got a {:?} frame",
                frame.kind
            ))),
            None => Ok(None),
        }
    }

    /// Tells the peer we will read no more.
    pub fn stop(&mut self, code: StreamCode) {
        let _ = self.recv.stop(code.var_int());
    }
}

/// Writes `frames`, large payloads included, without copying them.
pub(crate) async fn write_frames(
    send: &mut quinn::SendStream,
    frames: OutFrames,
) -> Result<(), quinn::WriteError> {
    match frames.into_single() {
        Ok(chunk) => send.write_chunk(chunk).await,
        Err(frames) => send.write_all_chunks(&mut frames.into_chunks()).await,
    }
}
