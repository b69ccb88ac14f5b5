//! The behaviour every backend must have: each test gets a new, empty database.

use auth::Secrets;
use registrar::{Binding, Change};

use super::{before_flows, run_as_is, TestDb};
use crate::{Alias, Store, Subscriber};

pub(super) fn binding(contact: &str, expires_at: u64) -> Binding {
    Binding {
        aor: "sip:alice@example.com".into(),
        contact: contact.into(),
        q: 500,
        expires_at,
        call_id: "c".into(),
        cseq: 7,
        path: vec!["<sip:p1;lr>".into(), "<sip:p2;lr>".into()],
        source: "udp:192.0.2.1:5060".into(),
        via_at_source: true,
        user_agent: Some("Phone".into()),
        instance: None,
        reg_id: Some(1),
    }
}

fn remove(b: &Binding) -> Change {
    b.removal()
}

/// The stored bindings, by contact.
async fn bindings(store: &Store) -> Vec<Binding> {
    let mut all = store.load_all().await.unwrap();
    all.sort_by(|a, b| a.contact.cmp(&b.contact));
    all
}

pub(super) fn alice(domain: &str, password: &str) -> Subscriber {
    Subscriber {
        username: "alice".into(),
        domain: domain.into(),
        secrets: Secrets::from_password("alice", domain, password),
    }
}

fn alias(username: &str, domain: &str, target: &str) -> Alias {
    Alias {
        username: username.into(),
        domain: domain.into(),
        target_username: target.into(),
        target_domain: "example.com".into(),
    }
}

pub(super) async fn bindings_upsert_remove_and_reload(db: &TestDb) {
    let store = db.open().await;
    let (a, b) = (binding("sip:a@h", 100), binding("sip:b@h", 200));
    store
        .apply(&[Change::Upsert(a.clone()), Change::Upsert(b.clone())])
        .await
        .unwrap();
    assert_eq!(bindings(&store).await, [a.clone(), b.clone()]);
    let mut refreshed = a.clone();
    refreshed.expires_at = 300;
    refreshed.instance = Some("<urn:uuid:1>".into());
    refreshed.path.clear();
    store
        .apply(&[Change::Upsert(refreshed.clone()), remove(&b)])
        .await
        .unwrap();
    assert_eq!(store.load_all().await.unwrap(), [refreshed.clone()]);
    // Nothing to do, and removing what is not there: no error.
    store.apply(&[]).await.unwrap();
    store.apply(&[remove(&b)]).await.unwrap();
    drop(store);
    assert_eq!(db.open().await.load_all().await.unwrap(), [refreshed]);
}

pub(super) async fn a_failed_batch_leaves_nothing_behind(db: &TestDb) {
    let store = db.open().await;
    let kept = binding("sip:kept@h", 10);
    store.apply(&[Change::Upsert(kept.clone())]).await.unwrap();
    // Make the DELETE fail after the INSERT ran in the same transaction.
    let trigger = "CREATE TRIGGER refuse BEFORE DELETE ON location";
    run_as_is(
        &store,
        &format!("{trigger} BEGIN SELECT RAISE(ABORT, 'no'); END"),
        &format!(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'no'; END $$; \
             {trigger} FOR EACH ROW EXECUTE FUNCTION refuse()"
        ),
        &format!("{trigger} FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no'"),
    )
    .await;
    let bad = [Change::Upsert(binding("sip:new@h", 10)), remove(&kept)];
    assert!(store.apply(&bad).await.is_err());
    assert_eq!(
        store.load_all().await.unwrap(),
        [kept],
        "the INSERT was rolled back"
    );
    // The connection is usable again.
    store
        .apply(&[Change::Upsert(binding("sip:after@h", 10))])
        .await
        .unwrap();
    assert_eq!(store.load_all().await.unwrap().len(), 2);
}

