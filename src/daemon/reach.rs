//! The addresses to tell other nodes, when the node listens on every interface.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

/// `bound` itself, or for a wildcard address the host's primary address and
/// loopback, with the bound port.
pub fn reach_addrs(bound: SocketAddr) -> Vec<SocketAddr> {
    if !bound.ip().is_unspecified() {
        return vec![bound];
    }
    let loopback = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), bound.port());
    match primary_ip() {
        Some(ip) if !ip.is_loopback() => vec![SocketAddr::new(ip, bound.port()), loopback],
        _ => vec![loopback],
    }
}

/// The source address the kernel would use to reach the outside. Connecting a
/// UDP socket only consults the routing table: no packet is sent.
fn primary_ip() -> Option<IpAddr> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    // 192.0.2.1 is TEST-NET-1 (RFC 5737): routable in form, never used.
    socket.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).ok()?;
    Some(socket.local_addr().ok()?.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_specific_address_is_kept() {
        let addr: SocketAddr = "127.0.0.1:7733".parse().unwrap();
        assert_eq!(reach_addrs(addr), [addr]);
    }

    #[test]
    fn a_wildcard_address_ends_with_loopback_on_the_same_port() {
        let addrs = reach_addrs("0.0.0.0:7733".parse().unwrap());
        assert_eq!(addrs.last(), Some(&"127.0.0.1:7733".parse().unwrap()));
        assert!(
            addrs
                .iter()
                .all(|a| a.port() == 7733 && !a.ip().is_unspecified())
        );
    }
}
