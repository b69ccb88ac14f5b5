//! The proxy driven by scripts, in memory: what each routing function does to the messages.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::tests::{answer, invite, invite_on, msg, register, sent, udp, with_script, CALLER};
use crate::Command;

const REGISTRAR: &str = r#"
request_route {
    if (is_method("REGISTER")) { save("location"); exit; }
"#;

fn script(body: &str) -> String {
    format!("{REGISTRAR}{body}")
}

#[test]
fn numbers_with_a_prefix_go_to_a_gateway() {
    let core = with_script(&script(
        r#"
    if ($rU =~ "^\+?49") { $du = "sip:192.0.2.50:5080"; t_relay(); exit; }
    sl_send_reply(404, "Not Found");
}"#,
    ));
    let req = msg("INVITE sip:+4930123@example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKgw1\n\
From: <sip:a@example.com>;tag=a\nTo: <sip:+4930123@example.com>\nCall-ID: gw-1\nCSeq: 1 INVITE\nMax-Forwards: 70\n\n");
    let out = sent(core.handle_message(Instant::now(), req, udp(CALLER)));
    let (dest, fwd) = out.last().expect("forwarded");
    assert_eq!(*dest, udp("192.0.2.50:5080"));
    assert_eq!(fwd.request_uri_str(), Some("sip:+4930123@example.com"));
    let bob = invite_on("other", "bob", "");
    let other = sent(core.handle_message(Instant::now(), bob, udp(CALLER)));
    assert_eq!(other[0].1.status(), Some(404));
}

#[test]
fn a_user_agent_is_refused() {
    let core = with_script(&script(
        r#"
    if ($ua =~ "friendly-scanner") { sl_send_reply(403, "Forbidden"); exit; }
    sl_send_reply(200, "Welcome");
}"#,
    ));
    let scanner = invite("bob", "User-Agent: friendly-scanner 1.0\n");
    let out = sent(core.handle_message(Instant::now(), scanner, udp(CALLER)));
    assert_eq!(
        (out[0].1.status(), out[0].1.reason()),
        (Some(403), Some("Forbidden"))
    );
    let other = invite_on("other", "bob", "");
    let out = sent(core.handle_message(Instant::now(), other, udp(CALLER)));
    assert_eq!(out[0].1.reason(), Some("Welcome"));
}

const VOICEMAIL: &str = r#"
    if (!lookup("location")) { sl_send_reply(404, "Not Found"); exit; }
    $avp(vm) = "sip:vm-" + $rU + "@192.0.2.60";
    t_on_failure("VOICEMAIL");
    t_relay();
}

failure_route[VOICEMAIL] {
    if ($rs == 486 || $rs == 408) {
        $ru = $avp(vm);
        append_hf("X-Diverted: " + $rs);
        t_relay();
    }
}"#;

#[test]
fn a_busy_callee_is_forwarded_to_voicemail_in_the_failure_route() {
    let core = with_script(&script(VOICEMAIL));
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let now = Instant::now();
    let out = sent(core.handle_message(now, invite("bob", ""), udp(CALLER)));
    let (_, first) = out.last().unwrap();
    let out = sent(core.handle_message(now, answer(first, 486), udp("192.0.2.20:5060")));
    let (dest, vm) = out
        .iter()
        .find(|(_, m)| m.is_request() && m.request_uri_str() != Some("sip:bob@192.0.2.20:5060"))
        .expect("a new branch");
    assert_eq!(*dest, udp("192.0.2.60:5060"));
    assert_eq!(vm.request_uri_str(), Some("sip:vm-bob@192.0.2.60"));
    assert_eq!(vm.header_str("X-Diverted").map(|h| h.value), Some("486"));
    assert!(
        out.iter().all(|(_, m)| m.status() != Some(486)),
        "the 486 is not passed upstream while voicemail is tried"
    );
    let up = sent(core.handle_message(now, answer(vm, 200), udp("192.0.2.60:5060")));
    assert!(up
        .iter()
        .any(|(d, m)| *d == udp(CALLER) && m.status() == Some(200)));
}

