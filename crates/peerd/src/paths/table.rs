//! Where packets to a virtual address go (over a relay circuit, or, once a
//! hole punch found one, straight to the peer's own address) and which
//! addresses' packets are handed to quinn as coming from a virtual one.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use bytes::Bytes;
use tokio::sync::mpsc;

/// Virtual addresses are taken from 240.0.0.0/4, which IANA reserves and no
/// network routes, so one can never be a peer's real address.
const VIRTUAL_FIRST: u32 = u32::from_be_bytes([240, 0, 0, 1]);
const VIRTUAL_MASK: u32 = 0xf000_0000;

/// Whether `addr` is a virtual address: one that stands for a relayed or
/// punched path, never dialed or remembered as it is.
pub fn is_virtual(addr: SocketAddr) -> bool {
    as_virtual(addr).is_some()
}

/// `addr` as the key of its route, if it is a virtual address, in either
/// family's form.
pub(crate) fn as_virtual(addr: SocketAddr) -> Option<SocketAddrV4> {
    match canonical(addr) {
        SocketAddr::V4(v4)
            if u32::from(*v4.ip()) & VIRTUAL_MASK == VIRTUAL_FIRST & VIRTUAL_MASK =>
        {
            Some(v4)
        }
        _ => None,
    }
}

/// `addr` with an IPv4-mapped IPv6 address turned back into IPv4: how a
/// dual-stack socket's quinn writes the virtual addresses it was given.
pub(crate) fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// Where one virtual address's packets go now.
#[derive(Debug, Clone)]
pub(crate) enum Next {
    /// Into a relay circuit's queue.
    Circuit(mpsc::Sender<Bytes>),
    /// To the peer's own address.
    Direct(SocketAddr),
    /// Nowhere: the path is gone, and the packet is dropped as a lost one.
    Nowhere,
}

#[derive(Debug, Default)]
struct Route {
    /// The circuit's queue, with the number that tells it from the one a
    /// renewal replaced.
    circuit: Option<(u64, mpsc::Sender<Bytes>)>,
    direct: Option<SocketAddr>,
}

/// The routes of every virtual address in use.
#[derive(Debug, Default)]
pub(crate) struct Routes {
    by_virtual: HashMap<SocketAddrV4, Route>,
    by_direct: HashMap<SocketAddr, SocketAddrV4>,
    allocated: u32,
    circuits: u64,
}

impl Routes {
    /// A fresh virtual address whose packets go into `circuit`, and the
    /// circuit's number.
    pub(crate) fn add_circuit(&mut self, circuit: mpsc::Sender<Bytes>) -> (SocketAddrV4, u64) {
        let addr = loop {
            let addr = nth_virtual(self.allocated);
            self.allocated = self.allocated.wrapping_add(1);
            if !self.by_virtual.contains_key(&addr) {
                break addr;
            }
        };
        let number = self.next_circuit();
        let route = Route {
            circuit: Some((number, circuit)),
            direct: None,
        };
        self.by_virtual.insert(addr, route);
        (addr, number)
    }

    /// Sends `addr`'s packets into `circuit` instead of the circuit it had:
    /// a renewal, before the old circuit reaches its relay's limits. The new
    /// circuit's number, or `None` if `addr` is gone or went direct.
    pub(crate) fn renew(
        &mut self,
        addr: SocketAddrV4,
        circuit: mpsc::Sender<Bytes>,
    ) -> Option<u64> {
        if self.by_virtual.get(&addr)?.direct.is_some() {
            return None;
        }
        let number = self.next_circuit();
        let route = self.by_virtual.get_mut(&addr)?;
        route.circuit = Some((number, circuit));
        Some(number)
    }

    /// Where packets to `addr` go.
    pub(crate) fn next(&self, addr: SocketAddrV4) -> Next {
        match self.by_virtual.get(&addr) {
            Some(Route {
                direct: Some(direct),
                ..
            }) => Next::Direct(*direct),
            Some(Route {
                circuit: Some((_, circuit)),
                ..
            }) => Next::Circuit(circuit.clone()),
            _ => Next::Nowhere,
        }
    }

    /// Sends `addr`'s packets to `direct` from now on, and takes packets from
    /// `direct` as `addr`'s. The circuit's queue is dropped, which ends the
    /// circuit. False if `addr` has no route.
    pub(crate) fn go_direct(&mut self, addr: SocketAddrV4, direct: SocketAddr) -> bool {
        let direct = canonical(direct);
        let Some(route) = self.by_virtual.get_mut(&addr) else {
            return false;
        };
        route.circuit = None;
        if let Some(old) = route.direct.replace(direct) {
            self.by_direct.remove(&old);
        }
        self.by_direct.insert(direct, addr);
        true
    }

    /// Circuit `number` of `addr` ended: a path with a direct route keeps
    /// it, and so does one a renewal moved to another circuit; any other is
    /// forgotten.
    pub(crate) fn circuit_ended(&mut self, addr: SocketAddrV4, number: u64) {
        let Some(route) = self.by_virtual.get_mut(&addr) else {
            return;
        };
        if route
            .circuit
            .as_ref()
            .is_some_and(|(current, _)| *current != number)
        {
            return;
        }
        route.circuit = None;
        if route.direct.is_none() {
            self.by_virtual.remove(&addr);
        }
    }

