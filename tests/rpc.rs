//! The RPC layer over real connections: the four call patterns in both
//! directions over one connection, errors and their status codes, deadlines,
//! cancellation, handler limits, and the one-packet unary call.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use peerd::connection::{IncomingStream, StreamHandler, TransportConfig};
use peerd::node_service::proto::{EchoRequest, EchoResponse, PingRequest, PingResponse};
use peerd::node_service::{self as node_service};
use peerd::rpc::wire::codec::{FrameType, put_frame};
use peerd::rpc::{RequestStream, ResponseSink, RpcConfig};
use peerd::{CallContext, CallOptions, Code, Handlers, Identity, Node, NodeBuilder, Status};
use support::frames::{frame_of, header_frame, status_frame, status_of};
use support::manager::{ManagerNode, answer_stream};
use support::node::bind_node;
use support::{SECOND, eventually, localhost, within};
use tokio::sync::{Notify, mpsc};

/// What the test service's handlers report.
#[derive(Default)]
struct ServiceProbe {
    running: AtomicUsize,
    max_running: AtomicUsize,
    started: Notify,
    dropped: Option<mpsc::UnboundedSender<String>>,
}

/// Tells the probe when a handler future is dropped before it completes.
struct DropSignal(Arc<ServiceProbe>, String);

impl Drop for DropSignal {
    fn drop(&mut self) {
        if let Some(dropped) = &self.0.dropped {
            let _ = dropped.send(self.1.clone());
        }
    }
}

/// Work a handler spawned: it outlives the handler and learns of the call's
/// end from its context only.
async fn report_cancellation(probe: Arc<ServiceProbe>, context: CallContext) {
    assert!(!context.is_cancelled());
    context.cancelled().await;
    assert!(context.is_cancelled());
    if let Some(dropped) = &probe.dropped {
        let _ = dropped.send(format!("{}: cancelled", context.method()));
    }
}

fn test_service(probe: Arc<ServiceProbe>) -> Handlers {
    let (forever, slow) = (probe.clone(), probe);
    Handlers::new("test.v1.Test")
        .unary("Echo", |_, request: EchoRequest| async move {
            Ok(EchoResponse {
                payload: request.payload,
            })
        })
        .unary("WhoCalls", |context: CallContext, _: EchoRequest| async move {
            Ok(EchoResponse { payload: context.caller().to_string().into() })
        })
        .server_streaming("Count", |_, request: PingRequest, mut sink: ResponseSink<PingResponse>| async move {
            for i in 0..request.nonce {
                sink.send(&PingResponse { nonce: i, unix_micros: 0 }).await?;
            }
            Ok(())
        })
        .client_streaming("Sum", |_, mut requests: RequestStream<PingRequest>| async move {
            let mut sum = 0;
            while let Some(request) = requests.message().await? {
                sum += request.nonce;
            }
            Ok(PingResponse { nonce: sum, unix_micros: 0 })
        })
        .bidi_streaming(
            "Double",
            |_, mut requests: RequestStream<PingRequest>, mut sink: ResponseSink<PingResponse>| async move {
                while let Some(request) = requests.message().await? {
                    sink.send(&PingResponse { nonce: request.nonce * 2, unix_micros: 0 }).await?;
                }
                Ok(())
            },
        )
        .unary("Forever", move |context: CallContext, _: EchoRequest| {
            let probe = forever.clone();
            async move {
                let _signal = DropSignal(probe.clone(), context.method().to_owned());
                tokio::spawn(report_cancellation(probe.clone(), context.clone()));
                probe.started.notify_one();
                std::future::pending::<Result<EchoResponse, Status>>().await
            }
        })
        .unary("Slow", move |_, _: EchoRequest| {
            let probe = slow.clone();
            async move {
                let now = probe.running.fetch_add(1, Ordering::SeqCst) + 1;
                probe.max_running.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                probe.running.fetch_sub(1, Ordering::SeqCst);
                Ok(EchoResponse::default())
            }
        })
}

fn start(probe: Arc<ServiceProbe>, rpc: RpcConfig) -> Node {
    Node::builder(Identity::generate())
        .listen(localhost(1))
        .rpc(rpc)
        .serve(test_service(probe))
        .bind()
        .expect("bind")
}

