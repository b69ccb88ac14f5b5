//! The media relay's side of the proxy with the default script: which calls go through
//! the relay, what is asked of it, and the messages that wait for its answers.

use std::time::Instant;

use ::relay::{Carrier, MediaError, MediaOp, MediaRequest};
use sip_message::{HeaderName, Message, ResponseBuilder};

use crate::tests::{config, core, msg, register, sent, udp};
use crate::{Command, Core, Resume};

/// The caller, behind NAT: its requests come from here.
const NATTED: &str = "203.0.113.7:40000";
const SDP_A: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
const SDP_B: &str = "v=0\r\no=- 2 2 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n";
const RELAYED: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0\r\n";

/// An INVITE from a phone behind NAT (private Via and Contact), with SDP when given.
fn natted_invite(sdp: Option<&str>) -> Message {
    let body = sdp.map_or(String::from("Content-Length: 0\n\n"), |s| {
        format!(
            "Content-Type: application/sdp\nContent-Length: {}\n\n{s}",
            s.len()
        )
    });
    let text = format!(
        "INVITE sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bKm1\n\
From: <sip:alice@example.com>;tag=c\nTo: <sip:bob@example.com>\nCall-ID: media-1\nCSeq: 1 INVITE\n\
Contact: <sip:alice@10.0.0.5:5060>\nMax-Forwards: 70\n{body}"
    );
    // (msg() writes CRLF for LF: the body keeps its own.)
    Message::parse(
        text.replace("\r\n", "\n")
            .replace('\n', "\r\n")
            .into_bytes(),
    )
    .expect("INVITE")
}

/// The relay requests a command list makes, with what waits for each.
fn media(cmds: &[Command]) -> Vec<(MediaRequest, Option<Resume>)> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Media { request, then } => Some((request.clone(), *then)),
            _ => None,
        })
        .collect()
}

/// A response from bob to `req`, with SDP when given.
fn from_bob(req: &Message, code: u16, sdp: Option<&str>) -> Message {
    let mut b = ResponseBuilder::for_request(req, code, "X", Some("b"))
        .header("Contact", "<sip:bob@192.0.2.20:5060>");
    for h in req.headers_named(HeaderName::RecordRoute) {
        b = b.header("Record-Route", h.value);
    }
    if let Some(s) = sdp {
        b = b.body("application/sdp", s.as_bytes().to_vec());
    }
    Message::parse(b.build()).expect("response")
}

/// Sends the caller's INVITE and lets the relay rewrite its offer: the INVITE bob gets.
fn call_through_relay(core: &Core, now: Instant) -> Message {
    register(core, "bob", "192.0.2.20:5060", "1.0");
    let cmds = core.handle_message(now, natted_invite(Some(SDP_A)), udp(NATTED));
    assert!(
        sent(cmds.iter().map(clone_cmd).collect()).is_empty(),
        "the INVITE waits"
    );
    let asked = media(&cmds);
    assert_eq!(asked.len(), 1, "{cmds:?}");
    let (req, then) = &asked[0];
    assert_eq!(req.op, MediaOp::Offer);
    assert_eq!(
        (
            req.call_id.as_str(),
            req.from_tag.as_str(),
            req.to_tag.as_str()
        ),
        ("media-1", "c", "")
    );
    assert_eq!(req.sdp, SDP_A.as_bytes());
    assert_eq!(req.source, Some("203.0.113.7".parse().expect("ip")));
    assert!(
        !req.authenticated,
        "nobody authenticates here: a stranger's call"
    );
    let out = sent(core.media_done(now, then.expect("waits"), Ok(RELAYED.as_bytes().to_vec())));
    assert_eq!(out.len(), 1);
    let (dest, fwd) = &out[0];
    assert_eq!(*dest, udp("192.0.2.20:5060"));
    assert_eq!(&fwd.body()[..], RELAYED.as_bytes());
    assert_eq!(fwd.content_length().expect("CL"), RELAYED.len());
    let rr = fwd.header(HeaderName::RecordRoute).expect("RR").value;
    assert!(rr.contains(";rtprelay"), "the dialog is marked: {rr}");
    fwd.clone()
}

