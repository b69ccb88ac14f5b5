//! Transactions from first sight, suspend and resume, and "acknowledged means on disk":
//! a request waiting for DNS or for its bindings to be written is never routed twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use auth::{Secrets, Subscribers};
use registrar::Location;
use sip_message::{HeaderName, Message};

use crate::tests::{
    config, invite, msg, register, resolve, sent, udp, with_script, written, CALLER,
};
use crate::{Command, Core, ProxyConfig, Resume, Written};

const GW: &str = "192.0.2.55:5060";

/// An INVITE from alice to a gateway known by name only.
fn invite_gw(auth: &str) -> Message {
    msg(&format!(
        "INVITE sip:carol@gw.example.net SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKgw1\n\
From: <sip:alice@example.com>;tag=a\nTo: <sip:carol@gw.example.net>\nCall-ID: gw-1\nCSeq: 1 INVITE\n\
Max-Forwards: 70\n{auth}Content-Length: 0\n\n"
    ))
}

/// The default script's core, with alice a subscriber of example.com.
fn core_with_alice() -> Core {
    let core = Core::new(config(), Arc::new(Location::new()));
    let mut subs = Subscribers::new();
    let secrets = Secrets::from_password("alice", "example.com", "wonderland");
    subs.insert("alice", "example.com", secrets);
    core.set_subscribers(Arc::new(subs));
    core
}

/// Proxy-Authorization answering the 407 `challenge` for `uri`.
pub(crate) fn answer_challenge(challenge: &Message, uri: &str) -> String {
    let ch = challenge
        .auth_headers(HeaderName::ProxyAuthenticate)
        .filter_map(Result::ok)
        .find(|h| h.get("algorithm").as_deref() == Some("MD5"))
        .expect("an MD5 challenge");
    let (realm, nonce) = (ch.get("realm").unwrap(), ch.get("nonce").unwrap());
    let text = format!(
        "Digest username=\"alice\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"0\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c\""
    );
    let header = sip_message::header::AuthHeader::parse(&text).unwrap();
    let c = auth::Credentials::from_header(&header).unwrap();
    let ha1 = auth::ha1(auth::Algorithm::Md5, "alice", &realm, "wonderland");
    let response = auth::expected_response(&ha1, "INVITE", &c);
    text.replace("response=\"0\"", &format!("response=\"{response}\""))
}

/// What waits for the binding write among these commands.
fn write_asked(cmds: &[Command]) -> Resume {
    let then = cmds.iter().find_map(|c| match c {
        Command::Persist { then, .. } => *then,
        _ => None,
    });
    then.expect("a write that the answer waits for")
}

/// The requests among what the core sent, with where they went.
fn requests(cmds: Vec<Command>) -> Vec<(crate::Destination, Message)> {
    sent(cmds)
        .into_iter()
        .filter(|(_, m)| m.is_request())
        .collect()
}

fn statuses_to_caller(cmds: Vec<Command>) -> Vec<u16> {
    sent(cmds)
        .into_iter()
        .filter(|(d, _)| *d == udp(CALLER))
        .filter_map(|(_, m)| m.status())
        .collect()
}

/// An authenticated INVITE whose next hop waits for DNS: its credentials are checked once.
fn authenticated_invite_waiting_for_dns(core: &Core, now: Instant) -> (Message, Resume) {
    let first = core.handle_message(now, invite_gw(""), udp(CALLER));
    let challenge = sent(first).remove(0).1;
    assert_eq!(challenge.status(), Some(407));
    let creds = answer_challenge(&challenge, "sip:carol@gw.example.net");
    let mut text = String::from_utf8_lossy(&invite_gw("").to_bytes()).into_owned();
    text = text.replace("z9hG4bKgw1", "z9hG4bKgw2").replace(
        "Content-Length",
        &format!("Proxy-Authorization: {creds}\r\nContent-Length"),
    );
    let authed = Message::parse(text.into_bytes()).unwrap();
    let (hosts, then) = resolve(core.handle_message(now, authed.clone(), udp(CALLER)))
        .expect("a lookup of the gateway");
    assert_eq!(crate::tests::names(&hosts), ["gw.example.net"]);
    let gw = GW.parse::<std::net::SocketAddr>().unwrap().ip().to_string();
    crate::tests::answer_dns(core, now, &hosts[0], &[&gw]);
    (authed, then)
}

