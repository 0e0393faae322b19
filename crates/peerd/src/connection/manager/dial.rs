//! Outbound handshakes. One dial runs staggered attempts, each a fresh QUIC
//! handshake, until one completes or the handshake timeout passes: a lone
//! handshake whose flights were lost several times backs its probes off
//! exponentially, and may have taken a stale ACK as an RTT sample of
//! seconds, so its next probe can come after any sensible deadline.

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::time::Instant;

use super::endpoint::wildcard_for;
use super::{SERVER_NAME, Shared};
use crate::connection::tally::HandshakeOutcome;
use crate::connection::{ConnectError, Direction, NodeConnection};
use crate::identity::NodeId;
use crate::tls::ExpectedPeer;

/// The wait before the second attempt; each later wait is twice the one
/// before. quinn probes a silent path first after ~1 s (three times RFC
/// 9002's initial RTT of 333 ms), so a handshake that works is rarely joined.
const FIRST_RETRY_AFTER: Duration = Duration::from_secs(2);

/// When attempts start, counted from the dial's start: 0, 2 s, 6 s, 14 s, …
fn attempt_starts() -> impl Iterator<Item = Duration> {
    let step = |&(start, wait): &(Duration, Duration)| Some((start + wait, wait * 2));
    std::iter::successors(Some((Duration::ZERO, FIRST_RETRY_AFTER)), step).map(|(start, _)| start)
}

/// How long a dial to one address runs alone before the next address's
/// joins it, as in RFC 8305: a dead first address costs this, not a whole
/// handshake timeout, and a live one usually answers well within it.
const NEXT_ADDRESS_AFTER: Duration = Duration::from_millis(250);

/// How long a handshake runs unanswered before the address is asked
/// whether anything listens there, and how long each asking waits.
const PROBE_AFTER: Duration = Duration::from_millis(200);
const PROBE_EVERY: Duration = Duration::from_millis(500);

/// One handshake in progress, and the node its certificate named.
struct Attempt {
    connecting: quinn::Connecting,
    peer: Arc<ExpectedPeer>,
}

/// How the first attempt to end ended.
type Ended = (
    Result<quinn::Connection, quinn::ConnectionError>,
    Arc<ExpectedPeer>,
);

impl Shared {
    pub(super) async fn dial(
        self: &Arc<Self>,
        node: NodeId,
        addr: SocketAddr,
    ) -> Result<NodeConnection, ConnectError> {
        if self.cancel.is_cancelled() {
            return Err(ConnectError::ShuttingDown);
        }
        let limit = self.config.max_connections;
        if self.open.load(Ordering::Acquire) >= limit {
            return Err(ConnectError::ConnectionLimit(limit));
        }
        // An address or TLS configuration that cannot start a handshake
        // fails here, before the clock and the tally, as no handshake ran.
        let first = self.attempt(node, addr)?;
        let started = Instant::now();
        let result = self.handshake(node, addr, first, started).await;
        let outcome = match &result {
            Ok(_) => HandshakeOutcome::Ok,
            Err(ConnectError::HandshakeTimeout { .. }) => HandshakeOutcome::TimedOut,
            Err(_) => HandshakeOutcome::Failed,
        };
        self.tally
            .handshake(Direction::Outbound, outcome, started.elapsed());
        let quic = result?;
        self.dials.fetch_add(1, Ordering::Relaxed);
        self.register(quic, node, Direction::Outbound)
    }

    /// Dials `addrs` in order, the next one joining those still running
    /// after `NEXT_ADDRESS_AFTER`, or at once when one fails. The first to
    /// connect wins and the others are dropped, which closes them; if none
    /// does, the error is the one failure, or all of them.
    pub(super) async fn dial_any(
        self: &Arc<Self>,
        node: NodeId,
        addrs: &[SocketAddr],
    ) -> Result<NodeConnection, ConnectError> {
        let mut waiting = addrs.iter().copied();
        let mut running: Vec<Dialing<'_>> = Vec::new();
        let mut failures = Vec::new();
        loop {
            match waiting.next() {
                Some(addr) => running.push(Box::pin(self.dial(node, addr))),
                None if running.is_empty() => return Err(all_failed(node, failures)),
                None => {}
            }
            let more = waiting.len() > 0;
            tokio::select! {
                result = first_to_end(&mut running) => match result {
                    Ok(conn) => return Ok(conn),
                    Err(e) => failures.push(e),
                },
                () = tokio::time::sleep(NEXT_ADDRESS_AFTER), if more => {}
            }
        }
    }

