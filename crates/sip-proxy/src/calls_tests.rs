//! Followed calls (`dlg_manage()`) in memory: their records, the BYEs of the server's own
//! that end them, and what the store learns so that a restart loses none.

use std::time::{Duration, Instant};

use sip_message::{HeaderName, Message, Method, ResponseBuilder};

use crate::tests::{invite, invite_on, msg, register, sent, udp, with_script, CALLER};
use crate::Core;

/// A core whose script follows every call it relays (`dlg_manage()`).
fn following_core() -> Core {
    with_script(
        "request_route {\n\
         if (is_method(\"REGISTER\")) { save(\"location\"); exit; }\n\
         if (has_totag()) { if (loose_route()) { t_relay(); } exit; }\n\
         if (!lookup(\"location\")) { sl_send_reply(404, \"Not Found\"); exit; }\n\
         record_route();\n\
         dlg_manage();\n\
         t_relay(); }",
    )
}

/// A script that follows calls (`dlg_manage()`): a call answered and hung up gives one
/// record, with who hung up and the callee as reached; the 200's retransmission and a
/// repeated BYE change nothing; a call nobody answers is a missed call.
#[test]
fn a_followed_call_gives_one_record_when_it_ends() {
    let core = following_core();
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let now = Instant::now();
    let bob = udp("192.0.2.20:5060");
    let out = sent(core.handle_message(now, invite("bob", ""), udp(CALLER)));
    let (_, fwd) = &out[0];
    let answer = |code: u16, reason: &str| {
        let mut r = ResponseBuilder::for_request(fwd, code, reason, Some("b"))
            .header("Contact", "<sip:bob@192.0.2.20:5060>");
        for h in fwd.headers_named(HeaderName::RecordRoute) {
            r = r.header("Record-Route", h.value);
        }
        Message::parse(r.build()).expect("response")
    };
    sent(core.handle_message(now, answer(180, "Ringing"), bob));
    let up = sent(core.handle_message(now, answer(200, "OK"), bob));
    sent(core.handle_message(now, answer(200, "OK"), bob));
    assert!(core.tick_calls(now).records.is_empty(), "still talking");
    let active = core.active_calls();
    assert_eq!(active.len(), 1, "{active:?}");
    assert!(active[0].answered_ms.is_some());
    // The caller hangs up, through the route set its 200 gave it.
    let mut route: Vec<String> = up[0]
        .1
        .headers_named(HeaderName::RecordRoute)
        .map(|h| h.value.to_owned())
        .collect();
    route.reverse();
    let bye = |branch: &str| {
        msg(&format!(
            "BYE sip:bob@192.0.2.20:5060 SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK{branch}\n\
Route: {}\nFrom: <sip:caller@example.net>;tag=c\nTo: <sip:bob@example.com>;tag=b\n\
Call-ID: call-1\nCSeq: 2 BYE\nMax-Forwards: 70\nContent-Length: 0\n\n",
            route.join(", ")
        ))
    };
    let answer_bye = |fwd: &Message, code: u16| {
        let r = ResponseBuilder::for_request(fwd, code, "X", None);
        sent(core.handle_message(now, Message::parse(r.build()).unwrap(), bob));
    };
    // bob refuses the first BYE: it hangs nothing up.
    let out = sent(core.handle_message(now, bye("bye1"), udp(CALLER)));
    assert_eq!(out[0].1.method(), Some(Method::Bye));
    answer_bye(&out[0].1, 500);
    assert!(core.tick_calls(now).records.is_empty(), "a refused BYE");
    assert_eq!(core.active_calls().len(), 1, "still talking");
    // He takes the second; its retransmission changes nothing.
    let out = sent(core.handle_message(now, bye("bye2"), udp(CALLER)));
    sent(core.handle_message(now, bye("bye2"), udp(CALLER)));
    answer_bye(&out[0].1, 200);
    let records = core.tick_calls(now).records;
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(core.active_calls().is_empty(), "over");
    let r = &records[0];
    assert_eq!(r.ending, dialog::Ending::CallerHungUp);
    assert_eq!(
        (r.caller.as_str(), r.dialled.as_str(), r.reached.as_deref()),
        (
            "sip:caller@example.net",
            "sip:bob@example.com",
            Some("sip:bob@192.0.2.20:5060")
        )
    );
    // Another call, declined: a missed call of bob's.
    let declined = msg(&format!(
        "INVITE sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKmiss\n\
From: <sip:caller@example.net>;tag=m\nTo: <sip:bob@example.com>\nCall-ID: call-miss\nCSeq: 1 INVITE\n\
Contact: <sip:caller@192.0.2.10:5060>\nMax-Forwards: 70\nContent-Length: 0\n\n"
    ));
    let out = sent(core.handle_message(now, declined, udp(CALLER)));
    let busy = ResponseBuilder::for_request(&out[0].1, 486, "Busy Here", Some("x"));
    sent(core.handle_message(now, Message::parse(busy.build()).unwrap(), bob));
    let records = core.tick_calls(now).records;
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(records[0].missed());
    assert_eq!(
        (records[0].status, records[0].call_id.as_str()),
        (486, "call-miss")
    );
}