#[test]
fn an_authenticated_invite_waiting_for_dns_is_forwarded_not_challenged_again() {
    let core = core_with_alice();
    let now = Instant::now();
    let (_, then) = authenticated_invite_waiting_for_dns(&core, now);
    let out = sent(core.resume(now, then));
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].0, udp(GW), "forwarded, not challenged again");
    assert_eq!(core.auth_failures(), 0, "no failure counted toward a ban");
    // A second resume of the same wait does nothing.
    assert!(sent(core.resume(now, then)).is_empty());
}

#[test]
fn a_retransmission_while_dns_is_pending_is_absorbed_and_gets_100_trying() {
    let core = core_with_alice();
    let now = Instant::now();
    let (authed, then) = authenticated_invite_waiting_for_dns(&core, now);
    let before = core.active_transactions();
    let again = core.handle_message(now, authed, udp(CALLER));
    assert!(
        !again.iter().any(|c| matches!(c, Command::Resolve { .. })),
        "not routed again"
    );
    assert_eq!(statuses_to_caller(again), [100], "a sign of life");
    assert_eq!(core.active_transactions(), before);
    // Without a retransmission, 100 Trying goes after 200 ms anyway.
    let core = core_with_alice();
    let (_, _) = authenticated_invite_waiting_for_dns(&core, now);
    let t = core.next_timeout().expect("the 100 Trying timer");
    assert!(t <= now + Duration::from_millis(200));
    assert_eq!(statuses_to_caller(core.handle_timeouts(t)), [100]);
    let _ = then;
}

#[test]
fn resume_and_retransmission_racing_forward_the_invite_once() {
    for _ in 0..50 {
        let core = Arc::new(core_with_alice());
        let now = Instant::now();
        let (authed, then) = authenticated_invite_waiting_for_dns(&core, now);
        let retransmit = {
            let core = core.clone();
            std::thread::spawn(move || {
                (0..20)
                    .flat_map(|_| requests(core.handle_message(now, authed.clone(), udp(CALLER))))
                    .count()
            })
        };
        let resumed = requests(core.resume(now, then)).len();
        let retransmitted = retransmit.join().unwrap();
        assert_eq!(resumed + retransmitted, 1, "one INVITE downstream");
    }
}

#[test]
fn a_cancel_while_dns_is_pending_ends_the_call_before_it_rings() {
    let core = core_with_alice();
    let now = Instant::now();
    let (authed, then) = authenticated_invite_waiting_for_dns(&core, now);
    let cancel = String::from_utf8_lossy(&authed.to_bytes())
        .replacen("INVITE sip", "CANCEL sip", 1)
        .replace("1 INVITE", "1 CANCEL");
    let cancel = Message::parse(cancel.into_bytes()).unwrap();
    let mut codes = statuses_to_caller(core.handle_message(now, cancel, udp(CALLER)));
    codes.sort();
    assert_eq!(codes, [200, 487], "200 for the CANCEL, 487 for the INVITE");
    assert!(requests(core.resume(now, then)).is_empty(), "never rings");
}

#[test]
fn a_register_is_answered_once_its_bindings_are_written_and_retransmissions_get_the_same() {
    let core = Core::new(config(), Arc::new(Location::new()));
    let now = Instant::now();
    let reg = register_of("dan", "w1", 1, "192.0.2.30:5060", "");
    let src = udp("192.0.2.30:5060");
    let first = core.handle_message(now, reg.clone(), src);
    let then = write_asked(&first);
    assert!(sent(first).is_empty(), "no 200 before the write");
    let early = core.handle_message(now, reg.clone(), src);
    assert!(early.is_empty(), "a retransmission waits too: {early:?}");
    let ok = sent(core.persisted(now, then, Written::Stored));
    assert_eq!(ok[0].1.status(), Some(200));
    assert_eq!(core.active_transactions(), 0, "answered, forgotten");
    // Later, a retransmission is processed again: it changes nothing, and its answer still
    // waits for the writes before it.
    let again = core.handle_message(now, reg, src);
    assert!(
        matches!(&again[..], [Command::Persist { changes, .. }] if changes.is_empty()),
        "{again:?}"
    );
    let again = sent(written(&core, now, again, true));
    assert_eq!(again[0].1.to_bytes(), ok[0].1.to_bytes(), "the same 200");
}

