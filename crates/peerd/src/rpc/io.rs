//! Frames over quinn streams: the codec fed from a `RecvStream`, and
//! encoded frames written to a `SendStream`.

use std::future::{Future, poll_fn};
use std::mem::ManuallyDrop;
use std::pin::pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;

use super::Status;
use super::StreamCode;
use super::status::CallError;
use super::wire::codec::{Frame, FrameDecoder, FrameType, Unframed};
use super::wire::outgoing::OutFrames;

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
    pub(crate) fn new(recv: quinn::RecvStream, max_message: u32) -> Self {
        Self {
            recv,
            decoder: FrameDecoder::new(max_message),
            buffer: Unframed::default(),
        }
    }

    /// The payload of the next frame, which must be of type `kind`; `None`
    /// at a clean end of stream.
    pub(crate) fn next_of(
        &mut self,
        kind: FrameType,
    ) -> impl Future<Output = Result<Option<Bytes>, CallError>> + '_ {
        poll_fn(move |cx| {
            let frame = ready!(self.poll_next(cx))?;
            Poll::Ready(frame.map(|frame| payload_of(frame, kind)).transpose())
        })
    }

    /// The payload of exactly one message frame, then the end of the stream.
    pub(crate) fn single_message(&mut self) -> impl Future<Output = Result<Bytes, CallError>> + '_ {
        let mut message = None;
        poll_fn(move |cx| {
            loop {
                let frame = ready!(self.poll_next(cx))?;
                match (message.take(), frame) {
                    (None, Some(frame)) => message = Some(payload_of(frame, FrameType::Message)?),
                    (None, None) => {
                        return Poll::Ready(Err(CallError::protocol("the request has no message")));
                    }
                    (Some(payload), None) => return Poll::Ready(Ok(payload)),
                    (Some(_), Some(_)) => {
                        return Poll::Ready(Err(CallError::protocol(
                            "a unary request carries exactly one message",
                        )));
                    }
                }
            }
        })
    }

    /// The next frame, or `None` at a clean end of stream. Poll functions,
    /// not async ones: reading is on every call's path, and each nested
    /// async state machine costs its own bookkeeping per poll.
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<Frame>, CallError>> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buffer)? {
                return Poll::Ready(Ok(Some(frame)));
            }
            // Several chunks per read: quinn locks the connection once per
            // read. A read that waits leaves the waker with quinn, so its
            // future need not outlive this poll. Quinn fills only the chunks
            // it counts, which are taken; the rest stay static and empty and
            // need no drop (one call through a vtable each, twice per call).
            let mut chunks = ManuallyDrop::new(<[Bytes; READ_BATCH]>::default());
            let read = pin!(self.recv.read_chunks(&mut chunks[..])).poll(cx);
            match ready!(read)? {
                Some(count) => {
                    for chunk in &mut chunks[..count] {
                        self.buffer.push(std::mem::take(chunk));
                    }
                }
                None => {
                    self.decoder.finish(&self.buffer)?;
                    return Poll::Ready(Ok(None));
                }
            }
        }
    }

    /// Tells the peer we will read no more.
    pub(crate) fn stop(&mut self, code: StreamCode) {
        let _ = self.recv.stop(code.var_int());
    }
}

fn payload_of(frame: Frame, kind: FrameType) -> Result<Bytes, CallError> {
    match frame.kind == kind {
        true => Ok(frame.payload),
        false => Err(CallError::protocol(format!(
            "expected a {kind:?} frame, got a {:?} frame",
            frame.kind
        ))),
    }
}

/// Writes `frames`, large payloads included, without copying them.
pub(crate) fn write_frames(
    send: &mut quinn::SendStream,
    frames: OutFrames,
) -> impl Future<Output = Result<(), quinn::WriteError>> + '_ {
    let mut chunks = Chunks::from(frames);
    poll_fn(move |cx| chunks.poll_write(send, cx))
}

/// Encoded frames being written; quinn empties each chunk it takes whole
/// and advances the one it takes in part.
pub(crate) enum Chunks {
    One([Bytes; 1]),
    Many(Vec<Bytes>),
}

impl From<OutFrames> for Chunks {
    fn from(frames: OutFrames) -> Self {
        match frames.into_single() {
            Ok(chunk) => Chunks::One([chunk]),
            Err(frames) => Chunks::Many(frames.into_chunks()),
        }
    }
}

impl Chunks {
    /// Writes what is left to `send`. A poll function over quinn's
    /// cancel-safe `write_chunks`: its nested async writers made every
    /// call's future hundreds of bytes larger.
    pub(crate) fn poll_write(
        &mut self,
        send: &mut quinn::SendStream,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), quinn::WriteError>> {
        loop {
            let unwritten = self.unwritten();
            if unwritten.is_empty() {
                return Poll::Ready(Ok(()));
            }
            ready!(pin!(send.write_chunks(unwritten)).poll(cx))?;
        }
    }

    fn unwritten(&mut self) -> &mut [Bytes] {
        let all = match self {
            Chunks::One(chunk) => &mut chunk[..],
            Chunks::Many(chunks) => &mut chunks[..],
        };
        let written = all.iter().take_while(|chunk| chunk.is_empty()).count();
        &mut all[written..]
    }
}
/// Writes the last frames and the end of the stream. A poll function: it is
/// on every unary call's path, where an async one is a layer more to poll.
pub(crate) fn write_and_finish(
    send: &mut quinn::SendStream,
    frames: OutFrames,
) -> impl Future<Output = Result<(), Status>> + '_ {
    let mut unwritten = Chunks::from(frames);
    poll_fn(move |cx| {
        ready!(unwritten.poll_write(send, cx)).map_err(CallError::from)?;
        send.finish().map_err(CallError::from)?;
        Poll::Ready(Ok(()))
    })
}
