//! The RFC 4475 / RFC 5118 torture messages sent over UDP to a running server get the answers
//! `tests/data/conformance/EXPECTED.md` lists, and the server stays up.
//!
//! Responses go where the Via says (the source IP and the Via port, RFC 3261 §18.2.2), so the
//! test sends from 127.0.0.77 and listens there on every port the messages name.

mod support;

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use sip_message::Message;
use support::Server;

const HOST: [u8; 4] = [127, 0, 0, 77];

/// Expected answers: a list of acceptable status codes, `&[]` for "nothing is sent".
const EXPECTED: &[(&str, &[u16])] = &[
    ("rfc4475/wsinv.dat", &[404]),
    ("rfc4475/intmeth.dat", &[404, 405]),
    ("rfc4475/esc01.dat", &[404]),
    ("rfc4475/escnull.dat", &[200]),
    ("rfc4475/esc02.dat", &[400, 403, 404, 405, 501, 503]),
    ("rfc4475/lwsdisp.dat", &[404]),
    ("rfc4475/longreq.dat", &[404]),
    ("rfc4475/dblreq.dat", &[200]),
    ("rfc4475/semiuri.dat", &[404]),
    ("rfc4475/transports.dat", &[404]),
    ("rfc4475/mpart01.dat", &[202]),
    ("rfc4475/unreason.dat", &[]),
    ("rfc4475/noreason.dat", &[]),
    ("rfc4475/badinv01.dat", &[400]),
    ("rfc4475/clerr.dat", &[400]),
    ("rfc4475/ncl.dat", &[400]),
    ("rfc4475/scalar02.dat", &[400]),
    ("rfc4475/scalarlg.dat", &[]),
    ("rfc4475/quotbal.dat", &[400]),
    ("rfc4475/ltgtruri.dat", &[400]),
    ("rfc4475/lwsruri.dat", &[400]),
    ("rfc4475/lwsstart.dat", &[400]),
    ("rfc4475/trws.dat", &[400, 404]),
    ("rfc4475/escruri.dat", &[400, 404]),
    ("rfc4475/baddate.dat", &[400]),
    ("rfc4475/regbadct.dat", &[400, 200]),
    ("rfc4475/badaspec.dat", &[400]),
    ("rfc4475/baddn.dat", &[400]),
    ("rfc4475/badvers.dat", &[505, 400]),
    ("rfc4475/mismatch01.dat", &[400]),
    ("rfc4475/mismatch02.dat", &[400]),
    ("rfc4475/bigcode.dat", &[]),
    ("rfc4475/badbranch.dat", &[404]),
    ("rfc4475/insuf.dat", &[400]),
    ("rfc4475/unkscm.dat", &[416]),
    ("rfc4475/novelsc.dat", &[416]),
    ("rfc4475/unksm2.dat", &[400, 403, 404]),
    ("rfc4475/bext01.dat", &[420]),
    ("rfc4475/invut.dat", &[404]),
    ("rfc4475/regaut01.dat", &[200]),
    ("rfc4475/multi01.dat", &[400]),
    ("rfc4475/mcl01.dat", &[400]),
    ("rfc4475/bcast.dat", &[]),
    ("rfc4475/zeromf.dat", &[483]),
    ("rfc4475/cparam01.dat", &[200]),
    ("rfc4475/cparam02.dat", &[200]),
    ("rfc4475/regescrt.dat", &[200]),
    ("rfc4475/sdp01.dat", &[404]),
    ("rfc4475/inv2543.dat", &[404]),
];

/// The port the server will answer to: the top Via's, or the source port when the Via asks
/// for rport or the message does not parse.
fn reply_port(raw: &[u8], source_port: u16) -> u16 {
    let via_port = Message::parse(raw.to_vec()).ok().and_then(|m| {
        let v = m.top_via().ok()?;
        Some(if v.rport().is_some() {
            source_port
        } else {
            v.port.unwrap_or(5060)
        })
    });
    via_port.unwrap_or(source_port)
}

#[test]
fn torture_messages_over_udp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("ferrosip.toml");
    // The domains EXPECTED.md makes the server responsible for, plus the two hosts of
    // example.com that wsinv.dat addresses (its Request-URI and its Route).
    let domains = r#"["example.com", "example.org", "example.net", "company.com", "chair-dnrc.example.com", "services.example.com"]"#;
    std::fs::write(&cfg, format!("[server]\ndomains = {domains}\n")).expect("config");
    let mut server = Server::start(dir.path(), &["--config", cfg.to_str().expect("path")]);
    let sender = UdpSocket::bind(SocketAddr::from((HOST, 0))).expect("bind 127.0.0.77");
    let sender_port = sender.local_addr().expect("addr").port();
    let mut listeners: HashMap<u16, UdpSocket> = HashMap::new();
    let mut failures = Vec::new();
    // Final responses to INVITEs are retransmitted until ACKed (RFC 3261 §17.2.1), and
    // nothing here ACKs them: those of earlier messages are told apart by their Call-ID.
    // EXPECTED.md assumes no user is registered: send the REGISTERs last.
    let mut messages: Vec<(&str, &[u16], Vec<u8>)> = EXPECTED
        .iter()
        .map(|(file, expected)| {
            let raw =
                std::fs::read(support::data(&format!("conformance/{file}"))).expect("torture file");
            (*file, *expected, raw)
        })
        .collect();
    messages.sort_by_key(|(_, _, raw)| raw.starts_with(b"REGISTER"));
    for (file, expected, raw) in messages {
        let port = reply_port(&raw, sender_port);
        if port != sender_port && !listeners.contains_key(&port) {
            let l = UdpSocket::bind(SocketAddr::from((HOST, port))).expect("bind reply port");
            listeners.insert(port, l);
        }
        let sock = if port == sender_port {
            &sender
        } else {
            &listeners[&port]
        };
        sender.send_to(&raw, server.addr()).expect("send");
        let own = call_id(&raw);
        let wait = if expected.is_empty() { 300 } else { 3000 };
        let got = receive(sock, wait, |id| own.is_some() && id != own);
        let ok = match (got, expected.is_empty()) {
            (None, true) => true,
            (Some(code), false) => expected.contains(&code),
            _ => false,
        };
        if !ok {
            failures.push(format!("{file}: got {got:?}, expected {expected:?}"));
        }
        assert!(server.is_running(), "server died on {file}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The Call-ID of a message, as written (the message need not parse).
fn call_id(raw: &[u8]) -> Option<String> {
    String::from_utf8_lossy(raw).lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        let name = name.trim().to_ascii_lowercase();
        (name == "call-id" || name == "i").then(|| value.trim().to_owned())
    })
}

/// Waits up to `ms` for a final response (100 Trying and the retransmissions `earlier` says
/// belong to earlier messages skipped); its status code.
fn receive(sock: &UdpSocket, ms: u64, earlier: impl Fn(Option<String>) -> bool) -> Option<u16> {
    let deadline = Instant::now() + Duration::from_millis(ms);
    let mut buf = vec![0u8; 65535];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .expect("timeout");
        let (n, _) = sock.recv_from(&mut buf).ok()?;
        let m = Message::parse(buf[..n].to_vec()).expect("server sent a parsable message");
        if earlier(call_id(&buf[..n])) {
            continue;
        }
        match m.status() {
            Some(100) | None => continue,
            Some(code) => return Some(code),
        }
    }
}
