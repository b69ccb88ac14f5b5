//! The relay driven in memory: offers, answers, packets and the clock.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::*;
use crate::session::{HELD, RELEARN};

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

fn ip(s: &str) -> std::net::IpAddr {
    s.parse().expect("ip")
}

fn id(call: &str) -> SessionId {
    SessionId {
        call_id: call.into(),
        from_tag: "a".into(),
    }
}

/// An RTP packet with sequence number `seq`.
fn rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0; 8 + 160]);
    p
}

fn relay(pairs: u16) -> Relay {
    Relay::new(
        PortPool::new(30000..=30000 + pairs * 2 - 1),
        Duration::from_secs(60),
    )
}

/// A session with one audio stream: the offerer's SDP says 10.0.0.1:4000 (behind NAT), the
/// answerer's 198.51.100.2:5000.
fn call(r: &mut Relay, now: Instant) -> StreamPorts {
    // The offerer signals from its NAT, 203.0.113.7.
    let offered = r
        .offer(
            now,
            &id("c"),
            &[Some(addr("10.0.0.1:4000"))],
            Some(ip("203.0.113.7")),
        )
        .expect("ports");
    let answered = r
        .answer(
            now,
            &id("c"),
            &[Some(addr("198.51.100.2:5000"))],
            Some(ip("198.51.100.2")),
            "b",
            false,
        )
        .expect("session");
    assert_eq!(offered, answered, "one set of ports per stream");
    offered[0].expect("relayed")
}

#[test]
fn packets_go_both_ways_and_each_side_is_latched_where_it_really_is() {
    let now = Instant::now();
    let mut r = relay(10);
    let p = call(&mut r, now);
    assert_ne!(p.for_offerer, p.for_answerer);
    assert_eq!(
        (p.for_offerer % 2, p.for_answerer % 2),
        (0, 0),
        "RTP on even ports"
    );
    // Nothing latched yet: the answerer's packet goes to the offerer's SDP port, at the
    // public address its signalling came from (its SDP's, 10.0.0.1, is behind its NAT).
    let b = addr("198.51.100.2:5000");
    let f = r
        .on_packet(now, p.for_answerer, b, &rtp(1))
        .expect("relayed");
    assert_eq!(
        f,
        Forward {
            from: p.for_offerer,
            to: addr("203.0.113.7:4000")
        }
    );
    // The offerer's first packet comes from its NAT: latched there.
    let nat = addr("203.0.113.7:61000");
    let f = r
        .on_packet(now, p.for_offerer, nat, &rtp(100))
        .expect("relayed");
    assert_eq!(
        f,
        Forward {
            from: p.for_answerer,
            to: b
        }
    );
    let f = r
        .on_packet(now, p.for_answerer, b, &rtp(2))
        .expect("relayed");
    assert_eq!(f.to, nat, "to where the offerer really is");
    let (offerer, answerer) = r.stats(&id("c")).expect("stats")[0].expect("stream");
    assert_eq!((offerer.packets, answerer.packets), (1, 2));
    assert_eq!(answerer.bytes, 2 * rtp(1).len() as u64);
}

#[test]
fn after_latching_other_sources_are_dropped() {
    let now = Instant::now();
    let mut r = relay(10);
    let p = call(&mut r, now);
    let nat = addr("203.0.113.7:61000");
    r.on_packet(now, p.for_offerer, nat, &rtp(1))
        .expect("latched");
    let intruder = addr("192.0.2.66:9999");
    assert_eq!(
        r.on_packet(now, p.for_offerer, intruder, &rtp(2)),
        Err(Dropped::WrongSource),
        "no RTP injection"
    );
    // Nor does it learn where the answerer's media goes (no RTP Bleed).
    let b = addr("198.51.100.2:5000");
    r.on_packet(now, p.for_answerer, b, &rtp(1))
        .expect("latched");
    assert_eq!(
        r.on_packet(now, p.for_answerer, intruder, &rtp(3)),
        Err(Dropped::WrongSource)
    );
    let (offerer, answerer) = r.stats(&id("c")).expect("stats")[0].expect("stream");
    assert_eq!((offerer.dropped, answerer.dropped), (1, 1));
    assert_eq!(
        r.on_packet(now, 29000, b, &rtp(1)),
        Err(Dropped::UnknownPort)
    );
    // The relay's totals count them too, and outlive the session.
    r.on_packet(now, p.for_answerer, b, &rtp(5))
        .expect("relayed");
    assert!(r.delete_dialog("c", "a", ""));
    let t = r.totals();
    assert_eq!((t.packets, t.dropped, t.lost, t.sessions), (3, 3, 3, 0));
    assert_eq!(t.bytes, 3 * rtp(1).len() as u64);
    assert_eq!(t.ports_free, 10);
}