    /// Runs `first` and the attempts that join it; the first attempt to
    /// complete wins, and dropping the others closes them.
    async fn handshake(
        &self,
        node: NodeId,
        addr: SocketAddr,
        first: Attempt,
        started: Instant,
    ) -> Result<quinn::Connection, ConnectError> {
        let timeout = self.config.handshake_timeout;
        let deadline = started + timeout;
        let mut starts = attempt_starts()
            .skip(1)
            .map(|after| started + after)
            .take_while(|at| *at < deadline)
            .peekable();
        let mut attempts = vec![first];
        let refusal = refused(addr);
        tokio::pin!(refusal);
        loop {
            if starts.next_if(|at| *at <= Instant::now()).is_some() {
                let short = node.short();
                tracing::debug!(node = %short, %addr, "handshake not done: a fresh one joins");
                attempts.push(self.attempt(node, addr)?);
                self.tally.handshake_restarted();
            }
            let wake = starts.peek().copied().unwrap_or(deadline);
            tokio::select! {
                (result, peer) = first_to_end(&mut attempts) => match result {
                    Ok(quic) => return Ok(quic),
                    // An attempt's idle timeout: the others, or a later one, may still get through.
                    Err(quinn::ConnectionError::TimedOut) if !attempts.is_empty() || starts.peek().is_some() => {}
                    Err(source) => return Err(handshake_error(node, addr, source, &peer)),
                },
                () = tokio::time::sleep_until(wake) => {
                    if wake >= deadline {
                        return Err(ConnectError::HandshakeTimeout { node, addr, timeout });
                    }
                }
                () = &mut refusal => return Err(ConnectError::Refused { node, addr }),
            }
        }
    }

    fn attempt(&self, node: NodeId, addr: SocketAddr) -> Result<Attempt, ConnectError> {
        let peer = ExpectedPeer::new(node);
        let mut client = quinn::ClientConfig::new(Arc::new(self.tls.client(peer.clone())?));
        client.transport_config(self.transport.clone());
        let connecting = self
            .endpoint
            .connect_with(client, addr, SERVER_NAME)
            .map_err(|source| ConnectError::Dial { addr, source })?;
        Ok(Attempt { connecting, peer })
    }
}

/// The one failure as it is, several as one error that lists them.
fn all_failed(node: NodeId, mut failures: Vec<ConnectError>) -> ConnectError {
    match failures.len() {
        0 => ConnectError::NoAddress(node),
        1 => failures.remove(0),
        _ => ConnectError::AllAddressesFailed { node, failures },
    }
}

/// Resolves once `addr` answers with ICMP port unreachable: nothing
/// listens there, so the handshake can fail now rather than at its
/// timeout. A handshake slowed by loss gets no such answer and keeps its
/// whole timeout. Asks with a one-byte datagram from a socket of its own
/// (connected, so the kernel reports the ICMP error on it); a QUIC endpoint
/// drops a datagram too short for a packet.
async fn refused(addr: SocketAddr) {
    tokio::time::sleep(PROBE_AFTER).await;
    let socket = match tokio::net::UdpSocket::bind(wildcard_for(addr)).await {
        Ok(socket) if socket.connect(addr).await.is_ok() => socket,
        _ => return std::future::pending().await,
    };
    let refusal = |e: &std::io::Error| e.kind() == std::io::ErrorKind::ConnectionRefused;
    let mut answer = [0u8; 1];
    loop {
        if socket.send(&[0]).await.is_err_and(|e| refusal(&e)) {
            return;
        }
        match tokio::time::timeout(PROBE_EVERY, socket.recv(&mut answer)).await {
            Ok(Err(e)) if refusal(&e) => return,
            // A datagram back, or another error: no refusal, and no spin.
            Ok(_) => tokio::time::sleep(PROBE_EVERY).await,
            Err(_) => {}
        }
    }
}

type Dialing<'a> = Pin<Box<dyn Future<Output = Result<NodeConnection, ConnectError>> + Send + 'a>>;

impl Future for Attempt {
    type Output = Ended;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Ended> {
        let result = ready!(Pin::new(&mut self.connecting).poll(cx));
        Poll::Ready((result, self.peer.clone()))
    }
}

/// Resolves when any of `running` ends, and takes it out; pending while
/// none runs.
async fn first_to_end<F: Future + Unpin>(running: &mut Vec<F>) -> F::Output {
    poll_fn(|cx| {
        for i in 0..running.len() {
            if let Poll::Ready(output) = Pin::new(&mut running[i]).poll(cx) {
                drop(running.swap_remove(i));
                return Poll::Ready(output);
            }
        }
        Poll::Pending
    })
    .await
}

/// A certificate naming another node is the clearer error than the TLS
/// alert it caused.
fn handshake_error(
    node: NodeId,
    addr: SocketAddr,
    source: quinn::ConnectionError,
    peer: &ExpectedPeer,
) -> ConnectError {
    match peer.seen().filter(|seen| *seen != node) {
        Some(actual) => ConnectError::WrongNode {
            expected: node,
            actual,
            addr,
        },
        None => ConnectError::Handshake { node, addr, source },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_start_at_once_then_after_waits_that_double() {
        let starts: Vec<u64> = attempt_starts().take(5).map(|s| s.as_secs()).collect();
        assert_eq!(starts, [0, 2, 6, 14, 30]);
    }

    #[test]
    fn a_default_ten_second_dial_makes_three_attempts() {
        let within = |limit| attempt_starts().take_while(|s| *s < limit).count();
        assert_eq!(within(Duration::from_secs(10)), 3);
        assert_eq!(within(Duration::from_secs(1)), 1);
    }
}
