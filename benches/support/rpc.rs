//! peerd doing the benches' work through its RPC layer: unary calls to the
//! built-in `Echo`, and a bench service whose server-streaming `Download`
//! sends the bulk data.

use std::sync::Arc;

use bytes::Bytes;
use peerd::node_service::ECHO;
use peerd::node_service::proto::{EchoRequest, EchoResponse};
use peerd::rpc::{ResponseSink, RpcClient};
use peerd::{CallOptions, Handlers, NodeId};

use super::{MAX_ECHO, Tickets};

pub const DOWNLOAD: &str = "bench.v1.Bench/Download";

#[derive(Clone, PartialEq, prost::Message)]
pub struct DownloadRequest {
    #[prost(uint32, tag = "1")]
    pub count: u32,
    #[prost(uint32, tag = "2")]
    pub size: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Chunk {
    #[prost(bytes = "bytes", tag = "1")]
    pub payload: Bytes,
}

/// `Download` sends `count` messages of `size` bytes.
pub fn bench_service() -> Handlers {
    Handlers::new("bench.v1.Bench").server_streaming(
        "Download",
        |_, request: DownloadRequest, mut sink: ResponseSink<Chunk>| async move {
            let size = (request.size as usize).min(MAX_ECHO);
            let chunk = Chunk {
                payload: super::payload(size),
            };
            for _ in 0..request.count {
                sink.send(&chunk).await?;
            }
            Ok(())
        },
    )
}

pub async fn echo(client: &RpcClient, target: NodeId, request: &EchoRequest) {
    let response: EchoResponse = client
        .unary(target, ECHO, request, &CallOptions::default())
        .await
        .unwrap();
    assert_eq!(response.payload.len(), request.payload.len());
}

pub async fn echo_worker(client: RpcClient, target: NodeId, payload: Bytes, tickets: Arc<Tickets>) {
    let request = EchoRequest {
        payload,
        delay_millis: 0,
    };
    while tickets.take() {
        echo(&client, target, &request).await;
    }
}

/// Downloads `count` messages of `size` bytes in one server-streaming call.
pub async fn bulk(client: &RpcClient, target: NodeId, count: u32, size: u32) {
    let request = DownloadRequest { count, size };
    let mut call = client
        .server_streaming::<_, Chunk>(target, DOWNLOAD, &request, &CallOptions::default())
        .await
        .unwrap();
    let mut received = 0;
    while let Some(chunk) = call.message().await.unwrap() {
        received += chunk.payload.len();
    }
    assert_eq!(received, count as usize * size as usize);
}
