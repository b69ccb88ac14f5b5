//! `ferrosip location` and `ferrosip ping` against a running server; the database the
//! commands use (never one created by mistake); `serve`'s start-up errors and shutdown.

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
    assert_eq!(none, "no contacts for dave@127.0.0.1\n");
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

#[test]
fn a_missing_database_is_named_not_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("f.db");
    let db_s = db.to_str().expect("utf-8");
    let on_db = |args: &[&str], stdin: &str| support::cli(&[args, &["--db", db_s]].concat(), stdin);
    let reading: [&[&str]; 7] = [
        &["user", "list"],
        &["user", "show", "a@example.com"],
        &["user", "rm", "a@example.com"],
        &["domain", "list"],
        &["alias", "list"],
        &["location", "show"],
        &["location", "rm", "a@example.com"],
    ];
    for args in reading {
        let out = on_db(args, "");
        let said = format!("error: no database at {db_s} (given with --db;");
        assert!(
            !out.ok && out.stderr.starts_with(&said),
            "{args:?}: {}",
            out.stderr
        );
        assert!(!db.exists(), "{args:?} created it");
    }
    let config = dir.path().join("c.toml");
    std::fs::write(&config, format!("[server]\ndatabase = \"{db_s}\"\n")).expect("config");
    let config = config.to_str().expect("utf-8");
    let out = support::cli(&["domain", "list", "--config", config], "");
    let said = format!("no database at {db_s} (from {config};");
    assert!(!out.ok && out.stderr.contains(&said), "{}", out.stderr);

    // An add that fails takes back the database it created; without a terminal the
    // password must come with --password-stdin.
    let out = on_db(&["alias", "add", "a b@example.com", "a@example.com"], "");
    assert!(!out.ok && !db.exists(), "{}", out.stderr);
    let out = on_db(&["user", "add", "alice@example.com"], "pw\n");
    assert!(
        !out.ok && out.stderr.contains("give --password-stdin"),
        "{}",
        out.stderr
    );
    assert!(!db.exists());

    let out = on_db(
        &["user", "add", "alice@example.com", "--password-stdin"],
        "pw\n",
    );
    assert!(out.ok, "{}", out.stderr);
    assert_eq!(out.stderr, format!("creating database {db_s}\n"));
    assert_eq!(
        out.stdout,
        format!("added alice@example.com (domain example.com added) (database {db_s})\n")
    );
    let out = on_db(&["domain", "add", "example.net"], "");
    assert!(out.ok && out.stderr.is_empty(), "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!("added domain example.net (database {db_s})\n")
    );
    let empty: [(&[&str], &str); 4] = [
        (
            &["user", "list", "example.net"],
            "no subscribers in example.net",
        ),
        (&["alias", "list"], "no aliases"),
        (
            &["alias", "list", "example.com"],
            "no aliases in example.com",
        ),
        (&["location", "show"], "no contacts"),
    ];
    for (args, said) in empty {
        let out = on_db(args, "");
        assert!(out.ok && out.stdout.is_empty(), "{args:?}: {}", out.stdout);
        assert_eq!(out.stderr, format!("{said}\n"), "{args:?}");
    }
    for suffix in ["-wal", "-shm", "-journal"] {
        assert!(
            !dir.path().join(format!("f.db{suffix}")).exists(),
            "{suffix} left"
        );
    }
}

/// A database root creates in another user's folder (the service's `/var/lib/ferrosip`)
/// is that user's, so that the server running as it can write it.
#[test]
fn a_database_root_creates_belongs_to_the_owner_of_its_folder() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().expect("tempdir");
    if dir.path().metadata().expect("metadata").uid() != 0 {
        eprintln!("skipped: needs root");
        return;
    }
    let folder = dir.path().join("state");
    std::fs::create_dir(&folder).expect("mkdir");
    std::os::unix::fs::chown(&folder, Some(65534), Some(65534)).expect("chown");
    let db = folder.join("f.db");
    let db_s = db.to_str().expect("utf-8");
    let out = support::cli(&["domain", "add", "example.com", "--db", db_s], "");
    assert!(out.ok, "{}", out.stderr);
    let meta = db.metadata().expect("the database");
    assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
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
    // (Besides the warning that the default STUN port is taken too: by the first server.)
    let not_stun = |s: &str| -> usize {
        s.lines()
            .filter(|l| !l.contains("STUN"))
            .map(|l| l.matches("already in use").count())
            .sum()
    };
    assert_eq!(not_stun(&out.stderr), 1, "{}", out.stderr);
    let out = serve(format!("udp:127.0.0.1:{}", first.port), "off".into());
    let taken = format!(
        "error: cannot listen on udp:127.0.0.1:{}: Address already in use",
        first.port
    );
    assert!(!out.ok && out.stderr.contains(&taken), "{}", out.stderr);
    assert_eq!(not_stun(&out.stderr), 1, "{}", out.stderr);
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
