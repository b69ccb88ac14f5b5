//! The table of calls: records, answers across forking, the longest duration, limits.

use crate::calls::{Calls, InDialog, Limits};
use crate::{Answer, CallKey, DialogState, Ending, Invite, Leg};

fn key(call: &str) -> CallKey {
    CallKey {
        call_id: call.into(),
        from_tag: "caller".into(),
    }
}

fn caller_leg() -> Leg {
    Leg {
        contact: "sip:alice@192.0.2.10".into(),
        route: String::new(),
        hop: "udp:192.0.2.10:5060".into(),
        cseq: 1,
    }
}

fn callee(contact: &str) -> Option<Answer> {
    let callee = Leg {
        contact: contact.into(),
        route: "<sip:edge.example.net;lr>".into(),
        hop: "udp:192.0.2.30:5060".into(),
        cseq: 0,
    };
    Some(Answer {
        callee,
        session_s: None,
    })
}

fn bye(c: &mut Calls, now_ms: u64, call_id: &str, from_tag: &str, to_tag: &str) {
    let sent = InDialog {
        call_id,
        from_tag,
        to_tag,
        cseq: 9,
        bye: true,
        refresh: false,
        session_s: None,
    };
    c.request(now_ms, sent);
    c.bye_answered(sent, 200);
}

fn calls(call: &str, at: u64) -> Calls {
    let mut c = Calls::new(Limits {
        max_duration_ms: Some(3_600_000),
        ..Limits::default()
    });
    assert!(c.invite(
        at,
        Invite {
            key: key(call),
            caller: "sip:alice@example.com".into(),
            dialled: "sip:bob@example.com".into(),
            target: "sip:bob@example.com".into(),
            caller_leg: caller_leg(),
            profiles: Vec::new(),
        }
    ));
    c
}

#[test]
fn an_answered_call_is_recorded_once_when_it_ends() {
    let mut c = calls("c1", 1_000);
    let k = key("c1");
    c.response(1_100, &k, Some("b"), 180, None);
    assert_eq!(c.state(&k, "b"), Some(DialogState::Early));
    c.response(5_000, &k, Some("b"), 200, callee("sip:bob@192.0.2.20"));
    c.response(5_300, &k, Some("b"), 200, callee("sip:bob@192.0.2.20"));
    assert_eq!(c.state(&k, "b"), Some(DialogState::Confirmed));
    let active = c.active();
    assert_eq!((active.len(), active[0].answered_ms), (1, Some(5_000)));
    // The callee hangs up (its From tag is the dialog's To tag); the BYE comes twice.
    bye(&mut c, 65_000, "c1", "b", "caller");
    bye(&mut c, 65_400, "c1", "b", "caller");
    let records = c.take_records();
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(c.active().is_empty());
    let r = &records[0];
    assert_eq!(
        (r.duration_ms(), r.ending, r.status),
        (60_000, Ending::CalleeHungUp, 200)
    );
    assert_eq!(r.reached.as_deref(), Some("sip:bob@192.0.2.20"));
    assert!(!r.missed());
    assert!(c.is_empty(), "forgotten once over");
}

#[test]
fn a_cancelled_call_is_a_missed_call_of_the_callee() {
    let mut c = calls("c2", 1_000);
    let k = key("c2");
    c.response(1_200, &k, Some("b"), 180, None);
    c.response(9_000, &k, Some("b"), 487, None);
    c.response(9_100, &k, Some("b"), 487, None);
    let records = c.take_records();
    assert_eq!(records.len(), 1);
    assert!(records[0].missed());
    assert_eq!(
        (records[0].status, records[0].ending),
        (487, Ending::NotAnswered)
    );
    assert_eq!(records[0].ended_ms, 9_000);
    assert!(c.is_empty());
}