pub(super) async fn many_changes_in_one_batch(db: &TestDb) {
    let store = db.open().await;
    let changes: Vec<Change> = (0..500)
        .map(|i| Change::Upsert(binding(&format!("sip:u{i}@h"), 10)))
        .collect();
    store.apply(&changes).await.unwrap();
    let all = store.load_all().await.unwrap();
    assert_eq!(all.len(), 500);
    // Read one by one (as the server loads them at start): the same bindings.
    let mut streamed = Vec::new();
    store.for_each_binding(|b| streamed.push(b)).await.unwrap();
    assert_eq!(streamed, all);
    // 250 refreshed and 250 removed, in one batch again.
    let changes: Vec<Change> = (0..500)
        .map(|i| match i % 2 {
            0 => Change::Upsert(binding(&format!("sip:u{i}@h"), 20)),
            _ => remove(&binding(&format!("sip:u{i}@h"), 10)),
        })
        .collect();
    store.apply(&changes).await.unwrap();
    let left = store.load_all().await.unwrap();
    assert_eq!(left.len(), 250);
    assert!(left.iter().all(|b| b.expires_at == 20));
}

pub(super) async fn the_last_change_of_a_binding_wins(db: &TestDb) {
    let store = db.open().await;
    let (a, b, c) = (
        binding("sip:a@h", 1),
        binding("sip:b@h", 1),
        binding("sip:c@h", 1),
    );
    store.apply(&[Change::Upsert(c.clone())]).await.unwrap();
    let mut a2 = a.clone();
    a2.expires_at = 2;
    store
        .apply(&[
            Change::Upsert(a.clone()),
            Change::Upsert(a2.clone()),
            Change::Upsert(b.clone()),
            remove(&b),
            remove(&c),
            Change::Upsert(c.clone()),
        ])
        .await
        .unwrap();
    assert_eq!(bindings(&store).await, [a2, c]);
}

pub(super) async fn long_and_unicode_values(db: &TestDb) {
    let store = db.open().await;
    let mut b = binding(
        &format!(
            "sip:{}@192.0.2.1;pn-prid={}",
            "u".repeat(40),
            "f".repeat(400)
        ),
        1,
    );
    b.user_agent = Some("Téléphone ☎ 📞".into());
    b.path = vec![format!("<sip:{}@proxy;lr>", "p".repeat(1000))];
    store.apply(&[Change::Upsert(b.clone())]).await.unwrap();
    assert_eq!(store.load_all().await.unwrap(), [b]);
}

pub(super) async fn names_are_case_sensitive(db: &TestDb) {
    let store = db.open().await;
    let (lower, upper) = (binding("sip:a@h", 1), binding("sip:A@h", 2));
    store
        .apply(&[Change::Upsert(lower.clone()), Change::Upsert(upper.clone())])
        .await
        .unwrap();
    assert_eq!(bindings(&store).await, [upper, lower]);
    let mut alice_uc = alice("example.com", "b");
    alice_uc.username = "Alice".into();
    assert!(store
        .add_subscriber(&alice("example.com", "a"))
        .await
        .unwrap());
    assert!(store.add_subscriber(&alice_uc).await.unwrap());
    assert_eq!(
        store.subscribers(None).await.unwrap(),
        [alice_uc, alice("example.com", "a")]
    );
}

pub(super) async fn subscribers(db: &TestDb) {
    let store = db.open().await;
    assert!(store
        .add_subscriber(&alice("example.com", "a"))
        .await
        .unwrap());
    assert!(
        !store
            .add_subscriber(&alice("Example.com", "b"))
            .await
            .unwrap(),
        "exists"
    );
    let mut upper = alice("example.net", "c");
    upper.domain = "Example.NET".into();
    assert!(store.add_subscriber(&upper).await.unwrap());
    assert_eq!(
        store.subscribers(None).await.unwrap(),
        [alice("example.com", "a"), alice("example.net", "c")]
    );
    assert_eq!(
        store.subscribers(Some("EXAMPLE.NET")).await.unwrap(),
        [alice("example.net", "c")]
    );
    assert_eq!(store.subscribers(Some("example.org")).await.unwrap(), []);
    assert_eq!(
        store.subscriber("alice", "Example.NET").await.unwrap(),
        Some(alice("example.net", "c"))
    );
    assert_eq!(
        store.subscriber("Alice", "example.net").await.unwrap(),
        None
    );
    let new = Secrets::from_password("alice", "example.com", "new");
    assert!(store
        .set_secrets("alice", "EXAMPLE.com", &new)
        .await
        .unwrap());
    assert!(
        store
            .set_secrets("alice", "example.com", &new)
            .await
            .unwrap(),
        "unchanged, but there"
    );
    assert!(!store.set_secrets("bob", "example.com", &new).await.unwrap());
    let table = store.load_subscribers().await.unwrap();
    assert_eq!(table.get("alice", "example.com"), Some(&new));
    assert!(store
        .remove_subscriber("alice", "Example.Com")
        .await
        .unwrap());
    assert!(!store
        .remove_subscriber("alice", "example.com")
        .await
        .unwrap());
    drop(store);
    assert_eq!(
        db.open().await.subscribers(None).await.unwrap(),
        [alice("example.net", "c")]
    );
}