#[test]
fn an_unanswered_callee_is_forwarded_to_voicemail_after_408() {
    let core = with_script(&script(VOICEMAIL));
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let t0 = Instant::now();
    sent(core.handle_message(t0, invite("bob", ""), udp(CALLER)));
    // Bob never answers: timer B ends the branch with 408 after 64 × T1.
    let mut vm = None;
    while let Some(t) = core
        .next_timeout()
        .filter(|t| *t < t0 + Duration::from_secs(40))
    {
        let out = sent(core.handle_timeouts(t));
        vm = vm.or(out
            .into_iter()
            .find(|(d, m)| *d == udp("192.0.2.60:5060") && m.is_request()));
        if vm.is_some() {
            break;
        }
    }
    let (_, vm) = vm.expect("voice mail tried after the timeout");
    assert_eq!(vm.header_str("X-Diverted").map(|h| h.value), Some("408"));
}

#[test]
fn a_failure_route_relaying_to_a_name_runs_again_once_it_is_resolved() {
    let core = with_script(&script(&VOICEMAIL.replace("192.0.2.60", "vm.example.net")));
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let now = Instant::now();
    let out = sent(core.handle_message(now, invite("bob", ""), udp(CALLER)));
    let (_, first) = out.last().unwrap();
    let cmds = core.handle_message(now, answer(first, 486), udp("192.0.2.20:5060"));
    let (hosts, then) = cmds
        .into_iter()
        .find_map(|c| match c {
            Command::Resolve { hosts, then } => Some((hosts, then)),
            _ => None,
        })
        .expect("a lookup of the voice mail server");
    assert_eq!(crate::tests::names(&hosts), ["vm.example.net"]);
    crate::tests::answer_dns(&core, now, &hosts[0], &["192.0.2.61"]);
    let out = sent(core.resume(now, then));
    let (dest, vm) = out
        .iter()
        .find(|(_, m)| m.is_request())
        .expect("voice mail tried");
    assert_eq!(*dest, udp("192.0.2.61:5060"));
    assert_eq!(vm.request_uri_str(), Some("sip:vm-bob@vm.example.net"));
    assert!(
        out.iter().all(|(_, m)| m.status() != Some(486)),
        "486 not passed upstream"
    );
    // Once it answers, the caller gets its answer.
    let up = sent(core.handle_message(now, answer(vm, 200), udp("192.0.2.61:5060")));
    assert!(up
        .iter()
        .any(|(d, m)| *d == udp(CALLER) && m.status() == Some(200)));
}

#[test]
fn without_a_matching_status_the_failure_route_passes_the_reply_upstream() {
    let core = with_script(&script(VOICEMAIL));
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let now = Instant::now();
    let out = sent(core.handle_message(now, invite("bob", ""), udp(CALLER)));
    let (_, first) = out.last().unwrap();
    let up = sent(core.handle_message(now, answer(first, 603), udp("192.0.2.20:5060")));
    assert!(up
        .iter()
        .any(|(d, m)| *d == udp(CALLER) && m.status() == Some(603)));
}

#[test]
fn t_reply_in_a_failure_route_replaces_the_answer() {
    let core = with_script(&script(
        r#"
    lookup("location");
    t_on_failure("SORRY");
    t_relay();
}
failure_route[SORRY] { t_reply(480, "Try Later"); }"#,
    ));
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let now = Instant::now();
    let out = sent(core.handle_message(now, invite("bob", ""), udp(CALLER)));
    let (_, first) = out.last().unwrap();
    let up = sent(core.handle_message(now, answer(first, 500), udp("192.0.2.20:5060")));
    let (dest, resp) = up.iter().find(|(_, m)| m.status().is_some()).unwrap();
    assert_eq!(*dest, udp(CALLER));
    assert_eq!(
        (resp.status(), resp.reason()),
        (Some(480), Some("Try Later"))
    );
}

