//! Hostile pages, played by a WebTransport client in Rust (no browser): a
//! page that never proves its key, one that sends junk or a malformed
//! proof, and more sessions than the limit. Each gets a clear refusal or a
//! closed session, and the daemon keeps serving well-behaved pages.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use peerd::Identity;
use peerd::rpc::Code;
use peerd::rpc::wire::codec::FrameType;
use support::daemon::{http_get, wait_for};
use support::page::{accepted, answer, frame, open, proof, prove, start_daemon};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_connects_again_replaces_its_session_and_takes_its_datagram_services() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start_daemon(dir.path(), &[]);
    let key = Identity::generate();
    let mut first = open(&daemon).await.unwrap();
    assert_eq!(
        prove(&mut first, &key, &["demo.Page.Datagrams"]).await.code,
        0
    );

    let mut again = open(&daemon).await.unwrap();
    let status = prove(&mut again, &key, &["demo.Page.Datagrams"]).await;

    assert_eq!(
        status.code, 0,
        "the new session takes the service over: {status:?}"
    );
    let closed = tokio::time::timeout(Duration::from_secs(5), first.session.closed()).await;
    assert!(closed.is_ok(), "the old session is closed");
    let mut other = open(&daemon).await.unwrap();
    let taken = prove(&mut other, &Identity::generate(), &["demo.Page.Datagrams"]).await;
    assert_eq!(
        taken.code,
        Code::AlreadyExists as u32,
        "another page may not: {taken:?}"
    );
    assert!(
        again.session.close_reason().is_none(),
        "the new session stays"
    );
}
