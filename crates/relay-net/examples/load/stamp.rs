//! UDP sockets whose packets the kernel stamps on arrival (SO_TIMESTAMPNS): a load tool that
//! reads them late still measures when they came. Shared by the relays' load tools and, by
//! path, the SIP load tool (`crates/ferrosip/examples/sip_load`).

use std::os::fd::AsRawFd;

/// Microseconds since 1970 (the clock of the kernel's receive timestamps).
pub(crate) fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A socket on `ip` that has the kernel stamp each packet's arrival (SO_TIMESTAMPNS): the
/// latency measured then leaves out how late a busy tool gets to read it.
pub(crate) fn stamped_socket_on(ip: std::net::IpAddr) -> std::io::Result<std::net::UdpSocket> {
    let s = std::net::UdpSocket::bind((ip, 0))?;
    s.set_nonblocking(true)?;
    let on: libc::c_int = 1;
    // SAFETY: a valid socket and option value of the size given.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            std::ptr::from_ref(&on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(s)
}

/// Receives a packet into `buf`: its length and the kernel's arrival time (µs since 1970).
pub(crate) fn recv_stamped(
    sock: &std::net::UdpSocket,
    buf: &mut [u8],
) -> std::io::Result<(usize, Option<u64>)> {
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: all-zero is a valid msghdr; its pointers are set to live buffers below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: msg points at buffers that live through the call.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // The control messages: (length: usize, level: i32, type: i32, data), 8-byte aligned.
    let bytes: Vec<u8> = control.iter().flat_map(|w| w.to_ne_bytes()).collect();
    let bytes = &bytes[..msg.msg_controllen.min(bytes.len())];
    let mut at = 0;
    let mut stamp = None;
    while at + 16 <= bytes.len() {
        let word = |i: usize| {
            bytes[i..i + 8]
                .try_into()
                .map(u64::from_ne_bytes)
                .unwrap_or(0)
        };
        let len = word(at) as usize;
        let level = i32::from_ne_bytes(bytes[at + 8..at + 12].try_into().unwrap_or([0; 4]));
        let kind = i32::from_ne_bytes(bytes[at + 12..at + 16].try_into().unwrap_or([0; 4]));
        if level == libc::SOL_SOCKET && kind == libc::SCM_TIMESTAMPNS && at + 32 <= bytes.len() {
            stamp = Some(word(at + 16) * 1_000_000 + word(at + 24) / 1000);
        }
        if len < 16 {
            break;
        }
        at += (len + 7) & !7;
    }
    Ok((n as usize, stamp))
}
