//! STUN on UDP: answered on the SIP ports (told apart from SIP by the first byte) and on
//! ports of its own.

use std::net::{SocketAddr, UdpSocket};
use std::time::Instant;

/// Answers `packet` from `remote` on `sock` when it is STUN, unless `limit` says `remote`
/// had its share this second; true when it was STUN (whether or not it was answered).
pub(crate) fn absorb(
    sock: &UdpSocket,
    limit: &mut stun::AnswerLimit,
    packet: &[u8],
    remote: SocketAddr,
) -> bool {
    if !stun::is_stun(packet) {
        return false;
    }
    if let Some(answer) = stun::answer(packet, remote) {
        if limit.allow(remote.ip(), Instant::now()) {
            let _ = sock.send_to(&answer, remote);
        }
    }
    true
}

/// Binds `addr` for STUN alone and answers on a thread of its own until the process ends;
/// gives the address bound.
pub fn listen_stun(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let sock = crate::udp::bind(addr, false)?;
    let local = sock.local_addr()?;
    std::thread::Builder::new()
        .name(format!("ferrosip-stun-{}", local.port()))
        .spawn(move || {
            let mut buf = [0u8; 1500];
            let mut limit = stun::AnswerLimit::new(std::time::Instant::now());
            loop {
                match sock.recv_from(&mut buf) {
                    Ok((n, remote)) => {
                        absorb(&sock, &mut limit, &buf[..n], remote);
                    }
                    Err(e) => tracing::debug!(%local, error = %e, "stun receive error"),
                }
            }
        })?;
    tracing::info!(%local, "answering STUN");
    Ok(local)
}
