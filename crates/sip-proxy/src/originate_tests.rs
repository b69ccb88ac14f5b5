//! Requests of our own, in memory: sent with our Via, retransmitted, answered once, freed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use registrar::Location;
use sip_message::{Message, Protocol};

use crate::tests::{answer, config, msg, resolve, sent, udp};
use crate::{Answer, Command, Core, Destination, OnAnswer};

const PHONE: &str = "192.0.2.20:5060";

fn options(uri: &str, extra: &str) -> Message {
    msg(&format!(
        "OPTIONS {uri} SIP/2.0\nFrom: <sip:ferrosip@example.com>;tag=k\nTo: <{uri}>\n\
Call-ID: ka-{uri}\nCSeq: 1 OPTIONS\nMax-Forwards: 70\n{extra}Content-Length: 0\n\n"
    ))
}

/// A callback that writes down how each request ended.
fn recorder() -> (Arc<Mutex<Vec<String>>>, impl Fn() -> OnAnswer) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let make = {
        let log = log.clone();
        move || -> OnAnswer {
            let log = log.clone();
            Box::new(move |_: &Core, _, answer: Answer, _: &mut Vec<Command>| {
                let text = match answer {
                    Answer::Response(r) => format!("{}", r.status().unwrap_or(0)),
                    Answer::Timeout => "timeout".into(),
                    Answer::Unreachable => "unreachable".into(),
                };
                log.lock().unwrap().push(text);
            })
        }
    };
    (log, make)
}

fn core() -> Core {
    Core::new(config(), Arc::new(Location::new()))
}

#[test]
fn a_keepalive_options_is_sent_with_our_via_and_answered_once() {
    let core = core();
    let (log, on_answer) = recorder();
    let now = Instant::now();
    let req = options(&format!("sip:{PHONE}"), "");
    let out = sent(core.send_request(now, req, None, on_answer()));
    assert_eq!(out.len(), 1);
    let (dest, sent_req) = &out[0];
    assert_eq!(*dest, udp(PHONE));
    let via = sent_req.top_via().unwrap();
    assert_eq!(via.host_raw, "192.0.2.1");
    assert!(via.branch().unwrap().starts_with("z9hG4bKfs-"));
    assert_eq!(sent_req.vias().count(), 1);
    // Retransmitted at T1 over UDP while unanswered.
    let t1 = core.next_timeout().expect("timer E");
    assert_eq!(t1, now + Duration::from_millis(500));
    let again = sent(core.handle_timeouts(t1));
    assert_eq!(again[0].1.to_bytes(), sent_req.to_bytes());
    // The answer is reported once; a retransmitted 200 is not.
    let ok = answer(sent_req, 200);
    assert!(sent(core.handle_message(t1, ok.clone(), udp(PHONE))).is_empty());
    core.handle_message(t1, ok, udp(PHONE));
    assert_eq!(*log.lock().unwrap(), ["200"]);
    // Freed once timer K has run.
    core.handle_timeouts(t1 + Duration::from_secs(6));
    assert_eq!(core.active_transactions(), 0);
    assert_eq!(core.next_timeout(), None);
}

#[test]
fn an_unanswered_request_times_out_once_after_64_t1() {
    let core = core();
    let (log, on_answer) = recorder();
    let t0 = Instant::now();
    let dest = Destination::new(Protocol::Udp, PHONE.parse().unwrap());
    let req = options("sip:nobody@example.com", "");
    let out = sent(core.send_request(t0, req, Some(dest), on_answer()));
    assert_eq!(out[0].0, dest, "sent where asked, not where the URI leads");
    let mut sends = 1;
    while let Some(t) = core.next_timeout() {
        sends += sent(core.handle_timeouts(t)).len();
        if !log.lock().unwrap().is_empty() {
            assert_eq!(t, t0 + Duration::from_secs(32), "timer F");
        }
    }
    assert_eq!(*log.lock().unwrap(), ["timeout"]);
    assert_eq!(sends, 11, "500 ms doubling to T2 = 4 s, until 32 s");
    assert_eq!(core.active_transactions(), 0);
}

#[test]
fn a_next_hop_by_name_is_looked_up_first_and_one_that_does_not_resolve_is_unreachable() {
    let core = core();
    let (log, on_answer) = recorder();
    let now = Instant::now();
    let bye = msg(
        "BYE sip:carol@10.0.0.9 SIP/2.0\nRoute: <sip:edge.example.net;lr>\n\
From: <sip:a@example.com>;tag=a\nTo: <sip:carol@example.net>;tag=c\nCall-ID: cut-1\n\
CSeq: 2 BYE\nMax-Forwards: 70\nContent-Length: 0\n\n",
    );
    let (hosts, then) = resolve(core.send_request(now, bye, None, on_answer())).unwrap();
    assert_eq!(
        crate::tests::names(&hosts),
        ["edge.example.net"],
        "the Route, not the Request-URI"
    );
    crate::tests::answer_dns(&core, now, &hosts[0], &["192.0.2.40"]);
    let out = sent(core.resume(now, then));
    assert_eq!(out[0].0, udp("192.0.2.40:5060"));
    assert_eq!(out[0].1.method().map(|m| m.as_str()), Some("BYE"));
    core.handle_message(now, answer(&out[0].1, 200), udp("192.0.2.40:5060"));

    let nx = options("sip:x@nx.example.net", "");
    let (hosts, then) = resolve(core.send_request(now, nx, None, on_answer())).unwrap();
    core.dns_answer(now, &hosts[0], vec![], Duration::ZERO);
    assert!(sent(core.resume(now, then)).is_empty());
    assert_eq!(*log.lock().unwrap(), ["200", "unreachable"]);
}

