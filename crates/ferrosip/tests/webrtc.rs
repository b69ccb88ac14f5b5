//! The WebRTC gateway end to end: a browser (headless Chromium, JsSIP or SIP.js, its fake
//! microphone playing a tone) and a baresip phone on UDP call each other through ferrosip,
//! whose relay bridges the browser's ICE and DTLS-SRTP to the phone's plain RTP. Each hears
//! the other (baresip's RTP counters; the browser's `getStats()`: packets received and an
//! audio level), hold and resume keep the audio, the browser's DTMF (RFC 4733) reaches
//! baresip, a page with `bundlePolicy: 'max-bundle'` works too, and a hang-up from either
//! side ends the relay's session. Two browsers call each other through the relay too (each
//! leg its own ICE and DTLS), and a browser's ICE restart is followed. The same with the
//! browser behind a NAT of the NAT tests (network namespaces, nftables masquerade) and the
//! phone on the internet. `scripts/test.sh` installs Chromium, baresip and nftables.

mod support;

use std::path::Path;
use std::time::Duration;

use std::net::SocketAddr;

use support::baresip::Baresip;
use support::browser::Browser;
use support::netns::{Mapping, Net, SERVER_IP};
use support::phone::{tone_wav, Account, Rtp};
use support::{api, free_port, Server};

/// The server on UDP and WebSocket, its relay on loopback (Chromium checks from the host's
/// own address, and the answers must come from the address it checked); the page's URL.
fn server(dir: &Path) -> (Server, String) {
    let (port, ws_port) = (free_port(), free_port());
    let base = 54000 + (std::process::id() % 500) as u16 * 20;
    let config = dir.join("ferrosip.toml");
    let toml = format!(
        "[relay]\nbind = \"127.0.0.1\"\nannounce = \"127.0.0.1\"\nports = \"{base}-{}\"\n",
        base + 19
    );
    std::fs::write(&config, toml).expect("config");
    let listens = [
        format!("udp:127.0.0.1:{port}"),
        format!("ws:127.0.0.1:{ws_port}"),
    ];
    let config = config.to_str().expect("utf-8 path");
    let s = Server::start_listens(dir, port, &listens, &["--config", config]);
    (s, format!("ws://127.0.0.1:{ws_port}"))
}

/// The relay's sessions now, from `/metrics`.
fn relay_sessions(s: &Server) -> u64 {
    let metrics = api(s, "/metrics");
    let line = metrics
        .lines()
        .find(|l| l.starts_with("ferrosip_relay_sessions "))
        .unwrap_or("ferrosip_relay_sessions 0");
    line.split(' ')
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Waits up to 5 s for the relay to hold `n` sessions.
fn wait_sessions(s: &Server, n: u64) {
    for _ in 0..50 {
        if relay_sessions(s) == n {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(relay_sessions(s), n, "relay sessions");
}

/// A browser's audio so far: RTP packets received and sent, and the energy and duration
/// of the audio it played.
#[derive(Debug, Clone, Copy, Default)]
struct Audio {
    received: u64,
    sent: u64,
    energy: f64,
    seconds: f64,
}

impl Audio {
    /// The RMS level (0–1) of what was played since `before`.
    fn level_since(&self, before: &Audio) -> f64 {
        let seconds = self.seconds - before.seconds;
        match seconds > 0.0 {
            true => ((self.energy - before.energy) / seconds).max(0.0).sqrt(),
            false => 0.0,
        }
    }
}

fn stats(b: &Browser) -> Audio {
    b.command("stats");
    let line = b.expect("stats ");
    let v: Vec<&str> = line.split(' ').collect();
    let n = |i: usize| v.get(i).and_then(|x| x.parse().ok()).unwrap_or(0);
    let f = |i: usize| v.get(i).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    Audio {
        received: n(1),
        sent: n(2),
        energy: f(3),
        seconds: f(4),
    }
}

/// `who` heard the other since `before`: 50 packets at least each way (a second of 20 ms
/// packets), and a tone (an RMS level over 0.01; silence is 0).
fn heard(who: &str, now: &Audio, before: &Audio) {
    assert!(
        now.received >= before.received + 50 && now.sent >= before.sent + 50,
        "{who}: {now:?}, before {before:?}"
    );
    let level = now.level_since(before);
    assert!(
        level > 0.01,
        "{who} heard silence ({level}): {now:?}, before {before:?}"
    );
}

/// Both heard each other since `before` (the browser's and the phone's counts then).
fn talked(b: &Browser, bob: &mut Baresip, before: (Audio, Rtp)) -> (Audio, Rtp) {
    std::thread::sleep(Duration::from_secs(2));
    let (browser, phone) = (stats(b), bob.rtp());
    heard("the browser", &browser, &before.0);
    let p0 = before.1;
    assert!(
        phone.received >= p0.received + 50,
        "the phone received {phone:?}, before {p0:?}"
    );
    assert!(phone.sent >= p0.sent + 50, "the phone sent {phone:?}");
    (browser, phone)
}

fn account(server: &Server) -> Account<'static> {
    Account {
        user: "bob",
        domain: "127.0.0.1",
        password: "unused",
        proxy: server.addr(),
        transport: "udp",
    }
}

/// Everything in the module doc, with `page` (`bundle`: its BUNDLE policy).
fn a_browser_and_a_phone_call_each_other(page: &str, bundle: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, ws) = server(dir.path());
    let b = Browser::registered(page, &ws, "sip:alice@127.0.0.1", bundle);
    let mut bob = Baresip::start(&account(&server), "sip:alice@127.0.0.1");

    // The browser calls the phone.
    b.command("call sip:bob@127.0.0.1");
    bob.accept();
    b.expect("call-confirmed");
    bob.expect("Call established");
    wait_sessions(&server, 1);
    let zero = Rtp {
        sent: 0,
        received: 0,
    };
    talked(&b, &mut bob, (Audio::default(), zero));

    // Hold and resume: the same ports, credentials and keys; audio again after.
    b.command("hold");
    b.expect("held");
    std::thread::sleep(Duration::from_secs(1));
    b.command("unhold");
    b.expect("resumed");
    let (browser, phone) = (stats(&b), bob.rtp());
    talked(&b, &mut bob, (browser, phone));

    // DTMF from the browser, as RFC 4733 events.
    b.command("dtmf 5");
    b.expect("dtmf-sent 5");
    bob.expect("received event: '5'");

    // The browser hangs up: the relay's session ends.
    b.command("hangup");
    b.expect("call-ended local");
    bob.expect("session closed");
    wait_sessions(&server, 0);

    // The phone calls the browser, which answers; the phone hangs up.
    bob.dial("sip:alice@127.0.0.1");
    b.expect("incoming-call");
    b.expect("call-confirmed");
    bob.expect("Call established");
    let zero = Rtp {
        sent: 0,
        received: 0,
    };
    talked(&b, &mut bob, (Audio::default(), zero));
    bob.send("/hangup");
    b.expect("call-ended remote");
    wait_sessions(&server, 0);
}

#[test]
fn jssip_and_baresip_call_each_other_through_the_relay() {
    a_browser_and_a_phone_call_each_other("jssip.html", "balanced");
}

#[test]
fn sipjs_with_max_bundle_and_baresip_call_each_other_through_the_relay() {
    a_browser_and_a_phone_call_each_other("sipjs.html", "max-bundle");
}

/// Both browsers heard the other since `before` (their stats then).
fn heard_each_other(a: &Browser, b: &Browser, before: [Audio; 2]) -> [Audio; 2] {
    std::thread::sleep(Duration::from_secs(2));
    let now = [stats(a), stats(b)];
    heard("alice", &now[0], &before[0]);
    heard("carol", &now[1], &before[1]);
    now
}

#[test]
fn two_browsers_call_each_other_through_the_relay_and_ice_restarts_are_followed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, ws) = server(dir.path());
    let alice = Browser::registered("jssip.html", &ws, "sip:alice@127.0.0.1", "balanced");
    let carol = Browser::registered("sipjs.html", &ws, "sip:carol@127.0.0.1", "balanced");
    alice.command("call sip:carol@127.0.0.1");
    carol.expect("incoming-call");
    alice.expect("call-confirmed");
    carol.expect("call-confirmed");
    wait_sessions(&server, 1);
    let now = heard_each_other(&alice, &carol, [Audio::default(); 2]);
    // alice restarts ICE: the relay's leg takes new credentials, its DTLS session stays.
    alice.command("ice-restart");
    alice.expect("renegotiated");
    heard_each_other(&alice, &carol, now);
    alice.command("hangup");
    carol.expect("call-ended remote");
    wait_sessions(&server, 0);
}

