//! A leg against a browser of the test's own: a full, controlling ICE agent (`is`), a DTLS
//! client (`dimpl`) with a certificate of its own, and SRTP keyed from its handshake.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use is::{Candidate, IceAgent, IceCreds};
use sdp::Setup;

use crate::testing::{rtcp, rtp, Browser};
use crate::{Identity, Leg, Received, Refusal, CONSENT};

const RELAY: &str = "192.0.2.1:40000";
const BROWSER: &str = "198.51.100.7:51000";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

/// Runs the two for `steps` of 10 ms; packets cross at once. Gives the time reached.
fn run(now: &mut Instant, leg: &mut Leg, b: &mut Browser, steps: usize) {
    for _ in 0..steps {
        *now += Duration::from_millis(10);
        b.tick(*now, leg.local());
        for (to, data) in std::mem::take(&mut b.out) {
            assert_eq!(to, leg.local());
            leg.receive(*now, b.addr, &data);
        }
        leg.handle_timeout(*now);
        while let Some(t) = leg.poll_transmit() {
            assert_eq!(t.to, b.addr, "the relay answers where the browser is");
            b.receive(*now, leg.local(), &t.data);
        }
    }
}

fn setup() -> (Instant, Leg, Browser) {
    let now = Instant::now();
    let identity = Identity::generate().expect("identity");
    let leg = Leg::new(&identity, addr(RELAY), now);
    let mut browser = Browser::new(now, addr(BROWSER));
    browser.peer(leg.local(), &leg.credentials(), Some(leg.setup(false)));
    (now, leg, browser)
}

#[test]
fn a_browser_checks_handshakes_and_media_flows_both_ways() {
    let (mut now, mut leg, mut b) = setup();
    leg.set_remote(now, b.remote(), true);
    assert_eq!(leg.setup(false), Setup::Passive);
    run(&mut now, &mut leg, &mut b, 200);
    assert!(b.connected, "DTLS connected");
    assert!(leg.keyed());
    assert_eq!(leg.destination(now), Some(b.addr));

    // Browser to relay: SRTP in, plain RTP out.
    let sent = rtp(7);
    let srtp = b
        .srtp
        .as_mut()
        .expect("keyed")
        .1
        .protect_rtp(&sent)
        .expect("srtp");
    assert_ne!(srtp, sent);
    assert_eq!(leg.receive(now, b.addr, &srtp), Received::Rtp(sent));
    let report = b
        .srtp
        .as_mut()
        .expect("keyed")
        .1
        .protect_rtcp(&rtcp())
        .expect("srtcp");
    assert_eq!(leg.receive(now, b.addr, &report), Received::Rtcp(rtcp()));

    // Relay to browser: plain RTP in, SRTP to the nominated address.
    let t = leg.protect(now, &rtp(9)).expect("protected");
    assert_eq!(t.to, b.addr);
    assert_eq!(b.receive(now, leg.local(), &t.data), Some(rtp(9)));
    let t = leg.protect(now, &rtcp()).expect("protected");
    assert_eq!(b.receive(now, leg.local(), &t.data), Some(rtcp()));
}

#[test]
fn checks_before_the_browsers_sdp_are_answered_once_it_comes() {
    // The browser answers the relay's offer: its checks reach the relay before its SDP
    // answer does (through the proxy).
    let (mut now, mut leg, mut b) = setup();
    run(&mut now, &mut leg, &mut b, 30);
    assert!(!b.connected, "no answer without the peer's credentials");
    assert!(!b.dtls_started);
    leg.set_remote(now, b.remote(), true);
    run(&mut now, &mut leg, &mut b, 200);
    assert!(b.connected);
    assert!(leg.keyed());
    let srtp = b
        .srtp
        .as_mut()
        .expect("keyed")
        .1
        .protect_rtp(&rtp(2))
        .expect("srtp");
    assert_eq!(leg.receive(now, b.addr, &srtp), Received::Rtp(rtp(2)));
}

#[test]
fn a_certificate_other_than_the_sdps_fails_the_leg() {
    let (mut now, mut leg, mut b) = setup();
    let mut remote = b.remote();
    remote.fingerprint.digest[0] ^= 1;
    leg.set_remote(now, remote, true);
    run(&mut now, &mut leg, &mut b, 200);
    assert!(!leg.keyed());
    assert!(leg.protect(now, &rtp(1)).is_none());
    if let Some((_, out)) = b.srtp.as_mut() {
        let srtp = out.protect_rtp(&rtp(1)).expect("srtp");
        assert_eq!(
            leg.receive(now, b.addr, &srtp),
            Received::Refused(Refusal::Failed)
        );
    }
}

