//! Any datagram into the proxy core (registrar, routing, transactions, timers, presence,
//! messages kept for users offline): no panic, and everything it sends parses.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use registrar::{Location, RegistrarConfig};
use sip_message::{Message, Protocol};
use sip_proxy::{Command, Core, Destination, ProxyConfig, Written};

/// The default script's steps, plus every kind of route and the functions that edit messages,
/// with values taken from the message.
const SCRIPT: &str = r#"
request_route {
    if (!sanity_check()) { exit; }
    if (!mf_process_maxfwd_header(70)) { sl_send_reply(483, "Too Many Hops"); exit; }
    if (is_method("CANCEL")) { t_relay(); exit; }
    append_hf("X-From: $fU $hdr(Subject) $ua");
    remove_hf("X-Remove");
    $avp(u) = $rU;
    if (loose_route()) { t_relay(); exit; }
    if (uri != myself) { $rU = $tU; t_relay(); exit; }
    if (is_method("REGISTER")) { if (save("location")) { m_dump(); } exit; }
    if (is_method("SUBSCRIBE")) { handle_subscribe(); exit; }
    if (is_method("PUBLISH")) { handle_publish(); exit; }
    if ($rd == "redirect.example.com") { lookup("location"); redirect(); exit; }
    if ($rU =~ "^9") { $du = "sip:" + $rU + "@192.0.2.40"; }
    if ($fU == "auth" && !proxy_authorize("")) { auth_challenge(""); exit; }
    if (!lookup("location")) {
        if (is_method("MESSAGE") && m_store()) { t_reply(202, "Accepted"); exit; }
        t_reply(404, "Not Found " + $ci);
        exit;
    }
    record_route();
    dlg_manage();
    t_on_failure("F");
    t_on_branch("B");
    t_on_reply("R");
    t_relay();
}
failure_route[F] { if ($rs >= 400) { $ru = "sip:vm-" + $avp(u) + "@vm.example.net"; t_relay(); } }
branch_route[B] { append_hf("X-Branch: $ru"); }
reply_route { if ($rs == 183) { drop; } }
reply_route[R] { append_hf("X-Reply: $rs $rr"); }
"#;

fn core() -> &'static Core {
    static CORE: OnceLock<Core> = OnceLock::new();
    CORE.get_or_init(|| {
        let cfg = ProxyConfig {
            domains: vec!["example.com".into(), "192.0.2.1".into()],
            hosted: Default::default(),
            advertised: vec![(Protocol::Udp, "192.0.2.1:5060".parse().expect("addr"))],
            timer_c: Duration::from_secs(180),
            timers: sip_transaction::TimerConfig::default(),
            // Every input comes from one address: no limit of bindings per source either.
            registrar: RegistrarConfig { max_bindings_per_source: 0, ..RegistrarConfig::default() },
            agent: "fuzz".into(),
            digest_algorithms: auth::Algorithm::ALL.to_vec(),
            realm_algorithms: Default::default(),
            nonce_lifetime: Duration::from_secs(300),
            trusted: Vec::new(),
            // Every input comes from one address: limits would stop the fuzzing.
            guard: sip_proxy::GuardConfig { flood_limit: 0, auth_failures: 0, ..Default::default() },
            branch_secret: sip_proxy::BranchSecret([0; 16]),
            nonce_secret: sip_proxy::NonceSecret([0; 32]),
            media_optional: false,
            route_secret: sip_proxy::RouteSecret([0; 16]),
            max_pending_writes: usize::MAX,
            max_transactions: 100_000,
            calls: dialog::Limits { max_calls: 1000, ..Default::default() },
            presence: presence::Config::default(),
            messages: message_store::Limits::default(),
        };
        let script = sip_proxy::compile("fuzz.cfg", SCRIPT).expect("the fuzz script compiles");
        let core = Core::with_script(cfg, Arc::new(Location::new()), Arc::new(script));
        let register = "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.20;branch=z9hG4bKr\r\n\
From: <sip:bob@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: r\r\nCSeq: 1 REGISTER\r\n\
Contact: <sip:bob@192.0.2.20>, <sip:bob@192.0.2.21>;q=0.5\r\nContent-Length: 0\r\n\r\n";
        let msg = Message::parse(register.as_bytes().to_vec()).expect("seed REGISTER");
        core.handle_message(Instant::now(), msg, Destination::new(Protocol::Udp, "192.0.2.20:5060".parse().expect("addr")));
        core
    })
}

/// Checks what the core sends; answers its lookups (every name is 192.0.2.30) and its
/// binding writes and its media relay requests, and resumes what waited, a bounded number of times.
fn check(commands: Vec<Command>) {
    let mut pending = commands;
    for _ in 0..3 {
        let mut next = Vec::new();
        for c in pending {
            match c {
                Command::Send { data, .. } => {
                    Message::parse(data).expect("the core sends parsable messages");
                }
                Command::Resolve { hosts, then } => {
                    let now = Instant::now();
                    for h in hosts {
                        let (protocol, port) = h.fallback(&h.plan(), &[]);
                        let found = sip_proxy::Found {
                            protocol,
                            rank: 0,
                            priority: 0,
                            weight: 0,
                            addrs: vec![std::net::SocketAddr::new([192, 0, 2, 30].into(), port)],
                        };
                        core().dns_answer(now, &h, vec![found], Duration::from_secs(60));
                    }
                    next.extend(core().resume(now, then));
                }
                Command::Persist { then, .. } => {
                    if let Some(then) = then {
                        next.extend(core().persisted(Instant::now(), then, Written::Stored));
                    }
                }
                Command::Media { request, then } => {
                    // The relay gives the SDP back as it came.
                    if let Some(then) = then {
                        next.extend(core().media_done(Instant::now(), then, Ok(request.sdp)));
                    }
                }
                Command::KeepOpen { .. } | Command::Messages(_) => {}
            }
        }
        pending = next;
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = Message::parse(data.to_vec()) else { return };
    let core = core();
    let now = Instant::now();
    let call_id = msg.call_id().ok().map(str::to_owned);
    check(core.handle_message(now, msg, Destination::new(Protocol::Udp, "192.0.2.10:5060".parse().expect("addr"))));
    // The server's own BYEs of a call the input answered, and what each second leaves.
    if let Some(ended) = call_id.and_then(|id| core.end_call(now, &id)) {
        check(ended);
    }
    check(core.tick_calls(now).commands);
    check(core.tick_presence(now + Duration::from_secs(6)).commands);
    check(core.deliver_messages(now));
    check(core.handle_timeouts(now + Duration::from_secs(40)));
});
