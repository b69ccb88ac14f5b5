//! Any body: the SDP reader (WebRTC attributes too) never panics, and a rewrite of what it
//! reads parses again with the same streams.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sdp::{MediaRewrite, Rewrite, Session};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = Session::parse(data) else { return };
    assert_eq!(s.webrtc().len(), s.media.len());
    let _ = s.bundle();
    let to = MediaRewrite {
        address: "203.0.113.5".parse().expect("address"),
        port: 30000,
        rtcp_port: None,
    };
    let out = s.rewrite(&Rewrite {
        media: vec![Some(to); s.media.len()],
        origin: Some("2001:db8::5".parse().expect("address")),
        strip_ice: true,
    });
    let again = Session::parse(&out).expect("a rewrite parses");
    assert_eq!(again.media.len(), s.media.len());
});
