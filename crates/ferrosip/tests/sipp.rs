//! End-to-end scenarios driven by sipp (Debian `sip-tester`) against the real binary.
//! `scripts/test.sh` installs sipp; these tests fail, not skip, without it.

mod support;

use std::process::Command;
use std::time::Duration;

use support::sipp::{finish, register, run, sipp, spawn, tmp};
use support::{free_port, Server};

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
