//! ng messages as Kamailio's rtpengine module writes them, and round trips.

use proptest::prelude::*;
use relay::{MediaOp, MediaRequest};

use super::*;

/// An offer as Kamailio 5.6's `rtpengine_manage("replace-origin replace-session-connection
/// ICE=remove RTP/AVP")` sends it (keys in bencode order).
const KAMAILIO_OFFER: &[u8] = b"5263_2 d3:ICE6:remove3:sdp31:v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio\
5:flagsl13:trust-addresse7:replacel6:origin18:session-connectione7:call-id4:abcd13:received-froml3:IP49:192.0.2.7e8:from-tag3:ft118:transport-protocol7:RTP/AVP7:command5:offere";

#[test]
fn an_offer_from_kamailio_is_read() {
    let r = Request::parse(KAMAILIO_OFFER).expect("offer");
    assert_eq!(r.cookie, b"5263_2");
    let Command::Media(m, flags) = r.command else {
        panic!("{:?}", r.command)
    };
    assert_eq!(m.op, MediaOp::Offer);
    assert_eq!(
        (m.call_id.as_str(), m.from_tag.as_str(), m.to_tag.as_str()),
        ("abcd", "ft1", "")
    );
    assert_eq!(m.sdp, b"v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio");
    assert_eq!(m.source, Some("192.0.2.7".parse().expect("ip")));
    assert!(flags.replace_origin && flags.trust_address && flags.ice_remove);
    assert_eq!(flags.transport_protocol.as_deref(), Some("RTP/AVP"));
    assert_eq!(flags.other, vec!["replace-session-connection".to_owned()]);
}

#[test]
fn the_source_is_read_under_rtpengines_own_spelling_too() {
    let spaced =
        String::from_utf8_lossy(KAMAILIO_OFFER).replace("13:received-from", "13:received from");
    let r = Request::parse(spaced.as_bytes()).expect("offer");
    let Command::Media(m, _) = r.command else {
        panic!("{:?}", r.command)
    };
    assert_eq!(m.source, Some("192.0.2.7".parse().expect("ip")));
}

#[test]
fn replies_keep_the_cookie_and_sort_their_keys() {
    let out = Reply::Ok {
        sdp: Some(b"v=0\r\n".to_vec()),
    }
    .encode(b"5263_2");
    // Keys in byte order: "result" before "sdp".
    assert_eq!(out, b"5263_2 d6:result2:ok3:sdp5:v=0\r\ne");
    assert_eq!(Reply::Pong.encode(b"c"), b"c d6:result4:ponge");
    let err = Reply::Error("no ports".into()).encode(b"x");
    assert_eq!(err, b"x d12:error-reason8:no ports6:result5:errore");
    assert_eq!(
        Reply::parse(&err),
        Ok((b"x".to_vec(), Reply::Error("no ports".into())))
    );
}

#[test]
fn deep_nesting_is_refused_before_decoding() {
    // 30 000 nested lists would overflow the decoder's stack.
    let mut deep = b"c d7:command4:ping4:deep".to_vec();
    deep.extend(std::iter::repeat_n(b'l', 30_000));
    deep.extend(std::iter::repeat_n(b'e', 30_001));
    assert!(Request::parse(&deep).is_err());
    assert!(Reply::parse(&deep).is_err());
    // A long string of `l`s is a string, not nesting.
    let long = format!("c d7:command4:ping3:pad{}:{}e", 5000, "l".repeat(5000));
    assert_eq!(
        Request::parse(long.as_bytes()).map(|r| r.command),
        Ok(Command::Ping)
    );
    let cookie = format!("{} d7:command4:pinge", "c".repeat(65));
    assert!(
        Request::parse(cookie.as_bytes()).is_err(),
        "cookie too long"
    );
}

