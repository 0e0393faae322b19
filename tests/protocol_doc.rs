//! docs/protocol.md's worked example is produced here from the real encoder,
//! so the document cannot drift from the code; and the document's answers to
//! what a second implementation would otherwise guess (alerts, deadlines,
//! limits, wrong-side frames, metadata, STOP_SENDING, address fields) are
//! checked against a real node over real QUIC.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use peerd::connection::{NodeConnection, TransportConfig};
use peerd::node_service::ECHO;
use peerd::node_service::proto::{EchoRequest, EchoResponse, PingRequest, PingResponse};
use peerd::rpc::RpcConfig;
use peerd::rpc::wire::codec::{
    Frame, FrameDecoder, FrameType, Unframed, put_frame, put_message_frame,
};
use peerd::rpc::wire::proto::{RequestHeader, Status};
use peerd::{CallContext, Code, Handlers, Identity, Node};
use prost::Message as _;
use support::{SECOND, localhost, within};
use tokio::time::Instant;

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

fn node_with(rpc: RpcConfig, handlers: Option<Handlers>) -> Node {
    let builder = Node::builder(Identity::generate())
        .listen(localhost(1))
        .rpc(rpc)
        .transport(TransportConfig::default());
    match handlers {
        Some(handlers) => builder.serve(handlers),
        None => builder,
    }
    .bind()
    .expect("bind")
}

/// A caller and a callee, and the caller's connection to the callee.
async fn connected(callee: Node) -> (Node, Node, NodeConnection) {
    let caller = node_with(RpcConfig::default(), None);
    let connection = caller
        .manager()
        .get_or_connect(callee.id(), &[callee.local_addr()])
        .await
        .expect("connect");
    (caller, callee, connection)
}

fn header(method: &str, timeout: Duration, metadata: HashMap<String, String>) -> RequestHeader {
    RequestHeader {
        method: method.into(),
        timeout_micros: timeout.as_micros() as u64,
        metadata,
    }
}

fn echo_request(payload_len: usize, delay_millis: u32) -> EchoRequest {
    EchoRequest {
        payload: vec![7; payload_len].into(),
        delay_millis,
    }
}

/// Header and request frames of one call.
fn call_bytes(header: &RequestHeader, request: &impl prost::Message) -> BytesMut {
    let mut out = BytesMut::new();
    put_message_frame(&mut out, FrameType::Header, header);
    put_message_frame(&mut out, FrameType::Message, request);
    out
}

fn frames_of(bytes: &[u8]) -> Vec<Frame> {
    let mut buffer = Unframed::default();
    buffer.push(Bytes::copy_from_slice(bytes));
    let decoder = FrameDecoder::new(u32::MAX);
    let mut frames = Vec::new();
    while let Some(frame) = decoder
        .decode(&mut buffer)
        .expect("the callee's frames decode")
    {
        frames.push(frame);
    }
    frames
}

/// The answer's message frames and its status.
fn answer_of(bytes: &[u8]) -> (Vec<Bytes>, peerd::Status) {
    let mut messages = Vec::new();
    for frame in frames_of(bytes) {
        match frame.kind {
            FrameType::Message => messages.push(frame.payload),
            FrameType::Status => {
                let status = Status::decode(frame.payload).expect("a Status");
                let status = peerd::Status::new(Code::from_u32(status.code), status.message);
                return (messages, status);
            }
            FrameType::Header => panic!("a callee sent a HEADER frame"),
        }
    }
    panic!("no STATUS frame in {} bytes", bytes.len())
}

/// Sends `bytes` and FIN on a new stream, and returns the callee's answer.
async fn raw_call(connection: &NodeConnection, bytes: &[u8]) -> (Vec<Bytes>, peerd::Status) {
    let (mut send, mut recv, _guard) = connection.open_stream().await.expect("stream");
    send.write_all(bytes).await.expect("write");
    send.finish().expect("finish");
    let answer = within(10 * SECOND, recv.read_to_end(1 << 24)).await;
    answer_of(&answer.expect("the callee answers"))
}