fn clone_cmd(c: &Command) -> Command {
    match c {
        Command::Send { dest, data } => Command::Send {
            dest: *dest,
            data: data.clone(),
        },
        _ => Command::Persist {
            changes: Vec::new(),
            then: None,
        },
    }
}

#[test]
fn a_call_from_behind_nat_has_its_offer_and_answers_rewritten_in_order() {
    let core = core();
    let now = Instant::now();
    let fwd = call_through_relay(&core, now);
    // 183 with early media: its answer goes to the relay; the 200 that follows waits behind it.
    let ringing = from_bob(&fwd, 183, Some(SDP_B));
    let cmds = core.handle_message(now, ringing, udp("192.0.2.20:5060"));
    let asked = media(&cmds);
    assert_eq!(asked.len(), 1);
    let (answer, then) = &asked[0];
    assert_eq!(answer.op, MediaOp::Answer);
    assert_eq!(
        (answer.from_tag.as_str(), answer.to_tag.as_str()),
        ("c", "b")
    );
    assert_eq!(answer.source, Some("192.0.2.20".parse().expect("ip")));
    assert_eq!(
        answer.carrier,
        Some(Carrier::Provisional),
        "early media: the call still rings"
    );
    let ok = from_bob(&fwd, 200, Some(SDP_B));
    let cmds = core.handle_message(now, ok, udp("192.0.2.20:5060"));
    assert!(
        media(&cmds).is_empty() && sent(cmds).is_empty(),
        "the 200 waits behind the 183"
    );
    let cmds = core.media_done(now, then.expect("waits"), Ok(RELAYED.as_bytes().to_vec()));
    // The 183 goes up, rewritten; then the 200's SDP goes to the relay.
    let asked = media(&cmds);
    let up = sent(cmds);
    assert_eq!(up.len(), 1);
    assert_eq!((up[0].0, up[0].1.status()), (udp(NATTED), Some(183)));
    assert_eq!(&up[0].1.body()[..], RELAYED.as_bytes());
    assert_eq!(asked.len(), 1);
    assert_eq!(
        asked[0].0.carrier,
        Some(Carrier::Final),
        "the 200 answers the call"
    );
    let up = sent(core.media_done(
        now,
        asked[0].1.expect("waits"),
        Ok(RELAYED.as_bytes().to_vec()),
    ));
    assert_eq!(up[0].1.status(), Some(200));
    assert_eq!(&up[0].1.body()[..], RELAYED.as_bytes());
    // In the dialog, the mark of our Route makes the default script relay again: a BYE
    // ends the session and goes on.
    let route = up[0]
        .1
        .header(HeaderName::RecordRoute)
        .expect("RR")
        .value
        .to_owned();
    let bye = msg(&format!(
        "BYE sip:bob@192.0.2.20:5060 SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bKmbye\n\
Route: {route}\nFrom: <sip:alice@example.com>;tag=c\nTo: <sip:bob@example.com>;tag=b\n\
Call-ID: media-1\nCSeq: 2 BYE\nMax-Forwards: 70\nContent-Length: 0\n\n"
    ));
    let cmds = core.handle_message(now, bye, udp(NATTED));
    let asked = media(&cmds);
    assert_eq!(asked.len(), 1, "{cmds:?}");
    assert_eq!((asked[0].0.op, asked[0].1), (MediaOp::Delete, None));
    assert_eq!(
        sent(cmds)[0].0,
        udp("192.0.2.20:5060"),
        "the BYE goes on at once"
    );
}

