//! The rewrites a relay makes, case by case (issue 13, item 4).

use std::net::IpAddr;

use super::*;

const RELAY: &str = "203.0.113.5";

fn relay(port: u16) -> Option<MediaRewrite> {
    Some(MediaRewrite {
        address: RELAY.parse().expect("ip"),
        port,
        rtcp_port: None,
    })
}

/// Rewrites `sdp` (LF lines, turned into CRLF) for these streams.
fn rewrite(sdp: &str, media: Vec<Option<MediaRewrite>>) -> String {
    let body = sdp.replace('\n', "\r\n");
    let s = Session::parse(body.as_bytes()).expect("sdp");
    let out = s.rewrite(&Rewrite {
        media,
        ..Rewrite::default()
    });
    String::from_utf8(out).expect("utf-8").replace("\r\n", "\n")
}

const AUDIO: &str = "v=0
o=alice 2890844526 2890844526 IN IP4 192.168.1.10
s=-
c=IN IP4 192.168.1.10
t=0 0
m=audio 49170 RTP/AVP 0 8 101
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
";

#[test]
fn an_audio_stream_goes_to_the_relay_and_nothing_else_changes() {
    let s = Session::parse(AUDIO.as_bytes()).expect("sdp");
    assert_eq!(s.media.len(), 1);
    assert_eq!(
        (s.media[0].kind.as_str(), s.media[0].port),
        ("audio", 49170)
    );
    assert_eq!(s.media[0].proto, "RTP/AVP");
    assert_eq!(
        s.connection.map(|c| c.address),
        Some("192.168.1.10".parse().expect("ip"))
    );
    let out = rewrite(AUDIO, vec![relay(30000)]);
    assert_eq!(
        out,
        AUDIO
            .replace("c=IN IP4 192.168.1.10", "c=IN IP4 203.0.113.5")
            .replace("m=audio 49170", "m=audio 30000")
    );
}

#[test]
fn rtcp_attributes_follow_the_stream() {
    let sdp = format!("{AUDIO}a=rtcp:49171\n");
    assert_eq!(
        Session::parse(sdp.as_bytes()).expect("sdp").media[0].rtcp_port,
        Some(49171)
    );
    assert!(rewrite(&sdp, vec![relay(30000)]).ends_with("a=rtcp:30001\n"));
    let addressed = format!("{AUDIO}a=rtcp:49171 IN IP4 192.168.1.10\n");
    assert!(rewrite(&addressed, vec![relay(30000)]).ends_with("a=rtcp:30001 IN IP4 203.0.113.5\n"));
    let chosen = Some(MediaRewrite {
        rtcp_port: Some(31000),
        ..relay(30000).expect("relay")
    });
    assert!(rewrite(&sdp, vec![chosen]).ends_with("a=rtcp:31000\n"));
    // rtcp-mux: RTCP on the RTP port.
    let mux = format!("{AUDIO}a=rtcp:49170\na=rtcp-mux\n");
    let s = Session::parse(mux.as_bytes()).expect("sdp");
    assert!(s.media[0].rtcp_mux);
    assert!(rewrite(&mux, vec![relay(30000)]).ends_with("a=rtcp:30000\na=rtcp-mux\n"));
}

#[test]
fn ipv6_and_ipv4_are_bridged() {
    let v6 = "v=0
o=bob 1 1 IN IP6 2001:db8::2
s=-
c=IN IP6 2001:db8::2
t=0 0
m=audio 5004 RTP/AVP 0
";
    let out = rewrite(v6, vec![relay(30000)]);
    assert!(out.contains("\nc=IN IP4 203.0.113.5\n"), "{out}");
    assert!(
        out.contains("o=bob 1 1 IN IP6 2001:db8::2"),
        "o= untouched: {out}"
    );
    let to_v6 = Some(MediaRewrite {
        address: "2001:db8::5".parse().expect("ip"),
        port: 40000,
        rtcp_port: None,
    });
    let out = rewrite(AUDIO, vec![to_v6]);
    assert!(
        out.contains("\nc=IN IP6 2001:db8::5\n") && out.contains("m=audio 40000 "),
        "{out}"
    );
}