pub(super) async fn subscriber_count(db: &TestDb) {
    let store = db.open().await;
    assert_eq!(store.subscriber_count("example.com").await.unwrap(), 0);
    for name in ["a", "b", "c"] {
        let mut s = alice("example.com", name);
        s.username = name.into();
        store.add_subscriber(&s).await.unwrap();
    }
    store
        .add_subscriber(&alice("example.net", "x"))
        .await
        .unwrap();
    assert_eq!(store.subscriber_count("Example.COM").await.unwrap(), 3);
    assert_eq!(store.subscriber_count("example.net").await.unwrap(), 1);
    assert_eq!(store.subscriber_count("example.org").await.unwrap(), 0);
}

pub(super) async fn domains(db: &TestDb) {
    let store = db.open().await;
    assert_eq!(store.domains().await.unwrap(), Vec::<String>::new());
    assert!(store.add_domain("example.net").await.unwrap());
    assert!(store.add_domain("Example.COM").await.unwrap());
    assert!(!store.add_domain("EXAMPLE.com").await.unwrap(), "exists");
    assert_eq!(
        store.domains().await.unwrap(),
        ["example.com", "example.net"]
    );
    assert!(store.remove_domain("EXAMPLE.NET").await.unwrap());
    assert!(!store.remove_domain("example.net").await.unwrap());
    assert_eq!(store.domains().await.unwrap(), ["example.com"]);
}

pub(super) async fn aliases(db: &TestDb) {
    let store = db.open().await;
    let sales = alias("sales", "Example.COM", "alice");
    assert!(store.add_alias(&sales).await.unwrap());
    assert!(
        !store
            .add_alias(&alias("sales", "example.com", "bob"))
            .await
            .unwrap(),
        "exists"
    );
    assert!(store
        .add_alias(&alias("info", "example.com", "bob"))
        .await
        .unwrap());
    assert!(store
        .add_alias(&alias("sales", "example.net", "bob"))
        .await
        .unwrap());
    let mut stored = sales.clone();
    stored.domain = "example.com".into();
    assert_eq!(
        store.aliases(None).await.unwrap(),
        [
            alias("info", "example.com", "bob"),
            stored.clone(),
            alias("sales", "example.net", "bob"),
        ]
    );
    assert_eq!(
        store.aliases(Some("EXAMPLE.com")).await.unwrap(),
        [alias("info", "example.com", "bob"), stored]
    );
    assert!(store.remove_alias("sales", "EXAMPLE.COM").await.unwrap());
    assert!(!store.remove_alias("sales", "example.com").await.unwrap());
    assert!(!store.remove_alias("Info", "example.com").await.unwrap());
    assert_eq!(
        store.aliases(Some("example.com")).await.unwrap(),
        [alias("info", "example.com", "bob")]
    );
}

pub(super) async fn reopening_keeps_everything(db: &TestDb) {
    let store = db.open().await;
    let b = binding("sip:a@h", 100);
    store.apply(&[Change::Upsert(b.clone())]).await.unwrap();
    store
        .add_subscriber(&alice("example.com", "a"))
        .await
        .unwrap();
    store.add_domain("example.com").await.unwrap();
    store
        .add_alias(&alias("sales", "example.com", "alice"))
        .await
        .unwrap();
    store.checkpoint().await.unwrap();
    drop(store);
    let store = db.open().await;
    assert_eq!(store.load_all().await.unwrap(), [b]);
    assert_eq!(
        store.subscribers(None).await.unwrap(),
        [alice("example.com", "a")]
    );
    assert_eq!(store.domains().await.unwrap(), ["example.com"]);
    assert_eq!(
        store.aliases(None).await.unwrap(),
        [alias("sales", "example.com", "alice")]
    );
}

