//! Where nodes are: `id@host:port` peer addresses as users write them, the
//! relays that reach nodes behind NAT, and the address book that remembers
//! each node's addresses with where they were learned. Below rpc, which dials through it, and discovery, which
//! fills it.

mod address_book;
mod peer_addr;
mod relay_addr;

pub use address_book::{AddressBook, AddressSource, MAX_ADDRESSES_PER_NODE, MAX_NODES, PeerEntry};
pub use peer_addr::{ParsePeerAddrError, PeerAddr};
pub use relay_addr::{RelayAddr, RelayList};
