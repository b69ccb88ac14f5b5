//! The relay answering rtpengine's ng protocol over UDP, as Kamailio's rtpengine module
//! asks it: ping, offer, answer, a retransmission, query, list, statistics, delete.

use std::net::UdpSocket;
use std::time::Duration;

use relay_net::{serve_ng, MediaRelay};

mod support;
use support::{base, config};

fn ask(sock: &UdpSocket, text: &[u8]) -> String {
    sock.send(text).expect("send");
    let mut buf = vec![0u8; 65535];
    let n = loop {
        match sock.recv(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => break r.expect("a reply within 2 s"),
        }
    };
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn offer(cookie: &str, command: &str, tags: &str, port: u16) -> Vec<u8> {
    let sdp = format!("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\n");
    format!(
        "{cookie} d3:ICE6:remove7:call-id4:ng-17:command{}:{command}{tags}7:replacel6:origin18:session-connectione3:sdp{}:{sdp}e",
        command.len(),
        sdp.len()
    )
    .into_bytes()
}

#[test]
fn kamailios_requests_are_answered() {
    let relay = MediaRelay::start(&config(base(0), 20, "192.0.2.80", true)).expect("relay");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let server = rt
        .block_on(tokio::net::UdpSocket::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = server.local_addr().expect("addr");
    std::thread::spawn(move || rt.block_on(serve_ng(relay, server, |ip| ip.is_loopback())));
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.connect(addr).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");

    assert_eq!(ask(&sock, b"p1 d7:command4:pinge"), "p1 d6:result4:ponge");
    let reply = ask(&sock, &offer("o1", "offer", "8:from-tag2:ft", 4000));
    assert!(reply.starts_with("o1 d6:result2:ok3:sdp"), "{reply}");
    assert!(reply.contains("c=IN IP4 192.0.2.80\r\n"), "{reply}");
    assert!(reply.contains("o=- 1 1 IN IP4 192.0.2.80\r\n"), "{reply}");
    // A retransmission gets the same reply (the same ports).
    assert_eq!(
        ask(&sock, &offer("o1", "offer", "8:from-tag2:ft", 4000)),
        reply
    );
    let answer = ask(
        &sock,
        &offer("a1", "answer", "8:from-tag2:ft6:to-tag2:tt", 6000),
    );
    assert!(answer.starts_with("a1 d6:result2:ok3:sdp"), "{answer}");
    assert_ne!(
        answer[answer.find("m=audio").expect("m=")..],
        reply[reply.find("m=audio").expect("m=")..]
    );
    let query = ask(&sock, b"q1 d7:call-id4:ng-17:command5:querye");
    assert!(query.contains("6:result2:ok"), "{query}");
    // Kamailio's $rtpstat reads both.
    assert!(
        query.contains("4:RTCPd5:bytesi0e6:errorsi0e7:packetsi0ee3:RTPd"),
        "{query}"
    );
    let list = ask(&sock, b"l1 d7:command4:liste");
    assert_eq!(list, "l1 d5:callsl4:ng-1e6:result2:oke");
    let stats = ask(&sock, b"s1 d7:command10:statisticse");
    assert!(stats.contains("8:sessionsi1e"), "{stats}");
    // An answer for a call nobody offered, and a command nobody knows.
    let orphan = ask(
        &sock,
        &offer("a2", "answer", "8:from-tag1:x6:to-tag1:y", 6000).replace_call(),
    );
    assert!(orphan.contains("5:error"), "{orphan}");
    let deleted = ask(
        &sock,
        b"d1 d7:call-id4:ng-17:command6:delete8:from-tag2:fte",
    );
    assert_eq!(deleted, "d1 d6:result2:oke");
    assert_eq!(
        ask(&sock, b"l2 d7:command4:liste"),
        "l2 d5:callsle6:result2:oke"
    );
    // What cannot be read still gets an error (a proxy with no reply takes the relay for
    // dead): a command nobody knows, a Call-ID that is not UTF-8, broken bencode.
    for (cookie, request) in [
        ("u1", &b"u1 d7:command14:start recordinge"[..]),
        ("u2", b"u2 d7:call-id2:\xff\xfe7:command5:querye"),
        ("u3", b"u3 d7:comm"),
    ] {
        let reply = ask(&sock, request);
        assert!(
            reply.starts_with(&format!("{cookie} d12:error-reason"))
                && reply.contains("6:result5:error"),
            "{reply}"
        );
    }
}

trait ReplaceCall {
    fn replace_call(self) -> Vec<u8>;
}

impl ReplaceCall for Vec<u8> {
    /// The same request for another Call-ID (`ng-2`).
    fn replace_call(self) -> Vec<u8> {
        String::from_utf8(self)
            .expect("utf-8")
            .replace("4:ng-1", "4:ng-2")
            .into_bytes()
    }
}
