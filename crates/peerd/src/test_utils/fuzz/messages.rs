//! Fuzzing every protobuf message a node decodes from the network, and the
//! node ids inside them.

use prost::Message;

use crate::NodeId;
use crate::node_service::proto::{
    AnnounceRequest, AnnounceResponse, EchoRequest, EchoResponse, FindNodeRequest,
    FindNodeResponse, FindServiceRequest, FindServiceResponse, InfoRequest, InfoResponse,
    PingRequest, PingResponse,
};
use crate::rpc::wire::proto::{RequestHeader, Status};
use crate::rpc::{Code, Status as CallStatus};

/// `data[0]` picks the message type, the rest is its encoding. Checks that
/// decoding never panics, that what decodes survives a round trip, and that
/// node ids that parse print back to the same id.
pub fn messages(data: &[u8]) {
    let Some((kind, bytes)) = data.split_first() else {
        return;
    };
    match kind % 14 {
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
        5 => {
            if let Some(info) = round_trip::<InfoResponse>(bytes) {
                node_id(&info.node_id);
            }
        }
        6 => check::<EchoRequest>(bytes),
        7 => check::<EchoResponse>(bytes),
        8 => {
            if let Some(request) = round_trip::<FindNodeRequest>(bytes) {
                node_id(&request.target);
            }
        }
        9 => {
            if let Some(response) = round_trip::<FindNodeResponse>(bytes) {
                response.nodes.iter().for_each(|n| node_id(&n.node_id));
            }
        }
        10 => check::<AnnounceRequest>(bytes),
        11 => check::<AnnounceResponse>(bytes),
        12 => check::<FindServiceRequest>(bytes),
        _ => {
            if let Some(response) = round_trip::<FindServiceResponse>(bytes) {
                let nodes = response.providers.iter().filter_map(|p| p.node.as_ref());
                nodes.for_each(|n| node_id(&n.node_id));
            }
        }
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

/// A peer's node id text either fails to parse or names one id exactly.
fn node_id(text: &str) {
    if let Ok(id) = text.parse::<NodeId>() {
        let printed = id.to_string();
        assert_eq!(printed.parse::<NodeId>().ok(), Some(id), "{text:?}");
        assert!(
            printed.eq_ignore_ascii_case(text),
            "{text:?} parsed as {printed}"
        );
    }
}