/// A node bound on loopback from `builder`, its address known to `caller`.
fn reachable_from(caller: &Node, builder: NodeBuilder) -> Node {
    let node = builder.listen(localhost(1)).bind().expect("bind");
    caller.addresses().add(node.id(), node.local_addr());
    node
}

/// A node serving `service` beside the built-in one, known to `caller`.
fn serving(caller: &Node, service: Handlers) -> Node {
    reachable_from(caller, Node::builder(Identity::generate()).serve(service))
}

fn pong(request: PingRequest) -> Result<PingResponse, Status> {
    Ok(PingResponse {
        nonce: request.nonce,
        unix_micros: 0,
    })
}

fn pair() -> (Node, Node) {
    let a = start(Arc::default(), RpcConfig::default());
    let b = start(Arc::default(), RpcConfig::default());
    a.addresses().add(b.id(), b.local_addr());
    (a, b)
}

async fn exercise_all_patterns(from: &Node, to: &Node) {
    let client = from.client();
    let options = CallOptions::default().with_timeout(5 * SECOND);
    let who: EchoResponse = client
        .unary(
            to.id(),
            "test.v1.Test/WhoCalls",
            &EchoRequest::default(),
            &options,
        )
        .await
        .unwrap();
    assert_eq!(
        who.payload,
        from.id().to_string().as_bytes(),
        "the callee sees the authenticated caller"
    );

    let mut count = client
        .server_streaming::<_, PingResponse>(
            to.id(),
            "test.v1.Test/Count",
            &PingRequest { nonce: 5 },
            &options,
        )
        .await
        .unwrap();
    let mut seen = Vec::new();
    while let Some(message) = count.message().await.unwrap() {
        seen.push(message.nonce);
    }
    assert_eq!(seen, [0, 1, 2, 3, 4]);

    let mut sum = client
        .client_streaming::<PingRequest, PingResponse>(to.id(), "test.v1.Test/Sum", &options)
        .await
        .unwrap();
    for n in 1..=10 {
        sum.send(&PingRequest { nonce: n }).await.unwrap();
    }
    assert_eq!(sum.response().await.unwrap().nonce, 55);

    let mut double = client
        .bidi_streaming::<PingRequest, PingResponse>(to.id(), "test.v1.Test/Double", &options)
        .await
        .unwrap();
    for n in [3, 7, 11] {
        double.send(&PingRequest { nonce: n }).await.unwrap();
        assert_eq!(
            double.message().await.unwrap().unwrap().nonce,
            n * 2,
            "answers interleave with requests"
        );
    }
    double.close_send().unwrap();
    assert_eq!(double.message().await.unwrap(), None);
}

#[tokio::test]
async fn all_four_patterns_work_both_ways_over_one_connection() {
    let (a, b) = pair();
    exercise_all_patterns(&a, &b).await;
    exercise_all_patterns(&b, &a).await; // B has no address for A: only the reverse connection.
    assert_eq!(a.manager().connections().len(), 1);
    assert_eq!(b.manager().connections().len(), 1);
    assert_eq!(a.manager().stats().dials + b.manager().stats().dials, 1);
}

#[tokio::test]
async fn the_built_in_node_service_answers() {
    let (a, b) = pair();
    let options = CallOptions::default();
    node_service::ping(a.client(), b.id(), &options)
        .await
        .unwrap();
    let info = node_service::info(a.client(), b.id(), &options)
        .await
        .unwrap();
    assert_eq!(info.node_id, b.id().to_string());
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(info.listen_addrs, [b.local_addr().to_string()]);
    assert_eq!(info.observed_addr, a.local_addr().to_string());
    assert!(info.services.contains(&"test.v1.Test".to_owned()));
    assert!(info.services.contains(&"peerd.node.v1.Node".to_owned()));
    let echo: EchoResponse = a
        .client()
        .unary(
            b.id(),
            node_service::ECHO,
            &EchoRequest {
                payload: vec![9; 1000].into(),
                ..Default::default()
            },
            &options,
        )
        .await
        .unwrap();
    assert_eq!(echo.payload.len(), 1000);
}