/// A call whose failure route runs (it answers nothing of its own) is recorded missed all
/// the same: the failure goes to the caller after the route, and is noted then.
#[test]
fn a_followed_call_through_a_failure_route_is_recorded() {
    let core = with_script(
        "request_route {\n\
         if (is_method(\"REGISTER\")) { save(\"location\"); exit; }\n\
         if (!lookup(\"location\")) { sl_send_reply(404, \"Not Found\"); exit; }\n\
         record_route();\n\
         dlg_manage();\n\
         t_on_failure(\"MISSED\");\n\
         t_relay(); }\n\
         failure_route[MISSED] { xlog(\"L_INFO\", \"missed\"); }",
    );
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let now = Instant::now();
    let out = sent(core.handle_message(now, invite("bob", ""), udp(CALLER)));
    let busy = ResponseBuilder::for_request(&out[0].1, 486, "Busy Here", Some("x"));
    let bob = udp("192.0.2.20:5060");
    let up = sent(core.handle_message(now, Message::parse(busy.build()).unwrap(), bob));
    assert!(up.iter().any(|(_, m)| m.status() == Some(486)), "{up:?}");
    let records = core.tick_calls(now).records;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!((records[0].status, records[0].missed()), (486, true));
}

/// A call that passes the proxy twice (a spiral: the same Call-ID and From tag in a second
/// transaction) is followed by its first pass alone: the inner pass's failure is no missed
/// call, and the answer the first pass gets is the record.
#[test]
fn a_spiralling_call_is_followed_once() {
    let core = following_core();
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let now = Instant::now();
    let bob = udp("192.0.2.20:5060");
    let outer = sent(core.handle_message(now, invite_on("outer", "bob", ""), udp(CALLER)));
    let inner = sent(core.handle_message(now, invite_on("inner", "bob", ""), udp(CALLER)));
    let answer = |fwd: &Message, code: u16| {
        let r = ResponseBuilder::for_request(fwd, code, "X", Some("b"))
            .header("Contact", "<sip:bob@192.0.2.20:5060>");
        Message::parse(r.build()).expect("response")
    };
    sent(core.handle_message(now, answer(&inner[0].1, 486), bob));
    assert!(
        core.tick_calls(now).records.is_empty(),
        "the inner pass records nothing"
    );
    sent(core.handle_message(now, answer(&outer[0].1, 200), bob));
    let route: Vec<String> = outer[0]
        .1
        .headers_named(HeaderName::RecordRoute)
        .map(|h| h.value.to_owned())
        .collect();
    let bye = msg(&format!(
        "BYE sip:caller@192.0.2.10:5060 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bKsbye\n\
Route: {}\nFrom: <sip:bob@example.com>;tag=b\nTo: <sip:caller@example.net>;tag=c\n\
Call-ID: call-1\nCSeq: 1 BYE\nMax-Forwards: 70\nContent-Length: 0\n\n",
        route.join(", ")
    ));
    let out = sent(core.handle_message(now, bye, bob));
    let ok = ResponseBuilder::for_request(&out[0].1, 200, "OK", None);
    sent(core.handle_message(now, Message::parse(ok.build()).unwrap(), udp(CALLER)));
    let records = core.tick_calls(now).records;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].ending, dialog::Ending::CalleeHungUp);
}

