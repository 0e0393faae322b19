//! Hosted agents at the library level (docs/protocol.md §11): a call a host
//! makes with an agent's proof reaches the callee as the agent's, a proof
//! that does not verify runs no handler, and a call for a hosted agent goes
//! to the host's hosted handler.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use peerd::identity::hosted::{self, HostedProof};
use peerd::node_service::proto::{EchoRequest, EchoResponse};
use peerd::rpc::{CallContext, Code, RawRequests, RawResponses};
use peerd::{CallOptions, Handlers, Identity, Node, NodeId, Status};
use prost::Message;
use support::localhost;
use support::node::{Probe, node_on};

/// Answers with who called: `caller host`, the host empty when none.
fn who_service(served: Arc<AtomicUsize>) -> Handlers {
    Handlers::new("test.Who").unary("Ask", move |context: CallContext, _: EchoRequest| {
        let served = served.clone();
        async move {
            served.fetch_add(1, Ordering::SeqCst);
            let host = context.host().map(|h| h.to_string()).unwrap_or_default();
            let payload = format!("{} {host}", context.caller());
            Ok(EchoResponse {
                payload: payload.into(),
            })
        }
    })
}

fn bind(identity: Identity, handlers: Option<Handlers>) -> Node {
    let builder = Node::builder(identity).listen(localhost(1));
    match handlers {
        Some(handlers) => builder.serve(handlers),
        None => builder,
    }
    .bind()
    .expect("bind")
}

fn proof(agent: &Identity, host: NodeId) -> HostedProof {
    let (nonce, certificate_hash) = ([1; 32], [2; 32]);
    HostedProof {
        agent: agent.node_id(),
        nonce,
        certificate_hash,
        signature: agent.sign(&hosted::challenge(host, &nonce, &certificate_hash)),
    }
}

async fn ask(from: &Node, to: &Node, proof: &HostedProof) -> Result<String, Status> {
    let options = CallOptions::default()
        .with_addr(to.local_addr())
        .with_metadata(hosted::METADATA_KEY, proof.to_metadata());
    let request = EchoRequest::default();
    let response: EchoResponse = from
        .client()
        .unary(to.id(), "test.Who/Ask", &request, &options)
        .await?;
    Ok(String::from_utf8(response.payload.to_vec()).expect("utf-8"))
}

#[tokio::test]
async fn a_hosts_call_with_its_agents_proof_reaches_the_callee_as_the_agents() {
    let served = Arc::new(AtomicUsize::new(0));
    let callee = bind(Identity::generate(), Some(who_service(served.clone())));
    let host = bind(Identity::generate(), None);
    let agent = Identity::generate();

    let answer = ask(&host, &callee, &proof(&agent, host.id()))
        .await
        .unwrap();
    assert_eq!(answer, format!("{} {}", agent.node_id(), host.id()));
    assert_eq!(served.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_proof_that_does_not_verify_runs_no_handler() {
    let served = Arc::new(AtomicUsize::new(0));
    let callee = bind(Identity::generate(), Some(who_service(served.clone())));
    let host = bind(Identity::generate(), None);
    let agent = Identity::generate();

    let mut forged = proof(&agent, host.id());
    forged.agent = Identity::generate().node_id();
    let replayed = proof(&agent, Identity::generate().node_id());
    for (what, proof) in [("another key", forged), ("another host", replayed)] {
        let status = ask(&host, &callee, &proof).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{what}: {status}");
        assert!(status.message().contains("does not verify"), "{status}");
    }
    let mut junk = CallOptions::default().with_addr(callee.local_addr());
    junk = junk.with_metadata(hosted::METADATA_KEY, "not.a.proof");
    let status = host
        .client()
        .unary::<_, EchoResponse>(callee.id(), "test.Who/Ask", &EchoRequest::default(), &junk)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status}");
    assert_eq!(served.load(Ordering::SeqCst), 0, "no handler may run");
}

#[tokio::test]
async fn a_call_for_a_hosted_agent_goes_to_the_hosts_hosted_handler() {
    let agent = Identity::generate().node_id();
    let host =
        Node::builder(Identity::generate())
            .listen(localhost(1))
            .hosted(
                move |context: CallContext,
                      mut requests: RawRequests,
                      mut responses: RawResponses| async move {
                    let callee = context.metadata().get(peerd::rpc::CALLEE).cloned();
                    if callee != Some(agent.to_string()) {
                        return Err(Status::not_found("no such agent here"));
                    }
                    let request = requests.message().await?.unwrap_or_default();
                    let mut answer =
                        format!("{} {}:", context.method(), context.caller()).into_bytes();
                    answer.extend_from_slice(&EchoRequest::decode(request).unwrap().payload);
                    let reply = EchoResponse {
                        payload: Bytes::from(answer),
                    };
                    responses.send(&reply.encode_to_vec()).await
                },
            )
            .bind()
            .unwrap();
    let caller = bind(Identity::generate(), None);
    let plain = bind(Identity::generate(), None);
    let reply = greet(&caller, &host, agent).await.unwrap();
    let expected = format!("demo.Page/Greet {}:hi", caller.id());
    assert_eq!(reply.payload, expected.as_bytes());

    let other = Identity::generate().node_id();
    let status = greet(&caller, &host, other).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = greet(&caller, &plain, agent).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status}");
    assert!(status.message().contains("hosts no agents"), "{status}");
}

