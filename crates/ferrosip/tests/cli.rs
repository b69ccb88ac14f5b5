//! `ferrosip location` and `ferrosip ping` against a running server.

mod support;

use support::{Server, Ua};

/// Runs `ferrosip`: success, and stdout then stderr.
fn ferrosip(args: &[&str]) -> (bool, String) {
    let out = support::cli(args, "");
    (out.ok, out.stdout + &out.stderr)
}

#[test]
fn location_show_and_rm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let ua = Ua::new();
    ua.send(s.addr(), &ua.register(s.port, "carol", "loc-1", 1, ""));
    assert_eq!(ua.recv().status(), Some(200));
    let db = dir.path().join("ferrosip.db");
    let db = db.to_str().expect("utf-8");
    let (ok, all) = ferrosip(&["location", "show", "--db", db]);
    let contact = format!("sip:carol@127.0.0.1:{}", ua.port);
    assert!(
        ok && all.contains("sip:carol@127.0.0.1\t") && all.contains(&contact),
        "{all}"
    );
    let (_, one) = ferrosip(&["location", "show", "carol@127.0.0.1", "--db", db]);
    assert_eq!(one.lines().count(), 1, "{one}");
    let (_, none) = ferrosip(&["location", "show", "dave@127.0.0.1", "--db", db]);
    assert!(none.is_empty(), "{none}");
    let (ok, out) = ferrosip(&["location", "rm", "carol@127.0.0.1", "--db", db]);
    assert!(ok && out.contains("removed 1 contact(s)"), "{out}");
    let (ok, out) = ferrosip(&["location", "rm", "carol@127.0.0.1", "--db", db]);
    assert!(!ok && out.contains("has no contacts"), "{out}");
    let (ok, out) = ferrosip(&["location", "show", "not an aor", "--db", db]);
    assert!(!ok && out.contains("is not an address-of-record"), "{out}");
}

#[test]
fn ping_prints_the_answer_or_fails_without_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let (ok, out) = ferrosip(&["ping", &format!("sip:127.0.0.1:{}", s.port)]);
    assert!(ok, "{out}");
    assert!(
        out.starts_with("SIP/2.0 200 OK from 127.0.0.1:") && out.contains(" ms (ferrosip/"),
        "{out}"
    );
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let (ok, out) = ferrosip(&["ping", &format!("sip:127.0.0.1:{port}"), "--timeout", "1"]);
    assert!(!ok && out.contains("no answer"), "{out}");
    let (ok, out) = ferrosip(&["ping", "tel:+123"]);
    assert!(!ok && out.contains("not a sip: URI"), "{out}");
}

#[test]
fn serve_names_a_database_it_cannot_open() {
    let started = std::time::Instant::now();
    let out = support::cli(
        &[
            "serve",
            "--listen",
            &format!("udp:127.0.0.1:{}", support::free_port()),
            "--api",
            "off",
            "--db",
            "postgres://postgres:secret@127.0.0.1:1/ferrosip",
        ],
        "",
    );
    assert!(!out.ok);
    assert!(
        out.stderr
            .contains("cannot open postgres://postgres:***@127.0.0.1:1/ferrosip")
            && out.stderr.contains("Connection refused")
            && !out.stderr.contains("secret"),
        "{}",
        out.stderr
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "no retrying for long"
    );
}
