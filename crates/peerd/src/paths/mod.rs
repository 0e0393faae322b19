//! Paths that are not plain UDP to a peer's own address. The endpoint's
//! socket wraps the real one and gives quinn a virtual address (from
//! 240.0.0.0/4) for each peer reached through a relay circuit; when a hole
//! punch finds a direct path, that virtual address's packets go straight to
//! the peer instead, so the QUIC connection, and every call on it, carries
//! on without noticing the switch.
//!
//! - `table`: the pure routes of the virtual addresses.
//! - `probe`: the punch datagrams, which the socket takes out of what it
//!   receives before quinn sees it.
//! - `opener`: probes that open this node's NAT and go no further.
//! - here: [`PathSocket`], the socket quinn drives, and [`Paths`], the
//!   handle the relay and the punch use to add and switch routes.

mod opener;
mod probe;
mod table;

use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};
use tokio::sync::mpsc;

pub use probe::{Probe, Token};
pub use table::is_virtual;
use table::{Next, Routes, as_virtual, canonical};

/// Packets from circuits waiting for quinn to read them, for all circuits.
const ARRIVALS: usize = 1024;
/// Packets waiting to go into one circuit. Beyond this a packet is dropped,
/// as a full router drops one, and QUIC's congestion control backs off.
const CIRCUIT_QUEUE: usize = 256;
/// Probes received and not yet read by the punch.
const PROBES: usize = 64;

/// The endpoint's socket: the real UDP socket plus the virtual paths.
pub struct PathSocket {
    shared: Arc<Shared>,
    arrivals: Mutex<mpsc::Receiver<(SocketAddrV4, Bytes)>>,
}

struct Shared {
    inner: Arc<dyn AsyncUdpSocket>,
    /// The endpoint's socket itself (a duplicate of its descriptor), for
    /// openers; `None` on a socket peerd did not bind.
    opener: Option<std::net::UdpSocket>,
    routes: RwLock<Routes>,
    /// Whether any received packet may need its address rewritten: read
    /// without the lock on every receive.
    has_direct: AtomicBool,
    arrivals: mpsc::Sender<(SocketAddrV4, Bytes)>,
    probes: mpsc::Sender<(SocketAddr, Probe)>,
    /// quinn on an IPv6 socket writes IPv4 addresses IPv4-mapped.
    ipv6: bool,
    dropped: AtomicU64,
}

impl std::fmt::Debug for PathSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PathSocket").finish_non_exhaustive()
    }
}

/// Adds, switches and counts the virtual paths of one [`PathSocket`].
/// Cheap to clone.
#[derive(Clone)]
pub struct Paths {
    shared: Arc<Shared>,
}

/// What the virtual paths are doing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathStats {
    /// Paths carried by a relay circuit.
    pub relayed: usize,
    /// Paths moved to the peer's own address by a hole punch.
    pub direct: usize,
    /// Packets dropped on virtual paths: a full queue, or a path gone.
    pub dropped: u64,
}

/// The probes the socket received, for the one punch that reads them.
pub type ProbeReceiver = mpsc::Receiver<(SocketAddr, Probe)>;

impl Paths {
    /// Wraps `inner` into the socket for quinn, the handle to its paths and
    /// the probes it will receive. `opener` is `inner`'s own descriptor,
    /// if there is one, for openers.
    pub fn wrap(
        inner: Arc<dyn AsyncUdpSocket>,
        opener: Option<std::net::UdpSocket>,
    ) -> (Arc<PathSocket>, Paths, ProbeReceiver) {
        let ipv6 = inner.local_addr().is_ok_and(|addr| addr.is_ipv6());
        let (arrivals, arrived) = mpsc::channel(ARRIVALS);
        let (probes, probed) = mpsc::channel(PROBES);
        let shared = Arc::new(Shared {
            inner,
            opener,
            routes: RwLock::default(),
            has_direct: AtomicBool::new(false),
            arrivals,
            probes,
            ipv6,
            dropped: AtomicU64::new(0),
        });
        let socket = PathSocket {
            shared: shared.clone(),
            arrivals: Mutex::new(arrived),
        };
        (Arc::new(socket), Paths { shared }, probed)
    }

    /// A new virtual path whose packets go into the returned circuit end.
    pub fn open_circuit(&self) -> CircuitPath {
        let (queue, outgoing) = mpsc::channel(CIRCUIT_QUEUE);
        let (addr, number) = self.shared.write().add_circuit(queue);
        CircuitPath {
            addr,
            number,
            outgoing,
            shared: self.shared.clone(),
        }
    }

