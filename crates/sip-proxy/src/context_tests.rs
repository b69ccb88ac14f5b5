//! Proxy contexts driven through the core: CANCEL, timer C, giving up on a silent branch,
//! and 2xx responses that arrive after a failure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use registrar::Location;
use sip_message::Message;

use crate::tests::{answer, config, invite, msg, register, sent, udp, CALLER};
use crate::{Core, Destination, ProxyConfig};

const BOB: &str = "192.0.2.20:5060";

/// T1 = 100 ms, so that 64·T1 (timers B and F, and giving up after a CANCEL) is 6.4 s.
const T1: Duration = Duration::from_millis(100);

/// A core with this timer C and T1 = 100 ms, bob registered at [`BOB`].
fn core(timer_c: Duration) -> Core {
    let mut cfg = ProxyConfig {
        timer_c,
        ..config()
    };
    cfg.timers.t1 = T1;
    let core = Core::new(cfg, Arc::new(Location::new()));
    register(&core, "bob", BOB, "1.0");
    core
}

/// A request from the caller for the INVITE of [`invite`].
fn from_caller(method: &str) -> Message {
    msg(&format!(
        "{method} sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKcall1\n\
From: <sip:caller@example.net>;tag=c\nTo: <sip:bob@example.com>\nCall-ID: call-1\n\
CSeq: 1 {method}\nMax-Forwards: 70\nContent-Length: 0\n\n"
    ))
}

fn is_method(m: &Message, method: &str) -> bool {
    m.method().is_some_and(|x| x.as_str() == method)
}

/// The status codes among `out` that went to the caller.
fn upstream(out: &[(Destination, Message)]) -> Vec<u16> {
    out.iter()
        .filter(|(d, _)| *d == udp(CALLER))
        .filter_map(|(_, m)| m.status())
        .collect()
}

/// Fires the core's timers in order, up to `end`, until `stop` holds for what one round sent;
/// returns the time of that round and everything sent until then.
fn run_timers(
    core: &Core,
    start: Instant,
    end: Instant,
    stop: impl Fn(&[(Destination, Message)]) -> bool,
) -> (Instant, Vec<(Destination, Message)>) {
    let (mut t, mut all) = (start, Vec::new());
    while let Some(next) = core.next_timeout().filter(|n| *n <= end) {
        t = next.max(t);
        let out = sent(core.handle_timeouts(t));
        let done = stop(&out);
        all.extend(out);
        if done {
            break;
        }
    }
    (t, all)
}

/// True when a final response went to the caller.
fn final_upstream(out: &[(Destination, Message)]) -> bool {
    upstream(out).iter().any(|&c| c >= 200)
}

#[test]
fn a_branch_silent_after_timer_c_and_its_cancel_ends_in_408_and_frees_the_context() {
    let timer_c = Duration::from_secs(1);
    let core = core(timer_c);
    let t0 = Instant::now();
    let fwd = sent(core.handle_message(t0, invite("bob", ""), udp(CALLER)))
        .remove(0)
        .1;
    let t1 = t0 + Duration::from_millis(10);
    let up = sent(core.handle_message(t1, answer(&fwd, 180), udp(BOB)));
    assert_eq!(upstream(&up), [180]);
    // Timer C sends the CANCEL; neither it nor the INVITE is ever answered.
    let deadline = t1 + timer_c + T1 * 64 + Duration::from_millis(500);
    let (t, out) = run_timers(&core, t1, deadline, final_upstream);
    assert!(t <= deadline);
    assert!(
        out.iter()
            .any(|(d, m)| *d == udp(BOB) && is_method(m, "CANCEL")),
        "CANCEL when timer C fires"
    );
    let finals: Vec<u16> = upstream(&out).into_iter().filter(|&c| c >= 200).collect();
    assert_eq!(finals, [408], "one final response within timer C + 64·T1");
    // The caller ACKs it; every transaction then ends and the context is freed.
    sent(core.handle_message(t, from_caller("ACK"), udp(CALLER)));
    let (_, rest) = run_timers(&core, t, t + Duration::from_secs(120), |_| false);
    assert_eq!(
        upstream(&rest),
        Vec::<u16>::new(),
        "no second final response"
    );
    assert_eq!(core.active_transactions(), 0);
    assert_eq!(core.next_timeout(), None);
}

