//! UDP: one socket per listen address, a receive loop that parses each datagram.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use sip_message::Message;
use socket2::{Domain, Socket, Type};
use tokio::net::UdpSocket;

use crate::{Handler, Protocol, Source};

/// Largest datagram we accept.
const MAX_DATAGRAM: usize = 65_535;

/// Binds a non-blocking UDP socket with large buffers (and IPV6_V6ONLY for IPv6).
pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, None)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    // Larger buffers absorb bursts; the kernel clamps them to its limits.
    let _ = sock.set_recv_buffer_size(4 << 20);
    let _ = sock.set_send_buffer_size(4 << 20);
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    UdpSocket::from_std(sock.into())
}

/// Receives datagrams until the runtime stops; each one is parsed and handed on.
pub(crate) fn spawn_receiver(sock: Arc<UdpSocket>, local: SocketAddr, handler: Arc<dyn Handler>) {
    tokio::spawn(async move {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let (n, remote) = match sock.recv_from(&mut buf).await {
                Ok(r) => r,
                Err(e) => {
                    // ICMP errors surface here on some systems; keep receiving.
                    tracing::debug!(%local, error = %e, "udp receive error");
                    continue;
                }
            };
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
                Ok(msg) => crate::deliver(&*handler, msg, src),
                Err(e) => handler.on_malformed(&data, e, src),
            }
        }
    });
}
