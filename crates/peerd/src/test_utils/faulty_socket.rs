//! `FaultySocket`: a real UDP socket that mistreats the datagrams it
//! receives (loss, delay, jitter that reorders) and can drop everything both
//! ways for a while (a blackhole), following a seeded random generator.
//! Faults apply on receipt: wrap both ends to fault both directions.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};
use tokio::io::ReadBuf;
use tokio::time::{Instant, Sleep};

use super::SplitMix64;

/// What happens to datagrams; change it at any time with `set_faults`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Faults {
    /// Share of received datagrams dropped, from 0.0 to 1.0.
    pub loss: f64,
    /// Every received datagram is held this long before delivery...
    pub delay: Duration,
    /// ...plus a uniformly random extra up to this, which reorders them.
    pub jitter: Duration,
    /// Drop every datagram sent or received.
    pub blackhole: bool,
    /// Drop every received datagram but QUIC v1 Retry packets: a client
    /// that proves its address when asked, then stalls its handshake.
    pub only_retries: bool,
}

/// Datagrams seen so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultStats {
    /// Datagrams received from the kernel, dropped ones included.
    pub received: u64,
    /// Received datagrams dropped by loss or the blackhole (datagrams not
    /// sent during a blackhole are not counted).
    pub dropped: u64,
    /// Delivered after a datagram that arrived later.
    pub reordered: u64,
}

/// A UDP socket for quinn (`AsyncUdpSocket`) that applies [`Faults`] to
/// what it receives; hand it to `NodeBuilder::socket`.
#[derive(Debug)]
pub struct FaultySocket {
    socket: tokio::net::UdpSocket,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    faults: Faults,
    rng: SplitMix64,
    held: BinaryHeap<Reverse<Held>>,
    arrivals: u64,
    last_delivered: u64,
    timer: Option<Pin<Box<Sleep>>>,
    buffer: Vec<u8>,
    stats: FaultStats,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Held {
    due: Instant,
    arrival: u64,
    from: SocketAddr,
    data: Vec<u8>,
}

impl FaultySocket {
    /// Binds `addr`; needs a tokio runtime. The same `seed` and the same
    /// traffic give the same drops.
    pub fn bind(addr: SocketAddr, faults: Faults, seed: u64) -> io::Result<Arc<Self>> {
        let socket = std::net::UdpSocket::bind(addr)?;
        socket.set_nonblocking(true)?;
        Ok(Arc::new(Self {
            socket: tokio::net::UdpSocket::from_std(socket)?,
            state: Mutex::new(State {
                faults,
                rng: SplitMix64::new(seed),
                held: BinaryHeap::new(),
                arrivals: 0,
                last_delivered: 0,
                timer: None,
                buffer: vec![0; u16::MAX as usize],
                stats: FaultStats::default(),
            }),
        }))
    }

    /// Replaces the faults from now on; datagrams already held keep their
    /// delivery time.
    pub fn set_faults(&self, faults: Faults) {
        self.lock().faults = faults;
    }

    /// The counts so far.
    pub fn stats(&self) -> FaultStats {
        self.lock().stats
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("faulty socket lock poisoned")
    }

    /// Moves every datagram the kernel has into the held queue, or drops it.
    fn pull_arrivals(&self, cx: &mut Context, state: &mut State) -> io::Result<()> {
        loop {
            let mut buffer = ReadBuf::new(&mut state.buffer);
            let from = match self.socket.poll_recv_from(cx, &mut buffer) {
                Poll::Pending => return Ok(()),
                Poll::Ready(Ok(from)) => from,
                // An ICMP error for an earlier send: not a datagram, not fatal.
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::ConnectionReset => continue,
                Poll::Ready(Err(e)) => return Err(e),
            };
            let data = buffer.filled().to_vec();
            state.arrive(from, data);
        }
    }
}

impl State {
    fn arrive(&mut self, from: SocketAddr, data: Vec<u8>) {
        self.stats.received += 1;
        let faults = self.faults;
        let deaf = faults.only_retries && !is_retry(&data);
        if deaf || faults.blackhole || self.rng.next_f64() < faults.loss {
            self.stats.dropped += 1;
            return;
        }
        let extra = faults.jitter.mul_f64(self.rng.next_f64());
        self.arrivals += 1;
        self.held.push(Reverse(Held {
            due: Instant::now() + faults.delay + extra,
            arrival: self.arrivals,
            from,
            data,
        }));
    }

    /// Copies the datagrams that are due into quinn's buffers.
    fn deliver_due(&mut self, bufs: &mut [io::IoSliceMut<'_>], meta: &mut [RecvMeta]) -> usize {
        let now = Instant::now();
        let mut delivered = 0;
        while delivered < bufs.len().min(meta.len()) {
            if self.held.peek().is_none_or(|next| next.0.due > now) {
                break;
            }
            let Reverse(held) = self.held.pop().expect("peeked");
            let len = held.data.len().min(bufs[delivered].len());
            bufs[delivered][..len].copy_from_slice(&held.data[..len]);
            meta[delivered] = RecvMeta {
                addr: held.from,
                len,
                stride: len,
                ecn: None,
                dst_ip: None,
            };
            if held.arrival < self.last_delivered {
                self.stats.reordered += 1;
            }
            self.last_delivered = self.last_delivered.max(held.arrival);
            delivered += 1;
        }
        delivered
    }

    /// Ready when the earliest held datagram is due.
    fn poll_next_due(&mut self, cx: &mut Context) -> Poll<()> {
        let Some(next) = self.held.peek() else {
            self.timer = None;
            return Poll::Pending;
        };
        let due = next.0.due;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        if timer.deadline() != due {
            timer.as_mut().reset(due);
        }
        timer.as_mut().poll(cx)
    }
}

/// A long header (0x80) with the fixed bit (0x40) and packet type 3.
fn is_retry(datagram: &[u8]) -> bool {
    datagram.first().is_some_and(|first| first & 0xf0 == 0xf0)
}

impl AsyncUdpSocket for FaultySocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(Writable {
            socket: self,
            ready: None,
        })
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        if self.lock().faults.blackhole {
            return Ok(());
        }
        self.socket
            .try_send_to(transmit.contents, transmit.destination)
            .map(drop)
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [io::IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let mut state = self.lock();
        self.pull_arrivals(cx, &mut state)?;
        loop {
            let delivered = state.deliver_due(bufs, meta);
            if delivered > 0 {
                return Poll::Ready(Ok(delivered));
            }
            if state.poll_next_due(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}

type WritableFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send + Sync>>;

/// Wakes quinn when the kernel can take datagrams again.
struct Writable {
    socket: Arc<FaultySocket>,
    ready: Option<WritableFuture>,
}

impl std::fmt::Debug for Writable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writable").finish_non_exhaustive()
    }
}

impl UdpPoller for Writable {
    fn poll_writable(mut self: Pin<&mut Self>, cx: &mut Context) -> Poll<io::Result<()>> {
        let socket = self.socket.clone();
        let ready = self
            .ready
            .get_or_insert_with(|| Box::pin(async move { socket.socket.writable().await }));
        let result = ready.as_mut().poll(cx);
        if result.is_ready() {
            self.ready = None;
        }
        result
    }
}