/// Authorization answering the 401 `challenge` for alice, nonce count `nc`.
fn register_credentials(challenge: &Message, nc: u32) -> String {
    let ch = challenge
        .auth_headers(HeaderName::WwwAuthenticate)
        .filter_map(Result::ok)
        .find(|h| h.get("algorithm").as_deref() == Some("MD5"))
        .expect("an MD5 challenge");
    let (realm, nonce) = (ch.get("realm").unwrap(), ch.get("nonce").unwrap());
    let text = format!(
        "Digest username=\"alice\", realm=\"{realm}\", nonce=\"{nonce}\", \
         uri=\"sip:example.com\", response=\"0\", algorithm=MD5, qop=auth, nc={nc:08x}, cnonce=\"c\""
    );
    let header = sip_message::header::AuthHeader::parse(&text).unwrap();
    let c = auth::Credentials::from_header(&header).unwrap();
    let ha1 = auth::ha1(auth::Algorithm::Md5, "alice", &realm, "wonderland");
    let response = auth::expected_response(&ha1, "REGISTER", &c);
    text.replace("response=\"0\"", &format!("response=\"{response}\""))
}

#[test]
fn an_authenticated_register_whose_200_was_lost_gets_the_same_200_again() {
    let core = core_with_alice();
    let now = Instant::now();
    let src = udp(CALLER);
    let challenge = sent(core.handle_message(now, register_of("alice", "a1", 1, CALLER, ""), src));
    assert_eq!(challenge[0].1.status(), Some(401));
    let creds = register_credentials(&challenge[0].1, 1);
    let authed = |cseq: u32| {
        let auth = format!("Authorization: {creds}\n");
        register_of("alice", "a1", cseq, CALLER, &auth)
    };
    let answer = |at: Instant, reg: Message, from| {
        let out = sent(written(&core, at, core.handle_message(at, reg, from), true));
        out[0].1.status()
    };
    assert_eq!(answer(now, authed(2), src), Some(200));
    // Its 200 was lost: the retransmission, a while later, is not a replay.
    let later = now + Duration::from_secs(6);
    core.handle_timeouts(later);
    assert_eq!(answer(later, authed(2), src), Some(200));
    assert_eq!(core.auth_failures(), 0, "nothing counted toward a ban");
    // The same credentials in another request, or from elsewhere, are a replay; so is the
    // same request once no retransmission can come any more (64·T1).
    assert_eq!(answer(later, authed(3), src), Some(401));
    assert_eq!(answer(later, authed(2), udp("192.0.2.66:5060")), Some(401));
    let late = now + Duration::from_secs(34);
    core.handle_timeouts(late);
    assert_eq!(answer(late, authed(2), src), Some(401));
    assert_eq!(core.auth_failures(), 3);
}

