//! The WebRTC gateway end to end: a browser (headless Chromium, JsSIP or SIP.js, its fake
//! microphone playing a tone) and a baresip phone on UDP call each other through ferrosip,
//! whose relay bridges the browser's ICE and DTLS-SRTP to the phone's plain RTP. Each hears
//! the other (baresip's RTP counters; the browser's `getStats()`: packets received and an
//! audio level), hold and resume keep the audio, the browser's DTMF (RFC 4733) reaches
//! baresip, a page with `bundlePolicy: 'max-bundle'` works too, and a hang-up from either
//! side ends the relay's session. `scripts/test.sh` installs Chromium and baresip.

mod support;

use std::path::Path;
use std::time::Duration;

use support::baresip::Baresip;
use support::browser::Browser;
use support::phone::{Account, Rtp};
use support::{free_port, Server};

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

fn api(s: &Server, path: &str) -> String {
    let token = std::fs::read_to_string(s.dir.join("ferrosip.token")).expect("token");
    ureq::get(&format!("http://127.0.0.1:{}{path}", s.api_port))
        .set("Authorization", &format!("Bearer {}", token.trim()))
        .call()
        .expect("API")
        .into_string()
        .expect("text")
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

/// The browser's audio so far: packets received, sent, the loudest level heard.
fn stats(b: &Browser) -> (u64, u64, f64) {
    b.command("stats");
    let line = b.expect("stats ");
    let v: Vec<&str> = line.split(' ').collect();
    let n = |i: usize| v.get(i).and_then(|x| x.parse().ok()).unwrap_or(0);
    let level = v.get(3).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    (n(1), n(2), level)
}

/// Both heard each other since `before` (the browser's and the phone's counts then): 50
/// packets at least each way (a second of 20 ms packets), and the browser a tone.
fn talked(
    b: &Browser,
    bob: &mut Baresip,
    before: ((u64, u64, f64), Rtp),
) -> ((u64, u64, f64), Rtp) {
    std::thread::sleep(Duration::from_secs(2));
    let (browser, phone) = (stats(b), bob.rtp());
    let p0 = before.1;
    assert!(
        browser.0 >= before.0 .0 + 50,
        "the browser received {browser:?}, before {:?}; {}",
        before.0,
        b.log()
    );
    assert!(
        browser.1 >= before.0 .1 + 50,
        "the browser sent {browser:?}"
    );
    assert!(browser.2 > 0.01, "the browser heard silence: {browser:?}");
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
    let query = [
        ("ws", ws.as_str()),
        ("uri", "sip:alice@127.0.0.1"),
        ("user", ""),
        ("password", ""),
        ("bundle", bundle),
    ];
    let b = Browser::open(page, &query);
    b.expect("registered");
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
    talked(&b, &mut bob, ((0, 0, 0.0), zero));

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
    talked(&b, &mut bob, ((0, 0, 0.0), zero));
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
