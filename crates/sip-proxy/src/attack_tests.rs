//! Attacks on the default script once the server has subscribers (found in review): each
//! must fail.

use std::sync::Arc;
use std::time::Instant;

use auth::{Secrets, Subscribers};
use sip_message::{HeaderName, Message, ResponseBuilder};

use crate::tests::{config, handle, msg, register, sent, udp, CALLER};
use crate::Core;

const BOB: &str = "192.0.2.20:5060";

/// The default script with subscribers alice and bob; bob registered at BOB.
fn core() -> Core {
    let core = Core::new(config(), Arc::new(registrar::Location::new()));
    register(&core, "bob", BOB, "1.0");
    let mut subs = Subscribers::new();
    for u in ["alice", "bob"] {
        subs.insert(
            u,
            "example.com",
            Secrets::from_password(u, "example.com", "pw"),
        );
    }
    core.set_subscribers(Arc::new(subs));
    core
}

/// The one status the server answered with, or where it sent the request.
fn outcome(core: &Core, m: Message) -> String {
    let out = sent(handle(core, Instant::now(), m, udp(CALLER)));
    match out.first() {
        Some((_, m)) if m.status().is_some() => format!("{:?}", m.status()),
        Some((d, _)) => format!("relayed to {}", d.addr),
        None => "nothing".into(),
    }
}

/// An anonymous call to bob from Contact `contact`; bob answers `code` (with `answer_contact`,
/// echoing the Record-Route); the response relayed to the caller.
fn call_bob(
    core: &Core,
    call_id: &str,
    contact: &str,
    answer_contact: Option<&str>,
    code: u16,
) -> Message {
    let now = Instant::now();
    let invite = msg(&format!(
        "INVITE sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK{call_id}\n\
From: <sip:eve@evil.example>;tag=T\nTo: <sip:bob@example.com>\nCall-ID: {call_id}\nCSeq: 1 INVITE\n\
Contact: <{contact}>\nMax-Forwards: 70\nContent-Length: 0\n\n"
    ));
    let out = sent(core.handle_message(now, invite, udp(CALLER)));
    let fwd = &out[0].1;
    let mut r = ResponseBuilder::for_request(fwd, code, "X", Some("B"));
    if let Some(c) = answer_contact {
        r = r.header("Contact", c);
    }
    for h in fwd.headers_named(HeaderName::RecordRoute) {
        r = r.header("Record-Route", h.value);
    }
    let resp = Message::parse(r.build()).expect("response");
    sent(core.handle_message(now, resp, udp(BOB))).remove(0).1
}