#[test]
fn a_failed_write_is_answered_500_with_retry_after_and_taken_back() {
    let core = Core::new(config(), Arc::new(Location::new()));
    let now = Instant::now();
    let reg = |cseq: u32, contact: &str| register_of("dan", "w2", cseq, contact, "");
    let src = udp("192.0.2.30:5060");
    let contacts = || -> Vec<String> {
        let found = core.lookup(Instant::now(), "sip:dan@example.com");
        found.into_iter().map(|b| b.contact).collect()
    };
    // The answer to REGISTER `cseq` of `contact` once its write is `stored` (or failed).
    let answer = |cseq: u32, contact: &str, stored: bool| {
        let asked = core.handle_message(now, reg(cseq, contact), src);
        sent(written(&core, now, asked, stored)).remove(0).1
    };
    let out = answer(1, "192.0.2.30:5060", false);
    assert_eq!(out.status(), Some(500));
    assert_eq!(out.header_str("Retry-After").map(|h| h.value), Some("5"));
    assert!(contacts().is_empty(), "not stored, so not routed to");
    assert_eq!(answer(2, "192.0.2.30:5060", true).status(), Some(200));
    // A new contact whose write fails: the stored one is what stays.
    assert_eq!(answer(3, "192.0.2.99:5060", false).status(), Some(500));
    assert_eq!(contacts(), ["sip:dan@192.0.2.30:5060"]);
}

#[test]
fn registers_past_the_write_backlog_get_503_and_change_nothing() {
    let cfg = ProxyConfig {
        max_pending_writes: 2,
        ..config()
    };
    let core = Core::new(cfg, Arc::new(Location::new()));
    let now = Instant::now();
    let reg = |n: u32| register_of(&format!("u{n}"), &format!("b{n}"), 1, "192.0.2.31:5060", "");
    let src = udp("192.0.2.31:5060");
    let waiting: Vec<Vec<Command>> = (0..2)
        .map(|n| core.handle_message(now, reg(n), src))
        .collect();
    let shed = sent(core.handle_message(now, reg(2), src));
    assert_eq!(shed[0].1.status(), Some(503));
    assert!(shed[0].1.header_str("Retry-After").is_some());
    assert!(
        core.lookup(Instant::now(), "sip:u2@example.com").is_empty(),
        "not stored"
    );
    // Once a write completes, the next REGISTER is taken.
    let first = waiting.into_iter().next().unwrap();
    written(&core, now, first, true);
    let taken = written(&core, now, core.handle_message(now, reg(3), src), true);
    assert_eq!(sent(taken)[0].1.status(), Some(200));
}

#[test]
fn retransmissions_keep_one_timer_per_context() {
    let core = Core::new(config(), Arc::new(Location::new()));
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let t0 = Instant::now();
    sent(core.handle_message(t0, invite("bob", ""), udp(CALLER)));
    for i in 0..1000 {
        let t = t0 + Duration::from_millis(i);
        core.handle_message(t, invite("bob", ""), udp(CALLER));
    }
    assert_eq!(core.shards().timer_entries(), core.active_transactions());
}

#[test]
fn next_timeout_reads_no_lock() {
    let core = Arc::new(Core::new(config(), Arc::new(Location::new())));
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    sent(core.handle_message(Instant::now(), invite("bob", ""), udp(CALLER)));
    let guards: Vec<_> = (0..crate::shard::SHARDS)
        .map(|i| core.shards().lock(i))
        .collect();
    let (tx, rx) = std::sync::mpsc::channel();
    let c = core.clone();
    std::thread::spawn(move || tx.send(c.next_timeout()).unwrap());
    let next = rx.recv_timeout(Duration::from_secs(5));
    drop(guards);
    assert!(next
        .expect("answered while every shard is locked")
        .is_some());
}

/// Counts script log lines written while any shard was locked.
struct LockProbe {
    core: Arc<Core>,
    lines: std::sync::atomic::AtomicUsize,
    under_lock: std::sync::atomic::AtomicUsize,
}

