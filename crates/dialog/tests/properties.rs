//! Whatever the proxy relays, in any order and repeated: at most one record per answered
//! dialog and one per unanswered call, never both for one call, and times that add up.

use dialog::{Answer, CallKey, Calls, Change, InDialog, Invite, Leg, Limits};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Event {
    Invite(u8),
    Response {
        call: u8,
        tag: u8,
        status: u16,
    },
    /// A BYE, and the final status of its answer (none: never comes).
    Bye {
        call: u8,
        tag: u8,
        by_caller: bool,
        answer: Option<u16>,
    },
    Expire,
}

fn event() -> impl Strategy<Value = Event> {
    let status = prop::sample::select(vec![180u16, 183, 200, 486, 487, 503]);
    let answer = prop::option::of(prop::sample::select(vec![200u16, 408, 481, 500]));
    prop_oneof![
        (0u8..2).prop_map(Event::Invite),
        (0u8..2, 0u8..2, status).prop_map(|(call, tag, status)| Event::Response {
            call,
            tag,
            status
        }),
        (0u8..2, 0u8..2, any::<bool>(), answer).prop_map(|(call, tag, by_caller, answer)| {
            Event::Bye {
                call,
                tag,
                by_caller,
                answer,
            }
        }),
        Just(Event::Expire),
    ]
}

fn key(call: u8) -> CallKey {
    CallKey {
        call_id: format!("call-{call}"),
        from_tag: "caller".into(),
    }
}

proptest! {
    #[test]
    fn records_are_never_duplicated_and_add_up(events in prop::collection::vec(event(), 0..60)) {
        let mut calls = Calls::new(Limits {
            max_calls: 10,
            max_duration_ms: Some(5_000),
            max_setup_ms: 20_000,
            max_followed_ms: 30_000,
            save_after_ms: 2_000,
        });
        let mut records = Vec::new();
        let mut changes = Vec::new();
        for (i, e) in events.iter().enumerate() {
            let now = 1_000 * i as u64;
            match e {
                Event::Invite(call) => {
                    let invite = Invite {
                        key: key(*call),
                        caller: "sip:a@h".into(),
                        dialled: "sip:b@h".into(),
                        target: "sip:bob@example.com".into(),
                        caller_leg: Leg::default(),
                        profiles: Vec::new(),
                    };
                    calls.invite(now, invite);
                }
                Event::Response { call, tag, status } => {
                    let tag = format!("t{tag}");
                    let callee = Leg {
                        contact: "sip:b@x".into(),
                        ..Leg::default()
                    };
                    calls.response(now, &key(*call), Some(&tag), *status, Some(Answer { callee, session_s: Some(20) }));
                }
                Event::Bye { call, tag, by_caller, answer } => {
                    let (call_id, tag) = (format!("call-{call}"), format!("t{tag}"));
                    let (from_tag, to_tag) = match by_caller {
                        true => ("caller", tag.as_str()),
                        false => (tag.as_str(), "caller"),
                    };
                    let sent = InDialog {
                        call_id: &call_id,
                        from_tag,
                        to_tag,
                        cseq: 2,
                        bye: true,
                        refresh: false,
                        session_s: None,
                    };
                    calls.request(now, sent);
                    if let Some(status) = answer {
                        calls.bye_answered(sent, *status);
                    }
                }
                Event::Expire => {
                    calls.expire(now);
                }
            }
            records.extend(calls.take_records());
            changes.extend(calls.take_changes(now));
        }
        // Once every answered dialog is old enough to be saved, the store holds exactly
        // the dialogs still answered and not ended.
        changes.extend(calls.take_changes(u64::MAX));
        let mut stored: Vec<(CallKey, String)> = Vec::new();
        for c in &changes {
            match c {
                Change::Added(s) | Change::Saved(s) => {
                    let id = (s.key.clone(), s.to_tag.clone());
                    if !stored.contains(&id) {
                        stored.push(id);
                    }
                }
                Change::Ended { key, to_tag } => {
                    stored.retain(|(k, t)| (k, t) != (key, to_tag));
                }
            }
        }
        let talking = calls.active().iter().filter(|a| a.answered_ms.is_some()).count();
        prop_assert!(stored.len() >= talking, "{stored:?}");
        for (key, tag) in &stored {
            prop_assert_eq!(calls.state(key, tag), Some(dialog::DialogState::Confirmed));
        }
        for r in &records {
            prop_assert!(r.started_ms <= r.answered_ms.unwrap_or(r.started_ms));
            prop_assert!(r.answered_ms.unwrap_or(r.started_ms) <= r.ended_ms);
        }
        // A call may be tracked again after it is over (a new INVITE of the same Call-ID
        // and tag is a new call here), so records are checked per tracking: between two
        // records of one call there is an INVITE.
        let mut seen: Vec<(String, Option<u64>, u64)> = Vec::new();
        for r in &records {
            let id = (r.call_id.clone(), r.answered_ms, r.started_ms);
            prop_assert!(!seen.contains(&id), "a record twice: {r:?}");
            seen.push(id);
        }
        // One call (one tracking) is either answered or missed, never both.
        for r in records.iter().filter(|r| r.missed()) {
            let answered_too = records
                .iter()
                .any(|o| !o.missed() && o.call_id == r.call_id && o.started_ms == r.started_ms);
            prop_assert!(!answered_too, "missed and answered: {r:?}");
        }
    }
}
