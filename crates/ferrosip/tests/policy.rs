//! The default policy against the real binary: one domain however it is written (case,
//! trailing dot, IPv6 with or without brackets), registrations only for the domains we
//! serve, limits on the bindings a stranger can make us hold, user names phones can write.

mod support;

use auth::{expected_response, ha1, Algorithm, Credentials};
use sip_message::header::AuthHeader;
use sip_message::{HeaderName, Message};
use support::{free_port, Server, Ua};

/// `ua`'s REGISTER of `user@host` (To, From and Request-URI name `host`).
fn register_at(s: &Server, ua: &Ua, user: &str, host: &str, call_id: &str, cseq: u32) -> String {
    ua.register(s.port, user, call_id, cseq, "")
        .replacen(
            &format!("REGISTER sip:127.0.0.1:{}", s.port),
            &format!("REGISTER sip:{host}"),
            1,
        )
        .replace("@127.0.0.1>", &format!("@{host}>"))
}

/// The Authorization answering `challenge` (MD5) for `user` with `password`.
fn answer(challenge: &Message, user: &str, password: &str, uri: &str) -> String {
    let ch = challenge
        .auth_headers(HeaderName::WwwAuthenticate)
        .next()
        .expect("a challenge")
        .expect("parsable");
    let (realm, nonce) = (
        ch.get("realm").expect("realm"),
        ch.get("nonce").expect("nonce"),
    );
    let text = format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"0\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"d\""
    );
    let c = Credentials::from_header(&AuthHeader::parse(&text).expect("header")).expect("ok");
    let response = expected_response(&ha1(Algorithm::Md5, user, &realm, password), "REGISTER", &c);
    text.replace("response=\"0\"", &format!("response=\"{response}\""))
}

fn with_auth(register: &str, auth: &str) -> String {
    register.replace(
        "Max-Forwards: 70\n",
        &format!("Authorization: {auth}\nMax-Forwards: 70\n"),
    )
}

/// `user add carol@::1` hosts the domain `::1`: a REGISTER for `sip:carol@[::1]` (or any
/// spelling of that address) is challenged in realm `::1`, carol's password answers it, and
/// the CLI finds the binding under either spelling.
#[test]
fn an_ipv6_literal_is_one_domain_with_or_without_brackets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("ferrosip.db");
    let db = db.to_str().expect("utf-8");
    let added = support::cli(
        &["user", "add", "carol@::1", "--password-stdin", "--db", db],
        "pw\n",
    );
    assert!(added.ok, "{}", added.stderr);
    let s = Server::start_on(dir.path(), free_port(), &[]);
    let ua = Ua::new();
    for (i, host) in ["[0:0:0:0:0:0:0:1]", "[::1]"].into_iter().enumerate() {
        ua.send(
            s.addr(),
            &register_at(&s, &ua, "carol", host, &format!("v6-{i}"), 1),
        );
        let challenge = ua.recv();
        assert_eq!(
            challenge.status(),
            Some(401),
            "{host} needs carol's password"
        );
        let realm = challenge
            .auth_headers(HeaderName::WwwAuthenticate)
            .next()
            .and_then(Result::ok)
            .and_then(|h| h.get("realm").map(|r| r.into_owned()));
        assert_eq!(realm.as_deref(), Some("::1"));
    }
    let uri = "sip:[::1]";
    let first = register_at(&s, &ua, "carol", "[::1]", "v6-2", 1);
    ua.send(s.addr(), &first);
    let challenge = ua.recv();
    let second = register_at(&s, &ua, "carol", "[::1]", "v6-2", 2);
    ua.send(
        s.addr(),
        &with_auth(&second, &answer(&challenge, "carol", "pw", uri)),
    );
    assert_eq!(ua.recv().status(), Some(200), "carol logs in");
    for aor in ["carol@[::1]", "carol@::1", "sip:carol@[0::1]"] {
        let shown = support::cli(&["location", "show", aor, "--db", db], "");
        assert!(
            shown.ok && shown.stdout.contains(&format!("127.0.0.1:{}", ua.port)),
            "{aor}: {} {}",
            shown.stdout,
            shown.stderr
        );
    }
}