#[test]
fn rtcp_uses_the_next_ports_and_latches_on_its_own() {
    let now = Instant::now();
    let mut r = relay(10);
    let p = call(&mut r, now);
    let f = r
        .on_packet(
            now,
            p.for_offerer + 1,
            addr("203.0.113.7:61001"),
            &[0x80, 200, 0, 1],
        )
        .expect("relayed");
    assert_eq!(
        f,
        Forward {
            from: p.for_answerer + 1,
            to: addr("198.51.100.2:5001")
        }
    );
}

#[test]
fn missing_sequence_numbers_count_as_lost() {
    let now = Instant::now();
    let mut r = relay(10);
    let p = call(&mut r, now);
    let b = addr("198.51.100.2:5000");
    for seq in [65534, 65535, 2, 1, 3] {
        r.on_packet(now, p.for_answerer, b, &rtp(seq))
            .expect("relayed");
        // Muxed RTCP between them (a transport-layer feedback, 205) is no RTP packet.
        let mut feedback = rtp(40000);
        feedback[1] = 205;
        r.on_packet(now, p.for_answerer, b, &feedback)
            .expect("relayed");
    }
    let (_, answerer) = r.stats(&id("c")).expect("stats")[0].expect("stream");
    assert_eq!(
        answerer.lost, 2,
        "0 and 1 missing across the wrap (1 came late)"
    );
    assert_eq!((answerer.packets, answerer.rtcp_packets), (10, 5));
    assert_eq!(answerer.rtcp_bytes, 5 * rtp(0).len() as u64);
}

#[test]
fn an_answer_without_an_offer_has_no_session() {
    let mut r = relay(10);
    assert_eq!(
        r.answer(
            Instant::now(),
            &id("none"),
            &[Some(addr("198.51.100.2:5000"))],
            None,
            "b",
            false
        ),
        None
    );
    let now = Instant::now();
    let p = r
        .offer(now, &id("c"), &[Some(addr("10.0.0.1:4000"))], None)
        .expect("ports")[0]
        .expect("stream");
    assert_eq!(
        r.on_packet(now, p.for_offerer, addr("10.0.0.1:4000"), &rtp(1)),
        Err(Dropped::WrongSource),
        "before the answer the offerer cannot know the port: a guess latches nothing"
    );
}

#[test]
fn a_re_offer_keeps_its_ports_and_declined_streams_get_none() {
    let now = Instant::now();
    let mut r = relay(10);
    let first = call(&mut r, now);
    let again = r
        .offer(now, &id("c"), &[Some(addr("10.0.0.9:4002")), None], None)
        .expect("ports");
    assert_eq!(again, [Some(first), None]);
    assert_eq!(r.ports_available(), 8);
}

#[test]
fn a_stream_the_answer_declines_gives_its_ports_back_once_the_call_is_answered() {
    let now = Instant::now();
    let mut r = relay(10);
    let av = [Some(addr("10.0.0.1:4000")), Some(addr("10.0.0.1:4002"))];
    let offered = r.offer(now, &id("c"), &av, None).expect("ports");
    let video = offered[1].expect("video relayed");
    assert_eq!(r.ports_available(), 6);
    // Early media declining the video: the 2xx may yet take it.
    let audio_only = [Some(addr("198.51.100.2:5000")), None];
    r.answer(now, &id("c"), &audio_only, None, "b", true)
        .expect("session");
    assert!(!r.decline(&id("c"), &[1]), "ringing");
    assert_eq!(r.ports_available(), 6);
    // The 2xx declines it: its ports are free, and nothing is relayed there.
    r.answer(now, &id("c"), &audio_only, None, "b", false)
        .expect("session");
    assert!(r.decline(&id("c"), &[1]));
    assert_eq!(r.ports_available(), 8);
    assert!(!r.holds_port(video.for_answerer) && !r.holds_port(video.for_offerer));
    assert!(r
        .on_packet(now, video.for_answerer, addr("198.51.100.2:5002"), &rtp(1))
        .is_err());
    assert!(!r.decline(&id("c"), &[1]), "once");
    // Audio goes on; a re-offer taking video up again gets new ports.
    let again = r.offer(now, &id("c"), &av, None).expect("ports");
    assert_eq!(again[0], offered[0]);
    assert!(again[1].is_some_and(|v| v != video));
}

