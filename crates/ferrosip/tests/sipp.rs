//! End-to-end scenarios driven by sipp (Debian `sip-tester`) against the real binary.
//! `scripts/test.sh` installs sipp; these tests fail, not skip, without it.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::{free_port, Server};

fn scenario(name: &str) -> PathBuf {
    support::data(&format!("../sipp/{name}"))
}

/// A sipp command: scenario, service (user), local port. `keys` are substituted into a copy
/// of the scenario (sipp's own `-key` does not reach attributes such as `response=`).
fn sipp(
    server: Option<&Server>,
    name: &str,
    service: &str,
    port: u16,
    keys: &[(&str, &str)],
) -> Command {
    let mut text = std::fs::read_to_string(scenario(name)).expect("scenario");
    for (k, v) in keys {
        text = text.replace(&format!("[{k}]"), v);
    }
    let file = std::env::temp_dir().join(format!("ferrosip-{}-{port}-{name}", std::process::id()));
    std::fs::write(&file, text).expect("write scenario");
    let mut c = Command::new("sipp");
    if let Some(s) = server {
        c.arg(format!("127.0.0.1:{}", s.port));
    }
    c.arg("-sf").arg(&file);
    c.args([
        "-s",
        service,
        "-i",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-m",
        "1",
        "-nostdin",
    ]);
    c.args(["-timeout", "15", "-timeout_error", "-recv_timeout", "10000"]);
    c.stdout(Stdio::null())
        .stderr(Stdio::null())
        .current_dir(std::env::temp_dir());
    c
}

/// Runs a client scenario to completion; true when sipp reports success.
fn run(mut c: Command) -> bool {
    c.status()
        .expect("sipp is installed (apt-get install sip-tester)")
        .success()
}

/// Starts a server-side (UAS) scenario in the background.
fn spawn(mut c: Command) -> Child {
    c.spawn()
        .expect("sipp is installed (apt-get install sip-tester)")
}

/// Waits for a background sipp; true when it succeeded within 20 s.
fn finish(mut child: Child) -> bool {
    for _ in 0..200 {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    false
}

fn register(s: &Server, user: &str, port: u16, q: &str, expires: &str, status: &str) -> bool {
    run(sipp(
        Some(s),
        "register.xml",
        user,
        port,
        &[("q", q), ("expires", expires), ("status", status)],
    ))
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

#[test]
fn register_call_and_hang_up() {
    let dir = tmp();
    let s = Server::start(dir.path(), &[]);
    let uas_port = free_port();
    assert!(register(&s, "bob", uas_port, "1.0", "600", "200"));
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
    let uas_port = free_port();
    assert!(register(&s, "carol", uas_port, "1.0", "600", "200"));
    let uas = spawn(sipp(None, "uas_ring.xml", "carol", uas_port, &[]));
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
fn redirect_mode_answers_302_with_contacts() {
    let dir = tmp();
    let cfg = dir.path().join("ferrosip.toml");
    std::fs::write(&cfg, "[proxy]\nredirect_domains = [\"127.0.0.1\"]\n").expect("write config");
    let s = Server::start(dir.path(), &["--config", cfg.to_str().expect("utf-8 path")]);
    assert!(register(&s, "gina", free_port(), "1.0", "600", "200"));
    assert!(run(sipp(
        Some(&s),
        "uac_fail.xml",
        "gina",
        free_port(),
        &[("status", "302"), ("mf", "70")]
    )));
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

#[test]
fn stateless_mode_relays_a_whole_call() {
    let dir = tmp();
    let s = Server::start_with_config(dir.path(), "[proxy]\nmode = \"stateless\"\n");
    let uas_port = free_port();
    assert!(register(&s, "sam", uas_port, "1.0", "600", "200"));
    let uas = spawn(sipp(None, "uas.xml", "sam", uas_port, &[]));
    assert!(
        run(sipp(Some(&s), "uac.xml", "sam", free_port(), &[])),
        "call through the stateless proxy failed"
    );
    assert!(finish(uas), "UAS side failed");
}