/// Forked: two branches ring, the second answers; one record, of that branch, and the
/// first branch's early dialog ends.
#[test]
fn a_forked_call_answered_on_its_second_branch_gives_one_record() {
    let mut c = calls("c3", 0);
    let k = key("c3");
    c.response(100, &k, Some("b1"), 180, None);
    c.response(150, &k, Some("b2"), 183, None);
    c.response(2_000, &k, Some("b2"), 200, callee("sip:bob@desk"));
    assert_eq!(c.state(&k, "b1"), Some(DialogState::Terminated));
    // The caller hangs up.
    bye(&mut c, 12_000, "c3", "caller", "b2");
    let records = c.take_records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].reached.as_deref(), Some("sip:bob@desk"));
    assert_eq!(records[0].ending, Ending::CallerHungUp);
    assert_eq!(records[0].duration_ms(), 10_000);
}

#[test]
fn the_longest_duration_ends_a_call_from_the_server() {
    let mut c = calls("c4", 0);
    let k = key("c4");
    c.response(1_000, &k, Some("b"), 200, callee("sip:bob@desk"));
    // The caller's re-INVITE (CSeq 7) and the callee's (CSeq 3) went through.
    for (from_tag, to_tag, cseq) in [("caller", "b", 7), ("b", "caller", 3)] {
        let sent = InDialog {
            call_id: "c4",
            from_tag,
            to_tag,
            cseq,
            bye: false,
            refresh: false,
            session_s: None,
        };
        c.request(2_000, sent);
    }
    assert!(c.expire(3_600_999).is_empty());
    let byes = c.expire(3_601_000);
    assert_eq!(byes.len(), 2, "one to each side: {byes:?}");
    let (to_callee, to_caller) = (&byes[0], &byes[1]);
    assert_eq!(to_callee.leg.contact, "sip:bob@desk");
    assert_eq!(to_callee.leg.route, "<sip:edge.example.net;lr>");
    assert_eq!(
        to_callee.from,
        ("sip:alice@example.com".into(), "caller".into())
    );
    assert_eq!(to_callee.to, ("sip:bob@example.com".into(), "b".into()));
    assert_eq!(to_callee.cseq, 8, "past the caller's highest");
    assert_eq!(to_caller.leg.contact, "sip:alice@192.0.2.10");
    assert_eq!(to_caller.from, ("sip:bob@example.com".into(), "b".into()));
    assert_eq!(to_caller.cseq, 4, "past the callee's highest");
    let records = c.take_records();
    assert_eq!(records[0].ending, Ending::EndedByServer);
    assert_eq!(records[0].duration_ms(), 3_600_000);
    // Its BYEs coming back change nothing.
    bye(&mut c, 3_601_100, "c4", "caller", "b");
    assert!(c.take_records().is_empty());
}

/// Both phones of a ring-all group answer: each 200 is a dialog (RFC 3261 §13.2.2.4),
/// and each its record, whether it rang first or not.
#[test]
fn two_answers_of_a_forked_call_are_two_dialogs() {
    let mut c = calls("c5", 0);
    let k = key("c5");
    c.response(100, &k, Some("b1"), 180, None);
    c.response(100, &k, Some("b2"), 180, None);
    c.response(1_000, &k, Some("b1"), 200, callee("sip:b@one"));
    c.response(1_010, &k, Some("b2"), 200, callee("sip:b@two"));
    assert_eq!(c.state(&k, "b2"), Some(DialogState::Confirmed));
    bye(&mut c, 1_100, "c5", "caller", "b2");
    bye(&mut c, 9_000, "c5", "caller", "b1");
    let mut reached: Vec<_> = c.take_records().into_iter().map(|r| r.reached).collect();
    reached.sort();
    assert_eq!(
        reached,
        [Some("sip:b@one".into()), Some("sip:b@two".into())]
    );
}

/// A challenge or a redirect is no missed call: the caller's next INVITE is the call.
#[test]
fn a_challenge_or_redirect_is_no_missed_call() {
    for status in [302, 401, 407] {
        let mut c = calls("c6", 0);
        c.response(10, &key("c6"), Some("x"), status, None);
        assert!(c.take_records().is_empty(), "{status}");
        assert!(c.is_empty(), "{status}: forgotten");
    }
}

