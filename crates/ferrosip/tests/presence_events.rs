//! The presence server's events against the real binary, watched by a plain UDP user agent
//! of the test's own (it checks every NOTIFY): a busy-lamp watcher of the dialog event sees
//! a sipp call early, confirmed and terminated, in that order; its subscription outlives a
//! `kill -9`; a phone's PUBLISH and a voicemail system's message summary reach watchers.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sip_message::{HeaderName, Message};
use support::sipp::{finish, registered_uas, sipp, spawn, tmp};
use support::{free_port, Server, Ua};

/// A watcher on its own UDP port.
struct Watcher {
    ua: Ua,
    call_id: String,
    cseq: u32,
    /// The server's tag and Contact, from its 200.
    to_tag: Option<String>,
    contact: Option<String>,
}

impl Watcher {
    fn new(call_id: &str) -> Watcher {
        Watcher {
            ua: Ua::new(),
            call_id: call_id.into(),
            cseq: 0,
            to_tag: None,
            contact: None,
        }
    }

    /// Subscribes to `user`'s `event` (or refreshes, to the Contact of the server's 200):
    /// the 200's Expires.
    fn subscribe(&mut self, s: &Server, user: &str, event: &str, expires: u32) -> u32 {
        self.cseq += 1;
        let to_tag = self
            .to_tag
            .as_ref()
            .map_or(String::new(), |t| format!(";tag={t}"));
        let target = self
            .contact
            .clone()
            .unwrap_or_else(|| format!("sip:{user}@127.0.0.1"));
        let text = format!(
            "SUBSCRIBE {target} SIP/2.0\n\
             Via: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bKsub{c}{n};rport\n\
             From: <sip:watcher@127.0.0.1>;tag=w1\nTo: <sip:{user}@127.0.0.1>{to_tag}\n\
             Call-ID: {c}\nCSeq: {n} SUBSCRIBE\nContact: <sip:watcher@127.0.0.1:{p}>\n\
             Event: {event}\nExpires: {expires}\nMax-Forwards: 70\nContent-Length: 0\n\n",
            p = self.ua.port,
            c = self.call_id,
            n = self.cseq,
        );
        self.ua.send(s.addr(), &text);
        loop {
            let m = self.ua.recv();
            if m.is_request() {
                // A NOTIFY may overtake the 200.
                self.answer(&m, s.addr());
                continue;
            }
            assert_eq!(
                m.status(),
                Some(200),
                "{}",
                String::from_utf8_lossy(m.buffer())
            );
            let tag = m
                .to()
                .expect("To")
                .tag()
                .expect("the 200 has a To tag")
                .to_owned();
            assert!(
                m.header(HeaderName::Contact).is_some(),
                "a 200 to SUBSCRIBE has a Contact"
            );
            self.to_tag = Some(tag);
            return m.expires().expect("Expires").expect("Expires");
        }
    }

    /// Answers a NOTIFY with 200.
    fn answer(&self, m: &Message, to: SocketAddr) {
        let header = |n: HeaderName| m.header(n).map(|h| h.value).unwrap_or_default();
        let vias: String = m
            .headers_named(HeaderName::Via)
            .map(|h| format!("Via: {}\n", h.value))
            .collect();
        let text = format!(
            "SIP/2.0 200 OK\n{vias}From: {}\nTo: {}\nCall-ID: {}\nCSeq: {}\nContent-Length: 0\n\n",
            header(HeaderName::From),
            header(HeaderName::To),
            header(HeaderName::CallId),
            header(HeaderName::CSeq),
        );
        self.ua.send(to, &text);
    }

    /// The next NOTIFY (answered), within `wait`.
    fn notify(&self, wait: Duration) -> Option<Message> {
        let deadline = Instant::now() + wait;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let (m, from) = self.ua.recv_timeout(left)?;
            if m.method().map(|x| x.as_str()) == Some("NOTIFY") {
                self.answer(&m, from);
                return Some(m);
            }
        }
        None
    }
}

fn body(m: &Message) -> String {
    String::from_utf8_lossy(&m.body()).into_owned()
}

fn cseq(m: &Message) -> u32 {
    m.cseq().expect("CSeq").seq
}