#[tokio::test]
async fn a_call_longer_than_the_idle_ttl_keeps_its_connection_open() {
    let ttl = Duration::from_millis(300);
    let a = start(Arc::default(), RpcConfig::default());
    let b = reachable_from(
        &a,
        Node::builder(Identity::generate()).transport(TransportConfig {
            connection_idle_ttl: ttl,
            ..TransportConfig::default()
        }),
    );
    let slow_echo = EchoRequest {
        payload: Bytes::from_static(b"slow"),
        delay_millis: (ttl * 4).as_millis() as u32,
    };
    let echo: EchoResponse = within(
        5 * SECOND,
        a.client().unary(
            b.id(),
            node_service::ECHO,
            &slow_echo,
            &CallOptions::default(),
        ),
    )
    .await
    .expect("the callee kept the connection while its handler ran");
    assert_eq!(echo.payload, slow_echo.payload);
}

#[tokio::test]
async fn a_handler_that_panics_fails_its_call_and_the_node_keeps_serving() {
    let fragile =
        Handlers::new("test.v1.Fragile").unary("Ping", |_, request: PingRequest| async move {
            assert_ne!(request.nonce, 13, "a bug in the handler");
            pong(request)
        });
    let a = start(Arc::default(), RpcConfig::default());
    let b = serving(&a, fragile);
    let ping = async |nonce| {
        let request = PingRequest { nonce };
        let options = CallOptions::default().with_timeout(5 * SECOND);
        a.client()
            .unary::<_, PingResponse>(b.id(), "test.v1.Fragile/Ping", &request, &options)
            .await
    };
    let failed = ping(13).await.expect_err("the panicking call failed");
    assert_ne!(failed.code(), Code::DeadlineExceeded, "{failed}");
    let connection = a.manager().connection(b.id()).unwrap();
    for nonce in [1, 2] {
        assert_eq!(ping(nonce).await.unwrap().nonce, nonce);
    }
    assert!(a.manager().connection(b.id()).unwrap().same_as(&connection));
}

/// Handlers that run long before their first await (CPU work, simulated by
/// blocking the thread) on one connection still run side by side on a
/// multi-thread runtime: once such first polls outnumber short ones, calls
/// get tasks of their own instead of their first poll on the connection's
/// task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_whose_first_poll_runs_long_still_run_side_by_side() {
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let busy = Handlers::new("test.v1.Busy").unary("Work", {
        let (running, most) = (running.clone(), most.clone());
        move |_, request: PingRequest| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(20));
            running.fetch_sub(1, Ordering::SeqCst);
            async move { pong(request) }
        }
    });
    let a = start(Arc::default(), RpcConfig::default());
    let b = serving(&a, busy);
    let call = |nonce| {
        let client = a.client().clone();
        let b = b.id();
        async move {
            let options = CallOptions::default().with_timeout(10 * SECOND);
            client
                .unary::<_, PingResponse>(b, "test.v1.Busy/Work", &PingRequest { nonce }, &options)
                .await
                .unwrap()
        }
    };
    let calls: Vec<_> = (0..40).map(|nonce| tokio::spawn(call(nonce))).collect();
    for call in calls {
        call.await.unwrap();
    }
    assert_eq!(most.load(Ordering::SeqCst), 2, "calls ran one at a time");
}

#[tokio::test]
async fn an_unknown_method_is_unimplemented() {
    let (a, b) = pair();
    let err = a
        .client()
        .unary::<_, EchoResponse>(
            b.id(),
            "test.v1.Test/Nope",
            &EchoRequest::default(),
            &CallOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    assert!(err.message().contains("test.v1.Test/Nope"), "{err}");
}

/// Sends raw bytes on a fresh stream of A's connection to B and returns the
/// status B answers with.
async fn raw_call(a: &Node, b: &Node, bytes: &[u8]) -> Status {
    let conn = a
        .manager()
        .get_or_connect(b.id(), &[b.local_addr()])
        .await
        .unwrap();
    let (mut send, mut recv, _guard) = conn.open_stream().await.unwrap();
    send.write_all(bytes).await.unwrap();
    let _ = send.finish();
    let answer = within(5 * SECOND, recv.read_to_end(1 << 16)).await.unwrap();
    status_of(&answer).expect("no status frame in the answer")
}

#[tokio::test]
async fn a_frame_declaring_4_gib_is_resource_exhausted() {
    let (a, b) = pair();
    let mut bytes = header_frame("test.v1.Test/Echo");
    bytes.put_u8(FrameType::Message as u8);
    bytes.put_u32(u32::MAX);
    let status = raw_call(&a, &b, &bytes).await;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status}");
    assert!(status.message().contains("4294967295"), "{status}");
}

