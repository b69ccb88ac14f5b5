//! What the relays' load tools (`relay_load`, `webrtc_load`) share: the relay's CPU time,
//! sockets stamped by the kernel, and ng requests.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use ng::{Command, Flags, Reply, Request};
use relay::MediaRequest;
use tokio::net::UdpSocket;

/// The relay process's user+system CPU time so far (clock ticks of 10 ms).
pub(crate) fn cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields
        .get(11..13)
        .map_or(0, |f| f.iter().filter_map(|t| t.parse::<u64>().ok()).sum());
    Duration::from_millis(ticks * 10)
}

/// The address and port an SDP names for audio.
pub(crate) fn media_of(sdp: &[u8]) -> Option<SocketAddr> {
    let text = std::str::from_utf8(sdp).ok()?;
    let ip: IpAddr = text
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))?
        .trim()
        .parse()
        .ok()?;
    let m = text.lines().find_map(|l| l.strip_prefix("m=audio "))?;
    Some(SocketAddr::new(ip, m.split(' ').next()?.parse().ok()?))
}

/// Sends `m` over ng; gives the SDP of the reply (none for a delete).
pub(crate) async fn ask(
    ctl: &UdpSocket,
    ng: SocketAddr,
    n: usize,
    m: MediaRequest,
) -> Option<Vec<u8>> {
    let flags = Flags {
        replace_origin: true,
        ..Flags::default()
    };
    let req = Request {
        cookie: format!("load{n}").into_bytes(),
        command: Command::Media(m, flags),
    };
    ctl.send_to(&req.encode(), ng).await.expect("send");
    let mut buf = vec![0u8; 65535];
    loop {
        let got = tokio::time::timeout(Duration::from_secs(2), ctl.recv(&mut buf)).await;
        let n = got.expect("the relay answers within 2 s").expect("recv");
        match Reply::parse(&buf[..n]) {
            Ok((cookie, Reply::Ok { sdp })) if cookie == req.cookie => return sdp,
            Ok((_, Reply::Error(e))) => panic!("the relay refused: {e}"),
            _ => {}
        }
    }
}

/// The packet interval of G.711 at 20 ms per packet.
pub(crate) const PTIME: Duration = Duration::from_millis(20);

/// Microseconds since 1970 (the clock of the kernel's receive timestamps).
pub(crate) fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A socket on loopback that has the kernel stamp each packet's arrival (SO_TIMESTAMPNS):
/// the latency measured then leaves out how late this busy tool gets to read it.
pub(crate) fn stamped_socket() -> std::net::UdpSocket {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_nonblocking(true).expect("nonblocking");
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
    assert_eq!(r, 0, "SO_TIMESTAMPNS");
    s
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

/// An epoll set of `socks`, each readable one reported with its index.
pub(crate) fn epoll_of<'a>(socks: impl Iterator<Item = &'a std::net::UdpSocket>) -> i32 {
    // SAFETY: plain system calls on descriptors that live through them.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(ep >= 0, "epoll_create1");
    for (i, s) in socks.enumerate() {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: i as u64,
        };
        // SAFETY: as above.
        let r = unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, s.as_raw_fd(), &mut ev) };
        assert_eq!(r, 0, "epoll_ctl");
    }
    ep
}