impl tracing::Subscriber for LockProbe {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, e: &tracing::Event<'_>) {
        use std::sync::atomic::Ordering::SeqCst;
        if e.metadata().target() == "script" {
            self.lines.fetch_add(1, SeqCst);
            self.under_lock
                .fetch_add(self.core.shards().locked(), SeqCst);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn request_reply_and_failure_routes_run_without_a_shard_lock() {
    let core = Arc::new(with_script(
        r#"
request_route {
    if (is_method("REGISTER")) { save("location"); exit; }
    xlog("request");
    if (!lookup("location")) { sl_send_reply(404, "Not Found"); exit; }
    t_on_reply("SEEN");
    t_on_failure("BUSY");
    t_relay();
}
reply_route { xlog("reply"); }
onreply_route[SEEN] { xlog("seen"); }
failure_route[BUSY] { xlog("failure"); t_reply(480, "Gone"); }
"#,
    ));
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let probe = Arc::new(LockProbe {
        core: core.clone(),
        lines: Default::default(),
        under_lock: Default::default(),
    });
    let now = Instant::now();
    tracing::subscriber::with_default(probe.clone(), || {
        let fwd = requests(core.handle_message(now, invite("bob", ""), udp(CALLER))).remove(0);
        let busy = crate::tests::answer(&fwd.1, 486);
        let up = statuses_to_caller(core.handle_message(now, busy, udp("192.0.2.20:5060")));
        assert_eq!(up, [480]);
    });
    use std::sync::atomic::Ordering::SeqCst;
    assert_eq!(probe.lines.load(SeqCst), 4, "request, reply, seen, failure");
    assert_eq!(probe.under_lock.load(SeqCst), 0);
}

#[test]
fn bindings_are_dated_by_the_wall_clock_the_io_layer_gives() {
    let core = Core::new(config(), Arc::new(Location::new()));
    let now = Instant::now();
    let unix = 1_800_000_000;
    core.set_wall_clock(now, Duration::from_secs(unix));
    let reg = register_of("eve", "wall", 1, "192.0.2.30:5060", "Expires: 600\n");
    let later = now + Duration::from_secs(10);
    let stored: Vec<u64> = core
        .handle_message(later, reg, udp("192.0.2.30:5060"))
        .into_iter()
        .filter_map(|c| match c {
            Command::Persist { changes, .. } => Some(changes),
            _ => None,
        })
        .flatten()
        .filter_map(|c| match c {
            registrar::Change::Upsert(b) => Some(b.expires_at),
            registrar::Change::Remove { .. } => None,
        })
        .collect();
    assert_eq!(stored, [unix + 10 + 600]);
    assert_eq!(
        core.lookup(now + Duration::from_secs(609), "sip:eve@example.com")
            .len(),
        1
    );
    assert!(core
        .lookup(now + Duration::from_secs(611), "sip:eve@example.com")
        .is_empty());
}

#[test]
fn a_spoofed_invite_gets_one_challenge_not_a_burst_and_is_forgotten_after_t4() {
    let core = core_with_alice();
    let t0 = Instant::now();
    let first = sent(core.handle_message(t0, invite_gw(""), udp(CALLER)));
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].1.status(), Some(407));
    let mut more = Vec::new();
    while let Some(t) = core
        .next_timeout()
        .filter(|t| *t < t0 + Duration::from_secs(40))
    {
        more.extend(sent(core.handle_timeouts(t)));
    }
    assert!(more.is_empty(), "no retransmission of our own: {more:?}");
    assert_eq!(core.active_transactions(), 0, "forgotten after T4");
    // A retransmission within T4 gets the same challenge.
    let core = core_with_alice();
    let first = sent(core.handle_message(t0, invite_gw(""), udp(CALLER)));
    let again = sent(core.handle_message(t0 + Duration::from_secs(4), invite_gw(""), udp(CALLER)));
    assert_eq!(again[0].1.to_bytes(), first[0].1.to_bytes());
}

#[test]
fn past_max_transactions_requests_are_answered_without_state_and_not_relayed() {
    let cfg = ProxyConfig {
        max_transactions: 2,
        ..config()
    };
    let core = Core::new(cfg, Arc::new(Location::new()));
    let now = Instant::now();
    let reg = |n: u32| register_of(&format!("m{n}"), &format!("m{n}"), 1, "192.0.2.31:5060", "");
    let src = udp("192.0.2.31:5060");
    for n in 0..2 {
        core.handle_message(now, reg(n), src); // waiting for their writes
    }
    assert_eq!(core.active_transactions(), 2);
    let busy = sent(core.handle_message(now, reg(2), src));
    assert_eq!(busy[0].1.status(), Some(503));
    let nobody = sent(core.handle_message(now, invite("nobody", ""), udp(CALLER)));
    assert_eq!(nobody[0].1.status(), Some(404), "answered, statelessly");
    assert_eq!(core.active_transactions(), 2, "no state for either");
    assert!(core.lookup(now, "sip:m2@example.com").is_empty());
}

