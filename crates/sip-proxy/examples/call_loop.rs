//! A workload for instruction counts (`valgrind --tool=callgrind`): the proxy core, in
//! memory, handling N REGISTERs of distinct users and N calls (INVITE, 180, 200, ACK, BYE,
//! 200) through the default routing script.
//!
//! `cargo build --release -p sip-proxy --example call_loop`
//! `valgrind --tool=callgrind target/release/examples/call_loop 2000`
//! `valgrind --tool=callgrind target/release/examples/call_loop 2000 plain`: the default
//! script without `dlg_manage()` (calls leave no record), for the cost of following calls.
//! `valgrind --tool=callgrind target/release/examples/call_loop 2000 registers`: the
//! REGISTERs alone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use registrar::{Location, RegistrarConfig};
use sip_message::{Message, Protocol, ResponseBuilder};
use sip_proxy::{Command, Core, Destination, ProxyConfig, Written};

fn udp(addr: &str) -> Destination {
    Destination::new(Protocol::Udp, addr.parse().expect("address"))
}

fn parse(text: String) -> Message {
    Message::parse(text.replace('\n', "\r\n").into_bytes()).expect("workload message")
}

/// The requests the core sent.
fn sent(commands: Vec<Command>) -> Vec<Message> {
    commands
        .into_iter()
        .filter_map(|c| match c {
            Command::Send { data, .. } => Message::parse(data).ok(),
            _ => None,
        })
        .collect()
}

#[inline(never)]
fn register(core: &Core, user: &str, contact: &str) {
    let msg = parse(format!(
        "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP {contact};branch=z9hG4bKr{user}\n\
From: <sip:{user}@example.com>;tag=r\nTo: <sip:{user}@example.com>\nCall-ID: reg-{user}\n\
CSeq: 1 REGISTER\nContact: <sip:{user}@{contact}>\nMax-Forwards: 70\nExpires: 3600\n\
Content-Length: 0\n\n"
    ));
    let now = Instant::now();
    for c in core.handle_message(now, msg, udp(contact)) {
        // The IO layer writes the binding, then the 200 OK goes.
        if let Command::Persist {
            then: Some(then), ..
        } = c
        {
            core.persisted(now, then, Written::Stored);
        }
    }
}

/// The first Record-Route value of a message's text.
fn record_route_in(data: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(data).ok()?;
    let start = text.find("\r\nRecord-Route: ")? + "\r\nRecord-Route: ".len();
    let end = start + text[start..].find("\r\n")?;
    Some(text[start..end].to_owned())
}

/// One call; true when every request reached the callee.
#[inline(never)]
fn call(core: &Core, i: usize) -> bool {
    let now = Instant::now();
    let (caller, callee) = (udp("192.0.2.10:5060"), udp("192.0.2.20:5060"));
    let invite = parse(format!(
        "INVITE sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKi{i}\n\
From: <sip:alice@example.com>;tag=a{i}\nTo: <sip:bob@example.com>\nCall-ID: call-{i}\n\
CSeq: 1 INVITE\nContact: <sip:alice@192.0.2.10:5060>\nMax-Forwards: 70\n\
Content-Type: application/sdp\nContent-Length: 5\n\nv=0\n"
    ));
    let Some(fwd) = sent(core.handle_message(now, invite, caller)).pop() else {
        return false;
    };
    let mut reached = fwd.is_request();
    // Our Record-Route as the callee echoes it; the caller's in-dialog requests carry it as
    // the 200 relayed to the caller has it (keyed for the callee's Contact).
    let record_route = |m: &Message| {
        m.header(sip_message::HeaderName::RecordRoute)
            .map_or(String::new(), |h| h.value.to_owned())
    };
    let echoed = record_route(&fwd);
    let mut rr = String::new();
    for code in [180, 200] {
        let resp = ResponseBuilder::for_request(&fwd, code, "OK", Some("b"))
            .header("Contact", "<sip:bob@192.0.2.20:5060>")
            .header("Record-Route", &echoed)
            .build();
        let resp = Message::parse(resp).expect("response");
        for c in core.handle_message(now, resp, callee) {
            // Read off the bytes, not parsed: the workload's own work stays out of the count.
            if let Command::Send { data, .. } = c {
                rr = record_route_in(&data).unwrap_or_default();
            }
        }
    }
    for (method, cseq) in [("ACK", 1), ("BYE", 2)] {
        let req = parse(format!(
            "{method} sip:bob@192.0.2.20:5060 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKd{i}{method}\n\
From: <sip:alice@example.com>;tag=a{i}\nTo: <sip:bob@example.com>;tag=b\nCall-ID: call-{i}\n\
CSeq: {cseq} {method}\nRoute: {rr}\nMax-Forwards: 70\nContent-Length: 0\n\n"
        ));
        let out = sent(core.handle_message(now, req, caller));
        reached &= out.first().is_some_and(Message::is_request);
        if method == "BYE" {
            if let Some(bye) = out.into_iter().next() {
                let ok = ResponseBuilder::for_request(&bye, 200, "OK", None).build();
                core.handle_message(now, Message::parse(ok).expect("200"), callee);
            }
        }
    }
    reached
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let cfg = ProxyConfig {
        max_pending_writes: usize::MAX,
        max_transactions: usize::MAX,
        domains: vec!["example.com".into(), "192.0.2.1".into()],
        hosted: Default::default(),
        advertised: vec![(Protocol::Udp, "192.0.2.1:5060".parse().expect("address"))],
        timer_c: Duration::from_secs(180),
        timers: sip_transaction::TimerConfig::default(),
        // Every user registers from one address here: no limit per source (still counted).
        registrar: RegistrarConfig {
            max_bindings_per_source: 0,
            ..RegistrarConfig::default()
        },
        agent: "ferrosip".into(),
        digest_algorithms: auth::Algorithm::ALL.to_vec(),
        realm_algorithms: Default::default(),
        nonce_lifetime: Duration::from_secs(300),
        trusted: Vec::new(),
        // Every call comes from one address within a second here: no flood limit.
        guard: sip_proxy::GuardConfig {
            flood_limit: 0,
            ..sip_proxy::GuardConfig::default()
        },
        branch_secret: sip_proxy::BranchSecret([7; 16]),
        route_secret: sip_proxy::RouteSecret([5; 16]),
        nonce_secret: sip_proxy::NonceSecret([8; 32]),
        media_optional: false,
        calls: dialog::Limits::default(),
        presence: presence::Config::default(),
        messages: message_store::Limits::default(),
    };
    let mode = std::env::args().nth(2);
    let plain = mode.as_deref() == Some("plain");
    let core = match plain {
        false => Core::new(cfg, Arc::new(Location::new())),
        true => {
            let text =
                include_str!("../../../ferrosip.cfg").replacen("        dlg_manage();\n", "", 1);
            let script = sip_proxy::compile("ferrosip.cfg", &text).expect("script");
            Core::with_script(cfg, Arc::new(Location::new()), Arc::new(script))
        }
    };
    for u in 0..n {
        register(&core, &format!("u{u}"), "192.0.2.30:5060");
    }
    if mode.as_deref() == Some("registers") {
        println!("{n} REGISTERs");
        return;
    }
    register(&core, "bob", "192.0.2.20:5060");
    let completed = (0..n).filter(|&i| call(&core, i)).count();
    // Let every context end (RFC 6026 keeps them 32 s).
    let later = Instant::now() + Duration::from_secs(64);
    core.handle_timeouts(later);
    println!(
        "{completed} of {n} calls completed, {} contexts left, {} call records",
        core.active_transactions(),
        core.tick_calls(later).records.len()
    );
}
