//! Interoperability with real clients against the default configuration with subscribers:
//! the softphones baresip and linphonec (driven on their consoles, `support/baresip.rs` and
//! `support/linphone.rs`), sipp and sipsak. `scripts/test.sh` installs them; these tests
//! fail, not skip, without them.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::baresip::Baresip;
use support::linphone::Linphone;
use support::phone::{Account, Seen};
use support::{free_port, Server};

/// Each subscriber's password.
fn password(user: &str) -> &'static str {
    match user {
        "alice" => "wonderland",
        "bob" => "builder",
        "carol" => "singer",
        _ => "dave's secret",
    }
}

/// Starts the server in its default configuration, listening on UDP and TCP on 127.0.0.1
/// (and on [::1] with `ipv6`), with `users` of `domain` as subscribers.
fn server(dir: &Path, domain: &str, users: &[&str], ipv6: bool) -> Server {
    let db = dir.join("ferrosip.db");
    let db = db.to_str().expect("utf-8 path");
    for user in users {
        let aor = format!("{user}@{domain}");
        let added = support::cli(
            &["user", "add", &aor, "--password-stdin", "--db", db],
            &format!("{}\n", password(user)),
        );
        assert!(added.ok, "{}", added.stderr);
    }
    let port = free_port();
    let mut listens = vec![
        format!("udp:127.0.0.1:{port}"),
        format!("tcp:127.0.0.1:{port}"),
    ];
    if ipv6 {
        listens.extend([format!("udp:[::1]:{port}"), format!("tcp:[::1]:{port}")]);
    }
    Server::start_listens(dir, port, &listens, &[])
}

/// `user@127.0.0.1` signing in over `transport` to the server's IPv4 address.
fn account<'a>(s: &Server, user: &'a str, transport: &'a str) -> Account<'a> {
    Account {
        user,
        domain: "127.0.0.1",
        password: password(user),
        proxy: s.addr(),
        transport,
    }
}

/// `ferrosip location show`: one line per binding, its address-of-record first.
fn bindings(dir: &Path) -> String {
    let db = dir.join("ferrosip.db");
    let shown = support::cli(
        &["location", "show", "--db", db.to_str().expect("utf-8 path")],
        "",
    );
    assert!(shown.ok, "{}", shown.stderr);
    shown.stdout
}

fn has_binding(bindings: &str, aor: &str) -> bool {
    bindings.lines().any(|l| l.starts_with(&format!("{aor}\t")))
}

/// baresip as alice and linphonec as bob, registered over UDP, alice's messages to bob.
fn alice_and_bob(s: &Server) -> (Baresip, Linphone) {
    let alice = Baresip::start(&account(s, "alice", "udp"), "sip:bob@127.0.0.1");
    let bob = Linphone::start(&account(s, "bob", "udp"));
    (alice, bob)
}

/// alice calls bob at `uri`, who answers: the call is up on both phones.
fn call_up(alice: &mut Baresip, bob: &mut Linphone, uri: &str) -> u32 {
    alice.dial(uri);
    let id = bob.incoming();
    bob.send(&format!("answer {id}"));
    alice.expect("Call established");
    bob.expect("connected");
    id
}

#[test]
fn every_client_registers_with_its_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = server(
        dir.path(),
        "127.0.0.1",
        &["alice", "bob", "carol", "dave"],
        false,
    );
    let _phones = alice_and_bob(&s);
    // sipsak names the server as outbound proxy (it mangles a port in the Request-URI).
    let sipsak = std::process::Command::new("sipsak")
        .args([
            "-U",
            "-vv",
            "-x",
            "600",
            "-u",
            "carol",
            "-a",
            password("carol"),
        ])
        .args(["-C", &format!("sip:carol@127.0.0.1:{}", free_port())])
        .args(["-s", "sip:carol@127.0.0.1"])
        .args(["-p", &format!("127.0.0.1:{}", s.port)])
        .output()
        .expect("sipsak runs (scripts/test.sh installs it)");
    assert!(
        sipsak.status.success(),
        "sipsak: {}",
        String::from_utf8_lossy(&sipsak.stdout)
    );
    // sipp answers the 401 with its [authentication] for -au/-ap.
    let mut sipp = support::sipp::sipp(
        Some(&s),
        "register_auth.xml",
        "dave",
        free_port(),
        &[("status", "200")],
    );
    sipp.args(["-au", "dave", "-ap", password("dave")]);
    assert!(support::sipp::run(sipp), "sipp did not register");
    let shown = bindings(dir.path());
    for user in ["alice", "bob", "carol", "dave"] {
        assert!(
            has_binding(&shown, &format!("sip:{user}@127.0.0.1")),
            "{user}: {shown}"
        );
    }
}