#[test]
fn headers_are_added_and_removed_on_relay() {
    let core = with_script(&script(
        r#"
    lookup("location");
    append_hf("X-Relayed-By: ferrosip\r\n");
    remove_hf("X-Secret");
    t_relay();
}"#,
    ));
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let req = invite("bob", "X-Secret: 42\n");
    let out = sent(core.handle_message(Instant::now(), req, udp(CALLER)));
    let (_, fwd) = out.last().unwrap();
    assert_eq!(
        fwd.header_str("X-Relayed-By").map(|h| h.value),
        Some("ferrosip")
    );
    assert!(fwd.header_str("X-Secret").is_none());
}

#[test]
fn a_branch_route_changes_each_branch_and_may_drop_one() {
    let core = with_script(&script(
        r#"
    lookup("location");
    t_on_branch("EACH");
    t_relay();
}
branch_route[EACH] {
    if ($ru =~ "192\.0\.2\.21") { drop; }
    append_hf("X-Branch: " + $ru);
}"#,
    ));
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    register(&core, "bob", "192.0.2.21:5060", "1.0");
    let out = sent(core.handle_message(Instant::now(), invite("bob", ""), udp(CALLER)));
    let branches: Vec<_> = out.iter().filter(|(_, m)| m.is_request()).collect();
    assert_eq!(branches.len(), 1, "{branches:?}");
    let (dest, fwd) = branches[0];
    assert_eq!(*dest, udp("192.0.2.20:5060"));
    assert_eq!(
        fwd.header_str("X-Branch").map(|h| h.value),
        Some("sip:bob@192.0.2.20:5060")
    );
}

#[test]
fn reply_routes_edit_and_drop_replies() {
    let core = with_script(&script(
        r#"
    lookup("location");
    t_on_reply("MARK");
    t_relay();
}
reply_route { if ($rs == 183) { drop; } }
reply_route[MARK] { append_hf("X-Seen: " + $rs); }"#,
    ));
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let now = Instant::now();
    let out = sent(core.handle_message(now, invite("bob", ""), udp(CALLER)));
    let (_, fwd) = out.last().unwrap();
    let up = sent(core.handle_message(now, answer(fwd, 183), udp("192.0.2.20:5060")));
    assert!(up.is_empty(), "183 dropped: {up:?}");
    let up = sent(core.handle_message(now, answer(fwd, 180), udp("192.0.2.20:5060")));
    assert_eq!(up[0].1.header_str("X-Seen").map(|h| h.value), Some("180"));
}

#[test]
fn a_second_t_relay_of_the_same_request_fails() {
    let core = with_script(&script(
        r#" lookup("location"); t_relay(); if (!t_relay()) { xlog("second refused"); } }"#,
    ));
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let before = core.active_transactions();
    let out = sent(core.handle_message(Instant::now(), invite("bob", ""), udp(CALLER)));
    assert_eq!(out.len(), 1, "one INVITE downstream: {out:?}");
    assert_eq!(core.active_transactions(), before + 1);
}

