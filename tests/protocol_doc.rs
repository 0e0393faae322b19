//! docs/protocol.md's worked example is produced here from the real encoder,
//! so the document cannot drift from the code.

use bytes::BytesMut;
use peerd::node_service::proto::{PingRequest, PingResponse};
use peerd::rpc::wire::codec::{FrameType, put_message_frame};
use peerd::rpc::wire::proto::{RequestHeader, Status};

fn hex_dump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (row, chunk) in bytes.chunks(16).enumerate() {
        let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        let text: String = chunk
            .iter()
            .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
            .collect();
        out.push_str(&format!(
            "{:04x}  {:<48}  {}\n",
            row * 16,
            hex.join(" "),
            text
        ));
    }
    out
}

/// The caller's bytes: header (Ping, 5 s timeout) and request, then FIN.
fn ping_request() -> BytesMut {
    let header = RequestHeader {
        method: "peerd.node.v1.Node/Ping".into(),
        timeout_micros: 5_000_000,
        metadata: Default::default(),
    };
    let mut out = BytesMut::new();
    put_message_frame(&mut out, FrameType::Header, &header);
    put_message_frame(&mut out, FrameType::Message, &PingRequest { nonce: 42 });
    out
}

/// The callee's bytes: response and OK status, then FIN.
fn ping_response() -> BytesMut {
    let mut out = BytesMut::new();
    let response = PingResponse {
        nonce: 42,
        unix_micros: 1_700_000_000_000_000,
    };
    put_message_frame(&mut out, FrameType::Message, &response);
    put_message_frame(&mut out, FrameType::Status, &Status::default());
    out
}

#[test]
fn the_worked_ping_example_matches_the_encoder() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/protocol.md"))
        .expect("docs/protocol.md exists");
    for (name, bytes) in [("request", ping_request()), ("response", ping_response())] {
        let dump = hex_dump(&bytes);
        assert!(
            doc.contains(&dump),
            "docs/protocol.md lacks the {name} dump ({} bytes); it should read:\n{dump}",
            bytes.len()
        );
    }
}