#[test]
fn a_connection_that_cannot_be_made_is_unreachable() {
    let core = core();
    let (log, on_answer) = recorder();
    let now = Instant::now();
    let req = options("sip:gw@192.0.2.50;transport=tcp", "");
    let out = sent(core.send_request(now, req, None, on_answer()));
    let (dest, req) = &out[0];
    assert_eq!(dest.protocol, Protocol::Tcp);
    assert!(sent(core.send_failed(now, *dest, req.to_bytes())).is_empty());
    assert_eq!(*log.lock().unwrap(), ["unreachable"]);
    assert_eq!(core.active_transactions(), 0);
}

#[test]
fn an_answer_may_send_the_next_request() {
    let core = core();
    let (log, on_answer) = recorder();
    let now = Instant::now();
    let next = Mutex::new(Some(on_answer()));
    let chained: OnAnswer = Box::new(move |core: &Core, now, _, out: &mut Vec<Command>| {
        let notify = options(&format!("sip:{PHONE}"), "X-Step: 2\n");
        if let Some(cb) = next.lock().unwrap().take() {
            out.extend(core.send_request(now, notify, None, cb));
        }
    });
    let first = sent(core.send_request(now, options(&format!("sip:{PHONE}"), ""), None, chained));
    let second = sent(core.handle_message(now, answer(&first[0].1, 200), udp(PHONE)));
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].1.header_str("X-Step").map(|h| h.value), Some("2"));
    core.handle_message(now, answer(&second[0].1, 404), udp(PHONE));
    assert_eq!(*log.lock().unwrap(), ["404"]);
}

/// Everything the core sends until `end`, its timers fired as they come due.
fn run_until(core: &Core, end: Instant) -> Vec<(Destination, Message)> {
    let mut all = Vec::new();
    while let Some(t) = core.next_timeout().filter(|t| *t <= end) {
        all.extend(sent(core.handle_timeouts(t)));
    }
    all
}

/// Sends an INVITE of our own, Call-ID `call_id`, which the phone answers 180; returns it
/// as sent.
fn ringing_invite(core: &Core, now: Instant, call_id: &str, on_answer: OnAnswer) -> Message {
    let inv = msg(&format!(
        "INVITE sip:{PHONE} SIP/2.0\nFrom: <sip:ferrosip@example.com>;tag=k\nTo: <sip:{PHONE}>\n\
Call-ID: {call_id}\nCSeq: 1 INVITE\nMax-Forwards: 70\nContact: <sip:ferrosip@192.0.2.1>\nContent-Length: 0\n\n"
    ));
    let sent_invite = sent(core.send_request(now, inv, None, on_answer))
        .remove(0)
        .1;
    sent(core.handle_message(now, answer(&sent_invite, 180), udp(PHONE)));
    sent_invite
}

#[test]
fn an_invite_of_our_own_that_only_rings_is_cancelled_after_timer_c_and_then_given_up() {
    let core = core();
    let timer_c = core.config().timer_c;
    let (log, on_answer) = recorder();
    let now = Instant::now();
    let sent_invite = ringing_invite(&core, now, "c2d-1", on_answer());
    // It rings for ever: timer C sends a CANCEL of the INVITE's transaction.
    let before = run_until(&core, now + timer_c - Duration::from_millis(1));
    assert!(before.is_empty(), "nothing before timer C: {before:?}");
    let cancels: Vec<Message> = run_until(&core, now + timer_c)
        .into_iter()
        .map(|(_, m)| m)
        .filter(|m| m.method().map(|m| m.as_str()) == Some("CANCEL"))
        .collect();
    assert_eq!(cancels.len(), 1, "one CANCEL at timer C");
    let branch = |m: &Message| m.top_via().unwrap().branch().map(str::to_owned);
    assert_eq!(branch(&cancels[0]), branch(&sent_invite));
    assert!(log.lock().unwrap().is_empty(), "not over yet");
    // Nothing answers the CANCEL: 64·T1 later the asker is told, and all is freed.
    run_until(&core, now + timer_c + Duration::from_secs(40));
    assert_eq!(*log.lock().unwrap(), ["timeout"]);
    assert_eq!(core.active_transactions(), 0);
}

#[test]
fn a_cancelled_invite_of_our_own_reports_its_487() {
    let core = core();
    let timer_c = core.config().timer_c;
    let (log, on_answer) = recorder();
    let now = Instant::now();
    let sent_invite = ringing_invite(&core, now, "c2d-2", on_answer());
    // Another provisional response restarts timer C.
    let later = now + timer_c / 2;
    run_until(&core, later);
    sent(core.handle_message(later, answer(&sent_invite, 183), udp(PHONE)));
    let early = run_until(&core, now + timer_c + Duration::from_millis(1));
    assert!(early
        .iter()
        .all(|(_, m)| m.method().map(|m| m.as_str()) != Some("CANCEL")));
    let t = later + timer_c;
    let cancels = run_until(&core, t);
    let (_, cancel) = cancels
        .iter()
        .find(|(_, m)| m.method().map(|m| m.as_str()) == Some("CANCEL"))
        .expect("timer C sends a CANCEL");
    // The phone answers the CANCEL first: that 200 is the CANCEL's, not the call's, and
    // ends its retransmissions.
    sent(core.handle_message(t, answer(cancel, 200), udp(PHONE)));
    let t = t + Duration::from_secs(2);
    let again = run_until(&core, t);
    assert!(again
        .iter()
        .all(|(_, m)| m.method().map(|m| m.as_str()) != Some("CANCEL")));
    assert!(log.lock().unwrap().is_empty(), "the call is not answered");
    sent(core.handle_message(t, answer(&sent_invite, 487), udp(PHONE)));
    assert_eq!(*log.lock().unwrap(), ["487"]);
}