/// bob's 200 to the INVITE as he got it (`fwd`), with these headers before the Record-Route
/// entries it echoes.
fn ok_from_bob(fwd: &Message, headers: &[(&str, &str)]) -> Message {
    let mut ok = ResponseBuilder::for_request(fwd, 200, "OK", Some("b"));
    for (name, value) in headers {
        ok = ok.header(name, value);
    }
    for h in fwd.headers_named(HeaderName::RecordRoute) {
        ok = ok.header("Record-Route", h.value);
    }
    Message::parse(ok.build()).expect("a response is not checked whole")
}

/// A call through `core` from CALLER (behind the proxy `edge`) to bob, who answers behind
/// the proxy `far`: the INVITE as bob got it.
fn answered_call(core: &Core, now: Instant) -> Message {
    core.set_wall_clock(now, Duration::from_secs(1_700_000_000));
    register(core, "bob", "192.0.2.20:5060", "1.0");
    let edge = "Record-Route: <sip:192.0.2.50;lr>\n";
    let out = sent(core.handle_message(now, invite("bob", edge), udp(CALLER)));
    let fwd = &out[0].1;
    let ok = ok_from_bob(
        fwd,
        &[
            ("Contact", "<sip:bob@192.0.2.20:5060>"),
            ("Record-Route", "<sip:far.example.org;lr>"),
        ],
    );
    let up = sent(core.handle_message(now, ok, udp("192.0.2.20:5060")));
    assert_eq!(up[0].1.status(), Some(200));
    fwd.clone()
}

/// `calls end`: a BYE to each side in the other's name, along the route set each side
/// has, past each side's CSeq; the record says the server ended it.
#[test]
fn an_operator_ends_a_call_with_a_bye_to_each_side() {
    let core = following_core();
    let now = Instant::now();
    let fwd = answered_call(&core, now);
    // bob sends an INFO in the dialog (his CSeq 7), through us.
    let route: Vec<&str> = fwd
        .headers_named(HeaderName::RecordRoute)
        .map(|h| h.value)
        .collect();
    let info = msg(&format!(
        "INFO sip:caller@192.0.2.10:5060 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bKinfo\n\
Route: {}\nFrom: <sip:bob@example.com>;tag=b\nTo: <sip:caller@example.net>;tag=c\n\
Call-ID: call-1\nCSeq: 7 INFO\nMax-Forwards: 70\nContent-Length: 0\n\n",
        route.join(", ")
    ));
    let relayed = sent(core.handle_message(now, info, udp("192.0.2.20:5060")));
    assert_eq!(relayed[0].1.method(), Some(Method::Info), "{relayed:?}");
    assert!(core.end_call(now, "no-such-call").is_none());
    let byes = sent(core.end_call(now, "call-1").expect("talking"));
    assert_eq!(byes.len(), 2, "{byes:?}");
    let (to_bob, to_caller) = (&byes[0], &byes[1]);
    assert_eq!(to_bob.0, udp("192.0.2.20:5060"));
    assert_eq!(to_bob.1.method(), Some(Method::Bye));
    assert_eq!(
        to_bob.1.request_uri_str().unwrap(),
        "sip:bob@192.0.2.20:5060"
    );
    let route = |m: &Message| {
        m.routes()
            .map(|r| r.unwrap().uri.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(route(&to_bob.1), ["sip:far.example.org;lr"]);
    assert_eq!(to_bob.1.from().unwrap().tag(), Some("c"));
    assert_eq!(to_bob.1.to().unwrap().tag(), Some("b"));
    assert_eq!(to_bob.1.cseq().unwrap().seq, 2, "past the caller's INVITE");
    assert_eq!(to_caller.0, udp(CALLER));
    assert_eq!(
        to_caller.1.request_uri_str().unwrap(),
        "sip:caller@192.0.2.10:5060"
    );
    assert_eq!(route(&to_caller.1), ["sip:192.0.2.50;lr"]);
    assert_eq!(to_caller.1.from().unwrap().tag(), Some("b"));
    assert_eq!(to_caller.1.cseq().unwrap().seq, 8, "past bob's INFO");
    for (_, bye) in &byes {
        assert!(bye.top_via().is_ok(), "our Via");
    }
    let tick = core.tick_calls(now);
    assert_eq!(tick.records.len(), 1);
    assert_eq!(tick.records[0].ending, dialog::Ending::EndedByServer);
    assert!(core.end_call(now, "call-1").is_none(), "ended once");
}

/// What the store learns (the answer, then the end) brings a call back after a restart:
/// its BYE then makes its record, with the times from before.
#[test]
fn a_call_saved_before_a_restart_is_recorded_when_it_ends() {
    let core = following_core();
    let now = Instant::now();
    answered_call(&core, now);
    assert!(
        core.tick_calls(now).changes.is_empty(),
        "not yet: 10 s first"
    );
    let changes = core.tick_calls(now + Duration::from_secs(10)).changes;
    let saved: Vec<dialog::Saved> = changes
        .into_iter()
        .filter_map(|c| match c {
            dialog::Change::Added(s) => Some(*s),
            _ => None,
        })
        .collect();
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0].caller_leg.hop, "udp:192.0.2.10:5060");
    let restarted = following_core();
    let later = now + Duration::from_secs(30);
    restarted.set_wall_clock(later, Duration::from_secs(1_700_000_030));
    assert_eq!(restarted.restore_calls(saved), 1);
    assert_eq!(restarted.active_calls().len(), 1);
    let byes = sent(restarted.end_call(later, "call-1").expect("restored"));
    assert_eq!(byes[0].0, udp("192.0.2.20:5060"));
    let tick = restarted.tick_calls(later);
    assert_eq!(tick.records.len(), 1);
    let r = &tick.records[0];
    assert!(
        r.duration_ms() >= 29_000,
        "answered before the restart: {r:?}"
    );
    assert!(matches!(&tick.changes[..], [dialog::Change::Ended { .. }]));
}

