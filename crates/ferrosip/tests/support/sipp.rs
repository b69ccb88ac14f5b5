//! Running sipp (Debian `sip-tester`) scenarios from `tests/sipp` against the server.
//! `scripts/test.sh` installs sipp; tests using these fail, not skip, without it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::Server;

pub fn scenario(name: &str) -> PathBuf {
    super::data(&format!("../sipp/{name}"))
}

/// A sipp command: scenario, service (user), local port. `keys` are substituted into a copy
/// of the scenario (sipp's own `-key` does not reach attributes such as `response=`).
pub fn sipp(
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
    // The domain of the Request-URI and To: the server's address unless a test names one.
    text = text.replace("[domain]", "127.0.0.1");
    let file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("ferrosip-{}-{port}-{name}", std::process::id()));
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
        .current_dir(env!("CARGO_TARGET_TMPDIR"));
    c
}

/// Runs a client scenario to completion; true when sipp reports success.
pub fn run(mut c: Command) -> bool {
    c.status()
        .expect("sipp is installed (apt-get install sip-tester)")
        .success()
}

/// Starts a server-side (UAS) scenario in the background.
pub fn spawn(mut c: Command) -> Child {
    c.spawn()
        .expect("sipp is installed (apt-get install sip-tester)")
}

/// Waits for a background sipp; true when it succeeded within 20 s.
pub fn finish(mut child: Child) -> bool {
    for _ in 0..200 {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    false
}

pub fn register(s: &Server, user: &str, port: u16, q: &str, expires: &str, status: &str) -> bool {
    run(sipp(
        Some(s),
        "register.xml",
        user,
        port,
        &[("q", q), ("expires", expires), ("status", status)],
    ))
}

/// `user` registered at a port of its own where the UAS `scenario` runs, in the background.
pub fn registered_uas(s: &Server, user: &str, scenario: &str) -> Child {
    let port = super::free_port();
    assert!(
        register(s, user, port, "1.0", "600", "200"),
        "{user} registers"
    );
    spawn(sipp(None, scenario, user, port, &[]))
}

pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}