#[test]
fn a_private_sdp_address_signalled_from_a_private_one_is_used_as_it_is() {
    // An SBC or a PBX on a private network, its media on another host than its SIP.
    let now = Instant::now();
    let mut r = relay(10);
    let media = addr("[fd00::2]:4000");
    let p = r
        .offer(now, &id("c"), &[Some(media)], Some(ip("fd00::99")))
        .expect("ports")[0]
        .expect("stream");
    let b = addr("198.51.100.2:5000");
    r.answer(
        now,
        &id("c"),
        &[Some(b)],
        Some(ip("198.51.100.2")),
        "b",
        false,
    )
    .expect("session");
    let f = r
        .on_packet(now, p.for_answerer, b, &rtp(1))
        .expect("relayed");
    assert_eq!(f.to, media);
    // And the media host latches.
    let f = r
        .on_packet(now, p.for_offerer, media, &rtp(1))
        .expect("latched");
    assert_eq!(f.to, b);
    // Another family's signalling does not stand for it either: nothing goes to its
    // private address (a stranger's SDP could name our networks) until it latches there.
    let v4 = addr("10.0.0.9:4000");
    let q = r
        .offer(now, &id("d"), &[Some(v4)], Some(ip("2001:db8::7")))
        .expect("ports")[0]
        .expect("stream");
    r.answer(now, &id("d"), &[Some(b)], None, "b", false)
        .expect("session");
    assert_eq!(
        r.on_packet(now, q.for_answerer, b, &rtp(1)),
        Err(Dropped::NoDestination)
    );
    r.on_packet(now, q.for_offerer, v4, &rtp(1))
        .expect("latched on its own network, and relayed");
    let f = r
        .on_packet(now, q.for_answerer, b, &rtp(2))
        .expect("relayed");
    assert_eq!(f.to, v4);
}

#[test]
fn a_re_offer_refused_for_want_of_ports_leaves_the_call_as_it_was() {
    let now = Instant::now();
    let mut r = relay(3);
    let p = call(&mut r, now);
    let nat = addr("203.0.113.7:61000");
    let callee = addr("198.51.100.2:5000");
    let f = r
        .on_packet(now, p.for_offerer, nat, &rtp(1))
        .expect("latched");
    r.on_packet(now, p.for_answerer, callee, &rtp(1))
        .expect("latched");
    // A re-INVITE moves the audio and adds video, for which one pair is too few.
    let moved = [Some(addr("10.0.0.1:4100")), Some(addr("10.0.0.1:4102"))];
    assert_eq!(
        r.offer(now, &id("c"), &moved, Some(ip("203.0.113.7"))),
        None
    );
    assert_eq!(r.streams(&id("c")), [true, false], "no video stream kept");
    // The audio still goes where it went, both ways.
    let back = r.on_packet(now, p.for_answerer, callee, &rtp(2));
    assert_eq!(back.expect("relayed").to, nat, "the caller's latch kept");
    let again = r.on_packet(now, p.for_offerer, nat, &rtp(2));
    assert_eq!(again.expect("relayed").to, f.to);
}

#[test]
fn an_exhausted_pool_refuses_the_offer_and_keeps_nothing() {
    let now = Instant::now();
    let mut r = relay(3);
    call(&mut r, now);
    assert_eq!(r.ports_available(), 1);
    let two = [Some(addr("10.0.0.2:4000")), Some(addr("10.0.0.2:4002"))];
    assert_eq!(r.offer(now, &id("d"), &two, None), None);
    assert_eq!(
        (r.totals().sessions, r.ports_available()),
        (1, 1),
        "nothing leaked"
    );
}

#[test]
fn sessions_end_on_delete_and_on_media_timeout() {
    let t0 = Instant::now();
    let mut r = relay(10);
    let p = call(&mut r, t0);
    assert!(r.delete_dialog("c", "a", ""));
    assert!(!r.delete_dialog("c", "a", ""));
    assert_eq!((r.totals().sessions, r.ports_available()), (0, 10));
    assert_eq!(
        r.on_packet(t0, p.for_offerer, addr("10.0.0.1:4000"), &rtp(1)),
        Err(Dropped::UnknownPort)
    );
    // Freed ports are not handed out again at once.
    let q = call(&mut r, t0);
    assert_ne!(q.for_offerer, p.for_offerer);
    let b = addr("198.51.100.2:5000");
    r.on_packet(t0 + Duration::from_secs(50), q.for_answerer, b, &rtp(1))
        .expect("relayed");
    assert!(
        r.expire(t0 + Duration::from_secs(100)).is_empty(),
        "a packet 50 s ago"
    );
    assert_eq!(r.expire(t0 + Duration::from_secs(111)), [id("c")]);
    assert_eq!(r.ports_available(), 10);
    // A delete that names the Call-ID alone (ng's, as rtpengine takes it) ends the whole
    // call, answered or not.
    call(&mut r, t0);
    assert!(!r.delete_dialog("other", "", ""));
    assert!(r.delete_dialog("c", "", ""));
    assert_eq!((r.totals().sessions, r.ports_available()), (0, 10));
}