#[test]
fn a_bad_tag_is_dropped_and_counted() {
    let (mut now, mut leg, mut b) = setup();
    leg.set_remote(now, b.remote(), true);
    run(&mut now, &mut leg, &mut b, 200);
    let mut srtp = b
        .srtp
        .as_mut()
        .expect("keyed")
        .1
        .protect_rtp(&rtp(3))
        .expect("srtp");
    let last = srtp.len() - 1;
    srtp[last] ^= 0x40;
    assert_eq!(
        leg.receive(now, b.addr, &srtp),
        Received::Refused(Refusal::Srtp)
    );
    assert_eq!(leg.stats().srtp.auth, 1);
    // The good one after it still passes.
    let srtp = b
        .srtp
        .as_mut()
        .expect("keyed")
        .1
        .protect_rtp(&rtp(4))
        .expect("srtp");
    assert_eq!(leg.receive(now, b.addr, &srtp), Received::Rtp(rtp(4)));
}

#[test]
fn nothing_from_an_address_that_passed_no_check() {
    let (mut now, mut leg, mut b) = setup();
    leg.set_remote(now, b.remote(), true);
    run(&mut now, &mut leg, &mut b, 200);
    let stranger = addr("203.0.113.9:4000");
    let srtp = b
        .srtp
        .as_mut()
        .expect("keyed")
        .1
        .protect_rtp(&rtp(5))
        .expect("srtp");
    assert_eq!(
        leg.receive(now, stranger, &srtp),
        Received::Refused(Refusal::Unchecked)
    );
    // A ClientHello-like record from a stranger starts nothing.
    let hello = [22u8, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        leg.receive(now, stranger, &hello),
        Received::Refused(Refusal::Unchecked)
    );
    assert!(leg.poll_transmit().is_none(), "no answer to a stranger");
    // A check with the wrong password gets no answer either.
    let mut other = IceAgent::new(IceCreds {
        ufrag: "evil".to_owned(),
        pass: "evilpasswordevilpasswordevil".to_owned(),
    });
    other.set_controlling(true);
    other.add_local_candidate(Candidate::host(stranger, "udp").expect("candidate"));
    other.add_remote_candidate(Candidate::host(leg.local(), "udp").expect("candidate"));
    other.set_remote_credentials(IceCreds {
        ufrag: leg.credentials().ufrag,
        pass: "not-the-password-not-the-password".to_owned(),
    });
    for _ in 0..20 {
        now += Duration::from_millis(50);
        other.handle_timeout(now);
        while let Some(t) = other.poll_transmit() {
            assert_eq!(
                leg.receive(now, stranger, &t.contents),
                Received::Refused(Refusal::Unchecked)
            );
        }
    }
    assert!(leg.poll_transmit().is_none());
    assert_eq!(
        leg.destination(now),
        Some(b.addr),
        "media still goes to the browser"
    );
    assert!(leg.stats().unchecked >= 3);
}

#[test]
fn the_same_sdp_again_keeps_credentials_and_keys_and_an_ice_restart_is_followed() {
    let (mut now, mut leg, mut b) = setup();
    leg.set_remote(now, b.remote(), true);
    run(&mut now, &mut leg, &mut b, 200);
    let creds = leg.credentials();
    // A re-INVITE (hold, resume): same parameters.
    leg.set_remote(now, b.remote(), true);
    assert_eq!(leg.credentials(), creds);
    assert!(leg.keyed());
    let srtp = b
        .srtp
        .as_mut()
        .expect("keyed")
        .1
        .protect_rtp(&rtp(10))
        .expect("srtp");
    assert_eq!(leg.receive(now, b.addr, &srtp), Received::Rtp(rtp(10)));

    // The browser restarts ICE: new ufrag and password, same certificate.
    b.creds = IceCreds {
        ufrag: "brw2".to_owned(),
        pass: "anotherbrowserpasswordanother".to_owned(),
    };
    let restart = b.remote();
    leg.set_remote(now, restart.clone(), true);
    let fresh = leg.credentials();
    assert_ne!(fresh.ufrag, creds.ufrag, "new credentials for a restart");
    // Till our answer goes, the old session is the one: a refused re-offer changes nothing.
    let srtp = b.protect(&rtp(12)).expect("srtp");
    assert_eq!(leg.receive(now, b.addr, &srtp), Received::Rtp(rtp(12)));
    leg.commit(now);
    assert_eq!(leg.credentials(), fresh);
    assert!(leg.keyed(), "the DTLS session stays");
    b.ice.ice_restart(b.creds.clone(), true);
    b.ice
        .add_remote_candidate(Candidate::host(leg.local(), "udp").expect("candidate"));
    b.ice.set_remote_credentials(IceCreds {
        ufrag: fresh.ufrag,
        pass: fresh.pwd,
    });
    run(&mut now, &mut leg, &mut b, 200);
    assert_eq!(leg.destination(now), Some(b.addr));
    let srtp = b
        .srtp
        .as_mut()
        .expect("keyed")
        .1
        .protect_rtp(&rtp(11))
        .expect("srtp");
    assert_eq!(leg.receive(now, b.addr, &srtp), Received::Rtp(rtp(11)));
}

