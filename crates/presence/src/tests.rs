//! The notifier's behaviour, request by request.

use crate::*;

const PIDF_OPEN: &[u8] = br#"<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@x.org"><tuple id="t"><status><basic>open</basic></status><note>lunch</note></tuple></presence>"#;

fn notifier(interval_ms: u64) -> Notifier {
    Notifier::new(
        Config {
            presence_interval_ms: interval_ms,
            ..Config::default()
        },
        7,
    )
}

fn key(call_id: &str, package: Package) -> SubKey {
    SubKey {
        call_id: call_id.into(),
        from_tag: "wt".into(),
        package,
        id: String::new(),
    }
}

fn request(call_id: &str, watcher: &str, presentity: &str, package: Package) -> SubscribeRequest {
    SubscribeRequest {
        key: key(call_id, package),
        to_tag: None,
        our_tag: "ours".into(),
        presentity: presentity.into(),
        presentity_uri: format!("sip:{presentity}"),
        watcher: watcher.into(),
        watcher_uri: format!("sip:{watcher}"),
        peer: Peer {
            contact: "sip:w@192.0.2.1:5060".into(),
            route: String::new(),
            hop: "udp:192.0.2.1:5060".into(),
        },
        cseq: 1,
        expires_s: Some(600),
        registered: true,
    }
}

fn publish<'a>(
    presentity: &'a str,
    if_match: Option<&'a str>,
    body: Option<&'a [u8]>,
) -> PublishRequest<'a> {
    PublishRequest {
        presentity,
        presentity_uri: "sip:a@x.org",
        package: Package::Presence,
        if_match,
        expires_s: Some(600),
        body: body.map(|b| ("application/pidf+xml", b)),
        registered: true,
    }
}

fn body(n: &Notify) -> &str {
    n.body.as_ref().map_or("", |(_, b)| b.as_str())
}

#[test]
fn a_subscription_gets_the_state_and_its_refreshes_too() {
    let mut n = notifier(0);
    let mut out = Vec::new();
    let expires = n.subscribe(
        1000,
        request("c1", "b@x.org", "a@x.org", Package::Presence),
        &mut out,
    );
    assert_eq!(expires, Ok(600));
    assert_eq!(out.len(), 1);
    let first = out.pop().unwrap();
    assert_eq!(first.state, "active;expires=600");
    assert_eq!(first.event, "presence");
    assert_eq!(first.cseq, 1);
    assert_eq!(first.from, ("sip:a@x.org".into(), "ours".into()));
    assert_eq!(first.to, ("sip:b@x.org".into(), "wt".into()));
    assert!(body(&first).contains("<basic>open</basic>"));
    assert_eq!(first.body.as_ref().unwrap().0, "application/pidf+xml");
    n.answered(1100, &first.key, Some(200), &mut out);
    assert!(out.is_empty());

    let mut refresh = request("c1", "b@x.org", "a@x.org", Package::Presence);
    refresh.to_tag = Some("ours".into());
    refresh.cseq = 2;
    refresh.expires_s = Some(300);
    assert_eq!(n.subscribe(2000, refresh.clone(), &mut out), Ok(300));
    assert_eq!(out[0].cseq, 2);
    assert_eq!(out[0].state, "active;expires=300");
    n.answered(2100, &out.pop().unwrap().key, Some(200), &mut out);

    // An old CSeq, a wrong tag, an unknown dialog.
    assert_eq!(
        n.subscribe(2200, refresh.clone(), &mut out)
            .unwrap_err()
            .code,
        500
    );
    refresh.cseq = 3;
    refresh.to_tag = Some("other".into());
    assert_eq!(
        n.subscribe(2200, refresh.clone(), &mut out)
            .unwrap_err()
            .code,
        481
    );
    refresh.key.call_id = "nope".into();
    assert_eq!(n.subscribe(2200, refresh, &mut out).unwrap_err().code, 481);
    assert!(out.is_empty());
}

