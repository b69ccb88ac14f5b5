//! The proxy core driven in memory: messages and times in, commands out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use registrar::Location;
use sip_message::{Message, Protocol};

use crate::route_key::Holder;
use crate::{Command, Core, Destination, ProxyConfig, Written};

/// A configuration for tests: UDP and TCP on 192.0.2.1:5060, domain example.com.
pub(crate) fn config() -> ProxyConfig {
    ProxyConfig {
        domains: vec!["example.com".into(), "192.0.2.1".into()],
        hosted: Default::default(),
        advertised: vec![
            (Protocol::Udp, "192.0.2.1:5060".parse().expect("addr")),
            (Protocol::Tcp, "192.0.2.1:5060".parse().expect("addr")),
        ],
        timer_c: Duration::from_secs(180),
        timers: sip_transaction::TimerConfig::default(),
        registrar: registrar::RegistrarConfig::default(),
        agent: "ferrosip-test".into(),
        digest_algorithms: auth::Algorithm::ALL.to_vec(),
        realm_algorithms: Default::default(),
        nonce_lifetime: Duration::from_secs(300),
        trusted: Vec::new(),
        guard: crate::GuardConfig::default(),
        max_pending_writes: 64,
        max_transactions: 10_000,
        branch_secret: crate::BranchSecret(*b"ferrosip-testkey"),
        nonce_secret: crate::NonceSecret([9; 32]),
        media_optional: false,
        calls: dialog::Limits::default(),
        presence: presence::Config::default(),
        messages: message_store::Limits::default(),
        route_secret: crate::RouteSecret(*b"ferrosip-routeky"),
    }
}

pub(crate) const CALLER: &str = "192.0.2.10:5060";

/// `;rk=…`: the caller's copy of our Record-Route key for the dialog `call_id` begun with
/// From tag `tag`, for its requests to the remote target `target`.
pub(crate) fn rk_caller(call_id: &str, tag: &str, target: &str) -> String {
    rk_via(Holder::Caller, (call_id, tag), target, &[])
}

/// The callee's copy of [`rk_caller`]'s key, for its requests to the caller at `target`.
pub(crate) fn rk_callee(call_id: &str, tag: &str, target: &str) -> String {
    rk_via(Holder::Callee, (call_id, tag), target, &[])
}

/// A key for a route set that goes on through the proxies `routes` after us.
pub(crate) fn rk_via(
    holder: Holder,
    (call_id, tag): (&str, &str),
    target: &str,
    routes: &[&str],
) -> String {
    rk_of(holder, (call_id, tag, false), target, routes)
}

/// [`rk_caller`] for a dialog whose media goes through the relay (`;rtprelay`).
pub(crate) fn rk_caller_relayed(call_id: &str, tag: &str, target: &str) -> String {
    format!(
        ";rtprelay{}",
        rk_of(Holder::Caller, (call_id, tag, true), target, &[])
    )
}

/// [`rk_callee`] for a dialog whose media goes through the relay (`;rtprelay`).
pub(crate) fn rk_callee_relayed(call_id: &str, tag: &str, target: &str) -> String {
    format!(
        ";rtprelay{}",
        rk_of(Holder::Callee, (call_id, tag, true), target, &[])
    )
}

fn rk_of(holder: Holder, dialog: (&str, &str, bool), target: &str, routes: &[&str]) -> String {
    let uri = sip_message::Uri::parse(target).expect("target");
    let target = crate::route_key::Target::of(&uri).expect("SIP target");
    let secret = &config().route_secret;
    let token = crate::route_key::token(secret, dialog, holder, &target, routes);
    format!(";rk={token}")
}

pub(crate) fn udp(addr: &str) -> Destination {
    Destination::new(Protocol::Udp, addr.parse().expect("addr"))
}

pub(crate) fn core() -> Core {
    Core::new(config(), Arc::new(Location::new()))
}

/// A core that relays to other domains for CALLER, a trusted peer (the default script
/// does so only for authenticated subscribers and trusted peers).
pub(crate) fn relaying_core() -> Core {
    let cfg = ProxyConfig {
        trusted: vec!["192.0.2.10/32".parse().expect("net")],
        ..config()
    };
    Core::new(cfg, Arc::new(Location::new()))
}

/// A core running this script.
pub(crate) fn with_script(text: &str) -> Core {
    let script = crate::compile("test.cfg", text).unwrap_or_else(|e| panic!("{e}"));
    Core::with_script(config(), Arc::new(Location::new()), Arc::new(script))
}

pub(crate) fn msg(text: &str) -> Message {
    Message::parse(text.replace('\n', "\r\n").into_bytes()).expect("test message")
}

/// The messages sent, with their destinations.
pub(crate) fn sent(cmds: Vec<Command>) -> Vec<(Destination, Message)> {
    cmds.into_iter()
        .filter_map(|c| match c {
            Command::Send { dest, data } => Some((
                dest,
                Message::parse(data).expect("we send parsable messages"),
            )),
            Command::Persist { .. }
            | Command::Resolve { .. }
            | Command::Media { .. }
            | Command::KeepOpen { .. }
            | Command::Messages(_) => None,
        })
        .collect()
}

/// The lookups a command list asks for (their host names), and what waits for them.
pub(crate) fn resolve(cmds: Vec<Command>) -> Option<(Vec<crate::Lookup>, crate::Resume)> {
    cmds.into_iter().find_map(|c| match c {
        Command::Resolve { hosts, then } => Some((hosts, then)),
        _ => None,
    })
}

/// The host names of lookups.
pub(crate) fn names(lookups: &[crate::Lookup]) -> Vec<&str> {
    lookups.iter().map(|l| l.host.as_str()).collect()
}

/// Answers `lookup` with these IPs, at the port and over the transport its URI says (or
/// their defaults), as the IO layer does when no SRV record exists.
pub(crate) fn answer_dns(core: &Core, now: Instant, lookup: &crate::Lookup, ips: &[&str]) {
    let (protocol, port) = lookup.fallback(&lookup.plan(), &[]);
    let found = crate::Found {
        protocol,
        rank: 0,
        priority: 0,
        weight: 0,
        addrs: ips
            .iter()
            .map(|ip| std::net::SocketAddr::new(ip.parse().expect("ip"), port))
            .collect(),
    };
    core.dns_answer(now, lookup, vec![found], Duration::from_secs(60));
}

/// Handles a message and completes the binding writes it asks for.
pub(crate) fn handle(core: &Core, now: Instant, m: Message, src: Destination) -> Vec<Command> {
    written(core, now, core.handle_message(now, m, src), true)
}

/// Completes the binding writes a command list asks for (as written, or failed), and
/// gives the commands with what followed them.
pub(crate) fn written(core: &Core, now: Instant, cmds: Vec<Command>, stored: bool) -> Vec<Command> {
    let mut all = Vec::new();
    for c in cmds {
        let more = match &c {
            Command::Persist {
                then: Some(then),
                changes,
            } => {
                let written = match stored {
                    true => Written::Stored,
                    false => Written::Failed(changes),
                };
                core.persisted(now, *then, written)
            }
            _ => Vec::new(),
        };
        all.push(c);
        all.extend(more);
    }
    all
}

pub(crate) fn register(core: &Core, user: &str, contact: &str, q: &str) {
    let r = core.handle_message(
        Instant::now(),
        msg(&format!(
            "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP {contact};branch=z9hG4bKreg{user}{q}\n\
From: <sip:{user}@example.com>;tag=r\nTo: <sip:{user}@example.com>\nCall-ID: reg-{user}-{contact}\nCSeq: 1 REGISTER\n\
Contact: <sip:{user}@{contact}>;q={q}\nContent-Length: 0\n\n"
        )),
        udp(contact),
    );
    assert!(
        matches!(r.first(), Some(Command::Persist { .. })),
        "binding written before the answer"
    );
    assert!(
        !r.iter().any(|c| matches!(c, Command::Send { .. })),
        "no answer before the write"
    );
    let out = sent(written(core, Instant::now(), r, true));
    assert_eq!(out[0].1.status(), Some(200));
}