#[test]
fn an_offer_says_actpass_and_the_role_follows_the_answer() {
    let (now, mut leg, b) = setup();
    assert_eq!(leg.setup(true), Setup::ActPass);
    let mut remote = b.remote();
    remote.setup = Some(Setup::Passive);
    leg.set_remote(now, remote, true);
    assert_eq!(leg.setup(true), Setup::Active);
}

proptest::proptest! {
    /// Whatever reaches the port, from the browser's address or anyone's, before or after
    /// the handshake: no panic, and nothing comes out as media but what SRTP let through.
    #[test]
    fn any_datagram_is_taken_or_refused_without_panic(
        packets in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..300), 1..20),
        first in proptest::collection::vec(0u8..=3, 20),
    ) {
        let (mut now, mut leg, mut b) = setup();
        leg.set_remote(now, b.remote(), true);
        run(&mut now, &mut leg, &mut b, 100);
        for (i, mut p) in packets.into_iter().enumerate() {
            // Half of them look like STUN, DTLS or RTP by their first byte.
            if let Some(f) = p.first_mut() {
                *f = match first[i % first.len()] {
                    0 => 0,
                    1 => 22,
                    2 => 0x80,
                    _ => *f,
                };
            }
            let src = if i % 2 == 0 { b.addr } else { addr("203.0.113.9:4000") };
            let got = leg.receive(now, src, &p);
            proptest::prop_assert!(!matches!(got, Received::Rtp(_) | Received::Rtcp(_)));
        }
    }
}

#[test]
fn a_refused_restart_leaves_the_leg_as_it_was() {
    let (mut now, mut leg, mut b) = setup();
    leg.set_remote(now, b.remote(), true);
    run(&mut now, &mut leg, &mut b, 200);
    let creds = leg.credentials();
    let mut restart = b.remote();
    restart.ice.ufrag = "brw3".to_owned();
    leg.set_remote(now, restart, true);
    assert_ne!(leg.credentials(), creds);
    // The offer was refused (488): the browser's next SDP is its old one.
    leg.set_remote(now, b.remote(), true);
    leg.commit(now);
    assert_eq!(leg.credentials(), creds);
    run(&mut now, &mut leg, &mut b, 50);
    assert_eq!(leg.destination(now), Some(b.addr), "its checks still pass");
}

#[test]
fn another_forks_answer_is_taken_without_new_credentials_of_ours() {
    let (mut now, mut leg, mut b) = setup();
    let ours = leg.credentials();
    let mut first = b.remote();
    first.ice.ufrag = "fork1".to_owned();
    leg.set_remote(now, first, false);
    // The fork that answers for good is another browser.
    leg.set_remote(now, b.remote(), false);
    assert_eq!(
        leg.credentials(),
        ours,
        "our offer's credentials are the ones it has"
    );
    run(&mut now, &mut leg, &mut b, 200);
    assert!(leg.keyed());
}

#[test]
fn media_stops_going_to_a_browser_that_stopped_checking() {
    let (mut now, mut leg, mut b) = setup();
    leg.set_remote(now, b.remote(), true);
    run(&mut now, &mut leg, &mut b, 200);
    assert!(leg.protect(now, &rtp(1)).is_some());
    now += CONSENT;
    assert_eq!(leg.destination(now), None, "no check for 30 s");
    assert!(leg.protect(now, &rtp(2)).is_none());
    // Its next check brings it back.
    run(&mut now, &mut leg, &mut b, 300);
    assert_eq!(leg.destination(now), Some(b.addr));
}

#[test]
fn checks_from_too_many_sources_are_refused() {
    let (mut now, mut leg, b) = setup();
    leg.set_remote(now, b.remote(), true);
    let ours = leg.credentials();
    let mut taken = 0;
    for port in 0..40u16 {
        let src = SocketAddr::new("198.51.100.7".parse().expect("ip"), 40000 + port);
        let mut a = IceAgent::new(b.creds.clone());
        a.set_controlling(true);
        a.add_local_candidate(Candidate::host(src, "udp").expect("candidate"));
        a.add_remote_candidate(Candidate::host(leg.local(), "udp").expect("candidate"));
        a.set_remote_credentials(IceCreds {
            ufrag: ours.ufrag.clone(),
            pass: ours.pwd.clone(),
        });
        now += Duration::from_millis(50);
        a.handle_timeout(now);
        if let Some(t) = a.poll_transmit() {
            if leg.receive(now, src, &t.contents) == Received::Handled {
                taken += 1;
            }
        }
    }
    assert_eq!(taken, 16, "one candidate per source, 16 at most");
}