#[test]
fn a_forwarded_cancel_nobody_answers_ends_in_487_and_frees_the_context() {
    let core = core(Duration::from_secs(180));
    let t0 = Instant::now();
    let fwd = sent(core.handle_message(t0, invite("bob", ""), udp(CALLER)))
        .remove(0)
        .1;
    sent(core.handle_message(t0, answer(&fwd, 180), udp(BOB)));
    let out = sent(core.handle_message(t0, from_caller("CANCEL"), udp(CALLER)));
    assert!(out.iter().any(|(_, m)| is_method(m, "CANCEL")));
    let deadline = t0 + T1 * 64 + Duration::from_millis(500);
    let (t, out) = run_timers(&core, t0, deadline, final_upstream);
    let finals: Vec<u16> = upstream(&out).into_iter().filter(|&c| c >= 200).collect();
    assert_eq!(
        finals,
        [487],
        "one final response by 64·T1 after the CANCEL"
    );
    sent(core.handle_message(t, from_caller("ACK"), udp(CALLER)));
    run_timers(&core, t, t + Duration::from_secs(120), |_| false);
    assert_eq!(core.active_transactions(), 0);
}

#[test]
fn a_cancel_goes_downstream_at_once_after_a_100_trying() {
    let core = core(Duration::from_secs(180));
    let t0 = Instant::now();
    let fwd = sent(core.handle_message(t0, invite("bob", ""), udp(CALLER)))
        .remove(0)
        .1;
    let up = sent(core.handle_message(t0, answer(&fwd, 100), udp(BOB)));
    assert_eq!(upstream(&up), Vec::<u16>::new(), "100 is not forwarded");
    let out = sent(core.handle_message(t0, from_caller("CANCEL"), udp(CALLER)));
    assert_eq!(upstream(&out), [200], "CANCEL answered");
    let cancel = out
        .iter()
        .find(|(_, m)| is_method(m, "CANCEL"))
        .expect("CANCEL downstream after a 100");
    assert_eq!(cancel.0, udp(BOB));
    assert_eq!(
        cancel.1.top_via().unwrap().branch(),
        fwd.top_via().unwrap().branch()
    );
    let out = sent(core.handle_message(t0, answer(&fwd, 487), udp(BOB)));
    assert_eq!(upstream(&out), [487]);
}

/// The callee's 200 to our CANCEL (which carries our Via alone) ends our CANCEL's
/// transaction: it is not sent again.
#[test]
fn a_cancel_answered_downstream_is_not_retransmitted() {
    let core = core(Duration::from_secs(180));
    let t0 = Instant::now();
    let fwd = sent(core.handle_message(t0, invite("bob", ""), udp(CALLER)))
        .remove(0)
        .1;
    sent(core.handle_message(t0, answer(&fwd, 180), udp(BOB)));
    let out = sent(core.handle_message(t0, from_caller("CANCEL"), udp(CALLER)));
    let (_, cancel) = out
        .iter()
        .find(|(_, m)| is_method(m, "CANCEL"))
        .expect("CANCEL downstream");
    assert_eq!(cancel.vias().count(), 1, "our Via alone");
    assert!(sent(core.handle_message(t0, answer(cancel, 200), udp(BOB))).is_empty());
    let (_, later) = run_timers(&core, t0, t0 + T1 * 20, |_| false);
    let again = later.iter().filter(|(_, m)| is_method(m, "CANCEL")).count();
    assert_eq!(again, 0, "no CANCEL after its 200");
}

#[test]
fn a_cancel_that_waits_for_a_provisional_goes_on_a_100() {
    let core = core(Duration::from_secs(180));
    let t0 = Instant::now();
    let fwd = sent(core.handle_message(t0, invite("bob", ""), udp(CALLER)))
        .remove(0)
        .1;
    let out = sent(core.handle_message(t0, from_caller("CANCEL"), udp(CALLER)));
    assert!(
        !out.iter().any(|(_, m)| is_method(m, "CANCEL")),
        "no CANCEL before a provisional response"
    );
    let out = sent(core.handle_message(t0, answer(&fwd, 100), udp(BOB)));
    let hops: Vec<(Destination, Option<&str>)> = out
        .iter()
        .map(|(d, m)| (*d, m.method().map(|x| x.as_str())))
        .collect();
    assert_eq!(hops, [(udp(BOB), Some("CANCEL"))]);
}

