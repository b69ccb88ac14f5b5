//! What the relay's loopback tests share: the ports of a test, a relay's configuration and a
//! phone's SDP.

#![allow(dead_code)] // each test binary uses a different part

use std::net::UdpSocket;
use std::time::Duration;

use relay_net::RelayConfig;

/// The first of 20 ports for test `slot` (0–19) of this process: apart from every other
/// test's, and from the same test's in another process most of the time.
pub(crate) fn base(slot: u16) -> u16 {
    20000 + ((std::process::id() % 50) as u16 * 20 + slot) * 20
}

/// A relay on loopback over `size` ports from `base`, announcing `announce`, one thread.
pub(crate) fn config(base: u16, size: u16, announce: &str, io_uring: bool) -> RelayConfig {
    RelayConfig {
        bind: "127.0.0.1".parse().expect("ip"),
        announce: announce.parse().expect("ip"),
        announce6: None,
        ports: base..=base + size - 1,
        timeout: Duration::from_secs(60),
        threads: 1,
        io_uring,
        realtime_priority: 0,
        max_ringing_per_source: 0,
        trusted: Vec::new(),
        kernel: false,
    }
}

/// A phone's SDP: G.711 audio at its socket's address.
pub(crate) fn phone_sdp(s: &UdpSocket) -> Vec<u8> {
    let a = s.local_addr().expect("addr");
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
        ip = a.ip(),
        port = a.port()
    )
    .into_bytes()
}