#[tokio::test]
async fn an_echo_delay_longer_than_the_time_left_fails_at_once() {
    let (_caller, _callee, connection) = connected(node_with(RpcConfig::default(), None)).await;
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let request = echo_request(8, 30_000);
    let (messages, status) = raw_call(
        &connection,
        &call_bytes(&header(ECHO, timeout, HashMap::new()), &request),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status}");
    assert!(messages.is_empty(), "{} MESSAGE frames", messages.len());
    assert!(
        took < timeout,
        "answered after {took:?} for a 300 ms deadline and a 30 s delay"
    );
}

#[tokio::test]
async fn the_deadline_counts_from_the_streams_acceptance_not_from_the_header() {
    let (_caller, _callee, connection) = connected(node_with(RpcConfig::default(), None)).await;
    let timeout = 3 * SECOND;
    // A delay that fits the deadline counted from the header (3 s left when
    // it completes) but not counted from the stream's acceptance (1 s left).
    let bytes = call_bytes(
        &header(ECHO, timeout, HashMap::new()),
        &echo_request(8, 1_500),
    );
    let (mut send, mut recv, _guard) = connection.open_stream().await.expect("stream");
    // The first byte opens the stream; the rest of the header follows 2 s later.
    send.write_all(&bytes[..1]).await.expect("write");
    let opened = Instant::now();
    tokio::time::sleep(2 * SECOND).await;
    send.write_all(&bytes[1..]).await.expect("write");
    send.finish().expect("finish");
    let answer = within(10 * SECOND, recv.read_to_end(1 << 16)).await;
    let took = opened.elapsed();
    let (_, status) = answer_of(&answer.expect("the callee answers"));
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status}");
    // Counted from the header, it would answer OK 3.5 s after the stream
    // opened; counted from the acceptance, the delay no longer fits at 2 s.
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_millis(2900),
        "a 3 s deadline whose header completed 2 s after the stream opened ended after {took:?}"
    );
}

/// The `RequestHeader` whose encoding has exactly `len` bytes, padded with
/// one metadata entry.
fn header_of_encoded_len(len: usize) -> RequestHeader {
    (0..len)
        .map(|value_len| {
            let metadata = HashMap::from([("k".to_owned(), "v".repeat(value_len))]);
            header(ECHO, 5 * SECOND, metadata)
        })
        .find(|header| header.encoded_len() == len)
        .expect("some padding encodes to the length")
}

#[tokio::test]
async fn size_limits_are_inclusive_and_apply_to_the_encoded_payload() {
    const LIMIT: u32 = 1024;
    // The header is padded with metadata: its own limit is not the one tested.
    let rpc = RpcConfig {
        max_message_size: LIMIT,
        max_metadata_bytes: 1 << 20,
        ..RpcConfig::default()
    };
    let (_caller, _callee, connection) = connected(node_with(rpc, None)).await;
    let plain = header(ECHO, 5 * SECOND, HashMap::new());
    // 1021 payload bytes encode to 1 (tag) + 2 (length) + 1021 = 1024 bytes.
    for (payload, expected) in [(1021, Code::Ok), (1022, Code::ResourceExhausted)] {
        let request = echo_request(payload, 0);
        let encoded = request.encoded_len();
        let (_, status) = raw_call(&connection, &call_bytes(&plain, &request)).await;
        assert_eq!(
            status.code(),
            expected,
            "an encoded request of {encoded} bytes: {status}"
        );
    }
    let max_control = peerd::rpc::wire::codec::MAX_CONTROL_FRAME as usize;
    for (len, expected) in [
        (max_control, Code::Ok),
        (max_control + 1, Code::ResourceExhausted),
    ] {
        let header = header_of_encoded_len(len);
        let (_, status) = raw_call(&connection, &call_bytes(&header, &echo_request(1, 0))).await;
        assert_eq!(
            status.code(),
            expected,
            "an encoded header of {len} bytes: {status}"
        );
    }
}

#[tokio::test]
async fn frames_from_the_wrong_side_are_internal_errors() {
    let (_caller, _callee, connection) = connected(node_with(RpcConfig::default(), None)).await;
    let mut status_first = BytesMut::new();
    put_message_frame(&mut status_first, FrameType::Status, &Status::default());
    let mut two_headers = BytesMut::new();
    let plain = header(ECHO, 5 * SECOND, HashMap::new());
    put_message_frame(&mut two_headers, FrameType::Header, &plain);
    put_message_frame(&mut two_headers, FrameType::Header, &plain);
    for (bytes, names) in [
        (status_first, "expected a Header frame, got a Status frame"),
        (two_headers, "expected a Message frame, got a Header frame"),
    ] {
        let (_, status) = raw_call(&connection, &bytes).await;
        assert_eq!(status.code(), Code::Internal, "{status}");
        assert!(status.message().contains(names), "{status}");
    }
}

