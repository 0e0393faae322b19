//! Fuzzing every protobuf message a node decodes from the network.

use prost::Message;

use crate::rpc::proto::{RequestHeader, Status};
use crate::rpc::{Code, Status as CallStatus};
use crate::service::node::proto::{
    EchoRequest, EchoResponse, InfoRequest, InfoResponse, PingRequest, PingResponse,
};

/// `data[0]` picks the message type, the rest is its encoding. Checks that
/// decoding never panics and that what decodes survives a round trip.
pub fn messages(data: &[u8]) {
    let Some((kind, bytes)) = data.split_first() else {
        return;
    };
    match kind % 8 {
        0 => check::<RequestHeader>(bytes),
        1 => {
            if let Some(status) = round_trip::<Status>(bytes) {
                let converted = CallStatus::from_proto(status.clone());
                assert_eq!(converted.code(), Code::from_u32(status.code));
            }
        }
        2 => check::<PingRequest>(bytes),
        3 => check::<PingResponse>(bytes),
        4 => check::<InfoRequest>(bytes),
        5 => check::<InfoResponse>(bytes),
        6 => check::<EchoRequest>(bytes),
        _ => check::<EchoResponse>(bytes),
    }
}

fn check<M: Message + Default + PartialEq + std::fmt::Debug>(bytes: &[u8]) {
    round_trip::<M>(bytes);
}

fn round_trip<M: Message + Default + PartialEq + std::fmt::Debug>(bytes: &[u8]) -> Option<M> {
    let message = M::decode(bytes).ok()?;
    let again = M::decode(message.encode_to_vec().as_slice()).expect("re-encoded message decodes");
    assert_eq!(again, message, "round trip");
    Some(message)
}
