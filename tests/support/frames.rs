//! Raw RPC frames, for tests that speak the wire protocol by hand: requests
//! a client would not send, answers a callee would not give.

use bytes::{Bytes, BytesMut};
use peerd::rpc::wire::codec::{FrameDecoder, FrameType, Unframed, put_frame};
use peerd::rpc::wire::proto::RequestHeader;
use peerd::{Code, Status};

/// One frame of `kind` carrying `message`.
pub fn frame_of(kind: FrameType, message: &impl prost::Message) -> BytesMut {
    let mut out = BytesMut::new();
    put_frame(&mut out, kind, &prost::Message::encode_to_vec(message));
    out
}

/// A request header frame naming `method`, with no timeout or metadata.
pub fn header_frame(method: &str) -> BytesMut {
    let header = RequestHeader {
        method: method.into(),
        ..Default::default()
    };
    frame_of(FrameType::Header, &header)
}

/// A status frame with `code` and `message`.
pub fn status_frame(code: Code, message: &str) -> BytesMut {
    let status = peerd::rpc::wire::proto::Status {
        code: code as u32,
        message: message.into(),
        ..Default::default()
    };
    frame_of(FrameType::Status, &status)
}

/// The first status frame in a callee's answer; `None` if no frame up to
/// it decodes.
pub fn status_of(answer: &[u8]) -> Option<Status> {
    let mut buffer = Unframed::default();
    buffer.push(Bytes::copy_from_slice(answer));
    let decoder = FrameDecoder::new(1 << 20);
    while let Ok(Some(frame)) = decoder.decode(&mut buffer) {
        if frame.kind == FrameType::Status {
            let status: peerd::rpc::wire::proto::Status =
                prost::Message::decode(frame.payload).ok()?;
            return Some(Status::new(Code::from_u32(status.code), status.message));
        }
    }
    None
}