pub(crate) fn invite(user: &str, extra: &str) -> Message {
    invite_on("call1", user, extra)
}

/// An INVITE with its own transaction (Via branch `z9hG4bK<branch>`).
pub(crate) fn invite_on(branch: &str, user: &str, extra: &str) -> Message {
    msg(&format!(
        "INVITE sip:{user}@example.com SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK{branch}\n\
From: <sip:caller@example.net>;tag=c\nTo: <sip:{user}@example.com>\nCall-ID: call-1\nCSeq: 1 INVITE\n\
Contact: <sip:caller@192.0.2.10:5060>\nMax-Forwards: 70\n{extra}Content-Length: 0\n\n"
    ))
}

/// A response from a downstream element to a forwarded request.
pub(crate) fn answer(req: &Message, code: u16) -> Message {
    Message::parse(
        sip_message::ResponseBuilder::for_request(req, code, "X", Some("callee")).build(),
    )
    .expect("response")
}

#[test]
fn invite_is_forwarded_to_the_registered_contact() {
    let core = core();
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let before = core.active_transactions();
    let out = sent(core.handle_message(Instant::now(), invite("bob", ""), udp(CALLER)));
    assert_eq!(out.len(), 1, "no 100 Trying before the callee had 200 ms");
    let (dest, fwd) = &out[0];
    assert_eq!(*dest, udp("192.0.2.20:5060"));
    assert_eq!(fwd.request_uri_str(), Some("sip:bob@192.0.2.20:5060"));
    assert_eq!(fwd.max_forwards().unwrap(), Some(69));
    let vias: Vec<_> = fwd.vias().map(|v| v.unwrap()).collect();
    assert_eq!(vias.len(), 2);
    assert_eq!(vias[0].host_raw, "192.0.2.1");
    assert!(vias[0].branch().unwrap().starts_with("z9hG4bKfs-"));
    let rr = fwd.record_routes().next().unwrap().unwrap();
    let key = rk_callee("call-1", "c", "sip:caller@192.0.2.10:5060");
    assert_eq!(rr.uri.as_str(), format!("sip:192.0.2.1:5060;lr{key}"));
    assert_eq!(core.active_transactions(), before + 1);
}

/// A phone behind NAT (its Contact is not where its REGISTER came from) is reached at the
/// source of its REGISTER; the Contact stays the Request-URI.
#[test]
fn a_phone_behind_nat_is_reached_where_its_register_came_from() {
    let core = core();
    let now = Instant::now();
    const NAT: &str = "198.51.100.7:40000";
    let reg = msg(
        "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP 192.168.1.20:5060;rport;branch=z9hG4bKnat\n\
From: <sip:bob@example.com>;tag=r\nTo: <sip:bob@example.com>\nCall-ID: nat\nCSeq: 1 REGISTER\n\
Contact: <sip:bob@192.168.1.20:5060>\nContent-Length: 0\n\n",
    );
    let ok = sent(handle(&core, now, reg, udp(NAT)));
    assert_eq!((ok[0].0, ok[0].1.status()), (udp(NAT), Some(200)));
    let out = sent(core.handle_message(now, invite("bob", ""), udp(CALLER)));
    assert_eq!(out[0].0, udp(NAT));
    assert_eq!(
        out[0].1.request_uri_str(),
        Some("sip:bob@192.168.1.20:5060")
    );
}

/// A REGISTER whose Via names where it came from, for a Contact on another port of that
/// address (a third-party registration from the callee's host, as sipp's benchmark does),
/// is taken at its word; one whose Via names another port is a NAT's mapping.
#[test]
fn a_contact_on_another_port_of_a_via_that_names_the_source_is_no_nat() {
    let now = Instant::now();
    const FROM: &str = "198.51.100.7:5062";
    for (user, via, reached) in [
        ("bob", FROM, "198.51.100.7:5070"),
        ("carol", "198.51.100.7:5060", FROM),
    ] {
        let core = core();
        let reg = msg(&format!(
            "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP {via};branch=z9hG4bK{user}\n\
From: <sip:{user}@example.com>;tag=r\nTo: <sip:{user}@example.com>\nCall-ID: {user}\n\
CSeq: 1 REGISTER\nContact: <sip:{user}@198.51.100.7:5070>\nContent-Length: 0\n\n"
        ));
        let ok = sent(handle(&core, now, reg, udp(FROM)));
        assert_eq!(ok[0].1.status(), Some(200));
        let out = sent(core.handle_message(now, invite(user, ""), udp(CALLER)));
        assert_eq!(out[0].0, udp(reached), "{user}");
    }
}

/// A callee behind NAT answers with its private Contact: the caller gets the address we
/// reach it at, and a Record-Route key for that, so its ACK and BYE reach the callee.
#[test]
fn a_callee_behind_nat_is_reached_in_the_dialog() {
    let core = core();
    let now = Instant::now();
    const NAT: &str = "198.51.100.7:40000";
    let reg = msg(
        "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP 192.168.1.20:5060;rport;branch=z9hG4bKnat2\n\
From: <sip:bob@example.com>;tag=r\nTo: <sip:bob@example.com>\nCall-ID: nat2\nCSeq: 1 REGISTER\n\
Contact: <sip:bob@192.168.1.20:5060>\nContent-Length: 0\n\n",
    );
    sent(handle(&core, now, reg, udp(NAT)));
    let out = sent(core.handle_message(now, invite("bob", ""), udp(CALLER)));
    let fwd = &out[0].1;
    let mut ok = sip_message::ResponseBuilder::for_request(fwd, 200, "OK", Some("b"))
        .header("Contact", "<sip:bob@192.168.1.20:5060;ob>");
    for h in fwd.headers_named(sip_message::HeaderName::RecordRoute) {
        ok = ok.header("Record-Route", h.value);
    }
    let ok = Message::parse(ok.build()).expect("200");
    let up = sent(core.handle_message(now, ok, udp(NAT)));
    let ok = &up[0].1;
    let contact = ok
        .header(sip_message::HeaderName::Contact)
        .expect("Contact")
        .value;
    assert_eq!(contact, "<sip:bob@198.51.100.7:40000;ob>");
    // (A callee behind NAT: the default script relays the call's media.)
    let key = rk_caller_relayed("call-1", "c", "sip:bob@198.51.100.7:40000");
    let rr = ok
        .header(sip_message::HeaderName::RecordRoute)
        .expect("RR")
        .value;
    assert!(rr.contains(&key), "{rr}");
    let bye = msg(&format!(
        "BYE sip:bob@198.51.100.7:40000;ob SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKnatbye\n\
Route: <sip:192.0.2.1:5060;lr{key}>\nFrom: <sip:caller@example.net>;tag=c\n\
To: <sip:bob@example.com>;tag=b\nCall-ID: call-1\nCSeq: 2 BYE\nMax-Forwards: 70\nContent-Length: 0\n\n"
    ));
    let out = sent(core.handle_message(now, bye, udp(CALLER)));
    assert_eq!((out[0].0, out[0].1.status()), (udp(NAT), None));
}

/// A re-INVITE reaches a callee behind NAT through its NAT; its 200 names its private
/// Contact again (a target refresh): the caller gets the NAT's address instead, so that the
/// ACK and what follows still reach the callee.
#[test]
fn the_reply_of_a_phone_behind_nat_to_an_in_dialog_request_gets_its_contact_fixed() {
    let core = core();
    let now = Instant::now();
    const NAT: &str = "198.51.100.7:40000";
    let key = rk_caller("call-9", "c", "sip:bob@198.51.100.7:40000");
    let reinvite = msg(&format!(
        "INVITE sip:bob@198.51.100.7:40000 SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKrei\n\
Route: <sip:192.0.2.1:5060;lr{key}>\nFrom: <sip:caller@example.net>;tag=c\n\
To: <sip:bob@example.com>;tag=b\nCall-ID: call-9\nCSeq: 2 INVITE\nMax-Forwards: 70\n\
Contact: <sip:caller@192.0.2.10:5060>\nContent-Length: 0\n\n"
    ));
    let out = sent(core.handle_message(now, reinvite, udp(CALLER)));
    assert_eq!(out[0].0, udp(NAT), "{out:?}");
    let ok = sip_message::ResponseBuilder::for_request(&out[0].1, 200, "OK", None)
        .header("Contact", "<sip:bob@192.168.1.20:5060>");
    let ok = Message::parse(ok.build()).expect("200");
    let up = sent(core.handle_message(now, ok, udp(NAT)));
    let contact = up[0]
        .1
        .header(sip_message::HeaderName::Contact)
        .expect("Contact")
        .value;
    assert_eq!(contact, "<sip:bob@198.51.100.7:40000>");
}

