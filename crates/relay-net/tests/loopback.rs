//! Real packets through the relay on loopback, driven as a proxy drives it (SDP offers and
//! answers): two "phones" (UDP sockets) talk through it both ways; a third address is not
//! heard once the phones are latched; a deleted session relays nothing; a re-INVITE from
//! the callee keeps the ports.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use relay::{Carrier, MediaError, MediaOp, SessionId};
use relay_net::{MediaRelay, RelayConfig};

mod support;
use support::{audio_port, base, config, phone, phone_sdp, request};

/// The relay's announced address in these tests (a documentation address: no one there).
const ANNOUNCE: &str = "192.0.2.80";

/// Packets `from` sends to `to`, and those `at` receives, with where they came from.
fn exchange(from: &UdpSocket, to: SocketAddr, at: &UdpSocket, n: u16) -> Vec<SocketAddr> {
    for seq in 0..n {
        let mut p = vec![0x80, 0x00];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&[0; 168]);
        from.send_to(&p, to).expect("send");
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while let Ok((_, src)) = at.recv_from(&mut buf) {
        got.push(src);
        if got.len() == usize::from(n) {
            break;
        }
    }
    got
}

/// A relay with `cfg`'s settings, moving packets with io_uring or not; with io_uring on a
/// kernel that has it, it must be used.
fn start_with(cfg: RelayConfig) -> MediaRelay {
    let relay = MediaRelay::start(&cfg).expect("relay");
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let major: u32 = release
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if cfg.io_uring && major >= 6 && io_uring::IoUring::new(2).is_ok() {
        assert!(relay.uses_io_uring(), "io_uring is here but not used");
    }
    if !cfg.io_uring {
        assert!(!relay.uses_io_uring());
    }
    relay
}

