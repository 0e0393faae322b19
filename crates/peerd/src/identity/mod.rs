//! Who a node is: its Ed25519 key pair, the `NodeId` derived from it, the
//! key file that keeps it across restarts, and the proofs of agents a node
//! hosts.

mod base32;
mod hex;
pub mod hosted;
mod key_file;
mod keypair;
mod node_id;

pub use hex::to_hex;
pub use key_file::{KeyFileError, load_or_create_key, read_key, write_new_key};
pub use keypair::{Identity, IdentityError};
pub use node_id::{NodeId, ParseNodeIdError};