/// A REGISTER for a domain we do not serve is refused (403) and leaves no binding, however
/// its domain is written; one for ours with a trailing dot or in capitals is ours.
#[test]
fn registrations_for_foreign_domains_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("ferrosip.db");
    let db = db.to_str().expect("utf-8");
    let s = Server::start_with_config(dir.path(), "[server]\ndomains = [\"example.com\"]\n");
    let ua = Ua::new();
    for (i, host) in ["evil.com", "8.8.8.8", "example.org."]
        .into_iter()
        .enumerate()
    {
        let text = register_at(&s, &ua, "alice", host, &format!("f-{i}"), 1).replacen(
            &format!("REGISTER sip:{host}"),
            "REGISTER sip:127.0.0.1",
            1,
        );
        ua.send(s.addr(), &text);
        assert_eq!(ua.recv().status(), Some(403), "{host}");
    }
    for (i, host) in ["example.com.", "EXAMPLE.com"].into_iter().enumerate() {
        ua.send(
            s.addr(),
            &register_at(&s, &ua, "bob", host, &format!("o-{i}"), 1),
        );
        assert_eq!(ua.recv().status(), Some(200), "{host}");
    }
    let shown = support::cli(&["location", "show", "--db", db], "");
    assert!(
        !shown.stdout.contains("alice") && shown.stdout.contains("sip:bob@example.com"),
        "{}",
        shown.stdout
    );
}

/// `user add` refuses a user part phones could not write in a URI.
#[test]
fn user_add_refuses_user_parts_that_are_not_sip_syntax() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("ferrosip.db");
    let db = db.to_str().expect("utf-8");
    for bad in [
        "al ice@example.com",
        "al<ice@example.com",
        "a%zz@example.com",
        "a\"b@example.com",
        "bob@exa mple.com",
        "bob@-bad.com",
        "bob@[v1.fe]",
    ] {
        let out = support::cli(
            &["user", "add", bad, "--password-stdin", "--db", db],
            "pw\n",
        );
        assert!(!out.ok, "{bad} was taken");
    }
    for good in [
        "alice.o'neil@example.com",
        "%41lice@example.com",
        "+15551234;x@example.com",
    ] {
        let out = support::cli(
            &["user", "add", good, "--password-stdin", "--db", db],
            "pw\n",
        );
        assert!(out.ok, "{good}: {}", out.stderr);
    }
}

/// One source cannot fill the location table: past `max_bindings_per_source` its
/// REGISTERs get 403, whatever their port, with a line in the log.
#[test]
fn one_source_holds_a_limited_number_of_bindings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start_with_config(dir.path(), "[registrar]\nmax_bindings_per_source = 30\n");
    let (ua, other) = (Ua::new(), Ua::new());
    let ten = |ua: &Ua, user: &str| {
        let contacts: String = (0..10)
            .map(|i| format!("Contact: <sip:{user}-{i}@127.0.0.1:{}>\n", ua.port))
            .collect();
        ua.register(s.port, user, &format!("many-{user}"), 1, "")
            .replacen("Contact: ", &format!("{contacts}X-Was: "), 1)
    };
    let statuses: Vec<Option<u16>> = (0..5)
        .map(|i| {
            ua.send(s.addr(), &ten(&ua, &format!("u{i}")));
            ua.recv().status()
        })
        .collect();
    assert_eq!(
        statuses,
        [Some(200), Some(200), Some(200), Some(403), Some(403)]
    );
    other.send(s.addr(), &ten(&other, "v0"));
    assert_eq!(other.recv().status(), Some(403), "127.0.0.1 is one source");
    assert!(
        s.log()
            .contains("registration refused: Forbidden (too many bindings from this address)"),
        "{}",
        s.log()
    );
}

/// Over TCP, a message that cannot be read on (too large, too many fields, no
/// Content-Length) is answered 513 or 400 on its connection before it closes, not with
/// silence.
#[test]
fn an_unreadable_stream_is_answered_before_it_closes() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let head =
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5;branch=z9hG4bKbig\r\n\
From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: big\r\nCSeq: 1 OPTIONS\r\n";
    let many: String = (0..2000).map(|i| format!("X-{i}: y\r\n")).collect();
    for (data, expected) in [
        (
            format!(
                "{head}Content-Length: 200000\r\n\r\n{}",
                "x".repeat(200_000)
            ),
            "SIP/2.0 513 ",
        ),
        (
            format!(
                "{head}X-Long: {}\r\nContent-Length: 0\r\n\r\n",
                "a".repeat(100_000)
            ),
            "SIP/2.0 513 ",
        ),
        (
            format!("{head}{many}Content-Length: 0\r\n\r\n"),
            "SIP/2.0 400 ",
        ),
        (format!("{head}\r\n"), "SIP/2.0 400 "),
    ] {
        let mut conn = std::net::TcpStream::connect(s.addr()).expect("connect");
        conn.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        let _ = conn.write_all(data.as_bytes()); // the server may close before all is sent
        let mut answer = Vec::new();
        let _ = conn.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with(expected), "{expected}: {answer:?}");
        assert!(answer.contains("branch=z9hG4bKbig"), "{answer}");
    }
}