#[test]
fn a_wait_for_dns_that_never_ends_is_answered_503_after_64_t1() {
    let core = core_with_alice();
    let t0 = Instant::now();
    let (_, then) = authenticated_invite_waiting_for_dns(&core, t0);
    let mut codes = Vec::new();
    while let Some(t) = core
        .next_timeout()
        .filter(|t| *t <= t0 + Duration::from_secs(40))
    {
        codes.extend(statuses_to_caller(core.handle_timeouts(t)));
    }
    assert_eq!(codes, [100, 503]);
    assert!(requests(core.resume(t0, then)).is_empty(), "too late");
}

#[test]
fn a_cancel_during_a_stateless_forward_waiting_for_dns_stops_it() {
    let core = with_script(
        r#"
request_route {
    if (is_method("CANCEL")) { t_relay(); exit; }
    forward("sip:gw.example.org");
}
"#,
    );
    let now = Instant::now();
    let req = invite("bob", "");
    let (hosts, then) = resolve(core.handle_message(now, req.clone(), udp(CALLER))).unwrap();
    let t = core.next_timeout();
    assert!(
        t.is_none_or(|t| t > now + Duration::from_millis(200)),
        "no 100 Trying for a stateless forward"
    );
    let cancel = String::from_utf8_lossy(&req.to_bytes())
        .replacen("INVITE sip", "CANCEL sip", 1)
        .replace("1 INVITE", "1 CANCEL");
    let cancel = Message::parse(cancel.into_bytes()).unwrap();
    let mut codes = statuses_to_caller(core.handle_message(now, cancel, udp(CALLER)));
    codes.sort();
    assert_eq!(codes, [200, 487]);
    crate::tests::answer_dns(&core, now, &hosts[0], &["192.0.2.99"]);
    assert!(
        requests(core.resume(now, then)).is_empty(),
        "not forwarded after its CANCEL"
    );
}

#[test]
fn a_response_with_no_via_below_ours_is_not_forwarded() {
    let core = Core::new(config(), Arc::new(Location::new()));
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let now = Instant::now();
    let fwd = requests(core.handle_message(now, invite("bob", ""), udp(CALLER)))
        .remove(0)
        .1;
    let ours = fwd
        .header(HeaderName::Via)
        .unwrap()
        .values()
        .next()
        .unwrap()
        .to_owned();
    let text = String::from_utf8_lossy(&crate::tests::answer(&fwd, 486).to_bytes()).into_owned();
    let only_ours: String = text
        .split("\r\n")
        .filter(|l| !l.starts_with("Via:"))
        .collect::<Vec<_>>()
        .join("\r\n")
        .replacen("\r\n", &format!("\r\nVia: {ours}\r\n"), 1);
    let resp = Message::parse(only_ours.into_bytes()).unwrap();
    assert_eq!(resp.vias().count(), 1);
    let up = statuses_to_caller(core.handle_message(now, resp, udp("192.0.2.20:5060")));
    assert!(
        up.is_empty(),
        "§16.7 step 3: meant for us, not forwarded: {up:?}"
    );
}

/// A REGISTER of `user`@example.com with Call-ID `call_id` and CSeq `cseq`, binding
/// `contact` (which it comes from), with `extra` header lines (each ending in `\n`).
fn register_of(user: &str, call_id: &str, cseq: u32, contact: &str, extra: &str) -> Message {
    msg(&format!(
        "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP {contact};branch=z9hG4bK{call_id}-{cseq}\n\
From: <sip:{user}@example.com>;tag=r\nTo: <sip:{user}@example.com>\nCall-ID: {call_id}\n\
CSeq: {cseq} REGISTER\nContact: <sip:{user}@{contact}>\n{extra}Content-Length: 0\n\n"
    ))
}