#[test]
fn unsubscribing_sends_the_last_state_and_forgets() {
    let mut n = notifier(0);
    let mut out = Vec::new();
    n.subscribe(
        0,
        request("c1", "b@x.org", "a@x.org", Package::Presence),
        &mut out,
    )
    .unwrap();
    let k = out.pop().unwrap().key;
    n.answered(1, &k, Some(200), &mut out);
    let mut end = request("c1", "b@x.org", "a@x.org", Package::Presence);
    end.to_tag = Some("ours".into());
    end.cseq = 2;
    end.expires_s = Some(0);
    assert_eq!(n.subscribe(10, end, &mut out), Ok(0));
    let last = out.pop().unwrap();
    assert_eq!(last.state, "terminated;reason=timeout");
    assert!(body(&last).contains("<basic>open</basic>"));
    assert_eq!(n.counts().0, 1);
    n.answered(20, &k, Some(200), &mut out);
    assert_eq!(n.counts().0, 0);
    assert!(!n.watched("a@x.org"));
}

#[test]
fn too_brief_and_not_ones_own() {
    let mut n = notifier(0);
    let mut out = Vec::new();
    let mut r = request("c1", "b@x.org", "a@x.org", Package::Presence);
    r.expires_s = Some(10);
    let refused = n.subscribe(0, r, &mut out).unwrap_err();
    assert_eq!((refused.code, refused.min_expires), (423, Some(60)));
    for package in [Package::Winfo, Package::MessageSummary] {
        let r = request("c2", "b@x.org", "a@x.org", package);
        assert_eq!(n.subscribe(0, r, &mut out).unwrap_err().code, 403);
    }
    // A longer one is cut to the longest.
    let mut r = request("c3", "b@x.org", "a@x.org", Package::Presence);
    r.expires_s = Some(86400);
    assert_eq!(n.subscribe(0, r, &mut out), Ok(3600));
}

#[test]
fn one_notify_in_flight_and_the_last_carries_the_latest() {
    let mut n = notifier(0);
    let mut out = Vec::new();
    n.subscribe(
        0,
        request("c1", "b@x.org", "a@x.org", Package::Presence),
        &mut out,
    )
    .unwrap();
    let k = out[0].key.clone();
    // Changes while the first NOTIFY waits for its answer send nothing yet.
    n.set_registered(10, "a@x.org", false, &mut out);
    n.set_registered(20, "a@x.org", true, &mut out);
    n.set_registered(30, "a@x.org", false, &mut out);
    assert_eq!(out.len(), 1);
    n.answered(40, &k, Some(200), &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].cseq, 2);
    assert!(body(&out[1]).contains("<basic>closed</basic>"));
    n.answered(50, &k, Some(200), &mut out);
    assert_eq!(out.len(), 2);
}

#[test]
fn presence_is_notified_at_most_once_per_interval() {
    let mut n = notifier(5000);
    let mut out = Vec::new();
    n.subscribe(
        1000,
        request("c1", "b@x.org", "a@x.org", Package::Presence),
        &mut out,
    )
    .unwrap();
    let k = out.pop().unwrap().key;
    n.answered(1001, &k, Some(200), &mut out);
    n.set_registered(2000, "a@x.org", false, &mut out);
    assert_eq!(out.len(), 1, "the first change goes at once");
    n.answered(2001, &k, Some(200), &mut out);
    n.set_registered(3000, "a@x.org", true, &mut out);
    n.set_registered(4000, "a@x.org", false, &mut out);
    n.tick(6000, &mut out);
    assert_eq!(out.len(), 1, "held back");
    n.tick(7000, &mut out);
    assert_eq!(out.len(), 2);
    assert!(body(&out[1]).contains("closed"));
}

#[test]
fn a_watcher_that_refuses_or_vanishes_is_dropped() {
    for answer in [Some(481), Some(408), None, Some(603)] {
        let mut n = notifier(0);
        let mut out = Vec::new();
        n.subscribe(
            0,
            request("c1", "b@x.org", "a@x.org", Package::Presence),
            &mut out,
        )
        .unwrap();
        n.answered(1, &out.pop().unwrap().key, answer, &mut out);
        assert_eq!(n.counts().0, 0, "{answer:?}");
    }
    let mut n = notifier(0);
    let mut out = Vec::new();
    n.subscribe(
        0,
        request("c1", "b@x.org", "a@x.org", Package::Presence),
        &mut out,
    )
    .unwrap();
    n.answered(1, &out.pop().unwrap().key, Some(500), &mut out);
    assert_eq!(n.counts().0, 1);
}