/// Through another proxy that records its route, the reply comes from that proxy: a
/// private Contact is left as it is (the proxy's address is no way to the phone).
#[test]
fn the_reply_through_another_proxy_keeps_its_contact() {
    let core = core();
    let now = Instant::now();
    const PBX: &str = "198.51.100.9:5060";
    let key = rk_caller("call-10", "c", "sip:bob@198.51.100.9:5060");
    let reinvite = msg(&format!(
        "INVITE sip:bob@198.51.100.9:5060 SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKrei2\n\
Route: <sip:192.0.2.1:5060;lr{key}>\nFrom: <sip:caller@example.net>;tag=c\n\
To: <sip:bob@example.com>;tag=b\nCall-ID: call-10\nCSeq: 2 INVITE\nMax-Forwards: 70\n\
Contact: <sip:caller@192.0.2.10:5060>\nContent-Length: 0\n\n"
    ));
    let out = sent(core.handle_message(now, reinvite, udp(CALLER)));
    assert_eq!(out[0].0, udp(PBX), "{out:?}");
    let ok = sip_message::ResponseBuilder::for_request(&out[0].1, 200, "OK", None)
        .header("Record-Route", "<sip:198.51.100.9;lr>")
        .header("Contact", "<sip:bob@192.168.1.20:5060>");
    let ok = Message::parse(ok.build()).expect("200");
    let up = sent(core.handle_message(now, ok, udp(PBX)));
    let contact = up[0]
        .1
        .header(sip_message::HeaderName::Contact)
        .expect("Contact")
        .value;
    assert_eq!(contact, "<sip:bob@192.168.1.20:5060>");
}

#[test]
fn trying_goes_upstream_after_200_ms_or_on_a_retransmission_unless_the_callee_answered() {
    let core = core();
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let t0 = Instant::now();
    let upstream = |cmds| -> Vec<u16> {
        sent(cmds)
            .into_iter()
            .filter(|(d, _)| *d == udp(CALLER))
            .filter_map(|(_, m)| m.status())
            .collect()
    };
    sent(core.handle_message(t0, invite("bob", ""), udp(CALLER)));
    let ms = |n| t0 + Duration::from_millis(n);
    assert_eq!(upstream(core.handle_timeouts(ms(150))), Vec::<u16>::new());
    assert_eq!(upstream(core.handle_timeouts(ms(210))), [100]);
    // A retransmission before then gets it at once.
    let core = super::tests::core();
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    sent(core.handle_message(t0, invite("bob", ""), udp(CALLER)));
    assert_eq!(
        upstream(core.handle_message(ms(100), invite("bob", ""), udp(CALLER))),
        [100]
    );
    // A callee that rings first saves it.
    let core = super::tests::core();
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let out = sent(core.handle_message(t0, invite("bob", ""), udp(CALLER)));
    assert_eq!(
        upstream(core.handle_message(ms(50), answer(&out[0].1, 180), udp("192.0.2.20:5060"))),
        [180]
    );
    assert_eq!(upstream(core.handle_timeouts(ms(300))), Vec::<u16>::new());
}

#[test]
fn responses_go_upstream_without_our_via() {
    let core = core();
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let out = sent(core.handle_message(Instant::now(), invite("bob", ""), udp(CALLER)));
    let fwd = &out[0].1;
    for code in [180, 200] {
        let up =
            sent(core.handle_message(Instant::now(), answer(fwd, code), udp("192.0.2.20:5060")));
        assert_eq!(up.len(), 1, "{code}");
        assert_eq!((up[0].0, up[0].1.status()), (udp(CALLER), Some(code)));
        assert_eq!(up[0].1.vias().count(), 1);
    }
}

#[test]
fn cancel_reaches_the_branch_and_487_goes_upstream() {
    let core = core();
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let now = Instant::now();
    let fwd = sent(core.handle_message(now, invite("bob", ""), udp(CALLER)))
        .remove(0)
        .1;
    sent(core.handle_message(now, answer(&fwd, 180), udp("192.0.2.20:5060")));
    let cancel = msg(&format!(
        "CANCEL sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKcall1\n\
From: <sip:caller@example.net>;tag=c\nTo: <sip:bob@example.com>\nCall-ID: call-1\nCSeq: 1 CANCEL\n\
Max-Forwards: 70\nContent-Length: 0\n\n"
    ));
    let out = sent(core.handle_message(now, cancel, udp(CALLER)));
    assert_eq!(out[0].1.status(), Some(200), "CANCEL answered");
    let (dest, downstream_cancel) = &out[1];
    assert_eq!(*dest, udp("192.0.2.20:5060"));
    assert_eq!(
        downstream_cancel.method().map(|m| m.as_str()),
        Some("CANCEL")
    );
    assert_eq!(
        downstream_cancel.top_via().unwrap().branch(),
        fwd.top_via().unwrap().branch()
    );
    let out = sent(core.handle_message(now, answer(&fwd, 487), udp("192.0.2.20:5060")));
    let kinds: Vec<String> = out
        .iter()
        .map(|(_, m)| {
            m.method()
                .map_or_else(|| m.status().unwrap_or(0).to_string(), |x| x.to_string())
        })
        .collect();
    assert_eq!(kinds, ["ACK", "487"]);
}

#[test]
fn serial_forking_tries_the_lower_q_after_a_busy() {
    let core = core();
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    register(&core, "bob", "192.0.2.21:5060", "0.5");
    let now = Instant::now();
    let out = sent(core.handle_message(now, invite("bob", ""), udp(CALLER)));
    assert_eq!(out.len(), 1, "only the first q group is tried");
    let first = &out[0].1;
    let out = sent(core.handle_message(now, answer(first, 486), udp("192.0.2.20:5060")));
    let hops: Vec<(Destination, Option<&str>)> = out
        .iter()
        .map(|(d, m)| (*d, m.method().map(|x| x.as_str())))
        .collect();
    assert_eq!(
        hops,
        [
            (udp("192.0.2.20:5060"), Some("ACK")),
            (udp("192.0.2.21:5060"), Some("INVITE"))
        ]
    );
    let second = &out[1].1;
    let up = sent(core.handle_message(now, answer(second, 200), udp("192.0.2.21:5060")));
    assert_eq!(up[0].1.status(), Some(200));
}

#[test]
fn parallel_branches_and_best_response() {
    let core = core();
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    register(&core, "bob", "192.0.2.21:5060", "1.0");
    let now = Instant::now();
    let out = sent(core.handle_message(now, invite("bob", ""), udp(CALLER)));
    assert_eq!(out.len(), 2, "both branches at once");
    let (a, b) = (out[0].1.clone(), out[1].1.clone());
    assert!(
        sent(core.handle_message(now, answer(&a, 486), udp("192.0.2.20:5060")))
            .iter()
            .all(|(_, m)| m.is_request())
    );
    let up = sent(core.handle_message(now, answer(&b, 404), udp("192.0.2.21:5060")));
    let finals: Vec<u16> = up.iter().filter_map(|(_, m)| m.status()).collect();
    assert_eq!(
        finals,
        [404],
        "lowest class wins: 4xx, the first of them kept"
    );
}

#[test]
fn no_answer_times_out_with_408() {
    let core = core();
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let t0 = Instant::now();
    sent(core.handle_message(t0, invite("bob", ""), udp(CALLER)));
    let mut upstream = Vec::new();
    let mut t = t0;
    while let Some(next) = core
        .next_timeout()
        .filter(|n| *n < t0 + Duration::from_secs(40))
    {
        t = next.max(t);
        upstream.extend(
            sent(core.handle_timeouts(t))
                .into_iter()
                .filter(|(d, _)| *d == udp(CALLER)),
        );
    }
    let codes: Vec<u16> = upstream.iter().filter_map(|(_, m)| m.status()).collect();
    assert_eq!(codes.get(..2), Some(&[100, 408][..]), "{codes:?}");
}