#[test]
fn a_call_without_nat_goes_on_at_once_without_the_relay() {
    let core = core();
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let invite = crate::tests::invite("bob", "Content-Type: application/sdp\n");
    let cmds = core.handle_message(Instant::now(), invite, udp(crate::tests::CALLER));
    assert!(media(&cmds).is_empty());
    let out = sent(cmds);
    let rr = out[0].1.header(HeaderName::RecordRoute).expect("RR").value;
    assert!(!rr.contains("rtprelay"), "{rr}");
}

#[test]
fn a_callee_behind_nat_gets_the_relay_too() {
    let core = core();
    let now = Instant::now();
    let reg = msg(
        "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP 192.168.1.20:5060;rport;branch=z9hG4bKmr\n\
From: <sip:bob@example.com>;tag=r\nTo: <sip:bob@example.com>\nCall-ID: mreg\nCSeq: 1 REGISTER\n\
Contact: <sip:bob@192.168.1.20:5060>\nContent-Length: 0\n\n",
    );
    sent(crate::tests::handle(
        &core,
        now,
        reg,
        udp("198.51.100.7:40000"),
    ));
    // A caller with a public address, whose SDP names it.
    let text = String::from_utf8(natted_invite(Some(SDP_B)).to_bytes().to_vec()).expect("utf-8");
    let text = text.replace("10.0.0.5:5060", "192.0.2.10:5060");
    let invite = Message::parse(text.into_bytes()).expect("INVITE");
    let cmds = core.handle_message(now, invite, udp(crate::tests::CALLER));
    assert_eq!(media(&cmds).len(), 1, "{cmds:?}");
}

#[test]
fn a_failed_call_ends_its_session_and_no_ports_means_503_unless_optional() {
    let core = core();
    let now = Instant::now();
    let fwd = call_through_relay(&core, now);
    let cmds = core.handle_message(now, from_bob(&fwd, 486, None), udp("192.0.2.20:5060"));
    let asked = media(&cmds);
    assert_eq!(asked.len(), 1);
    assert_eq!(
        (asked[0].0.op, asked[0].0.from_tag.as_str()),
        (MediaOp::Delete, "c")
    );
    let up = sent(cmds);
    assert!(up
        .iter()
        .any(|(d, m)| *d == udp(NATTED) && m.status() == Some(486)));

    for (optional, expected) in [(false, Some(503)), (true, None)] {
        let cfg = crate::ProxyConfig {
            media_optional: optional,
            ..config()
        };
        let core = Core::new(cfg, std::sync::Arc::new(registrar::Location::new()));
        register(&core, "bob", "192.0.2.20:5060", "1.0");
        let cmds = core.handle_message(now, natted_invite(Some(SDP_A)), udp(NATTED));
        let then = media(&cmds)[0].1.expect("waits");
        let out = sent(core.media_done(now, then, Err(MediaError::NoPorts)));
        assert_eq!(out[0].1.status(), expected, "optional: {optional}");
        if optional {
            assert_eq!(&out[0].1.body()[..], SDP_A.as_bytes(), "its own SDP");
        }
    }
}

#[test]
fn a_subscribers_call_is_told_to_the_relay_as_authenticated() {
    let core = core();
    let now = Instant::now();
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let mut subs = auth::Subscribers::new();
    let secrets = auth::Secrets::from_password("alice", "example.com", "wonderland");
    subs.insert("alice", "example.com", secrets);
    core.set_subscribers(std::sync::Arc::new(subs));
    let challenge = sent(core.handle_message(now, natted_invite(Some(SDP_A)), udp(NATTED)));
    assert_eq!(challenge[0].1.status(), Some(407));
    let creds = crate::suspend_tests::answer_challenge(&challenge[0].1, "sip:bob@example.com");
    let text = String::from_utf8_lossy(&natted_invite(Some(SDP_A)).to_bytes())
        .replace("z9hG4bKm1", "z9hG4bKm2")
        .replace(
            "Max-Forwards",
            &format!("Proxy-Authorization: {creds}\r\nMax-Forwards"),
        );
    let authed = Message::parse(text.into_bytes()).expect("INVITE");
    let cmds = core.handle_message(now, authed, udp(NATTED));
    let (offer, then) = media(&cmds).remove(0);
    assert!(offer.authenticated, "{offer:?}");
    // Its callee's responses are too (a late offer would be charged to alice).
    let fwd = sent(core.media_done(now, then.expect("waits"), Ok(RELAYED.as_bytes().to_vec())));
    let cmds = core.handle_message(
        now,
        from_bob(&fwd[0].1, 180, Some(SDP_B)),
        udp("192.0.2.20:5060"),
    );
    let (answer, _) = media(&cmds).remove(0);
    assert!(
        answer.authenticated && answer.op == MediaOp::Answer,
        "{answer:?}"
    );
}