/// A sniffed REGISTER of alice, replayed from her (spoofed) source address within 64·T1
/// with another Contact (same Call-ID, CSeq, branch and credentials): not a retransmission,
/// so its nonce count is a replay.
#[test]
fn a_register_replayed_with_another_contact_is_not_taken_for_a_retransmission() {
    let core = core_with_alice();
    let now = Instant::now();
    let src = udp(CALLER);
    let challenge = sent(core.handle_message(now, register_of("alice", "a1", 1, CALLER, ""), src));
    let creds = register_credentials(&challenge[0].1, 1);
    let auth = format!("Authorization: {creds}\n");
    let legit = register_of("alice", "a1", 2, CALLER, &auth);
    let out = sent(written(
        &core,
        now,
        core.handle_message(now, legit.clone(), src),
        true,
    ));
    assert_eq!(out[0].1.status(), Some(200));
    // The attacker's copy: only the Contact differs; sent 10 s later from alice's address.
    let text = String::from_utf8_lossy(&legit.to_bytes()).replace(
        "<sip:alice@192.0.2.10:5060>",
        "<sip:alice@203.0.113.66:5060>",
    );
    let forged = Message::parse(text.into_bytes()).unwrap();
    let later = now + Duration::from_secs(10);
    let out = sent(written(
        &core,
        later,
        core.handle_message(later, forged, src),
        true,
    ));
    let contacts: Vec<String> = core
        .lookup(later, "sip:alice@example.com")
        .into_iter()
        .map(|b| b.contact)
        .collect();
    assert!(
        !contacts.iter().any(|c| c.contains("203.0.113.66")),
        "the attacker's contact was registered for alice ({:?}): {contacts:?}",
        out.first().and_then(|(_, m)| m.status())
    );
}

/// A sniffed authenticated INVITE, replayed from the caller's (spoofed) source with another
/// Via sent-by port (a new transaction key, the same Call-ID, CSeq and branch) and another
/// body: a replay, not a second call authorized as alice.
#[test]
fn an_invite_replayed_with_another_via_port_and_body_is_refused() {
    let core = core_with_alice();
    let now = Instant::now();
    let invite = |via: &str, auth: &str, body: &str| {
        let cseq = if auth.is_empty() { 1 } else { 2 };
        msg(&format!(
            "INVITE sip:carol@{GW} SIP/2.0\nVia: SIP/2.0/UDP {via};branch=z9hG4bKpay{cseq}\n\
From: <sip:alice@example.com>;tag=a\nTo: <sip:carol@{GW}>\nCall-ID: pay-1\nCSeq: {cseq} INVITE\n\
Max-Forwards: 70\n{auth}Content-Type: application/sdp\nContent-Length: {}\n\n{body}",
            body.len()
        ))
    };
    let challenge = sent(core.handle_message(now, invite(CALLER, "", ""), udp(CALLER)));
    assert_eq!(challenge[0].1.status(), Some(407));
    let creds = answer_challenge(&challenge[0].1, &format!("sip:carol@{GW}"));
    let auth = format!("Proxy-Authorization: {creds}\n");
    let raw = core.handle_message(now, invite(CALLER, &auth, "v=0\n"), udp(CALLER));
    let first = requests(raw);
    assert_eq!(first.len(), 1, "the legitimate call");
    let later = now + Duration::from_secs(20);
    let replay = invite("192.0.2.10:5070", &auth, "v=0\nc=IN IP4 203.0.113.66\n");
    let second = requests(core.handle_message(later, replay, udp(CALLER)));
    assert!(
        second.is_empty(),
        "a replayed INVITE was relayed as alice's: {second:?}"
    );
}

