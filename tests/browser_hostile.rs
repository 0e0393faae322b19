//! Hostile pages, played by a WebTransport client in Rust (no browser): a
//! page that never proves its key, one that sends junk or a malformed
//! proof, and more sessions than the limit. Each gets a clear refusal or a
//! closed session, and the daemon keeps serving well-behaved pages.

mod support;

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use peerd::Identity;
use peerd::identity::hosted::challenge;
use peerd::rpc::Code;
use peerd::rpc::wire::codec::{Frame, FrameDecoder, FrameType, Unframed, put_message_frame};
use peerd::rpc::wire::proto::Status;
use peerd_daemon::browser::proto::{Challenge, Proof};
use prost::Message;
use serde_json::Value;
use support::daemon::{Daemon, http_get, wait_for};
use web_transport_quinn::{RecvStream, SendStream, Session};

fn start_daemon(dir: &std::path::Path, extra: &[&str]) -> Daemon {
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
fn info(daemon: &Daemon) -> (url::Url, Vec<Vec<u8>>) {
    let response = http_get(daemon.metrics.unwrap(), "/browser");
    let body = response.split_once("\r\n\r\n").unwrap().1;
    let info: Value = serde_json::from_str(body).unwrap();
    let hashes = info["certificate_hashes"].as_array().unwrap();
    let hashes = hashes.iter().map(|h| unhex(h.as_str().unwrap())).collect();
    (info["url"].as_str().unwrap().parse().unwrap(), hashes)
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// A session with its control stream open and the challenge read.
struct Page {
    session: Session,
    send: SendStream,
    recv: RecvStream,
    input: Unframed,
    challenge: Challenge,
}

async fn open(daemon: &Daemon) -> Result<Page, String> {
    let (url, hashes) = info(daemon);
    let client = web_transport_quinn::ClientBuilder::new()
        .with_server_certificate_hashes(hashes)
        .map_err(|e| e.to_string())?;
    let session = client.connect(url).await.map_err(|e| e.to_string())?;
    let (send, recv) = session.open_bi().await.map_err(|e| e.to_string())?;
    let mut page = Page {
        session,
        send,
        recv,
        input: Unframed::default(),
        challenge: Challenge::default(),
    };
    let frame = next(&mut page).await.ok_or("no challenge")?;
    page.challenge = Challenge::decode(frame.payload).map_err(|e| e.to_string())?;
    Ok(page)
}

async fn next(page: &mut Page) -> Option<Frame> {
    let decoder = FrameDecoder::new(64 * 1024);
    loop {
        if let Some(frame) = decoder.decode(&mut page.input).unwrap() {
            return Some(frame);
        }
        let chunk = page.recv.read_chunk(64 * 1024, true).await.ok()??;
        page.input.push(chunk.bytes);
    }
}

fn frame(kind: FrameType, message: &impl Message) -> Bytes {
    let mut out = BytesMut::new();
    put_message_frame(&mut out, kind, message);
    out.freeze()
}

/// A proof by `key` of the page's challenge.
fn proof(page: &Page, key: &Identity) -> Proof {
    let host: [u8; 32] = page.challenge.host[..].try_into().unwrap();
    let nonce: [u8; 32] = page.challenge.nonce[..].try_into().unwrap();
    let hash: [u8; 32] = page.challenge.certificate_hash[..].try_into().unwrap();
    let message = challenge(peerd::NodeId::from_bytes(host), &nonce, &hash);
    Proof {
        node_id: key.node_id().as_bytes().to_vec().into(),
        signature: key.sign(&message).to_vec().into(),
        datagram_services: vec![],
    }
}

/// Sends `bytes` on the control stream; the daemon's verdict.
async fn answer(page: &mut Page, bytes: Bytes) -> Status {
    page.send.write_all(&bytes).await.unwrap();
    let frame = next(page).await.expect("a status frame");
    assert_eq!(frame.kind, FrameType::Status);
    Status::decode(frame.payload).unwrap()
}

async fn accepted(daemon: &Daemon) -> Page {
    let mut page = open(daemon).await.expect("a session");
    let good = proof(&page, &Identity::generate());
    let status = answer(&mut page, frame(FrameType::Message, &good)).await;
    assert_eq!(status.code, 0, "{status:?}");
    page
}

// Multi-threaded: `wait_for` blocks its thread while it polls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_and_malformed_proofs_get_a_status_and_a_closed_session() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start_daemon(dir.path(), &[]);
    let key = Identity::generate();

    let mut junk = open(&daemon).await.unwrap();
    let status = answer(&mut junk, Bytes::from_static(&[0x09, 0, 0, 0, 1, 0])).await;
    assert_eq!(status.code, Code::Internal as u32, "{status:?}");
    assert!(
        status.message.contains("unknown frame type 0x09"),
        "{status:?}"
    );

    let mut short = open(&daemon).await.unwrap();
    let mut bad = proof(&short, &key);
    bad.node_id.truncate(31);
    let status = answer(&mut short, frame(FrameType::Message, &bad)).await;
    assert_eq!(status.code, Code::InvalidArgument as u32, "{status:?}");

    let mut forged = open(&daemon).await.unwrap();
    let mut other = proof(&forged, &key);
    other.signature = proof(&forged, &Identity::generate()).signature;
    let status = answer(&mut forged, frame(FrameType::Message, &other)).await;
    assert_eq!(status.code, Code::Unauthenticated as u32, "{status:?}");

    for page in [junk, short, forged] {
        let closed = tokio::time::timeout(Duration::from_secs(5), page.session.closed()).await;
        assert!(closed.is_ok(), "the daemon closes a refused session");
    }
    let _still_served = accepted(&daemon).await;
    let metrics = http_get(daemon.metrics.unwrap(), "/metrics");
    assert!(
        metrics.contains("peerd_browser_sessions_refused_total 3\n"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_never_proves_its_key_is_dropped_and_others_connect_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start_daemon(dir.path(), &[]);
    let silent = open(&daemon).await.unwrap();
    let started = Instant::now();

    let good = accepted(&daemon).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "served while one waits"
    );
    let closed = tokio::time::timeout(Duration::from_secs(15), silent.session.closed()).await;
    assert!(closed.is_ok(), "the silent page's session is closed");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(9),
        "after the 10 s handshake timeout: {waited:?}"
    );
    assert!(good.session.close_reason().is_none(), "the good page stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_over_the_limit_are_refused_until_one_ends() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start_daemon(dir.path(), &["--set", "browser.max_sessions=2"]);
    let first = accepted(&daemon).await;
    let _second = accepted(&daemon).await;

    assert!(open(&daemon).await.is_err(), "a third session is refused");
    first.session.close(0, b"done");
    drop(first);
    let admitted = wait_for(Duration::from_secs(5), || {
        daemon.status()["browser"]["pages"] == 1
    });
    assert!(admitted, "the first session ended");
    let _third = accepted(&daemon).await;
    assert_eq!(daemon.status()["browser"]["pages"], 2);
}