#[test]
fn a_late_offer_in_the_200_is_answered_in_the_ack() {
    let core = core();
    let now = Instant::now();
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let cmds = core.handle_message(now, natted_invite(None), udp(NATTED));
    assert!(media(&cmds).is_empty(), "nothing to ask without SDP");
    let fwd = sent(cmds).remove(0).1;
    let cmds = core.handle_message(
        now,
        from_bob(&fwd, 200, Some(SDP_B)),
        udp("192.0.2.20:5060"),
    );
    let (offer, then) = media(&cmds).remove(0);
    // bob offers: ng's from-tag is his. His 200 answers the call, whose streams counted
    // against alice, the caller, while it rang.
    assert_eq!(
        (offer.op, offer.from_tag.as_str(), offer.to_tag.as_str()),
        (MediaOp::Offer, "b", "c")
    );
    assert_eq!(offer.source, Some("192.0.2.20".parse().expect("ip")));
    assert_eq!(offer.caller, Some("203.0.113.7".parse().expect("ip")));
    assert_eq!(offer.carrier, Some(Carrier::Final));
    assert!(!offer.authenticated, "alice did not authenticate");
    let up = sent(core.media_done(now, then.expect("waits"), Ok(RELAYED.as_bytes().to_vec())));
    let route = up[0]
        .1
        .header(HeaderName::RecordRoute)
        .expect("RR")
        .value
        .to_owned();
    let ack = msg(&format!(
        "ACK sip:bob@192.0.2.20:5060 SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bKmack\n\
Route: {route}\nFrom: <sip:alice@example.com>;tag=c\nTo: <sip:bob@example.com>;tag=b\n\
Call-ID: media-1\nCSeq: 1 ACK\nMax-Forwards: 70\nContent-Type: application/sdp\nContent-Length: {}\n\n{}",
        SDP_A.len(),
        SDP_A.replace("\r\n", "\n")
    ));
    let cmds = core.handle_message(now, ack, udp(NATTED));
    let (answer, then) = media(&cmds).remove(0);
    // alice answers bob's offer: from-tag stays bob's, to-tag is hers.
    assert_eq!(
        (answer.op, answer.from_tag.as_str(), answer.to_tag.as_str()),
        (MediaOp::Answer, "b", "c")
    );
    assert_eq!(answer.carrier, Some(Carrier::Request));
    let out = sent(core.media_done(now, then.expect("waits"), Ok(RELAYED.as_bytes().to_vec())));
    assert_eq!(out[0].0, udp("192.0.2.20:5060"));
    assert_eq!(out[0].1.method(), Some(sip_message::Method::Ack));
    assert_eq!(&out[0].1.body()[..], RELAYED.as_bytes());
}