#[test]
fn a_non_invite_nothing_answers_gets_no_408_and_is_freed() {
    // RFC 4320 §4.2: the client's own timer F has fired by then; a 408 would only add load.
    let core = core();
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let t0 = Instant::now();
    let message = msg(
        "MESSAGE sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKm1\n\
From: <sip:caller@example.net>;tag=c\nTo: <sip:bob@example.com>\nCall-ID: m-1\nCSeq: 1 MESSAGE\n\
Max-Forwards: 70\nContent-Length: 0\n\n",
    );
    let first = sent(core.handle_message(t0, message, udp(CALLER)));
    assert_eq!(first[0].0, udp("192.0.2.20:5060"), "relayed to bob");
    let mut upstream = Vec::new();
    while let Some(t) = core
        .next_timeout()
        .filter(|n| *n < t0 + Duration::from_secs(40))
    {
        let out = sent(core.handle_timeouts(t));
        upstream.extend(out.into_iter().filter(|(d, _)| *d == udp(CALLER)));
    }
    assert!(upstream.is_empty(), "nothing upstream: {upstream:?}");
    assert_eq!(core.active_transactions(), 0, "freed after timer F");
}

#[test]
fn checks_before_routing() {
    let core = core();
    let reply = |m: Message| {
        sent(core.handle_message(Instant::now(), m, udp(CALLER)))[0]
            .1
            .status()
    };
    assert_eq!(reply(invite("nobody", "")), Some(404));
    assert_eq!(
        reply(
            Message::parse(
                String::from_utf8_lossy(&invite_on("mf", "bob", "").to_bytes())
                    .replace("Max-Forwards: 70", "Max-Forwards: 0")
            )
            .expect("MF 0")
        ),
        Some(483)
    );
    assert_eq!(
        reply(invite_on("pr", "bob", "Proxy-Require: foo\n")),
        Some(420)
    );
    let tel = msg("OPTIONS tel:+123 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKt\nFrom: <sip:a@example.net>;tag=1\n\
To: <tel:+123>\nCall-ID: t\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n");
    assert_eq!(reply(tel), Some(416));
}

#[test]
fn a_request_that_loops_back_gets_482_but_a_spiral_does_not() {
    let core = relaying_core();
    let now = Instant::now();
    let foreign = msg(&format!(
        "OPTIONS sip:bob@192.0.2.99 SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKloop\n\
From: <sip:caller@example.net>;tag=c\nTo: <sip:bob@192.0.2.99>\nCall-ID: l\nCSeq: 1 OPTIONS\nMax-Forwards: 70\n\
Content-Length: 0\n\n"
    ));
    let fwd = sent(core.handle_message(now, foreign, udp(CALLER)))
        .remove(0)
        .1;
    // 192.0.2.99 sends it straight back, unchanged but for its own Via on top.
    let mut e = fwd.edit();
    e.push_front(
        sip_message::HeaderName::Via,
        "SIP/2.0/UDP 192.0.2.99;branch=z9hG4bKother",
    );
    let back = Message::parse(e.finish()).expect("looped request");
    let out = sent(core.handle_message(now, back, udp("192.0.2.99:5060")));
    assert_eq!(out[0].1.status(), Some(482));
    // A spiral (the Request-URI changed on the way) is no loop.
    register(&core, "loop", "192.0.2.1:5060", "1.0");
    let fwd = sent(core.handle_message(now, invite("loop", ""), udp(CALLER)))
        .remove(0)
        .1;
    let back = sent(core.handle_message(now, fwd, udp("192.0.2.1:5060")));
    assert_eq!(
        back[0].1.status(),
        Some(404),
        "sip:loop@192.0.2.1 is not registered"
    );
}

#[test]
fn loose_and_strict_routes() {
    let core = core();
    let now = Instant::now();
    // Loose: the top Route is us; the next Route is the next hop, Request-URI untouched.
    let key = rk_via(
        Holder::Caller,
        ("d", "c"),
        "sip:bob@192.0.2.20:5060",
        &["sip:192.0.2.30;lr"],
    );
    let loose = msg(&format!(
        "BYE sip:bob@192.0.2.20:5060 SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKbye\n\
Route: <sip:192.0.2.1:5060;lr{key}>, <sip:192.0.2.30;lr>\nFrom: <sip:caller@example.net>;tag=c\n\
To: <sip:bob@example.com>;tag=b\nCall-ID: d\nCSeq: 2 BYE\nMax-Forwards: 70\nContent-Length: 0\n\n"
    ));
    let out = sent(core.handle_message(now, loose, udp(CALLER)));
    let (dest, fwd) = &out[0];
    assert_eq!(*dest, udp("192.0.2.30:5060"));
    assert_eq!(fwd.request_uri_str(), Some("sip:bob@192.0.2.20:5060"));
    assert_eq!(fwd.routes().count(), 1);
    // Strict: the Request-URI is us; the last Route becomes the Request-URI.
    let key = rk_caller("e", "c", "sip:bob@192.0.2.20:5060");
    let strict = msg(&format!(
        "BYE sip:192.0.2.1:5060{key} SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKstrict\n\
Route: <sip:bob@192.0.2.20:5060>\nFrom: <sip:caller@example.net>;tag=c\n\
To: <sip:bob@example.com>;tag=b\nCall-ID: e\nCSeq: 2 BYE\nMax-Forwards: 70\nContent-Length: 0\n\n"
    ));
    let out = sent(core.handle_message(now, strict, udp(CALLER)));
    let (dest, fwd) = &out[0];
    assert_eq!(*dest, udp("192.0.2.20:5060"));
    assert_eq!(fwd.request_uri_str(), Some("sip:bob@192.0.2.20:5060"));
    assert_eq!(fwd.routes().count(), 0);
}

