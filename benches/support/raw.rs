//! Raw quinn doing the benches' work with no RPC layer: the same TLS (peerd's
//! own rustls configs and verifiers) and the same transport settings, one
//! stream per call. Echo: the client writes the payload and finishes, the
//! server reads to the end, writes it back and finishes. Bulk: the client
//! asks for `count` chunks of `size` bytes and the server writes them.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use peerd::connection::{TransportConfig, set_buffers};
use peerd::tls::{ExpectedPeer, TlsConfigs};
use peerd::{Identity, NodeId};
use quinn::{Endpoint, VarInt};

use super::{LOCALHOST, MAX_ECHO, Tickets};

/// The SNI peerd sends; never checked.
const SERVER_NAME: &str = "peerd";

/// What a raw server endpoint does with each stream.
#[derive(Debug, Clone, Copy)]
pub enum Work {
    Echo,
    Bulk,
}

/// Exactly peerd's default transport settings.
fn transport() -> Arc<quinn::TransportConfig> {
    TransportConfig::default().quinn()
}

/// An endpoint on a socket with peerd's default kernel buffer sizes.
fn endpoint(server: Option<quinn::ServerConfig>) -> Endpoint {
    let socket = std::net::UdpSocket::bind(LOCALHOST).unwrap();
    set_buffers(&socket, TransportConfig::default().socket_buffer).unwrap();
    let runtime = quinn::default_runtime().unwrap();
    Endpoint::new(quinn::EndpointConfig::default(), server, socket, runtime).unwrap()
}

/// Starts a server endpoint doing `work` on the current runtime.
pub fn serve(identity: &Identity, work: Work) -> Endpoint {
    let tls = TlsConfigs::new(identity).unwrap();
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(tls.server().unwrap()));
    config.transport_config(transport());
    let endpoint = endpoint(Some(config));
    tokio::spawn(accept_loop(endpoint.clone(), work));
    endpoint
}

async fn accept_loop(endpoint: Endpoint, work: Work) {
    while let Some(incoming) = endpoint.accept().await {
        tokio::spawn(serve_connection(incoming, work));
    }
}

// Errors on the server side only happen at teardown, when clients vanish.
async fn serve_connection(incoming: quinn::Incoming, work: Work) {
    let Ok(connection) = incoming.await else {
        return;
    };
    while let Ok((send, recv)) = connection.accept_bi().await {
        match work {
            Work::Echo => tokio::spawn(echo_back(send, recv)),
            Work::Bulk => tokio::spawn(send_bulk(send, recv)),
        };
    }
}

async fn echo_back(mut send: quinn::SendStream, mut recv: quinn::RecvStream) {
    if let Ok(data) = recv.read_to_end(MAX_ECHO).await {
        let _ = send.write_all(&data).await;
        let _ = send.finish();
    }
}

async fn send_bulk(mut send: quinn::SendStream, mut recv: quinn::RecvStream) {
    let Ok(request) = recv.read_to_end(8).await else {
        return;
    };
    let Ok(request) = <[u8; 8]>::try_from(request.as_slice()) else {
        return;
    };
    let (count, size) = bulk_request_fields(request);
    let chunk = super::payload(size);
    for _ in 0..count {
        if send.write_chunk(chunk.clone()).await.is_err() {
            return;
        }
    }
    let _ = send.finish();
}

fn bulk_request(count: u32, size: u32) -> [u8; 8] {
    let mut request = [0; 8];
    request[..4].copy_from_slice(&count.to_be_bytes());
    request[4..].copy_from_slice(&size.to_be_bytes());
    request
}

fn bulk_request_fields(request: [u8; 8]) -> (u32, usize) {
    let [c0, c1, c2, c3, s0, s1, s2, s3] = request;
    let size = u32::from_be_bytes([s0, s1, s2, s3]).min(MAX_ECHO as u32);
    (u32::from_be_bytes([c0, c1, c2, c3]), size as usize)
}

/// A client endpoint with the TLS settings of one client identity, made
/// once as a peerd node makes them once.
pub struct Dialer {
    endpoint: Endpoint,
    tls: TlsConfigs,
    transport: Arc<quinn::TransportConfig>,
}

impl Dialer {
    /// Binds on the current runtime.
    pub fn new() -> Self {
        Self {
            endpoint: endpoint(None),
            tls: TlsConfigs::new(&Identity::generate()).unwrap(),
            transport: transport(),
        }
    }

    /// A handshake as peerd dials: a fresh client config expecting `server`
    /// (so no TLS session is ever resumed), then mutual TLS.
    pub async fn connect(&self, server: NodeId, addr: SocketAddr) -> quinn::Connection {
        let tls = self.tls.client(ExpectedPeer::new(server)).unwrap();
        let mut config = quinn::ClientConfig::new(Arc::new(tls));
        config.transport_config(self.transport.clone());
        self.endpoint
            .connect_with(config, addr, SERVER_NAME)
            .unwrap()
            .await
            .unwrap()
    }

    pub fn close(&self) {
        self.endpoint.close(VarInt::from_u32(0), b"");
    }
}

pub async fn echo(connection: &quinn::Connection, payload: &[u8]) {
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    send.write_all(payload).await.unwrap();
    send.finish().unwrap();
    let echoed = recv.read_to_end(MAX_ECHO).await.unwrap();
    assert_eq!(echoed.len(), payload.len());
}

pub async fn echo_worker(connection: quinn::Connection, payload: Bytes, tickets: Arc<Tickets>) {
    while tickets.take() {
        echo(&connection, &payload).await;
    }
}

/// Downloads `count` chunks of `size` bytes on one stream.
pub async fn bulk(connection: &quinn::Connection, count: u32, size: u32) {
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    send.write_all(&bulk_request(count, size)).await.unwrap();
    send.finish().unwrap();
    let mut received = 0;
    while let Some(chunk) = recv.read_chunk(usize::MAX, true).await.unwrap() {
        received += chunk.bytes.len();
    }
    assert_eq!(received, count as usize * size as usize);
}