/// A browser behind a home router's NAT (port-preserving, flows forgotten after 30 s idle)
/// calls a phone on the internet through the server's default configuration, and the phone
/// calls it back: each hears the other, the relay being the browser's one candidate.
#[test]
fn a_browser_behind_nat_and_a_phone_call_each_other() {
    let mut net = Net::new();
    let lan = net.natted_lan(1, Mapping::PortPreserving, 30);
    let outside = net.public_host(50);
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "[server]\nlisten = [\"udp:{SERVER_IP}:5060\", \"ws:{SERVER_IP}:8080\"]\n[api]\nlisten = \"\"\n"
    );
    let _server = Server::start_in(&net.internet(), dir.path(), &toml);
    let ws = format!("ws://{SERVER_IP}:8080");
    let uri = format!("sip:alice@{SERVER_IP}");
    let query = [
        ("ws", ws.as_str()),
        ("uri", uri.as_str()),
        ("user", ""),
        ("password", ""),
    ];
    let b = Browser::open_in(&lan, &net.internet(), SERVER_IP, "jssip.html", &query);
    b.expect("registered");
    let wav = dir.path().join("tone.wav");
    std::fs::write(&wav, tone_wav(60)).expect("write the tone");
    let account = Account {
        user: "bob",
        domain: SERVER_IP,
        password: "unused",
        proxy: SocketAddr::new(SERVER_IP.parse().expect("ip"), 5060),
        transport: "udp",
    };
    let local = SocketAddr::new("203.0.113.50".parse().expect("ip"), 5070);
    let mut bob = Baresip::start_in(&outside, local, &account, &uri, &wav);

    b.command(&format!("call sip:bob@{SERVER_IP}"));
    bob.accept();
    b.expect("call-confirmed");
    bob.expect("Call established");
    let zero = Rtp {
        sent: 0,
        received: 0,
    };
    talked(&b, &mut bob, (Audio::default(), zero));
    b.command("hangup");
    bob.expect("session closed");

    bob.dial(&uri);
    b.expect("incoming-call");
    b.expect("call-confirmed");
    bob.expect("Call established");
    let zero = Rtp {
        sent: 0,
        received: 0,
    };
    talked(&b, &mut bob, (Audio::default(), zero));
    bob.send("/hangup");
    b.expect("call-ended remote");
}