#[test]
fn a_200_without_sdp_tells_the_relay_the_call_is_answered_and_an_update_200_does_not() {
    let core = core();
    let now = Instant::now();
    let fwd = call_through_relay(&core, now);
    // Early media in a 183; then bob's 200 to an UPDATE (sent while it rings) has SDP too.
    let cmds = core.handle_message(
        now,
        from_bob(&fwd, 183, Some(SDP_B)),
        udp("192.0.2.20:5060"),
    );
    let (_, then) = media(&cmds).remove(0);
    let up = sent(core.media_done(now, then.expect("waits"), Ok(RELAYED.as_bytes().to_vec())));
    assert_eq!(up[0].1.status(), Some(183));
    let route = up[0]
        .1
        .header(HeaderName::RecordRoute)
        .expect("RR")
        .value
        .to_owned();
    let update = msg(&format!(
        "UPDATE sip:bob@192.0.2.20:5060 SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bKmupd\n\
Route: {route}\nFrom: <sip:alice@example.com>;tag=c\nTo: <sip:bob@example.com>;tag=b\n\
Call-ID: media-1\nCSeq: 2 UPDATE\nMax-Forwards: 70\nContent-Type: application/sdp\nContent-Length: {}\n\n{}",
        SDP_A.len(),
        SDP_A.replace("\r\n", "\n")
    ));
    let cmds = core.handle_message(now, update, udp(NATTED));
    let (offer, then) = media(&cmds).remove(0);
    assert_eq!(
        (offer.op, offer.carrier),
        (MediaOp::Offer, Some(Carrier::Request))
    );
    let fwd_update =
        sent(core.media_done(now, then.expect("waits"), Ok(RELAYED.as_bytes().to_vec())))
            .remove(0)
            .1;
    let cmds = core.handle_message(
        now,
        from_bob(&fwd_update, 200, Some(SDP_B)),
        udp("192.0.2.20:5060"),
    );
    let (answer, _) = media(&cmds).remove(0);
    assert_eq!(
        (answer.op, answer.carrier),
        (MediaOp::Answer, Some(Carrier::Provisional)),
        "a 200 to an UPDATE does not answer the call"
    );
    // The INVITE's 200 without SDP (the offer and answer were made): it tells the relay
    // the call is answered, and goes up as it came.
    let cmds = core.handle_message(now, from_bob(&fwd, 200, None), udp("192.0.2.20:5060"));
    let (told, then) = media(&cmds).remove(0);
    assert_eq!(
        (told.op, told.carrier, told.sdp.len()),
        (MediaOp::Answer, Some(Carrier::Final), 0)
    );
    assert_eq!((told.from_tag.as_str(), told.to_tag.as_str()), ("c", "b"));
    assert_eq!(told.caller, Some("203.0.113.7".parse().expect("ip")));
    let up = sent(core.media_done(now, then.expect("waits"), Ok(Vec::new())));
    assert_eq!(up[0].1.status(), Some(200));
    assert!(up[0].1.body().is_empty());
    // A re-INVITE's 200 answers too (a session the re-INVITE made is an answered call's).
    let reinvite = msg(&format!(
        "INVITE sip:bob@192.0.2.20:5060 SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bKmre\n\
Route: {route}\nFrom: <sip:alice@example.com>;tag=c\nTo: <sip:bob@example.com>;tag=b\n\
Call-ID: media-1\nCSeq: 3 INVITE\nContact: <sip:alice@10.0.0.5:5060>\nMax-Forwards: 70\n\
Content-Type: application/sdp\nContent-Length: {}\n\n{}",
        SDP_A.len(),
        SDP_A.replace("\r\n", "\n")
    ));
    let cmds = core.handle_message(now, reinvite, udp(NATTED));
    let (offer, then) = media(&cmds).remove(0);
    assert_eq!((offer.op, offer.to_tag.as_str()), (MediaOp::Offer, "b"));
    let fwd_re = sent(core.media_done(now, then.expect("waits"), Ok(RELAYED.as_bytes().to_vec())))
        .remove(0)
        .1;
    let cmds = core.handle_message(
        now,
        from_bob(&fwd_re, 200, Some(SDP_B)),
        udp("192.0.2.20:5060"),
    );
    let (answer, _) = media(&cmds).remove(0);
    assert_eq!(
        (answer.op, answer.carrier),
        (MediaOp::Answer, Some(Carrier::Final))
    );
}