/// A new Contact in a re-INVITE, or in its 2xx, is followed for the other party only: its
/// requests, with the key it holds, pass there; the refreshing party's own key, and either
/// key to anywhere else, do not.
#[test]
fn targets_refreshed_in_a_dialog_are_followed_for_the_peer_only() {
    let core = core();
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let now = Instant::now();
    const CALLEE: &str = "192.0.2.20:5060";
    let key_in = |m: &Message| {
        let rr = m
            .header(sip_message::HeaderName::RecordRoute)
            .expect("RR")
            .value;
        let i = rr.find(";rk=").expect("rk");
        rr[i..i + 20].to_owned()
    };
    // The call: the callee's copy in the INVITE, the caller's in the 200.
    let out = sent(core.handle_message(now, invite("bob", ""), udp(CALLER)));
    let to_caller = key_in(&out[0].1);
    let ok = sip_message::ResponseBuilder::for_request(&out[0].1, 200, "OK", Some("b"))
        .header("Contact", "<sip:bob@192.0.2.20:5060>")
        .header(
            "Record-Route",
            &format!("<sip:192.0.2.1:5060;lr{to_caller}>"),
        )
        .build();
    let up = sent(core.handle_message(now, Message::parse(ok).expect("200"), udp(CALLEE)));
    let to_callee = key_in(&up[0].1);
    let n = std::cell::Cell::new(0);
    let request = |method: &str, uri: &str, key: &str, from: &str, to: &str, extra: &str| {
        n.set(n.get() + 1);
        let n = n.get();
        msg(&format!(
            "{method} {uri} SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKrf{n}\n\
Route: <sip:192.0.2.1:5060;lr{key}>\nFrom: <sip:x@example.net>;tag={from}\n\
To: <sip:y@example.com>;tag={to}\nCall-ID: call-1\nCSeq: {n} {method}\nMax-Forwards: 70\n\
{extra}Content-Length: 0\n\n"
        ))
    };
    let bye = |uri: &str, key: &str, from: &str, to: &str| {
        let out =
            sent(core.handle_message(now, request("BYE", uri, key, from, to, ""), udp(CALLER)));
        match out[0].1.status() {
            Some(code) => code.to_string(),
            None => out[0].0.addr.to_string(),
        }
    };
    let (moved_caller, moved_callee) = ("sip:a@198.51.100.5:5070", "sip:b@203.0.113.9:5080");
    assert_eq!(bye(moved_caller, &to_caller, "b", "c"), "404", "not before");
    // The caller moves in a re-INVITE; the callee answers it from a new Contact.
    let contact = format!("Contact: <{moved_caller}>\n");
    let reinvite = request(
        "INVITE",
        "sip:bob@192.0.2.20:5060",
        &to_callee,
        "c",
        "b",
        &contact,
    );
    let out = sent(core.handle_message(now, reinvite, udp(CALLER)));
    assert_eq!(out[0].0, udp(CALLEE));
    let ok = sip_message::ResponseBuilder::for_request(&out[0].1, 200, "OK", None)
        .header("Contact", &format!("<{moved_callee}>"))
        .build();
    sent(core.handle_message(now, Message::parse(ok).expect("200"), udp(CALLEE)));
    assert_eq!(bye(moved_caller, &to_caller, "b", "c"), "198.51.100.5:5070");
    assert_eq!(bye(moved_callee, &to_callee, "c", "b"), "203.0.113.9:5080");
    // Each key leads to its peer only, and nowhere else.
    assert_eq!(bye(moved_caller, &to_callee, "c", "b"), "404");
    assert_eq!(bye(moved_callee, &to_caller, "b", "c"), "404");
    let victim = "sip:victim@198.51.100.99";
    assert_eq!(bye(victim, &to_caller, "b", "c"), "404");
    assert_eq!(bye(victim, &to_callee, "c", "b"), "404");
    // The caller names a victim, as itself or claiming the callee's tag: its own key still
    // leads nowhere new (only the callee's requests would go there, as to any Contact the
    // caller names).
    let victim_contact = format!("Contact: <{victim}>\n");
    for (from, to) in [("c", "b"), ("b", "c")] {
        let uri = "sip:b@203.0.113.9:5080";
        let forged = request("INVITE", uri, &to_callee, from, to, &victim_contact);
        sent(core.handle_message(now, forged, udp(CALLER)));
        assert_eq!(bye(victim, &to_callee, "c", "b"), "404");
        assert_eq!(bye(victim, &to_callee, "b", "c"), "404");
    }
}

