//! Registrar rules, one test each.

use sip_message::Message;

use crate::*;

const NOW: u64 = 1_000_000;
/// Where the test REGISTERs come from.
const SRC: std::net::SocketAddr = std::net::SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 9)),
    5060,
);

fn register(call_id: &str, cseq: u32, contacts: &[&str], extra: &str) -> Message {
    let mut s = format!(
        "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK{call_id}{cseq}\r\n\
To: <sip:alice@example.com>\r\nFrom: <sip:alice@example.com>;tag=1\r\nCall-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n"
    );
    for c in contacts {
        s.push_str(&format!("Contact: {c}\r\n"));
    }
    s.push_str(extra);
    s.push_str("Content-Length: 0\r\n\r\n");
    Message::parse(s).expect("test REGISTER")
}

fn run(loc: &Location, req: &Message) -> Result<Registered, Rejection> {
    loc.register(
        &RegistrarConfig::default(),
        NOW,
        req,
        "udp:192.0.2.1:5060",
        false,
        &|_| true,
    )
}

#[test]
fn new_binding_then_refresh_then_remove() {
    let loc = Location::new();
    let r = run(
        &loc,
        &register("c1", 1, &["<sip:alice@192.0.2.1>;expires=600"], ""),
    )
    .unwrap();
    assert_eq!(r.aor, "sip:alice@example.com");
    assert_eq!(r.bindings.len(), 1);
    // The list the table keeps holds no spare room (a pushed Vec would hold four).
    assert_eq!(r.bindings.capacity(), 1);
    assert_eq!(r.bindings[0].expires_at, NOW + 600);
    assert!(matches!(r.changes[..], [Change::Upsert(_)]));
    let r = run(
        &loc,
        &register("c1", 2, &["<sip:alice@192.0.2.1>"], "Expires: 120\r\n"),
    )
    .unwrap();
    assert_eq!(r.bindings[0].expires_at, NOW + 120);
    assert_eq!(r.bindings.capacity(), 1, "a refresh keeps the list exact");
    let r = run(
        &loc,
        &register("c1", 3, &["<sip:alice@192.0.2.1>;expires=0"], ""),
    )
    .unwrap();
    assert!(r.bindings.is_empty());
    assert!(
        matches!(&r.changes[..], [Change::Remove { contact, .. }] if contact == "sip:alice@192.0.2.1")
    );
    assert!(loc.lookup("sip:alice@example.com", NOW).is_empty());
}

/// A binding records whether its REGISTER's top Via named the address and port it came
/// from: a host name, another address or
/// another port does not; TLS's port is 5061 unless written.
#[test]
fn a_binding_records_whether_the_via_named_its_source() {
    let cases = [
        ("udp:192.0.2.1:5060", "SIP/2.0/UDP 192.0.2.1:5060", true),
        ("udp:192.0.2.1:5060", "SIP/2.0/UDP 192.0.2.1", true),
        ("udp:192.0.2.1:5062", "SIP/2.0/UDP 192.0.2.1:5060", false),
        ("udp:192.0.2.7:5060", "SIP/2.0/UDP 192.0.2.1:5060", false),
        ("udp:192.0.2.1:5060", "SIP/2.0/UDP phone.example.com", false),
        ("tls:192.0.2.1:5061", "SIP/2.0/TLS 192.0.2.1", true),
        ("tls:192.0.2.1:5060", "SIP/2.0/TLS 192.0.2.1", false),
        ("udp:[2001:db8::1]:5060", "SIP/2.0/UDP [2001:db8::1]", true),
        (
            "udp:[::ffff:192.0.2.1]:5060",
            "SIP/2.0/UDP 192.0.2.1:5060",
            true,
        ),
    ];
    for (source, via, expected) in cases {
        let req = Message::parse(format!(
            "REGISTER sip:example.com SIP/2.0\r\nVia: {via};branch=z9hG4bKv\r\n\
To: <sip:alice@example.com>\r\nFrom: <sip:alice@example.com>;tag=1\r\nCall-ID: v\r\n\
CSeq: 1 REGISTER\r\nContact: <sip:alice@192.0.2.1:5070>\r\nContent-Length: 0\r\n\r\n"
        ))
        .expect("REGISTER");
        let cfg = RegistrarConfig::default();
        let r = process_register(&cfg, NOW, &req, source, &[]).expect("registered");
        assert_eq!(r.bindings[0].via_at_source, expected, "{source} / {via}");
    }
}

