//! The metrics listener: `/metrics` in the Prometheus text format, `/livez`
//! (the process is up), `/readyz` (it takes calls) and, with browser agents
//! on, `/browser` (where pages connect, docs/browser.md). One request per TCP
//! connection, bounded in size, time and number of connections at once; a
//! new connection takes the slot of the oldest, so idle ones cannot starve
//! the probes.

mod message;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Metrics;
use super::exposition::CONTENT_TYPE;
use crate::config::ListenerLimits;
use crate::local::Slots;
use message::{MAX_REQUEST_HEAD, Path, Response, head_end, parse};

/// After a failed accept (out of descriptors), before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum MetricsServerError {
    #[error("cannot listen for metrics on {addr} (set metrics.listen, or \"off\"): {source}")]
    Bind { addr: SocketAddr, source: io::Error },
}

/// Answers /readyz: whether the node takes calls now.
pub type Readiness = Arc<dyn Fn() -> bool + Send + Sync>;

/// Answers /browser: the JSON a page reads before it connects.
pub type BrowserInfo = Arc<dyn Fn() -> String + Send + Sync>;

pub struct MetricsServer {
    listener: TcpListener,
    addr: SocketAddr,
    limits: ListenerLimits,
    browser: Option<BrowserInfo>,
}

/// What the answers come from.
#[derive(Clone)]
struct Sources {
    metrics: Metrics,
    ready: Readiness,
    browser: Option<BrowserInfo>,
}

impl MetricsServer {
    pub async fn bind(addr: SocketAddr) -> Result<Self, MetricsServerError> {
        let bind_error = |source| MetricsServerError::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        Ok(Self {
            listener,
            addr,
            limits: ListenerLimits::default(),
            browser: None,
        })
    }

    /// Connections at once (a new one takes the slot of the oldest: the
    /// answer is made at once, so every connection waits on its client), and
    /// the time a client has to send its request head and to take the answer.
    pub fn with_limits(self, limits: ListenerLimits) -> Self {
        Self { limits, ..self }
    }

    /// Serves `/browser` from `info`.
    pub fn with_browser_info(self, info: BrowserInfo) -> Self {
        Self {
            browser: Some(info),
            ..self
        }
    }

    /// The bound address (with the port the OS picked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `cancel`, which also drops the connections being served.
    pub async fn serve(self, metrics: Metrics, ready: Readiness, cancel: CancellationToken) {
        let slots = Slots::new(self.limits.max_connections, 0);
        let connections = TaskTracker::new();
        let sources = Sources {
            metrics,
            ready,
            browser: self.browser,
        };
        loop {
            let accepted = tokio::select! {
                () = cancel.cancelled() => break,
                accepted = self.listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("metrics listener accept failed: {e}");
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                    }
                }
            };
            let slot = slots.admit();
            let (sources, cancel) = (sources.clone(), cancel.clone());
            let timeout = self.limits.timeout;
            connections.spawn(async move {
                // A client that is slow to send or read must not hold up shutdown.
                tokio::select! {
                    () = cancel.cancelled() => {}
                    () = slot.evicted() => {}
                    () = serve_connection(stream, &sources, timeout) => {}
                }
            });
        }
        connections.close();
        connections.wait().await;
    }
}

/// `timeout` bounds the read of the request head, and again the write.
async fn serve_connection(mut stream: TcpStream, sources: &Sources, timeout: Duration) {
    let Some((response, head_only)) = respond(&mut stream, sources, timeout).await else {
        return;
    };
    let write = async {
        stream.write_all(&response.encode(head_only)).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(timeout, write).await;
}

/// The response and whether it goes without its body; `None` if the client
/// left without a request.
async fn respond(
    stream: &mut TcpStream,
    sources: &Sources,
    timeout: Duration,
) -> Option<(Response, bool)> {
    let head = match tokio::time::timeout(timeout, read_head(stream)).await {
        Err(_) => return Some((Response::text(408, "request timeout"), false)),
        Ok(Err(_)) => return None,
        Ok(Ok(Head::TooLarge)) => return Some((Response::text(431, "request too large"), false)),
        Ok(Ok(Head::Complete(head))) => head,
    };
    Some(match parse(&head) {
        Ok(request) => (answer(request.path, sources), request.head_only),
        Err(response) => (response, false),
    })
}

enum Head {
    Complete(Vec<u8>),
    TooLarge,
}

async fn read_head(stream: &mut TcpStream) -> io::Result<Head> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0; 1024];
    loop {
        if let Some(end) = head_end(&head) {
            head.truncate(end);
            return Ok(Head::Complete(head));
        }
        if head.len() >= MAX_REQUEST_HEAD {
            return Ok(Head::TooLarge);
        }
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&chunk[..read]);
    }
}

fn answer(path: Path, sources: &Sources) -> Response {
    match path {
        Path::Metrics => Response {
            status: 200,
            content_type: CONTENT_TYPE,
            body: sources.metrics.render(),
        },
        Path::Livez => Response::text(200, "alive"),
        Path::Readyz if (sources.ready)() => Response::text(200, "ready"),
        Path::Readyz => Response::text(503, "not ready"),
        Path::Browser => match &sources.browser {
            Some(info) => Response::json(info()),
            None => Response::text(404, "browser agents are off here (browser.enabled)"),
        },
        Path::Other => Response::text(404, "not found: try /metrics, /livez or /readyz"),
    }
}