#[test]
fn strangers_wait_blocked_watchers_get_nothing_and_the_owner_sees_its_watchers() {
    let mut n = notifier(0);
    let mut out = Vec::new();
    n.subscribe(
        0,
        request("w", "a@x.org", "a@x.org", Package::Winfo),
        &mut out,
    )
    .unwrap();
    let winfo = out.pop().unwrap();
    assert!(body(&winfo).contains("<watcher-list resource=\"sip:a@x.org\" package=\"presence\">"));
    n.answered(1, &winfo.key, Some(200), &mut out);

    // Another domain: pending, with no state; the owner learns of it.
    n.subscribe(
        10,
        request("s", "c@y.org", "a@x.org", Package::Presence),
        &mut out,
    )
    .unwrap();
    assert_eq!(out[0].state, "pending;expires=600");
    assert!(out[0].body.is_none());
    assert!(body(&out[1]).contains("status=\"pending\">sip:c@y.org</watcher>"));
    let stranger = out[0].key.clone();
    n.answered(11, &stranger, Some(200), &mut out);
    n.answered(11, &winfo.key, Some(200), &mut out);
    out.clear();

    // Allowed: it gets the state.
    n.set_rule(20, "a@x.org", "c@y.org", Some(Rule::Allow), &mut out);
    assert_eq!(out[0].state, "active;expires=600");
    assert!(body(&out[0]).contains("open"));
    assert!(body(&out[1]).contains("status=\"active\">sip:c@y.org</watcher>"));
    n.answered(21, &stranger, Some(200), &mut out);
    n.answered(21, &winfo.key, Some(200), &mut out);
    out.clear();

    // Blocked: its subscription ends, without state, and new ones too.
    n.set_rule(30, "a@x.org", "c@y.org", Some(Rule::Block), &mut out);
    assert_eq!(out[0].state, "terminated;reason=rejected");
    assert!(out[0].body.is_none());
    n.answered(31, &stranger, Some(200), &mut out);
    out.clear();
    n.subscribe(
        40,
        request("s2", "c@y.org", "a@x.org", Package::Presence),
        &mut out,
    )
    .unwrap();
    assert_eq!(out[0].state, "terminated;reason=rejected");
    assert!(out[0].body.is_none());
}

#[test]
fn subscriptions_end_in_time() {
    let mut n = notifier(0);
    let mut out = Vec::new();
    n.subscribe(
        0,
        request("c1", "b@x.org", "a@x.org", Package::Presence),
        &mut out,
    )
    .unwrap();
    let k = out.pop().unwrap().key;
    n.answered(1, &k, Some(200), &mut out);
    n.tick(599_000, &mut out);
    assert!(out.is_empty());
    n.tick(600_000, &mut out);
    assert_eq!(out[0].state, "terminated;reason=timeout");
    n.answered(600_001, &k, Some(200), &mut out);
    assert_eq!(n.counts().0, 0);
}

#[test]
fn publications_are_made_refreshed_changed_and_removed() {
    let mut n = notifier(0);
    let mut out = Vec::new();
    n.subscribe(
        0,
        request("c1", "b@x.org", "a@x.org", Package::Presence),
        &mut out,
    )
    .unwrap();
    let k = out.pop().unwrap().key;
    n.answered(1, &k, Some(200), &mut out);

    let p = n
        .publish(10, publish("a@x.org", None, Some(PIDF_OPEN)), &mut out)
        .unwrap();
    assert_eq!(p.expires_s, 600);
    assert!(body(&out[0]).contains("<note>lunch</note>"));
    n.answered(11, &k, Some(200), &mut out);
    out.clear();
    // A refresh (no body) changes nothing the watchers see, but the tag.
    let q = n
        .publish(20, publish("a@x.org", Some(&p.etag), None), &mut out)
        .unwrap();
    assert_ne!(q.etag, p.etag);
    assert!(out.is_empty());
    assert_eq!(
        n.publish(30, publish("a@x.org", Some(&p.etag), None), &mut out)
            .unwrap_err()
            .code,
        412
    );
    // A change.
    let closed = PIDF_OPEN.to_vec();
    let closed = String::from_utf8(closed).unwrap().replace("lunch", "away");
    let r = n
        .publish(
            40,
            publish("a@x.org", Some(&q.etag), Some(closed.as_bytes())),
            &mut out,
        )
        .unwrap();
    assert!(body(&out[0]).contains("<note>away</note>"));
    n.answered(41, &k, Some(200), &mut out);
    out.clear();
    // Removed: the server's own state again.
    let s = n.publish(
        50,
        PublishRequest {
            expires_s: Some(0),
            ..publish("a@x.org", Some(&r.etag), None)
        },
        &mut out,
    );
    assert_eq!(s.unwrap().expires_s, 0);
    assert!(!body(&out[0]).contains("away"));
    assert_eq!(n.counts().1, 0);
}

