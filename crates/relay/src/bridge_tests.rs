//! A browser and a phone through the relay, in memory: the browser's checks, handshake and
//! SRTP against the relay's leg, the phone's plain RTP and RTCP on its own ports.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use sdp::{Setup, WebRtcLeg};
use webrtc::testing::{rtcp, rtp, Browser};
use webrtc::Identity;

use crate::{Dropped, Forward, PortPool, Relay, SessionId, Side, StreamPorts, WebRtcStream};

const ANNOUNCE: &str = "192.0.2.1";
const PHONE: &str = "198.51.100.2:5000";
const PHONE_RTCP: &str = "198.51.100.2:5001";
const BROWSER: &str = "203.0.113.7:51000";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn id() -> SessionId {
    SessionId {
        call_id: "c".into(),
        from_tag: "a".into(),
    }
}

fn relay() -> Relay {
    let identity = Identity::generate().expect("identity");
    Relay::new(PortPool::new(30000..=30007), Duration::from_secs(60))
        .with_webrtc(identity, ip(ANNOUNCE))
}

/// Runs the browser against the relay's port `port` for `steps` of 10 ms.
fn run(now: &mut Instant, r: &mut Relay, b: &mut Browser, port: u16, steps: usize) {
    let relay_addr = SocketAddr::new(ip(ANNOUNCE), port);
    for _ in 0..steps {
        *now += Duration::from_millis(10);
        b.tick(*now, relay_addr);
        for (to, data) in std::mem::take(&mut b.out) {
            assert_eq!(to, relay_addr);
            let got = r.on_packet(*now, port, b.addr, &data);
            assert!(got == Err(Dropped::Taken), "{got:?}");
        }
        r.handle_timeouts(*now);
        while let Some((from, t)) = r.poll_transmit() {
            assert_eq!((from, t.to), (port, b.addr));
            b.receive(*now, relay_addr, &t.data);
        }
    }
}

/// A browser's call to a phone, answered; the handshake done. Gives the ports.
fn browser_calls_phone(now: &mut Instant, r: &mut Relay, b: &mut Browser) -> StreamPorts {
    let p = r
        .offer(*now, &id(), &[Some(b.addr)], Some(b.addr.ip()))
        .expect("ports")[0]
        .expect("relayed");
    let towards_phone = WebRtcStream {
        sender: Some(b.remote()),
        receiver: Some(false),
    };
    assert_eq!(
        r.set_webrtc(*now, &id(), Side::Offerer, &[towards_phone], true),
        [None]
    );
    let phone = Some(ip("198.51.100.2"));
    r.answer(*now, &id(), &[Some(addr(PHONE))], phone, "b", false);
    let back = r.set_webrtc(
        *now,
        &id(),
        Side::Answerer,
        &[WebRtcStream::default()],
        false,
    );
    let leg: &WebRtcLeg = back[0].as_ref().expect("the browser's leg");
    assert_eq!(leg.setup, Setup::Passive, "the browser said active");
    b.peer(
        SocketAddr::new(ip(ANNOUNCE), p.for_offerer),
        &leg.ice,
        Some(leg.setup),
    );
    run(now, r, b, p.for_offerer, 200);
    assert!(b.connected);
    p
}

#[test]
fn a_browser_and_a_phone_hear_each_other_rtp_and_rtcp() {
    let (mut now, mut r) = (Instant::now(), relay());
    let mut b = Browser::new(now, addr(BROWSER));
    let p = browser_calls_phone(&mut now, &mut r, &mut b);

    // Browser to phone: SRTP in, plain RTP out of the phone's port.
    let srtp = b.protect(&rtp(1)).expect("srtp");
    let f = r.on_packet(now, p.for_offerer, b.addr, &srtp);
    let to_phone = Forward {
        from: p.for_answerer,
        to: addr(PHONE),
    };
    assert_eq!(f, Ok(to_phone));
    assert_eq!(r.rewritten(), Some(&rtp(1)[..]));
    // Its RTCP (muxed) goes to the phone's RTCP port, from ours.
    let srtcp = b.protect(&rtcp()).expect("srtcp");
    let f = r.on_packet(now, p.for_offerer, b.addr, &srtcp);
    let rtcp_to_phone = Forward {
        from: p.for_answerer + 1,
        to: addr(PHONE_RTCP),
    };
    assert_eq!(f, Ok(rtcp_to_phone));
    assert_eq!(r.rewritten(), Some(&rtcp()[..]));

    // Phone to browser: plain in, SRTP out to the address the browser checked from.
    let f = r.on_packet(now, p.for_answerer, addr(PHONE), &rtp(2));
    let to_browser = Forward {
        from: p.for_offerer,
        to: b.addr,
    };
    assert_eq!(f, Ok(to_browser));
    let sent = r.rewritten().expect("protected").to_vec();
    assert_eq!(b.receive(now, to_browser.to, &sent), Some(rtp(2)));
    let f = r.on_packet(now, p.for_answerer + 1, addr(PHONE_RTCP), &rtcp());
    assert_eq!(f, Ok(to_browser));
    let sent = r.rewritten().expect("protected").to_vec();
    assert_eq!(b.receive(now, to_browser.to, &sent), Some(rtcp()));

    let stats = r.stats(&id()).expect("session")[0].expect("stream");
    assert_eq!((stats.0.packets, stats.0.rtcp_packets), (2, 1));
    assert_eq!((stats.1.packets, stats.1.rtcp_packets), (2, 1));
}