#[test]
fn baresip_calls_linphone_with_audio_both_ways() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = server(dir.path(), "127.0.0.1", &["alice", "bob"], false);
    let (mut alice, mut bob) = alice_and_bob(&s);
    call_up(&mut alice, &mut bob, "sip:bob@127.0.0.1");
    talk_and_hang_up(&mut alice, &mut bob);
}

/// Lets a call of alice and bob run for 3 s, then alice hangs up: each phone counted at
/// least 100 RTP packets sent and 100 received (3 s of 20 ms packets is 150).
fn talk_and_hang_up(alice: &mut Baresip, bob: &mut Linphone) {
    std::thread::sleep(Duration::from_secs(3));
    let at_alice = alice.rtp();
    alice.send("/hangup");
    bob.expect("ended");
    let at_bob = bob.rtp();
    for (phone, rtp) in [("baresip", at_alice), ("linphonec", at_bob)] {
        assert!(
            rtp.sent >= 100 && rtp.received >= 100,
            "{phone} counted {rtp:?}"
        );
    }
}

#[test]
fn hold_and_resume_from_either_phone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = server(dir.path(), "127.0.0.1", &["alice", "bob"], false);
    let (mut alice, mut bob) = alice_and_bob(&s);
    let id = call_up(&mut alice, &mut bob, "sip:bob@127.0.0.1");
    alice.send("/hold");
    bob.expect(&format!("Call {id} has been paused by"));
    alice.send("/resume");
    bob.expect("Media streams established");
    bob.send(&format!("pause {id}"));
    bob.expect(&format!("Call {id} with sip:alice@127.0.0.1 is now paused"));
    alice.expect("got re-INVITE");
    bob.send(&format!("resume {id}"));
    alice.expect("got re-INVITE");
    bob.expect("Media streams established");
    // Audio flows again after the resumes.
    let before = alice.rtp();
    std::thread::sleep(Duration::from_secs(1));
    let after = alice.rtp();
    assert!(
        after.received >= before.received + 25,
        "baresip received {before:?} then {after:?}"
    );
    alice.send("/hangup");
    bob.expect("ended");
}

#[test]
fn caller_cancels_a_ringing_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = server(dir.path(), "127.0.0.1", &["alice", "bob"], false);
    let (mut alice, mut bob) = alice_and_bob(&s);
    alice.dial("sip:bob@127.0.0.1");
    let id = bob.incoming();
    alice.expect("180 Ringing");
    alice.send("/hangup");
    bob.expect(&format!("Call {id} with sip:alice@127.0.0.1 ended"));
    let seen = bob.trace();
    assert!(
        seen.iter().any(|m| !m.sent && m.is("CANCEL")),
        "linphonec got no CANCEL: {seen:#?}"
    );
    wait_for_trace(
        || alice.trace(),
        |m| !m.sent && m.start.starts_with("SIP/2.0 487"),
    );
}

#[test]
fn callee_rejects_with_486() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = server(dir.path(), "127.0.0.1", &["alice", "bob"], false);
    let (mut alice, mut bob) = alice_and_bob(&s);
    bob.send("call sip:alice@127.0.0.1");
    alice.expect("Incoming call from");
    // baresip answers a call it hangs up before answering with 486.
    alice.send("/hangup");
    bob.expect("Call 1 with sip:alice@127.0.0.1 error");
    wait_for_trace(
        || bob.trace(),
        |m| !m.sent && m.start.starts_with("SIP/2.0 486"),
    );
    // The server acknowledged the 486 to baresip (hop by hop).
    wait_for_trace(|| alice.trace(), |m| !m.sent && m.is("ACK"));
}

#[test]
fn message_both_ways() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = server(dir.path(), "127.0.0.1", &["alice", "bob"], false);
    let (mut alice, mut bob) = alice_and_bob(&s);
    alice.message("hello-bob");
    bob.expect("Message received from sip:alice@127.0.0.1: hello-bob");
    bob.send("chat sip:alice@127.0.0.1 \"hello alice\"");
    alice.expect("\"hello alice\"");
}