#[test]
fn several_streams_each_get_their_port_and_their_own_connection() {
    let sdp = "v=0
o=- 1 1 IN IP4 10.0.0.1
s=-
t=0 0
m=audio 4000 RTP/AVP 0
c=IN IP4 10.0.0.1
m=video 4002 RTP/AVP 96
c=IN IP4 10.0.0.1
a=rtpmap:96 H264/90000
";
    let out = rewrite(sdp, vec![relay(30000), relay(30002)]);
    assert_eq!(
        out,
        sdp.replace("c=IN IP4 10.0.0.1", "c=IN IP4 203.0.113.5")
            .replace("m=audio 4000", "m=audio 30000")
            .replace("m=video 4002", "m=video 30002")
    );
    // One stream left alone.
    let out = rewrite(sdp, vec![relay(30000), None]);
    assert!(
        out.contains("m=video 4002 RTP/AVP 96\nc=IN IP4 10.0.0.1\n"),
        "{out}"
    );
}

#[test]
fn a_stream_without_its_own_connection_that_goes_elsewhere_gets_one() {
    let sdp = "v=0
o=- 1 1 IN IP4 10.0.0.1
s=-
c=IN IP4 10.0.0.1
t=0 0
m=audio 4000 RTP/AVP 0
m=video 4002 RTP/AVP 96
i=camera
a=sendrecv
";
    let elsewhere = Some(MediaRewrite {
        address: "198.51.100.9".parse().expect("ip"),
        port: 30002,
        rtcp_port: None,
    });
    let out = rewrite(sdp, vec![relay(30000), elsewhere]);
    assert!(out.contains("\nc=IN IP4 203.0.113.5\n"), "{out}");
    assert!(
        out.contains("m=video 30002 RTP/AVP 96\ni=camera\nc=IN IP4 198.51.100.9\na=sendrecv\n"),
        "{out}"
    );
}

#[test]
fn hold_is_kept_as_the_peer_put_it() {
    let sendonly = format!("{AUDIO}a=sendonly\n");
    let s = Session::parse(sendonly.as_bytes()).expect("sdp");
    assert_eq!(s.media[0].direction, Direction::SendOnly);
    assert!(rewrite(&sendonly, vec![relay(30000)]).ends_with("a=sendonly\n"));
    let inactive = AUDIO.replace("t=0 0\n", "t=0 0\na=inactive\n");
    let s = Session::parse(inactive.as_bytes()).expect("sdp");
    assert_eq!(
        s.media[0].direction,
        Direction::Inactive,
        "from the session"
    );
    // RFC 2543 hold: the zero address stays.
    let zero = AUDIO.replace("c=IN IP4 192.168.1.10", "c=IN IP4 0.0.0.0");
    let out = rewrite(&zero, vec![relay(30000)]);
    assert!(
        out.contains("c=IN IP4 0.0.0.0\n") && out.contains("m=audio 30000 "),
        "{out}"
    );
}

#[test]
fn a_stream_of_several_ports_gets_the_relays_one() {
    let sdp = AUDIO.replace("m=audio 49170 RTP/AVP", "m=audio 49170/2 RTP/AVP");
    let out = rewrite(&sdp, vec![relay(30000)]);
    assert!(out.contains("\nm=audio 30000 RTP/AVP 0 8 101\n"), "{out}");
}

#[test]
fn a_declined_stream_is_left_alone() {
    let sdp = format!("{AUDIO}m=video 0 RTP/AVP 96\n");
    let out = rewrite(&sdp, vec![relay(30000), relay(30002)]);
    assert!(out.ends_with("m=video 0 RTP/AVP 96\n"), "{out}");
}

#[test]
fn ice_is_removed_towards_plain_rtp_and_origin_rewritten_when_asked() {
    let sdp = format!(
        "{AUDIO}a=ice-ufrag:F7gI\na=ice-pwd:x9cml/YzichV2+XlhiMu8g\na=candidate:1 1 UDP 2130706431 192.168.1.10 49170 typ host\na=end-of-candidates\n"
    );
    let body = sdp.replace('\n', "\r\n");
    let s = Session::parse(body.as_bytes()).expect("sdp");
    let out = s.rewrite(&Rewrite {
        media: vec![relay(30000)],
        origin: Some(RELAY.parse().expect("ip")),
        strip_ice: true,
        ..Default::default()
    });
    let out = String::from_utf8(out).expect("utf-8");
    assert!(!out.contains("ice-") && !out.contains("candidate"), "{out}");
    assert!(
        out.contains("o=alice 2890844526 2890844526 IN IP4 203.0.113.5\r\n"),
        "{out}"
    );
    assert!(out.ends_with("a=ptime:20\r\n"), "{out}");
}