async fn greet(caller: &Node, to: &Node, agent: NodeId) -> Result<EchoResponse, Status> {
    let request = EchoRequest {
        payload: Bytes::from_static(b"hi"),
        ..Default::default()
    };
    let options = CallOptions::default()
        .with_addr(to.local_addr())
        .for_hosted(agent);
    caller
        .client()
        .unary(to.id(), "demo.Page/Greet", &request, &options)
        .await
}

/// `test.v1.Probe/Hold` from `from`, as `agent` hosted by it if given.
fn hold(from: &Node, to: &Node, agent: Option<&Identity>) -> tokio::task::JoinHandle<Code> {
    let mut options = CallOptions::default()
        .with_addr(to.local_addr())
        .with_timeout(std::time::Duration::from_secs(10));
    if let Some(agent) = agent {
        let proof = proof(agent, from.id());
        options = options.with_metadata(hosted::METADATA_KEY, proof.to_metadata());
    }
    let (client, to) = (from.client().clone(), to.id());
    tokio::spawn(async move {
        let request = EchoRequest::default();
        let answer = client
            .unary::<_, EchoResponse>(to, "test.v1.Probe/Hold", &request, &options)
            .await;
        answer.map_or_else(|status| status.code(), |_| Code::Ok)
    })
}

// Multi-threaded: `wait_for` blocks its thread while it polls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosts_agents_share_its_handler_slots_rather_than_add_to_them() {
    let probe = Arc::new(Probe::default());
    let rpc = peerd::rpc::RpcConfig {
        max_handlers: 2,
        ..Default::default()
    };
    let callee = node_on(localhost(1), Default::default(), rpc, probe.clone());
    let host = bind(Identity::generate(), None);
    let other = bind(Identity::generate(), None);
    let agents = [Identity::generate(), Identity::generate()];
    let held: Vec<_> = agents
        .iter()
        .map(|a| hold(&host, &callee, Some(a)))
        .collect();
    let both =
        support::daemon::wait_for(std::time::Duration::from_secs(5), || probe.running() == 2);
    assert!(both, "the host's two agents hold both slots");

    // The host holds 2 slots and `other` none: one of the host's goes to it.
    let third = hold(&other, &callee, None);
    let served = support::daemon::wait_for(std::time::Duration::from_secs(5), || {
        probe.running_per_caller().get(&other.id()) == Some(&1)
    });
    assert!(served, "the other node's call took a slot of the host's");
    probe.release();
    let mut codes = Vec::new();
    for call in held {
        codes.push(call.await.unwrap());
    }
    codes.sort_by_key(|code| *code as u32);
    assert_eq!(codes, [Code::Ok, Code::ResourceExhausted]);
    assert_eq!(third.await.unwrap(), Code::Ok);
}
