//! A page played in Rust: a WebTransport client of a daemon's browser
//! listener that speaks the session of docs/protocol.md §11 by hand, for
//! hostile-page tests and the browser benchmark.

use bytes::{Bytes, BytesMut};
use peerd::identity::hosted::challenge;
use peerd::rpc::wire::codec::{Frame, FrameDecoder, FrameType, Unframed, put_message_frame};
use peerd::rpc::wire::proto::{RequestHeader, Status};
use peerd::{Identity, NodeId};
use peerd_daemon::browser::proto::{Challenge, Proof};
use prost::Message;
use serde_json::Value;
use web_transport_quinn::{RecvStream, SendStream, Session};

use super::daemon::{Daemon, http_get};

pub fn start_daemon(dir: &std::path::Path, extra: &[&str]) -> Daemon {
    let mut args = vec![
        "--set",
        "browser.enabled=true",
        "--set",
        "browser.listen=127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    Daemon::start(dir, &args)
}

/// What `/browser` says: the URL and the pins.
pub fn info(daemon: &Daemon) -> (url::Url, Vec<Vec<u8>>) {
    let response = http_get(daemon.metrics.unwrap(), "/browser");
    let body = response.split_once("\r\n\r\n").unwrap().1;
    let info: Value = serde_json::from_str(body).unwrap();
    let hashes = info["certificate_hashes"].as_array().unwrap();
    let hashes = hashes.iter().map(|h| unhex(h.as_str().unwrap())).collect();
    (info["url"].as_str().unwrap().parse().unwrap(), hashes)
}

pub fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// A session with its control stream open and the challenge read.
pub struct Page {
    pub session: Session,
    send: SendStream,
    control: Frames,
    challenge: Challenge,
}

/// The frames arriving on one stream.
struct Frames {
    recv: RecvStream,
    input: Unframed,
}

impl Frames {
    fn new(recv: RecvStream) -> Self {
        Self {
            recv,
            input: Unframed::default(),
        }
    }

    async fn next(&mut self) -> Option<Frame> {
        let decoder = FrameDecoder::new(64 * 1024);
        loop {
            if let Some(frame) = decoder.decode(&mut self.input).unwrap() {
                return Some(frame);
            }
            let chunk = self.recv.read_chunk(64 * 1024, true).await.ok()??;
            self.input.push(chunk.bytes);
        }
    }
}

pub async fn open(daemon: &Daemon) -> Result<Page, String> {
    let (url, hashes) = info(daemon);
    let client = web_transport_quinn::ClientBuilder::new()
        .with_server_certificate_hashes(hashes)
        .map_err(|e| e.to_string())?;
    let session = client.connect(url).await.map_err(|e| e.to_string())?;
    let (send, recv) = session.open_bi().await.map_err(|e| e.to_string())?;
    let mut control = Frames::new(recv);
    let frame = control.next().await.ok_or("no challenge")?;
    let challenge = Challenge::decode(frame.payload).map_err(|e| e.to_string())?;
    Ok(Page {
        session,
        send,
        control,
        challenge,
    })
}

pub fn frame(kind: FrameType, message: &impl Message) -> Bytes {
    let mut out = BytesMut::new();
    put_message_frame(&mut out, kind, message);
    out.freeze()
}

/// A proof by `key` of the page's challenge.
pub fn proof(page: &Page, key: &Identity) -> Proof {
    let host: [u8; 32] = page.challenge.host[..].try_into().unwrap();
    let nonce: [u8; 32] = page.challenge.nonce[..].try_into().unwrap();
    let hash: [u8; 32] = page.challenge.certificate_hash[..].try_into().unwrap();
    let message = challenge(NodeId::from_bytes(host), &nonce, &hash);
    Proof {
        node_id: key.node_id().as_bytes().to_vec().into(),
        signature: key.sign(&message).to_vec().into(),
        datagram_services: vec![],
    }
}

/// Sends `bytes` on the control stream; the daemon's verdict.
pub async fn answer(page: &mut Page, bytes: Bytes) -> Status {
    page.send.write_all(&bytes).await.unwrap();
    let frame = page.control.next().await.expect("a status frame");
    assert_eq!(frame.kind, FrameType::Status);
    Status::decode(frame.payload).unwrap()
}

pub async fn accepted(daemon: &Daemon) -> Page {
    let mut page = open(daemon).await.expect("a session");
    let status = prove(&mut page, &Identity::generate(), &[]).await;
    assert_eq!(status.code, 0, "{status:?}");
    page
}

/// Proves `key`, taking datagrams for `services`; the daemon's verdict.
pub async fn prove(page: &mut Page, key: &Identity, services: &[&str]) -> Status {
    let mut good = proof(page, key);
    good.datagram_services = services.iter().map(|s| (*s).to_owned()).collect();
    answer(page, frame(FrameType::Message, &good)).await
}

/// One unary call from the page to `target`: its messages and status.
pub async fn unary(
    page: &Page,
    target: NodeId,
    method: &str,
    request: &[u8],
) -> (Vec<Bytes>, Status) {
    let (mut send, recv) = page.session.open_bi().await.unwrap();
    let header = RequestHeader {
        method: method.to_owned(),
        timeout_micros: 5_000_000,
        metadata: [("peerd-node".to_owned(), target.to_string())].into(),
    };
    let mut out = BytesMut::new();
    put_message_frame(&mut out, FrameType::Header, &header);
    peerd::rpc::wire::codec::put_frame(&mut out, FrameType::Message, request);
    send.write_all(&out).await.unwrap();
    send.finish().unwrap();
    let mut call = Frames::new(recv);
    let mut messages = Vec::new();
    loop {
        let frame = call.next().await.expect("a status");
        match frame.kind {
            FrameType::Message => messages.push(frame.payload),
            _ => return (messages, Status::decode(frame.payload).unwrap()),
        }
    }
}
