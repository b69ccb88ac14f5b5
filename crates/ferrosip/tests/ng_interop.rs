//! rtpengine's ng protocol with the real peers, both ways: Kamailio (Debian's, with its
//! rtpengine module) drives `ferrosip relay` in place of rtpengine, and ferrosip drives
//! Debian's rtpengine (userspace forwarding); a baresip call through each gets audio both
//! ways through the relay. Kamailio as a WebRTC gateway (the reference configuration, its
//! WebRTC flags) uses `ferrosip relay` for a browser's call to a baresip phone, audio both
//! ways, a `max-bundle` page included. `scripts/test.sh` installs kamailio (with its
//! WebSocket module), rtpengine-daemon, baresip and Chromium.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::baresip::{call_and_talk, hang_up_having_heard, Baresip};
use support::browser::Browser;
use support::phone::Account;

/// A process stopped when dropped (its output printed if the test failed): SIGTERM first,
/// with which Kamailio stops its worker processes too (SIGKILL would leave them running),
/// SIGKILL after 3 s.
struct Daemon {
    child: Child,
    name: &'static str,
    log: std::path::PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..30 {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- {}'s log ---\n{log}", self.name);
        }
    }
}

fn spawn(name: &'static str, cmd: &mut Command, log: std::path::PathBuf) -> Daemon {
    let out = std::fs::File::create(&log).expect("log file");
    let child = cmd
        .stdout(Stdio::null())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("{name} runs (scripts/test.sh installs it): {e}"));
    Daemon { child, name, log }
}

/// The packets the relay on ng port `port` forwarded, from its `statistics`, and those.
fn relayed_packets(port: u16) -> (u64, String) {
    let stats = ng(port, b"s d7:command10:statisticse").expect("statistics");
    let packets = stats
        .split("7:packetsi")
        .nth(1)
        .and_then(|r| r.split('e').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    (packets, stats)
}

/// Asks the relay's ng port; its reply.
fn ng(port: u16, request: &[u8]) -> Option<String> {
    let s = UdpSocket::bind("127.0.0.1:0").ok()?;
    s.set_read_timeout(Some(Duration::from_millis(200))).ok()?;
    s.send_to(request, ("127.0.0.1", port)).ok()?;
    let mut buf = [0u8; 4096];
    let n = s.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// `ferrosip relay` on loopback over 20 ports from `base`, its ng port answering.
fn ferrosip_relay(dir: &std::path::Path, ng_port: u16, base: u16) -> Daemon {
    let config = dir.join("relay.toml");
    std::fs::write(
        &config,
        format!(
            "[relay]\nbind = \"127.0.0.1\"\nports = \"{base}-{}\"\n",
            base + 19
        ),
    )
    .expect("write");
    let relay = spawn(
        "ferrosip relay",
        Command::new(env!("CARGO_BIN_EXE_ferrosip"))
            .args(["relay", "--config"])
            .arg(&config)
            .arg("--ng")
            .arg(format!("127.0.0.1:{ng_port}")),
        dir.join("relay.log"),
    );
    let up = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        ng(ng_port, b"p d7:command4:pinge").is_some_and(|r| r.contains("pong"))
    });
    assert!(up, "ferrosip relay answers ping");
    relay
}

#[test]
fn kamailio_drives_ferrosip_relay_and_a_call_through_it_has_audio_both_ways() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sip, ng_port) = (support::free_port(), support::free_port());
    let base = 44000 + (std::process::id() % 200) as u16 * 20;
    let _relay = ferrosip_relay(dir.path(), ng_port, base);

    let cfg = std::fs::read_to_string(support::data("kamailio-rtpengine.cfg"))
        .expect("kamailio config")
        .replace("LISTEN", &format!("127.0.0.1:{sip}"))
        .replace("NG", &format!("127.0.0.1:{ng_port}"));
    let kcfg = dir.path().join("kamailio.cfg");
    std::fs::write(&kcfg, cfg).expect("write");
    let _kamailio = spawn(
        "kamailio",
        Command::new("kamailio")
            .arg("-f")
            .arg(&kcfg)
            .args(["-DD", "-E", "-m", "64", "-M", "8", "-Y"])
            .arg(dir.path())
            .arg("-P")
            .arg(dir.path().join("kamailio.pid")),
        dir.path().join("kamailio.log"),
    );
    let proxy = SocketAddr::from(([127, 0, 0, 1], sip));
    let account = |user| Account {
        user,
        domain: "127.0.0.1",
        password: "unused",
        proxy,
        transport: "udp",
    };
    std::thread::sleep(Duration::from_millis(500));
    let mut alice = Baresip::start(&account("alice"), "sip:bob@127.0.0.1");
    let mut bob = Baresip::start(&account("bob"), "sip:alice@127.0.0.1");
    let counts = call_and_talk(&mut alice, &mut bob, "sip:bob@127.0.0.1", 3);
    // The relay holds the call while it runs, and the SDP each phone got names its ports.
    let list = ng(ng_port, b"l d7:command4:liste").expect("list");
    assert!(!list.contains("5:callsle"), "a call in the relay: {list}");
    for (phone, seen) in [("alice", alice.output()), ("bob", bob.output())] {
        let port = (base..base + 20).any(|p| seen.contains(&format!("m=audio {p} ")));
        assert!(port, "{phone}'s SDP names the relay's port");
    }
    hang_up_having_heard(&mut alice, &mut bob, counts);
    let (packets, stats) = relayed_packets(ng_port);
    assert!(
        packets >= 200,
        "the relay forwarded {packets} packets: {stats}"
    );
}