/// A quoted parameter that holds `>;tag=` cannot make the tracker read another tag than
/// the parser does: the call is followed under its real From tag, and the server's BYE
/// carries it.
#[test]
fn quoted_parameters_do_not_mislead_the_tags() {
    let core = following_core();
    let now = Instant::now();
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let text = format!(
        "INVITE sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKq\n\
From: <sip:caller@example.net>;tag=c;x=\">;tag=evil\"\nTo: <sip:bob@example.com>\n\
Call-ID: call-1\nCSeq: 1 INVITE\nContact: <sip:caller@192.0.2.10:5060>\nMax-Forwards: 70\n\
Content-Length: 0\n\n"
    );
    let out = sent(core.handle_message(now, msg(&text), udp(CALLER)));
    let fwd = &out[0].1;
    let ok = ok_from_bob(fwd, &[("Contact", "<sip:bob@192.0.2.20:5060>")]);
    sent(core.handle_message(now, ok, udp("192.0.2.20:5060")));
    let byes = sent(core.end_call(now, "call-1").expect("followed"));
    assert_eq!(byes[0].1.from().unwrap().tag(), Some("c"));
    assert_eq!(byes[1].1.to().unwrap().tag(), Some("c"));
}

/// A 200 whose Contact holds a control character: the call is followed and recorded, but
/// its callee is not kept (nor stored), so the server cannot end it and says so.
#[test]
fn a_callee_that_cannot_be_kept_is_not_ended_by_the_server() {
    let core = following_core();
    let now = Instant::now();
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let out = sent(core.handle_message(now, invite("bob", ""), udp(CALLER)));
    let fwd = &out[0].1;
    let ok = ok_from_bob(fwd, &[("Contact", "<sip:bob@192.0.2.20:5060;x=\u{1}>")]);
    sent(core.handle_message(now, ok, udp("192.0.2.20:5060")));
    assert_eq!(core.active_calls().len(), 1, "followed");
    assert!(core.end_call(now, "call-1").is_none(), "no BYE can be sent");
    assert_eq!(core.active_calls().len(), 1, "and it goes on");
    let saved = core.tick_calls(now + Duration::from_secs(11)).changes;
    let Some(dialog::Change::Added(s)) = saved.first() else {
        panic!("{saved:?}")
    };
    assert_eq!(s.callee_leg.contact, "", "nothing of the callee kept");
}

