//! The load generator behind `peerd bench`.
