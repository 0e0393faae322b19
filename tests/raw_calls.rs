//! Calls by encoded bytes: the client's encoded streaming calls, and the
//! router's fallback that serves methods it has no route for.

use std::time::Duration;

use bytes::Bytes;
use peerd::rpc::{RawRequests, RawResponses};
use peerd::{CallContext, CallOptions, Code, Identity, Node, Status};

/// Answers each request with its bytes reversed, then a trailer naming the
/// method; `x.Fail/...` ends with NOT_FOUND.
async fn fallback(
    context: CallContext,
    mut requests: RawRequests,
    mut responses: RawResponses,
) -> Result<(), Status> {
    if context.method().starts_with("x.Fail/") {
        return Err(Status::not_found("no such thing").with_metadata("x-why", "test"));
    }
    while let Some(message) = requests.message().await? {
        let reversed: Vec<u8> = message.iter().rev().copied().collect();
        responses.send(&reversed).await?;
    }
    Err(Status::new(Code::Ok, "").with_metadata("x-method", context.method()))
}

fn pair(with_fallback: bool) -> (Node, Node) {
    let local = "127.0.0.1:0".parse().unwrap();
    let mut callee = Node::builder(Identity::generate()).listen(local);
    if with_fallback {
        callee = callee.fallback(fallback);
    }
    let callee = callee.bind().unwrap();
    let caller = Node::builder(Identity::generate())
        .listen(local)
        .bind()
        .unwrap();
    caller.addresses().add(callee.id(), callee.local_addr());
    (caller, callee)
}

fn options() -> CallOptions {
    CallOptions::default().with_timeout(Duration::from_secs(5))
}

#[tokio::test]
async fn an_encoded_bidi_call_reaches_the_fallback_and_returns_bytes_and_ok_trailers() {
    let (caller, callee) = pair(true);
    let client = caller.client();
    let mut call = client
        .bidi_streaming_encoded(callee.id(), "x.Any/Method", &options())
        .await
        .unwrap();
    call.send_encoded(b"abc").await.unwrap();
    assert_eq!(
        call.message_encoded().await.unwrap(),
        Some(Bytes::from_static(b"cba"))
    );
    call.send_encoded(b"12").await.unwrap();
    call.close_send().unwrap();
    assert_eq!(
        call.message_encoded().await.unwrap(),
        Some(Bytes::from_static(b"21"))
    );
    assert_eq!(call.message_encoded().await.unwrap(), None);
    let status = call.final_status().expect("ended with OK");
    assert_eq!(status.metadata()["x-method"], "x.Any/Method");

    let mut server = client
        .server_streaming_encoded(callee.id(), "x.Any/One", b"xy", &options())
        .await
        .unwrap();
    assert_eq!(
        server.message_encoded().await.unwrap(),
        Some(Bytes::from_static(b"yx"))
    );
    assert_eq!(server.message_encoded().await.unwrap(), None);

    let mut failing = client
        .client_streaming_encoded(callee.id(), "x.Fail/It", &options())
        .await
        .unwrap();
    failing.close_send().unwrap();
    let failed = failing.message_encoded().await.unwrap_err();
    assert_eq!(failed.code(), Code::NotFound, "{failed}");
    assert_eq!(failed.metadata()["x-why"], "test");
    assert!(failing.final_status().is_none());
    caller.shutdown(Duration::from_secs(1)).await;
    callee.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn without_a_fallback_unknown_methods_stay_unimplemented_and_routes_win() {
    let (caller, callee) = pair(false);
    let status = caller
        .client()
        .unary_encoded(callee.id(), "x.Any/Method", b"", &options())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status}");
    let (caller2, callee2) = pair(true);
    // A routed method is served by its handler, not the fallback.
    let ping = peerd::node_service::proto::PingRequest { nonce: 5 };
    let pong: peerd::node_service::proto::PingResponse = caller2
        .client()
        .unary(callee2.id(), "peerd.node.v1.Node/Ping", &ping, &options())
        .await
        .unwrap();
    assert_eq!(pong.nonce, 5);
    for node in [caller, callee, caller2, callee2] {
        node.shutdown(Duration::from_secs(1)).await;
    }
}
