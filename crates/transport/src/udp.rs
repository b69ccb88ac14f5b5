//! UDP: sockets per listen address, each with a receive thread that parses each datagram.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use sip_message::Message;
use socket2::{Domain, Socket, Type};
use std::net::UdpSocket;

use crate::{Handler, Protocol, Source};

/// Largest datagram we accept.
const MAX_DATAGRAM: usize = 65_535;

/// Binds a UDP socket with large buffers (and IPV6_V6ONLY for IPv6); `shared` sets
/// SO_REUSEPORT so that several sockets, one per receive thread, share the address and the
/// kernel spreads the peers over them. The socket blocks: a receive thread sleeps in
/// `recv_from`, one system call per datagram and no event loop.
pub(crate) fn bind(addr: SocketAddr, shared: bool) -> std::io::Result<UdpSocket> {
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, None)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    if shared {
        sock.set_reuse_port(true)?;
    }
    // Larger buffers absorb bursts; the kernel clamps them to its limits.
    let _ = sock.set_recv_buffer_size(4 << 20);
    let _ = sock.set_send_buffer_size(4 << 20);
    sock.bind(&addr.into())?;
    Ok(sock.into())
}

/// Receives on `sock` on a thread of its own until the process ends; the handler runs on
/// that thread.
pub(crate) fn spawn_receiver(
    name: String,
    sock: UdpSocket,
    local: SocketAddr,
    handler: Arc<dyn Handler>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(name)
        .spawn(move || receive(&sock, local, &*handler))?;
    Ok(())
}

fn receive(sock: &UdpSocket, local: SocketAddr, handler: &dyn Handler) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut stun_limit = ::stun::AnswerLimit::new(std::time::Instant::now());
    loop {
        let (n, remote) = match sock.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) => {
                // ICMP errors surface here on some systems; keep receiving.
                tracing::debug!(%local, error = %e, "udp receive error");
                continue;
            }
        };
        if crate::stun::absorb(sock, &mut stun_limit, &buf[..n], remote) {
            continue;
        }
        // Each message gets its own right-sized buffer: a transaction may keep it for
        // half a minute, and must not pin a large shared receive buffer meanwhile.
        let data = Bytes::copy_from_slice(&buf[..n]);
        let src = Source {
            protocol: Protocol::Udp,
            remote,
            local,
        };
        if data.iter().all(|&b| b == b'\r' || b == b'\n') {
            continue; // keep-alive
        }
        match Message::parse(data.clone()) {
            Ok(msg) => crate::deliver(handler, msg, src),
            Err(e) => {
                if let Some(answer) = handler.on_malformed(&data, e, src) {
                    let _ = sock.send_to(&answer, remote);
                }
            }
        }
    }
}
