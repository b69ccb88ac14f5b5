//! Any body: the SDP reader (WebRTC attributes too) never panics, and a rewrite of what it
//! reads, for a receiver of the same transport, a browser or a phone, parses again with the
//! same streams.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sdp::{IceCredentials, MediaRewrite, Rewrite, Session, Setup, Transport, WebRtcLeg};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = Session::parse(data) else { return };
    assert_eq!(s.webrtc().len(), s.media.len());
    let _ = s.bundle();
    let to = MediaRewrite {
        address: "203.0.113.5".parse().expect("address"),
        port: 30000,
        rtcp_port: None,
    };
    let browser = Transport::WebRtc(WebRtcLeg {
        ice: IceCredentials {
            ufrag: "relay".into(),
            pwd: "relaypasswordrelaypassword".into(),
        },
        fingerprint: "sha-256 AA:BB".into(),
        setup: Setup::ActPass,
        mid: None,
    });
    for transport in [None, Some(browser), Some(Transport::Plain)] {
        let out = s.rewrite(&Rewrite {
            media: vec![Some(to); s.media.len()],
            origin: Some("2001:db8::5".parse().expect("address")),
            strip_ice: true,
            transports: vec![transport; s.media.len()],
        });
        let again = Session::parse(&out).expect("a rewrite parses");
        assert_eq!(again.media.len(), s.media.len());
    }
});
