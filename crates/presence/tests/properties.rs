//! For any interleaving of publications, registrations, calls, subscription refreshes,
//! answers and time, once every NOTIFY is answered the last one each watcher got carries
//! the presentity's latest state: what a new watcher would get.

use presence::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Publish(u8),
    Unpublish,
    Registered(bool),
    Call(u8, u8),
    Refresh(usize),
    Answer(usize, u16),
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..4).prop_map(Op::Publish),
        Just(Op::Unpublish),
        any::<bool>().prop_map(Op::Registered),
        (0u8..3, 0u8..4).prop_map(|(c, p)| Op::Call(c, p)),
        (0usize..4).prop_map(Op::Refresh),
        (0usize..8, prop_oneof![Just(200u16), Just(200), Just(500)])
            .prop_map(|(i, s)| Op::Answer(i, s)),
        (0u64..7000).prop_map(Op::Wait),
    ]
}

const PHASES: [Phase; 4] = [
    Phase::Trying,
    Phase::Early,
    Phase::Confirmed,
    Phase::Terminated,
];

fn doc(note: u8) -> Vec<u8> {
    format!(
        r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@x.org"><tuple id="t"><status><basic>open</basic></status><note>n{note}</note></tuple></presence>"#
    )
    .into_bytes()
}

fn subscribe(call_id: &str, package: Package, registered: bool) -> SubscribeRequest {
    SubscribeRequest {
        key: SubKey {
            call_id: call_id.into(),
            from_tag: "w".into(),
            package,
            id: String::new(),
        },
        to_tag: None,
        our_tag: "s".into(),
        presentity: "a@x.org".into(),
        presentity_uri: "sip:a@x.org".into(),
        watcher: "b@x.org".into(),
        watcher_uri: "sip:b@x.org".into(),
        peer: Peer::default(),
        cseq: 1,
        expires_s: Some(3600),
        registered,
    }
}