#[test]
fn forward_relays_statelessly() {
    let core = with_script(&script(r#" lookup("location"); forward(); }"#));
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let now = Instant::now();
    let before = core.active_transactions();
    let out = sent(core.handle_message(now, invite("bob", ""), udp(CALLER)));
    assert_eq!(out.len(), 1, "no 100 Trying without a transaction");
    let (_, fwd) = &out[0];
    assert!(fwd
        .top_via()
        .unwrap()
        .branch()
        .unwrap()
        .starts_with("z9hG4bKsl-"));
    assert_eq!(core.active_transactions(), before, "no context kept");
    let up = sent(core.handle_message(now, answer(fwd, 200), udp("192.0.2.20:5060")));
    assert_eq!(up[0].0, udp(CALLER));
}

/// Without a transaction the caller's copy of our Record-Route is keyed all the same: for
/// its requests to the callee's Contact.
#[test]
fn a_stateless_proxy_keys_the_callers_copy_of_its_record_route() {
    let core = with_script(&script(
        r#" lookup("location"); record_route(); forward(); }"#,
    ));
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let now = Instant::now();
    let out = sent(core.handle_message(now, invite("bob", ""), udp(CALLER)));
    let fwd = &out[0].1;
    let rr = fwd
        .header(sip_message::HeaderName::RecordRoute)
        .unwrap()
        .value;
    let callee_copy = crate::tests::rk_callee("call-1", "c", "sip:caller@192.0.2.10:5060");
    assert_eq!(rr, format!("<sip:192.0.2.1:5060;lr{callee_copy}>"));
    let ok = sip_message::ResponseBuilder::for_request(fwd, 200, "OK", Some("b"))
        .header("Record-Route", rr)
        .header("Contact", "<sip:bob@192.0.2.20:5060>")
        .build();
    let ok = sip_message::Message::parse(ok).unwrap();
    let up = sent(core.handle_message(now, ok, udp("192.0.2.20:5060")));
    let caller_copy = crate::tests::rk_caller("call-1", "c", "sip:bob@192.0.2.20:5060");
    let rr = up[0]
        .1
        .header(sip_message::HeaderName::RecordRoute)
        .unwrap()
        .value;
    assert_eq!(rr, format!("<sip:192.0.2.1:5060;lr{caller_copy}>"));
}

#[test]
fn a_named_route_returns_a_value() {
    let core = with_script(&script(
        r#"
    if (route(CLASSIFY) == 2) { sl_send_reply(403, "Premium"); exit; }
    sl_send_reply(404, "Ordinary " + $rc);
}
route[CLASSIFY] {
    if ($rU =~ "^0900") { return 2; }
    return 1;
}"#,
    ));
    let req = |user: &str| {
        msg(&format!("OPTIONS sip:{user}@example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK{user}\n\
From: <sip:a@example.com>;tag=a\nTo: <sip:{user}@example.com>\nCall-ID: r-{user}\nCSeq: 1 OPTIONS\n\n"))
    };
    let out = sent(core.handle_message(Instant::now(), req("0900123"), udp(CALLER)));
    assert_eq!(out[0].1.reason(), Some("Premium"));
    let out = sent(core.handle_message(Instant::now(), req("0301"), udp(CALLER)));
    assert_eq!(out[0].1.reason(), Some("Ordinary 1"));
}

#[test]
fn a_reload_applies_to_new_requests_while_transactions_keep_their_script() {
    let core = with_script(&script(VOICEMAIL));
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let now = Instant::now();
    let out = sent(core.handle_message(now, invite("bob", ""), udp(CALLER)));
    let (_, first) = out.last().unwrap();
    let other = crate::compile(
        "new.cfg",
        r#"request_route { sl_send_reply(503, "Maintenance"); }"#,
    )
    .unwrap();
    core.reload(Arc::new(other));
    // The transaction in flight still has its failure route.
    let out = sent(core.handle_message(now, answer(first, 486), udp("192.0.2.20:5060")));
    assert!(out
        .iter()
        .any(|(d, m)| *d == udp("192.0.2.60:5060") && m.is_request()));
    // A new request runs the new script.
    let mut text = String::from_utf8(invite("bob", "").to_bytes().to_vec()).unwrap();
    text = text
        .replace("z9hG4bKcall1", "z9hG4bKcall2")
        .replace("call-1", "call-2");
    let out =
        sent(core.handle_message(now, sip_message::Message::parse(text).unwrap(), udp(CALLER)));
    assert_eq!(out[0].1.status(), Some(503));
}

/// `loose_route()` as Kamailio's: 1 when our Route entries were there and were taken off
/// (even the only one: the Request-URI is then the next hop), -2 when an in-dialog
/// request's entry of ours lacks our key for its dialog (a Route set we did not put there),
/// -3 when the top Route is not ours, -1 without Route. Kamailio's standard in-dialog block
/// relays BYE and ACK.
#[test]
fn loose_route_returns_what_kamailio_returns() {
    let core = with_script(
        r#"
request_route {
    $var(r) = loose_route();
    sl_send_reply(200, "r=" + $var(r));
}"#,
    );
    let key = crate::tests::rk_caller("lr", "c", "sip:bob@192.0.2.20:5060");
    let ours = format!("Route: <sip:192.0.2.1:5060;lr{key}>\n");
    let on = crate::tests::rk_via(
        crate::route_key::Holder::Caller,
        ("lr", "c"),
        "sip:bob@192.0.2.20:5060",
        &["sip:192.0.2.30;lr"],
    );
    let then_another = format!("Route: <sip:192.0.2.1;lr{on}>, <sip:192.0.2.30;lr>\n");
    // A key for a route set that ends with us does not lead on to another proxy.
    let not_on = format!("Route: <sip:192.0.2.1;lr{key}>, <sip:192.0.2.30;lr>\n");
    for (i, (route, expected)) in [
        (ours.as_str(), "r=1"),
        (then_another.as_str(), "r=1"),
        (not_on.as_str(), "r=-2"),
        ("Route: <sip:192.0.2.1:5060;lr>\n", "r=-2"),
        (
            "Route: <sip:192.0.2.1:5060;lr;rk=0123456789abcdef>\n",
            "r=-2",
        ),
        ("Route: <sip:192.0.2.30;lr>\n", "r=-3"),
        ("", "r=-1"),
    ]
    .into_iter()
    .enumerate()
    {
        let bye = msg(&format!(
            "BYE sip:bob@192.0.2.20:5060 SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKlr{i}\n\
{route}From: <sip:caller@example.net>;tag=c\nTo: <sip:bob@example.com>;tag=b\nCall-ID: lr\n\
CSeq: 2 BYE\nMax-Forwards: 70\nContent-Length: 0\n\n"
        ));
        let out = sent(core.handle_message(Instant::now(), bye, udp(CALLER)));
        assert_eq!(out[0].1.reason(), Some(expected), "{route:?}");
    }
    let kamailio = with_script(
        r#"
request_route {
    if (has_totag()) {
        if (loose_route()) { t_relay(); exit; }
        sl_send_reply(404, "Not here");
        exit;
    }
}"#,
    );
    let key = crate::tests::rk_callee("k", "b", "sip:bob@192.0.2.20:5060");
    let bye = msg(&format!(
        "BYE sip:bob@192.0.2.20:5060 SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKk\n\
Route: <sip:192.0.2.1:5060;lr{key}>\nFrom: <sip:caller@example.net>;tag=c\nTo: <sip:bob@example.com>;tag=b\n\
Call-ID: k\nCSeq: 2 BYE\nMax-Forwards: 70\nContent-Length: 0\n\n"
    ));
    let out = sent(kamailio.handle_message(Instant::now(), bye, udp(CALLER)));
    assert_eq!(
        out[0].0,
        udp("192.0.2.20:5060"),
        "relayed to the Request-URI"
    );
}

/// The caller's CANCEL of its INVITE with branch `z9hG4bK<branch>` (`invite_on`).
fn cancel_of(branch: &str) -> sip_message::Message {
    msg(&format!(
        "CANCEL sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK{branch}\n\
From: <sip:caller@example.net>;tag=c\nTo: <sip:bob@example.com>\nCall-ID: call-1\nCSeq: 1 CANCEL\n\
Max-Forwards: 70\nContent-Length: 0\n\n"
    ))
}

const NO_ANSWER: &str = r#"
    if (!lookup("location")) { sl_send_reply(404, "Not Found"); exit; }
    $avp(vm) = "sip:vm-" + $rU + "@192.0.2.60";
    t_on_failure("NO_ANSWER");
    t_relay();
}

