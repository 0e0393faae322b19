//! Datagrams between pages and nodes (docs/protocol.md §11.4). A page's
//! WebTransport datagram names the node it is for; the daemon sends it on
//! as a node datagram (§3.2) from itself. A node's datagram for a service
//! a page subscribed to is passed to the page with its sender's id. Nothing
//! waits: what does not fit is dropped and counted.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use peerd::NodeId;
use peerd::connection::{Datagram, DatagramError};
use peerd::rpc::{Code, Status};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::handshake::Accepted;
use super::metrics::{Direction, Fate};
use super::pages::Page;

/// A page's datagram, parsed: `node id (32) ‖ u8 N ‖ service (N) ‖ message`.
#[derive(Debug, PartialEq, Eq)]
pub struct Addressed<'a> {
    pub node: NodeId,
    pub service: &'a str,
    pub message: &'a [u8],
}

/// The same layout, whichever way: a node id, then the service, then the message.
pub fn parse(datagram: &[u8]) -> Option<Addressed<'_>> {
    let (node, rest) = datagram.split_first_chunk::<32>()?;
    let (&len, rest) = rest.split_first()?;
    let len = usize::from(len);
    if len == 0 || rest.len() < len {
        return None;
    }
    let service = std::str::from_utf8(&rest[..len]).ok()?;
    Some(Addressed {
        node: NodeId::from_bytes(*node),
        service,
        message: &rest[len..],
    })
}

pub fn encode(node: NodeId, service: &str, message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(33 + service.len() + message.len());
    out.put_slice(node.as_bytes());
    out.put_u8(service.len() as u8);
    out.put_slice(service.as_bytes());
    out.put_slice(message);
    out.freeze()
}

/// The queues of the services a page takes datagrams for.
pub struct Subscriptions(Vec<(String, mpsc::Receiver<Datagram>)>);

/// Subscribes the page's services on the node, each with its own bounded
/// queue. A service one subscriber here has already is refused.
pub fn subscribe(shared: &Shared, accepted: &Accepted) -> Result<Subscriptions, Status> {
    let manager = shared.node.manager();
    accepted
        .datagram_services
        .iter()
        .map(|service| {
            let queue = manager
                .subscribe_datagrams(service, shared.settings.datagram_queue)
                .map_err(|e: DatagramError| Status::new(Code::AlreadyExists, e.to_string()))?;
            Ok((service.clone(), queue))
        })
        .collect::<Result<_, _>>()
        .map(Subscriptions)
}

/// Passes each subscribed service's datagrams to the page until `cancel`.
pub fn pass_to_page(
    shared: &Arc<Shared>,
    page: &Arc<Page>,
    subscriptions: Subscriptions,
    cancel: CancellationToken,
) {
    for (service, mut queue) in subscriptions.0 {
        let (metrics, page, cancel) = (shared.metrics.clone(), page.clone(), cancel.clone());
        shared.tasks.spawn(async move {
            loop {
                let datagram = tokio::select! {
                    () = cancel.cancelled() => return,
                    datagram = queue.recv() => match datagram {
                        Some(datagram) => datagram,
                        None => return,
                    },
                };
                let bytes = encode(datagram.from, &service, &datagram.payload);
                let fate = match page.session.send_datagram(bytes) {
                    Ok(()) => Fate::Forwarded,
                    Err(_) => Fate::Dropped,
                };
                metrics.datagram(Direction::ToPage, fate);
            }
        });
    }
}

/// Sends a page's datagram on to the node it names, over the connection
/// the daemon has to it.
pub fn pass_from_page(shared: &Shared, datagram: Bytes) {
    let sent = parse(&datagram).map(|to| {
        shared
            .node
            .manager()
            .send_datagram(to.node, to.service, to.message)
    });
    let fate = match sent {
        Some(Ok(())) => Fate::Forwarded,
        _ => Fate::Dropped,
    };
    shared.metrics.datagram(Direction::FromPage, fate);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_names_its_node_then_its_service() {
        let node = NodeId::from_bytes([5; 32]);
        let bytes = encode(node, "demo.Page", b"hello");
        assert_eq!(bytes.len(), 32 + 1 + 9 + 5);
        let parsed = parse(&bytes).unwrap();
        assert_eq!(
            parsed,
            Addressed {
                node,
                service: "demo.Page",
                message: b"hello"
            }
        );
    }

    #[test]
    fn short_or_unnamed_datagrams_do_not_parse() {
        let node = [5; 32];
        for bad in [
            &node[..31],
            &[&node[..], &[0]].concat(),
            &[&node[..], &[4, b'a']].concat(),
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        let not_utf8 = [&node[..], &[1, 0xff]].concat();
        assert_eq!(parse(&not_utf8), None);
    }
}