#[test]
fn star_removes_all_and_needs_expires_zero() {
    let loc = Location::new();
    run(
        &loc,
        &register("c1", 1, &["<sip:a@192.0.2.1>", "<sip:a@192.0.2.2>"], ""),
    )
    .unwrap();
    assert_eq!(
        run(&loc, &register("c2", 1, &["*"], ""))
            .unwrap_err()
            .status,
        400
    );
    assert_eq!(
        run(
            &loc,
            &register("c2", 1, &["*", "<sip:a@192.0.2.3>"], "Expires: 0\r\n")
        )
        .unwrap_err()
        .status,
        400
    );
    let r = run(&loc, &register("c2", 1, &["*"], "Expires: 0\r\n")).unwrap();
    assert_eq!(r.changes.len(), 2);
    assert!(loc.is_empty());
}

#[test]
fn too_brief_is_423_and_long_is_clamped() {
    let loc = Location::new();
    let e = run(
        &loc,
        &register("c1", 1, &["<sip:a@192.0.2.1>;expires=10"], ""),
    )
    .unwrap_err();
    assert_eq!((e.status, e.min_expires), (423, Some(60)));
    assert!(loc.is_empty(), "a rejection changes nothing");
    let r = run(
        &loc,
        &register("c1", 2, &["<sip:a@192.0.2.1>"], "Expires: 99999\r\n"),
    )
    .unwrap();
    assert_eq!(r.bindings[0].expires_at, NOW + 3600);
}

#[test]
fn out_of_order_cseq_is_refused_and_other_call_id_replaces() {
    let loc = Location::new();
    run(&loc, &register("c1", 5, &["<sip:a@192.0.2.1>"], "")).unwrap();
    let again = run(
        &loc,
        &register("c1", 5, &["<sip:a@192.0.2.1>;expires=100"], ""),
    )
    .unwrap();
    assert!(
        again.changes.is_empty(),
        "a repeated CSeq is a retransmission: nothing changes"
    );
    assert_eq!(again.bindings[0].expires_at, NOW + 3600);
    assert_eq!(
        run(&loc, &register("c1", 4, &["<sip:a@192.0.2.1>"], ""))
            .unwrap_err()
            .status,
        500
    );
    let r = run(
        &loc,
        &register("c9", 1, &["<sip:a@192.0.2.1>;expires=100"], ""),
    )
    .unwrap();
    assert_eq!(
        (r.bindings[0].call_id.as_str(), r.bindings[0].expires_at),
        ("c9", NOW + 100)
    );
}

#[test]
fn several_contacts_ordered_by_q_with_max_contacts() {
    let loc = Location::new();
    let r = run(
        &loc,
        &register(
            "c1",
            1,
            &[
                "<sip:a@192.0.2.1>;q=0.1",
                "<sip:a@192.0.2.2>;q=0.9",
                "<sip:a@192.0.2.3>",
            ],
            "",
        ),
    )
    .unwrap();
    let qs: Vec<u16> = r.bindings.iter().map(|b| b.q).collect();
    assert_eq!(qs, [1000, 900, 100]);
    assert_eq!(loc.lookup("sip:alice@example.com", NOW).len(), 3);
    let cfg = RegistrarConfig {
        max_contacts: 3,
        ..RegistrarConfig::default()
    };
    let e = loc
        .register(
            &cfg,
            NOW,
            &register("c1", 2, &["<sip:a@192.0.2.4>"], ""),
            "udp:x",
            false,
            &|_| true,
        )
        .unwrap_err();
    assert_eq!(e.status, 403);
}

#[test]
fn query_without_contact_changes_nothing() {
    let loc = Location::new();
    run(&loc, &register("c1", 1, &["<sip:a@192.0.2.1>"], "")).unwrap();
    let r = run(&loc, &register("c2", 1, &[], "")).unwrap();
    assert!(r.changes.is_empty());
    assert_eq!(r.bindings.len(), 1);
}