#[test]
fn a_bad_srtp_tag_is_dropped_and_counted() {
    let (mut now, mut r) = (Instant::now(), relay());
    let mut b = Browser::new(now, addr(BROWSER));
    let p = browser_calls_phone(&mut now, &mut r, &mut b);
    let mut srtp = b.protect(&rtp(1)).expect("srtp");
    let last = srtp.len() - 1;
    srtp[last] ^= 1;
    let f = r.on_packet(now, p.for_offerer, b.addr, &srtp);
    assert_eq!(f, Err(Dropped::Refused));
    assert_eq!(r.totals().refused, 1);
    assert_eq!(
        r.stats(&id()).expect("session")[0]
            .expect("stream")
            .0
            .refused,
        1
    );
    // Nor does a stranger's packet pass, with the browser's own good SRTP.
    let good = b.protect(&rtp(2)).expect("srtp");
    let f = r.on_packet(now, p.for_offerer, addr("203.0.113.99:4000"), &good);
    assert_eq!(f, Err(Dropped::WrongSource));
    let f = r.on_packet(now, p.for_offerer, b.addr, &good);
    assert!(f.is_ok());
}

#[test]
fn a_reinvite_for_hold_keeps_credentials_and_keys() {
    let (mut now, mut r) = (Instant::now(), relay());
    let mut b = Browser::new(now, addr(BROWSER));
    let p = browser_calls_phone(&mut now, &mut r, &mut b);
    let before = r.set_webrtc(
        now,
        &id(),
        Side::Answerer,
        &[WebRtcStream::default()],
        false,
    );
    // The browser's re-INVITE (hold, then resume): the same parameters.
    for _ in 0..2 {
        r.offer(now, &id(), &[Some(b.addr)], Some(b.addr.ip()));
        let again = WebRtcStream {
            sender: Some(b.remote()),
            receiver: None,
        };
        assert_eq!(
            r.set_webrtc(now, &id(), Side::Offerer, &[again], true),
            [None]
        );
        let after = r.set_webrtc(
            now,
            &id(),
            Side::Answerer,
            &[WebRtcStream::default()],
            false,
        );
        assert_eq!(after, before, "same ICE credentials, fingerprint and role");
    }
    let srtp = b.protect(&rtp(3)).expect("srtp");
    assert!(
        r.on_packet(now, p.for_offerer, b.addr, &srtp).is_ok(),
        "same keys"
    );
}

#[test]
fn a_phone_calls_a_browser_which_answers() {
    let (mut now, mut r) = (Instant::now(), relay());
    let mut b = Browser::new(now, addr(BROWSER));
    let p = r
        .offer(now, &id(), &[Some(addr(PHONE))], Some(ip("198.51.100.2")))
        .expect("ports")[0]
        .expect("relayed");
    let to_browser = WebRtcStream {
        sender: None,
        receiver: Some(true),
    };
    let legs = r.set_webrtc(now, &id(), Side::Offerer, &[to_browser], true);
    let leg = legs[0].as_ref().expect("a leg towards the browser");
    assert_eq!(leg.setup, Setup::ActPass);
    assert!(leg.fingerprint.starts_with("sha-256 "));
    b.peer(
        SocketAddr::new(ip(ANNOUNCE), p.for_answerer),
        &leg.ice,
        Some(leg.setup),
    );
    r.answer(now, &id(), &[Some(b.addr)], Some(b.addr.ip()), "b", false);
    let answer = WebRtcStream {
        sender: Some(b.remote()),
        receiver: None,
    };
    assert_eq!(
        r.set_webrtc(now, &id(), Side::Answerer, &[answer], false),
        [None]
    );
    run(&mut now, &mut r, &mut b, p.for_answerer, 200);
    assert!(b.connected);
    let f = r.on_packet(now, p.for_offerer, addr(PHONE), &rtp(5));
    assert_eq!(f.map(|f| f.to), Ok(b.addr));
    let sent = r.rewritten().expect("protected").to_vec();
    assert_eq!(b.receive(now, b.addr, &sent), Some(rtp(5)));
    let srtp = b.protect(&rtp(6)).expect("srtp");
    let f = r.on_packet(now, p.for_answerer, b.addr, &srtp);
    assert_eq!(f.map(|f| f.to), Ok(addr(PHONE)));
    assert!(r.has_legs());
    assert!(r.delete_dialog("c", "a", "b"));
    assert!(!r.has_legs(), "the legs go with the session");
}