#[test]
fn a_call_to_a_name_asks_the_relay_once_then_looks_the_name_up() {
    let core = core();
    let now = Instant::now();
    let reg = msg(
        "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bKmn\n\
From: <sip:bob@example.com>;tag=r\nTo: <sip:bob@example.com>\nCall-ID: mname\nCSeq: 1 REGISTER\n\
Contact: <sip:bob@bob.example.net:5060>\nContent-Length: 0\n\n",
    );
    sent(crate::tests::handle(
        &core,
        now,
        reg,
        udp("192.0.2.20:5060"),
    ));
    let cmds = core.handle_message(now, natted_invite(Some(SDP_A)), udp(NATTED));
    let (_, then) = media(&cmds).remove(0);
    let cmds = core.media_done(now, then.expect("waits"), Ok(RELAYED.as_bytes().to_vec()));
    assert!(media(&cmds).is_empty(), "asked once");
    let (hosts, then) = crate::tests::resolve(cmds).expect("a lookup");
    assert_eq!(crate::tests::names(&hosts), ["bob.example.net"]);
    crate::tests::answer_dns(&core, now, &hosts[0], &["192.0.2.20"]);
    let cmds = core.resume(now, then);
    assert!(media(&cmds).is_empty(), "not asked again after the lookup");
    let out = sent(cmds);
    assert_eq!(out[0].0, udp("192.0.2.20:5060"));
    assert_eq!(&out[0].1.body()[..], RELAYED.as_bytes());
}

#[test]
fn a_call_cancelled_while_the_relay_answers_ends_its_session() {
    let core = core();
    let now = Instant::now();
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let cmds = core.handle_message(now, natted_invite(Some(SDP_A)), udp(NATTED));
    let (_, then) = media(&cmds).remove(0);
    let cancel = msg(
        "CANCEL sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bKm1\n\
From: <sip:alice@example.com>;tag=c\nTo: <sip:bob@example.com>\nCall-ID: media-1\nCSeq: 1 CANCEL\n\
Max-Forwards: 70\nContent-Length: 0\n\n",
    );
    let answered = sent(core.handle_message(now, cancel, udp(NATTED)));
    assert!(
        answered.iter().any(|(_, m)| m.status() == Some(487)),
        "{answered:?}"
    );
    // The relay made the session meanwhile: it is ended, and nothing goes to bob.
    let cmds = core.media_done(now, then.expect("waits"), Ok(RELAYED.as_bytes().to_vec()));
    let asked = media(&cmds);
    assert_eq!(asked.len(), 1, "{cmds:?}");
    assert_eq!(
        (
            asked[0].0.op,
            asked[0].0.call_id.as_str(),
            asked[0].0.from_tag.as_str()
        ),
        (MediaOp::Delete, "media-1", "c")
    );
    assert!(sent(cmds).is_empty());
}

#[test]
fn a_multipart_offer_makes_the_replies_sdp_an_answer() {
    let core = core();
    let now = Instant::now();
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let body = "--b\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n--b--\r\n";
    let text = format!(
        "INVITE sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bKmp\n\
From: <sip:alice@example.com>;tag=c\nTo: <sip:bob@example.com>\nCall-ID: media-mp\nCSeq: 1 INVITE\n\
Contact: <sip:alice@10.0.0.5:5060>\nMax-Forwards: 70\nContent-Type: multipart/mixed;boundary=b\n\
Content-Length: {}\n\n{body}",
        body.len()
    );
    let invite = Message::parse(
        text.replace("\r\n", "\n")
            .replace('\n', "\r\n")
            .into_bytes(),
    )
    .expect("INVITE");
    let cmds = core.handle_message(now, invite, udp(NATTED));
    assert!(media(&cmds).is_empty(), "no SDP of its own to relay");
    let fwd = sent(cmds).remove(0).1;
    let cmds = core.handle_message(
        now,
        from_bob(&fwd, 200, Some(SDP_B)),
        udp("192.0.2.20:5060"),
    );
    let (answer, _) = media(&cmds).remove(0);
    assert_eq!(
        answer.op,
        MediaOp::Answer,
        "the 200 answers the multipart offer"
    );
}