/// A secret is made once: later calls (another server sharing the database, a restart) get
/// the one stored first.
pub(super) async fn secrets(db: &TestDb) {
    let store = db.open().await;
    assert_eq!(store.secret("rr", "first").await.unwrap(), "first");
    assert_eq!(store.secret("rr", "second").await.unwrap(), "first");
    assert_eq!(store.secret("other", "x").await.unwrap(), "x");
    assert_eq!(
        db.open().await.secret("rr", "third").await.unwrap(),
        "first"
    );
}

/// RFC 5626: the flows of an instance (reg-id 1 and 2) share a Contact, and are two
/// bindings. A database of the release before (one binding per Contact) gains the key.
pub(super) async fn flows_of_one_instance_share_a_contact(db: &TestDb) {
    before_flows(
        db,
        "INSERT INTO location VALUES ('sip:alice@example.com', 'sip:a@h', 500, 100, 'c', 7, \
         '', 'udp:192.0.2.1:5060', NULL, NULL, 1); \
         INSERT INTO location VALUES ('sip:alice@example.com', 'sip:b@h', 500, 100, 'c', 7, \
         '', 'tcp:192.0.2.1:5060', NULL, '<urn:uuid:1>', 2)",
    )
    .await;
    let store = db.open().await;
    let old = bindings(&store).await;
    let reg_ids: Vec<_> = old.iter().map(|b| (b.contact.as_str(), b.reg_id)).collect();
    assert_eq!(
        reg_ids,
        [("sip:a@h", None), ("sip:b@h", Some(2))],
        "a reg-id without an instance meant nothing"
    );
    let mut second = old[1].clone();
    second.reg_id = Some(3);
    second.source = "tcp:192.0.2.1:5062".into();
    let mut plain = second.clone();
    (plain.reg_id, plain.instance) = (None, None);
    store
        .apply(&[
            Change::Upsert(second.clone()),
            Change::Upsert(plain.clone()),
        ])
        .await
        .unwrap();
    let mut all = bindings(&store).await;
    all.sort_by_key(|b| b.reg_id);
    assert_eq!(
        all,
        [
            old[0].clone(),
            plain.clone(),
            old[1].clone(),
            second.clone()
        ]
    );
    store
        .apply(&[remove(&old[1]), remove(&plain)])
        .await
        .unwrap();
    drop(store);
    assert_eq!(bindings(&db.open().await).await, [old[0].clone(), second]);
}

fn record(
    call_id: &str,
    caller: &str,
    dialled: &str,
    started_ms: u64,
    answered: bool,
) -> dialog::Cdr {
    dialog::Cdr {
        call_id: call_id.into(),
        caller: caller.into(),
        dialled: dialled.into(),
        reached: answered.then(|| "sip:bob@192.0.2.20:5060".to_owned()),
        started_ms,
        answered_ms: answered.then_some(started_ms + 2_000),
        ended_ms: started_ms + 62_000,
        status: if answered { 200 } else { 487 },
        ending: if answered {
            dialog::Ending::CalleeHungUp
        } else {
            dialog::Ending::NotAnswered
        },
    }
}

