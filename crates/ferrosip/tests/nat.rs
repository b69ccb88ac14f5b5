//! A phone behind NAT (its Contact is a private address, not where its REGISTER came
//! from): calls reach it at the source of its REGISTER, the server keeps its mapping open
//! with OPTIONS, and removes its binding once it stops answering.

mod support;

use std::time::{Duration, Instant};

use sip_message::{Message, ResponseBuilder};
use support::{Server, Ua};

/// An INVITE for bob from `caller`.
fn invite(caller: &Ua, server_port: u16, call_id: &str) -> String {
    format!(
        "INVITE sip:bob@127.0.0.1:{server_port} SIP/2.0\n\
Via: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bK{call_id}\n\
From: <sip:alice@127.0.0.1>;tag=a1\nTo: <sip:bob@127.0.0.1>\nCall-ID: {call_id}\nCSeq: 1 INVITE\n\
Contact: <sip:alice@127.0.0.1:{p}>\nMax-Forwards: 70\nContent-Length: 0\n\n",
        p = caller.port
    )
}

/// The next request `ua` receives within `t`, skipping responses.
fn next_request(ua: &Ua, t: Duration) -> Option<Message> {
    let end = Instant::now() + t;
    while Instant::now() < end {
        if let Some((m, _)) = ua.recv_timeout(end - Instant::now()) {
            if m.is_request() {
                return Some(m);
            }
        }
    }
    None
}

#[test]
fn a_phone_behind_nat_is_reached_kept_alive_and_dropped_when_silent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with_config(
        dir.path(),
        "[nat]\nkeepalive_interval = 1\nkeepalive_timeout = 3\n",
    );
    let (bob, alice) = (Ua::new(), Ua::new());
    let register = bob.register(server.port, "bob", "nat-reg", 1, "").replace(
        &format!("<sip:bob@127.0.0.1:{}>", bob.port),
        "<sip:bob@10.9.9.9:5060>",
    );
    bob.send(server.addr(), &register);
    assert_eq!(bob.recv().status(), Some(200));
    // The server pings it at its source, with its Contact as Request-URI.
    let ping = next_request(&bob, Duration::from_secs(4)).expect("a keepalive");
    assert_eq!(ping.method().map(|m| m.as_str()), Some("OPTIONS"));
    assert_eq!(ping.request_uri_str(), Some("sip:bob@10.9.9.9:5060"));
    let ok = ResponseBuilder::for_request(&ping, 200, "OK", None).build();
    bob.send_raw(server.addr(), &ok);
    // A call reaches it there too.
    alice.send(server.addr(), &invite(&alice, server.port, "nat-call-1"));
    let call = loop {
        let m = next_request(&bob, Duration::from_secs(4)).expect("the INVITE");
        if m.method().map(|m| m.as_str()) == Some("INVITE") {
            break m;
        }
        // (A keepalive meanwhile: answered.)
        bob.send_raw(
            server.addr(),
            &ResponseBuilder::for_request(&m, 200, "OK", None).build(),
        );
    };
    assert_eq!(call.request_uri_str(), Some("sip:bob@10.9.9.9:5060"));
    let busy = ResponseBuilder::for_request(&call, 486, "Busy", Some("b")).build();
    bob.send_raw(server.addr(), &busy);
    // Silent from now on: within a few seconds the binding is gone, and calls get 404.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 1;
    let gone = loop {
        std::thread::sleep(Duration::from_millis(500));
        n += 1;
        let caller = Ua::new();
        caller.send(
            server.addr(),
            &invite(&caller, server.port, &format!("nat-call-{n}")),
        );
        let answer = caller.recv_timeout(Duration::from_secs(2)).map(|(m, _)| m);
        if answer.is_some_and(|m| m.status() == Some(404)) {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
    };
    assert!(gone, "the silent binding was removed");
    assert!(server.terminate());
}