#[test]
fn path_stored_and_echoed_only_when_supported() {
    let loc = Location::new();
    let req = register(
        "c1",
        1,
        &["<sip:a@192.0.2.1>"],
        "Path: <sip:edge.example.com;lr>\r\n",
    );
    let r = run(&loc, &req).unwrap();
    assert_eq!(r.bindings[0].path, ["<sip:edge.example.com;lr>"]);
    let ok = Message::parse(ok_response(&req, SRC, &r, NOW, "t", Some(120))).unwrap();
    assert_eq!(ok.paths().count(), 0);
    let req = register(
        "c1",
        2,
        &["<sip:a@192.0.2.1>"],
        "Path: <sip:edge.example.com;lr>\r\nSupported: path\r\n",
    );
    let r = run(&loc, &req).unwrap();
    let ok = Message::parse(ok_response(&req, SRC, &r, NOW, "t", Some(120))).unwrap();
    assert_eq!(ok.paths().count(), 1);
    assert_eq!(ok.to().unwrap().tag(), Some("t"));
    let sip_message::header::Contact::Address(c) = ok.contacts().next().unwrap().unwrap() else {
        panic!()
    };
    assert_eq!(c.expires(), Some(3600));
}

#[test]
fn non_sip_to_is_404_and_instance_params_kept() {
    let loc = Location::new();
    let req = Message::parse(
        "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: isbn:2983792873\r\n\
From: <http://www.example.com>;tag=3\r\nCall-ID: x\r\nCSeq: 1 REGISTER\r\nContact: <name:John_Smith>\r\nContent-Length: 0\r\n\r\n",
    )
    .unwrap();
    assert_eq!(run(&loc, &req).unwrap_err().status, 404);
    let r = run(
        &loc,
        &register(
            "c1",
            1,
            &["<sip:a@192.0.2.1>;+sip.instance=\"<urn:uuid:1>\";reg-id=2"],
            "User-Agent: Phone/1\r\n",
        ),
    )
    .unwrap();
    let b = &r.bindings[0];
    assert_eq!(
        (b.instance.as_deref(), b.reg_id, b.user_agent.as_deref()),
        (Some("<urn:uuid:1>"), Some(2), Some("Phone/1"))
    );
}

#[test]
fn expiry_purge_load_and_threads() {
    let loc = Location::new();
    run(
        &loc,
        &register("c1", 1, &["<sip:a@192.0.2.1>;expires=100"], ""),
    )
    .unwrap();
    assert_eq!(loc.lookup("sip:alice@example.com", NOW + 99).len(), 1);
    assert!(loc.lookup("sip:alice@example.com", NOW + 100).is_empty());
    let removed = loc.purge_expired(NOW + 100);
    assert_eq!(removed.len(), 1);
    assert!(loc.is_empty());
    let restored = Location::new();
    let b = Binding {
        aor: "sip:bob@example.com".into(),
        contact: "sip:b@h".into(),
        q: 1000,
        expires_at: NOW + 5,
        call_id: "x".into(),
        cseq: 1,
        path: vec![],
        source: "udp:1.2.3.4:5060".into(),
        via_at_source: false,
        user_agent: None,
        instance: None,
        reg_id: None,
    };
    restored.load([b.clone(), b]);
    assert_eq!(restored.len(), 1);
    assert_eq!(restored.all(NOW).len(), 1);
    assert_eq!(restored.remove_aor("sip:bob@example.com").len(), 1);

    let shared = std::sync::Arc::new(Location::new());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let loc = shared.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let req = Message::parse(format!(
                        "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK{t}x{i}\r\nTo: <sip:u{t}x{i}@example.com>\r\n\
From: <sip:u@example.com>;tag=1\r\nCall-ID: {t}x{i}\r\nCSeq: 1 REGISTER\r\nContact: <sip:u@192.0.2.1>\r\nContent-Length: 0\r\n\r\n"
                    ))
                    .unwrap();
                    loc.register(&RegistrarConfig::default(), NOW, &req, "udp:h:1", false, &|_| true).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(shared.len(), 200);
}

