//! The local admin API: JSON requests over a Unix socket that only the
//! daemon's own user (and root) may use. The CLI's client subcommands speak it.

mod calls;
mod client;
mod failure;
mod handlers;
mod protocol;
mod reports;
mod server;

pub use calls::HEX as CALL_HEX;
pub use client::{AdminClient, AdminError};
pub use failure::{Failure, FailureKind};
pub use handlers::AdminContext;
pub use protocol::{Request, Response};
pub use reports::{
    BookReport, BrowserServing, CallReport, ConnectReport, ConnectionFigures, ForgetReport,
    IdReport, NetcheckReport, PeerReport, PingReport, RelayServing, RetryReport, ServiceReport,
    StatusReport,
};
pub use server::{AdminServer, AdminServerError};
