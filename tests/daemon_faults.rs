//! Faults of a real callee process: SIGKILL in the middle of a call, and a
//! restart on the same address with the same identity.

mod support;

use std::time::Duration;

use peerd::connection::TransportConfig;
use peerd::node_service::proto::{EchoRequest, EchoResponse};
use peerd::node_service::{ECHO, ping};
use peerd::{CallOptions, Code, Identity, Node, NodeId, Status};
use support::daemon::Daemon;
use support::{SECOND, eventually, localhost};
use tokio::task::JoinHandle;
use tokio::time::Instant;

const IDLE_TIMEOUT: Duration = Duration::from_secs(3);
const KEEP_ALIVE: Duration = Duration::from_secs(1);

fn caller() -> Node {
    let transport = TransportConfig {
        idle_timeout: IDLE_TIMEOUT,
        keep_alive_interval: KEEP_ALIVE,
        ..TransportConfig::default()
    };
    Node::builder(Identity::generate())
        .listen(localhost(1))
        .transport(transport)
        .bind()
        .expect("bind")
}

/// An `Echo` the callee answers after `delay`, running in the background;
/// the call's own timeout is far beyond that.
fn spawn_echo(
    caller: &Node,
    target: NodeId,
    delay: Duration,
) -> JoinHandle<Result<EchoResponse, Status>> {
    let client = caller.client().clone();
    tokio::spawn(async move {
        let request = EchoRequest {
            payload: b"slow echo".to_vec().into(),
            delay_millis: u32::try_from(delay.as_millis()).expect("a test delay"),
        };
        let options = CallOptions::default().with_timeout(delay + 30 * SECOND);
        client.unary(target, ECHO, &request, &options).await
    })
}

/// An `Echo` from a fresh caller to `callee`, answered after `delay`, once
/// the callee has had time to acknowledge the request: ready for a fault.
async fn echo_in_flight(
    callee: &Daemon,
    delay: Duration,
) -> (Node, JoinHandle<Result<EchoResponse, Status>>) {
    let caller = caller();
    caller.addresses().add(callee.id, callee.addr);
    let call = spawn_echo(&caller, callee.id, delay);
    let connected = eventually(5 * SECOND, || {
        caller.manager().connection(callee.id).is_some()
    })
    .await;
    assert!(connected);
    tokio::time::sleep(SECOND / 2).await;
    (caller, call)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callee_killed_mid_call_fails_it_with_unavailable_within_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut callee = Daemon::start(dir.path(), &[]);
    let (_caller, call) = echo_in_flight(&callee, 60 * SECOND).await;
    callee.kill_9();
    let killed = Instant::now();
    let error = call.await.unwrap().expect_err("the callee is gone");
    let took = killed.elapsed();
    println!(
        "SIGKILL mid-call: {:?} after {took:?} (idle timeout {IDLE_TIMEOUT:?}, keep-alive {KEEP_ALIVE:?}): {error}",
        error.code()
    );
    assert_eq!(error.code(), Code::Unavailable, "{error}");
    assert!(took <= IDLE_TIMEOUT + KEEP_ALIVE, "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callee_restarted_on_the_same_address_answers_the_next_call() {
    let dir = tempfile::tempdir().unwrap();
    let mut callee = Daemon::start(dir.path(), &[]);
    let (id, addr) = (callee.id, callee.addr);
    let caller = Node::builder(Identity::generate())
        .listen(localhost(1))
        .bind()
        .unwrap();
    caller.addresses().add(id, addr);
    let options = CallOptions::default().with_timeout(5 * SECOND);
    ping(caller.client(), id, &options)
        .await
        .expect("first call");
    let stale = caller.manager().connection(id).unwrap();
    callee.kill_9();
    let restarted = Daemon::start_at(dir.path(), &addr.to_string(), &[]);
    assert_eq!((restarted.id, restarted.addr), (id, addr));
    let start = Instant::now();
    let result = ping(caller.client(), id, &options).await;
    let took = start.elapsed();
    println!(
        "the first call after the restart: {:?} in {took:?}; the stale connection: {:?}",
        result.as_ref().map(drop),
        stale.quic().close_reason()
    );
    result.expect("the next call succeeds");
    assert!(took < SECOND, "{took:?}");
    assert!(stale.is_closed(), "the stale connection died");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_the_callee_saw_is_not_repeated_after_it_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut callee = Daemon::start(dir.path(), &[]);
    // Answered after 2 s: only if the restarted callee ran it again.
    let (_caller, call) = echo_in_flight(&callee, 2 * SECOND).await;
    callee.kill_9();
    let _restarted = Daemon::start_at(dir.path(), &callee.addr.to_string(), &[]);
    let error = call
        .await
        .unwrap()
        .expect_err("the call ran on the old callee: not sent again");
    println!("a seen call after the callee restarted: {error}");
    assert_eq!(error.code(), Code::Unavailable, "{error}");
}
