//! The callee of the caller-side RPC target: a stream handler that answers
//! the target's calls by the installed script, and every other call (or
//! every call while no script is installed) as a well-behaved callee would.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::BytesMut;
use prost::Message;
use tokio_util::task::TaskTracker;

use super::script::{SCRIPTED_METHODS, Step};
use crate::connection::{IncomingStream, StreamHandler};
use crate::node_service::proto::PingResponse;
use crate::rpc::wire::codec::{
    Frame, FrameDecoder, FrameType, Unframed, put_frame, put_message_frame,
};
use crate::rpc::wire::proto::{RequestHeader, Status};

/// How long a read step waits for the caller.
const READ_WAIT: Duration = Duration::from_millis(2);
/// Every handler ends within this, whatever its script.
const HANDLER_LIMIT: Duration = Duration::from_secs(2);
/// The caller's requests are a few bytes each.
const MAX_REQUEST: u32 = 1024;

pub(super) type Answer = Arc<[Step]>;

#[derive(Default)]
pub(super) struct ScriptedCallee {
    answer: Mutex<Option<Answer>>,
    handlers: TaskTracker,
}

impl ScriptedCallee {
    /// Answers the streams opened from now on by `answer`, or as an echo.
    pub(crate) fn install(&self, answer: Option<Answer>) {
        *self.answer.lock().unwrap_or_else(PoisonError::into_inner) = answer;
    }

    /// Returns once every handler has ended.
    pub(crate) async fn idle(&self) {
        self.handlers.close();
        self.handlers.wait().await;
        self.handlers.reopen();
    }
}

impl StreamHandler for ScriptedCallee {
    fn handle_stream(&self, stream: IncomingStream) {
        let answer = self
            .answer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        self.handlers.spawn(async move {
            let _ = tokio::time::timeout(HANDLER_LIMIT, serve(stream, answer)).await;
        });
    }
}

async fn serve(stream: IncomingStream, answer: Option<Answer>) {
    let IncomingStream {
        mut send,
        recv,
        guard: _served,
        ..
    } = stream;
    let mut request = Request::new(recv);
    let Some(method) = request.method().await else {
        return;
    };
    // The caller's node asks `Info` of every node it connects to: that call
    // gets the echo, whatever the script.
    match answer.filter(|_| method.starts_with(SCRIPTED_METHODS)) {
        Some(steps) => {
            for step in steps.iter() {
                perform(step, &mut send, &mut request).await;
            }
        }
        None => echo(&mut send, &mut request).await,
    }
}

/// Errors are expected: the caller may have gone, stopped or reset.
async fn perform(step: &Step, send: &mut quinn::SendStream, request: &mut Request) {
    match step {
        Step::Message { nonce } => {
            let response = PingResponse {
                nonce: (*nonce).into(),
                unix_micros: 0,
            };
            write_frame(send, FrameType::Message, &response).await;
        }
        Step::Status { code, message } => {
            let status = Status {
                code: (*code).into(),
                message: message.clone(),
                ..Default::default()
            };
            write_frame(send, FrameType::Status, &status).await;
        }
        Step::Header => {
            let header = RequestHeader {
                method: SCRIPTED_METHODS.into(),
                ..Default::default()
            };
            write_frame(send, FrameType::Header, &header).await;
        }
        Step::Raw(bytes) => {
            let _ = send.write_all(bytes).await;
        }
        Step::Finish => {
            let _ = send.finish();
        }
        Step::Reset(code) => {
            let _ = send.reset((*code).into());
        }
        Step::Stop(code) => {
            let _ = request.recv.stop((*code).into());
        }
        Step::Read => request.read_briefly().await,
        Step::Pause(ms) => tokio::time::sleep(Duration::from_millis((*ms).into())).await,
    }
}

async fn write_frame(send: &mut quinn::SendStream, kind: FrameType, message: &impl Message) {
    let mut frame = BytesMut::new();
    put_message_frame(&mut frame, kind, message);
    let _ = send.write_all(&frame).await;
}

/// The answer of a callee that keeps the protocol: the first request message
/// sent back as the response (each `peerd.node.v1` request reads as its
/// response: their first fields match), then OK.
async fn echo(send: &mut quinn::SendStream, request: &mut Request) {
    let mut first = None;
    while let Some(frame) = request.next_frame().await {
        if frame.kind == FrameType::Message {
            first.get_or_insert(frame.payload);
        }
    }
    let mut answer = BytesMut::new();
    put_frame(&mut answer, FrameType::Message, &first.unwrap_or_default());
    put_message_frame(&mut answer, FrameType::Status, &Status::default());
    let _ = send.write_all(&answer).await;
    let _ = send.finish();
}

/// The caller's half of the stream, cut into frames.
struct Request {
    recv: quinn::RecvStream,
    decoder: FrameDecoder,
    buffer: Unframed,
}

impl Request {
    fn new(recv: quinn::RecvStream) -> Self {
        Self {
            recv,
            decoder: FrameDecoder::new(MAX_REQUEST),
            buffer: Unframed::default(),
        }
    }

    /// The method the request header names.
    async fn method(&mut self) -> Option<String> {
        let header = self.next_frame().await?;
        let header = (header.kind == FrameType::Header).then_some(header.payload)?;
        RequestHeader::decode(header)
            .ok()
            .map(|header| header.method)
    }

    /// The next frame; `None` at the end of the stream or on any error.
    async fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buffer).ok()? {
                return Some(frame);
            }
            let chunk = self.recv.read_chunk(usize::MAX, true).await.ok()??;
            self.buffer.push(chunk.bytes);
        }
    }

    /// Takes whatever has arrived off the stream, so the caller's flow
    /// control window opens again; a script does not look at it.
    async fn read_briefly(&mut self) {
        let _ = tokio::time::timeout(READ_WAIT, self.recv.read_chunk(usize::MAX, true)).await;
    }
}
