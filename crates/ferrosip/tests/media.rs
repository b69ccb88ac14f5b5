//! The media relay in the real server, on loopback: a call from a phone behind NAT (its
//! Contact a private address) gets its SDP rewritten to the relay, RTP flows both ways
//! through it, a third address's packets are dropped once the phones are latched, the
//! counters show in `/api/relay` and `/metrics`, and the BYE ends the session; the same with
//! the kernel forwarding the latched streams (in a network namespace of the test's own); and
//! the same through Debian's rtpengine, driven over ng, with failover from a relay that is
//! down.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use sip_message::{HeaderName, Message};
use support::{api, Server, Ua};

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

/// The two phones of a call and their media sockets.
struct Phones {
    alice: Ua,
    bob: Ua,
    alice_rtp: UdpSocket,
    bob_rtp: UdpSocket,
}

impl Phones {
    /// bob registered with `server`.
    fn new(server: &Server) -> Phones {
        let p = Phones {
            alice: Ua::new(),
            bob: Ua::new(),
            alice_rtp: rtp_socket(),
            bob_rtp: rtp_socket(),
        };
        p.bob.send(
            server.addr(),
            &p.bob.register(server.port, "bob", "media-reg", 3600, ""),
        );
        assert_eq!(p.bob.recv().status(), Some(200));
        p
    }

    /// alice (behind NAT: her Contact is private, so the default script relays her call)
    /// calls bob; gives the relay ports each side sends to, and the Route for the dialog.
    fn call(&self, server: &Server, call_id: &str) -> (u16, u16, String) {
        let (alice, bob) = (&self.alice, &self.bob);
        let offer = sdp(&self.alice_rtp);
        let invite = format!(
            "INVITE sip:bob@127.0.0.1:{sp} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{p};rport;branch=z9hG4bK{call_id}\n\
From: <sip:alice@127.0.0.1>;tag=a1\nTo: <sip:bob@127.0.0.1>\nCall-ID: {call_id}\nCSeq: 1 INVITE\n\
Contact: <sip:alice@10.9.9.9:5060>\nMax-Forwards: 70\nContent-Type: application/sdp\n\
Content-Length: {}\n\n{offer}",
            offer.len(),
            sp = server.port,
            p = alice.port
        );
        alice.send(server.addr(), &invite);
        let at_bob = bob.recv();
        let to_bob_side = relay_port(&at_bob);
        let answer = sdp(&self.bob_rtp);
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
        let route = at_alice
            .header(HeaderName::RecordRoute)
            .expect("RR")
            .value
            .to_owned();
        (to_alice_side, to_bob_side, route)
    }

    /// RTP both ways through the relay: each hears at least 45 of 50 packets.
    fn talk(&self, to_alice_side: u16, to_bob_side: u16) {
        let heard = stream(&self.alice_rtp, relay(to_alice_side), &self.bob_rtp, 50);
        assert!(heard >= 45, "bob heard {heard} of 50");
        let heard = stream(&self.bob_rtp, relay(to_bob_side), &self.alice_rtp, 50);
        assert!(heard >= 45, "alice heard {heard} of 50");
    }

    /// alice's BYE through our Route reaches bob.
    fn hang_up(&self, server: &Server, call_id: &str, route: &str) {
        let bye = format!(
            "BYE sip:bob@127.0.0.1:{bp} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{p};rport;branch=z9hG4bK{call_id}bye\n\
Route: {route}\nFrom: <sip:alice@127.0.0.1>;tag=a1\nTo: <sip:bob@127.0.0.1>;tag=b1\nCall-ID: {call_id}\n\
CSeq: 2 BYE\nMax-Forwards: 70\nContent-Length: 0\n\n",
            bp = self.bob.port,
            p = self.alice.port
        );
        self.alice.send(server.addr(), &bye);
        let bye = self.bob.recv();
        assert_eq!(bye.method().map(|m| m.as_str()), Some("BYE"));
        let ok = sip_message::ResponseBuilder::for_request(&bye, 200, "OK", None).build();
        self.bob.send_raw(server.addr(), &ok);
        assert_eq!(self.alice.recv().status(), Some(200), "the BYE's answer");
    }
}

fn relay(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
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
    let phones = Phones::new(&server);
    let (to_alice_side, to_bob_side, route) = phones.call(&server, "media-call");
    phones.talk(to_alice_side, to_bob_side);
    // Latched: a third address is not heard (strict source).
    let intruder = rtp_socket();
    assert_eq!(
        stream(&intruder, relay(to_alice_side), &phones.bob_rtp, 10),
        0
    );

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

    // The BYE ends the session.
    phones.hang_up(&server, "media-call", &route);
    std::thread::sleep(Duration::from_millis(200));
    let json: serde_json::Value = serde_json::from_str(&api(&server, "/api/relay")).expect("JSON");
    assert_eq!(json["sessions"], 0, "{json}");
}

