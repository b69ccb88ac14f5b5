//! The media relay in the real server, on loopback: a call from a phone behind NAT (its
//! Contact a private address) gets its SDP rewritten to the relay, RTP flows both ways
//! through it, a third address's packets are dropped once the phones are latched, the
//! counters show in `/api/relay` and `/metrics`, and the BYE ends the session.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use sip_message::{HeaderName, Message};
use support::{Server, Ua};

fn sdp(rtp: &UdpSocket) -> String {
    let port = rtp.local_addr().expect("addr").port();
    format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\n")
}

/// The relay's port in an SDP body (which must name the relay's address).
fn relay_port(m: &Message) -> u16 {
    let body = String::from_utf8(m.body().to_vec()).expect("utf-8");
    assert!(body.contains("c=IN IP4 127.0.0.1\r\n"), "{body}");
    let line = body
        .lines()
        .find(|l| l.starts_with("m=audio "))
        .expect("m=");
    line.split(' ')
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("port")
}

fn rtp_socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    s
}

/// Sends `n` RTP packets from `from` to `to`; gives how many `at` received.
fn stream(from: &UdpSocket, to: SocketAddr, at: &UdpSocket, n: u16) -> usize {
    for seq in 0..n {
        let mut p = vec![0x80, 0x00];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&[0; 168]);
        from.send_to(&p, to).expect("send");
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut got = 0;
    let mut buf = [0u8; 2048];
    while at.recv_from(&mut buf).is_ok() {
        got += 1;
    }
    got
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

#[test]
fn a_call_from_behind_nat_goes_through_the_relay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = 46000 + (std::process::id() % 200) as u16 * 20;
    let server = Server::start_with_config(
        dir.path(),
        &format!(
            "[relay]\nbind = \"127.0.0.1\"\nports = \"{base}-{}\"\n",
            base + 19
        ),
    );
    let (alice, bob) = (Ua::new(), Ua::new());
    let (alice_rtp, bob_rtp, intruder) = (rtp_socket(), rtp_socket(), rtp_socket());
    bob.send(
        server.addr(),
        &bob.register(server.port, "bob", "media-reg", 3600, ""),
    );
    assert_eq!(bob.recv().status(), Some(200));

    // alice's Contact is private: the default script relays her call.
    let offer = sdp(&alice_rtp);
    let invite = format!(
        "INVITE sip:bob@127.0.0.1:{sp} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{p};rport;branch=z9hG4bKmedia1\n\
From: <sip:alice@127.0.0.1>;tag=a1\nTo: <sip:bob@127.0.0.1>\nCall-ID: media-call\nCSeq: 1 INVITE\n\
Contact: <sip:alice@10.9.9.9:5060>\nMax-Forwards: 70\nContent-Type: application/sdp\n\
Content-Length: {}\n\n{offer}",
        offer.len(),
        sp = server.port,
        p = alice.port
    );
    alice.send(server.addr(), &invite);
    let at_bob = bob.recv();
    let to_bob_side = relay_port(&at_bob);
    let answer = sdp(&bob_rtp);
    let mut ok = sip_message::ResponseBuilder::for_request(&at_bob, 200, "OK", Some("b1"))
        .header("Contact", &format!("<sip:bob@127.0.0.1:{}>", bob.port));
    for h in at_bob.headers_named(HeaderName::RecordRoute) {
        ok = ok.header("Record-Route", h.value);
    }
    let ok = ok.body("application/sdp", answer.into_bytes()).build();
    bob.send_raw(server.addr(), &ok);
    let at_alice = alice.recv();
    assert_eq!(at_alice.status(), Some(200));
    let to_alice_side = relay_port(&at_alice);
    assert_ne!(to_alice_side, to_bob_side);

    let relay = |port| SocketAddr::from(([127, 0, 0, 1], port));
    let heard = stream(&alice_rtp, relay(to_alice_side), &bob_rtp, 50);
    assert!(heard >= 45, "bob heard {heard} of 50");
    let heard = stream(&bob_rtp, relay(to_bob_side), &alice_rtp, 50);
    assert!(heard >= 45, "alice heard {heard} of 50");
    // Latched: a third address is not heard (strict source).
    assert_eq!(stream(&intruder, relay(to_alice_side), &bob_rtp, 10), 0);

    let json: serde_json::Value = serde_json::from_str(&api(&server, "/api/relay")).expect("JSON");
    assert_eq!(json["sessions"], 1, "{json}");
    assert!(json["packets"].as_u64() >= Some(90), "{json}");
    assert_eq!(json["dropped"], 10, "{json}");
    let call = &json["calls"][0];
    assert_eq!(call["call_id"], "media-call", "{json}");
    assert!(
        call["streams"][0]["offerer"]["packets"].as_u64() >= Some(45),
        "{json}"
    );
    let metrics = api(&server, "/metrics");
    assert!(metrics.contains("ferrosip_relay_sessions 1"), "{metrics}");

    // The BYE, through our Route, ends the session.
    let route = at_alice
        .header(HeaderName::RecordRoute)
        .expect("RR")
        .value
        .to_owned();
    let bye = format!(
        "BYE sip:bob@127.0.0.1:{bp} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{p};rport;branch=z9hG4bKmediabye\n\
Route: {route}\nFrom: <sip:alice@127.0.0.1>;tag=a1\nTo: <sip:bob@127.0.0.1>;tag=b1\nCall-ID: media-call\n\
CSeq: 2 BYE\nMax-Forwards: 70\nContent-Length: 0\n\n",
        bp = bob.port,
        p = alice.port
    );
    alice.send(server.addr(), &bye);
    let bye = bob.recv();
    assert_eq!(bye.method().map(|m| m.as_str()), Some("BYE"));
    std::thread::sleep(Duration::from_millis(200));
    let json: serde_json::Value = serde_json::from_str(&api(&server, "/api/relay")).expect("JSON");
    assert_eq!(json["sessions"], 0, "{json}");
}
