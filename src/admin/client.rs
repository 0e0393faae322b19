//! The admin API's client, used by the CLI's subcommands.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::failure::FailureKind;
use super::protocol::{Request, Response};

/// Longer than the daemon's own bound on calls to other nodes.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// How much longer than the work it asked for a client waits for the answer.
const ANSWER_MARGIN: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(
        "no daemon is listening on {0} (is `peerd run` running? \
         --admin-socket or PEERD_ADMIN_SOCKET selects another daemon)"
    )]
    NotRunning(PathBuf),
    #[error(
        "permission denied on the admin socket {0}: run as the daemon's user or root, or as a member of its admin.group"
    )]
    PermissionDenied(PathBuf),
    #[error("admin socket {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("the daemon did not answer within {0:?}")]
    Timeout(Duration),
    #[error("unexpected answer from the daemon: {0}")]
    Protocol(String),
    /// The daemon answered the request with an error.
    #[error("{message}")]
    Failed { kind: FailureKind, message: String },
}

pub struct AdminClient {
    path: PathBuf,
    answer_timeout: Duration,
}

impl AdminClient {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            answer_timeout: ANSWER_TIMEOUT,
        }
    }

    /// Waits up to `work` plus a margin for answers: for requests that may
    /// take the daemon that long (a call with a longer deadline).
    pub fn answer_within(mut self, work: Duration) -> Self {
        self.answer_timeout = self.answer_timeout.max(work + ANSWER_MARGIN);
        self
    }

    pub async fn request_as<T: DeserializeOwned>(
        &self,
        request: &Request,
    ) -> Result<T, AdminError> {
        let value = self.request(request).await?;
        serde_json::from_value(value).map_err(|e| AdminError::Protocol(e.to_string()))
    }

    pub async fn request(&self, request: &Request) -> Result<serde_json::Value, AdminError> {
        match tokio::time::timeout(self.answer_timeout, self.exchange(request)).await {
            Ok(Ok(Response::Ok { result })) => Ok(result),
            Ok(Ok(Response::Error { message, .. })) if message.starts_with("permission denied") => {
                Err(AdminError::PermissionDenied(self.path.clone()))
            }
            Ok(Ok(Response::Error { message, kind })) => Err(AdminError::Failed { kind, message }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(AdminError::Timeout(self.answer_timeout)),
        }
    }

    async fn exchange(&self, request: &Request) -> Result<Response, AdminError> {
        let mut stream = UnixStream::connect(&self.path)
            .await
            .map_err(|e| self.connect_error(e))?;
        let mut line =
            serde_json::to_vec(request).map_err(|e| AdminError::Protocol(e.to_string()))?;
        line.push(b'\n');
        // A daemon that refuses us answers without reading the request, so
        // the write may fail while its answer waits to be read.
        let written = stream.write_all(&line).await;
        let mut answer = String::new();
        let read = BufReader::new(stream).read_line(&mut answer).await;
        if answer.is_empty() {
            written.and(read).map_err(|e| self.io_error(e))?;
        }
        serde_json::from_str(&answer).map_err(|e| AdminError::Protocol(format!("{e}: {answer:?}")))
    }

    fn connect_error(&self, error: io::Error) -> AdminError {
        match error.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                AdminError::NotRunning(self.path.clone())
            }
            io::ErrorKind::PermissionDenied => AdminError::PermissionDenied(self.path.clone()),
            _ => self.io_error(error),
        }
    }

    fn io_error(&self, source: io::Error) -> AdminError {
        AdminError::Io {
            path: self.path.clone(),
            source,
        }
    }
}
