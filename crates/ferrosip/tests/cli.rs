//! `ferrosip location` and `ferrosip ping` against a running server; `serve`'s start-up
//! errors and shutdown.

mod support;

use std::path::Path;

use support::{free_port, Server, Ua};

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

/// A clean shutdown leaves the SQLite database alone in its folder: no `-wal`, no `-shm`.
#[test]
fn sigterm_leaves_no_log_beside_the_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let ua = Ua::new();
    ua.send(s.addr(), &ua.register(s.port, "carol", "wal-1", 1, ""));
    assert_eq!(ua.recv().status(), Some(200));
    let beside = |suffix: &str| dir.path().join(format!("ferrosip.db{suffix}")).exists();
    assert!(beside("-wal"), "WAL mode while it runs");
    assert!(s.terminate(), "a clean exit");
    assert!(!beside("-wal") && !beside("-shm"), "log and index removed");
    let db = dir.path().join("ferrosip.db");
    let (ok, shown) = ferrosip(&["location", "show", "--db", db.to_str().expect("utf-8")]);
    assert!(ok && shown.contains("sip:carol@127.0.0.1"), "{shown}");
}

/// A server on ports another holds says which is taken, once, and how to do without the
/// API.
#[test]
fn serve_names_the_taken_port_once_and_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = Server::start(dir.path(), &[]);
    let other = tempfile::tempdir().expect("tempdir");
    let serve = |listen: String, api: String| {
        let db = other.path().join("f.db");
        let db = db.to_str().expect("utf-8");
        support::cli(
            &["serve", "--listen", &listen, "--api", &api, "--db", db],
            "",
        )
    };
    let api = format!("127.0.0.1:{}", first.api_port);
    let out = serve(format!("udp:127.0.0.1:{}", free_port()), api.clone());
    assert!(!out.ok);
    let taken =
        format!("error: cannot listen on {api} for the management API: Address already in use");
    assert!(out.stderr.contains(&taken), "{}", out.stderr);
    assert!(
        out.stderr.contains("--api off") && out.stderr.contains("[api] listen = \"\""),
        "{}",
        out.stderr
    );
    assert_eq!(
        out.stderr.matches("already in use").count(),
        1,
        "{}",
        out.stderr
    );
    let out = serve(format!("udp:127.0.0.1:{}", first.port), "off".into());
    let taken = format!(
        "error: cannot listen on udp:127.0.0.1:{}: Address already in use",
        first.port
    );
    assert!(!out.ok && out.stderr.contains(&taken), "{}", out.stderr);
    assert_eq!(
        out.stderr.matches("already in use").count(),
        1,
        "{}",
        out.stderr
    );
    assert_no_log_files(other.path());
}

/// No `-wal` or `-shm` file in `dir`, even after a failed start.
fn assert_no_log_files(dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let name = entry.expect("entry").file_name();
        let name = name.to_string_lossy();
        assert!(
            !name.ends_with("-wal") && !name.ends_with("-shm"),
            "{name} left"
        );
    }
}
