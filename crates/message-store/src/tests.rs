//! The mailboxes, message by message.

use crate::*;

fn msg<'a>(to: &'a str, body: &'a [u8]) -> NewMessage<'a> {
    NewMessage {
        recipient: to,
        from: "<sip:alice@x.org>;tag=1",
        to: "<sip:bob@x.org>",
        content_type: "text/plain",
        body,
        auto_submitted: None,
    }
}

#[test]
fn messages_go_out_in_order_one_at_a_time_once_the_user_registers() {
    let mut m = Mailboxes::new(Limits::default(), 0);
    let a = m.keep(1, msg("sip:bob@x.org", b"one")).unwrap();
    let b = m.keep(2, msg("sip:bob@x.org", b"two")).unwrap();
    assert!(a.id < b.id);
    assert_eq!(m.next("sip:bob@x.org"), None, "not before it registers");
    assert!(m.due().is_empty());
    m.wake("sip:bob@x.org");
    assert_eq!(m.due(), ["sip:bob@x.org"]);
    let first = m.next("sip:bob@x.org").unwrap();
    assert_eq!(first.body, b"one");
    assert_eq!(m.next("sip:bob@x.org"), None, "one at a time");
    m.delivered("sip:bob@x.org", first.id, Delivery::Taken);
    let second = m.next("sip:bob@x.org").unwrap();
    assert_eq!(second.body, b"two");
    // Not taken: it stays, and waits for the next registration.
    m.delivered("sip:bob@x.org", second.id, Delivery::Failed);
    assert_eq!(m.next("sip:bob@x.org"), None);
    assert_eq!(m.len(), 1);
    m.wake("sip:bob@x.org");
    let again = m.next("sip:bob@x.org").unwrap();
    m.delivered("sip:bob@x.org", again.id, Delivery::Taken);
    assert!(m.is_empty());
    assert_eq!(
        m.take_changes(),
        [Change::Removed(first.id), Change::Removed(again.id)]
    );
}

#[test]
fn limits_hold() {
    let limits = Limits {
        per_user: 2,
        per_user_bytes: 10,
        max_body: 8,
        total: 3,
        keep_ms: 1000,
    };
    let mut m = Mailboxes::new(limits, 0);
    assert_eq!(
        m.keep(0, msg("sip:a@x", b"123456789")).unwrap_err().code,
        413
    );
    m.keep(0, msg("sip:a@x", b"12345")).unwrap();
    assert_eq!(
        m.keep(0, msg("sip:a@x", b"123456")).unwrap_err().code,
        486,
        "bytes"
    );
    m.keep(0, msg("sip:a@x", b"1")).unwrap();
    assert_eq!(
        m.keep(0, msg("sip:a@x", b"1")).unwrap_err().code,
        486,
        "count"
    );
    m.keep(0, msg("sip:b@x", b"1")).unwrap();
    assert_eq!(
        m.keep(0, msg("sip:c@x", b"1")).unwrap_err().code,
        503,
        "total"
    );
    let auto = NewMessage {
        auto_submitted: Some("auto-replied"),
        ..msg("sip:c@x", b"away")
    };
    assert_eq!(
        Mailboxes::new(limits, 0).keep(0, auto).unwrap_err().code,
        480
    );
    let not_auto = NewMessage {
        auto_submitted: Some("no"),
        ..msg("sip:c@x", b"hi")
    };
    assert!(Mailboxes::new(limits, 0).keep(0, not_auto).is_ok());
    // They expire.
    m.expire(999);
    assert_eq!(m.len(), 3);
    m.expire(1000);
    assert!(m.is_empty());
    assert_eq!(m.take_changes().len(), 3);
}

#[test]
fn a_restart_takes_them_back_in_order() {
    let mut m = Mailboxes::new(Limits::default(), 0);
    let kept: Vec<Stored> = (0..3)
        .map(|i| {
            m.keep(i, msg("sip:bob@x.org", format!("m{i}").as_bytes()))
                .unwrap()
        })
        .collect();
    let mut back = Mailboxes::new(Limits::default(), 0);
    let mut reversed = kept.clone();
    reversed.reverse();
    assert_eq!(back.restore(reversed), 3);
    assert_eq!(back.of("sip:bob@x.org"), kept);
    let new = back.keep(9, msg("sip:bob@x.org", b"new")).unwrap();
    assert!(new.id > kept[2].id, "numbers go on past the stored ones");
    assert_eq!(back.len(), 4);
}

#[test]
fn a_message_a_device_refuses_for_good_does_not_block_the_rest() {
    let mut m = Mailboxes::new(Limits::default(), 0);
    let bad = m.keep(1, msg("sip:bob@x.org", b"unwanted")).unwrap();
    m.keep(2, msg("sip:bob@x.org", b"fine")).unwrap();
    m.wake("sip:bob@x.org");
    let first = m.next("sip:bob@x.org").unwrap();
    assert_eq!(first.id, bad.id);
    m.delivered("sip:bob@x.org", first.id, Delivery::of(Some(415)));
    assert_eq!(m.next("sip:bob@x.org").unwrap().body, b"fine");
    assert_eq!(Delivery::of(Some(480)), Delivery::Failed);
    assert_eq!(Delivery::of(None), Delivery::Failed);
    assert_eq!(Delivery::of(Some(202)), Delivery::Taken);
    assert_eq!(Delivery::of(Some(603)), Delivery::Refused);
}
