//! Learning from connections: every node we connect with, either way, enters
//! the routing table and the address book, and its `Info` answer teaches the
//! addresses it listens on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::sync::broadcast::error::RecvError;

use super::Discovery;
use super::routing_table::Contact;
use super::wire::{fill_unspecified, parse_addrs};
use crate::connection::{ConnectionEvent, EventKind};
use crate::node::AddressSource;
use crate::rpc::CallOptions;
use crate::service::node as node_service;

/// `Info` questions in flight at once.
const CONCURRENT_INFO: usize = 8;
const INFO_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn learn_from_connections(discovery: Discovery) {
    let mut events = discovery.inner.manager.subscribe();
    let questions = Arc::new(Semaphore::new(CONCURRENT_INFO));
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            // Missing some events costs some knowledge, nothing more.
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        };
        if event.kind != EventKind::Connected {
            continue;
        }
        remember(
            &discovery,
            &event,
            &[event.remote_address],
            AddressSource::Connection,
        );
        if let Ok(permit) = questions.clone().try_acquire_owned() {
            let discovery_for_task = discovery.clone();
            discovery.spawn(async move {
                ask_info(&discovery_for_task, &event).await;
                drop(permit);
            });
        }
    }
}

fn remember(
    discovery: &Discovery,
    event: &ConnectionEvent,
    addrs: &[SocketAddr],
    source: AddressSource,
) {
    let inner = &discovery.inner;
    inner.addresses.learn(event.node, addrs, source);
    let contact = Contact {
        node: event.node,
        addrs: addrs.to_vec(),
    };
    let manager = inner.manager.clone();
    inner
        .state
        .table()
        .insert(contact, |old| manager.connection(*old).is_none());
}

async fn ask_info(discovery: &Discovery, event: &ConnectionEvent) {
    let options = CallOptions::default().with_timeout(INFO_TIMEOUT);
    match node_service::info(&discovery.inner.client, event.node, &options).await {
        Ok(info) => {
            let listening =
                fill_unspecified(parse_addrs(&info.listen_addrs), event.remote_address.ip());
            if !listening.is_empty() {
                remember(discovery, event, &listening, AddressSource::Info);
            }
        }
        Err(status) => {
            tracing::debug!(node = %event.node.short(), %status, "no Info from a new peer")
        }
    }
}
