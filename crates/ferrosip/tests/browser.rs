//! Browsers on SIP over WebSocket (RFC 7118) end to end, in headless Chromium
//! (`support/browser.rs`): JsSIP over WS and SIP.js over WSS register, get a MESSAGE from
//! sipp on UDP, are called by sipp with a WebRTC offer and call a sipp answering with a
//! WebRTC answer (signalling only: no media flows), and when their WebSocket drops connect
//! again and register again, their binding replaced and reached over the new connection; a
//! request of a call whose connection dropped gets 430 Flow Failed.
//! `scripts/test.sh` installs Chromium and sipp; these tests fail, not skip, without them.

mod support;

use std::path::Path;

use support::browser::Browser;
use support::ca::Ca;
use support::sipp::{finish, register, run, sipp, spawn, tmp};
use support::{free_port, Server};

/// The server on UDP and on `scheme` (`ws`, or `wss` with a certificate of a test CA, which
/// the test's Chromium accepts), its database in `dir`; the page's WebSocket URL.
fn server(dir: &Path, scheme: &str) -> (Server, String) {
    let (port, ws_port) = (free_port(), free_port());
    let config = dir.join("ferrosip.toml");
    if scheme == "wss" {
        Ca::new(dir, "server").sign("server");
        let tls = "[tls]\ncertificate = \"server.pem\"\nprivate_key = \"server.key\"\n";
        std::fs::write(&config, tls).expect("config");
    } else {
        std::fs::write(&config, "").expect("config");
    }
    let listens = [
        format!("udp:127.0.0.1:{port}"),
        format!("{scheme}:127.0.0.1:{ws_port}"),
    ];
    let config = config.to_str().expect("utf-8 path");
    let s = Server::start_listens(dir, port, &listens, &["--config", config]);
    (s, format!("{scheme}://127.0.0.1:{ws_port}"))
}

/// `ferrosip location show` for `aor`: a line per binding.
fn bindings(dir: &Path, aor: &str) -> Vec<String> {
    let db = dir.join("ferrosip.db");
    let shown = support::cli(
        &["location", "show", aor, "--db", db.to_str().expect("utf-8")],
        "",
    );
    assert!(shown.ok, "{}", shown.stderr);
    shown.stdout.lines().map(str::to_owned).collect()
}

/// sipp on UDP sends alice `text` in a MESSAGE; the page shows it.
fn message_reaches(s: &Server, b: &Browser, text: &str) {
    let keys = [("text", text)];
    let sent = run(sipp(
        Some(s),
        "uac_message.xml",
        "alice",
        free_port(),
        &keys,
    ));
    assert!(sent, "sipp's MESSAGE to alice; events: {:#?}", b.events());
    assert_eq!(b.expect("message "), format!("message {text}"));
}

/// alice in `page` over `scheme`: everything in the module doc.
fn a_browser_registers_calls_is_called_and_reconnects(page: &str, scheme: &str) {
    let dir = tmp();
    let (s, ws) = server(dir.path(), scheme);
    let query = [
        ("ws", ws.as_str()),
        ("uri", "sip:alice@127.0.0.1"),
        ("user", ""),
        ("password", ""),
    ];
    let b = Browser::open(page, &query);
    b.expect("connected");
    b.expect("registered");
    let before = bindings(dir.path(), "alice@127.0.0.1");
    assert_eq!(before.len(), 1, "{before:?}");
    message_reaches(&s, &b, "hello browser");
    // sipp calls alice with a WebRTC offer: her browser answers, sipp hangs up.
    let caller = spawn(sipp(Some(&s), "uac_webrtc.xml", "alice", free_port(), &[]));
    let incoming = b.expect("incoming-call");
    assert!(
        incoming.starts_with("incoming-call sip:caller@127.0.0.1"),
        "{incoming}"
    );
    b.expect("call-confirmed");
    let ended = b.expect("call-ended");
    assert!(ended.starts_with("call-ended remote"), "{ended}");
    assert!(finish(caller), "sipp's call to alice");
    // alice calls bob, a sipp on UDP answering with a WebRTC answer, and hangs up.
    let bob_port = free_port();
    assert!(register(&s, "bob", bob_port, "1.0", "600", "200"));
    let bob = spawn(sipp(None, "uas_webrtc.xml", "bob", bob_port, &[]));
    b.command("call sip:bob@127.0.0.1");
    b.expect("call-confirmed");
    b.command("hangup");
    let ended = b.expect("call-ended");
    assert!(ended.starts_with("call-ended local"), "{ended}");
    assert!(finish(bob), "bob's side of alice's call");
    // Her WebSocket drops: the library connects again and registers again; the binding
    // is replaced, and a MESSAGE reaches her over the new connection.
    b.command("reconnect");
    b.expect("disconnected");
    b.expect("connected");
    b.expect("registered");
    let after = bindings(dir.path(), "alice@127.0.0.1");
    assert_eq!(
        after.len(),
        1,
        "one binding after the reconnection: {after:?}"
    );
    message_reaches(&s, &b, "after the reconnection");
    // sipp calls her again; her WebSocket drops during the call: sipp's BYE, for the
    // connection that is gone, gets 430 Flow Failed.
    let caller = spawn(sipp(
        Some(&s),
        "uac_webrtc_flow_failed.xml",
        "alice",
        free_port(),
        &[],
    ));
    b.expect("incoming-call");
    b.expect("call-confirmed");
    b.command("reconnect");
    b.expect("disconnected");
    assert!(
        finish(caller),
        "sipp's BYE got 430; events: {:#?}",
        b.events()
    );
}

#[test]
fn jssip_over_ws_registers_calls_is_called_and_reconnects() {
    a_browser_registers_calls_is_called_and_reconnects("jssip.html", "ws");
}

#[test]
fn sipjs_over_wss_registers_calls_is_called_and_reconnects() {
    a_browser_registers_calls_is_called_and_reconnects("sipjs.html", "wss");
}