/// A request that spirals (a binding of one of our own addresses) is record-routed on each
/// pass, with a key of its own: the dialog's requests pass through us twice.
#[test]
fn a_spiral_is_record_routed_twice_and_its_requests_pass_both() {
    let core = core();
    const CAROL: &str = "192.0.2.30:5060";
    let now = Instant::now();
    let reg = msg(&format!(
        "REGISTER sip:192.0.2.1 SIP/2.0\nVia: SIP/2.0/UDP {CAROL};branch=z9hG4bKregc\n\
From: <sip:carol@192.0.2.1>;tag=r\nTo: <sip:carol@192.0.2.1>\nCall-ID: regc\nCSeq: 1 REGISTER\n\
Contact: <sip:carol@{CAROL}>\nContent-Length: 0\n\n"
    ));
    handle(&core, now, reg, udp(CAROL));
    let us = udp("192.0.2.1:5060");
    // bob's binding is carol's address-of-record at our own address (made by us: a Contact
    // that is not its REGISTER's source would count as behind NAT).
    let reg = msg(
        "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKregbob\n\
From: <sip:bob@example.com>;tag=r\nTo: <sip:bob@example.com>\nCall-ID: regbob\nCSeq: 1 REGISTER\n\
Contact: <sip:carol@192.0.2.1:5060>\nContent-Length: 0\n\n",
    );
    handle(&core, now, reg, us);
    let request = |out: Vec<Command>| {
        let out = sent(out);
        let shown = format!("{out:?}");
        out.into_iter()
            .find(|(_, m)| m.method().is_some())
            .unwrap_or_else(|| panic!("relayed: {shown}"))
    };
    let (d, spiral) = request(core.handle_message(now, invite("bob", ""), udp(CALLER)));
    assert_eq!(d, us, "spirals to us");
    let (d, to_carol) = request(core.handle_message(now, spiral, us));
    assert_eq!(d, udp(CAROL));
    let mut ok = sip_message::ResponseBuilder::for_request(&to_carol, 200, "OK", Some("C"))
        .header("Contact", "<sip:carol@192.0.2.30:5060>");
    for h in to_carol.headers_named(sip_message::HeaderName::RecordRoute) {
        ok = ok.header("Record-Route", h.value);
    }
    let ok = Message::parse(ok.build()).expect("200");
    let (_, ok) = sent(core.handle_message(now, ok, udp(CAROL))).remove(0);
    let (_, ok) = sent(core.handle_message(now, ok, us)).remove(0);
    assert_eq!(ok.status(), Some(200));
    // The caller's route set: the Record-Route reversed.
    let rr: Vec<String> = ok
        .headers_named(sip_message::HeaderName::RecordRoute)
        .flat_map(|h| h.values().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    assert_eq!(rr.len(), 2);
    let route: Vec<String> = rr.into_iter().rev().collect();
    let bye = msg(&format!(
        "BYE sip:carol@192.0.2.30:5060 SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKspbye\n\
Route: {}\nFrom: <sip:caller@example.net>;tag=c\nTo: <sip:bob@example.com>;tag=C\n\
Call-ID: call-1\nCSeq: 2 BYE\nMax-Forwards: 70\nContent-Length: 0\n\n",
        route.join(", ")
    ));
    let (d, bye) = request(core.handle_message(now, bye, udp(CALLER)));
    assert_eq!(d, us, "to our second entry");
    let (d, _) = request(core.handle_message(now, bye, us));
    assert_eq!(d, udp(CAROL));
}

/// RFC 5658: a call that comes in over TCP and leaves over UDP is record-routed twice, the
/// UDP entry (the callee's first hop) on top; each side's in-dialog requests come back
/// over its own transport and leave with both entries taken off; the TCP entry names the
/// caller's connection, over which the callee's requests reach it.
#[test]
fn a_call_changing_transport_is_record_routed_on_both_sides() {
    let core = core();
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let now = Instant::now();
    let tcp = Destination::new(Protocol::Tcp, CALLER.parse().expect("addr"));
    let invite_tcp = msg(&format!(
        "INVITE sip:bob@example.com SIP/2.0\nVia: SIP/2.0/TCP {CALLER};branch=z9hG4bKtcp\n\
From: <sip:caller@example.net>;tag=c\nTo: <sip:bob@example.com>\nCall-ID: call-1\nCSeq: 1 INVITE\n\
Contact: <sip:caller@192.0.2.10:5060;transport=tcp>\nMax-Forwards: 70\nContent-Length: 0\n\n"
    ));
    let out = sent(core.handle_message(now, invite_tcp, tcp));
    let (dest, fwd) = &out[0];
    assert_eq!(*dest, udp("192.0.2.20:5060"));
    let rr: Vec<String> = fwd
        .record_routes()
        .map(|r| r.unwrap().uri.as_str().to_owned())
        .collect();
    let key = rk_callee("call-1", "c", "sip:caller@192.0.2.10:5060");
    // The caller's entry names its connection (its dialog's requests go over it).
    let caller = CALLER.parse().expect("addr");
    let ft = crate::flow::token(&config().route_secret, Protocol::Tcp, caller, "call-1");
    assert_eq!(
        rr,
        [
            format!("sip:192.0.2.1:5060;lr{key}"),
            format!("sip:192.0.2.1:5060;transport=tcp;lr{key};ft={ft}")
        ]
    );
    // Bob's 200 echoes the Record-Routes; the caller's copy gets a key for Bob's Contact.
    let rr_values: Vec<String> = fwd
        .headers_named(sip_message::HeaderName::RecordRoute)
        .map(|h| h.value.to_owned())
        .collect();
    let mut ok = sip_message::ResponseBuilder::for_request(fwd, 200, "OK", Some("b"))
        .header("Contact", "<sip:bob@192.0.2.20:5060>");
    for v in &rr_values {
        ok = ok.header("Record-Route", v);
    }
    let up = sent(core.handle_message(
        now,
        Message::parse(ok.build()).unwrap(),
        udp("192.0.2.20:5060"),
    ));
    let key2 = rk_caller("call-1", "c", "sip:bob@192.0.2.20:5060");
    let rr: Vec<String> = up[0]
        .1
        .record_routes()
        .map(|r| r.unwrap().uri.as_str().to_owned())
        .collect();
    assert_eq!(
        rr,
        [
            format!("sip:192.0.2.1:5060;lr{key2}"),
            format!("sip:192.0.2.1:5060;transport=tcp;lr{key2};ft={ft}")
        ]
    );
    // Over one transport: one entry.
    let out = sent(core.handle_message(now, invite_on("same", "bob", ""), udp(CALLER)));
    assert_eq!(out[0].1.record_routes().count(), 1);
    // The callee's BYE (over UDP) carries the route set as it got it; the caller's contact
    // says TCP.
    let bye = msg(&format!(
        "BYE sip:caller@192.0.2.10:5060;transport=tcp SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bKbye2\n\
Route: <sip:192.0.2.1:5060;lr{key}>\nRoute: <sip:192.0.2.1:5060;transport=tcp;lr{key};ft={ft}>\nFrom: <sip:bob@example.com>;tag=b\n\
To: <sip:caller@example.net>;tag=c\nCall-ID: call-1\nCSeq: 1 BYE\nMax-Forwards: 70\nContent-Length: 0\n\n"
    ));
    let out = sent(core.handle_message(now, bye, udp("192.0.2.20:5060")));
    let (dest, fwd) = &out[0];
    let over_its_connection = Destination {
        connection: Some(caller),
        ..tcp
    };
    assert_eq!(
        *dest, over_its_connection,
        "to its Contact, over its connection"
    );
    assert_eq!(fwd.routes().count(), 0, "both of our entries are taken off");
    assert_eq!(fwd.vias().next().unwrap().unwrap().transport, "TCP");
    // The caller's ACK (over TCP) goes on over UDP.
    let ack = msg(&format!(
        "ACK sip:bob@192.0.2.20:5060;transport=udp SIP/2.0\nVia: SIP/2.0/TCP {CALLER};branch=z9hG4bKack2\n\
Route: <sip:192.0.2.1:5060;transport=tcp;lr{key2};ft={ft}>\nRoute: <sip:192.0.2.1:5060;lr{key2}>\nFrom: <sip:caller@example.net>;tag=c\n\
To: <sip:bob@example.com>;tag=b\nCall-ID: call-1\nCSeq: 1 ACK\nMax-Forwards: 70\nContent-Length: 0\n\n"
    ));
    let out = sent(core.handle_message(now, ack, tcp));
    let (dest, fwd) = &out[0];
    assert_eq!(*dest, udp("192.0.2.20:5060"));
    assert_eq!(fwd.routes().count(), 0);
}

#[test]
fn preloaded_route_on_an_initial_request_for_our_domain_is_not_followed() {
    let core = core();
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let out = sent(core.handle_message(
        Instant::now(),
        invite("bob", "Route: <sip:198.51.100.7;lr>\n"),
        udp(CALLER),
    ));
    let (dest, fwd) = &out[0];
    assert_eq!(*dest, udp("192.0.2.20:5060"));
    assert_eq!(fwd.routes().count(), 0);
}

#[test]
fn redirect_answers_302_with_the_registered_contacts() {
    let core = with_script(
        "request_route { if (is_method(\"REGISTER\")) { save(\"location\"); exit; }\n\
         if (!lookup(\"location\")) { sl_send_reply(404, \"Not Found\"); exit; }\n\
         redirect(); }",
    );
    register(&core, "bob", "192.0.2.20:5060", "0.7");
    let out = sent(core.handle_message(Instant::now(), invite("bob", ""), udp(CALLER)));
    let last = &out.last().unwrap().1;
    assert_eq!(last.status(), Some(302));
    let sip_message::header::Contact::Address(c) = last.contacts().next().unwrap().unwrap() else {
        panic!()
    };
    assert_eq!(
        (c.uri.as_str(), c.q()),
        ("sip:bob@192.0.2.20:5060", Some(700))
    );
}

#[test]
fn a_host_name_is_resolved_before_forwarding() {
    let core = relaying_core();
    let now = Instant::now();
    let req = msg(
        "OPTIONS sip:carol@Gw.Example.NET:5070 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKdns1\n\
From: <sip:a@example.com>;tag=a\nTo: <sip:carol@gw.example.net>\nCall-ID: dns-1\nCSeq: 1 OPTIONS\n\
Max-Forwards: 70\nContent-Length: 0\n\n",
    );
    let (hosts, then) =
        resolve(core.handle_message(now, req.clone(), udp(CALLER))).expect("a lookup");
    assert_eq!(names(&hosts), ["gw.example.net"]);
    // An IPv6 answer is skipped: we only listen on IPv4.
    answer_dns(&core, now, &hosts[0], &["2001:db8::5", "192.0.2.55"]);
    let out = sent(core.resume(now, then));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, udp("192.0.2.55:5070"));
    assert_eq!(
        out[0].1.request_uri_str(),
        Some("sip:carol@Gw.Example.NET:5070")
    );

    // A name that does not resolve: 503 to the caller, and no second lookup.
    let req = msg(&req_text_with_host("nx.example.net"));
    let (hosts, then) = resolve(core.handle_message(now, req, udp(CALLER))).unwrap();
    core.dns_answer(now, &hosts[0], vec![], Duration::ZERO);
    let cmds = core.resume(now, then);
    assert!(resolve_none(&cmds));
    let out = sent(cmds);
    assert_eq!(out[0].1.status(), Some(503));
}

#[test]
fn a_contact_with_a_host_name_is_resolved_before_forking() {
    let core = core();
    let now = Instant::now();
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let r = core.handle_message(
        now,
        msg("REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP phone.example.org:5062;branch=z9hG4bKr2\n\
From: <sip:bob@example.com>;tag=r\nTo: <sip:bob@example.com>\nCall-ID: reg-host\nCSeq: 1 REGISTER\n\
Contact: <sip:bob@phone.example.org:5062>\nContent-Length: 0\n\n"),
        udp("192.0.2.21:5062"),
    );
    assert_eq!(sent(written(&core, now, r, true))[0].1.status(), Some(200));
    let (hosts, then) = resolve(core.handle_message(now, invite("bob", ""), udp(CALLER))).unwrap();
    assert_eq!(names(&hosts), ["phone.example.org"]);
    answer_dns(&core, now, &hosts[0], &["192.0.2.21"]);
    let out = sent(core.resume(now, then));
    let mut dests: Vec<_> = out.iter().map(|(d, _)| d.addr.to_string()).collect();
    dests.sort();
    assert_eq!(dests, ["192.0.2.20:5060", "192.0.2.21:5062"]);
}

fn req_text_with_host(host: &str) -> String {
    format!(
        "OPTIONS sip:x@{host} SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK{host}\n\
From: <sip:a@example.com>;tag=a\nTo: <sip:x@{host}>\nCall-ID: dns-{host}\nCSeq: 1 OPTIONS\n\
Max-Forwards: 70\nContent-Length: 0\n\n"
    )
}

fn resolve_none(cmds: &[Command]) -> bool {
    !cmds.iter().any(|c| matches!(c, Command::Resolve { .. }))
}

