//! The browser harness itself (`support/browser.rs` and the pages in `tests/browser`), with
//! no SIP server: each page loads its library in headless Chromium and says so, reports the
//! WebSocket it cannot open, and runs the commands it long-polls from the test (`ping`
//! answered by `pong`, an unknown command reported as failed). `scripts/test.sh` installs
//! Chromium; these tests fail, not skip, without it.

mod support;

use support::browser::Browser;
use support::free_port;

/// `page` (its library `library`) against a WebSocket port where nothing listens.
fn round_trip(page: &str, library: &str) {
    let ws = format!("ws://127.0.0.1:{}", free_port());
    let query = [
        ("ws", ws.as_str()),
        ("uri", "sip:alice@127.0.0.1"),
        ("user", ""),
        ("password", ""),
    ];
    let b = Browser::open(page, &query);
    let loaded = b.expect("loaded");
    assert!(
        loaded.starts_with(&format!("loaded {library} ")),
        "{loaded}"
    );
    b.expect("disconnected");
    for n in 1..=2 {
        b.command(&format!("ping {n}"));
        assert_eq!(b.expect("pong"), format!("pong {n}"));
    }
    b.command("dance");
    b.expect("command-failed dance");
    let events = b.events();
    assert!(
        !events
            .iter()
            .any(|e| e.starts_with("registered") || e.starts_with("error")),
        "{events:#?}"
    );
}

#[test]
fn the_jssip_page_loads_reports_and_takes_commands() {
    round_trip("jssip.html", "JsSIP");
}

#[test]
fn the_sipjs_page_loads_reports_and_takes_commands() {
    round_trip("sipjs.html", "SIP.js");
}