#[test]
fn each_side_is_told_the_relay_address_of_its_own_family() {
    let mut cfg = config();
    cfg.advertised.push((
        sip_message::Protocol::Udp,
        "[2001:db8::1]:5060".parse().expect("addr"),
    ));
    let core = Core::new(cfg, std::sync::Arc::new(registrar::Location::new()));
    let now = Instant::now();
    let bob6 = "[2001:db8::20]:5060";
    let reg = msg(&format!(
        "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP {bob6};branch=z9hG4bKm6\n\
From: <sip:bob@example.com>;tag=r\nTo: <sip:bob@example.com>\nCall-ID: m6\nCSeq: 1 REGISTER\n\
Contact: <sip:bob@{bob6}>\nContent-Length: 0\n\n"
    ));
    sent(crate::tests::handle(&core, now, reg, udp(bob6)));
    // The caller is on IPv4 behind NAT; bob on IPv6.
    let cmds = core.handle_message(now, natted_invite(Some(SDP_A)), udp(NATTED));
    let (offer, then) = media(&cmds).remove(0);
    assert!(offer.receiver_ipv6, "bob is told the relay's IPv6 address");
    let fwd =
        sent(core.media_done(now, then.expect("waits"), Ok(RELAYED.as_bytes().to_vec()))).remove(0);
    assert_eq!(fwd.0, udp(bob6));
    let cmds = core.handle_message(now, from_bob(&fwd.1, 200, Some(SDP_B)), udp(bob6));
    let (answer, _) = media(&cmds).remove(0);
    assert!(!answer.receiver_ipv6, "the caller is told the IPv4 one");
}

#[test]
fn a_reply_held_for_the_relay_stops_the_requests_retransmissions() {
    let core = core();
    let now = Instant::now();
    let fwd = call_through_relay(&core, now);
    let cmds = core.handle_message(
        now,
        from_bob(&fwd, 200, Some(SDP_B)),
        udp("192.0.2.20:5060"),
    );
    assert_eq!(media(&cmds).len(), 1, "the 200's SDP is with the relay");
    // A slow relay (an external one failing over): the INVITE's transaction has its 200,
    // so nothing is retransmitted to bob meanwhile.
    let later = now + std::time::Duration::from_secs(2);
    let out = sent(core.handle_timeouts(later));
    assert!(
        !out.iter()
            .any(|(_, m)| m.method() == Some(sip_message::Method::Invite)),
        "{out:?}"
    );
}

/// An offer with ICE (but no DTLS: no browser's) from a caller behind NAT goes through the
/// relay like any other, to a phone that does plain RTP: the relay, which both reach, takes
/// the candidates' place (rtpengine's `ICE=remove`).
#[test]
fn an_offer_with_ice_from_a_phone_is_relayed_for_a_phone() {
    let core = core();
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let ice = format!("{SDP_A}a=ice-ufrag:Fr2p\r\na=ice-pwd:0123456789abcdef0123456789\r\n");
    let cmds = core.handle_message(Instant::now(), natted_invite(Some(&ice)), udp(NATTED));
    let asked = media(&cmds);
    assert_eq!(asked.len(), 1, "{cmds:?}");
    assert_eq!(asked[0].0.op, MediaOp::Offer);
    assert_eq!(
        asked[0].0.receiver,
        ::relay::Peer::Plain,
        "bob registered over UDP"
    );
}
