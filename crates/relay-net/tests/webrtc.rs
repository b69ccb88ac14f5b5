//! A browser's media through the relay on loopback, both backends: the relay's leg answers
//! its checks and handshakes over real sockets (its DTLS flights on the shard's timers), and
//! its SRTP reaches a phone as plain RTP, and the phone's RTP reaches it as SRTP.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use relay::{MediaOp, MediaRequest, Peer};
use relay_net::MediaRelay;
use webrtc::testing::{rtp, Browser};

mod support;
use support::{base, config, phone_sdp};

fn socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_read_timeout(Some(Duration::from_millis(5)))
        .expect("timeout");
    s
}

fn request(op: MediaOp, to_tag: &str, sdp: Vec<u8>, receiver: Peer) -> MediaRequest {
    MediaRequest {
        op,
        call_id: "webrtc".into(),
        from_tag: "a".into(),
        to_tag: to_tag.into(),
        sdp,
        source: Some("127.0.0.1".parse().expect("ip")),
        receiver_ipv6: false,
        receiver,
        carrier: None,
        caller: None,
        authenticated: false,
    }
}

/// Runs the browser on its socket for `d`: its checks and flights go out, what comes back
/// goes in; media it gets is kept.
fn pump(b: &mut Browser, sock: &UdpSocket, relay: SocketAddr, d: Duration) -> Vec<Vec<u8>> {
    let until = Instant::now() + d;
    let mut media = Vec::new();
    let mut buf = [0u8; 2048];
    while Instant::now() < until {
        b.tick(Instant::now(), relay);
        for (to, data) in std::mem::take(&mut b.out) {
            sock.send_to(&data, to).expect("send");
        }
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            if let Some(plain) = b.receive(Instant::now(), from, &buf[..n]) {
                media.push(plain);
            }
        }
    }
    media
}

fn a_browser_talks_to_a_phone(io_uring: bool, base: u16) {
    let relay = MediaRelay::start(&config(base, 20, "127.0.0.1", io_uring)).expect("relay");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let (bs, phone) = (socket(), socket());
    let mut b = Browser::new(Instant::now(), bs.local_addr().expect("addr"));
    let offer = request(MediaOp::Offer, "", b.offer(false), Peer::Plain);
    let to_phone = rt.block_on(relay.apply(&offer)).expect("offer");
    let to_phone = sdp::Session::parse(&to_phone).expect("sdp");
    assert_eq!(to_phone.media[0].proto, "RTP/AVP");
    assert!(!to_phone.webrtc()[0].is_webrtc());
    let phone_side = SocketAddr::new("127.0.0.1".parse().expect("ip"), to_phone.media[0].port);
    let answer = request(MediaOp::Answer, "b", phone_sdp(&phone), Peer::WebRtc);
    let to_browser = rt.block_on(relay.apply(&answer)).expect("answer");
    let to_browser = sdp::Session::parse(&to_browser).expect("sdp");
    let leg = &to_browser.webrtc()[0];
    assert!(leg.is_webrtc() && leg.ice_lite, "{to_browser:?}");
    assert_eq!(leg.setup, Some(sdp::Setup::Passive));
    assert_eq!(to_browser.bundle(), ["0"]);
    let browser_side = SocketAddr::new("127.0.0.1".parse().expect("ip"), to_browser.media[0].port);
    b.peer(browser_side, leg.ice.as_ref().expect("ice"), leg.setup);
    pump(&mut b, &bs, browser_side, Duration::from_secs(3));
    assert!(b.connected, "DTLS over the relay's sockets");

    // Browser to phone.
    for seq in 0..5 {
        let srtp = b.protect(&rtp(seq)).expect("keyed");
        bs.send_to(&srtp, browser_side).expect("send");
    }
    let mut buf = [0u8; 2048];
    let mut heard = Vec::new();
    let until = Instant::now() + Duration::from_secs(2);
    while heard.len() < 5 && Instant::now() < until {
        if let Ok((n, from)) = phone.recv_from(&mut buf) {
            assert_eq!(from, phone_side);
            heard.push(buf[..n].to_vec());
        }
    }
    assert_eq!(
        heard,
        (0..5).map(rtp).collect::<Vec<_>>(),
        "plain RTP at the phone"
    );

    // Phone to browser (the phone latched by its first packet).
    for seq in 10..15 {
        phone.send_to(&rtp(seq), phone_side).expect("send");
    }
    let got = pump(&mut b, &bs, browser_side, Duration::from_millis(500));
    assert_eq!(
        got,
        (10..15).map(rtp).collect::<Vec<_>>(),
        "SRTP at the browser"
    );

    // A forged packet is refused and counted.
    let mut bad = b.protect(&rtp(20)).expect("keyed");
    let last = bad.len() - 1;
    bad[last] ^= 1;
    bs.send_to(&bad, browser_side).expect("send");
    let until = Instant::now() + Duration::from_secs(2);
    while rt.block_on(relay.totals()).refused == 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(rt.block_on(relay.totals()).refused, 1);
    assert!(
        phone.recv_from(&mut buf).is_err(),
        "nothing reached the phone"
    );
}

#[test]
fn a_browser_talks_to_a_phone_through_io_uring() {
    a_browser_talks_to_a_phone(true, base(0));
}

#[test]
fn a_browser_talks_to_a_phone_through_tasks() {
    a_browser_talks_to_a_phone(false, base(1));
}

/// A phone's SDES-SRTP offer (keys in its SDP) to a browser is not bridged: the relay could
/// not read its packets; it goes on as it came (relayed, not rewritten for WebRTC).
#[test]
fn a_phones_sdes_offer_is_not_bridged() {
    let relay = MediaRelay::start(&config(base(2), 20, "127.0.0.1", false)).expect("relay");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let sdp = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n";
    let offer = request(MediaOp::Offer, "", sdp.to_vec(), Peer::WebRtc);
    let out = rt.block_on(relay.apply(&offer)).expect("offer");
    let out = sdp::Session::parse(&out).expect("sdp");
    assert_eq!(out.media[0].proto, "RTP/SAVP");
    assert!(!out.webrtc()[0].is_webrtc());
}