/// No relay by a made-up dialog: an in-dialog request (To tag) whose Route names this
/// server but without the key of a Route set it recorded gets 404 and goes nowhere; a
/// request with a To tag and no Route reaches no other domain either.
#[test]
fn a_forged_route_set_relays_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let (ua, victim) = (Ua::new(), Ua::new());
    let forged = |route: &str, to_params: &str, branch: &str| {
        format!(
            "INVITE sip:victim@127.0.0.1:{v} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bK{branch}\n\
{route}From: <sip:alice@127.0.0.1>;tag=a\nTo: <sip:victim@127.0.0.2>{to_params}\nCall-ID: forged-{branch}\n\
CSeq: 1 INVITE\nContact: <sip:alice@127.0.0.1:{p}>\nMax-Forwards: 70\nContent-Length: 0\n\n",
            v = victim.port,
            p = ua.port
        )
    };
    let ours = format!("Route: <sip:127.0.0.1:{};lr>\n", s.port);
    // (The third hides its tag from a scan that stops at the last `>`.)
    for (route, to_params, branch) in [
        (ours.as_str(), ";tag=made-up", "f1"),
        ("", ";tag=made-up", "f2"),
        (ours.as_str(), ";tag=z;x=\"q>\"", "f3"),
    ] {
        ua.send(s.addr(), &forged(route, to_params, branch));
        assert_eq!(ua.recv().status(), Some(404), "{route:?} {to_params}");
    }
    assert!(
        victim
            .recv_timeout(std::time::Duration::from_millis(300))
            .is_none(),
        "nothing reached the foreign target"
    );
}

/// The key of a Route set is good for its dialog's parties only: someone who takes part in
/// a dialog through us (here calling themselves in an open domain) and reads the key cannot
/// send that dialog's in-dialog requests anywhere else.
#[test]
fn a_route_key_is_no_pass_to_other_targets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let (me, victim) = (Ua::new(), Ua::new());
    me.send(s.addr(), &me.register(s.port, "me", "reg-me", 1, ""));
    assert_eq!(me.recv().status(), Some(200));
    let invite = format!(
        "INVITE sip:me@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bKself\n\
From: <sip:me@127.0.0.1>;tag=mine\nTo: <sip:me@127.0.0.1>\nCall-ID: self-call\nCSeq: 1 INVITE\n\
Contact: <sip:me@127.0.0.1:{p}>\nMax-Forwards: 70\nContent-Length: 0\n\n",
        p = me.port
    );
    me.send(s.addr(), &invite);
    // The INVITE reaches me as the callee, with our Record-Route and its key.
    let forwarded = loop {
        let m = me.recv();
        if m.is_request() {
            break m;
        }
    };
    let rr = forwarded
        .header(HeaderName::RecordRoute)
        .map(|h| h.value.to_owned())
        .expect("record-routed");
    assert!(rr.contains(";rk="), "{rr}");
    for (i, (from_tag, to_tag)) in [("mine", "b"), ("b", "mine")].into_iter().enumerate() {
        let message = format!(
            "MESSAGE sip:victim@127.0.0.1:{v} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bKuse{i}\n\
Route: {rr}\nFrom: <sip:me@127.0.0.1>;tag={from_tag}\nTo: <sip:victim@127.0.0.1>;tag={to_tag}\n\
Call-ID: self-call\nCSeq: {n} MESSAGE\nMax-Forwards: 70\nContent-Length: 0\n\n",
            v = victim.port,
            p = me.port,
            n = 10 + i
        );
        me.send(s.addr(), &message);
        let answer = loop {
            let m = me.recv();
            if m.status().is_some()
                && m.call_id().ok() == Some("self-call")
                && m.cseq().is_ok_and(|c| c.seq == 10 + i as u32)
            {
                break m;
            }
        };
        assert_eq!(answer.status(), Some(404), "{from_tag}/{to_tag}");
    }
    assert!(
        victim
            .recv_timeout(std::time::Duration::from_millis(300))
            .is_none(),
        "nothing reached the other target"
    );
}