failure_route[NO_ANSWER] {
    if (t_is_canceled()) { exit; }
    if (t_branch_timeout()) {
        $ru = $avp(vm);
        append_hf("X-Diverted: " + $rs);
        t_relay();
    }
}"#;

/// Kamailio's "no answer → voice mail": a ringing callee that timer C gives up on counts as
/// 408 and `t_branch_timeout()`; a caller's CANCEL runs the failure route with 487 and
/// `t_is_canceled()`, and nothing it does starts a new branch.
#[test]
fn no_answer_is_told_from_a_callers_cancel() {
    let core = with_script(&script(NO_ANSWER));
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let t0 = Instant::now();
    let bob = udp("192.0.2.20:5060");
    let fwd = sent(core.handle_message(t0, invite("bob", ""), udp(CALLER)))
        .remove(0)
        .1;
    sent(core.handle_message(t0, answer(&fwd, 180), bob));
    let t1 = t0 + Duration::from_secs(181);
    let out = sent(core.handle_timeouts(t1));
    assert!(out
        .iter()
        .any(|(d, m)| *d == bob && m.method().is_some_and(|m| m.as_str() == "CANCEL")));
    let out = sent(core.handle_message(t1, answer(&fwd, 487), bob));
    let (_, vm) = out
        .iter()
        .find(|(d, m)| *d == udp("192.0.2.60:5060") && m.is_request())
        .expect("voice mail after no answer");
    assert_eq!(vm.header_str("X-Diverted").map(|h| h.value), Some("408"));

    // The caller gives up: no voice mail, 487 upstream.
    let fwd = sent(core.handle_message(t0, invite_on("two", "bob", ""), udp(CALLER)))
        .remove(0)
        .1;
    sent(core.handle_message(t0, answer(&fwd, 180), bob));
    sent(core.handle_message(t0, cancel_of("two"), udp(CALLER)));
    let out = sent(core.handle_message(t0, answer(&fwd, 487), bob));
    assert!(
        out.iter().all(|(d, _)| *d != udp("192.0.2.60:5060")),
        "no voice mail: {out:?}"
    );
    assert!(out
        .iter()
        .any(|(d, m)| *d == udp(CALLER) && m.status() == Some(487)));
}