#[test]
fn bad_publications_are_refused() {
    let mut n = notifier(0);
    let mut out = Vec::new();
    let code = |n: &mut Notifier, r: PublishRequest<'_>| {
        n.publish(0, r, &mut Vec::new()).unwrap_err().code
    };
    assert_eq!(code(&mut n, publish("a@x.org", None, None)), 400);
    assert_eq!(
        code(&mut n, publish("a@x.org", None, Some(b"<presence/>"))),
        400
    );
    let wrong_type = PublishRequest {
        body: Some(("text/plain", PIDF_OPEN)),
        ..publish("a@x.org", None, None)
    };
    assert_eq!(code(&mut n, wrong_type), 415);
    assert_eq!(
        code(
            &mut n,
            publish(
                "a@x.org",
                None,
                Some(
                    b"<presence xmlns=\"urn:ietf:params:xml:ns:pidf\"><note>a\0b</note></presence>"
                )
            )
        ),
        400
    );
    let big = vec![b' '; 9000];
    assert_eq!(code(&mut n, publish("a@x.org", None, Some(&big))), 413);
    let dialog = PublishRequest {
        package: Package::Dialog,
        ..publish("a@x.org", None, Some(PIDF_OPEN))
    };
    assert_eq!(code(&mut n, dialog), 489);
    let brief = PublishRequest {
        expires_s: Some(5),
        ..publish("a@x.org", None, Some(PIDF_OPEN))
    };
    assert_eq!(code(&mut n, brief), 423);
    assert!(n
        .publish(0, publish("a@x.org", None, Some(PIDF_OPEN)), &mut out)
        .is_ok());
}

#[test]
fn a_presentity_keeps_its_newest_devices_and_publications_expire() {
    let mut n = notifier(0);
    let mut out = Vec::new();
    for i in 0..10 {
        n.publish(i, publish("a@x.org", None, Some(PIDF_OPEN)), &mut out)
            .unwrap();
    }
    assert_eq!(n.counts().1, 8);
    n.tick(600_009, &mut out);
    assert_eq!(n.counts().1, 0);
    assert!(!n.watched("a@x.org"));
}

#[test]
fn voicemail_summaries_go_to_their_owner() {
    let mut n = notifier(0);
    let mut out = Vec::new();
    n.subscribe(
        0,
        request("m", "a@x.org", "a@x.org", Package::MessageSummary),
        &mut out,
    )
    .unwrap();
    assert_eq!(body(&out[0]), "Messages-Waiting: no\r\n");
    assert_eq!(
        out[0].body.as_ref().unwrap().0,
        "application/simple-message-summary"
    );
    let k = out.pop().unwrap().key;
    n.answered(1, &k, Some(200), &mut out);
    let summary = b"Messages-Waiting: yes\r\nVoice-Message: 2/8 (0/2)\r\n";
    let r = PublishRequest {
        package: Package::MessageSummary,
        body: Some(("application/simple-message-summary", summary)),
        ..publish("a@x.org", None, None)
    };
    n.publish(10, r, &mut out).unwrap();
    assert_eq!(body(&out[0]).as_bytes(), summary);
}