/// RFC 3261 §18.1.1, to an address; a client registered over UDP keeps getting UDP.
#[test]
fn a_request_too_large_for_udp_goes_over_tcp() {
    let core = relaying_core();
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let sdp = "a=x\r\n".repeat(300);
    let big_to = |uri: &str, branch: &str| {
        let head = format!(
            "INVITE {uri} SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bK{branch}\n\
From: <sip:caller@example.net>;tag=c\nTo: <sip:bob@example.com>\nCall-ID: {branch}\nCSeq: 1 INVITE\n\
Max-Forwards: 70\nContent-Type: application/sdp\nContent-Length: {}\n\n",
            sdp.len()
        );
        Message::parse(head.replace('\n', "\r\n") + &sdp).unwrap()
    };
    let registered = big_to("sip:bob@example.com", "big0");
    let out = sent(core.handle_message(Instant::now(), registered, udp(CALLER)));
    assert_eq!(out[0].0, udp("192.0.2.20:5060"), "registered over UDP: UDP");
    let big = big_to("sip:bob@192.0.2.20:5060", "big");
    let out = sent(core.handle_message(Instant::now(), big, udp(CALLER)));
    let (dest, fwd) = &out[0];
    assert_eq!(dest.protocol, Protocol::Tcp);
    assert_eq!(dest.addr, "192.0.2.20:5060".parse().unwrap());
    assert_eq!(fwd.top_via().unwrap().transport, "TCP");
    // No TCP connection to the callee: the same request goes over UDP after all.
    let data = fwd.to_bytes();
    let retry = sent(core.send_failed(Instant::now(), *dest, data));
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].0, udp("192.0.2.20:5060"));
    assert_eq!(retry[0].1.top_via().unwrap().transport, "UDP");
    assert_eq!(retry[0].1.body().len(), sdp.len());
    // A small one stays on UDP.
    let out = sent(core.handle_message(Instant::now(), invite("bob", ""), udp(CALLER)));
    assert_eq!(out[0].0.protocol, Protocol::Udp);
}

#[test]
fn a_branch_that_cannot_be_sent_counts_as_503() {
    let core = relaying_core();
    let now = Instant::now();
    let req = msg(&format!(
        "OPTIONS sip:gw@192.0.2.40;transport=tcp SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKte\n\
From: <sip:a@example.com>;tag=a\nTo: <sip:gw@192.0.2.40>\nCall-ID: te\nCSeq: 1 OPTIONS\n\
Max-Forwards: 70\nContent-Length: 0\n\n"
    ));
    let out = sent(core.handle_message(now, req, udp(CALLER)));
    let (dest, fwd) = &out[0];
    assert_eq!(dest.protocol, Protocol::Tcp);
    let up = sent(core.send_failed(now, *dest, fwd.to_bytes()));
    assert_eq!(up.len(), 1);
    // §16.7 step 6: the best response is our 503, which goes upstream as 500.
    assert_eq!((up[0].0, up[0].1.status()), (udp(CALLER), Some(500)));
}

#[test]
fn timer_c_cancels_a_branch_that_rings_too_long() {
    let core = Core::new(
        ProxyConfig {
            timer_c: Duration::from_secs(200),
            ..config()
        },
        Arc::new(Location::new()),
    );
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let t0 = Instant::now();
    let fwd = sent(core.handle_message(t0, invite("bob", ""), udp(CALLER)))
        .remove(0)
        .1;
    // Ringing restarts timer C; nothing happens before it fires.
    let t1 = t0 + Duration::from_secs(10);
    let up = sent(core.handle_message(t1, answer(&fwd, 180), udp("192.0.2.20:5060")));
    assert_eq!(up[0].1.status(), Some(180));
    let early = sent(core.handle_timeouts(t1 + Duration::from_secs(199)));
    assert!(
        early
            .iter()
            .all(|(_, m)| m.method().is_none_or(|m| m.as_str() != "CANCEL")),
        "no CANCEL before timer C"
    );
    // Timer C fires: the branch is cancelled (§16.8); unanswered, it counts as 408.
    let t2 = t1 + Duration::from_secs(200);
    let out = sent(core.handle_timeouts(t2));
    let cancel = out
        .iter()
        .find(|(_, m)| m.method().is_some_and(|m| m.as_str() == "CANCEL"))
        .expect("CANCEL when timer C fires");
    assert_eq!(cancel.0, udp("192.0.2.20:5060"));
    assert_eq!(
        cancel.1.top_via().unwrap().branch(),
        fwd.top_via().unwrap().branch()
    );
    let up = sent(core.handle_message(t2, answer(&fwd, 487), udp("192.0.2.20:5060")));
    assert!(up
        .iter()
        .any(|(d, m)| *d == udp(CALLER) && m.status() == Some(408)));
}

#[test]
fn an_alias_reaches_the_contacts_of_its_address() {
    let core = core();
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let call = |branch, user| {
        let req = invite_on(branch, user, "");
        sent(core.handle_message(Instant::now(), req, udp(CALLER)))
    };
    assert_eq!(call("a1", "1000")[0].1.status(), Some(404), "no alias yet");
    core.set_aliases([("1000@example.com".to_owned(), "bob@example.com".to_owned())].into());
    let out = call("a2", "1000");
    assert_eq!(out[0].0, udp("192.0.2.20:5060"));
    assert_eq!(out[0].1.request_uri_str(), Some("sip:bob@192.0.2.20:5060"));
}

#[test]
fn a_hosted_domain_is_served_once_added() {
    let core = core();
    let reg = |n: u32| {
        core.handle_message(
            Instant::now(),
            msg(&format!(
                "REGISTER sip:Example.ORG SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.30:5060;branch=z9hG4bKh{n}\n\
From: <sip:carol@example.org>;tag=r\nTo: <sip:carol@example.org>\nCall-ID: h{n}\nCSeq: {n} REGISTER\n\
Contact: <sip:carol@192.0.2.30:5060>\nMax-Forwards: 70\nContent-Length: 0\n\n"
            )),
            udp("192.0.2.30:5060"),
        )
    };
    let refused = sent(reg(1));
    assert_eq!(
        refused[0].1.status(),
        Some(403),
        "not ours, and not an open relay"
    );
    core.config()
        .hosted
        .replace(["example.org".to_owned()].into());
    let ok = written(&core, Instant::now(), reg(2), true);
    assert_eq!(sent(ok)[0].1.status(), Some(200));
    assert_eq!(
        core.lookup(Instant::now(), "sip:carol@example.org").len(),
        1
    );
}

/// A core whose flood limit is 5 messages a second, with bob registered (two seconds ago)
/// and called: the forwarded INVITE, and the time of the call.
fn flooded_call(trusted: &[&str]) -> (Core, Message, Instant) {
    let guard = crate::GuardConfig {
        flood_limit: 5,
        ..crate::GuardConfig::default()
    };
    let trusted = trusted.iter().map(|n| n.parse().expect("net")).collect();
    let cfg = ProxyConfig {
        guard,
        trusted,
        ..config()
    };
    let core = Core::new(cfg, Arc::new(Location::new()));
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let t0 = Instant::now() + Duration::from_secs(2);
    let fwd = sent(core.handle_message(t0, invite("bob", ""), udp(CALLER)))
        .remove(0)
        .1;
    (core, fwd, t0)
}

#[test]
fn a_response_flood_from_one_source_is_cut() {
    let (core, fwd, t0) = flooded_call(&[]);
    let live = core.active_transactions();
    let from_bob =
        |t, code| sent(core.handle_message(t, answer(&fwd, code), udp("192.0.2.20:5060")));
    for _ in 0..5 {
        assert_eq!(from_bob(t0, 180).len(), 1, "within the limit");
    }
    assert!(
        from_bob(t0, 200).is_empty(),
        "the sixth in a second is dropped"
    );
    assert_eq!(core.active_transactions(), live, "the call goes on");
    let up = from_bob(t0 + Duration::from_secs(1), 200);
    assert_eq!(
        (up[0].0, up[0].1.status()),
        (udp(CALLER), Some(200)),
        "the next second"
    );
    // A trusted peer is not limited.
    let (core, fwd, t0) = flooded_call(&["192.0.2.16/28"]);
    let forwarded = (0..10)
        .map(|_| sent(core.handle_message(t0, answer(&fwd, 180), udp("192.0.2.20:5060"))))
        .filter(|out| out.len() == 1)
        .count();
    assert_eq!(forwarded, 10);
}

