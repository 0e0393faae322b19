//! The caller's own deadlines, against a callee that takes every call and
//! never answers (so no deadline enforced by the callee can end them).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use peerd::connection::{IncomingStream, StreamHandler};
use peerd::node_service::ECHO;
use peerd::node_service::proto::{EchoRequest, EchoResponse};
use peerd::{CallOptions, Code, Node, NodeId, Status};
use support::manager::ManagerNode;
use support::node::bind_node;
use support::within;
use tokio::time::Instant;

const METHOD: &str = "test.v1.Test/Echo";
/// How late a deadline may fire on a busy test machine.
const SLACK: Duration = Duration::from_millis(700);
/// Beyond this a call's deadline was missed altogether.
const LIMIT: Duration = Duration::from_secs(10);

/// Keeps every stream open, unanswered, for as long as it lives.
#[derive(Default)]
struct SilentCallee(Mutex<Vec<IncomingStream>>);

impl StreamHandler for SilentCallee {
    fn handle_stream(&self, stream: IncomingStream) {
        self.0.lock().unwrap().push(stream);
    }
}

/// Cancels the silent callee's tasks with the test.
struct Silent(ManagerNode<SilentCallee>);

impl Drop for Silent {
    fn drop(&mut self) {
        self.0.cancel.cancel();
    }
}

fn silent_callee() -> Silent {
    Silent(ManagerNode::serving(SilentCallee::default()))
}

/// A caller, and a silent callee it knows the address of.
fn caller_and_silent_callee() -> (Node, Silent) {
    let (caller, callee) = (bind_node(), silent_callee());
    caller.addresses().add(callee.0.id(), callee.0.addr);
    (caller, callee)
}

async fn unary_within(caller: &Node, callee: NodeId, timeout: Duration) -> (Status, Duration) {
    let options = CallOptions::default().with_timeout(timeout);
    let request = EchoRequest::default();
    let started = Instant::now();
    let call = caller
        .client()
        .unary::<_, EchoResponse>(callee, METHOD, &request, &options);
    let result = within(LIMIT, call).await;
    (result.unwrap_err(), started.elapsed())
}

fn assert_ended_at_deadline(status: &Status, took: Duration, timeout: Duration) {
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status}");
    assert!(took >= timeout, "ended after {took:?}, before {timeout:?}");
    assert!(
        took < timeout + SLACK,
        "ended after {took:?}, timeout {timeout:?}"
    );
}

#[tokio::test]
async fn a_unary_call_nobody_answers_ends_at_its_deadline() {
    let (caller, callee) = caller_and_silent_callee();
    let timeout = Duration::from_millis(300);
    let (status, took) = unary_within(&caller, callee.0.id(), timeout).await;
    assert_ended_at_deadline(&status, took, timeout);
    assert!(status.message().contains(METHOD), "{status}");
}

/// The shorter deadlines start last: each must still end on time, not wait
/// behind the longer ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_flight_each_end_at_their_own_deadline() {
    let (caller, callee) = caller_and_silent_callee();
    let (caller, target) = (Arc::new(caller), callee.0.id());
    let timeouts = [1_500, 1_000, 500, 250].map(Duration::from_millis);
    let calls = timeouts.map(|timeout| {
        let caller = caller.clone();
        tokio::spawn(async move { unary_within(&caller, target, timeout).await })
    });
    for (call, timeout) in calls.into_iter().zip(timeouts) {
        let (status, took) = call.await.unwrap();
        assert_ended_at_deadline(&status, took, timeout);
    }
}

#[tokio::test]
async fn a_streaming_call_nobody_answers_ends_at_its_deadline() {
    let (caller, callee) = caller_and_silent_callee();
    let timeout = Duration::from_millis(400);
    let options = CallOptions::default().with_timeout(timeout);
    let started = Instant::now();
    let mut call = caller
        .client()
        .server_streaming::<_, EchoResponse>(
            callee.0.id(),
            METHOD,
            &EchoRequest::default(),
            &options,
        )
        .await
        .unwrap();
    let status = within(LIMIT, call.message()).await.unwrap_err();
    assert_ended_at_deadline(&status, started.elapsed(), timeout);
}

/// Calls that ended in time leave nothing behind that delays a later one.
#[tokio::test]
async fn after_many_answered_calls_a_silent_one_still_ends_at_its_deadline() {
    let caller = bind_node();
    let answering = bind_node();
    caller
        .addresses()
        .add(answering.id(), answering.local_addr());
    let ping = CallOptions::default().with_timeout(Duration::from_secs(10));
    for _ in 0..2_000 {
        let request = EchoRequest::default();
        let answered: Result<EchoResponse, _> = caller
            .client()
            .unary(answering.id(), ECHO, &request, &ping)
            .await;
        answered.unwrap();
    }
    let callee = silent_callee();
    caller.addresses().add(callee.0.id(), callee.0.addr);
    let timeout = Duration::from_millis(300);
    let (status, took) = unary_within(&caller, callee.0.id(), timeout).await;
    assert_ended_at_deadline(&status, took, timeout);
}