#[test]
fn line_endings_are_kept_as_they_came() {
    // LF alone, and no ending on the last line.
    let lf = AUDIO.trim_end();
    let s = Session::parse(lf.as_bytes()).expect("sdp");
    let out = String::from_utf8(s.rewrite(&Rewrite {
        media: vec![relay(30000)],
        ..Rewrite::default()
    }))
    .expect("utf-8");
    assert_eq!(
        out,
        lf.replace("c=IN IP4 192.168.1.10", "c=IN IP4 203.0.113.5")
            .replace("m=audio 49170", "m=audio 30000")
    );
}

#[test]
fn what_is_not_sdp_is_refused() {
    assert_eq!(Session::parse(b"hello"), Err(SdpError::NoVersion));
    assert_eq!(
        Session::parse(b"v=0\r\nm=audio x RTP/AVP 0\r\n"),
        Err(SdpError::BadMedia(2))
    );
    assert_eq!(
        Session::parse(b"v=0\r\nc=IN IP4 nope\r\n"),
        Err(SdpError::BadConnection(2))
    );
    assert_eq!(
        Session::parse(b"v=0\r\nnonsense\r\n"),
        Err(SdpError::BadLine(2))
    );
    assert_eq!(Session::parse(&[0xff, 0xfe]), Err(SdpError::NotText));
    let _: IpAddr = RELAY.parse().expect("ip");
}

#[test]
fn a_stream_left_alone_keeps_the_sessions_address_as_its_own() {
    let shared = "v=0
o=- 1 1 IN IP4 10.0.0.1
s=-
c=IN IP4 10.0.0.1
t=0 0
m=audio 4000 RTP/AVP 0
m=video 4002 RTP/AVP 96
";
    let out = rewrite(shared, vec![relay(30000), None]);
    assert!(out.contains("\nc=IN IP4 203.0.113.5\nt=0 0\n"), "{out}");
    assert!(
        out.ends_with("m=audio 30000 RTP/AVP 0\nm=video 4002 RTP/AVP 96\nc=IN IP4 10.0.0.1\n"),
        "{out}"
    );
}

/// A browser's audio offer (Chrome's shape, gathered: its candidates in the SDP).
const BROWSER: &str = "v=0
o=- 4611731400430051336 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0
a=extmap-allow-mixed
a=msid-semantic: WMS stream
m=audio 54321 UDP/TLS/RTP/SAVPF 111 63 9 0 8 126
c=IN IP4 198.51.100.7
a=rtcp:9 IN IP4 0.0.0.0
a=candidate:2 1 udp 1686052607 198.51.100.7 54321 typ srflx raddr 192.168.1.20 rport 54321
a=ice-ufrag:Kx9F
a=ice-pwd:bPq1hT4yUwv8Z2dA7eRtYs0c
a=ice-options:trickle
a=fingerprint:sha-256 6B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08
a=setup:actpass
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=sendrecv
a=msid:stream track
a=rtcp-mux
a=rtcp-rsize
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=rtpmap:126 telephone-event/8000
a=ssrc:3735928559 cname:abc
";

fn retransport(sdp: &str, port: u16, t: Transport) -> String {
    let body = sdp.replace('\n', "\r\n");
    let s = Session::parse(body.as_bytes()).expect("sdp");
    let out = s.rewrite(&Rewrite {
        media: vec![relay(port)],
        origin: Some(RELAY.parse().expect("ip")),
        strip_ice: true,
        transports: vec![Some(t)],
    });
    let out = String::from_utf8(out).expect("utf-8");
    assert!(!out.contains("\n\n") && !out.contains("\r\r"), "{out}");
    out.replace("\r\n", "\n")
}

fn leg() -> Transport {
    Transport::WebRtc(WebRtcLeg {
        ice: IceCredentials {
            ufrag: "relayufrag".to_owned(),
            pwd: "relaypasswordrelaypassword".to_owned(),
        },
        fingerprint: "sha-256 AA:BB".to_owned(),
        setup: Setup::ActPass,
        mid: None,
    })
}