#[test]
fn responses_over_tcp_prefer_the_connection_then_the_via_port() {
    // RFC 3261 §18.2.2: back over the request's connection; once it is gone, a new one to
    // the source IP and the Via port (rport is for unreliable transports only, RFC 3581 §4).
    let core = core();
    register(&core, "bob", "192.0.2.20:5060", "1.0");
    let conn = "192.0.2.10:49152".parse().unwrap();
    let from_tcp = |user: &str, via: &str| {
        msg(&format!(
            "INVITE sip:{user}@example.com SIP/2.0\nVia: SIP/2.0/TCP {via};branch=z9hG4bKtcp{user}\n\
From: <sip:caller@example.net>;tag=c\nTo: <sip:{user}@example.com>\nCall-ID: tcp-{user}\nCSeq: 1 INVITE\n\
Max-Forwards: 70\nContent-Length: 0\n\n"
        ))
    };
    let tcp = Destination::new(Protocol::Tcp, conn);
    let want = |port: u16| Destination {
        protocol: Protocol::Tcp,
        addr: std::net::SocketAddr::new(conn.ip(), port),
        connection: Some(conn),
        name: None,
    };
    let now = Instant::now();
    let out = sent(core.handle_message(now, from_tcp("bob", "client.example.net:5070;rport"), tcp));
    let fwd = &out[0].1;
    let up = sent(core.handle_message(now, answer(fwd, 180), udp("192.0.2.20:5060")));
    assert_eq!((up[0].0, up[0].1.status()), (want(5070), Some(180)));
    // Answered by us, and a sent-by without a port (5060); an rport value changes nothing.
    let up = sent(core.handle_message(now, from_tcp("nobody", "192.0.2.99;rport=6000"), tcp));
    assert_eq!((up[0].0, up[0].1.status()), (want(5060), Some(404)));
}

/// §17.2.1: the ACK of a non-2xx final response of our own is hop-by-hop, absorbed by the
/// INVITE server transaction over TCP as over UDP, never routed on by the script.
#[test]
fn ack_to_a_local_non_2xx_over_tcp_is_absorbed_not_relayed() {
    let core = crate::tests::with_script(
        r#"
request_route {
    if (is_method("INVITE") && !has_totag()) { sl_send_reply(403, "Forbidden"); exit; }
    t_relay();
}
"#,
    );
    for proto in [Protocol::Udp, Protocol::Tcp] {
        let t0 = Instant::now();
        let via = if proto == Protocol::Tcp { "TCP" } else { "UDP" };
        let src = Destination::new(proto, CALLER.parse().unwrap());
        let req = |method: &str, totag: &str| {
            msg(&format!(
                "{method} sip:carol@198.51.100.9 SIP/2.0\nVia: SIP/2.0/{via} {CALLER};branch=z9hG4bKack{via}\n\
From: <sip:caller@example.net>;tag=c\nTo: <sip:carol@198.51.100.9>{totag}\nCall-ID: ack-{via}\nCSeq: 1 {method}\n\
Max-Forwards: 70\nContent-Length: 0\n\n"
            ))
        };
        let out = sent(core.handle_message(t0, req("INVITE", ""), src));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1.status(), Some(403));
        let tag = out[0].1.to().unwrap().tag().unwrap().to_owned();
        let ack = req("ACK", &format!(";tag={tag}"));
        let out = sent(core.handle_message(t0 + Duration::from_millis(20), ack, src));
        let relayed: Vec<_> = out
            .iter()
            .filter(|(d, _)| d.addr.ip().to_string() == "198.51.100.9")
            .collect();
        assert!(
            relayed.is_empty(),
            "{via}: ACK of our own 403 relayed downstream: {relayed:?}"
        );
    }
}

/// A client registered over TCP keeps its connection open while its binding lasts (it may
/// send no keep-alives, and is called over it); when it registers over another connection,
/// or ends its registration, the connection is let go when idle again.
#[test]
fn a_registration_over_tcp_keeps_its_connection_open_while_it_lasts() {
    let core = core();
    let tcp = |a: &str| Destination::new(Protocol::Tcp, a.parse().expect("addr"));
    let (first, conn) = (tcp("192.0.2.40:40100"), tcp("192.0.2.40:40123"));
    let register = |cseq: u32, expires: u32, conn: Destination| {
        let req = msg(&format!(
            "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/TCP 192.0.2.40:5060;branch=z9hG4bKkeep{cseq}\n\
From: <sip:dora@example.com>;tag=r\nTo: <sip:dora@example.com>\nCall-ID: keep\nCSeq: {cseq} REGISTER\n\
Contact: <sip:dora@192.0.2.40:5060;transport=tcp>;expires={expires}\nContent-Length: 0\n\n"
        ));
        let cmds = handle(&core, Instant::now(), req, conn);
        let kept = cmds.into_iter().filter_map(|c| match c {
            Command::KeepOpen { dest, time } => Some((dest, time.as_secs())),
            _ => None,
        });
        kept.collect::<Vec<_>>()
    };
    assert_eq!(register(1, 600, first), [(first, 600)]);
    assert_eq!(register(2, 600, conn), [(conn, 600), (first, 0)], "moved");
    assert_eq!(register(3, 0, conn), [(conn, 0)]);
}

/// RFC 3261 §16.6 step 4: a SIPS request is record-routed with SIPS URIs (TLS, without a
/// transport parameter), and the dialog's requests come back through them, reaching the
/// caller over its connection.
#[test]
fn a_sips_call_is_record_routed_with_sips_uris() {
    let mut cfg = config();
    cfg.advertised
        .push((Protocol::Tls, "192.0.2.1:5061".parse().expect("addr")));
    let core = Core::new(cfg, Arc::new(Location::new()));
    let now = Instant::now();
    let tls = |a: &str| Destination::new(Protocol::Tls, a.parse().expect("addr"));
    let (bob, caller) = (tls("192.0.2.20:40000"), tls("192.0.2.10:41000"));
    let reg = msg(
        "REGISTER sips:example.com SIP/2.0\nVia: SIP/2.0/TLS 192.0.2.20:5061;branch=z9hG4bKsreg\n\
From: <sips:bob@example.com>;tag=r\nTo: <sips:bob@example.com>\nCall-ID: sreg\nCSeq: 1 REGISTER\n\
Contact: <sips:bob@192.0.2.20:5061>\nContent-Length: 0\n\n",
    );
    handle(&core, now, reg, bob);
    let invite = msg("INVITE sips:bob@example.com SIP/2.0\nVia: SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bKsinv\n\
From: <sips:carol@example.com>;tag=c\nTo: <sips:bob@example.com>\nCall-ID: scall\nCSeq: 1 INVITE\n\
Contact: <sips:carol@192.0.2.10:5061>\nMax-Forwards: 70\nContent-Length: 0\n\n");
    let out = sent(core.handle_message(now, invite, caller));
    let (dest, fwd) = &out[0];
    assert_eq!(dest.connection, Some(bob.addr), "over bob's connection");
    let rr: Vec<String> = fwd
        .headers_named(sip_message::HeaderName::RecordRoute)
        .flat_map(|h| h.values().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    assert_eq!(rr.len(), 2, "each side's connection in an entry: {rr:?}");
    assert!(
        rr.iter()
            .all(|r| r.starts_with("<sips:192.0.2.1:5061;lr") && !r.contains("transport")),
        "{rr:?}"
    );
    // bob's BYE through the route set as he got it reaches the caller over its connection.
    let route: String = rr.iter().map(|r| format!("Route: {r}\n")).collect();
    let bye = msg(&format!(
        "BYE sips:carol@192.0.2.10:5061 SIP/2.0\nVia: SIP/2.0/TLS 192.0.2.20:5061;branch=z9hG4bKsbye\n\
{route}From: <sips:bob@example.com>;tag=b\nTo: <sips:carol@example.com>;tag=c\nCall-ID: scall\n\
CSeq: 1 BYE\nMax-Forwards: 70\nContent-Length: 0\n\n"
    ));
    let out = sent(core.handle_message(now, bye, bob));
    let (dest, fwd) = &out[0];
    assert_eq!(fwd.method(), Some(sip_message::Method::Bye));
    assert_eq!(dest.connection, Some(caller.addr), "{dest:?}");
    assert_eq!(fwd.routes().count(), 0);
}