#[tokio::test]
async fn malformed_frames_get_a_clear_status_and_the_connection_keeps_working() {
    let (a, b) = pair();
    let mut unknown_type = header_frame("test.v1.Test/Echo");
    unknown_type.put_slice(&[0x09, 0, 0, 0, 0]);
    let status = raw_call(&a, &b, &unknown_type).await;
    assert_eq!(status.code(), Code::Internal);
    assert!(
        status.message().contains("unknown frame type 0x09"),
        "{status}"
    );

    let mut garbage_header = BytesMut::new();
    put_frame(&mut garbage_header, FrameType::Header, &[0xff, 0xff, 0xff]);
    let status = raw_call(&a, &b, &garbage_header).await;
    assert_eq!(status.code(), Code::Internal);
    assert!(
        status.message().contains("malformed request header"),
        "{status}"
    );

    let mut method_not_utf8 = BytesMut::new();
    // Field 1 (method), length-delimited, two bytes that are not UTF-8.
    put_frame(
        &mut method_not_utf8,
        FrameType::Header,
        &[0x0a, 2, 0xff, 0xfe],
    );
    let status = raw_call(&a, &b, &method_not_utf8).await;
    assert_eq!(status.code(), Code::Internal);
    assert!(
        status.message().contains("the method is not UTF-8"),
        "{status}"
    );

    let mut bad_request = header_frame("test.v1.Test/Echo");
    put_frame(&mut bad_request, FrameType::Message, &[0x0a, 0x05, 1]);
    let status = raw_call(&a, &b, &bad_request).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");

    let truncated = &header_frame("test.v1.Test/Echo")[..3];
    assert_eq!(raw_call(&a, &b, truncated).await.code(), Code::Internal);

    let connection = a.manager().connection(b.id()).unwrap();
    let echo: EchoResponse = a
        .client()
        .unary(
            b.id(),
            "test.v1.Test/Echo",
            &EchoRequest {
                payload: "still fine".into(),
                ..Default::default()
            },
            &CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(echo.payload, "still fine");
    assert!(a.manager().connection(b.id()).unwrap().same_as(&connection));
}

/// A callee that answers every stream with the same bytes, whatever it was
/// asked: a peer that breaks the protocol.
struct CannedCallee(Bytes);

impl StreamHandler for CannedCallee {
    fn handle_stream(&self, stream: IncomingStream) {
        let answer = self.0.clone();
        answer_stream(stream, move |_| answer.to_vec());
    }
}

/// A callee answering `answer`, a node to call it, and the options to.
fn canned(answer: &[u8]) -> (ManagerNode<CannedCallee>, Node, CallOptions) {
    let callee = ManagerNode::serving(CannedCallee(Bytes::copy_from_slice(answer)));
    let caller = bind_node();
    let options = CallOptions::default()
        .with_addr(callee.addr)
        .with_timeout(5 * SECOND);
    (callee, caller, options)
}

/// What a unary call of a node gets from a callee answering `answer`.
async fn unary_answered_with(answer: &[u8]) -> Result<EchoResponse, Status> {
    let (callee, caller, options) = canned(answer);
    let request = EchoRequest::default();
    let answered = caller
        .client()
        .unary(callee.id(), "test.v1.Test/Echo", &request, &options)
        .await;
    callee.cancel.cancel();
    answered
}

#[tokio::test]
async fn a_callee_that_breaks_the_unary_protocol_fails_the_call_with_a_clear_status() {
    let response = EchoResponse {
        payload: "hi".into(),
    };
    let message = frame_of(FrameType::Message, &response);
    let ok = status_frame(Code::Ok, "");
    let answered = unary_answered_with(&[&message[..], &ok].concat()).await;
    assert_eq!(
        answered.unwrap().payload,
        "hi",
        "the script speaks the protocol"
    );

    let broken: [(Vec<u8>, Code, &str); 6] = [
        (
            ok.to_vec(),
            Code::Internal,
            "OK status without a response message",
        ),
        (
            [&message[..], &message, &ok].concat(),
            Code::Internal,
            "answered twice",
        ),
        (
            message.to_vec(),
            Code::Unavailable,
            "ended without a status",
        ),
        (
            header_frame("x.v1.X/Y").to_vec(),
            Code::Internal,
            "sent a request header",
        ),
        (
            vec![0x09, 0, 0, 0, 0],
            Code::Internal,
            "unknown frame type 0x09",
        ),
        (
            [&message[..], &status_frame(Code::NotFound, "gone")].concat(),
            Code::NotFound,
            "gone",
        ),
    ];
    for (answer, code, text) in broken {
        let status = unary_answered_with(&answer).await.expect_err(text);
        assert_eq!(status.code(), code, "{status}");
        assert!(status.message().contains(text), "{status}");
    }
}

#[tokio::test]
async fn a_call_with_an_encoded_request_gets_the_response_bytes_as_sent() {
    let (a, b) = pair();
    let options = CallOptions::default().with_timeout(5 * SECOND);
    let request = EchoRequest {
        payload: "as bytes".into(),
        ..Default::default()
    };
    let answer = a
        .client()
        .unary_encoded(
            b.id(),
            "test.v1.Test/Echo",
            &prost::Message::encode_to_vec(&request),
            &options,
        )
        .await
        .unwrap();
    let response: EchoResponse = prost::Message::decode(answer).unwrap();
    assert_eq!(response.payload, "as bytes");

    // Bytes that are not the method's request reach the handler's decoder.
    let status = a
        .client()
        .unary_encoded(b.id(), "test.v1.Test/Echo", &[0x0a, 0x05], &options)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
}

#[tokio::test]
async fn a_streaming_call_whose_answer_cannot_be_read_keeps_returning_that_error() {
    let good = frame_of(
        FrameType::Message,
        &PingResponse {
            nonce: 7,
            unix_micros: 0,
        },
    );
    // PingResponse's field 1 is a varint: length-delimited, it does not decode.
    let mut bad = BytesMut::new();
    put_frame(&mut bad, FrameType::Message, &[0x0a, 0x00]);
    let answer = [&bad[..], &good, &status_frame(Code::Ok, "")].concat();
    let (callee, caller, options) = canned(&answer);

    let mut call = caller
        .client()
        .server_streaming::<_, PingResponse>(
            callee.id(),
            "test.v1.Test/Count",
            &PingRequest { nonce: 1 },
            &options,
        )
        .await
        .unwrap();
    let first = call.message().await.unwrap_err();
    assert_eq!(first.code(), Code::Internal, "{first}");
    assert_eq!(
        call.message().await,
        Err(first),
        "the call ended there: the message after it is not read"
    );
    callee.cancel.cancel();
}

#[tokio::test]
async fn a_unary_request_that_is_not_exactly_one_message_is_refused() {
    let (a, b) = pair();
    let no_message = header_frame("test.v1.Test/Echo");
    let mut two_messages = header_frame("test.v1.Test/Echo");
    put_frame(&mut two_messages, FrameType::Message, &[]);
    put_frame(&mut two_messages, FrameType::Message, &[]);
    let mut a_status = header_frame("test.v1.Test/Echo");
    put_frame(&mut a_status, FrameType::Status, &[]);
    for (request, reason) in [
        (no_message, "the request has no message"),
        (two_messages, "exactly one message"),
        (a_status, "expected a Message frame, got a Status frame"),
    ] {
        let status = raw_call(&a, &b, &request).await;
        assert_eq!(status.code(), Code::Internal, "{status}");
        assert!(status.message().contains(reason), "{status}");
    }
}

#[tokio::test]
async fn a_huge_timeout_from_the_caller_is_harmless() {
    let (a, b) = pair();
    let header = peerd::rpc::wire::proto::RequestHeader {
        method: "test.v1.Test/Echo".into(),
        timeout_micros: u64::MAX,
        ..Default::default()
    };
    let mut bytes = frame_of(FrameType::Header, &header);
    put_frame(&mut bytes, FrameType::Message, &[]);
    assert_eq!(raw_call(&a, &b, &bytes).await.code(), Code::Ok);
}

fn probed_pair() -> (
    Node,
    Node,
    mpsc::UnboundedReceiver<String>,
    Arc<ServiceProbe>,
) {
    let (dropped, drops) = mpsc::unbounded_channel();
    let probe = Arc::new(ServiceProbe {
        dropped: Some(dropped),
        ..ServiceProbe::default()
    });
    let a = start(Arc::default(), RpcConfig::default());
    let b = start(probe.clone(), RpcConfig::default());
    a.addresses().add(b.id(), b.local_addr());
    (a, b, drops, probe)
}

async fn assert_handler_dropped_and_its_work_cancelled(
    drops: &mut mpsc::UnboundedReceiver<String>,
) {
    let mut reports = vec![
        within(2 * SECOND, drops.recv()).await.unwrap(),
        within(2 * SECOND, drops.recv()).await.unwrap(),
    ];
    reports.sort();
    assert_eq!(
        reports,
        ["test.v1.Test/Forever", "test.v1.Test/Forever: cancelled"]
    );
}

#[tokio::test]
async fn a_passed_deadline_is_deadline_exceeded_and_cancels_the_handler() {
    let (a, b, mut drops, _probe) = probed_pair();
    let options = CallOptions::default().with_timeout(Duration::from_millis(300));
    let start = tokio::time::Instant::now();
    let err = a
        .client()
        .unary::<_, EchoResponse>(
            b.id(),
            "test.v1.Test/Forever",
            &EchoRequest::default(),
            &options,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
    assert!(start.elapsed() < 2 * SECOND);
    assert_handler_dropped_and_its_work_cancelled(&mut drops).await;
    assert!(eventually(SECOND, || b.server().in_flight() == 0).await);
}

#[tokio::test]
async fn dropping_a_call_cancels_its_handler() {
    let (a, b, mut drops, probe) = probed_pair();
    let client = a.client().clone();
    let target = b.id();
    let call = tokio::spawn(async move {
        client
            .unary::<_, EchoResponse>(
                target,
                "test.v1.Test/Forever",
                &EchoRequest::default(),
                &CallOptions::default(),
            )
            .await
    });
    within(5 * SECOND, probe.started.notified()).await;
    call.abort();
    assert_handler_dropped_and_its_work_cancelled(&mut drops).await;
    assert!(eventually(SECOND, || b.server().in_flight() == 0).await);
}

#[tokio::test]
async fn handlers_over_the_limit_wait_for_a_slot() {
    const LIMIT: usize = 4;
    let probe = Arc::new(ServiceProbe::default());
    let a = start(Arc::default(), RpcConfig::default());
    let b = start(
        probe.clone(),
        RpcConfig {
            max_handlers: LIMIT,
            ..RpcConfig::default()
        },
    );
    a.addresses().add(b.id(), b.local_addr());

    let calls = (0..LIMIT + 10).map(|_| {
        let client = a.client().clone();
        let target = b.id();
        tokio::spawn(async move {
            client
                .unary::<_, EchoResponse>(
                    target,
                    "test.v1.Test/Slow",
                    &EchoRequest::default(),
                    &CallOptions::default(),
                )
                .await
        })
    });
    for call in calls.collect::<Vec<_>>() {
        call.await
            .unwrap()
            .expect("calls over the limit wait, then succeed");
    }
    assert_eq!(
        probe.max_running.load(Ordering::SeqCst),
        LIMIT,
        "never more than the limit"
    );
}

#[tokio::test]
async fn a_small_unary_call_is_one_datagram_each_way() {
    const CALLS: u64 = 200;
    let (a, b) = pair();
    let options = CallOptions::default();
    let request = EchoRequest {
        payload: vec![1; 64].into(),
        ..Default::default()
    };
    let call = || {
        a.client()
            .unary::<_, EchoResponse>(b.id(), "test.v1.Test/Echo", &request, &options)
    };
    call().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await; // let the handshake's stragglers settle
    let connection = a.manager().connection(b.id()).unwrap();
    let before = connection.stats();
    for _ in 0..CALLS {
        call().await.unwrap();
    }
    let after = connection.stats();
    let sent = after.udp_tx.datagrams - before.udp_tx.datagrams;
    let received = after.udp_rx.datagrams - before.udp_rx.datagrams;
    println!("{CALLS} calls: {sent} datagrams sent, {received} received");
    assert!(
        sent <= CALLS * 11 / 10,
        "{sent} datagrams sent for {CALLS} calls"
    );
    assert!(
        received <= CALLS * 11 / 10,
        "{received} datagrams received for {CALLS} calls"
    );
}