#[test]
fn undone_registrations_put_back_what_was_there_newest_first() {
    let loc = Location::new();
    let phone = "<sip:alice@192.0.2.1>";
    let desk = "<sip:alice@192.0.2.2>";
    run(&loc, &register("c1", 1, &[phone], "Expires: 600\r\n")).unwrap();
    let before = loc.lookup("sip:alice@example.com", NOW);
    // Two writes fail: a refresh with a new contact, then a removal of everything.
    let first = run(&loc, &register("c1", 2, &[phone, desk], "Expires: 120\r\n")).unwrap();
    let second = run(&loc, &register("c1", 3, &["*"], "Expires: 0\r\n")).unwrap();
    assert!(loc.lookup("sip:alice@example.com", NOW).is_empty());
    for r in [&second, &first] {
        loc.undo(&r.previous, &r.changes);
    }
    assert_eq!(loc.lookup("sip:alice@example.com", NOW), before);
    assert_eq!(loc.len(), 1, "the new contact is gone again");
}

#[test]
fn an_undo_leaves_a_contact_a_later_registration_changed() {
    let loc = Location::new();
    let phone = "<sip:alice@192.0.2.1>";
    // The first write fails, but only after a refresh of the same contact was stored.
    let failed = run(&loc, &register("c1", 1, &[phone], "Expires: 600\r\n")).unwrap();
    let stored = run(&loc, &register("c1", 2, &[phone], "Expires: 300\r\n")).unwrap();
    loc.undo(&failed.previous, &failed.changes);
    assert_eq!(
        loc.lookup("sip:alice@example.com", NOW),
        *stored.bindings,
        "the refresh that was stored stays"
    );
}

#[test]
fn a_late_copy_of_an_older_register_does_not_bring_back_a_removed_contact() {
    let loc = Location::new();
    let contact = "<sip:alice@192.0.2.1>;expires=600";
    let first = register("c1", 1, &[contact], "");
    run(&loc, &first).unwrap();
    run(
        &loc,
        &register("c1", 2, &["<sip:alice@192.0.2.1>;expires=0"], ""),
    )
    .unwrap();
    // CSeq 1 again (reordered, or retransmitted after its transaction ended): refused.
    let late = run(&loc, &first).unwrap_err();
    assert_eq!(late.status, 500);
    assert!(loc.lookup("sip:alice@example.com", NOW).is_empty());
    // The removal again changes nothing; a newer CSeq, or another Call-ID, binds again.
    let again = run(
        &loc,
        &register("c1", 2, &["<sip:alice@192.0.2.1>;expires=0"], ""),
    );
    assert!(again.unwrap().changes.is_empty());
    assert_eq!(
        run(&loc, &register("c1", 3, &[contact], ""))
            .unwrap()
            .bindings
            .len(),
        1
    );
    run(
        &loc,
        &register("c1", 4, &["<sip:alice@192.0.2.1>;expires=0"], ""),
    )
    .unwrap();
    assert_eq!(
        run(&loc, &register("c2", 1, &[contact], ""))
            .unwrap()
            .bindings
            .len(),
        1
    );
}

#[test]
fn removed_contacts_are_forgotten_after_a_while() {
    let loc = Location::new();
    let contact = "<sip:alice@192.0.2.1>;expires=600";
    run(&loc, &register("c1", 5, &[contact], "")).unwrap();
    run(
        &loc,
        &register("c1", 6, &["<sip:alice@192.0.2.1>;expires=0"], ""),
    )
    .unwrap();
    loc.purge_expired(NOW + 65);
    let cfg = RegistrarConfig::default();
    let late = loc.register(
        &cfg,
        NOW + 65,
        &register("c1", 5, &[contact], ""),
        "udp:192.0.2.1:5060",
        false,
        &|_| true,
    );
    assert!(late.is_ok(), "no longer remembered: {late:?}");
}