/// Call detail records: stored as given, listed newest first, by user (made or got, the
/// user named by its address-of-record whatever the URI's form), since a time.
pub(super) async fn call_records(db: &TestDb) {
    let store = db.open().await;
    let a = record(
        "c1",
        "sip:alice@example.com",
        "sip:bob@example.com",
        1_000,
        true,
    );
    let b = record(
        "c2",
        "<sip:carol@example.com>",
        "sip:%61lice@Example.COM;user=phone",
        5_000,
        false,
    );
    let long = "x".repeat(2000);
    let c = record(
        &long,
        "sip:dave@example.com",
        "sip:erin@example.com",
        9_000,
        true,
    );
    store
        .add_cdrs(&[a.clone(), b.clone(), c.clone()])
        .await
        .unwrap();
    store.add_cdrs(&[]).await.unwrap();
    let all = store.cdrs(None, 0, 10).await.unwrap();
    let ids: Vec<usize> = all.iter().map(|r| r.call_id.len()).collect();
    assert_eq!(ids, [512, 2, 2], "newest first, long text cut");
    assert_eq!(all[2], a);
    assert_eq!(all[1], b, "a missed call, read back as missed");
    let alices = store
        .cdrs(Some("sip:alice@example.com"), 0, 10)
        .await
        .unwrap();
    assert_eq!(alices, [b.clone(), a.clone()], "made and got");
    assert_eq!(store.cdrs(None, 4_000, 10).await.unwrap().len(), 2);
    assert_eq!(store.cdrs(None, 0, 1).await.unwrap().len(), 1);
    drop(store);
    assert_eq!(db.open().await.cdrs(None, 0, 10).await.unwrap().len(), 3);
}

fn dialog_saved(call_id: &str, to_tag: &str, caller_cseq: u32) -> dialog::Saved {
    let leg = |contact: &str, route: &str, hop: &str, cseq| dialog::Leg {
        contact: contact.into(),
        route: route.into(),
        hop: hop.into(),
        cseq,
    };
    dialog::Saved {
        key: dialog::CallKey {
            call_id: call_id.into(),
            from_tag: "ftag".into(),
        },
        to_tag: to_tag.into(),
        caller: "sip:alice@example.com".into(),
        dialled: "sip:bob@example.com".into(),
        started_ms: 1_700_000_000_000,
        answered_ms: 1_700_000_004_000,
        caller_leg: leg(
            "sip:alice@192.0.2.1:5060;ob",
            "<sip:edge.example.net;lr>, <sip:p2;lr>",
            "udp:192.0.2.1:5060",
            caller_cseq,
        ),
        callee_leg: leg(
            "sip:bob@192.0.2.2",
            "",
            "tcp:192.0.2.2:5060;via=192.0.2.2:40001",
            0,
        ),
        session_ms: (caller_cseq > 1).then_some(1_800_000),
        refreshed_ms: 1_700_000_004_000,
        profiles: vec!["alice@example.com".into(), "example.com".into()],
    }
}

/// The dialogs of calls in progress: the last change of each stays (saved again with a new
/// CSeq, or removed when it ended), written with the records of the calls that ended, and
/// read back after a reopening as they were.
pub(super) async fn dialogs_in_progress(db: &TestDb) {
    use dialog::Change;
    let store = db.open().await;
    let (a, b) = (dialog_saved("c1", "t1", 1), dialog_saved("c2", "t2", 1));
    let a2 = dialog_saved("c1", "t1", 5);
    let changes = [
        Change::Added(Box::new(a.clone())),
        Change::Added(Box::new(b.clone())),
        Change::Saved(Box::new(a2.clone())),
    ];
    store.record_calls(&[], &changes).await.unwrap();
    let mut stored = store.dialogs().await.unwrap();
    stored.sort_by(|x, y| x.key.call_id.cmp(&y.key.call_id));
    assert_eq!(stored, [a2.clone(), b.clone()]);
    // b ends: its record and its removal go together.
    let ended = Change::Ended {
        key: b.key.clone(),
        to_tag: b.to_tag.clone(),
    };
    let r = record(
        "c2",
        "sip:alice@example.com",
        "sip:bob@example.com",
        5_000,
        true,
    );
    store.record_calls(&[r], &[ended]).await.unwrap();
    drop(store);
    let store = db.open().await;
    assert_eq!(store.dialogs().await.unwrap(), [a2]);
    assert_eq!(store.cdrs(None, 0, 10).await.unwrap().len(), 1);
    // Saved and ended in one batch: nothing stays.
    let c = dialog_saved("c3", "t3", 1);
    let changes = [
        Change::Added(Box::new(c.clone())),
        Change::Ended {
            key: c.key.clone(),
            to_tag: c.to_tag.clone(),
        },
    ];
    store.record_calls(&[], &changes).await.unwrap();
    assert_eq!(store.dialogs().await.unwrap().len(), 1);
}

