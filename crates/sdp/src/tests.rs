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