#[test]
fn unregister_removes_the_bindings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = server(dir.path(), "127.0.0.1", &["alice", "bob"], false);
    let (mut alice, mut bob) = alice_and_bob(&s);
    let shown = bindings(dir.path());
    assert!(
        has_binding(&shown, "sip:alice@127.0.0.1") && has_binding(&shown, "sip:bob@127.0.0.1"),
        "{shown}"
    );
    bob.send("unregister");
    // baresip unregisters as it quits.
    alice.send("/quit");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let shown = bindings(dir.path());
        if shown.trim().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "bindings left: {shown}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// baresip registered over TCP calls linphonec listening on UDP only, and back.
#[test]
fn tcp_phone_calls_udp_phone_and_back() {
    calls_across_transports("TCP", "UDP");
}

/// baresip registered over UDP calls linphonec listening on TCP only, and back.
#[test]
fn udp_phone_calls_tcp_phone_and_back() {
    calls_across_transports("UDP", "TCP");
}

/// baresip (alice) over one transport calls linphonec (bob) over the other, which hangs up;
/// then bob calls alice, who hangs up. Every message of each phone, ACK and BYE of both
/// calls included, stays on that phone's transport.
fn calls_across_transports(baresip: &str, linphone: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = server(dir.path(), "127.0.0.1", &["alice", "bob"], false);
    let (alice_transport, bob_transport) = (baresip.to_lowercase(), linphone.to_lowercase());
    let mut alice = Baresip::start(&account(&s, "alice", &alice_transport), "sip:bob@127.0.0.1");
    let mut bob = Linphone::start(&account(&s, "bob", &bob_transport));
    let id = call_up(&mut alice, &mut bob, "sip:bob@127.0.0.1");
    bob.send(&format!("terminate {id}"));
    alice.expect("session closed");
    let (ack, bye) = ((true, "ACK"), (true, "BYE"));
    let received = |(_, method)| (false, method);
    on_transport("baresip", || alice.trace(), baresip, &[ack, received(bye)]);
    on_transport("linphonec", || bob.trace(), linphone, &[received(ack), bye]);

    bob.send("call sip:alice@127.0.0.1");
    alice.accept();
    bob.expect("connected");
    alice.expect("Call established");
    alice.send("/hangup");
    bob.expect("ended");
    let all = [ack, bye, received(ack), received(bye)];
    on_transport("baresip", || alice.trace(), baresip, &all);
    on_transport("linphonec", || bob.trace(), linphone, &all);
}

/// Asserts that every message in `phone`'s trace went over `transport`, and that it sent
/// (true) or received (false) a request of each of these methods (within 5 s: a phone's log
/// is written behind its console).
fn on_transport(
    phone: &str,
    trace: impl Fn() -> Vec<Seen>,
    transport: &str,
    requests: &[(bool, &str)],
) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let seen = loop {
        let seen = trace();
        let missing = requests
            .iter()
            .find(|&&(sent, method)| !seen.iter().any(|m| m.sent == sent && m.is(method)));
        match missing {
            None => break seen,
            Some(&(sent, method)) if Instant::now() > deadline => panic!(
                "{phone} {} no {method}: {seen:#?}",
                if sent { "sent" } else { "received" }
            ),
            Some(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let astray: Vec<&Seen> = seen.iter().filter(|m| m.transport != transport).collect();
    assert!(
        astray.is_empty(),
        "{phone} (on {transport}) also used: {astray:#?}"
    );
}

#[test]
fn call_over_ipv6() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = server(dir.path(), "[::1]", &["alice", "bob"], true);
    let proxy = format!("[::1]:{}", s.port).parse().expect("address");
    let v6 = |user| Account {
        user,
        domain: "[::1]",
        password: password(user),
        proxy,
        transport: "udp",
    };
    let mut alice = Baresip::start(&v6("alice"), "sip:bob@[::1]");
    let mut bob = Linphone::start(&v6("bob"));
    call_up(&mut alice, &mut bob, "sip:bob@[::1]");
    talk_and_hang_up(&mut alice, &mut bob);
    let seen = bob.trace();
    assert!(
        seen.iter().any(|m| !m.sent && m.is("BYE")),
        "linphonec got no BYE: {seen:#?}"
    );
}

/// Waits up to 5 s for a message matching `found` in what `trace` returns.
fn wait_for_trace(trace: impl Fn() -> Vec<Seen>, found: impl Fn(&Seen) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let seen = trace();
        if seen.iter().any(&found) {
            return;
        }
        assert!(Instant::now() < deadline, "not in the trace: {seen:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