#[test]
fn two_browsers_are_bridged_each_with_its_own_keys() {
    let (mut now, mut r) = (Instant::now(), relay());
    let mut a = Browser::new(now, addr(BROWSER));
    let mut b = Browser::new(now, addr("198.51.100.9:52000"));
    let p = r
        .offer(now, &id(), &[Some(a.addr)], Some(a.addr.ip()))
        .expect("ports")[0]
        .expect("relayed");
    let offer = WebRtcStream {
        sender: Some(a.remote()),
        receiver: None,
    };
    let to_b = r.set_webrtc(now, &id(), Side::Offerer, &[offer], true);
    let to_b = to_b[0].as_ref().expect("as the sender: a browser");
    b.peer(
        SocketAddr::new(ip(ANNOUNCE), p.for_answerer),
        &to_b.ice,
        Some(to_b.setup),
    );
    r.answer(now, &id(), &[Some(b.addr)], Some(b.addr.ip()), "b", false);
    let answer = WebRtcStream {
        sender: Some(b.remote()),
        receiver: None,
    };
    let to_a = r.set_webrtc(now, &id(), Side::Answerer, &[answer], false);
    let to_a = to_a[0].as_ref().expect("a's leg");
    assert_ne!(to_a.ice, to_b.ice);
    a.peer(
        SocketAddr::new(ip(ANNOUNCE), p.for_offerer),
        &to_a.ice,
        Some(to_a.setup),
    );
    run(&mut now, &mut r, &mut b, p.for_answerer, 200);
    run(&mut now, &mut r, &mut a, p.for_offerer, 200);
    let srtp = a.protect(&rtp(7)).expect("srtp");
    let f = r
        .on_packet(now, p.for_offerer, a.addr, &srtp)
        .expect("relayed");
    assert_eq!(f.to, b.addr);
    let sent = r.rewritten().expect("re-protected").to_vec();
    assert_ne!(sent, srtp, "under b's keys");
    assert_eq!(b.receive(now, b.addr, &sent), Some(rtp(7)));
}

#[test]
fn a_browsers_ice_restart_is_answered_with_new_credentials_and_followed() {
    let (mut now, mut r) = (Instant::now(), relay());
    let mut b = Browser::new(now, addr(BROWSER));
    let p = browser_calls_phone(&mut now, &mut r, &mut b);
    let before = r.set_webrtc(
        now,
        &id(),
        Side::Answerer,
        &[WebRtcStream::default()],
        false,
    );
    let before = before[0].clone().expect("leg");
    // The browser's re-offer with new ICE credentials; the phone answers it.
    b.ice.ice_restart(
        is::IceCreds {
            ufrag: "rstr".into(),
            pass: "restartedpasswordrestartedpass".into(),
        },
        true,
    );
    b.creds = b.ice.local_credentials().clone();
    r.offer(now, &id(), &[Some(b.addr)], Some(b.addr.ip()));
    let again = WebRtcStream {
        sender: Some(b.remote()),
        receiver: None,
    };
    r.set_webrtc(now, &id(), Side::Offerer, &[again], true);
    let answer = r.set_webrtc(
        now,
        &id(),
        Side::Answerer,
        &[WebRtcStream::default()],
        false,
    );
    let after = answer[0].clone().expect("leg");
    assert_ne!(after.ice, before.ice, "new credentials in the answer");
    assert_eq!(after.fingerprint, before.fingerprint);
    b.peer(
        SocketAddr::new(ip(ANNOUNCE), p.for_offerer),
        &after.ice,
        Some(after.setup),
    );
    run(&mut now, &mut r, &mut b, p.for_offerer, 100);
    let srtp = b.protect(&rtp(9)).expect("same keys");
    assert!(r.on_packet(now, p.for_offerer, b.addr, &srtp).is_ok());
}