#[test]
fn a_browsers_offer_becomes_plain_rtp_for_a_phone_with_g711_first() {
    let out = retransport(BROWSER, 30000, Transport::Plain);
    let s = Session::parse(out.as_bytes()).expect("sdp");
    assert!(
        out.contains("m=audio 30000 RTP/AVP 0 8 111 63 9 126\n"),
        "{out}"
    );
    assert!(out.contains("c=IN IP4 203.0.113.5\n"));
    for gone in [
        "a=group",
        "a=candidate",
        "a=ice-",
        "a=fingerprint",
        "a=setup",
        "a=mid",
        "a=rtcp-mux",
        "a=rtcp:",
        "a=rtcp-fb",
        "a=extmap",
        "a=rtcp-rsize",
        "a=msid-semantic",
    ] {
        assert!(!out.contains(gone), "{gone} in {out}");
    }
    for kept in [
        "a=rtpmap:126 telephone-event/8000",
        "a=sendrecv",
        "a=ssrc:3735928559",
        "a=msid:stream",
    ] {
        assert!(out.contains(kept), "{kept} missing");
    }
    assert!(!s.webrtc()[0].is_webrtc());
    assert!(!s.media[0].rtcp_mux);
}

#[test]
fn a_phones_offer_becomes_webrtc_for_a_browser_bundled_with_the_relay_as_candidate() {
    let out = retransport(AUDIO, 30002, leg());
    assert!(
        out.contains("m=audio 30002 UDP/TLS/RTP/SAVPF 0 8 101\n"),
        "{out}"
    );
    let s = Session::parse(out.as_bytes()).expect("sdp");
    let w = &s.webrtc()[0];
    assert!(w.is_webrtc() && w.ice_lite, "{out}");
    assert_eq!(w.ice.as_ref().map(|i| i.ufrag.as_str()), Some("relayufrag"));
    assert_eq!(w.setup, Some(Setup::ActPass));
    assert_eq!(w.mid.as_deref(), Some("0"));
    assert_eq!(w.candidates, 1);
    assert_eq!(s.bundle(), ["0"]);
    assert!(s.media[0].rtcp_mux);
    assert!(out.contains("a=candidate:1 1 UDP 2130706431 203.0.113.5 30002 typ host\n"));
    // Session-level lines come before the first m=.
    let lite = out.find("a=ice-lite").expect("ice-lite");
    assert!(lite < out.find("m=audio").expect("m="));
}

#[test]
fn a_browsers_offer_answered_by_the_relay_for_another_browser_keeps_its_mid() {
    let out = retransport(BROWSER, 30004, leg());
    let s = Session::parse(out.as_bytes()).expect("sdp");
    let w = &s.webrtc()[0];
    assert_eq!(w.mid.as_deref(), Some("0"));
    assert_eq!(
        w.ice.as_ref().map(|i| i.pwd.as_str()),
        Some("relaypasswordrelaypassword")
    );
    assert_eq!(
        w.fingerprint.as_ref().map(|f| f.hash.as_str()),
        Some("sha-256")
    );
    assert_eq!(w.candidates, 1, "only the relay's: {out}");
    assert_eq!(out.matches("a=fingerprint").count(), 1);
    assert_eq!(out.matches("a=group:BUNDLE").count(), 1);
    assert!(
        out.contains("a=rtcp-fb:111 transport-cc"),
        "feedback kept for a browser"
    );
}

#[test]
fn without_a_final_line_break_the_added_lines_are_lines_still() {
    let body = AUDIO.trim_end().replace('\n', "\r\n");
    let s = Session::parse(body.as_bytes()).expect("sdp");
    let out = s.rewrite(&Rewrite {
        media: vec![relay(30006)],
        transports: vec![Some(leg())],
        ..Rewrite::default()
    });
    let out = String::from_utf8(out).expect("utf-8");
    assert!(out.contains("a=ptime:20\r\na=mid:0\r\n"), "{out}");
    assert!(out.ends_with("a=end-of-candidates"), "{out}");
    assert!(Session::parse(out.as_bytes()).expect("sdp").webrtc()[0].is_webrtc());
}

#[test]
fn a_browsers_offer_without_candidates_names_the_relay_to_the_phone() {
    let gathering = BROWSER
        .replace("m=audio 54321", "m=audio 9")
        .replace("c=IN IP4 198.51.100.7", "c=IN IP4 0.0.0.0");
    let out = retransport(&gathering, 30000, Transport::Plain);
    assert!(out.contains("c=IN IP4 203.0.113.5\n"), "{out}");
    assert!(!out.contains("0.0.0.0"), "{out}");
}
