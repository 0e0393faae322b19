//! Services every node offers.

pub mod node;