    /// A new circuit end for `path`, which from now on carries the path's
    /// packets instead of its current circuit: a renewal, before that
    /// circuit reaches its relay's limits. `None` if `path` is gone or
    /// went direct.
    pub fn renew(&self, path: SocketAddr) -> Option<CircuitPath> {
        let addr = as_virtual(path)?;
        let (queue, outgoing) = mpsc::channel(CIRCUIT_QUEUE);
        let number = self.shared.write().renew(addr, queue)?;
        Some(CircuitPath {
            addr,
            number,
            outgoing,
            shared: self.shared.clone(),
        })
    }

    /// Sends `path`'s packets to `direct` from now on, and hands packets
    /// from `direct` to quinn as `path`'s; the circuit is let go. False if
    /// `path` is not a virtual path in use.
    pub fn go_direct(&self, path: SocketAddr, direct: SocketAddr) -> bool {
        as_virtual(path).is_some_and(|path| {
            self.shared
                .change_direct(|routes| routes.go_direct(path, direct))
        })
    }

    /// The peer's own address, where `path`'s packets go since a punch
    /// moved it; `None` for a relayed path or any other address.
    pub fn direct_of(&self, path: SocketAddr) -> Option<SocketAddr> {
        let path = as_virtual(path)?;
        let routes = self.shared.routes.read().expect("routes lock");
        match routes.next(path) {
            Next::Direct(direct) => Some(direct),
            Next::Circuit(_) | Next::Nowhere => None,
        }
    }

    /// Forgets `path` and its direct route, once its connection closed.
    pub fn forget(&self, path: SocketAddr) {
        if let Some(path) = as_virtual(path) {
            self.shared.change_direct(|routes| routes.remove(path));
        }
    }

    /// Sends one probe from the endpoint's own socket, so it leaves through
    /// the NAT mapping the endpoint's connections use.
    pub fn send_probe(&self, to: SocketAddr, probe: Probe) -> io::Result<()> {
        let contents = probe.encode();
        let transmit = Transmit {
            destination: self.shared.quinn_form(to),
            ecn: None,
            contents: &contents,
            segment_size: None,
            src_ip: None,
        };
        self.shared.inner.try_send(&transmit)
    }

    /// Sends one probe as an opener (see `opener`), from the endpoint's
    /// own port. Unsupported on a socket peerd did not bind.
    pub fn send_opener(&self, to: SocketAddr, probe: Probe) -> io::Result<()> {
        let Some(socket) = &self.shared.opener else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "openers need a socket peerd bound itself",
            ));
        };
        let to = self.shared.quinn_form(to);
        opener::send_with_ttl(socket, to, &probe.encode(), opener::OPENER_TTL)
    }

    /// The paths now, and the packets dropped on them so far.
    pub fn stats(&self) -> PathStats {
        let (relayed, direct) = self.shared.routes.read().expect("routes lock").counts();
        PathStats {
            relayed,
            direct,
            dropped: self.shared.dropped.load(Ordering::Relaxed),
        }
    }
}

/// The socket's end of one relay circuit: packets quinn sends to [`addr`]
/// come out of `outgoing`, and packets given to its [`Inbox`] reach quinn
/// as from `addr`. Dropping it ends the route, unless it went direct or a
/// renewal gave it another circuit.
///
/// [`addr`]: CircuitPath::addr
pub struct CircuitPath {
    addr: SocketAddrV4,
    /// Tells this circuit from one that renewed it.
    number: u64,
    outgoing: mpsc::Receiver<Bytes>,
    shared: Arc<Shared>,
}

impl CircuitPath {
    /// The virtual address, as quinn writes it: what to dial.
    pub fn addr(&self) -> SocketAddr {
        self.shared.quinn_form(self.addr.into())
    }

    /// The next packet quinn sent into the circuit; `None` once the path
    /// went direct (or was forgotten) and nothing more will come.
    pub async fn outgoing(&mut self) -> Option<Bytes> {
        self.outgoing.recv().await
    }

    /// Where packets that came out of the circuit go in.
    pub fn inbox(&self) -> Inbox {
        Inbox {
            addr: self.addr,
            shared: self.shared.clone(),
        }
    }
}

/// Hands packets that came out of one circuit to quinn.
pub struct Inbox {
    addr: SocketAddrV4,
    shared: Arc<Shared>,
}