#[test]
fn busy_lamps_see_calls_in_order_and_presence_sees_the_phone() {
    let mut n = notifier(0);
    let mut out = Vec::new();
    n.subscribe(
        0,
        request("d", "b@x.org", "a@x.org", Package::Dialog),
        &mut out,
    )
    .unwrap();
    n.subscribe(
        0,
        request("p", "b@x.org", "a@x.org", Package::Presence),
        &mut out,
    )
    .unwrap();
    assert!(body(&out[0]).contains("state=\"full\""));
    assert!(!body(&out[0]).contains("<dialog "));
    for o in std::mem::take(&mut out) {
        n.answered(1, &o.key, Some(200), &mut out);
    }
    let view = |phase| CallView {
        call_id: "call".into(),
        local_tag: Some("t".into()),
        remote_tag: None,
        initiator: false,
        remote: "sip:c@x.org".into(),
        phase,
    };
    let mut seen = Vec::new();
    for phase in [
        Phase::Early,
        Phase::Confirmed,
        Phase::Early,
        Phase::Terminated,
        Phase::Confirmed,
    ] {
        n.call(10, "a@x.org", view(phase), &mut out);
        for o in std::mem::take(&mut out) {
            seen.push((o.key.package, body(&o).to_owned()));
            n.answered(11, &o.key, Some(200), &mut out);
        }
    }
    let dialog: Vec<&str> = seen
        .iter()
        .filter(|(p, _)| *p == Package::Dialog)
        .map(|(_, b)| {
            ["early", "confirmed", "terminated"]
                .into_iter()
                .find(|s| b.contains(&format!("<state>{s}</state>")))
                .unwrap()
        })
        .collect();
    assert_eq!(dialog, ["early", "confirmed", "terminated"]);
    let presence: Vec<bool> = seen
        .iter()
        .filter(|(p, _)| *p == Package::Presence)
        .map(|(_, b)| b.contains("<rpid:on-the-phone/>"))
        .collect();
    assert_eq!(presence, [true, false]);
    // An unwatched user's calls are not kept.
    n.call(20, "z@x.org", view(Phase::Early), &mut out);
    assert!(!n.watched("z@x.org"));
}

