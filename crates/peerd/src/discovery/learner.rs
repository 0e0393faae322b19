//! Learning from connections: every node we connect with enters the routing
//! table and the address book. A node we dialed is remembered at the
//! address that answered; every node's `Info` answer teaches the addresses
//! it listens on (asked again only once that answer is stale), and for a
//! node that dialed us, the address it came from after those. A node that
//! dialed us and lists no listen address is a client (a load generator's
//! throwaway identity): it is served over its connection and not remembered.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use super::Discovery;
use super::fresh_answers::FreshAnswers;
use super::routing_table::Contact;
use super::wire::{fill_unspecified, parse_addrs, parse_relays};
use crate::addressing::AddressSource;
use crate::connection::{ConnectionEvent, Direction, EventKind};
use crate::node_service;
use crate::rpc::{CallOptions, StatusOrigin};

/// `Info` questions in flight at once.
const CONCURRENT_INFO: usize = 8;
const INFO_TIMEOUT: Duration = Duration::from_secs(5);
/// A node that reconnects within this long of its last `Info` answer is not
/// asked again: listen addresses rarely change, and every question shares
/// the new connection with the caller's first call.
const INFO_FRESH_FOR: Duration = Duration::from_secs(600);
/// Nodes whose answer is remembered, at most.
const FRESH_ANSWERS_MAX: usize = 4096;

pub(crate) async fn learn_from_connections(discovery: Discovery) {
    let mut events = discovery.inner.manager.subscribe();
    let questions = Arc::new(Semaphore::new(CONCURRENT_INFO));
    let answers = Arc::new(FreshAnswers::new(INFO_FRESH_FOR, FRESH_ANSWERS_MAX));
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
        if event.direction == Direction::Outbound {
            remember(
                &discovery,
                &event,
                &[event.remote_address],
                AddressSource::Connection,
            );
        }
        if answers.is_fresh(event.node, Instant::now()) {
            continue;
        }
        if let Ok(permit) = questions.clone().try_acquire_owned() {
            let discovery_for_task = discovery.clone();
            let answers = answers.clone();
            discovery.spawn(async move {
                if ask_info(&discovery_for_task, &event).await {
                    answers.record(event.node, Instant::now());
                }
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
    discovery.inner.addresses.learn(event.node, addrs, source);
    discovery.saw(Contact {
        node: event.node,
        addrs: addrs.to_vec(),
        relays: Vec::new(),
    });
}

/// Asks the peer for its listen addresses; true if it answered. A node
/// that dialed us is also remembered where it came from, where a reply
/// reaches it (its NAT's mapping, for one behind NAT), after the addresses
/// it lists: if it lists any (else it is a client), or if it refuses Info
/// (a node without the node service may still listen where it dialed from,
/// as peerd nodes do).
async fn ask_info(discovery: &Discovery, event: &ConnectionEvent) -> bool {
    let options = CallOptions::default().with_timeout(INFO_TIMEOUT);
    let (listening, relays, answered, refused) =
        match node_service::info(&discovery.inner.client, event.node, &options).await {
            Ok(info) => {
                let listed = parse_addrs(&info.listen_addrs);
                (
                    fill_unspecified(listed, event.remote_address),
                    parse_relays(&info.relays),
                    true,
                    false,
                )
            }
            Err(status) => {
                tracing::debug!(node = %event.node.short(), %status, "no Info from a new peer");
                let refused = status.origin() == StatusOrigin::Callee;
                (Vec::new(), Vec::new(), false, refused)
            }
        };
    let listens = !listening.is_empty();
    if event.direction == Direction::Inbound && (listens || refused) {
        let from = [event.remote_address];
        remember(discovery, event, &from, AddressSource::Connection);
    }
    if listens {
        remember(discovery, event, &listening, AddressSource::Info);
    }
    let book = &discovery.inner.addresses;
    if !relays.is_empty() || (answered && !book.relays(event.node).is_empty()) {
        book.set_relays(event.node, &relays);
        discovery.saw(Contact {
            node: event.node,
            addrs: Vec::new(),
            relays,
        });
    }
    answered
}