/// Session timers (RFC 4028): the 200 sets a 90 s session; a re-INVITE refreshes it;
/// unrefreshed after that, the call is over 32 s past its end: recorded with its real end,
/// and no BYE of the server's (a proxy must not send one, §8.3).
#[test]
fn a_session_nobody_refreshes_is_ended_when_it_expired() {
    let core = following_core();
    let now = Instant::now();
    core.set_wall_clock(now, Duration::from_secs(1_700_000_000));
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let out = sent(core.handle_message(now, invite("bob", ""), udp(CALLER)));
    let fwd = &out[0].1;
    let ok = ok_from_bob(
        fwd,
        &[
            ("Contact", "<sip:bob@192.0.2.20:5060>"),
            ("Session-Expires", "90;refresher=uac"),
        ],
    );
    let up = sent(core.handle_message(now, ok, udp("192.0.2.20:5060")));
    let mut route: Vec<String> = up[0]
        .1
        .headers_named(HeaderName::RecordRoute)
        .map(|h| h.value.to_owned())
        .collect();
    route.reverse();
    // The caller refreshes at 60 s.
    let at = |s: u64| now + Duration::from_secs(s);
    let reinvite = msg(&format!(
        "INVITE sip:bob@192.0.2.20:5060 SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKre\n\
Route: {}\nFrom: <sip:caller@example.net>;tag=c\nTo: <sip:bob@example.com>;tag=b\n\
Call-ID: call-1\nCSeq: 2 INVITE\nContact: <sip:caller@192.0.2.10:5060>\nSession-Expires: 90\n\
Max-Forwards: 70\nContent-Length: 0\n\n",
        route.join(", ")
    ));
    let relayed = sent(core.handle_message(at(60), reinvite, udp(CALLER)));
    assert_eq!(relayed[0].1.method(), Some(Method::Invite), "{relayed:?}");
    assert!(
        core.tick_calls(at(150 + 31)).records.is_empty(),
        "refreshed at 60 s"
    );
    let tick = core.tick_calls(at(150 + 32));
    assert!(tick.commands.is_empty(), "{:?}", tick.commands);
    let r = &tick.records[0];
    assert_eq!(r.ending, dialog::Ending::Expired);
    assert_eq!(r.ended_ms, 1_700_000_150_000, "when the session ended");
}

/// `dlg_limit()`: a caller with two calls in progress gets no third one; once one is over,
/// it may call again; and the same call again in a transaction of its own (which would go
/// uncounted) is refused.
#[test]
fn a_call_limit_counts_calls_in_progress() {
    let core = with_script(
        "request_route {\n\
         if (is_method(\"REGISTER\")) { save(\"location\"); exit; }\n\
         if (!lookup(\"location\")) { sl_send_reply(404, \"Not Found\"); exit; }\n\
         record_route();\n\
         if (!dlg_limit(\"$fU@$fd\", 2)) { sl_send_reply(486, \"Too Many Calls\"); exit; }\n\
         t_relay(); }",
    );
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let now = Instant::now();
    let call = |id: &str, branch: &str| {
        msg(&format!(
            "INVITE sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK{branch}\n\
From: <sip:caller@example.net>;tag=t{id}\nTo: <sip:bob@example.com>\nCall-ID: {id}\n\
CSeq: 1 INVITE\nContact: <sip:caller@192.0.2.10:5060>\nMax-Forwards: 70\nContent-Length: 0\n\n"
        ))
    };
    let relayed = |out: &[(crate::Destination, Message)]| out[0].1.method() == Some(Method::Invite);
    let first = sent(core.handle_message(now, call("one", "one"), udp(CALLER)));
    assert!(relayed(&first));
    let again = sent(core.handle_message(now, call("one", "again"), udp(CALLER)));
    assert_eq!(
        again[0].1.status(),
        Some(486),
        "the same call again: {again:?}"
    );
    assert!(relayed(&sent(core.handle_message(
        now,
        call("two", "two"),
        udp(CALLER)
    ))));
    let third = sent(core.handle_message(now, call("three", "three"), udp(CALLER)));
    assert_eq!(third[0].1.status(), Some(486), "{third:?}");
    // The first call is declined: over, it counts no more.
    let busy = ResponseBuilder::for_request(&first[0].1, 486, "Busy Here", Some("x"));
    sent(core.handle_message(
        now,
        Message::parse(busy.build()).unwrap(),
        udp("192.0.2.20:5060"),
    ));
    assert!(relayed(&sent(core.handle_message(
        now,
        call("four", "four"),
        udp(CALLER)
    ))));
}