#[test]
fn a_stranger_cannot_latch_first() {
    let now = Instant::now();
    let mut r = relay(10);
    let p = call(&mut r, now);
    // Sprayed at the port before the call's media starts: not from an address the call
    // named (SDP or signalling), or not RTP at all.
    let stranger = addr("192.0.2.66:9999");
    assert_eq!(
        r.on_packet(now, p.for_offerer, stranger, &rtp(1)),
        Err(Dropped::WrongSource)
    );
    let junk = addr("203.0.113.7:61000");
    assert_eq!(
        r.on_packet(now, p.for_offerer, junk, b"\x00\x01junk"),
        Err(Dropped::NotRtp)
    );
    // The offerer, from its NAT (where its signalling came from), still latches.
    let f = r
        .on_packet(now, p.for_offerer, junk, &rtp(2))
        .expect("latched");
    assert_eq!(f.to, addr("198.51.100.2:5000"));
    let b = addr("198.51.100.2:5000");
    assert_eq!(
        r.on_packet(now, p.for_answerer, b, &rtp(1))
            .expect("relayed")
            .to,
        junk
    );
}

#[test]
fn the_pool_takes_even_ports_within_range_and_never_port_0() {
    assert_eq!(pairs(&(0..=5)).collect::<Vec<_>>(), [2, 4]);
    assert_eq!(
        pairs(&(65530..=65535)).collect::<Vec<_>>(),
        [65530, 65532, 65534]
    );
    assert_eq!(pairs(&(65535..=65535)).count(), 0);
    assert_eq!(pairs(&(30001..=30004)).collect::<Vec<_>>(), [30002]);
}

#[test]
fn an_undone_re_offer_keeps_the_call_it_would_have_changed() {
    let now = Instant::now();
    let mut r = relay(10);
    let first = call(&mut r, now);
    let before = r.streams(&id("c"));
    assert_eq!(before, [true]);
    let two = [Some(addr("10.0.0.1:4000")), Some(addr("10.0.0.1:4002"))];
    r.offer(now, &id("c"), &two, None).expect("ports");
    r.undo_offer(&id("c"), &before);
    assert_eq!(r.streams(&id("c")), [true, false]);
    assert_eq!(r.ports_available(), 8, "the added stream's ports are back");
    let b = addr("198.51.100.2:5000");
    assert!(
        r.on_packet(now, first.for_answerer, b, &rtp(1)).is_ok(),
        "the call goes on"
    );
    // A new session undone goes altogether.
    r.offer(now, &id("new"), &two, None).expect("ports");
    r.undo_offer(&id("new"), &[]);
    assert_eq!((r.totals().sessions, r.ports_available()), (1, 8));
}

#[test]
fn an_sdp_belongs_to_the_side_whose_tag_made_the_session() {
    let mut r = relay(4);
    let now = Instant::now();
    assert_eq!(r.side_of("c", "a", "b"), None, "no session yet");
    r.offer(now, &id("c"), &[Some(addr("10.0.0.1:4000"))], None)
        .expect("offer");
    // The caller ("a") sends: its side; the callee ("b", its re-INVITE or answer): the other.
    assert_eq!(r.side_of("c", "a", "b"), Some((id("c"), Side::Offerer)));
    assert_eq!(r.side_of("c", "b", "a"), Some((id("c"), Side::Answerer)));
    assert_eq!(r.side_of("c", "x", "y"), None, "another call's tags");
    assert_eq!(r.side_of("d", "a", "b"), None, "another Call-ID");
}

fn parsed(text: &str) -> sdp::Session<'_> {
    sdp::Session::parse(text.as_bytes()).expect("sdp")
}

#[test]
fn declined_and_zero_address_streams_are_not_relayed() {
    let text = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 0\r\nm=video 0 RTP/AVP 96\r\nm=audio 4002 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\n";
    let media = media_addresses(&parsed(text));
    assert_eq!(media, vec![Some(addr("10.0.0.1:4000")), None, None]);
}

#[test]
fn the_receiver_gets_the_port_it_sends_to_with_rtcp_as_the_sender_had_it() {
    let text = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 0\r\na=rtcp:4001\r\na=candidate:1 1 UDP 1 10.0.0.1 4000 typ host\r\n\
m=audio 4002 RTP/AVP 0\r\na=rtcp-mux\r\n";
    let s = parsed(text);
    let ports = vec![
        Some(StreamPorts {
            for_offerer: 30000,
            for_answerer: 30002,
        }),
        Some(StreamPorts {
            for_offerer: 30004,
            for_answerer: 30006,
        }),
    ];
    let out = relayed_sdp(&s, Side::Offerer, &ports, ip("192.0.2.80"), vec![]);
    let out = String::from_utf8(out).expect("utf-8");
    assert_eq!(
        out,
        "v=0\r\no=- 1 1 IN IP4 192.0.2.80\r\ns=-\r\nc=IN IP4 192.0.2.80\r\nt=0 0\r\n\
m=audio 30002 RTP/AVP 0\r\na=rtcp:30003\r\nm=audio 30006 RTP/AVP 0\r\na=rtcp-mux\r\n"
    );
    let back = relayed_sdp(&s, Side::Answerer, &ports, ip("192.0.2.80"), vec![]);
    let back = String::from_utf8(back).expect("utf-8");
    assert!(
        back.contains("m=audio 30000 RTP/AVP 0\r\na=rtcp:30001\r\n"),
        "{back}"
    );
}