/// Issue: 6,000 REGISTERs from one source with 10 contacts each left 60,000 bindings. A
/// source holds `max_bindings_per_source` at most (another source, or an exempt one, more);
/// the table `max_bindings`; bindings that expire or go give the room back.
#[test]
fn bindings_are_limited_per_source_and_in_all() {
    let loc = Location::new();
    let cfg = RegistrarConfig {
        max_bindings_per_source: 100,
        max_bindings: 250,
        ..RegistrarConfig::default()
    };
    let ten = |aor: usize| {
        let contacts: Vec<String> = (0..10)
            .map(|i| format!("<sip:{i}@192.0.2.1:{aor}>"))
            .collect();
        let refs: Vec<&str> = contacts.iter().map(String::as_str).collect();
        let text = String::from_utf8_lossy(&register("c", 1, &refs, "Expires: 60\r\n").to_bytes())
            .replace("alice@", &format!("u{aor}@"));
        Message::parse(text).expect("REGISTER")
    };
    let from = |source: &str, aor: usize, exempt: bool| {
        loc.register(&cfg, NOW, &ten(aor), source, exempt, &|_| true)
    };
    for aor in 0..10 {
        assert!(from("udp:192.0.2.1:5060", aor, false).is_ok(), "{aor}");
    }
    let e = from("udp:192.0.2.1:5061", 10, false).unwrap_err();
    assert_eq!((e.status, e.limit), (403, true));
    assert_eq!(loc.len(), 100);
    // A refresh of what the source holds is no growth.
    assert!(from("udp:192.0.2.1:5060", 3, false).is_ok());
    for aor in 10..20 {
        assert!(
            from("udp:192.0.2.2:5060", aor, false).is_ok(),
            "another source: {aor}"
        );
    }
    for aor in 20..25 {
        assert!(
            from("udp:192.0.2.3:5060", aor, true).is_ok(),
            "exempt: {aor}"
        );
    }
    let e = from("udp:192.0.2.4:5060", 25, true).unwrap_err();
    assert_eq!((e.status, e.limit), (503, true), "the table is full");
    assert_eq!(loc.len(), 250);
    loc.purge_expired(NOW + 61);
    assert_eq!(loc.len(), 0);
    assert!(from("udp:192.0.2.1:5060", 30, false).is_ok(), "room again");
}

/// An AOR of a domain not served is refused (403) and leaves nothing; the domain is handed
/// over as the AOR writes it.
#[test]
fn a_domain_not_served_is_refused() {
    let loc = Location::new();
    let req = register("c1", 1, &["<sip:a@192.0.2.1>"], "");
    let seen = std::cell::RefCell::new(String::new());
    let served = |d: &str| {
        *seen.borrow_mut() = d.to_owned();
        false
    };
    let e = loc
        .register(
            &RegistrarConfig::default(),
            NOW,
            &req,
            "udp:192.0.2.1:5060",
            false,
            &served,
        )
        .unwrap_err();
    assert_eq!(e.status, 403);
    assert_eq!(*seen.borrow(), "example.com");
    assert!(loc.is_empty());
}

