//! What the relays' load tools (`relay_load`, `webrtc_load`) share: the relay's CPU time,
//! sockets stamped by the kernel (`stamp`, which the SIP load tool shares), and ng requests.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use ng::{Command, Flags, Reply, Request};
use relay::MediaRequest;
use tokio::net::UdpSocket;

mod stamp;

pub(crate) use stamp::{now_us, recv_stamped};

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

/// The CPU time of the packets' whole path so far: this load tool's (on loopback its sends
/// run the kernel's delivery, and forwarding in the kernel with it), the relay's (`pid`)
/// and the kernel's softirq threads' (deliveries deferred to them). What a relay costs
/// wherever the kernel bills it, without the machine's unrelated work (writeback, timers)
/// that /proc/stat's totals would add.
pub(crate) fn path_cpu(pid: Option<u32>) -> Duration {
    let softirq: Duration = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| c.starts_with("ksoftirqd/"))
        })
        .map(cpu)
        .sum();
    cpu(std::process::id()) + pid.map_or(Duration::ZERO, cpu) + softirq
}

/// A socket on loopback stamped by the kernel (see `stamp`).
pub(crate) fn stamped_socket() -> std::net::UdpSocket {
    stamp::stamped_socket_on(std::net::Ipv4Addr::LOCALHOST.into()).expect("a stamped socket")
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
