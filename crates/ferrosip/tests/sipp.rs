//! End-to-end scenarios driven by sipp (Debian `sip-tester`) against the real binary.
//! `scripts/test.sh` installs sipp; these tests fail, not skip, without it.

mod support;

use std::process::Command;
use std::time::Duration;

use support::sipp::{finish, register, registered_uas, run, sipp, spawn, tmp};
use support::{free_port, Server};

#[test]
fn register_call_and_hang_up() {
    let dir = tmp();
    let s = Server::start(dir.path(), &[]);
    let uas = registered_uas(&s, "bob", "uas.xml");
    assert!(
        run(sipp(Some(&s), "uac.xml", "bob", free_port(), &[])),
        "call failed"
    );
    assert!(finish(uas), "UAS side failed");
}

/// A third-party registration from the callee's own host (one sipp registers another that
/// listens on its own port, as `sipbench.py` does): the REGISTER's Via names where it came
/// from, so the callee is reached at its Contact, not taken for a phone behind NAT.
#[test]
fn a_callee_registered_from_another_port_of_its_host_is_reached_at_its_contact() {
    let dir = tmp();
    let s = Server::start(dir.path(), &[]);
    let uas_port = free_port();
    let contact = format!("127.0.0.1:{uas_port}");
    let keys = [("contact", contact.as_str())];
    assert!(
        run(sipp(
            Some(&s),
            "register_other.xml",
            "bob",
            free_port(),
            &keys
        )),
        "bob registered"
    );
    let uas = spawn(sipp(None, "uas.xml", "bob", uas_port, &[]));
    assert!(
        run(sipp(Some(&s), "uac.xml", "bob", free_port(), &[])),
        "call failed"
    );
    assert!(finish(uas), "UAS side failed");
}

#[test]
fn cancel_of_a_ringing_call_gives_487() {
    let dir = tmp();
    let s = Server::start(dir.path(), &[]);
    let uas = registered_uas(&s, "carol", "uas_ring.xml");
    assert!(run(sipp(
        Some(&s),
        "uac_cancel.xml",
        "carol",
        free_port(),
        &[]
    )));
    assert!(finish(uas));
}

#[test]
fn serial_forking_by_q_busy_then_answer() {
    let dir = tmp();
    let s = Server::start(dir.path(), &[]);
    let (busy_port, ok_port) = (free_port(), free_port());
    assert!(register(&s, "dave", busy_port, "1.0", "600", "200"));
    assert!(register(&s, "dave", ok_port, "0.5", "600", "200"));
    let busy = spawn(sipp(None, "uas_busy.xml", "dave", busy_port, &[]));
    let ok = spawn(sipp(None, "uas.xml", "dave", ok_port, &[]));
    assert!(
        run(sipp(Some(&s), "uac.xml", "dave", free_port(), &[])),
        "second branch did not answer"
    );
    assert!(finish(busy) && finish(ok));
}

#[test]
fn parallel_fork_answers_one_and_cancels_the_other() {
    let dir = tmp();
    let s = Server::start(dir.path(), &[]);
    let (ring_port, ok_port) = (free_port(), free_port());
    assert!(register(&s, "erin", ring_port, "1.0", "600", "200"));
    assert!(register(&s, "erin", ok_port, "1.0", "600", "200"));
    let ring = spawn(sipp(None, "uas_ring.xml", "erin", ring_port, &[]));
    let ok = spawn(sipp(None, "uas.xml", "erin", ok_port, &[]));
    assert!(run(sipp(Some(&s), "uac.xml", "erin", free_port(), &[])));
    assert!(finish(ok), "answering branch");
    assert!(finish(ring), "the other branch was cancelled");
}

#[test]
fn failures_404_483_and_423() {
    let dir = tmp();
    let s = Server::start(dir.path(), &[]);
    assert!(run(sipp(
        Some(&s),
        "uac_fail.xml",
        "nobody",
        free_port(),
        &[("status", "404"), ("mf", "70")]
    )));
    assert!(run(sipp(
        Some(&s),
        "uac_fail.xml",
        "nobody",
        free_port(),
        &[("status", "483"), ("mf", "0")]
    )));
    assert!(register(&s, "frank", free_port(), "1.0", "10", "423"));
}

#[test]
fn call_over_tcp() {
    let dir = tmp();
    let s = Server::start(dir.path(), &[]);
    let uas_port = free_port();
    let tcp = |mut c: Command| {
        c.args(["-t", "t1"]);
        c
    };
    assert!(run(tcp(sipp(
        Some(&s),
        "register.xml",
        "tina",
        uas_port,
        &[("q", "1.0"), ("expires", "600"), ("status", "200")]
    ))));
    let uas = spawn(tcp(sipp(None, "uas.xml", "tina", uas_port, &[])));
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        run(tcp(sipp(Some(&s), "uac.xml", "tina", free_port(), &[]))),
        "call over TCP failed"
    );
    assert!(finish(uas), "UAS over TCP");
}