#[test]
fn with_kernel_forwarding_a_calls_latched_streams_go_through_the_kernel() {
    // In a network namespace of its own (as root; scripts/test.sh runs it so): the server,
    // made from this thread, starts there, and so do the phones' sockets.
    std::thread::spawn(|| {
        // SAFETY: unshare changes this thread's network namespace alone.
        assert_eq!(
            unsafe { libc::unshare(libc::CLONE_NEWNET) },
            0,
            "unshare (root?)"
        );
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        let ns = format!("--net=/proc/{}/task/{tid}/ns/net", std::process::id());
        let up = std::process::Command::new("nsenter")
            .args([ns.as_str(), "ip", "link", "set", "lo", "up"])
            .status();
        assert!(up.expect("nsenter").success());
        let dir = tempfile::tempdir().expect("tempdir");
        let server = Server::start_with_config(
            dir.path(),
            "[relay]\nbind = \"127.0.0.1\"\nports = \"46000-46019\"\nkernel_forwarding = true\n",
        );
        let phones = Phones::new(&server);
        let (to_alice_side, to_bob_side, route) = phones.call(&server, "kernel-call");
        for _ in 0..3 {
            phones.talk(to_alice_side, to_bob_side);
        }
        let intruder = rtp_socket();
        assert_eq!(
            stream(&intruder, relay(to_alice_side), &phones.bob_rtp, 10),
            0
        );
        // Within a second the relay reads what the kernel forwarded: all but the packets
        // before both sides latched (alice's first 50).
        let mut json = serde_json::Value::Null;
        for _ in 0..30 {
            json = serde_json::from_str(&api(&server, "/api/relay")).expect("JSON");
            if json["kernel_packets"].as_u64() >= Some(200) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(json["kernel_packets"].as_u64() >= Some(200), "{json}");
        assert!(json["packets"].as_u64() >= Some(280), "{json}");
        assert_eq!(json["dropped"], 10, "{json}");
        let metrics = api(&server, "/metrics");
        assert!(
            metrics.contains("ferrosip_relay_kernel_packets_total"),
            "{metrics}"
        );
        // The BYE ends the session, and the kernel forwards nothing more.
        phones.hang_up(&server, "kernel-call", &route);
        std::thread::sleep(Duration::from_millis(200));
        let json: serde_json::Value =
            serde_json::from_str(&api(&server, "/api/relay")).expect("JSON");
        assert_eq!(json["sessions"], 0, "{json}");
        assert_eq!(
            stream(&phones.alice_rtp, relay(to_alice_side), &phones.bob_rtp, 10),
            0,
            "forwarded after the BYE"
        );
    })
    .join()
    .expect("thread");
}

/// A process killed when dropped.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Debian's rtpengine, userspace forwarding only, its ng port on `ng` and its media ports
/// from `base`.
fn rtpengine(ng: u16, base: u16, dir: &std::path::Path) -> Daemon {
    let daemon = std::process::Command::new("rtpengine")
        .args([
            "--interface=127.0.0.1",
            "--foreground",
            "--log-stderr",
            "--table=-1",
        ])
        .arg(format!("--listen-ng=127.0.0.1:{ng}"))
        .arg(format!("--port-min={base}"))
        .arg(format!("--port-max={}", base + 99))
        .arg(format!("--pidfile={}", dir.join("rtpengine.pid").display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(Daemon)
        .expect("rtpengine runs (scripts/test.sh installs rtpengine-daemon)");
    // Ready when it answers a ping.
    let probe = UdpSocket::bind("127.0.0.1:0").expect("bind");
    probe
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    for _ in 0..50 {
        let _ = probe.send_to(b"p1 d7:command4:pinge", ("127.0.0.1", ng));
        let mut buf = [0u8; 100];
        if probe.recv_from(&mut buf).is_ok() {
            return daemon;
        }
    }
    panic!("rtpengine did not answer a ping in 5 s");
}

/// ferrosip drives external relays over ng: rtpengine here, with a dead relay listed
/// before it that calls fail over from.
#[test]
fn calls_go_through_rtpengine_over_ng_and_fail_over_from_a_dead_relay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ng = support::free_port();
    let dead = support::free_port();
    let base = 47000 + (std::process::id() % 100) as u16 * 100;
    let _rtpengine = rtpengine(ng, base, dir.path());
    let server = Server::start_with_config(
        dir.path(),
        &format!("[relay]\nng = [\"udp:127.0.0.1:{dead}\", \"udp:127.0.0.1:{ng}\"]\n"),
    );
    let phones = Phones::new(&server);
    // Calls are shared out by Call-ID (hashed with the relays' addresses, which are random
    // here): half of them try the dead relay first. Calls until one has (at most 12: all
    // twelve missing it is a chance of 1 in 4096), and one more after it.
    let mut after_failover = 0;
    for n in 0..12 {
        if server.log().contains("does not answer") {
            after_failover += 1;
            if after_failover > 1 {
                break;
            }
        }
        let call_id = format!("ng-call-{n}");
        let (to_alice_side, to_bob_side, route) = phones.call(&server, &call_id);
        assert!(
            (base..base + 100).contains(&to_alice_side),
            "rtpengine's port: {to_alice_side}"
        );
        phones.talk(to_alice_side, to_bob_side);
        phones.hang_up(&server, &call_id, &route);
    }
    assert!(server.log().contains("does not answer"), "{}", server.log());
}