/// An ACK to a name not in the DNS cache waits in a context of its own: a stranger's flood
/// of them (no authentication, any source) stops at `max_transactions`.
#[test]
fn acks_waiting_for_dns_count_toward_max_transactions() {
    let cfg = ProxyConfig {
        max_transactions: 10,
        ..config()
    };
    let core = Core::new(cfg, Arc::new(Location::new()));
    let now = Instant::now();
    let mut lookups = 0;
    for n in 0..1000 {
        let ack = msg(&format!(
            "ACK sip:x@slow.attacker.example SIP/2.0\nVia: SIP/2.0/UDP 198.51.{}.{}:5060;branch=z9hG4bKack{n}\n\
From: <sip:m@evil.example>;tag=m\nTo: <sip:x@slow.attacker.example>;tag=t\nCall-ID: ack-{n}\nCSeq: 1 ACK\n\
Max-Forwards: 70\nContent-Length: 0\n\n",
            n / 250,
            n % 250 + 1
        ));
        let src = udp(&format!("198.51.{}.{}:5060", n / 250, n % 250 + 1));
        lookups += usize::from(resolve(core.handle_message(now, ack, src)).is_some());
    }
    assert!(
        core.active_transactions() <= 10,
        "{} contexts parked ({lookups} lookups asked) with max_transactions = 10",
        core.active_transactions()
    );
}

/// Not an open relay: a stranger's INVITE to another domain, claiming a foreign From or
/// carrying a To tag (and no Route of ours), is refused, with subscribers or without.
#[test]
fn a_stranger_is_not_relayed_to_another_domain() {
    let now = Instant::now();
    let open = Core::new(config(), Arc::new(Location::new()));
    for (core, from, totag) in [
        (core_with_alice(), "alice@example.com", ";tag=x"),
        (core_with_alice(), "mallory@evil.example", ""),
        (open, "mallory@evil.example", ""),
    ] {
        let req = msg(&format!(
            "INVITE sip:victim@198.51.100.9:5060 SIP/2.0\nVia: SIP/2.0/UDP 203.0.113.7:5060;branch=z9hG4bKopen{totag}\n\
From: <sip:{from}>;tag=m\nTo: <sip:victim@198.51.100.9>{totag}\nCall-ID: open-{from}\nCSeq: 1 INVITE\n\
Max-Forwards: 70\nContent-Length: 0\n\n"
        ));
        let out = sent(core.handle_message(now, req, udp("203.0.113.7:5060")));
        let codes: Vec<_> = out.iter().map(|(d, m)| (d.addr, m.status())).collect();
        let want = if totag.is_empty() { 403 } else { 404 };
        let stranger = "203.0.113.7:5060".parse().unwrap();
        assert_eq!(codes, [(stranger, Some(want))], "From {from}{totag}");
    }
}

/// A write that never ends (a database that hangs) does not hold the REGISTER for ever:
/// once no write ended for 64·T1 it is answered 500 with Retry-After and forgotten; its
/// slot comes back when the write does end.
#[test]
fn a_register_waiting_for_a_stalled_write_is_answered_500() {
    let cfg = ProxyConfig {
        max_pending_writes: 1,
        ..config()
    };
    let core = Core::new(cfg, Arc::new(Location::new()));
    let t0 = Instant::now();
    let src = udp("192.0.2.30:5060");
    let asked = core.handle_message(
        t0,
        register_of("dave", "hang", 1, "192.0.2.30:5060", ""),
        src,
    );
    let then = write_asked(&asked);
    let mut out = Vec::new();
    while let Some(t) = core
        .next_timeout()
        .filter(|t| *t < t0 + Duration::from_secs(3600))
    {
        out.extend(sent(core.handle_timeouts(t)));
    }
    let codes: Vec<_> = out.iter().map(|(d, m)| (*d, m.status())).collect();
    assert_eq!(codes, [(src, Some(500))]);
    assert!(out[0].1.header_str("Retry-After").is_some());
    assert_eq!(core.active_transactions(), 0, "forgotten");
    // The write ends at last: nothing more is sent, and the slot is free again.
    let late = t0 + Duration::from_secs(3600);
    assert!(sent(core.persisted(late, then, Written::Stored)).is_empty());
    let next = core.handle_message(
        late,
        register_of("erin", "e1", 1, "192.0.2.31:5060", ""),
        src,
    );
    assert!(
        matches!(next.first(), Some(Command::Persist { .. })),
        "{next:?}"
    );
}