#[test]
fn timer_c_cancels_a_branch_that_sent_only_100() {
    let timer_c = Duration::from_secs(1);
    let core = core(timer_c);
    let t0 = Instant::now();
    let fwd = sent(core.handle_message(t0, invite("bob", ""), udp(CALLER)))
        .remove(0)
        .1;
    sent(core.handle_message(t0, answer(&fwd, 100), udp(BOB)));
    let (t, out) = run_timers(&core, t0, t0 + timer_c, |_| false);
    assert!(
        out.iter()
            .any(|(d, m)| *d == udp(BOB) && is_method(m, "CANCEL")),
        "CANCEL when timer C fires after a 100"
    );
    assert_eq!(upstream(&out), [100], "our own 100 Trying only, no 408 yet");
    // The branch was not answered: 408 upstream, not the 487 its CANCEL brought.
    let out = sent(core.handle_message(t, answer(&fwd, 487), udp(BOB)));
    assert_eq!(upstream(&out), [408]);
}

#[test]
fn a_2xx_after_timer_b_goes_upstream() {
    let core = core(Duration::from_secs(180));
    let t0 = Instant::now();
    let fwd = sent(core.handle_message(t0, invite("bob", ""), udp(CALLER)))
        .remove(0)
        .1;
    let (t, out) = run_timers(&core, t0, t0 + T1 * 65, final_upstream);
    assert_eq!(upstream(&out).last(), Some(&408), "timer B: 408 upstream");
    let ok = answer(&fwd, 200);
    for _ in 0..2 {
        let out = sent(core.handle_message(t, ok.clone(), udp(BOB)));
        assert_eq!(out.len(), 1, "{out:?}");
        let (dest, up) = &out[0];
        assert_eq!((*dest, up.status()), (udp(CALLER), Some(200)));
        assert_eq!(up.vias().count(), 1, "our Via stripped");
    }
    let (_, rest) = run_timers(&core, t, t + Duration::from_secs(120), |_| false);
    assert!(
        upstream(&rest).iter().all(|&c| c == 408),
        "only retransmissions of the 408: {:?}",
        upstream(&rest)
    );
    assert_eq!(core.active_transactions(), 0);
}

#[test]
fn a_2xx_after_a_forwarded_486_goes_upstream_and_is_not_acked() {
    let core = core(Duration::from_secs(180));
    let t0 = Instant::now();
    let fwd = sent(core.handle_message(t0, invite("bob", ""), udp(CALLER)))
        .remove(0)
        .1;
    let out = sent(core.handle_message(t0, answer(&fwd, 486), udp(BOB)));
    assert_eq!(upstream(&out), [486]);
    sent(core.handle_message(t0, from_caller("ACK"), udp(CALLER)));
    let ok = answer(&fwd, 200);
    let forwarded = |t| {
        let out = sent(core.handle_message(t, ok.clone(), udp(BOB)));
        let hops: Vec<(Destination, Option<u16>)> =
            out.iter().map(|(d, m)| (*d, m.status())).collect();
        assert_eq!(
            hops,
            [(udp(CALLER), Some(200))],
            "the 2xx upstream, no ACK downstream"
        );
        assert_eq!(out[0].1.vias().count(), 1, "our Via stripped");
    };
    forwarded(t0);
    forwarded(t0);
    // Later still, the server transaction is over (timer I), the branch's is not (timer D).
    let t = t0 + Duration::from_secs(10);
    run_timers(&core, t0, t, |_| false);
    assert_eq!(core.active_transactions(), 1);
    forwarded(t);
    let (_, rest) = run_timers(&core, t, t0 + Duration::from_secs(120), |_| false);
    assert_eq!(
        upstream(&rest),
        Vec::<u16>::new(),
        "no second final response"
    );
    assert_eq!(core.active_transactions(), 0);
}