#[test]
fn after_latching_only_rtp_is_relayed() {
    let now = Instant::now();
    let mut r = relay(4);
    let p = call(&mut r, now);
    let nat = addr("203.0.113.7:61000");
    r.on_packet(now, p.for_offerer, nat, &rtp(1))
        .expect("latched");
    // Not a path for anything else to where the other side's SDP points (a SIP port).
    assert_eq!(
        r.on_packet(now, p.for_offerer, nat, b"INVITE sip:x SIP/2.0\r\n"),
        Err(Dropped::NotRtp)
    );
    // An encrypted call's key exchange is media: DTLS (a handshake record), ZRTP.
    for first in [22u8, 16] {
        let mut packet = rtp(9);
        packet[0] = first;
        assert!(
            r.on_packet(now, p.for_offerer, nat, &packet).is_ok(),
            "{first}"
        );
    }
}

#[test]
fn a_side_whose_sdp_moves_is_latched_again() {
    let now = Instant::now();
    let mut r = relay(4);
    let p = call(&mut r, now);
    let b = addr("198.51.100.2:5000");
    r.on_packet(now, p.for_answerer, b, &rtp(1))
        .expect("latched");
    // A re-INVITE moves the answerer's stream to another host: its packets are learnt
    // from there, and the old address is no longer heard.
    let moved = addr("198.51.100.9:7000");
    r.answer(
        now,
        &id("c"),
        &[Some(moved)],
        Some(ip("198.51.100.9")),
        "b",
        false,
    )
    .expect("answer");
    assert_eq!(
        r.on_packet(now, p.for_answerer, b, &rtp(2)),
        Err(Dropped::WrongSource)
    );
    r.on_packet(now, p.for_answerer, moved, &rtp(3))
        .expect("latched anew");
    let to_answerer = r
        .on_packet(now, p.for_offerer, addr("203.0.113.7:61000"), &rtp(1))
        .expect("relayed");
    assert_eq!(to_answerer.to, moved);
}

#[test]
fn a_bye_to_another_fork_leaves_the_answered_call() {
    let now = Instant::now();
    let mut r = relay(4);
    call(&mut r, now);
    // The session holds "b"'s answer: a BYE between the caller and fork "b2" is not its end.
    assert!(!r.delete_dialog("c", "a", "b2"));
    assert!(r.stats(&id("c")).is_some());
    // Either side's BYE of the answered dialog is; so is a CANCEL (no To tag).
    assert!(r.delete_dialog("c", "b", "a"));
    assert!(r.stats(&id("c")).is_none());
    call(&mut r, now);
    assert!(r.delete_dialog("c", "a", ""));
}

#[test]
fn a_ringing_call_keeps_its_session_until_answered_and_an_empty_offer_makes_none() {
    let now = Instant::now();
    let mut r = relay(4);
    r.offer(now, &id("c"), &[Some(addr("10.0.0.1:4000"))], None)
        .expect("offer");
    // No packet can come before the answer: it rings past the media timeout.
    assert!(r.expire(now + Duration::from_secs(120)).is_empty());
    let later = now + Duration::from_secs(150);
    r.answer(
        later,
        &id("c"),
        &[Some(addr("198.51.100.2:5000"))],
        None,
        "b",
        false,
    )
    .expect("answered");
    assert!(r.expire(later + Duration::from_secs(59)).is_empty());
    assert_eq!(r.expire(later + Duration::from_secs(60)), vec![id("c")]);
    // A ringing call nobody answers ends after UNANSWERED.
    r.offer(now, &id("d"), &[Some(addr("10.0.0.1:4000"))], None)
        .expect("offer");
    assert_eq!(r.expire(now + UNANSWERED), vec![id("d")]);
    // An offer with nothing to relay (every stream declined or on hold) makes no session.
    assert_eq!(
        r.offer(now, &id("e"), &[None, None], None),
        Some(vec![None, None])
    );
    assert_eq!(r.totals().sessions, 0);
}

#[test]
fn a_failed_late_offer_call_ends_the_callees_session() {
    let now = Instant::now();
    let mut r = relay(4);
    // The INVITE had no SDP: the callee ("b") offered in its 183, under its own tag.
    let callee = SessionId {
        call_id: "c".into(),
        from_tag: "b".into(),
    };
    r.offer(now, &callee, &[Some(addr("198.51.100.2:5000"))], None)
        .expect("offer");
    // The call fails: the delete names the caller's tag alone (in either place).
    assert!(r.delete_dialog("c", "", "a"));
    assert_eq!(r.totals().sessions, 0);
}

