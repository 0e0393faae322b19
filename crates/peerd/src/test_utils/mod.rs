//! Tools for testing peerd, and applications built on it, under hostile
//! conditions; compiled only with the `test-utils` feature.
//!
//! - [`FaultySocket`]: a UDP socket that loses, delays, reorders and
//!   blackholes datagrams on purpose, for a [`crate::NodeBuilder::socket`].
//! - [`fuzz`]: the bodies of the fuzz targets in `fuzz/`, shared with the
//!   test that replays their corpora on the stable toolchain.

mod faulty_socket;
pub mod fuzz;
mod rng;

pub use faulty_socket::{FaultStats, Faults, FaultySocket};
pub use rng::SplitMix64;
