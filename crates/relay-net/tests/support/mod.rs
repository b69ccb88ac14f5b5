//! What the relay's loopback tests share: the ports of a test, a relay's configuration and a
//! phone's SDP.

#![allow(dead_code)] // each test binary uses a different part

use std::net::UdpSocket;
use std::time::Duration;

use relay::{MediaOp, MediaRequest};
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

/// A phone's media socket on loopback, waiting half a second at most for a packet.
pub(crate) fn phone() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    s
}

/// What a proxy asks of the relay for call "loopback", from the party with `from_tag`.
pub(crate) fn request(op: MediaOp, from_tag: &str, to_tag: &str, sdp: Vec<u8>) -> MediaRequest {
    MediaRequest {
        op,
        call_id: "loopback".into(),
        from_tag: from_tag.into(),
        to_tag: to_tag.into(),
        sdp,
        source: None,
        receiver_ipv6: false,
        receiver: relay::Peer::AsSender,
        carrier: None,
        caller: None,
        authenticated: false,
    }
}

/// The port of an SDP's audio stream.
pub(crate) fn audio_port(sdp: &str) -> u16 {
    let m = sdp.lines().find(|l| l.starts_with("m=audio ")).expect("m=");
    m.split(' ')
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("port")
}
