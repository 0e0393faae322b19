//! Openers: probes sent with a TTL of 2, which opens this node's NAT
//! mapping towards a peer and expires one hop past the NAT, before the
//! peer's NAT. One that reached the peer's NAT first would leave a
//! conntrack entry there that makes Linux NAT give the peer's own probes
//! another port, and the punch would fail (docs/nat.md).

use std::io::{self, IoSlice};
use std::net::{SocketAddr, UdpSocket};

use socket2::{MsgHdr, SockAddr, SockRef};

/// Past the home router (hop 1), dropped at the next router.
pub(super) const OPENER_TTL: libc::c_int = 2;

/// Room for one `cmsghdr` and an int, aligned as `cmsghdr` must be.
#[repr(C, align(8))]
struct Control([u8; 32]);

/// Sends `data` to `to` with `ttl` as its IP TTL (hop limit), for this
/// datagram only: a control message, not a socket option that the
/// endpoint's own packets would pick up meanwhile.
pub(super) fn send_with_ttl(
    socket: &UdpSocket,
    to: SocketAddr,
    data: &[u8],
    ttl: libc::c_int,
) -> io::Result<()> {
    let (level, kind) = match to {
        SocketAddr::V4(_) => (libc::IPPROTO_IP, libc::IP_TTL),
        SocketAddr::V6(_) => (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT),
    };
    let int = std::mem::size_of::<libc::c_int>() as libc::c_uint;
    let mut control = Control([0; 32]);
    // SAFETY: `control` is aligned for `cmsghdr` and larger than
    // CMSG_SPACE(int) (24 bytes on 64-bit Linux), so the first header and
    // its data, found by the libc macros, lie inside it.
    let used = unsafe {
        let space = libc::CMSG_SPACE(int) as usize;
        let mut header: libc::msghdr = std::mem::zeroed();
        header.msg_control = control.0.as_mut_ptr().cast();
        header.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&header);
        (*cmsg).cmsg_level = level;
        (*cmsg).cmsg_type = kind;
        (*cmsg).cmsg_len = libc::CMSG_LEN(int) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>(), ttl);
        space
    };
    let addr = SockAddr::from(to);
    let buffers = [IoSlice::new(data)];
    let message = MsgHdr::new()
        .with_addr(&addr)
        .with_buffers(&buffers)
        .with_control(&control.0[..used]);
    SockRef::from(socket).sendmsg(&message, 0).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ttl_goes_with_the_datagram_and_not_on_the_socket() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = receiver.local_addr().unwrap();
        send_with_ttl(&sender, to, b"open", 2).unwrap();
        let mut buf = [0; 8];
        let (len, from) = receiver.recv_from(&mut buf).unwrap();
        assert_eq!(
            (&buf[..len], from),
            (&b"open"[..], sender.local_addr().unwrap())
        );
        assert_eq!(
            SockRef::from(&sender).ttl_v4().unwrap(),
            64,
            "the socket's own TTL is untouched"
        );
        // The kernel reads the control message: a TTL of 0 is refused.
        let refused = send_with_ttl(&sender, to, b"open", 0).unwrap_err();
        assert_eq!(refused.raw_os_error(), Some(libc::EINVAL));
    }
}