/// RFC 5626 §6: a binding with `+sip.instance` and `reg-id` is that pair's: another
/// Contact of the same pair replaces it (and removes the old one from the store), another
/// reg-id of the instance is a flow of its own, and the 200 says which is which.
#[test]
fn an_instance_and_reg_id_key_a_binding_whatever_its_contact() {
    let loc = Location::new();
    let flow = |contact: &str, reg_id: u32| {
        format!("<{contact}>;+sip.instance=\"<urn:uuid:00a1>\";reg-id={reg_id}")
    };
    let r = run(&loc, &register("c1", 1, &[&flow("sip:a@x.invalid", 1)], "")).unwrap();
    assert_eq!(r.bindings.len(), 1);
    assert_eq!(r.bindings[0].instance.as_deref(), Some("<urn:uuid:00a1>"));
    assert_eq!(r.bindings[0].reg_id, Some(1));
    // Reconnected with another Contact: the binding is replaced, the old row removed.
    let r = run(&loc, &register("c2", 1, &[&flow("sip:b@y.invalid", 1)], "")).unwrap();
    assert_eq!(r.bindings.len(), 1);
    assert_eq!(r.bindings[0].contact, "sip:b@y.invalid");
    assert!(matches!(
        &r.changes[..],
        [Change::Remove { contact, .. }, Change::Upsert(b)]
            if contact == "sip:a@x.invalid" && b.contact == "sip:b@y.invalid"
    ));
    // A second flow of the instance is a binding of its own.
    let req = register(
        "c3",
        1,
        &[&flow("sip:c@z.invalid", 2)],
        "Supported: outbound\r\n",
    );
    let r = run(&loc, &req).unwrap();
    assert_eq!(r.bindings.len(), 2);
    let ok = Message::parse(ok_response(&req, SRC, &r, NOW, "t", Some(90))).unwrap();
    let contacts: Vec<&str> = ok
        .headers_named(sip_message::HeaderName::Contact)
        .map(|h| h.value)
        .collect();
    assert!(
        contacts
            .iter()
            .any(|c| c.contains("reg-id=2") && c.contains("\"<urn:uuid:00a1>\"")),
        "{contacts:?}"
    );
    assert_eq!(
        ok.header(sip_message::HeaderName::Require).map(|h| h.value),
        Some("outbound")
    );
    assert!(ok
        .headers()
        .any(|h| h.raw_name == "Flow-Timer" && h.value == "90"));
    // Without reg-id the Contact decides, as RFC 3261 says.
    let plain = "<sip:d@192.0.2.1>;+sip.instance=\"<urn:uuid:00a1>\"";
    let r = run(&loc, &register("c4", 1, &[plain], "")).unwrap();
    assert_eq!(r.bindings.len(), 3);
    let req = register("c4", 1, &[plain], "Supported: outbound\r\n");
    let ok = Message::parse(ok_response(&req, SRC, &r, NOW, "t", Some(90))).unwrap();
    assert!(ok.header(sip_message::HeaderName::Require).is_none());
}

/// RFC 5626 §4.2: an instance registers the same Contact over two flows (reg-id 1 and 2):
/// two bindings. Each refreshes and ends alone; another's binding of the Contact (a plain
/// one, another instance's) clashes and goes; a Contact without reg-id ends them all.
#[test]
fn flows_of_one_instance_share_a_contact() {
    let loc = Location::new();
    let flow = |instance: &str, reg_id: u32| {
        format!("<sip:a@192.0.2.1;ob>;+sip.instance=\"<urn:uuid:{instance}>\";reg-id={reg_id}")
    };
    let keys = |r: &Registered| {
        let mut k: Vec<_> = r.bindings.iter().map(|b| (b.reg_id, b.cseq)).collect();
        k.sort_unstable();
        k
    };
    run(&loc, &register("f1", 1, &[&flow("1", 1)], "")).unwrap();
    let r = run(&loc, &register("f2", 1, &[&flow("1", 2)], "")).unwrap();
    assert_eq!(keys(&r), [(Some(1), 1), (Some(2), 1)]);
    assert!(matches!(&r.changes[..], [Change::Upsert(b)] if b.reg_id == Some(2)));
    // A refresh of flow 1 leaves flow 2 alone.
    let r = run(&loc, &register("f1", 2, &[&flow("1", 1)], "")).unwrap();
    assert_eq!(keys(&r), [(Some(1), 2), (Some(2), 1)]);
    // Flow 2 ends alone, its key in the removal.
    let end = format!("{};expires=0", flow("1", 2));
    let r = run(&loc, &register("f2", 2, &[&end], "")).unwrap();
    assert_eq!(keys(&r), [(Some(1), 2)]);
    assert_eq!(
        r.changes,
        [Change::Remove {
            aor: "sip:alice@example.com".into(),
            contact: "sip:a@192.0.2.1;ob".into(),
            reg_id: Some(2),
        }]
    );
    // Another instance takes the Contact: flow 1 of the first is replaced (the same key).
    let r = run(&loc, &register("g1", 1, &[&flow("2", 1)], "")).unwrap();
    assert_eq!(r.bindings.len(), 1);
    assert_eq!(r.bindings[0].instance.as_deref(), Some("<urn:uuid:2>"));
    assert!(matches!(&r.changes[..], [Change::Upsert(b)] if b.reg_id == Some(1)));
    // A reg-id outside 1 to 2^31-1 means nothing: the Contact decides.
    let r = run(&loc, &register("g1", 2, &[&flow("2", 0x8000_0000)], "")).unwrap();
    assert_eq!(keys(&r), [(None, 2)]);
    run(&loc, &register("g2", 1, &[&flow("2", 2)], "")).unwrap();
    run(&loc, &register("g3", 1, &[&flow("2", 3)], "")).unwrap();
    assert_eq!(loc.lookup("sip:alice@example.com", NOW).len(), 2);
    // The Contact without reg-id, expires 0: every binding of it ends.
    let r = run(
        &loc,
        &register("h", 1, &["<sip:a@192.0.2.1;ob>;expires=0"], ""),
    )
    .unwrap();
    assert!(r.bindings.is_empty());
    assert_eq!(r.changes.len(), 2);
    assert!(loc.is_empty());
}