/// `test.v1.Meta/Show` answers with the metadata it was given, sorted.
fn metadata_service() -> Handlers {
    Handlers::new("test.v1.Meta").unary("Show", |context: CallContext, _: EchoRequest| async move {
        let mut entries: Vec<String> = context
            .metadata()
            .iter()
            .map(|(key, value)| format!("{key:?}={value:?}"))
            .collect();
        entries.sort();
        Ok(EchoResponse {
            payload: entries.join(",").into_bytes().into(),
        })
    })
}

#[tokio::test]
async fn metadata_reaches_the_handler_as_sent_and_a_repeated_key_keeps_its_last_value() {
    let callee = node_with(RpcConfig::default(), Some(metadata_service()));
    let (_caller, _callee, connection) = connected(callee).await;
    let entry = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    let first = header(
        "test.v1.Meta/Show",
        5 * SECOND,
        HashMap::from([entry("dup", "first")]),
    );
    let second = RequestHeader {
        metadata: HashMap::from([
            entry("dup", "second"),
            entry("", "empty key"),
            entry("Key", "A"),
            entry("key", "a"),
            entry("ключ", "знач"),
        ]),
        ..RequestHeader::default()
    };
    // Two encodings in one HEADER payload: protobuf merges them, as a
    // header repeating the key would be read.
    let mut payload = first.encode_to_vec();
    payload.extend(second.encode_to_vec());
    let mut bytes = BytesMut::new();
    put_frame(&mut bytes, FrameType::Header, &payload);
    put_message_frame(&mut bytes, FrameType::Message, &EchoRequest::default());
    let (messages, status) = raw_call(&connection, &bytes).await;
    assert!(status.is_ok(), "{status}");
    let shown = EchoResponse::decode(messages[0].clone())
        .expect("EchoResponse")
        .payload;
    assert_eq!(
        String::from_utf8_lossy(&shown),
        r#"""="empty key","Key"="A","dup"="second","key"="a","ключ"="знач""#
    );

    // Field 3, one entry: key 0xff (not UTF-8), value "v".
    let mut not_utf8 = first.encode_to_vec();
    not_utf8.extend([0x1a, 0x06, 0x0a, 0x01, 0xff, 0x12, 0x01, b'v']);
    let mut bytes = BytesMut::new();
    put_frame(&mut bytes, FrameType::Header, &not_utf8);
    let (_, status) = raw_call(&connection, &bytes).await;
    assert_eq!(status.code(), Code::Internal, "{status}");
    assert!(
        status.message().contains("malformed request header"),
        "{status}"
    );
}

#[tokio::test]
async fn stop_sending_is_answered_with_a_reset_stream() {
    let (_caller, _callee, connection) = connected(node_with(RpcConfig::default(), None)).await;
    let bytes = call_bytes(
        &header(ECHO, 60 * SECOND, HashMap::new()),
        &echo_request(8, 30_000),
    );
    let (mut send, mut recv, _guard) = connection.open_stream().await.expect("stream");
    send.write_all(&bytes).await.expect("write");
    send.finish().expect("finish");
    // Let the handler start its 30 s delay.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let resets = connection.stats().frame_rx.reset_stream;
    recv.stop(peerd::rpc::StreamCode::Cancelled.var_int())
        .expect("stop");
    let started = Instant::now();
    // quinn hides a stopped stream's RESET_STREAM (and its code) from the
    // application; the connection's frame count shows it arrived.
    let answered = support::eventually(5 * SECOND, || {
        connection.stats().frame_rx.reset_stream > resets
    })
    .await;
    assert!(
        answered,
        "no RESET_STREAM within {:?} of STOP_SENDING",
        started.elapsed()
    );
}