#[test]
fn a_stream_the_answerers_side_adds_gets_ports() {
    let now = Instant::now();
    let mut r = relay(4);
    call(&mut r, now);
    // The callee's re-INVITE adds video: its side offers a second stream.
    let video = addr("198.51.100.2:5002");
    let ports = r
        .answer(
            now,
            &id("c"),
            &[Some(addr("198.51.100.2:5000")), Some(video)],
            None,
            "b",
            false,
        )
        .expect("session");
    let p = ports[1].expect("the new stream is relayed");
    // The caller answers it (its side): then the stream carries media both ways.
    r.offer(
        now,
        &id("c"),
        &[Some(addr("10.0.0.1:4000")), Some(addr("10.0.0.1:4002"))],
        None,
    )
    .expect("ports");
    let f = r
        .on_packet(now, p.for_answerer, video, &rtp(1))
        .expect("relayed");
    assert_eq!(f.to, addr("10.0.0.1:4002"));
}

#[test]
fn strangers_from_many_sources_hold_at_most_half_the_pool_in_ringing_calls() {
    let now = Instant::now();
    let trunk: ipnet::IpNet = "192.0.2.0/28".parse().expect("net");
    // 40 pairs: 20 streams' worth; strangers may hold 10 streams while their calls ring.
    let mut r = relay(40).with_ringing_limit(4, vec![trunk]);
    let two = [Some(addr("10.0.0.1:4000")), Some(addr("10.0.0.1:4002"))];
    let from = |i: u8| Some(IpAddr::from([203, 0, 113, i]));
    for i in 1..=5 {
        let call = format!("s{i}");
        assert!(r.offer(now, &id(&call), &two, from(i)).is_some(), "{call}");
    }
    assert!(
        r.offer(now, &id("s6"), &two, from(6)).is_none(),
        "a sixth source: past the strangers' share"
    );
    // A subscriber who authenticated, and a trusted peer, still get ports.
    let subscriber = Origin {
        authenticated: true,
        ..Origin::from(from(7))
    };
    assert!(r.offer(now, &id("a1"), &two, subscriber).is_some());
    assert!(r
        .offer(now, &id("t1"), &two, Some(ip("192.0.2.3")))
        .is_some());
    // A re-offer of the subscriber's call, from wherever, is still not a stranger's.
    let four = [two[0], two[1], Some(addr("10.0.0.1:4004")), None];
    assert!(r.offer(now, &id("a1"), &four, from(8)).is_some());
    // Once a stranger's call is answered, its streams leave the share.
    let answer = [
        Some(addr("198.51.100.2:5000")),
        Some(addr("198.51.100.2:5002")),
    ];
    r.answer(
        now,
        &id("s1"),
        &answer,
        Some(ip("198.51.100.2")),
        "b",
        false,
    )
    .expect("answered");
    assert!(r.offer(now, &id("s6"), &two, from(6)).is_some());
}

