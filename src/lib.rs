//! The peerd daemon: everything the `peerd` binary is besides the library
//! (`peerd`), which it runs as a [`peerd::Node`].
//!
//! # Layout
//! Modules in layer order, lowest first; each uses only those above it in
//! this list (and the library):
//! - [`local`]: what the local listeners share: connection slots idle
//!   clients cannot exhaust, the user the daemon runs as, and who besides
//!   it may use them.
//! - [`gateway`]: the agent gateway, gRPC on a Unix socket through which
//!   local programs call other nodes and expose their own services.
//! - [`browser`]: browser agents: web pages on WebTransport that prove
//!   their key and call nodes, and are called, through this daemon.
//! - [`config`]: the layered configuration (defaults < TOML < `PEERD_*`
//!   environment < flags), converted into the library's config structs.
//! - [`metrics`]: the node's metrics aggregated for Prometheus, and the HTTP
//!   listener that serves them with the health probes.
//! - [`admin`]: the local admin API on a Unix socket, and its client.
//! - [`bench`]: the load generator behind `peerd bench`.
//! - [`daemon`]: `peerd run`: start-up, the listeners, signals, shutdown.
//!
//! The command line itself (`src/bin/peerd`) parses arguments and calls
//! into these.

// Outside tests the daemon never unwraps (clippy.toml allows it in tests).
#![warn(clippy::unwrap_used)]

pub mod admin;
pub mod bench;
pub mod browser;
pub mod config;
pub mod daemon;
pub mod gateway;
pub mod local;
pub mod metrics;