#[test]
fn ferrosip_drives_rtpengine_and_a_baresip_call_through_it_has_audio_both_ways() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ng_port = support::free_port();
    let base = 48000 + (std::process::id() % 100) as u16 * 100;
    let _rtpengine = spawn(
        "rtpengine",
        Command::new("rtpengine")
            .args([
                "--interface=127.0.0.1",
                "--foreground",
                "--log-stderr",
                "--table=-1",
            ])
            .arg(format!("--listen-ng=127.0.0.1:{ng_port}"))
            .arg(format!("--port-min={base}"))
            .arg(format!("--port-max={}", base + 99))
            .arg(format!(
                "--pidfile={}",
                dir.path().join("rtpengine.pid").display()
            )),
        dir.path().join("rtpengine.log"),
    );
    let up = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        ng(ng_port, b"p d7:command4:pinge").is_some_and(|r| r.contains("pong"))
    });
    assert!(up, "rtpengine answers ping");
    let script = support::relay_all_script(dir.path());
    let config =
        format!("[routing]\nscript = \"{script}\"\n[relay]\nng = [\"udp:127.0.0.1:{ng_port}\"]\n");
    let server = support::Server::start_with_config(dir.path(), &config);
    let account = |user| Account {
        user,
        domain: "127.0.0.1",
        password: "unused",
        proxy: server.addr(),
        transport: "udp",
    };
    let mut alice = Baresip::start(&account("alice"), "sip:bob@127.0.0.1");
    let mut bob = Baresip::start(&account("bob"), "sip:alice@127.0.0.1");
    let counts = call_and_talk(&mut alice, &mut bob, "sip:bob@127.0.0.1", 3);
    for (phone, seen) in [("alice", alice.output()), ("bob", bob.output())] {
        let port = (base..base + 100).any(|p| seen.contains(&format!("m=audio {p} ")));
        assert!(port, "{phone}'s SDP names rtpengine's port");
    }
    hang_up_having_heard(&mut alice, &mut bob, counts);
}

/// Kamailio as a WebRTC gateway (its reference configuration, `tests/data/kamailio-webrtc.cfg`)
/// with `ferrosip relay` as its media relay: a browser on Kamailio's WebSocket calls a
/// baresip phone on its UDP port, and the phone calls the browser; both hear each other.
fn kamailio_uses_ferrosip_relay_as_its_webrtc_gateway(page: &str, bundle: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sip, ws, ng_port) = (
        support::free_port(),
        support::free_port(),
        support::free_port(),
    );
    let base = 45000 + (std::process::id() % 200) as u16 * 20;
    let _relay = ferrosip_relay(dir.path(), ng_port, base);
    let _kamailio = spawn(
        "kamailio",
        Command::new("kamailio")
            .arg("-f")
            .arg(support::data("kamailio-webrtc.cfg"))
            .args(["-DD", "-E", "-m", "64", "-M", "8", "-Y"])
            .arg(dir.path())
            .arg("-P")
            .arg(dir.path().join("kamailio.pid"))
            .args([
                "-A",
                &format!("SIP_PORT={sip}"),
                "-A",
                &format!("WS_PORT={ws}"),
            ])
            .args(["-A", &format!("RTPE_SOCK=\"udp:127.0.0.1:{ng_port}\"")]),
        dir.path().join("kamailio.log"),
    );
    std::thread::sleep(Duration::from_millis(500));
    let ws = format!("ws://127.0.0.1:{ws}");
    let b = Browser::registered(page, &ws, "sip:alice@127.0.0.1", bundle);
    let account = Account {
        user: "bob",
        domain: "127.0.0.1",
        password: "unused",
        proxy: SocketAddr::from(([127, 0, 0, 1], sip)),
        transport: "udp",
    };
    let mut bob = Baresip::start(&account, "sip:alice@127.0.0.1");
    for browser_calls in [true, false] {
        match browser_calls {
            true => {
                b.command("call sip:bob@127.0.0.1");
                bob.accept();
            }
            false => {
                bob.dial("sip:alice@127.0.0.1");
                b.expect("incoming-call");
            }
        }
        b.expect("call-confirmed");
        bob.expect("Call established");
        std::thread::sleep(Duration::from_secs(2));
        b.command("stats");
        let stats = b.expect("stats ");
        let n: Vec<u64> = stats
            .split(' ')
            .skip(1)
            .take(2)
            .filter_map(|x| x.parse().ok())
            .collect();
        assert!(
            n.len() == 2 && n[0] >= 50 && n[1] >= 50,
            "the browser: {stats}"
        );
        let rtp = bob.rtp();
        assert!(rtp.received >= 50 && rtp.sent >= 50, "the phone: {rtp:?}");
        bob.send("/hangup");
        b.expect("call-ended remote");
    }
    // Both calls went through the relay.
    let (packets, stats) = relayed_packets(ng_port);
    assert!(
        packets >= 400,
        "the relay forwarded {packets} packets: {stats}"
    );
}

#[test]
fn kamailio_uses_ferrosip_relay_as_its_webrtc_gateway_for_jssip() {
    kamailio_uses_ferrosip_relay_as_its_webrtc_gateway("jssip.html", "balanced");
}

/// rtpengine 10.5's answer carries no BUNDLE group and Chrome refuses it; ferrosip's does.
#[test]
fn kamailio_uses_ferrosip_relay_as_its_webrtc_gateway_for_a_max_bundle_page() {
    kamailio_uses_ferrosip_relay_as_its_webrtc_gateway("sipjs.html", "max-bundle");
}