impl Inbox {
    /// Hands one packet to quinn, as from the circuit's virtual address;
    /// dropped if quinn is that far behind.
    pub fn deliver(&self, packet: Bytes) {
        if self.shared.arrivals.try_send((self.addr, packet)).is_err() {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for CircuitPath {
    fn drop(&mut self) {
        self.shared.write().circuit_ended(self.addr, self.number);
    }
}

impl Shared {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Routes> {
        self.routes.write().expect("routes lock")
    }

    /// Runs `change`, which may add or remove direct routes, and keeps
    /// `has_direct` in step with them.
    fn change_direct<T>(&self, change: impl FnOnce(&mut Routes) -> T) -> T {
        let mut routes = self.write();
        let changed = change(&mut routes);
        self.has_direct
            .store(routes.has_direct(), Ordering::Release);
        changed
    }

    fn quinn_form(&self, addr: SocketAddr) -> SocketAddr {
        match (addr, self.ipv6) {
            (SocketAddr::V4(v4), true) => {
                SocketAddr::new(v4.ip().to_ipv6_mapped().into(), v4.port())
            }
            _ => addr,
        }
    }

    /// Sends a transmit quinn addressed to a virtual path.
    fn send_virtual(&self, path: SocketAddrV4, transmit: &Transmit) -> io::Result<()> {
        let next = self.routes.read().expect("routes lock").next(path);
        match next {
            Next::Direct(direct) => self.inner.try_send(&Transmit {
                destination: self.quinn_form(direct),
                ..*transmit
            }),
            Next::Circuit(queue) => {
                let size = transmit.segment_size.unwrap_or(transmit.contents.len());
                for packet in transmit.contents.chunks(size.max(1)) {
                    if queue.try_send(Bytes::copy_from_slice(packet)).is_err() {
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(())
            }
            Next::Nowhere => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        }
    }

    /// Takes probes out of what the real socket received (their length
    /// becomes 0, which quinn skips) and renames packets from punched
    /// peers to their virtual addresses.
    fn inspect(&self, bufs: &[io::IoSliceMut<'_>], meta: &mut [RecvMeta]) {
        let rename = self.has_direct.load(Ordering::Acquire);
        let routes = rename.then(|| self.routes.read().expect("routes lock"));
        for (buf, meta) in bufs.iter().zip(meta.iter_mut()) {
            let received = &buf[..meta.len];
            // The kernel may join equal-sized datagrams from one sender
            // (GRO): a run of probes arrives as one buffer, cut by stride.
            if Probe::decode(&received[..meta.stride.min(meta.len)]).is_some() {
                let from = canonical(meta.addr);
                for probe in received
                    .chunks(meta.stride.max(1))
                    .filter_map(Probe::decode)
                {
                    let _ = self.probes.try_send((from, probe));
                }
                meta.len = 0;
                continue;
            }
            if let Some(path) = routes.as_ref().and_then(|r| r.virtual_for(meta.addr)) {
                meta.addr = self.quinn_form(path.into());
            }
        }
    }
}

impl PathSocket {
    /// Copies packets that came out of circuits into quinn's buffers.
    fn take_arrivals(
        &self,
        cx: &mut Context,
        bufs: &mut [io::IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> usize {
        let mut arrivals = self.arrivals.lock().expect("arrivals lock");
        let mut filled = 0;
        while filled < bufs.len().min(meta.len()) {
            let Poll::Ready(Some((from, packet))) = arrivals.poll_recv(cx) else {
                break;
            };
            // quinn's buffers hold its largest datagram; a larger packet
            // cannot be a QUIC packet it would accept.
            if packet.len() > bufs[filled].len() {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            bufs[filled][..packet.len()].copy_from_slice(&packet);
            meta[filled] = RecvMeta {
                addr: self.shared.quinn_form(from.into()),
                len: packet.len(),
                stride: packet.len(),
                ecn: None,
                dst_ip: None,
            };
            filled += 1;
        }
        filled
    }
}

impl AsyncUdpSocket for PathSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        // Virtual paths never wait: a full circuit drops instead.
        self.shared.inner.clone().create_io_poller()
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        match as_virtual(transmit.destination) {
            Some(path) => self.shared.send_virtual(path, transmit),
            None => self.shared.inner.try_send(transmit),
        }
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [io::IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let mut filled = self.take_arrivals(cx, bufs, meta);
        let room = bufs.len().min(meta.len());
        if filled < room {
            let (bufs, meta) = (&mut bufs[filled..room], &mut meta[filled..room]);
            match self.shared.inner.poll_recv(cx, bufs, meta) {
                Poll::Ready(Ok(received)) => {
                    self.shared
                        .inspect(&bufs[..received], &mut meta[..received]);
                    filled += received;
                }
                Poll::Ready(Err(e)) if filled == 0 => return Poll::Ready(Err(e)),
                Poll::Ready(Err(_)) | Poll::Pending => {}
            }
        }
        match filled {
            0 => Poll::Pending,
            filled => Poll::Ready(Ok(filled)),
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.shared.inner.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.shared.inner.max_transmit_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.shared.inner.max_receive_segments()
    }

    fn may_fragment(&self) -> bool {
        self.shared.inner.may_fragment()
    }
}