fn start(base: u16, size: u16, threads: usize, io_uring: bool) -> MediaRelay {
    start_with(RelayConfig {
        threads,
        ..config(base, size, ANNOUNCE, io_uring)
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt")
}

/// The relay's address and audio port in a rewritten SDP.
fn relay_port(sdp: &[u8]) -> u16 {
    let text = std::str::from_utf8(sdp).expect("utf-8");
    assert!(text.contains("c=IN IP4 192.0.2.80\r\n"), "{text}");
    assert!(text.contains("o=- 1 1 IN IP4 192.0.2.80\r\n"), "{text}");
    audio_port(text)
}

#[test]
fn two_phones_hear_each_other_and_no_one_else() {
    two_phones_hear_each_other_and_no_one_else_with(true, base(0));
    two_phones_hear_each_other_and_no_one_else_with(false, base(1));
}

fn two_phones_hear_each_other_and_no_one_else_with(io_uring: bool, base: u16) {
    let relay = start(base, 20, 2, io_uring);
    two_phones_hear_each_other_and_no_one_else_through(&relay);
}

fn two_phones_hear_each_other_and_no_one_else_through(relay: &MediaRelay) {
    let rt = runtime();
    let (a, b, intruder) = (phone(), phone(), phone());
    let offer = rt.block_on(relay.apply(&request(MediaOp::Offer, "a", "", phone_sdp(&a))));
    // b sends to the port in the offer it got; a to the one in the answer.
    let to_b_side = relay_port(&offer.expect("offered"));
    let answer = rt.block_on(relay.apply(&request(MediaOp::Answer, "a", "b", phone_sdp(&b))));
    let to_a_side = relay_port(&answer.expect("answered"));
    assert_ne!(to_a_side, to_b_side);
    let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
    // a → relay → b, from the port b sends to.
    let heard = exchange(&a, at(to_a_side), &b, 50);
    assert!(heard.len() >= 45, "b heard {} of 50", heard.len());
    assert!(heard.iter().all(|&s| s == at(to_b_side)));
    let heard = exchange(&b, at(to_b_side), &a, 50);
    assert!(heard.len() >= 45, "a heard {} of 50", heard.len());
    assert!(heard.iter().all(|&s| s == at(to_a_side)));
    // Latched: another address is dropped.
    assert!(exchange(&intruder, at(to_a_side), &b, 5).is_empty());
    let id = SessionId {
        call_id: "loopback".into(),
        from_tag: "a".into(),
    };
    let stats = |id: &SessionId| {
        let all = rt.block_on(relay.sessions());
        all.into_iter().find(|(i, _)| i == id).map(|(_, s)| s)
    };
    let (offerer, answerer) = stats(&id).expect("stats")[0].expect("stream");
    assert!(
        offerer.packets >= 45 && answerer.packets >= 45,
        "{offerer:?} {answerer:?}"
    );
    assert_eq!(offerer.dropped, 5, "the intruder's");
    // The callee's re-INVITE (its tag is the From tag now) keeps the ports: its SDP goes
    // to the caller with the port the caller sends to.
    let reinvite = rt.block_on(relay.apply(&request(MediaOp::Offer, "b", "a", phone_sdp(&b))));
    assert_eq!(relay_port(&reinvite.expect("re-offer")), to_a_side);
    let ok = rt.block_on(relay.apply(&request(MediaOp::Answer, "b", "a", phone_sdp(&a))));
    assert_eq!(relay_port(&ok.expect("re-answer")), to_b_side);
    // A BYE from either side ends it.
    rt.block_on(relay.apply(&request(MediaOp::Delete, "b", "a", Vec::new())))
        .expect("deleted");
    assert!(stats(&id).is_none(), "deleted");
    assert!(
        exchange(&a, at(to_a_side), &b, 5).is_empty(),
        "nothing relayed after the delete"
    );
    // An answer without an offer is refused, and so is SDP the relay cannot read.
    let orphan = rt.block_on(relay.apply(&request(MediaOp::Answer, "x", "y", phone_sdp(&b))));
    assert_eq!(orphan, Err(MediaError::NoSession));
    let bad = rt.block_on(relay.apply(&request(MediaOp::Offer, "x", "", b"hello".to_vec())));
    assert_eq!(bad, Err(MediaError::BadSdp));
}

/// The scheduling policy and real-time priority of each of this process's relay threads.
fn relay_threads_scheduling() -> Vec<(u32, u32)> {
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc");
    tasks
        .flatten()
        .filter_map(|t| {
            let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
            let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
            // Fields 40 and 41 (rt_priority, policy); the text after ")" starts at field 3.
            let f: Vec<u32> = stat
                .rsplit(')')
                .next()?
                .split_whitespace()
                .skip(37)
                .take(2)
                .filter_map(|v| v.parse().ok())
                .collect();
            (comm.starts_with("ferrosip-relay") && f.len() == 2).then(|| (f[1], f[0]))
        })
        .collect()
}

/// Whether a thread of this process may run under SCHED_FIFO at `priority` (tried on a
/// thread of its own).
fn realtime_allowed(priority: i32) -> bool {
    std::thread::spawn(move || {
        let param = libc::sched_param {
            sched_priority: priority,
        };
        // SAFETY: pid 0 is the calling thread; param lives through the call.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) == 0 }
    })
    .join()
    .unwrap_or(false)
}

#[test]
fn packet_threads_run_at_the_real_time_priority_asked_for() {
    for (io_uring, slot) in [(true, 15), (false, 16)] {
        let relay = start_with(RelayConfig {
            realtime_priority: 7,
            ..config(base(slot), 20, ANNOUNCE, io_uring)
        });
        // SCHED_FIFO (1) at 7 where this process may (root with CAP_SYS_NICE, or an
        // RLIMIT_RTPRIO); else normal scheduling, and the relay works all the same.
        let fifo = relay_threads_scheduling().contains(&(libc::SCHED_FIFO as u32, 7));
        assert_eq!(fifo, realtime_allowed(7), "{io_uring}");
        two_phones_hear_each_other_and_no_one_else_through(&relay);
    }
}

#[test]
fn a_port_another_program_holds_is_skipped_and_exhaustion_is_reported() {
    a_port_another_program_holds_is_skipped_and_exhaustion_is_reported_with(true, base(2));
    a_port_another_program_holds_is_skipped_and_exhaustion_is_reported_with(false, base(3));
}

fn a_port_another_program_holds_is_skipped_and_exhaustion_is_reported_with(
    io_uring: bool,
    base: u16,
) {
    let rt = runtime();
    // The first pair the relay would hand out is taken (its RTCP port).
    let _squatter = UdpSocket::bind(("127.0.0.1", base + 1)).expect("squat");
    let relay = start(base, 10, 1, io_uring);
    let a = phone();
    let offered = rt.block_on(relay.apply(&request(MediaOp::Offer, "a", "", phone_sdp(&a))));
    let port = relay_port(&offered.expect("offered"));
    assert!(port > base + 1, "{port} is not the squatted pair");
    // Five pairs, one squatted, two per call (a port facing each side): a second call
    // takes the two others left, a third gets none.
    let mut second = request(MediaOp::Offer, "c", "", phone_sdp(&a));
    second.call_id = "second".into();
    let mut third = second.clone();
    third.call_id = "third".into();
    rt.block_on(relay.apply(&second)).expect("second call");
    assert_eq!(rt.block_on(relay.apply(&third)), Err(MediaError::NoPorts));
    // One call cannot take every port: more than 8 streams are refused.
    let mut many = String::from_utf8(phone_sdp(&a)).expect("utf-8");
    many.push_str(&"m=audio 4000 RTP/AVP 0\r\n".repeat(8));
    let mut greedy = request(MediaOp::Offer, "g", "", many.into_bytes());
    greedy.call_id = "greedy".into();
    assert_eq!(rt.block_on(relay.apply(&greedy)), Err(MediaError::BadSdp));
}

#[test]
fn media_is_not_relayed_to_loopback_multicast_or_wildcards_off_loopback() {
    media_is_not_relayed_to_loopback_multicast_or_wildcards_off_loopback_with(true, base(4));
    media_is_not_relayed_to_loopback_multicast_or_wildcards_off_loopback_with(false, base(5));
}

fn media_is_not_relayed_to_loopback_multicast_or_wildcards_off_loopback_with(
    io_uring: bool,
    base: u16,
) {
    let rt = runtime();
    let relay = start_with(RelayConfig {
        bind: "0.0.0.0".parse().expect("ip"),
        ..config(base, 8, ANNOUNCE, io_uring)
    });
    for target in ["127.0.0.1", "224.0.0.1", "0.0.0.0", "255.255.255.255"] {
        let sdp = format!("v=0\r\no=- 1 1 IN IP4 {target}\r\ns=-\r\nc=IN IP4 {target}\r\nt=0 0\r\nm=audio 5060 RTP/AVP 0\r\n");
        let mut r = request(MediaOp::Offer, "x", "", sdp.clone().into_bytes());
        r.call_id = format!("to-{target}");
        let out = rt.block_on(relay.apply(&r)).expect("answered");
        assert_eq!(
            out,
            sdp.into_bytes(),
            "{target}: left as it is, not relayed"
        );
    }
}

#[test]
fn a_relay_on_both_families_bridges_ipv4_and_ipv6() {
    a_relay_on_both_families_bridges_ipv4_and_ipv6_with(true, base(6));
    a_relay_on_both_families_bridges_ipv4_and_ipv6_with(false, base(7));
}

fn a_relay_on_both_families_bridges_ipv4_and_ipv6_with(io_uring: bool, base: u16) {
    let rt = runtime();
    let relay = start_with(RelayConfig {
        bind: "::".parse().expect("ip"),
        announce: "127.0.0.1".parse().expect("ip"),
        announce6: Some("::1".parse().expect("ip")),
        ..config(base, 10, ANNOUNCE, io_uring)
    });
    let a = phone();
    let b = UdpSocket::bind("[::1]:0").expect("bind");
    b.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let b_sdp = {
        let port = b.local_addr().expect("addr").port();
        format!("v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\n")
    };
    // a (IPv4) offers to b (IPv6): b is told the relay's IPv6 address, and a its IPv4 one.
    let mut offer = request(MediaOp::Offer, "a", "", phone_sdp(&a));
    offer.call_id = "bridge".into();
    offer.receiver_ipv6 = true;
    let to_b = String::from_utf8(rt.block_on(relay.apply(&offer)).expect("offer")).expect("utf-8");
    assert!(to_b.contains("c=IN IP6 ::1\r\n"), "{to_b}");
    let mut answer = request(MediaOp::Answer, "a", "b", b_sdp.into_bytes());
    answer.call_id = "bridge".into();
    let to_a = rt.block_on(relay.apply(&answer)).expect("answer");
    let to_a = String::from_utf8(to_a).expect("utf-8");
    assert!(to_a.contains("c=IN IP4 127.0.0.1\r\n"), "{to_a}");
    let a_sends_to = SocketAddr::from(([127, 0, 0, 1], audio_port(&to_a)));
    let b_sends_to: SocketAddr = format!("[::1]:{}", audio_port(&to_b))
        .parse()
        .expect("addr");
    let heard = exchange(&a, a_sends_to, &b, 30);
    assert!(heard.len() >= 27, "b (IPv6) heard {} of 30", heard.len());
    let heard = exchange(&b, b_sends_to, &a, 30);
    assert!(heard.len() >= 27, "a (IPv4) heard {} of 30", heard.len());
}

#[test]
fn ports_serve_again_after_their_call_ends_and_silent_calls_time_out() {
    ports_serve_again_with(true, base(8));
    ports_serve_again_with(false, base(9));
}

/// One pair of pairs: each call takes both, so every call after the first reuses the
/// ports of the one before, whose sockets were just closed (or are closing).
fn ports_serve_again_with(io_uring: bool, base: u16) {
    let rt = runtime();
    let relay = start_with(RelayConfig {
        timeout: Duration::from_secs(1),
        ..config(base, 4, ANNOUNCE, io_uring)
    });
    let (a, b) = (phone(), phone());
    let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
    for call in 0..6 {
        let mut offer = request(MediaOp::Offer, "a", "", phone_sdp(&a));
        offer.call_id = format!("again-{call}");
        let to_b_side = relay_port(&rt.block_on(relay.apply(&offer)).expect("offer"));
        let mut answer = request(MediaOp::Answer, "a", "b", phone_sdp(&b));
        answer.call_id = offer.call_id.clone();
        let to_a_side = relay_port(&rt.block_on(relay.apply(&answer)).expect("answer"));
        let heard = exchange(&a, at(to_a_side), &b, 10);
        assert!(
            heard.len() >= 9,
            "call {call}: b heard {} of 10",
            heard.len()
        );
        let heard = exchange(&b, at(to_b_side), &a, 10);
        assert!(
            heard.len() >= 9,
            "call {call}: a heard {} of 10",
            heard.len()
        );
        let mut bye = request(MediaOp::Delete, "a", "b", Vec::new());
        bye.call_id = offer.call_id.clone();
        rt.block_on(relay.apply(&bye)).expect("deleted");
    }
    // A call whose media never comes ends after the timeout (checked once a second).
    let mut offer = request(MediaOp::Offer, "a", "", phone_sdp(&a));
    offer.call_id = "silent".into();
    rt.block_on(relay.apply(&offer)).expect("offer");
    let mut answer = request(MediaOp::Answer, "a", "b", phone_sdp(&b));
    answer.call_id = "silent".into();
    rt.block_on(relay.apply(&answer)).expect("answer");
    assert_eq!(rt.block_on(relay.sessions()).len(), 1);
    std::thread::sleep(Duration::from_millis(2500));
    assert!(rt.block_on(relay.sessions()).is_empty(), "timed out");
    // A relay dropped lets go of its threads and ports (within a tick).
    let mut last = request(MediaOp::Offer, "a", "", phone_sdp(&a));
    last.call_id = "last".into();
    let port = relay_port(&rt.block_on(relay.apply(&last)).expect("offer"));
    drop(relay);
    std::thread::sleep(Duration::from_millis(1500));
    UdpSocket::bind(("127.0.0.1", port)).expect("the port is free again");
}

#[test]
fn a_packet_up_to_2048_bytes_is_relayed_and_a_bigger_one_dropped() {
    oversize_with(true, base(10));
    oversize_with(false, base(11));
}

fn oversize_with(io_uring: bool, base: u16) {
    let rt = runtime();
    let relay = start(base, 4, 1, io_uring);
    let (a, b) = (phone(), phone());
    let offer = rt.block_on(relay.apply(&request(MediaOp::Offer, "a", "", phone_sdp(&a))));
    relay_port(&offer.expect("offer"));
    let answer = rt.block_on(relay.apply(&request(MediaOp::Answer, "a", "b", phone_sdp(&b))));
    let to_a_side = relay_port(&answer.expect("answer"));
    let mut buf = [0u8; 4096];
    for (size, relayed) in [(172, true), (2048, true), (2049, false), (3000, false)] {
        let mut p = vec![0u8; size];
        p[0] = 0x80;
        a.send_to(&p, ("127.0.0.1", to_a_side)).expect("send");
        let got = b.recv_from(&mut buf).map(|(n, _)| n);
        match relayed {
            true => assert_eq!(got.ok(), Some(size), "{size} bytes relayed whole"),
            false => assert!(got.is_err(), "{size} bytes dropped, got {got:?}"),
        }
    }
}

#[test]
fn one_source_may_hold_only_so_many_ringing_streams() {
    let rt = runtime();
    let relay = start_with(RelayConfig {
        max_ringing_per_source: 2,
        // The next slot's ports too (20 pairs): strangers' half of them is no limit here.
        ..config(base(12), 40, ANNOUNCE, true)
    });
    let a = phone();
    let offer = |call: &str, source: &str| {
        let mut r = request(MediaOp::Offer, "a", "", phone_sdp(&a));
        r.call_id = call.into();
        r.source = Some(source.parse().expect("ip"));
        rt.block_on(relay.apply(&r))
    };
    assert!(offer("r1", "203.0.113.66").is_ok());
    assert!(offer("r2", "203.0.113.66").is_ok());
    assert_eq!(offer("r3", "203.0.113.66"), Err(MediaError::NoPorts));
    assert!(offer("r4", "198.51.100.9").is_ok(), "another source");
    // SDP "from the callee" of r1 that does not answer the call: r1 still rings.
    let b = phone();
    let from_callee = |op, carrier| {
        let (from_tag, to_tag) = match op {
            MediaOp::Offer => ("b", "a"),
            _ => ("a", "b"),
        };
        let mut r = request(op, from_tag, to_tag, phone_sdp(&b));
        r.call_id = "r1".into();
        r.source = Some("203.0.113.66".parse().expect("ip"));
        r.carrier = carrier;
        rt.block_on(relay.apply(&r))
    };
    let forged = [
        // The caller's ACK or PRACK with the tags swapped, its re-INVITE likewise.
        (MediaOp::Answer, Some(Carrier::Request)),
        (MediaOp::Offer, Some(Carrier::Request)),
        // Early media.
        (MediaOp::Answer, Some(Carrier::Provisional)),
    ];
    for (op, carrier) in forged {
        // Requests "from the callee" before it answered are not taken (they go on as they
        // came, not refused for want of ports); early media is taken.
        match from_callee(op, carrier) {
            Ok(_) => assert_eq!(carrier, Some(Carrier::Provisional), "{op:?}"),
            Err(e) => assert_eq!(
                (e, carrier),
                (MediaError::NoSession, Some(Carrier::Request)),
                "{op:?}"
            ),
        }
        assert_eq!(
            offer("r3", "203.0.113.66"),
            Err(MediaError::NoPorts),
            "still ringing after {op:?} in {carrier:?}"
        );
    }
    // The callee's 2xx answers it, here one without SDP (the answer came in the 183): it
    // only says so.
    let mut ok = request(MediaOp::Answer, "a", "b", Vec::new());
    ok.carrier = Some(Carrier::Final);
    ok.call_id = "no-such-call".into();
    assert_eq!(rt.block_on(relay.apply(&ok)), Err(MediaError::NoSession));
    ok.call_id = "r1".into();
    assert_eq!(rt.block_on(relay.apply(&ok)), Ok(Vec::new()));
    assert!(offer("r3", "203.0.113.66").is_ok(), "r1 answered");
    // A 2xx with SDP answers a call likewise.
    let mut answer = request(MediaOp::Answer, "a", "b", phone_sdp(&b));
    answer.call_id = "r2".into();
    answer.carrier = Some(Carrier::Final);
    assert!(rt.block_on(relay.apply(&answer)).is_ok());
    assert!(offer("r5", "203.0.113.66").is_ok(), "r2 answered");
    // An offer in a 2xx (the INVITE had none) is the callee's answer to the call: more
    // than the limit of them, from one source (room made in the pool first).
    for call in ["r3", "r4", "r5"] {
        let mut bye = request(MediaOp::Delete, "a", "", Vec::new());
        bye.call_id = call.into();
        rt.block_on(relay.apply(&bye)).expect("deleted");
    }
    for call in ["late1", "late2", "late3"] {
        let mut r = request(MediaOp::Offer, "b", "a", phone_sdp(&b));
        r.call_id = call.into();
        r.source = Some("198.51.100.7".parse().expect("ip"));
        r.carrier = Some(Carrier::Final);
        assert!(rt.block_on(relay.apply(&r)).is_ok(), "{call}");
    }
    // Re-INVITEs of answered calls whose sessions ended on a long silence make answered
    // calls' sessions, past the source's limit of ringing ones; over ng (no carrier), an
    // offer with a To tag may be a callee's in its 18x, and counts.
    let in_dialog = [
        ("re1", "203.0.113.80", Some(Carrier::Request), true),
        ("re2", "203.0.113.80", Some(Carrier::Request), true),
        ("re3", "203.0.113.80", Some(Carrier::Request), true),
        ("ng1", "203.0.113.81", None, true),
        ("ng2", "203.0.113.81", None, true),
        ("ng3", "203.0.113.81", None, false),
    ];
    for (call, source, carrier, ok) in in_dialog {
        let mut r = request(MediaOp::Offer, "a", "b", phone_sdp(&a));
        r.call_id = call.into();
        r.source = Some(source.parse().expect("ip"));
        r.carrier = carrier;
        assert_eq!(rt.block_on(relay.apply(&r)).is_ok(), ok, "{call}");
    }
}

#[test]
fn a_stream_the_answer_declines_gives_its_ports_back() {
    let rt = runtime();
    let relay = start_with(config(base(14), 20, ANNOUNCE, true));
    let (a, b) = (phone(), phone());
    let two = |s: &UdpSocket, video: u16| {
        let mut sdp = String::from_utf8(phone_sdp(s)).expect("utf-8");
        sdp.push_str(&format!(
            "m=video {video} RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
        ));
        sdp.into_bytes()
    };
    let port_a = a.local_addr().expect("addr").port();
    let offer = request(MediaOp::Offer, "a", "", two(&a, port_a + 2));
    rt.block_on(relay.apply(&offer)).expect("offer");
    assert_eq!(
        rt.block_on(relay.totals()).ports_free,
        6,
        "two streams of two pairs"
    );
    let mut answer = request(MediaOp::Answer, "a", "b", two(&b, 0));
    answer.carrier = Some(Carrier::Final);
    let to_a =
        String::from_utf8(rt.block_on(relay.apply(&answer)).expect("answer")).expect("utf-8");
    assert!(to_a.contains("m=video 0 RTP/AVP 96\r\n"), "{to_a}");
    assert_eq!(
        rt.block_on(relay.totals()).ports_free,
        8,
        "the video's ports are free"
    );
    // The audio still flows.
    let heard = exchange(
        &a,
        SocketAddr::from(([127, 0, 0, 1], audio_port(&to_a))),
        &b,
        10,
    );
    assert!(heard.len() >= 9, "b heard {} of 10", heard.len());
}

#[test]
fn a_second_forks_2xx_leaves_the_call_with_the_first() {
    let rt = runtime();
    let relay = start_with(config(base(17), 20, ANNOUNCE, true));
    let (a, b1, b2) = (phone(), phone(), phone());
    let mut offer = request(MediaOp::Offer, "a", "", phone_sdp(&a));
    offer.carrier = Some(Carrier::Request);
    rt.block_on(relay.apply(&offer)).expect("offer");
    let answer = |tag: &str, phone: &UdpSocket| {
        let mut r = request(MediaOp::Answer, "a", tag, phone_sdp(phone));
        r.carrier = Some(Carrier::Final);
        rt.block_on(relay.apply(&r)).expect("answer")
    };
    let to_a = answer("b1", &b1);
    // b2's 2xx crossed b1's: the caller is told the same port, and media stays with b1.
    assert_eq!(relay_port(&answer("b2", &b2)), relay_port(&to_a));
    let at = SocketAddr::from(([127, 0, 0, 1], relay_port(&to_a)));
    let heard = exchange(&a, at, &b1, 10);
    assert!(heard.len() >= 9, "b1 heard {} of 10", heard.len());
    // The caller's BYE to b2 ends nothing.
    let mut bye = request(MediaOp::Delete, "a", "b2", Vec::new());
    bye.carrier = Some(Carrier::Request);
    let _ = rt.block_on(relay.apply(&bye));
    let heard = exchange(&a, at, &b1, 10);
    assert!(heard.len() >= 9, "b1 still hears: {} of 10", heard.len());
}