/// The default script follows calls (`dlg_manage()`): each call leaves a record in the log
/// when it ends: an answered call with its talk time and who hung up, a cancelled one as a
/// missed call.
#[test]
fn followed_calls_leave_a_record_each() {
    let dir = tmp();
    let config = dir.path().join("ferrosip.toml");
    // A syslog socket of the test's own.
    let socket = dir.path().join("syslog.sock");
    let syslog = std::os::unix::net::UnixDatagram::bind(&socket).expect("bind");
    let accounting = format!(
        "[accounting]\njson_lines = \"cdr.jsonl\"\nlog = true\nsyslog = \"local3\"\n\
         syslog_socket = \"{}\"\n",
        socket.display()
    );
    std::fs::write(&config, accounting).expect("write");
    let config = config.to_str().expect("path");
    let filter = "warn,ferrosip::cdr=info";
    let s = Server::start_logging(dir.path(), &["--config", config], filter);
    let uas = registered_uas(&s, "bob", "uas.xml");
    assert!(
        run(sipp(Some(&s), "uac.xml", "bob", free_port(), &[])),
        "call failed"
    );
    assert!(finish(uas));
    let uas = registered_uas(&s, "carol", "uas_ring.xml");
    assert!(run(sipp(
        Some(&s),
        "uac_cancel.xml",
        "carol",
        free_port(),
        &[]
    )));
    assert!(finish(uas));
    // Records go to the log once a second.
    let records = |s: &Server| {
        s.log()
            .lines()
            .filter(|l| l.contains("call record"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while records(&s).len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let got = records(&s);
    assert_eq!(got.len(), 2, "{got:#?}");
    let answered = got
        .iter()
        .find(|l| l.contains("sip:bob@"))
        .expect("bob's call");
    assert!(
        answered.contains("status=200") && answered.contains("missed=false"),
        "{answered}"
    );
    assert!(answered.contains("HungUp"), "{answered}");
    let missed = got
        .iter()
        .find(|l| l.contains("sip:carol@"))
        .expect("carol's call");
    assert!(
        missed.contains("status=487") && missed.contains("missed=true"),
        "{missed}"
    );
    // And in the database: carol's missed call among her calls.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let url = format!("sqlite:{}", dir.path().join("ferrosip.db").display());
    let stored = rt.block_on(async {
        let store = store::Store::open(&url).await.expect("database");
        for _ in 0..50 {
            let all = store.cdrs(None, 0, 10).await.expect("records");
            if all.len() == 2 {
                return store
                    .cdrs(Some("sip:carol@127.0.0.1"), 0, 10)
                    .await
                    .expect("records");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the records are not stored");
    });
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(stored[0].missed() && stored[0].status == 487, "{stored:?}");
    // `ferrosip cdr list` on the database.
    let lines = support::cli(&["cdr", "list", "--db", &url, "--json"], "");
    assert!(lines.ok, "{}", lines.stderr);
    let json: Vec<serde_json::Value> = lines
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(json.len(), 2, "{}", lines.stdout);
    assert_eq!(json[0]["missed"], true, "newest first: carol's");
    assert_eq!(json[1]["status"], 200);
    // And as JSON lines in the file the configuration names.
    let file = std::fs::read_to_string(dir.path().join("cdr.jsonl")).expect("cdr.jsonl");
    assert_eq!(file.lines().count(), 2, "{file}");
    assert!(file
        .lines()
        .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
    let carol = support::cli(
        &["cdr", "list", "--db", &url, "--user", "carol@127.0.0.1"],
        "",
    );
    assert!(
        carol.ok && carol.stdout.lines().count() == 1,
        "{}",
        carol.stdout
    );
    assert!(carol.stdout.contains("missed"), "{}", carol.stdout);
    // And to syslog: local3 (19), info (6), one JSON object each.
    syslog
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = [0u8; 4096];
    for _ in 0..2 {
        let n = syslog.recv(&mut buf).expect("a syslog line");
        let line = String::from_utf8_lossy(&buf[..n]);
        assert!(line.starts_with("<158>"), "{line}");
        let json = &line[line.find('{').expect("a JSON object")..];
        let v: serde_json::Value = serde_json::from_str(json.trim()).expect("JSON");
        assert!(v["call_id"].is_string(), "{line}");
    }
}