#[test]
fn what_the_store_learns_brings_it_all_back() {
    let mut n = notifier(0);
    let mut out = Vec::new();
    n.subscribe(
        0,
        request("c1", "b@x.org", "a@x.org", Package::Presence),
        &mut out,
    )
    .unwrap();
    let p = n
        .publish(10, publish("a@x.org", None, Some(PIDF_OPEN)), &mut out)
        .unwrap();
    let changes = n.take_changes();
    let mut back = notifier(0);
    for change in changes {
        match change {
            Change::Subscription(s) => assert!(back.restore_subscription(*s, true)),
            Change::Publication(p) => assert!(back.restore_publication(*p, true)),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(back.counts(), (1, 1));
    // The store learns the CSeq the restored subscription goes on from (so that a second
    // restart skips past it too); the publication it has already.
    let learnt = back.take_changes();
    assert!(
        matches!(&learnt[..], [Change::Subscription(s)] if s.cseq >= 512),
        "{learnt:?}"
    );
    // The next NOTIFY's CSeq is past any sent before the restart.
    out.clear();
    back.set_registered(20, "a@x.org", false, &mut out);
    let k = out.pop().unwrap().key;
    back.answered(25, &k, Some(200), &mut out);
    back.set_registered(30, "a@x.org", true, &mut out);
    assert!(out[0].cseq > 500, "{out:?}");
    assert!(body(&out[0]).contains("lunch"));
    // Its publication is refreshed under the tag it had.
    let mut o = Vec::new();
    assert!(back
        .publish(40, publish("a@x.org", Some(&p.etag), None), &mut o)
        .is_ok());
}

#[test]
fn limits_hold() {
    let mut n = Notifier::new(
        Config {
            max_subscriptions: 3,
            max_per_watcher: 2,
            max_per_presentity: 2,
            ..Config::default()
        },
        1,
    );
    let mut out = Vec::new();
    assert!(n
        .subscribe(
            0,
            request("1", "b@x.org", "a@x.org", Package::Presence),
            &mut out
        )
        .is_ok());
    assert!(n
        .subscribe(
            0,
            request("2", "b@x.org", "c@x.org", Package::Presence),
            &mut out
        )
        .is_ok());
    assert_eq!(
        n.subscribe(
            0,
            request("3", "b@x.org", "d@x.org", Package::Presence),
            &mut out
        )
        .unwrap_err()
        .code,
        503
    );
    assert!(n
        .subscribe(
            0,
            request("4", "e@x.org", "a@x.org", Package::Presence),
            &mut out
        )
        .is_ok());
    assert_eq!(
        n.subscribe(
            0,
            request("5", "f@x.org", "a@x.org", Package::Presence),
            &mut out
        )
        .unwrap_err()
        .code,
        503
    );
    assert_eq!(
        n.subscribe(
            0,
            request("6", "f@x.org", "g@x.org", Package::Presence),
            &mut out
        )
        .unwrap_err()
        .code,
        503
    );
}

#[test]
fn an_end_while_a_notify_is_in_flight_still_goes_out() {
    let mut n = notifier(0);
    let mut out = Vec::new();
    n.subscribe(
        0,
        request("c1", "b@x.org", "a@x.org", Package::Presence),
        &mut out,
    )
    .unwrap();
    let k = out.pop().unwrap().key;
    let mut end = request("c1", "b@x.org", "a@x.org", Package::Presence);
    end.to_tag = Some("ours".into());
    end.cseq = 2;
    end.expires_s = Some(0);
    n.subscribe(1, end, &mut out).unwrap();
    assert!(out.is_empty(), "the first NOTIFY is still in flight");
    n.answered(2, &k, Some(200), &mut out);
    assert_eq!(out[0].state, "terminated;reason=timeout");
    assert_eq!(n.counts().0, 1, "kept until that NOTIFY is answered");
    n.answered(3, &k, Some(200), &mut out);
    assert_eq!(n.counts().0, 0);
}

#[test]
fn a_refresh_keeps_the_route_set() {
    let mut n = notifier(0);
    let mut out = Vec::new();
    let mut first = request("c1", "b@x.org", "a@x.org", Package::Presence);
    first.peer.route = "<sip:edge.x.org;lr>".into();
    n.subscribe(0, first, &mut out).unwrap();
    let k = out.pop().unwrap().key;
    n.answered(1, &k, Some(200), &mut out);
    let mut refresh = request("c1", "b@x.org", "a@x.org", Package::Presence);
    refresh.to_tag = Some("ours".into());
    refresh.cseq = 2;
    refresh.peer.contact = "sip:w@192.0.2.7:5060".into();
    n.subscribe(2, refresh, &mut out).unwrap();
    assert_eq!(out[0].peer.route, "<sip:edge.x.org;lr>");
    assert_eq!(out[0].peer.contact, "sip:w@192.0.2.7:5060");
}

#[test]
fn strangers_waiting_are_few_and_long_identifiers_are_refused() {
    let mut n = notifier(0);
    let mut out = Vec::new();
    for i in 0..16 {
        let r = request(
            &format!("s{i}"),
            &format!("s{i}@y.org"),
            "a@x.org",
            Package::Presence,
        );
        n.subscribe(0, r, &mut out).unwrap();
    }
    let r = request("s16", "s16@y.org", "a@x.org", Package::Presence);
    assert_eq!(n.subscribe(0, r, &mut out).unwrap_err().code, 503);
    // The presentity's own domain still gets in.
    let r = request("d", "d@x.org", "a@x.org", Package::Presence);
    assert!(n.subscribe(0, r, &mut out).is_ok());
    let mut r = request("long", "d@x.org", "a@x.org", Package::Presence);
    r.key.call_id = "c".repeat(300);
    assert_eq!(n.subscribe(0, r, &mut out).unwrap_err().code, 400);
}

#[test]
fn a_restart_applies_the_rules_as_they_are() {
    let mut n = notifier(0);
    let mut out = Vec::new();
    n.subscribe(
        0,
        request("c1", "e@y.org", "a@x.org", Package::Presence),
        &mut out,
    )
    .unwrap();
    n.set_rule(1, "a@x.org", "e@y.org", Some(Rule::Allow), &mut out);
    let saved: Vec<Subscription> = n.subscriptions();
    assert_eq!(saved[0].status, Status::Active);
    // Blocked while the server was down.
    let mut back = notifier(0);
    back.set_rule(2, "a@x.org", "e@y.org", Some(Rule::Block), &mut out);
    assert!(!back.restore_subscription(saved[0].clone(), true));
    assert_eq!(
        back.take_changes(),
        [Change::SubscriptionGone(saved[0].key.clone())]
    );
}

#[test]
fn document_versions_are_the_notify_cseqs() {
    let mut n = notifier(0);
    let mut out = Vec::new();
    n.subscribe(
        0,
        request("d", "b@x.org", "a@x.org", Package::Dialog),
        &mut out,
    )
    .unwrap();
    let first = out.pop().unwrap();
    assert!(body(&first).contains(&format!("version=\"{}\"", first.cseq)));
}