    /// Forgets `addr` and its direct route.
    pub(crate) fn remove(&mut self, addr: SocketAddrV4) {
        if let Some(Route {
            direct: Some(direct),
            ..
        }) = self.by_virtual.remove(&addr)
        {
            self.by_direct.remove(&direct);
        }
    }

    /// The virtual address that packets from `from` are delivered as.
    pub(crate) fn virtual_for(&self, from: SocketAddr) -> Option<SocketAddrV4> {
        self.by_direct.get(&canonical(from)).copied()
    }

    /// Paths carried by a circuit, and paths gone direct.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let direct = self.by_direct.len();
        (self.by_virtual.len() - direct, direct)
    }

    pub(crate) fn has_direct(&self) -> bool {
        !self.by_direct.is_empty()
    }

    fn next_circuit(&mut self) -> u64 {
        self.circuits += 1;
        self.circuits
    }
}

/// The `n`th virtual address: the port counts first (never 0), then the
/// address, wrapping within 240.0.0.0/4.
fn nth_virtual(n: u32) -> SocketAddrV4 {
    let port = (n % u32::from(u16::MAX)) as u16 + 1;
    let host = (n / u32::from(u16::MAX)) & !VIRTUAL_MASK;
    SocketAddrV4::new(Ipv4Addr::from(VIRTUAL_FIRST + host), port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> (mpsc::Sender<Bytes>, mpsc::Receiver<Bytes>) {
        mpsc::channel(4)
    }

    #[test]
    fn virtual_addresses_are_fresh_reserved_and_recognised_in_both_families() {
        let mut routes = Routes::default();
        let (tx, _rx) = queue();
        let (first, _) = routes.add_circuit(tx.clone());
        let (second, _) = routes.add_circuit(tx);
        assert_ne!(first, second);
        assert!(is_virtual(first.into()));
        let mapped = SocketAddr::new(first.ip().to_ipv6_mapped().into(), first.port());
        assert!(is_virtual(mapped));
        assert!(!is_virtual("203.0.113.2:7733".parse().unwrap()));
        assert!(!is_virtual("[::1]:7733".parse().unwrap()));
        assert_eq!(nth_virtual(u16::MAX.into()), "240.0.0.2:1".parse().unwrap());
        assert!(is_virtual(nth_virtual(u32::MAX).into()));
    }

    #[test]
    fn a_path_goes_from_its_circuit_to_the_direct_address_and_outlives_the_circuit() {
        let mut routes = Routes::default();
        let (tx, _rx) = queue();
        let (path, number) = routes.add_circuit(tx);
        assert!(matches!(routes.next(path), Next::Circuit(_)));
        assert_eq!(routes.counts(), (1, 0));
        let direct: SocketAddr = "203.0.113.6:40000".parse().unwrap();
        assert!(routes.go_direct(path, direct));
        assert!(matches!(routes.next(path), Next::Direct(d) if d == direct));
        assert_eq!(routes.virtual_for(direct), Some(path));
        assert_eq!(routes.counts(), (0, 1));
        assert_eq!(
            routes.renew(path, queue().0),
            None,
            "a direct path needs no circuit"
        );
        routes.circuit_ended(path, number);
        assert!(matches!(routes.next(path), Next::Direct(_)));
        routes.remove(path);
        assert!(matches!(routes.next(path), Next::Nowhere));
        assert_eq!(routes.virtual_for(direct), None);
        assert!(!routes.has_direct());
    }

    #[test]
    fn a_relayed_path_is_forgotten_when_its_circuit_ends() {
        let mut routes = Routes::default();
        let (tx, _rx) = queue();
        let (path, number) = routes.add_circuit(tx);
        routes.circuit_ended(path, number);
        assert!(matches!(routes.next(path), Next::Nowhere));
        assert_eq!(routes.counts(), (0, 0));
        assert!(!routes.go_direct(path, "203.0.113.6:1".parse().unwrap()));
    }

    #[test]
    fn a_renewed_circuit_outlives_the_end_of_the_one_it_replaced() {
        let mut routes = Routes::default();
        let (old, _old_rx) = queue();
        let (path, first) = routes.add_circuit(old);
        let (new, mut new_rx) = queue();
        let second = routes.renew(path, new).unwrap();
        routes.circuit_ended(path, first);
        let Next::Circuit(circuit) = routes.next(path) else {
            panic!("the renewal's circuit carries the path");
        };
        circuit.try_send(Bytes::from_static(b"p")).unwrap();
        assert_eq!(new_rx.try_recv().unwrap(), Bytes::from_static(b"p"));
        routes.circuit_ended(path, second);
        assert!(matches!(routes.next(path), Next::Nowhere));
        assert_eq!(routes.renew(path, queue().0), None);
    }
}