/// A failure route that would relay after a CANCEL (no `t_is_canceled()` check) starts no
/// new branch: the caller gets its 487.
#[test]
fn a_cancelled_transaction_starts_no_new_branch() {
    let core = with_script(&script(
        &NO_ANSWER
            .replace("if (t_is_canceled()) { exit; }", "")
            .replace("if (t_branch_timeout())", "if (1)"),
    ));
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let t0 = Instant::now();
    let bob = udp("192.0.2.20:5060");
    let fwd = sent(core.handle_message(t0, invite("bob", ""), udp(CALLER)))
        .remove(0)
        .1;
    sent(core.handle_message(t0, answer(&fwd, 180), bob));
    sent(core.handle_message(t0, cancel_of("call1"), udp(CALLER)));
    let out = sent(core.handle_message(t0, answer(&fwd, 487), bob));
    assert!(
        out.iter().all(|(d, _)| *d != udp("192.0.2.60:5060")),
        "{out:?}"
    );
    assert!(out
        .iter()
        .any(|(d, m)| *d == udp(CALLER) && m.status() == Some(487)));
}

/// `nat_uac_test(flags)` with Kamailio's flags, on requests from 192.0.2.10:5060.
#[test]
fn nat_uac_test_tells_a_sender_behind_nat() {
    let core = with_script(
        r#"
request_route {
    $var(r) = nat_uac_test($hdr(X-Flags));
    sl_send_reply(200, "r=" + $var(r));
}"#,
    );
    let test_from =
        |src: crate::Destination, n: usize, flags: i64, via: &str, contact: &str, sdp: &str| {
            let body = if sdp.is_empty() {
                String::new()
            } else {
                format!(
                "v=0\no=- 1 1 IN IP4 {sdp}\ns=-\nc=IN IP4 {sdp}\nt=0 0\nm=audio 4000 RTP/AVP 0\n"
            )
            };
            let ct = if body.is_empty() {
                ""
            } else {
                "Content-Type: application/sdp\n"
            };
            let m = msg(&format!(
            "MESSAGE sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP {via};branch=z9hG4bKnat{n}\n\
From: <sip:a@example.com>;tag=a\nTo: <sip:bob@example.com>\nCall-ID: nat{n}\nCSeq: 1 MESSAGE\n\
Contact: <sip:a@{contact}>\nX-Flags: {flags}\nMax-Forwards: 70\n{ct}Content-Length: {}\n\n{body}",
            body.replace('\n', "\r\n").len()
        ));
            let out = sent(core.handle_message(Instant::now(), m, src));
            out[0].1.reason().map(str::to_owned)
        };
    let test = |n, flags, via: &str, contact: &str, sdp: &str| {
        test_from(udp(CALLER), n, flags, via, contact, sdp)
    };
    let direct = ("192.0.2.10:5060", "192.0.2.10:5060", "192.0.2.10");
    for flags in [1, 2, 4, 8, 16, 64, 95] {
        assert_eq!(
            test(flags as usize, flags, direct.0, direct.1, direct.2).as_deref(),
            Some("r=-1"),
            "{flags}"
        );
    }
    let behind = ("10.0.0.5:5070", "10.0.0.5:5070", "10.0.0.5");
    for flags in [1, 2, 4, 8, 16, 64, 19] {
        assert_eq!(
            test(100 + flags as usize, flags, behind.0, behind.1, behind.2).as_deref(),
            Some("r=1"),
            "{flags}"
        );
    }
    // A public address mapped to another port: only the port tests see it.
    let mapped = ("192.0.2.10:5999", "192.0.2.10:5999", "192.0.2.10");
    assert_eq!(
        test(200, 1 | 2 | 4 | 8, mapped.0, mapped.1, mapped.2).as_deref(),
        Some("r=-1")
    );
    assert_eq!(
        test(201, 16, mapped.0, mapped.1, mapped.2).as_deref(),
        Some("r=1")
    );
    assert_eq!(
        test(202, 64, mapped.0, mapped.1, mapped.2).as_deref(),
        Some("r=1")
    );
    // Over TCP the source port is whatever the client's system picked: flag 16 sees no NAT.
    let tcp = crate::Destination::new(
        sip_message::Protocol::Tcp,
        "192.0.2.10:41234".parse().expect("addr"),
    );
    assert_eq!(
        test_from(tcp, 203, 16, direct.0, direct.1, direct.2).as_deref(),
        Some("r=-1")
    );
}