#[test]
fn one_source_holds_a_bounded_number_of_ringing_streams() {
    let now = Instant::now();
    let trunk: ipnet::IpNet = "192.0.2.0/28".parse().expect("net");
    let mut r = relay(100).with_ringing_limit(4, vec![trunk]);
    let stranger = Some(ip("203.0.113.66"));
    let two = [Some(addr("10.0.0.1:4000")), Some(addr("10.0.0.1:4002"))];
    // Two calls of two streams each: the limit; a third is refused.
    assert!(r.offer(now, &id("s1"), &two, stranger).is_some());
    assert!(r.offer(now, &id("s2"), &two, stranger).is_some());
    assert_eq!(r.ringing_streams(ip("203.0.113.66")), 4);
    assert!(
        r.offer(now, &id("s3"), &two, stranger).is_none(),
        "over the limit"
    );
    assert!(r.streams(&id("s3")).is_empty(), "nothing kept");
    // The same offer again (a retransmission, a re-offer) takes nothing more.
    assert!(r.offer(now, &id("s1"), &two, stranger).is_some());
    // Another source, and another /64's, are not held back.
    assert!(r
        .offer(now, &id("o1"), &two, Some(ip("198.51.100.9")))
        .is_some());
    let v6 = Some(ip("2001:db8:1:2::1"));
    assert!(r.offer(now, &id("v1"), &two, v6).is_some());
    assert!(r.offer(now, &id("v2"), &two, v6).is_some());
    let same_64 = Some(ip("2001:db8:1:2:ffff::9"));
    assert!(r.offer(now, &id("v3"), &two, same_64).is_none(), "one /64");
    // A callee's offer (in its 18x, the INVITE had none) counts against the caller.
    let callees = Origin {
        from: Some(ip("192.0.2.20")),
        charged: Some(ip("198.51.100.9")),
        in_response: true,
        authenticated: false,
        in_dialog: false,
    };
    assert!(r.offer(now, &id("late"), &two, callees).is_some());
    assert_eq!(r.ringing_streams(ip("198.51.100.9")), 4);
    assert_eq!(r.ringing_streams(ip("192.0.2.20")), 0);
    assert!(
        r.offer(now, &id("late2"), &two, callees).is_none(),
        "the caller's limit"
    );
    // Its caller's answer may come in a request (the PRACK, the ACK); not so for an offer
    // made in a request, nor from a party other than the answerer.
    assert!(r.takes_request_from_answerer(&id("late"), "anyone"));
    assert!(!r.takes_request_from_answerer(&id("s1"), "b"));
    // A re-offer of the stranger's ringing call from elsewhere counts against the stranger;
    // the answerer's side adds no streams while it rings.
    let four = [
        two[0],
        two[1],
        Some(addr("10.0.0.1:4004")),
        Some(addr("10.0.0.1:4006")),
    ];
    assert!(r
        .offer(now, &id("s1"), &four, Some(ip("192.0.2.200")))
        .is_none());
    let answer4 = [None, None, Some(addr("198.51.100.2:5004"))];
    let ports = r
        .answer(now, &id("s1"), &answer4, None, "b", true)
        .expect("session");
    assert_eq!(ports[2], None, "no stream added while ringing");
    // Early media does not answer the call; a 200 does, and it no longer counts; an ended
    // call neither.
    let answer = [
        Some(addr("198.51.100.2:5000")),
        Some(addr("198.51.100.2:5002")),
    ];
    r.answer(now, &id("s1"), &answer, Some(ip("198.51.100.2")), "b", true)
        .expect("early media");
    assert!(
        r.offer(now, &id("s3"), &two, stranger).is_none(),
        "still ringing"
    );
    r.answer(
        now,
        &id("s1"),
        &answer,
        Some(ip("198.51.100.2")),
        "b",
        false,
    )
    .expect("answered");
    assert!(r.offer(now, &id("s3"), &two, stranger).is_some());
    assert!(r.offer(now, &id("s4"), &two, stranger).is_none());
    assert!(r.delete_dialog("s2", "a", ""));
    assert!(r.offer(now, &id("s4"), &two, stranger).is_some());
    // A trusted peer (a carrier's trunk) has no limit.
    for call in ["t1", "t2", "t3", "t4"] {
        assert!(r
            .offer(now, &id(call), &two, Some(ip("192.0.2.5")))
            .is_some());
    }
}

#[test]
fn a_side_silent_for_a_while_latches_anew_from_where_its_sdp_or_signalling_says() {
    let now = Instant::now();
    let mut r = relay(10);
    let p = call(&mut r, now);
    let (nat, moved) = (addr("203.0.113.7:61000"), addr("203.0.113.7:62000"));
    r.on_packet(now, p.for_offerer, nat, &rtp(1))
        .expect("latched");
    // Its NAT gives it a new port: dropped while the old one still sends.
    let soon = now + Duration::from_secs(4);
    r.on_packet(soon, p.for_offerer, nat, &rtp(2))
        .expect("still latched");
    assert_eq!(
        r.on_packet(soon, p.for_offerer, moved, &rtp(3)),
        Err(Dropped::WrongSource)
    );
    // Five seconds after the old one last sent, the new one takes over; not a stranger.
    let later = soon + RELEARN;
    assert_eq!(
        r.on_packet(later, p.for_offerer, addr("192.0.2.66:61000"), &rtp(4)),
        Err(Dropped::WrongSource)
    );
    r.on_packet(later, p.for_offerer, moved, &rtp(5))
        .expect("latched anew");
    assert_eq!(
        r.on_packet(later, p.for_offerer, nat, &rtp(6)),
        Err(Dropped::WrongSource)
    );
    // A new SDP from that side forgets its latch: it is learnt again at once.
    r.offer(
        later,
        &id("c"),
        &[Some(addr("10.0.0.1:4000"))],
        Some(ip("203.0.113.7")),
    )
    .expect("re-offer");
    r.on_packet(later, p.for_offerer, nat, &rtp(7))
        .expect("latched after the re-offer");
}

#[test]
fn a_held_call_lives_an_hour_without_packets_and_a_resumed_one_a_minute() {
    let now = Instant::now();
    let mut r = relay(10);
    call(&mut r, now);
    r.set_held(&id("c"), true);
    assert!(
        r.expire(now + Duration::from_secs(61)).is_empty(),
        "on hold"
    );
    r.set_held(&id("c"), false);
    assert_eq!(r.expire(now + Duration::from_secs(61)), [id("c")]);
    call(&mut r, now);
    r.set_held(&id("c"), true);
    assert_eq!(r.expire(now + HELD), [id("c")]);
}