#[test]
fn timer_c_without_a_provisional_response_ends_the_branch_and_a_late_100_keeps_nothing_alive() {
    // RFC 3261 §16.8: timer C fired, no provisional response: the client transaction ends
    // and the branch counts as a 408 (timer C below 64·T1, as `timer_c = 30` with the
    // default T1 of 500 ms is).
    let timer_c = Duration::from_secs(1);
    let core = core(timer_c);
    let t0 = Instant::now();
    let fwd = sent(core.handle_message(t0, invite("bob", ""), udp(CALLER)))
        .remove(0)
        .1;
    let (t, out) = run_timers(&core, t0, t0 + timer_c, final_upstream);
    assert_eq!(upstream(&out).last(), Some(&408), "timer C: 408 upstream");
    sent(core.handle_message(t, from_caller("ACK"), udp(CALLER)));
    // The callee wakes up: its 100 finds no transaction, nothing goes anywhere.
    let t = t + Duration::from_millis(100);
    assert!(sent(core.handle_message(t, answer(&fwd, 100), udp(BOB))).is_empty());
    let (_, rest) = run_timers(&core, t, t + Duration::from_secs(120), |_| false);
    assert!(
        !rest.iter().any(|(_, m)| is_method(m, "INVITE")),
        "no INVITE resent after timer C"
    );
    assert_eq!(core.active_transactions(), 0);
    assert_eq!(core.next_timeout(), None);
}

#[test]
fn a_forked_non_invite_request_is_never_cancelled() {
    // RFC 3261 §9.1: a CANCEL SHOULD NOT be sent for a request other than INVITE, and timer C
    // is for INVITE branches only (§16.6 step 11): neither a 2xx on another branch nor a
    // provisional response followed by silence brings one.
    let core = core(Duration::from_secs(1));
    register(&core, "bob", "192.0.2.21:5060", "1.0");
    let t0 = Instant::now();
    let out = sent(core.handle_message(t0, from_caller("MESSAGE"), udp(CALLER)));
    assert_eq!(out.len(), 2, "forked to both contacts");
    let (a, b) = (&out[0], &out[1]);
    let up = sent(core.handle_message(t0, answer(&a.1, 180), a.0));
    assert_eq!(upstream(&up), [180]);
    let (_, out) = run_timers(&core, t0, t0 + Duration::from_secs(2), |_| false);
    assert!(
        !out.iter().any(|(_, m)| is_method(m, "CANCEL")),
        "no timer C for a MESSAGE"
    );
    let out = sent(core.handle_message(t0 + Duration::from_secs(2), answer(&b.1, 200), b.0));
    assert_eq!(upstream(&out), [200]);
    assert!(
        !out.iter().any(|(_, m)| is_method(m, "CANCEL")),
        "the other branch is not cancelled"
    );
    let (_, rest) = run_timers(&core, t0, t0 + Duration::from_secs(60), |_| false);
    assert!(!rest.iter().any(|(_, m)| is_method(m, "CANCEL")));
    assert_eq!(core.active_transactions(), 0);
}

#[test]
fn a_late_2xx_to_a_non_invite_answers_it_while_later_targets_are_tried() {
    // RFC 3261 §16.7 step 5: a 2xx goes upstream at once. The first contact's branch timed
    // out (timer F) and the second q group is being tried when the first contact's 200
    // comes: it is the answer, not a 408 later.
    let core = core(Duration::from_secs(180));
    register(&core, "bob", "192.0.2.21:5060", "0.5");
    let t0 = Instant::now();
    let first = sent(core.handle_message(t0, from_caller("MESSAGE"), udp(CALLER)))
        .remove(0)
        .1;
    let (t, out) = run_timers(&core, t0, t0 + T1 * 64, |_| false);
    assert!(
        out.iter()
            .any(|(d, m)| *d == udp("192.0.2.21:5060") && is_method(m, "MESSAGE")),
        "the second group after timer F"
    );
    assert_eq!(upstream(&out), Vec::<u16>::new());
    let up = sent(core.handle_message(t + T1, answer(&first, 200), udp(BOB)));
    assert_eq!(upstream(&up), [200]);
    let (_, rest) = run_timers(&core, t, t + Duration::from_secs(60), |_| false);
    assert!(
        upstream(&rest).iter().all(|&c| c == 200),
        "no 408 after the 200: {:?}",
        upstream(&rest)
    );
    assert_eq!(core.active_transactions(), 0);
}

/// What the core sent, as sent: destination and bytes.
fn raw(cmds: Vec<crate::Command>) -> Vec<(Destination, bytes::Bytes)> {
    cmds.into_iter()
        .filter_map(|c| match c {
            crate::Command::Send { dest, data } => Some((dest, data)),
            _ => None,
        })
        .collect()
}

