//! The pages connected to this daemon, by node id: where a call for a
//! hosted page is sent.

use std::sync::Arc;

use dashmap::DashMap;
use peerd::NodeId;
use peerd::identity::hosted::HostedProof;
use tokio::sync::Semaphore;
use web_transport_quinn::Session;

/// One page whose proof verified, while its session lasts.
pub struct Page {
    pub proof: HostedProof,
    pub session: Session,
    /// Calls from other nodes to the page at once.
    pub calls: Arc<Semaphore>,
}

impl Page {
    pub fn id(&self) -> NodeId {
        self.proof.agent
    }
}

/// A page that connects again replaces its older session.
#[derive(Clone, Default)]
pub struct Pages {
    by_id: Arc<DashMap<NodeId, Arc<Page>>>,
}

impl Pages {
    /// Adds `page`, returning the session it replaces.
    pub fn insert(&self, page: Arc<Page>) -> Option<Arc<Page>> {
        self.by_id.insert(page.id(), page)
    }

    /// Removes `page`, unless a newer session of it replaced it already.
    pub fn remove(&self, page: &Arc<Page>) {
        self.by_id
            .remove_if(&page.id(), |_, held| Arc::ptr_eq(held, page));
    }

    pub fn get(&self, id: NodeId) -> Option<Arc<Page>> {
        self.by_id.get(&id).map(|page| page.clone())
    }
}