/// The body without its version (dialog information counts per subscription) and its
/// ended calls (listed a while, then dropped: either way the lamp is off).
fn state_of(n: &Notify) -> String {
    let body: String = n
        .body
        .as_ref()
        .map_or("", |(_, b)| b.as_str())
        .lines()
        .filter(|l| !l.contains("<state>terminated</state>"))
        .map(|l| format!("{l}\n"))
        .collect();
    let from = body.find("<dialog-info").unwrap_or(body.len());
    match body[from..].find(" version=\"").map(|i| i + from) {
        Some(i) => {
            let end = body[i + 10..].find('"').unwrap() + i + 11;
            format!("{}{}", &body[..i], &body[end..])
        }
        None => body,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn the_last_notify_carries_the_latest_state(
        interval in prop_oneof![Just(0u64), Just(5000u64)],
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let cfg = Config { presence_interval_ms: interval, ..Config::default() };
        let mut n = Notifier::new(cfg, 1);
        let mut now = 1_000u64;
        let mut in_flight: Vec<Notify> = Vec::new();
        let mut last: std::collections::HashMap<SubKey, Notify> = Default::default();
        let mut registered = true;
        let mut etag: Option<String> = None;
        let mut cseq = 1;
        let watched = [("p", Package::Presence), ("d", Package::Dialog)];
        for (call_id, package) in watched {
            n.subscribe(now, subscribe(call_id, package, registered), &mut in_flight).unwrap();
        }
        let take = |out: Vec<Notify>, in_flight: &mut Vec<Notify>, last: &mut std::collections::HashMap<SubKey, Notify>| {
            for o in out {
                // One NOTIFY in flight per subscription, CSeqs rising.
                prop_assert!(!in_flight.iter().any(|f| f.key == o.key));
                if let Some(prev) = last.get(&o.key) {
                    prop_assert!(o.cseq > prev.cseq);
                }
                last.insert(o.key.clone(), o.clone());
                in_flight.push(o);
            }
            Ok(())
        };
        let first = std::mem::take(&mut in_flight);
        take(first, &mut in_flight, &mut last)?;
        for op in ops {
            let mut out = Vec::new();
            match op {
                Op::Publish(note) => {
                    let body = doc(note);
                    let req = PublishRequest {
                        presentity: "a@x.org",
                        presentity_uri: "sip:a@x.org",
                        package: Package::Presence,
                        if_match: etag.as_deref(),
                        expires_s: Some(3600),
                        body: Some(("application/pidf+xml", &body)),
                        registered,
                    };
                    etag = Some(n.publish(now, req, &mut out).unwrap().etag);
                }
                Op::Unpublish => {
                    if let Some(tag) = etag.take() {
                        let req = PublishRequest {
                            presentity: "a@x.org",
                            presentity_uri: "sip:a@x.org",
                            package: Package::Presence,
                            if_match: Some(&tag),
                            expires_s: Some(0),
                            body: None,
                            registered,
                        };
                        n.publish(now, req, &mut out).unwrap();
                    }
                }
                Op::Registered(r) => {
                    registered = r;
                    n.set_registered(now, "a@x.org", r, &mut out);
                }
                Op::Call(c, p) => {
                    let view = CallView {
                        call_id: format!("call{c}"),
                        local_tag: Some("l".into()),
                        remote_tag: None,
                        initiator: true,
                        remote: "sip:c@x.org".into(),
                        phase: PHASES[p as usize],
                    };
                    n.call(now, "a@x.org", view, &mut out);
                }
                Op::Refresh(i) => {
                    let (call_id, package) = watched[i % 2];
                    cseq += 1;
                    let mut r = subscribe(call_id, package, registered);
                    r.to_tag = Some("s".into());
                    r.cseq = cseq;
                    n.subscribe(now, r, &mut out).unwrap();
                }
                Op::Answer(i, status) => {
                    if !in_flight.is_empty() {
                        let o = in_flight.remove(i % in_flight.len());
                        n.answered(now, &o.key, Some(status), &mut out);
                    }
                }
                Op::Wait(ms) => {
                    now += ms;
                    n.tick(now, &mut out);
                }
            }
            take(out, &mut in_flight, &mut last)?;
        }
        // Every NOTIFY answered, the rate limit's interval over.
        for _ in 0..20 {
            let mut out = Vec::new();
            for o in std::mem::take(&mut in_flight) {
                n.answered(now, &o.key, Some(200), &mut out);
            }
            now += 6000;
            n.tick(now, &mut out);
            take(out, &mut in_flight, &mut last)?;
        }
        prop_assert!(in_flight.is_empty());
        // What a new watcher gets now is the latest state.
        for (i, (call_id, package)) in watched.into_iter().enumerate() {
            let mut fresh = Vec::new();
            let probe = format!("probe{i}");
            n.subscribe(now, subscribe(&probe, package, registered), &mut fresh).unwrap();
            let key = SubKey { call_id: call_id.into(), from_tag: "w".into(), package, id: String::new() };
            let got = &last[&key];
            prop_assert_eq!(state_of(got), state_of(&fresh[0]), "{}", package);
        }
    }
}

/// A body: bytes, or a PIDF document with arbitrary elements and text in it.
fn published() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        (
            "(x:)?[a-z]{1,8}",
            "[ -%'-;=-~]{0,40}",
            prop_oneof![Just(String::new()), "id=\"[a-z0-9]{1,5}\"", "[a-z:=\" ]{0,20}"],
        )
            .prop_map(|(name, text, attrs)| {
            format!(
                "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" xmlns:x=\"urn:x\" {attrs}><{name}>{text}</{name}><tuple id=\"t\"/></presence>"
            )
            .into_bytes()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]
    /// Whatever a phone publishes, nothing panics, and the document the watchers get of a
    /// publication taken is one the server would take again.
    #[test]
    fn what_is_notified_of_a_publication_reads_again(body in published()) {
        let mut n = Notifier::new(Config { presence_interval_ms: 0, ..Config::default() }, 1);
        let mut out = Vec::new();
        n.subscribe(0, subscribe("c", Package::Presence, true), &mut out).unwrap();
        let first = out.pop().unwrap();
        n.answered(1, &first.key, Some(200), &mut out);
        let req = |body| PublishRequest {
            presentity: "a@x.org",
            presentity_uri: "sip:a@x.org",
            package: Package::Presence,
            if_match: None,
            expires_s: Some(600),
            body: Some(("application/pidf+xml", body)),
            registered: true,
        };
        if n.publish(2, req(&body), &mut out).is_ok() {
            let notified = out.pop().expect("a NOTIFY of the change");
            let (_, doc) = notified.body.expect("a document");
            let mut again = Notifier::new(Config::default(), 2);
            prop_assert!(again.publish(0, req(doc.as_bytes()), &mut Vec::new()).is_ok(), "{}", doc);
        }
    }
}
