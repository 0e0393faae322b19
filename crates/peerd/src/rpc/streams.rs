//! Typed message streams of streaming calls, shared by both ends: a
//! `RequestStream` reads messages, a `ResponseSink` sends them.

use std::marker::PhantomData;

use tokio::sync::mpsc;

use super::Status;
use super::io::FrameReader;
use super::status::CallError;
use super::wire::codec::FrameType;
use super::wire::outgoing::OutFrames;

/// Incoming messages of type `T` on a call.
#[derive(Debug)]
pub struct RequestStream<T> {
    reader: FrameReader,
    decode_error: fn(prost::DecodeError) -> CallError,
    _type: PhantomData<fn() -> T>,
}

impl<T: prost::Message + Default> RequestStream<T> {
    pub(crate) fn for_requests(reader: FrameReader) -> Self {
        Self {
            reader,
            decode_error: CallError::BadRequest,
            _type: PhantomData,
        }
    }

    /// The next message, or `None` once the sender has finished.
    pub async fn message(&mut self) -> Result<Option<T>, Status> {
        Ok(self.message_or_error().await?)
    }

    async fn message_or_error(&mut self) -> Result<Option<T>, CallError> {
        match self.reader.next_of(FrameType::Message).await? {
            Some(payload) => T::decode(payload).map(Some).map_err(self.decode_error),
            None => Ok(None),
        }
    }

    /// Exactly one message followed by the end of the stream.
    pub(crate) async fn single(mut self) -> Result<T, Status> {
        let payload = self.reader.single_message().await?;
        Ok(T::decode(payload).map_err(self.decode_error)?)
    }
}

/// Outgoing messages of type `T` from a handler.
#[derive(Debug)]
pub struct ResponseSink<T> {
    frames: mpsc::Sender<OutFrames>,
    _type: PhantomData<fn(T)>,
}

impl<T: prost::Message> ResponseSink<T> {
    pub(crate) fn new(frames: mpsc::Sender<OutFrames>) -> Self {
        Self {
            frames,
            _type: PhantomData,
        }
    }

    /// Queues one message; waits while the stream is full. Fails once the
    /// caller has gone away.
    pub async fn send(&mut self, message: &T) -> Result<(), Status> {
        let mut frame = OutFrames::new();
        frame.put_message(FrameType::Message, message);
        self.frames
            .send(frame)
            .await
            .map_err(|_| Status::cancelled("the caller is gone"))
    }
}