#[test]
fn bad_datagrams_are_refused() {
    for bad in [
        &b""[..],
        b"nocookie",
        b" d7:command4:pinge",
        b"c le",
        b"c d7:command5:dancee",
        b"c d7:command5:offere",
        b"c d7:command6:answer7:call-id1:a8:from-tag1:b3:sdp0:e",
    ] {
        assert!(
            Request::parse(bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

proptest! {
    /// Whatever a proxy writes, a relay reads back the same.
    #[test]
    fn requests_round_trip(
        op in prop::sample::select(vec![MediaOp::Offer, MediaOp::Answer, MediaOp::Delete]),
        call_id in "[!-~]{1,40}",
        from_tag in "[a-z0-9]{1,12}",
        to_tag in "[a-z0-9]{1,12}",
        sdp in proptest::collection::vec(any::<u8>(), 1..200),
        cookie in "[a-z0-9_]{1,16}",
        origin in any::<bool>(),
        v6 in any::<bool>(),
    ) {
        let sdp = if op == MediaOp::Delete { Vec::new() } else { sdp };
        let m = MediaRequest { op, call_id, from_tag, to_tag, sdp, source: Some("192.0.2.1".parse().expect("ip")), receiver_ipv6: v6 && op != MediaOp::Delete, receiver: relay::Peer::AsSender, carrier: None, caller: None, authenticated: false };
        let source = if op == MediaOp::Delete { None } else { m.source };
        let flags = Flags { replace_origin: origin && op != MediaOp::Delete, ice_remove: op != MediaOp::Delete, ..Flags::default() };
        let r = Request { cookie: cookie.into_bytes(), command: Command::Media(m.clone(), flags.clone()) };
        let back = Request::parse(&r.encode()).expect("parses");
        // `ICE: remove` is a phone's.
        let receiver = if op == MediaOp::Delete { relay::Peer::AsSender } else { relay::Peer::Plain };
        let want = MediaRequest { source, receiver, ..m };
        let mut want_flags = flags;
        if op != MediaOp::Delete {
            want_flags.other.push("replace-session-connection".into());
        }
        prop_assert_eq!(back, Request { cookie: r.cookie.clone(), command: Command::Media(want, want_flags) });
    }

    /// No datagram makes the parsers panic.
    #[test]
    fn any_datagram_is_read_or_refused(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Request::parse(&data);
        let _ = Reply::parse(&data);
    }
}

#[test]
fn rtpengines_reply_with_unsorted_keys_is_read() {
    let data = b"c1 d3:sdp10:v=0\r\ns=-\r\n6:result2:oke";
    let (cookie, reply) = Reply::parse(data).expect("reply");
    assert_eq!(cookie, b"c1");
    assert_eq!(
        reply,
        Reply::Ok {
            sdp: Some(b"v=0\r\ns=-\r\n".to_vec())
        }
    );
}

#[test]
fn a_cookie_is_read_even_from_a_request_that_is_not() {
    assert_eq!(crate::cookie_of(b"abc d7:comm"), Some(&b"abc"[..]));
    assert_eq!(crate::cookie_of(b"abc"), None);
    assert_eq!(crate::cookie_of(b" d3:abce"), None);
    let long = [b'x'; 65];
    assert_eq!(
        crate::cookie_of(&[&long[..], b" de"].concat()),
        None,
        "too long"
    );
    assert!(Request::parse(b"abc").is_err());
}

/// Kamailio's WebRTC gateway flags (rtpengine's names) say who the SDP goes to, and what a
/// proxy asks that way reads back the same.
#[test]
fn webrtc_flags_name_the_receiver() {
    let offer = |extra: &str| {
        let body = format!("d7:command5:offer7:call-id1:c8:from-tag1:a3:sdp3:v=0{extra}e");
        match Request::parse(format!("k {body}").as_bytes())
            .expect("request")
            .command
        {
            Command::Media(m, _) => m.receiver,
            other => panic!("{other:?}"),
        }
    };
    use relay::Peer;
    assert_eq!(
        offer("18:transport-protocol17:UDP/TLS/RTP/SAVPF3:ICE5:force4:DTLS7:passive"),
        Peer::WebRtc
    );
    assert_eq!(
        offer("18:transport-protocol7:RTP/AVP3:ICE6:remove"),
        Peer::Plain
    );
    assert_eq!(offer("3:ICE5:force"), Peer::WebRtc);
    assert_eq!(
        offer("18:transport-protocol9:RTP/SAVPF3:ICE5:force"),
        Peer::WebRtc
    );
    assert_eq!(offer(""), Peer::AsSender);
    for receiver in [Peer::WebRtc, Peer::Plain] {
        let m = MediaRequest {
            op: MediaOp::Offer,
            call_id: "c".into(),
            from_tag: "a".into(),
            to_tag: String::new(),
            sdp: b"v=0".to_vec(),
            source: None,
            receiver_ipv6: false,
            receiver,
            carrier: None,
            caller: None,
            authenticated: false,
        };
        let r = Request {
            cookie: b"k".to_vec(),
            command: Command::Media(m, Flags::default()),
        };
        match Request::parse(&r.encode()).expect("request").command {
            Command::Media(back, _) => assert_eq!(back.receiver, receiver),
            other => panic!("{other:?}"),
        }
    }
}