#[test]
fn a_session_a_re_invite_makes_is_an_answered_calls_charged_to_no_one() {
    let now = Instant::now();
    let mut r = relay(10).with_ringing_limit(1, Vec::new());
    let re_invite = Origin {
        in_dialog: true,
        ..Origin::from(Some(ip("203.0.113.7")))
    };
    let media = [Some(addr("10.0.0.1:4000")), Some(addr("10.0.0.1:4002"))];
    r.offer(now, &id("c"), &media, re_invite)
        .expect("ports, past the ringing limit");
    assert_eq!(
        r.expire(now + Duration::from_secs(61)),
        [id("c")],
        "answered"
    );
}

#[test]
fn a_second_fork_answering_leaves_the_call_with_the_first() {
    let now = Instant::now();
    let mut r = relay(10);
    let p = call(&mut r, now);
    // Another fork's 2xx crossed the first one's: it is told apart, and not taken.
    assert!(r.answered_by_other(&id("c"), "b2"));
    assert!(!r.answered_by_other(&id("c"), "b"));
    let f = r
        .on_packet(now, p.for_offerer, addr("203.0.113.7:61000"), &rtp(1))
        .expect("relayed");
    assert_eq!(f.to, addr("198.51.100.2:5000"), "to the first fork");
    // The caller's BYE to the second fork ends nothing; to the first, the session.
    assert!(!r.delete_dialog("c", "a", "b2"));
    assert!(!r.streams(&id("c")).is_empty());
    assert!(r.delete_dialog("c", "a", "b"));
}

#[test]
fn a_side_signalled_by_a_trusted_peer_latches_from_anywhere() {
    let now = Instant::now();
    let edge: ipnet::IpNet = "192.0.2.10/32".parse().expect("net");
    let mut r = relay(10).with_ringing_limit(0, vec![edge]);
    // A phone behind NAT, reached through an edge proxy: its SDP is private, its
    // signalling the edge's.
    let p = r
        .offer(
            now,
            &id("c"),
            &[Some(addr("10.0.0.1:4000"))],
            Some(ip("192.0.2.10")),
        )
        .expect("ports")[0]
        .expect("stream");
    let b = addr("198.51.100.2:5000");
    r.answer(
        now,
        &id("c"),
        &[Some(b)],
        Some(ip("198.51.100.2")),
        "b",
        false,
    )
    .expect("session");
    let phone = addr("203.0.113.50:31000");
    r.on_packet(now, p.for_offerer, phone, &rtp(1))
        .expect("latched from its NAT");
    let f = r
        .on_packet(now, p.for_answerer, b, &rtp(1))
        .expect("relayed");
    assert_eq!(f.to, phone);
}

#[test]
fn an_sdp_holds_when_no_stream_both_sends_and_receives() {
    let holds = |body: &str| {
        let text = format!(
            "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n{body}"
        );
        super::holds(&sdp::Session::parse(text.as_bytes()).expect("SDP"))
    };
    assert!(!holds("m=audio 4000 RTP/AVP 0\r\n"));
    assert!(holds("m=audio 4000 RTP/AVP 0\r\na=sendonly\r\n"));
    assert!(holds("a=inactive\r\nm=audio 4000 RTP/AVP 0\r\n"));
    assert!(holds("m=audio 4000 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\n"));
    assert!(
        !holds("m=audio 4000 RTP/AVP 0\r\na=sendonly\r\nm=video 4002 RTP/AVP 96\r\n"),
        "the video still flows"
    );
    assert!(
        holds("m=audio 4000 RTP/AVP 0\r\na=recvonly\r\nm=video 0 RTP/AVP 96\r\n"),
        "declined aside"
    );
}

#[test]
fn a_fax_stream_is_relayed_as_it_comes_and_tcp_streams_are_left_alone() {
    let text = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
                m=image 4000 udptl t38\r\nm=message 4002 TCP/MSRP *\r\n";
    let s = sdp::Session::parse(text.as_bytes()).expect("SDP");
    assert_eq!(super::raw_streams(&s), [0]);
    assert_eq!(
        super::media_addresses(&s),
        [Some(addr("10.0.0.1:4000")), None],
        "MSRP over TCP is not the relay's"
    );
    let now = Instant::now();
    let mut r = relay(10);
    let p = call(&mut r, now);
    // UDPTL starts with its sequence number: not RTP, dropped on an RTP stream.
    let udptl = [0x00, 0x01, 0x00, 0x00, 0x07];
    let nat = addr("203.0.113.7:61000");
    assert_eq!(
        r.on_packet(now, p.for_offerer, nat, &udptl),
        Err(Dropped::NotRtp)
    );
    r.set_raw(&id("c"), &[0]);
    let f = r
        .on_packet(now, p.for_offerer, nat, &udptl)
        .expect("relayed");
    assert_eq!(f.to, addr("198.51.100.2:5000"));
    assert_eq!(
        r.stats(&id("c")).expect("stats")[0].expect("stream").0.lost,
        0
    );
}