/// The state of the call in a dialog-info NOTIFY ("" for none listed).
fn call_state(m: &Message) -> String {
    let b = body(m);
    b.split("<state>")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap_or_default()
        .to_owned()
}

/// The states of the one call a busy lamp learns of, until it is over (15 s at most), and
/// the last NOTIFY's CSeq; each CSeq is past `after`'s.
fn lamp(w: &Watcher, after: u32) -> (Vec<String>, u32) {
    let mut seen: Vec<String> = Vec::new();
    let mut last_cseq = after;
    while seen.last().map(String::as_str) != Some("terminated") {
        let n = w
            .notify(Duration::from_secs(15))
            .expect("a NOTIFY within 15 s");
        assert!(cseq(&n) > last_cseq, "CSeqs rise");
        last_cseq = cseq(&n);
        assert_eq!(n.header(HeaderName::Event).unwrap().value, "dialog");
        let state = call_state(&n);
        if !state.is_empty() && seen.last() != Some(&state) {
            seen.push(state);
        }
    }
    (seen, last_cseq)
}

#[test]
fn a_busy_lamp_sees_early_confirmed_terminated_and_outlives_a_kill() {
    let dir = tmp();
    let s = Server::start(dir.path(), &[]);
    let mut w = Watcher::new("blf-1");
    assert_eq!(w.subscribe(&s, "bob", "dialog", 600), 600);
    let first = w.notify(Duration::from_secs(5)).expect("the first NOTIFY");
    assert!(first
        .header(HeaderName::SubscriptionState)
        .unwrap()
        .value
        .starts_with("active;expires="));
    assert_eq!(call_state(&first), "", "no call yet: {}", body(&first));

    let call = |s: &Server| {
        let uas = registered_uas(s, "bob", "uas.xml");
        let uac = spawn(sipp(
            Some(s),
            "uac_talk.xml",
            "bob",
            free_port(),
            &[("pause", "1000")],
        ));
        (uas, uac)
    };
    let (uas, uac) = call(&s);
    let (states, sent) = lamp(&w, cseq(&first));
    assert!(finish(uac) && finish(uas));
    let wanted = ["early", "confirmed", "terminated"];
    let states: Vec<&str> = states
        .iter()
        .map(String::as_str)
        .filter(|s| *s != "trying")
        .collect();
    assert_eq!(states, wanted, "in order, none back");

    // A refresh, to the server's Contact, as phones send it: a NOTIFY follows.
    assert_eq!(w.subscribe(&s, "bob", "dialog", 300), 300);
    let refreshed = w
        .notify(Duration::from_secs(5))
        .expect("a NOTIFY after the refresh");
    assert!(cseq(&refreshed) > sent);
    let sent = cseq(&refreshed);
    // The subscription is stored within a second; a kill -9 and a restart keep it, and
    // the next NOTIFYs' CSeqs are past those sent before.
    std::thread::sleep(Duration::from_millis(1500));
    let (path, port) = s.kill9();
    let s = Server::start_on(&path, port, &[]);
    let (uas, uac) = call(&s);
    let (states, _) = lamp(&w, sent);
    assert!(finish(uac) && finish(uas));
    assert!(states.contains(&"confirmed".to_owned()), "{states:?}");
    // Unsubscribing ends it with a last NOTIFY.
    assert_eq!(w.subscribe(&s, "bob", "dialog", 0), 0);
    let last = w.notify(Duration::from_secs(5)).expect("the last NOTIFY");
    let state = last.header(HeaderName::SubscriptionState).unwrap().value;
    assert!(state.starts_with("terminated"), "{state}");
}