#[test]
fn the_table_is_bounded_and_lost_calls_are_dropped() {
    let mut c = Calls::new(Limits {
        max_calls: 1,
        max_duration_ms: None,
        max_setup_ms: 1_000,
        max_followed_ms: 5_000,
        save_after_ms: 0,
    });
    let invite = |call: &str| Invite {
        key: key(call),
        caller: "a".into(),
        dialled: "b".into(),
        target: "sip:bob@example.com".into(),
        caller_leg: caller_leg(),
        profiles: Vec::new(),
    };
    assert!(c.invite(0, invite("x")));
    assert!(!c.invite(0, invite("y")), "full");
    assert!(
        !c.invite(0, invite("x")),
        "the same call again: followed once"
    );
    c.expire(2_000);
    assert!(c.is_empty());
    assert_eq!(c.take_records()[0].status, 408);
    // Answered, and no BYE ever seen: closed as expired after the longest time.
    assert!(c.invite(10_000, invite("z")));
    c.response(10_500, &key("z"), Some("b"), 200, None);
    assert!(c.expire(15_400).is_empty());
    assert!(c.take_records().is_empty());
    assert!(
        c.expire(15_500).is_empty(),
        "no BYE to send: the call may go on"
    );
    let records = c.take_records();
    assert_eq!((records.len(), records[0].ending), (1, Ending::Expired));
    assert!(c.is_empty());
}

/// A BYE the other side refuses hangs nothing up: the call goes on, and its record waits
/// for a BYE that is taken; one whose answer never comes counts after 32 s, from its time.
#[test]
fn a_refused_bye_ends_nothing() {
    let mut c = calls("c7", 0);
    let k = key("c7");
    c.response(1_000, &k, Some("b"), 200, callee("sip:bob@desk"));
    let bye = |cseq| InDialog {
        call_id: "c7",
        from_tag: "caller",
        to_tag: "b",
        cseq,
        bye: true,
        refresh: false,
        session_s: None,
    };
    assert!(c.request(5_000, bye(2)));
    c.bye_answered(bye(2), 500);
    assert!(c.take_records().is_empty());
    assert_eq!(c.active().len(), 1, "still talking");
    assert!(c.request(9_000, bye(3)));
    c.expire(9_000 + 31_999);
    assert!(c.take_records().is_empty(), "its answer may still come");
    c.expire(9_000 + 32_000);
    let r = &c.take_records()[0];
    assert_eq!((r.ended_ms, r.ending), (9_000, Ending::CallerHungUp));
    assert!(c.is_empty());
}

#[test]
fn progress_is_noted_once_per_phase_in_order() {
    use crate::Phase;
    let invite = |c: &mut Calls, call: &str| {
        let fresh = calls(call, 0);
        let i = fresh.calls.values().next().unwrap().invite.clone();
        c.invite(0, i);
    };
    let mut c = Calls::new(Limits::default());
    invite(&mut c, "c1");
    assert!(!c.has_progress(), "not noted unless asked");
    c.note_progress();
    invite(&mut c, "c2");
    let k2 = key("c2");
    c.response(1, &k2, Some("t1"), 180, None);
    c.response(2, &k2, Some("t1"), 183, None);
    c.response(3, &k2, Some("t1"), 200, callee("sip:bob@192.0.2.30"));
    c.response(4, &k2, Some("t1"), 200, callee("sip:bob@192.0.2.30"));
    bye(&mut c, 5, "c2", "caller", "t1");
    let seen: Vec<(Phase, Option<String>)> = c
        .take_progress()
        .into_iter()
        .map(|p| (p.phase, p.callee_tag))
        .collect();
    assert_eq!(
        seen,
        [
            (Phase::Trying, None),
            (Phase::Early, Some("t1".into())),
            (Phase::Confirmed, Some("t1".into())),
            (Phase::Terminated, Some("t1".into())),
        ]
    );
    // A call nobody answered ends from early.
    invite(&mut c, "c3");
    let k3 = key("c3");
    c.response(11, &k3, Some("t9"), 180, None);
    c.response(12, &k3, Some("t9"), 486, None);
    let phases: Vec<Phase> = c.take_progress().into_iter().map(|p| p.phase).collect();
    assert_eq!(phases, [Phase::Trying, Phase::Early, Phase::Terminated]);
    assert!(!c.has_progress());
}