/// A raw QUIC client to `node`: its TLS verifier expects `expected`, it
/// offers `alpn` and presents `certificate` (DER and PKCS#8 key) if any.
async fn raw_handshake(
    node: &Node,
    expected: peerd::NodeId,
    alpn: &[u8],
    certificate: Option<(Vec<u8>, Vec<u8>)>,
) -> Result<quinn::Connection, quinn::ConnectionError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .dangerous()
        .with_custom_certificate_verifier(peerd::tls::ExpectedPeer::new(expected));
    let mut tls = match certificate {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![cert.into()],
                rustls::pki_types::PrivateKeyDer::try_from(key).expect("PKCS#8"),
            )
            .expect("a usable client certificate"),
    };
    tls.alpn_protocols = vec![alpn.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).expect("QUIC TLS");
    let endpoint = quinn::Endpoint::client(localhost(1)).expect("client endpoint");
    let config = quinn::ClientConfig::new(Arc::new(crypto));
    let connecting = endpoint
        .connect_with(config, node.local_addr(), "peerd")
        .expect("connect");
    within(10 * SECOND, connecting).await
}

/// The QUIC error code a handshake ended with, whichever side sent it.
async fn close_code(handshake: Result<quinn::Connection, quinn::ConnectionError>) -> u64 {
    let error = match handshake {
        Err(error) => error,
        // TLS 1.3: the client is done before the server checked its certificate.
        Ok(connection) => within(10 * SECOND, connection.closed()).await,
    };
    match &error {
        quinn::ConnectionError::ConnectionClosed(close) => close.error_code.into(),
        quinn::ConnectionError::TransportError(local) => local.code.into(),
        other => panic!("the handshake ended otherwise: {other}"),
    }
}

fn certificate(algorithm: &'static rcgen::SignatureAlgorithm) -> (Vec<u8>, Vec<u8>) {
    let key = rcgen::KeyPair::generate_for(algorithm).expect("key");
    let params = rcgen::CertificateParams::new(vec!["x".to_owned()]).expect("params");
    let cert = params.self_signed(&key).expect("certificate");
    (cert.der().to_vec(), key.serialize_der())
}

#[tokio::test]
async fn each_refused_handshake_ends_with_the_documented_alert() {
    let node = node_with(RpcConfig::default(), None);
    let alpn = peerd::tls::ALPN;
    let ed25519 = || Some(certificate(&rcgen::PKCS_ED25519));
    let cases = [
        ("no client certificate", node.id(), alpn, None, 0x174),
        // peerd's CertificateRequest offers ed25519 only, so rustls sends
        // no certificate rather than one it cannot sign for.
        (
            "an ECDSA client certificate",
            node.id(),
            alpn,
            Some(certificate(&rcgen::PKCS_ECDSA_P256_SHA256)),
            0x174,
        ),
        (
            "ALPN peerd/2 only",
            node.id(),
            &b"peerd/2"[..],
            ed25519(),
            0x178,
        ),
        (
            "the dialed node is not the expected one",
            Identity::generate().node_id(),
            alpn,
            ed25519(),
            0x12e,
        ),
    ];
    for (case, expected, alpn, cert, code) in cases {
        let handshake = raw_handshake(&node, expected, alpn, cert).await;
        let got = close_code(handshake).await;
        assert_eq!(got, code, "{case}: closed with 0x{got:x}, not 0x{code:x}");
    }
}

#[tokio::test]
async fn a_certificate_whose_self_signature_is_broken_is_accepted() {
    let node = node_with(RpcConfig::default(), None);
    let (mut cert, key) = certificate(&rcgen::PKCS_ED25519);
    // The DER ends with the 64-byte signature: flip its last bit.
    *cert.last_mut().expect("a certificate") ^= 1;
    let connection = raw_handshake(&node, node.id(), peerd::tls::ALPN, Some((cert, key)))
        .await
        .expect("the handshake completes");
    let (mut send, mut recv) = connection.open_bi().await.expect("stream");
    let ping = PingRequest { nonce: 9 };
    let bytes = call_bytes(
        &header(peerd::node_service::PING, 5 * SECOND, HashMap::new()),
        &ping,
    );
    send.write_all(&bytes).await.expect("write");
    send.finish().expect("finish");
    let answer = within(10 * SECOND, recv.read_to_end(1 << 16)).await;
    let (messages, status) = answer_of(&answer.expect("the node answers"));
    assert!(status.is_ok(), "{status}");
    assert_eq!(messages.len(), 1);
}
