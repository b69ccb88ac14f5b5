//! Followed calls (`dlg_manage()`) end to end, with sipp: a forked call answered on its
//! second branch gets one record with its talk time to within a second, a call that goes on
//! across a `kill -9` and a restart still gets its record with its real end, an operator
//! ends a call (`ferrosip calls end`), and the longest duration ends one, each with a BYE to
//! both sides.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::sipp::{finish, register, registered_uas, run, sipp, spawn, tmp};
use support::{free_port, Server};

/// A config with the default script (which follows every call) and `extra`: its path.
fn following_config(dir: &Path, extra: &str) -> String {
    let config = dir.join("ferrosip.toml");
    std::fs::write(&config, extra).expect("write");
    config.to_str().expect("path").to_owned()
}

/// The records stored in `dir`'s database, once there are `n` (10 s at most).
fn stored_records(dir: &Path, n: usize) -> Vec<dialog::Cdr> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let url = format!("sqlite:{}", dir.join("ferrosip.db").display());
    rt.block_on(async {
        let store = store::Store::open(&url).await.expect("database");
        for _ in 0..100 {
            let all = store.cdrs(None, 0, 10).await.expect("records");
            if all.len() >= n {
                return all;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("fewer than {n} records stored");
    })
}

/// A call answered, the server killed with SIGKILL a second and a half later and started
/// again; the caller hangs up after 5 s, through the new process: the record has the answer
/// from before the crash and the end from after it.
#[test]
fn a_call_across_kill_9_gets_its_record_with_its_real_end() {
    let dir = tmp();
    let config = following_config(dir.path(), "[calls]\nsave_after = 0\n");
    let s = Server::start(dir.path(), &["--config", &config]);
    let uas = registered_uas(&s, "bob", "uas.xml");
    let began = Instant::now();
    let uac = spawn(sipp(
        Some(&s),
        "uac_talk.xml",
        "bob",
        free_port(),
        &[("pause", "5000")],
    ));
    // The answer is stored within a second of the call being answered (`save_after = 0`).
    std::thread::sleep(Duration::from_millis(1500));
    let (dir_path, port) = s.kill9();
    let s = Server::start_on(&dir_path, port, &["--config", &config]);
    assert!(finish(uac), "the caller's BYE went through the new process");
    assert!(finish(uas), "and reached the callee");
    let talked = began.elapsed();
    let records = stored_records(dir.path(), 1);
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert_eq!(r.ending, dialog::Ending::CallerHungUp, "{r:?}");
    let duration = Duration::from_millis(r.duration_ms());
    assert!(
        duration >= Duration::from_millis(4_000) && duration <= talked,
        "talked about 5 s, recorded {duration:?}: {r:?}"
    );
    drop(s);
}

/// A clean restart (SIGTERM) keeps the calls in progress however young (`save_after` is
/// for crashes): the caller's BYE after it still makes the record.
#[test]
fn a_call_across_a_clean_restart_gets_its_record() {
    let dir = tmp();
    let config = following_config(dir.path(), "");
    let s = Server::start(dir.path(), &["--config", &config]);
    let port = s.port;
    let uas = registered_uas(&s, "bob", "uas.xml");
    let uac = spawn(sipp(
        Some(&s),
        "uac_talk.xml",
        "bob",
        free_port(),
        &[("pause", "4000")],
    ));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(s.terminate(), "a clean stop");
    let s = Server::start_on(dir.path(), port, &["--config", &config]);
    assert!(finish(uac), "the caller's BYE went through the new process");
    assert!(finish(uas), "and reached the callee");
    let records = stored_records(dir.path(), 1);
    assert_eq!(
        records[0].ending,
        dialog::Ending::CallerHungUp,
        "{records:?}"
    );
    assert!(records[0].duration_ms() >= 3_000, "{records:?}");
    drop(s);
}

/// `[calls] max_duration`: the server ends a call at its longest duration with a BYE to
/// each side, and its record says so.
#[test]
fn the_longest_duration_ends_a_call_with_a_bye_to_each_side() {
    let dir = tmp();
    let config = following_config(dir.path(), "[calls]\nmax_duration = 2\n");
    let s = Server::start(dir.path(), &["--config", &config]);
    let uas = registered_uas(&s, "bob", "uas.xml");
    let uac = spawn(sipp(Some(&s), "uac_hung_up.xml", "bob", free_port(), &[]));
    assert!(finish(uac), "the caller got the server's BYE");
    assert!(finish(uas), "the callee got the server's BYE");
    let records = stored_records(dir.path(), 1);
    let r = &records[0];
    assert_eq!(r.ending, dialog::Ending::EndedByServer, "{r:?}");
    assert!(
        (2_000..4_000).contains(&r.duration_ms()),
        "ended at 2 s (checked each second): {r:?}"
    );
}

/// `ferrosip calls end CALL-ID` through the API: both sides get a BYE; an unknown Call-ID
/// is an error that says so.
#[test]
fn an_operator_ends_a_call() {
    let dir = tmp();
    let api = format!("127.0.0.1:{}", free_port());
    let config = following_config(dir.path(), &format!("[api]\nlisten = \"{api}\"\n"));
    let s = Server::start(dir.path(), &["--config", &config, "--api", &api]);
    let uas = registered_uas(&s, "bob", "uas.xml");
    let uac = spawn(sipp(Some(&s), "uac_hung_up.xml", "bob", free_port(), &[]));
    let cli = |args: &[&str]| support::cli(&[args, &["--api", "--config", &config]].concat(), "");
    let deadline = Instant::now() + Duration::from_secs(10);
    let call_id = loop {
        let listed = cli(&["calls", "--json"]);
        let talking = listed.stdout.lines().find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            v["answered_ms"].as_u64()?;
            v["call_id"].as_str().map(str::to_owned)
        });
        if let Some(id) = talking {
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "no call answered: {}",
            listed.stderr
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let unknown = cli(&["calls", "end", "no-such-call"]);
    assert!(
        !unknown.ok && unknown.stderr.contains("no answered call"),
        "{}",
        unknown.stderr
    );
    let ended = cli(&["calls", "end", &call_id]);
    assert!(ended.ok, "{}", ended.stderr);
    assert!(finish(uac), "the caller got the server's BYE");
    assert!(finish(uas), "the callee got the server's BYE");
    let records = stored_records(dir.path(), 1);
    assert_eq!(records[0].ending, dialog::Ending::EndedByServer);
    drop(s);
}

/// bob has two phones: the first (q 1.0) is busy, the second (q 0.5) answers. The call
/// gives one record, answered, with the 2 s it talked to within a second.
#[test]
fn a_forked_call_answered_on_its_second_branch_gives_one_record() {
    let dir = tmp();
    let config = following_config(dir.path(), "");
    let s = Server::start(dir.path(), &["--config", &config]);
    let (busy_port, answer_port) = (free_port(), free_port());
    assert!(register(&s, "bob", busy_port, "1.0", "600", "200"));
    assert!(register(&s, "bob", answer_port, "0.5", "600", "200"));
    let busy = spawn(sipp(None, "uas_busy.xml", "bob", busy_port, &[]));
    let answers = spawn(sipp(None, "uas.xml", "bob", answer_port, &[]));
    let keys = [("pause", "2000")];
    assert!(run(sipp(
        Some(&s),
        "uac_talk.xml",
        "bob",
        free_port(),
        &keys
    )));
    assert!(finish(busy) && finish(answers));
    std::thread::sleep(Duration::from_millis(1500));
    let records = stored_records(dir.path(), 1);
    assert_eq!(records.len(), 1, "one record for the call: {records:?}");
    let r = &records[0];
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.reached
            .as_deref()
            .is_some_and(|c| c.contains(&answer_port.to_string())),
        "{r:?}"
    );
    let talked = r.duration_ms();
    assert!(
        (1_000..=3_000).contains(&talked),
        "talked 2 s, recorded {talked} ms: {r:?}"
    );
}