/// A flow that could not be stored is undone alone: its sibling of the same Contact stays.
#[test]
fn an_undone_flow_leaves_its_sibling() {
    let loc = Location::new();
    let flow = |reg_id: u32| {
        format!("<sip:a@192.0.2.1;ob>;+sip.instance=\"<urn:uuid:1>\";reg-id={reg_id}")
    };
    run(&loc, &register("f1", 1, &[&flow(1)], "")).unwrap();
    let failed = run(&loc, &register("f2", 1, &[&flow(2)], "")).unwrap();
    loc.undo(&failed.previous, &failed.changes);
    let left = loc.lookup("sip:alice@example.com", NOW);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].reg_id, Some(1));
    assert_eq!(loc.len(), 1);
}

/// RFC 5626 §6: behind an edge proxy whose Path entry has `ob` (it keeps the flow, over
/// whatever transport it forwards on), the client has outbound: `Require: outbound`, and no
/// Flow-Timer (the edge's keep-alives are not ours to set). A parameter merely starting
/// with "ob" is no `ob`.
#[test]
fn an_edge_proxy_marked_ob_grants_outbound() {
    let contact = "<sip:a@192.0.2.1;ob>;+sip.instance=\"<urn:uuid:1>\";reg-id=1";
    let answer = |path: &str| {
        let loc = Location::new();
        let extra = format!("Supported: outbound, path\r\nPath: {path}\r\n");
        let req = register("e1", 1, &[contact], &extra);
        let r = run(&loc, &req).unwrap();
        Message::parse(ok_response(&req, SRC, &r, NOW, "t", None)).unwrap()
    };
    let ok = answer("<sip:edge.example.com;lr;ob>");
    assert_eq!(
        ok.header(sip_message::HeaderName::Require).map(|h| h.value),
        Some("outbound")
    );
    assert!(!ok.headers().any(|h| h.raw_name == "Flow-Timer"));
    let ok = answer("<sip:edge.example.com;lr;obx=1>");
    assert!(ok.header(sip_message::HeaderName::Require).is_none());
}

#[test]
fn the_200_lists_each_binding_with_its_expiry_q_instance_and_reg_id() {
    let loc = Location::new();
    let req = register(
        "c1",
        1,
        &[
            "<sip:a@192.0.2.1>;q=0.05;expires=600",
            "<sip:a@192.0.2.2>;expires=70",
            "<sip:a@192.0.2.3;ob>;+sip.instance=\"<urn:uuid:1\\\"2>\";reg-id=12;q=1",
        ],
        "Supported: outbound\r\n",
    );
    let reg = run(&loc, &req).unwrap();
    let ok = Message::parse(ok_response(&req, SRC, &reg, NOW, "t", None)).unwrap();
    let contacts: Vec<&str> = ok
        .headers_named(sip_message::HeaderName::Contact)
        .map(|h| h.value)
        .collect();
    assert_eq!(
        contacts,
        [
            "<sip:a@192.0.2.2>;expires=70",
            "<sip:a@192.0.2.3;ob>;expires=3600;+sip.instance=\"<urn:uuid:1\\\"2>\";reg-id=12",
            "<sip:a@192.0.2.1>;expires=600;q=0.050",
        ]
    );
}