/// An INVITE answered 2xx keeps its key alone while timers L and M run (RFC 6026): a
/// retransmitted INVITE is absorbed, a CANCEL still finds it, the callee's 2xx sent again
/// goes upstream as the first went (the same bytes, Record-Route key included), anything
/// else from the callee is dropped; after 64·T1 nothing is left.
#[test]
fn an_invite_answered_2xx_lingers_as_its_key_alone() {
    // Over UDP, and from a TCP caller whose Via names no port of its connection (its 2xx
    // goes back on that connection, the second as the first).
    let tcp = Destination {
        connection: Some("192.0.2.10:40000".parse().expect("addr")),
        ..Destination::new(
            sip_message::Protocol::Tcp,
            "192.0.2.10:40000".parse().expect("addr"),
        )
    };
    for caller in [udp(CALLER), tcp] {
        lingers_as_its_key_alone(caller);
    }
}

fn lingers_as_its_key_alone(caller: Destination) {
    let core = core(Duration::from_secs(180));
    let t0 = Instant::now();
    let invite = || {
        let text = invite("bob", "").to_bytes();
        let text = String::from_utf8_lossy(&text).replace(
            "SIP/2.0/UDP",
            if caller.protocol == sip_message::Protocol::Tcp {
                "SIP/2.0/TCP"
            } else {
                "SIP/2.0/UDP"
            },
        );
        Message::parse(text.into_bytes()).expect("INVITE")
    };
    let fwd = sent(core.handle_message(t0, invite(), caller)).remove(0).1;
    let mut ok = sip_message::ResponseBuilder::for_request(&fwd, 200, "OK", Some("b"))
        .header("Contact", "<sip:bob@192.0.2.20:5060>");
    for h in fwd.headers_named(sip_message::HeaderName::RecordRoute) {
        ok = ok.header("Record-Route", h.value);
    }
    let ok = Message::parse(ok.build()).expect("200");
    let first = raw(core.handle_message(t0, ok.clone(), udp(BOB)));
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].0.addr.ip(), caller.addr.ip());
    assert_eq!(first[0].0.connection, caller.connection);
    assert_eq!(core.shards().lingering(), 1, "the context became its key");
    assert_eq!(core.active_transactions(), 1, "and still counts");
    let t = t0 + Duration::from_secs(1);
    assert!(
        raw(core.handle_message(t, invite(), caller)).is_empty(),
        "a retransmitted INVITE is absorbed"
    );
    let again = raw(core.handle_message(t, ok.clone(), udp(BOB)));
    assert_eq!(again, first, "the 2xx again, as it went the first time");
    let ringing = answer(&fwd, 180);
    assert!(raw(core.handle_message(t, ringing, udp(BOB))).is_empty());
    if caller.protocol == sip_message::Protocol::Udp {
        let out = sent(core.handle_message(t, from_caller("CANCEL"), udp(CALLER)));
        assert_eq!(upstream(&out), [200], "a CANCEL finds the transaction");
    }
    // (The CANCEL's own transaction lingers for timer J from then.)
    run_timers(&core, t, t + T1 * 65, |_| false);
    assert_eq!(core.active_transactions(), 0);
    assert_eq!(core.shards().lingering(), 0);
    assert_eq!(core.next_timeout(), None);
}

/// A non-INVITE answered lingers as its key and its answer: a retransmission gets the
/// same answer again, and a late copy of the callee's answer is dropped (as its branch's
/// transaction absorbed it for timer K, and §16.7 step 5 after); timer J ends it.
#[test]
fn a_non_invite_answered_lingers_as_its_key_and_its_answer() {
    let core = core(Duration::from_secs(180));
    let t0 = Instant::now();
    let options = from_caller("OPTIONS");
    let fwd = sent(core.handle_message(t0, options.clone(), udp(CALLER)));
    assert_eq!(fwd[0].0, udp(BOB), "OPTIONS forwarded to bob");
    let ok = answer(&fwd[0].1, 200);
    let first = raw(core.handle_message(t0, ok.clone(), udp(BOB)));
    assert_eq!(first.len(), 1);
    assert_eq!(core.shards().lingering(), 1);
    for t in [t0, t0 + Duration::from_secs(6)] {
        let again = raw(core.handle_message(t, options.clone(), udp(CALLER)));
        assert_eq!(again, first, "the answer again for a retransmission");
        assert!(raw(core.handle_message(t, ok.clone(), udp(BOB))).is_empty());
    }
    let t = t0 + Duration::from_secs(6);
    run_timers(&core, t, t0 + T1 * 65, |_| false);
    assert_eq!(core.active_transactions(), 0);
}