fn presence_sub(call_id: &str, cseq: u32) -> presence::Subscription {
    presence::Subscription {
        key: presence::SubKey {
            call_id: call_id.into(),
            from_tag: "wt".into(),
            package: presence::Package::Dialog,
            id: "7".into(),
        },
        our_tag: "ours".into(),
        presentity: "sip:alice@example.com".into(),
        presentity_uri: "sip:alice@example.com".into(),
        watcher: "sip:bob@example.com".into(),
        watcher_uri: "sip:bob@example.com;user=phone".into(),
        peer: presence::Peer {
            contact: "sip:bob@192.0.2.9:5060".into(),
            route: "<sip:p1;lr>".into(),
            hop: "udp:192.0.2.9:5060".into(),
        },
        expires_ms: 1_700_000_600_000,
        cseq,
        remote_cseq: 3,
        status: presence::Status::Pending,
    }
}

/// The presence server's subscriptions, publications and rules: the last change of each
/// stays, and all is read back after a reopening as it was.
pub(super) async fn presence_state(db: &TestDb) {
    use presence::{Change, Package, Rule, StoredPublication};
    let store = db.open().await;
    let (a, b) = (presence_sub("c1", 1), presence_sub("c2", 1));
    let a2 = presence_sub("c1", 600);
    let doc = StoredPublication {
        presentity: "sip:alice@example.com".into(),
        presentity_uri: "sip:alice@example.com".into(),
        package: Package::Presence,
        etag: "e1".into(),
        expires_ms: 1_700_000_300_000,
        body: "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\"/>".into(),
    };
    let changes = [
        Change::Subscription(Box::new(a.clone())),
        Change::Subscription(Box::new(b.clone())),
        Change::Subscription(Box::new(a2.clone())),
        Change::SubscriptionGone(b.key.clone()),
        Change::Publication(Box::new(doc.clone())),
    ];
    store.record_presence(&changes).await.unwrap();
    store
        .set_presence_rule(
            "sip:alice@example.com",
            "sip:eve@example.org",
            Some(Rule::Block),
        )
        .await
        .unwrap();
    store
        .set_presence_rule(
            "sip:alice@example.com",
            "sip:carol@example.org",
            Some(Rule::Allow),
        )
        .await
        .unwrap();
    store
        .set_presence_rule("sip:alice@example.com", "sip:carol@example.org", None)
        .await
        .unwrap();
    drop(store);
    let store = db.open().await;
    let (subs, pubs) = store.presence().await.unwrap();
    assert_eq!(subs, [a2]);
    assert_eq!(pubs, std::slice::from_ref(&doc));
    let rules = store.presence_rules().await.unwrap();
    assert_eq!(
        rules,
        [(
            "sip:alice@example.com".to_owned(),
            "sip:eve@example.org".to_owned(),
            Rule::Block
        )]
    );
    let gone = Change::PublicationGone {
        presentity: doc.presentity.clone(),
        etag: doc.etag.clone(),
    };
    store.record_presence(&[gone]).await.unwrap();
    assert!(store.presence().await.unwrap().1.is_empty());
}

/// Messages kept for users who are offline: read back in order after a reopening, bodies
/// byte for byte; removed ones gone.
pub(super) async fn offline_messages(db: &TestDb) {
    let store = db.open().await;
    let message = |id: u64, body: &[u8]| message_store::Stored {
        id,
        recipient: "sip:bob@example.com".into(),
        from: "\"Alice\" <sip:alice@example.com>;tag=a1".into(),
        to: "<sip:bob@example.com>".into(),
        content_type: "text/plain;charset=UTF-8".into(),
        body: body.to_vec(),
        received_ms: 1_700_000_000_000 + id,
        expires_ms: 1_700_604_800_000,
    };
    let kept = [
        message(2, "héllo ✓".as_bytes()),
        message(1, &[0, 159, 255, 10]),
        message(3, b"three"),
    ];
    for m in &kept {
        store.keep_message(m).await.unwrap();
    }
    store.remove_messages(&[3]).await.unwrap();
    drop(store);
    let store = db.open().await;
    assert_eq!(
        store.messages().await.unwrap(),
        [kept[1].clone(), kept[0].clone()]
    );
}