/// A PUBLISH for bob (from bob) reaches his watcher with the note it carries; a voicemail
/// system's message summary reaches bob's own subscription to it.
#[test]
fn publications_reach_watchers() {
    let dir = tmp();
    let s = Server::start(dir.path(), &["--config", &trusting(dir.path())]);
    let bob = Ua::new();
    bob.send(
        s.addr(),
        &bob.register(s.port, "bob", "reg-bob", 1, ";expires=600"),
    );
    assert_eq!(bob.recv().status(), Some(200));
    let mut w = Watcher::new("pres-1");
    w.subscribe(&s, "bob", "presence", 600);
    let first = w.notify(Duration::from_secs(5)).expect("the first NOTIFY");
    assert!(
        body(&first).contains("<basic>open</basic>"),
        "registered: {}",
        body(&first)
    );
    let pidf = "<?xml version=\"1.0\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
                entity=\"sip:bob@127.0.0.1\"><tuple id=\"t1\"><status><basic>open</basic>\
                </status><note>In a meeting</note></tuple></presence>";
    let publish = format!(
        "PUBLISH sip:bob@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bKpub1\n\
         From: <sip:bob@127.0.0.1>;tag=p1\nTo: <sip:bob@127.0.0.1>\nCall-ID: pub-1\n\
         CSeq: 1 PUBLISH\nEvent: presence\nExpires: 600\nMax-Forwards: 70\n\
         Content-Type: application/pidf+xml\nContent-Length: {}\n\n{pidf}",
        pidf.len(),
        p = bob.port
    );
    bob.ua_send_raw(s.addr(), &publish);
    let ok = bob.recv();
    assert_eq!(ok.status(), Some(200));
    assert!(ok.header_str("SIP-ETag").is_some());
    // (The presence of a presentity is notified at most once in 5 s.)
    let n = w
        .notify(Duration::from_secs(8))
        .expect("the published state");
    assert!(
        body(&n).contains("<note>In a meeting</note>"),
        "{}",
        body(&n)
    );

    // Message summaries: bob's own subscription; the voicemail system is trusted.
    let mut mwi = Watcher::new("mwi-1");
    mwi.ua = bob;
    let sub = format!(
        "SUBSCRIBE sip:bob@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bKm1\n\
         From: <sip:bob@127.0.0.1>;tag=m1\nTo: <sip:bob@127.0.0.1>\nCall-ID: mwi-1\n\
         CSeq: 1 SUBSCRIBE\nContact: <sip:bob@127.0.0.1:{p}>\nEvent: message-summary\n\
         Expires: 600\nMax-Forwards: 70\nContent-Length: 0\n\n",
        p = mwi.ua.port
    );
    mwi.ua.send(s.addr(), &sub);
    let (mut got_ok, mut first) = (false, None);
    while !got_ok || first.is_none() {
        let (m, from) = mwi
            .ua
            .recv_timeout(Duration::from_secs(5))
            .expect("an answer");
        if m.is_request() {
            mwi.answer(&m, from);
            first = Some(m);
        } else {
            got_ok |= m.status() == Some(200);
        }
    }
    assert_eq!(body(&first.unwrap()), "Messages-Waiting: no\r\n");
    let vm = Ua::new();
    let summary = "Messages-Waiting: yes\r\nVoice-Message: 2/8 (0/2)\r\n";
    let publish = format!(
        "PUBLISH sip:bob@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bKvm1\n\
         From: <sip:voicemail@127.0.0.1>;tag=v1\nTo: <sip:bob@127.0.0.1>\nCall-ID: vm-1\n\
         CSeq: 1 PUBLISH\nEvent: message-summary\nExpires: 600\nMax-Forwards: 70\n\
         Content-Type: application/simple-message-summary\nContent-Length: {}\n\n{summary}",
        summary.len(),
        p = vm.port
    );
    vm.ua_send_raw(s.addr(), &publish);
    assert_eq!(vm.recv().status(), Some(200));
    let n = mwi.notify(Duration::from_secs(5)).expect("the summary");
    assert_eq!(body(&n), summary);
}

/// A configuration that trusts 127.0.0.1 (the voicemail system's address).
fn trusting(dir: &std::path::Path) -> String {
    let config = dir.join("ferrosip.toml");
    std::fs::write(&config, "[auth]\ntrusted = [\"127.0.0.1/32\"]\n").expect("write");
    config.to_str().expect("utf-8 path").to_owned()
}

trait SendRaw {
    fn ua_send_raw(&self, to: SocketAddr, text: &str);
}

impl SendRaw for Ua {
    /// Sends `text` with CRLF line ends but its body as written.
    fn ua_send_raw(&self, to: SocketAddr, text: &str) {
        let (head, body) = text.split_once("\n\n").expect("a blank line");
        let data = format!("{}\r\n\r\n{body}", head.replace('\n', "\r\n"));
        self.send_raw(to, data.as_bytes());
    }
}
