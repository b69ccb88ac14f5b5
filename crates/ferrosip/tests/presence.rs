//! Presence and instant messages with real phones against the default configuration with
//! subscribers: baresip watching another's presence (its presence module subscribes; the
//! server notifies from registrations and calls, since baresip publishes nothing by
//! default), a watcher its presentity blocked, and messages to a user who is offline,
//! delivered when it registers. `scripts/test.sh` installs baresip; these tests fail, not
//! skip, without it.

mod support;

use std::path::Path;

use support::baresip::Baresip;
use support::phone::Account;
use support::{free_port, Server, Ua};

fn password(user: &str) -> String {
    format!("{user}-secret")
}

/// The server in its default configuration on UDP and TCP 127.0.0.1, with `users` of
/// domain 127.0.0.1 as subscribers, and its API where `dir`'s configuration says (the
/// CLI's `--api --config CONFIG` reaches it).
fn server(dir: &Path, users: &[&str]) -> (Server, String) {
    let db = dir.join("ferrosip.db");
    let db = db.to_str().expect("utf-8 path");
    for user in users {
        let aor = format!("{user}@127.0.0.1");
        let added = support::cli(
            &["user", "add", &aor, "--password-stdin", "--db", db],
            &format!("{}\n", password(user)),
        );
        assert!(added.ok, "{}", added.stderr);
    }
    let api = format!("127.0.0.1:{}", free_port());
    let config = dir.join("ferrosip.toml");
    std::fs::write(&config, format!("[api]\nlisten = \"{api}\"\n")).expect("write");
    let config = config.to_str().expect("utf-8 path").to_owned();
    let port = free_port();
    let listens = [
        format!("udp:127.0.0.1:{port}"),
        format!("tcp:127.0.0.1:{port}"),
    ];
    let s = Server::start_listens(dir, port, &listens, &["--config", &config, "--api", &api]);
    (s, config)
}

fn account<'a>(s: &Server, user: &'a str, password: &'a str) -> Account<'a> {
    Account {
        user,
        domain: "127.0.0.1",
        password,
        proxy: s.addr(),
        transport: "udp",
    }
}

/// What baresip prints when a contact's presence changes to `status`.
fn now(status: &str) -> String {
    let colour = if status == "Online" { 32 } else { 31 };
    format!(" to \u{1b}[{colour}m{status}")
}

/// alice watches bob: online once he registers, busy while he talks (the server knows
/// from his call), online again when he hangs up, offline once he unregisters.
#[test]
fn a_watcher_sees_online_busy_and_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, _) = server(dir.path(), &["alice", "bob", "carol"]);
    let (pa, pb, pc) = (password("alice"), password("bob"), password("carol"));
    let mut bob = Baresip::start(&account(&s, "bob", &pb), "sip:carol@127.0.0.1");
    let mut alice = Baresip::start_watching(&account(&s, "alice", &pa), "sip:bob@127.0.0.1");
    alice.poll("/contacts", "Online");
    let mut carol = Baresip::start(&account(&s, "carol", &pc), "sip:bob@127.0.0.1");
    bob.dial("sip:carol@127.0.0.1");
    carol.accept();
    bob.expect("Call established");
    alice.expect(&now("Busy"));
    bob.send("/hangup");
    alice.expect(&now("Online"));
    bob.send("/quit");
    alice.expect(&now("Offline"));
}

/// bob blocks dave: dave's subscription is rejected and he never sees bob's state, while
/// alice, whom nothing blocks, does.
#[test]
fn a_blocked_watcher_gets_no_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, config) = server(dir.path(), &["alice", "bob", "dave"]);
    let cli = |args: &[&str]| support::cli(&[args, &["--api", "--config", &config]].concat(), "");
    let blocked = cli(&["presence", "block", "bob@127.0.0.1", "dave@127.0.0.1"]);
    assert!(blocked.ok, "{}", blocked.stderr);
    let (pa, pb, pd) = (password("alice"), password("bob"), password("dave"));
    let _bob = Baresip::start(&account(&s, "bob", &pb), "sip:alice@127.0.0.1");
    let mut dave = Baresip::start_watching(&account(&s, "dave", &pd), "sip:bob@127.0.0.1");
    dave.expect("rejected");
    let mut alice = Baresip::start_watching(&account(&s, "alice", &pa), "sip:bob@127.0.0.1");
    alice.poll("/contacts", "Online");
    dave.send("/contacts");
    dave.expect("--- Contacts");
    dave.expect("<sip:bob@127.0.0.1>");
    assert!(!dave.output().contains("Online"), "{}", dave.output());
    let rules = cli(&["presence", "rules", "bob@127.0.0.1"]);
    assert_eq!(
        rules.stdout,
        "sip:bob@127.0.0.1\tsip:dave@127.0.0.1\tblock\n"
    );
}

/// alice writes to bob while he is offline: each message is kept (202) and reaches him in
/// order once he registers; a restart of the server in between loses none.
#[test]
fn messages_to_an_offline_user_reach_it_when_it_registers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, config) = server(dir.path(), &["alice", "bob"]);
    let (pa, pb) = (password("alice"), password("bob"));
    let mut alice = Baresip::start(&account(&s, "alice", &pa), "sip:bob@127.0.0.1");
    alice.message("first, while you were out");
    alice.expect("202 Accepted");
    alice.message("second");
    alice.expect("202 Accepted");
    // A clean restart keeps them (the store has them).
    let port = s.port;
    assert!(s.terminate(), "a clean stop");
    let listens = [
        format!("udp:127.0.0.1:{port}"),
        format!("tcp:127.0.0.1:{port}"),
    ];
    let extra = ["--config", config.as_str()];
    let s = Server::start_listens(dir.path(), port, &listens, &extra);
    let mut bob = Baresip::start(&account(&s, "bob", &pb), "sip:alice@127.0.0.1");
    let first = bob.expect("\"first, while you were out\"");
    assert!(first.contains("sip:alice@127.0.0.1"), "from alice: {first}");
    bob.expect("\"second\"");
    // Delivered once: a new registration brings nothing again.
    drop(bob);
    let bob = Baresip::start(&account(&s, "bob", &pb), "sip:alice@127.0.0.1");
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(!bob.output().contains("second"), "{}", bob.output());
}

/// Subscribers' authentication applies: a SUBSCRIBE or PUBLISH in a subscriber's name
/// without credentials is challenged, a PUBLISH with a To tag too (it is no request inside
/// a dialog).
#[test]
fn presence_requests_are_authenticated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, _) = server(dir.path(), &["alice", "bob"]);
    let ua = Ua::new();
    let request = |method: &str, to: &str, n: u32| {
        let tag = if n > 2 { ";tag=forged" } else { "" };
        format!(
            "{method} sip:{to}@127.0.0.1 SIP/2.0\n\
             Via: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bKauth{n}\n\
             From: <sip:alice@127.0.0.1>;tag=a{n}\nTo: <sip:{to}@127.0.0.1>{tag}\n\
             Call-ID: auth-{n}\nCSeq: 1 {method}\nContact: <sip:alice@127.0.0.1:{p}>\n\
             Event: presence\nExpires: 600\nMax-Forwards: 70\nContent-Length: 0\n\n",
            p = ua.port
        )
    };
    ua.send(s.addr(), &request("SUBSCRIBE", "bob", 1));
    assert_eq!(ua.recv().status(), Some(407));
    ua.send(s.addr(), &request("PUBLISH", "alice", 2));
    assert_eq!(ua.recv().status(), Some(407));
    ua.send(s.addr(), &request("PUBLISH", "alice", 3));
    assert_eq!(ua.recv().status(), Some(407));
}