/// The `rk` value in the first Record-Route of `m`.
fn key_of(m: &Message) -> String {
    let rr = m
        .header(HeaderName::RecordRoute)
        .expect("Record-Route")
        .value;
    let i = rr.find("rk=").expect("rk") + 3;
    rr[i..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect()
}

#[test]
fn a_register_with_a_to_tag_is_challenged_like_any() {
    let core = core();
    for user in ["bob", "mallory"] {
        let reg = msg(&format!(
            "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK{user}\n\
From: <sip:{user}@example.com>;tag=r\nTo: <sip:{user}@example.com>;tag=x\nCall-ID: {user}\n\
CSeq: 1 REGISTER\nContact: <sip:hijack@203.0.113.66:7777>\nContent-Length: 0\n\n"
        ));
        assert_eq!(outcome(&core, reg), "Some(401)", "{user}");
    }
}

#[test]
fn a_to_tag_without_our_route_is_no_pass_to_our_users() {
    let core = core();
    let spoofed = msg(&format!(
        "MESSAGE sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKsp\n\
From: <sip:alice@example.com>;tag=a\nTo: <sip:bob@example.com>;tag=fake\nCall-ID: sp\n\
CSeq: 1 MESSAGE\nMax-Forwards: 70\nContent-Length: 0\n\n"
    ));
    assert_eq!(outcome(&core, spoofed), "Some(404)");
}

#[test]
fn a_reply_without_contact_gives_the_caller_no_key() {
    let core = core();
    let ringing = call_bob(&core, "nc", "sip:victim@198.51.100.9:5099", None, 180);
    let k = key_of(&ringing);
    assert_eq!(k, "-", "the callee's copy does not go back");
    let relay = msg(&format!(
        "MESSAGE sip:victim@198.51.100.9:5099 SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKnc1\n\
Route: <sip:192.0.2.1:5060;lr;rk={k}>\nFrom: <sip:eve@evil.example>;tag=T\n\
To: <sip:bob@example.com>;tag=B\nCall-ID: nc\nCSeq: 5 MESSAGE\nMax-Forwards: 70\nContent-Length: 0\n\n"
    ));
    assert_eq!(outcome(&core, relay), "Some(404)");
}

#[test]
fn a_callers_key_does_not_lead_on_to_a_route_of_its_choice() {
    let core = core();
    let ok = call_bob(
        &core,
        "nr",
        "sip:eve@192.0.2.10:5060",
        Some("<sip:bob@192.0.2.20:5060>"),
        200,
    );
    let k = key_of(&ok);
    let base = |n: usize, uri: &str, route: &str| {
        msg(&format!(
            "MESSAGE {uri} SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKnr{n}\n{route}\
From: <sip:eve@evil.example>;tag=T\nTo: <sip:bob@example.com>;tag=B\nCall-ID: nr\n\
CSeq: {n} MESSAGE\nMax-Forwards: 70\nContent-Length: 0\n\n"
        ))
    };
    let bob = "sip:bob@192.0.2.20:5060";
    let direct = base(1, bob, &format!("Route: <sip:192.0.2.1:5060;lr;rk={k}>\n"));
    assert_eq!(
        outcome(&core, direct),
        "relayed to 192.0.2.20:5060",
        "the dialog works"
    );
    let on = format!("Route: <sip:192.0.2.1:5060;lr;rk={k}>, <sip:203.0.113.66:7777;lr>\n");
    assert_eq!(outcome(&core, base(2, bob, &on)), "Some(404)", "loose");
    let strict = format!("Route: <sip:203.0.113.66:7777;lr>\nRoute: <{bob}>\n");
    let uri = format!("sip:192.0.2.1:5060;rk={k}");
    assert_eq!(
        outcome(&core, base(3, &uri, &strict)),
        "Some(404)",
        "strict"
    );
}

/// An anonymous call to bob with the caller's Contact `contact`: the INVITE as relayed.
fn relayed_invite(core: &Core, call_id: &str, contact: &str) -> Message {
    let invite = msg(&format!(
        "INVITE sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK{call_id}\n\
From: <sip:eve@evil.example>;tag=T\nTo: <sip:bob@example.com>\nCall-ID: {call_id}\nCSeq: 1 INVITE\n\
Contact: <{contact}>\nMax-Forwards: 70\nContent-Length: 0\n\n"
    ));
    sent(core.handle_message(Instant::now(), invite, udp(CALLER)))
        .remove(0)
        .1
}

/// An in-dialog MESSAGE of the caller's with our Route keyed `k`.
fn message_with(uri: &str, k: &str, call_id: &str) -> Message {
    msg(&format!(
        "MESSAGE {uri} SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKm{call_id}\n\
Route: <sip:192.0.2.1:5060;lr;rk={k}>\nFrom: <sip:eve@evil.example>;tag=T\n\
To: <sip:bob@example.com>;tag=B\nCall-ID: {call_id}\nCSeq: 2 MESSAGE\nMax-Forwards: 70\n\
Content-Length: 0\n\n"
    ))
}

#[test]
fn maddr_does_not_lead_a_key_elsewhere() {
    let core = core();
    let ok = call_bob(
        &core,
        "ma",
        "sip:eve@192.0.2.10",
        Some("<sip:bob@192.0.2.20:5060>"),
        200,
    );
    let uri = "sip:bob@192.0.2.20:5060;maddr=203.0.113.66";
    assert_eq!(
        outcome(&core, message_with(uri, &key_of(&ok), "ma")),
        "Some(404)"
    );
}

#[test]
fn a_failure_echoing_record_route_carries_no_key_back() {
    let core = core();
    let victim = "sip:victim@198.51.100.9:5099";
    let fwd = relayed_invite(&core, "fl", victim);
    let mut busy = ResponseBuilder::for_request(&fwd, 486, "Busy", Some("B"));
    for h in fwd.headers_named(HeaderName::RecordRoute) {
        busy = busy.header("Record-Route", h.value);
    }
    let busy = Message::parse(busy.build()).expect("486");
    let up = sent(core.handle_message(Instant::now(), busy, udp(BOB)));
    let (_, busy) = up
        .into_iter()
        .find(|(_, m)| m.status() == Some(486))
        .expect("486 up");
    assert_eq!(key_of(&busy), "-");
}

/// A caller whose Contact is the callee's own: its copy of the key must differ from the
/// callee's, or it would pair with itself and its own refresh would lead it anywhere.
#[test]
fn a_caller_naming_the_callees_contact_gets_no_key_that_leads_anywhere() {
    let core = core();
    let bob = "sip:bob@192.0.2.20:5060";
    let ringing = call_bob(&core, "self", bob, Some(&format!("<{bob}>")), 180);
    let k = key_of(&ringing);
    let update = msg(&format!(
        "UPDATE {bob} SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKsu\n\
Route: <sip:192.0.2.1:5060;lr;rk={k}>\nFrom: <sip:eve@evil.example>;tag=T\n\
To: <sip:bob@example.com>;tag=B\nCall-ID: self\nCSeq: 2 UPDATE\n\
Contact: <sip:x@203.0.113.66:7777>\nMax-Forwards: 70\nContent-Length: 0\n\n"
    ));
    assert_eq!(outcome(&core, update), "relayed to 192.0.2.20:5060");
    let elsewhere = message_with("sip:anyone@203.0.113.66:7777", &k, "self");
    assert_eq!(outcome(&core, elsewhere), "Some(404)");
}
