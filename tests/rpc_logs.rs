//! A handler's log lines carry the call's span (caller, method). Alone in
//! its binary: the tracing subscriber it installs is process-wide state
//! (callsite interest is cached for every thread), and tests running beside
//! it in other threads without one could leave the span's callsite
//! disabled for it.

mod support;

use std::sync::{Arc, Mutex};

use peerd::node_service::proto::{PingRequest, PingResponse};
use peerd::{CallOptions, Handlers, Identity, Node};
use support::localhost;
use support::node::bind_node;

/// Log output kept for the test to read.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn at_debug_level_a_handlers_logs_carry_the_calls_caller_and_method() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _scoped = tracing::subscriber::set_default(subscriber);
    let service =
        Handlers::new("test.v1.Logs").unary("Note", |_, request: PingRequest| async move {
            tracing::info!("handling the note");
            Ok(PingResponse {
                nonce: request.nonce,
                unix_micros: 0,
            })
        });
    let a = bind_node();
    let b = Node::builder(Identity::generate())
        .listen(localhost(1))
        .serve(service)
        .bind()
        .unwrap();
    a.addresses().add(b.id(), b.local_addr());
    let request = PingRequest { nonce: 1 };
    a.client()
        .unary::<_, PingResponse>(
            b.id(),
            "test.v1.Logs/Note",
            &request,
            &CallOptions::default(),
        )
        .await
        .unwrap();
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .find(|line| line.contains("handling the note"))
        .expect("the handler's event is logged");
    let span = format!("call{{caller={:?} method=\"test.v1.Logs/Note\"}}", a.id());
    assert!(line.contains(&span), "{span} not in {line}");
}
