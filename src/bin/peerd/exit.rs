//! Exit codes, and how a failure is worded on stderr. Scripts branch on the
//! code; `--help` and the README list them.

use std::process::ExitCode;

use peerd_daemon::admin::{AdminError, FailureKind};

/// A command line that does not make sense (clap's own errors exit 2 too).
pub const USAGE: u8 = 2;
/// No daemon answers on the admin socket.
pub const NOT_RUNNING: u8 = 3;
/// The node could not be reached: no address answered, or none in time.
pub const UNREACHABLE: u8 = 4;
/// The node answered with an error status.
pub const REMOTE: u8 = 5;
/// The configuration is invalid (EX_CONFIG).
pub const CONFIG: u8 = 78;

/// The table `--help` ends with.
pub const HELP: &str = "\
Exit codes:
  0   success
  1   any other failure
  2   usage: a bad argument or request
  3   no daemon is running on the admin socket
  4   the node could not be reached
  5   the node answered with an error status
  78  the configuration is invalid";

/// A bad argument, found before anything was asked of the daemon.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// Prints `error` and returns its exit code.
pub fn fail(error: &anyhow::Error) -> ExitCode {
    eprintln!("peerd: {}", wording(error));
    ExitCode::from(code(error))
}

fn code(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<Usage>().is_some() {
        return USAGE;
    }
    match error.downcast_ref::<AdminError>() {
        Some(AdminError::NotRunning(_)) => NOT_RUNNING,
        Some(AdminError::Failed { kind, .. }) => match kind {
            FailureKind::Invalid => USAGE,
            FailureKind::Unreachable => UNREACHABLE,
            FailureKind::Remote => REMOTE,
            FailureKind::Other => 1,
        },
        _ => 1,
    }
}

/// The error and its causes, each said once: many errors already include
/// their source's message, which `{:#}` would repeat.
fn wording(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let os = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        let expected = format!("starting: cannot bind UDP 127.0.0.1:1: {os}");
        let error = peerd::connection::BindError::Socket {
            addr: "127.0.0.1:1".parse().unwrap(),
            source: os,
        };
        let error = anyhow::Error::new(error).context("starting");
        assert_eq!(wording(&error), expected);
    }

    #[test]
    fn each_failure_has_its_code() {
        let failed = |kind| {
            anyhow::Error::new(AdminError::Failed {
                kind,
                message: String::new(),
            })
        };
        assert_eq!(code(&failed(FailureKind::Unreachable)), UNREACHABLE);
        assert_eq!(code(&failed(FailureKind::Remote)), REMOTE);
        assert_eq!(code(&failed(FailureKind::Invalid)), USAGE);
        assert_eq!(code(&anyhow::Error::new(Usage("x".into()))), USAGE);
        let gone = AdminError::NotRunning("/run/peerd/admin.sock".into());
        assert_eq!(code(&anyhow::Error::new(gone)), NOT_RUNNING);
    }
}
