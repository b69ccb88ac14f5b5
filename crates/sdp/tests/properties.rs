//! Property: every line the relay does not rewrite comes out byte for byte, in order, and
//! no input panics.

use proptest::prelude::*;
use sdp::{IceCredentials, MediaRewrite, Rewrite, Session, Setup, Transport, WebRtcLeg};

/// Lines a relay never touches.
fn other_line() -> impl Strategy<Value = String> {
    prop_oneof![
        "b=AS:[0-9]{1,4}",
        "a=rtpmap:[0-9]{1,3} [A-Za-z0-9]{1,8}/[0-9]{4,5}",
        "a=fmtp:[0-9]{1,3} [ -~]{0,20}",
        "a=[a-z]{2,10}(:[!-~]{1,12})?",
        "i=[ -~]{0,20}",
        "k=clear:[a-z0-9]{1,8}",
    ]
    .prop_filter("not a line we rewrite", |l| {
        let name = l
            .strip_prefix("a=")
            .map(|a| a.split(':').next().unwrap_or(a));
        !matches!(
            name,
            Some(
                "rtcp"
                    | "candidate"
                    | "ice-ufrag"
                    | "ice-pwd"
                    | "ice-options"
                    | "ice-lite"
                    | "ice-mismatch"
                    | "remote-candidates"
                    | "end-of-candidates"
            )
        )
    })
}

fn untouched(body: &str) -> Vec<String> {
    body.split("\r\n")
        .filter(|l| !l.starts_with("c=") && !l.starts_with("m=") && !l.starts_with("o="))
        .map(str::to_owned)
        .collect()
}

proptest! {
    #[test]
    fn lines_not_rewritten_come_out_as_they_came(
        session in proptest::collection::vec(other_line(), 0..4),
        audio in proptest::collection::vec(other_line(), 0..6),
        video in proptest::collection::vec(other_line(), 0..6),
        port in 1u16..65000,
    ) {
        let mut body = String::from("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n");
        for l in &session { body += l; body += "\r\n"; }
        body += "m=audio 4000 RTP/AVP 0\r\n";
        for l in &audio { body += l; body += "\r\n"; }
        body += "m=video 4002 RTP/AVP 96\r\nc=IN IP6 2001:db8::1\r\n";
        for l in &video { body += l; body += "\r\n"; }
        let s = Session::parse(body.as_bytes()).expect("sdp");
        let to = |port| Some(MediaRewrite { address: "203.0.113.5".parse().unwrap(), port, rtcp_port: None });
        let out = s.rewrite(&Rewrite { media: vec![to(port), to(port.wrapping_add(2))], origin: None, strip_ice: true, transports: vec![] });
        let out = String::from_utf8(out).expect("utf-8");
        prop_assert_eq!(untouched(&out), untouched(&body));
    }

    #[test]
    fn no_body_makes_it_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(s) = Session::parse(&bytes) {
            prop_assert_eq!(s.webrtc().len(), s.media.len());
            let _ = s.bundle();
            let media = vec![Some(MediaRewrite { address: "192.0.2.1".parse().unwrap(), port: 1, rtcp_port: None }); s.media.len()];
            let browser = Transport::WebRtc(WebRtcLeg {
                ice: IceCredentials { ufrag: "relay".into(), pwd: "relaypasswordrelaypassword".into() },
                fingerprint: "sha-256 AA:BB".into(),
                setup: Setup::ActPass,
                mid: None,
            });
            // For a receiver of the same transport, a browser, a phone.
            for t in [None, Some(browser), Some(Transport::Plain)] {
                let transports = vec![t.clone(); s.media.len()];
                let rw = Rewrite { media: media.clone(), origin: Some("::1".parse().unwrap()), strip_ice: true, transports };
                let out = s.rewrite(&rw);
                let again = Session::parse(&out).expect("a rewrite parses");
                prop_assert_eq!(again.media.len(), s.media.len());
                if t.is_some() {
                    // Once rewritten, a stream says what its receiver speaks, whatever it said.
                    let webrtc = again.webrtc();
                    for (i, _) in again.media.iter().enumerate().filter(|(_, m)| m.port != 0) {
                        prop_assert_eq!(webrtc[i].is_webrtc(), t != Some(Transport::Plain), "{}", String::from_utf8_lossy(&out));
                    }
                }
            }
        }
    }
}