/// The default script fixes the Contact of a caller behind NAT: the callee gets the source
/// address, and our Record-Route key covers that, so the callee's BYE reaches the caller
/// through its NAT.
#[test]
fn the_default_script_fixes_a_nated_callers_contact() {
    let core = crate::tests::core();
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let nated = invite("bob", "").to_bytes();
    let text = String::from_utf8_lossy(&nated)
        .replace(
            "Via: SIP/2.0/UDP 192.0.2.10:5060",
            "Via: SIP/2.0/UDP 10.0.0.5:5060",
        )
        .replace(
            "<sip:caller@192.0.2.10:5060>",
            "<sip:caller@10.0.0.5:5060;ob>",
        );
    let m = sip_message::Message::parse(text.into_bytes()).expect("invite");
    let out = sent(core.handle_message(Instant::now(), m, udp(CALLER)));
    let fwd = &out[0].1;
    let contact = fwd
        .header(sip_message::HeaderName::Contact)
        .expect("Contact")
        .value;
    assert_eq!(contact, "<sip:caller@192.0.2.10:5060;ob>");
    let rr = fwd
        .header(sip_message::HeaderName::RecordRoute)
        .expect("RR")
        .value;
    // (A caller behind NAT: the default script relays the call's media.)
    let key = crate::tests::rk_callee_relayed("call-1", "c", "sip:caller@192.0.2.10:5060");
    assert!(rr.contains(&key), "{rr}");
    // A caller not behind NAT keeps its Contact as written.
    let out =
        sent(core.handle_message(Instant::now(), invite_on("direct", "bob", ""), udp(CALLER)));
    let contact = out[0]
        .1
        .header(sip_message::HeaderName::Contact)
        .expect("Contact")
        .value;
    assert_eq!(contact, "<sip:caller@192.0.2.10:5060>");
}
