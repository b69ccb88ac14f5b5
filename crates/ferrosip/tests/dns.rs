//! Next hops by DNS (RFC 3263) end to end, against a DNS server of the test's own (dnsmasq
//! on a loopback port, `[dns] servers`): a domain's NAPTR leads to its SRV and that to an
//! address; a domain with SRV records alone is found by them; a URI with a port skips SRV;
//! a target that answers 503 or is down hands the request to the next within its
//! transaction (RFC 3263 §4.3), and is tried last by the requests after it; weights share
//! the load.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::dns::Dns;
use support::{Server, Ua};

/// A MESSAGE from `ua` (a trusted peer) to `uri`, through the server.
fn message(ua: &Ua, s: &Server, uri: &str, call_id: &str) {
    ua.send(
        s.addr(),
        &format!(
            "MESSAGE {uri} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{p};rport;branch=z9hG4bK{call_id}\n\
From: <sip:a@127.0.0.1>;tag=a\nTo: <{uri}>\nCall-ID: {call_id}\nCSeq: 1 MESSAGE\n\
Max-Forwards: 70\nContent-Type: text/plain\nContent-Length: 2\n\nhi",
            p = ua.port
        ),
    );
}

/// A call from `ua` (a trusted peer) to `uri`, through the server.
fn call(ua: &Ua, s: &Server, uri: &str, call_id: &str) {
    ua.send(
        s.addr(),
        &format!(
            "INVITE {uri} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{p};rport;branch=z9hG4bK{call_id}\n\
From: <sip:a@127.0.0.1>;tag=a\nTo: <{uri}>\nCall-ID: {call_id}\nCSeq: 1 INVITE\n\
Contact: <sip:a@127.0.0.1:{p}>\nMax-Forwards: 70\nContent-Length: 0\n\n",
            p = ua.port
        ),
    );
}

/// The final response `ua` gets to call `call_id` within `wait`.
fn final_status(ua: &Ua, call_id: &str, wait: Duration) -> Option<u16> {
    let until = std::time::Instant::now() + wait;
    while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
        let (m, _) = ua.recv_timeout(left)?;
        let code = m.status()?;
        if code >= 200 && m.call_id().ok() == Some(call_id) {
            return Some(code);
        }
    }
    None
}

/// The request `peer` gets (within 5 s), and where from.
fn arrives(peer: &Ua, call_id: &str) -> (sip_message::Message, std::net::SocketAddr) {
    let (m, from) = peer
        .recv_timeout(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("{call_id}: nothing arrived"));
    assert_eq!(m.call_id().ok(), Some(call_id), "{m:?}");
    (m, from)
}

/// `peer` answers `req` (from `from`) with `code`.
fn respond(peer: &Ua, (req, from): (sip_message::Message, std::net::SocketAddr), code: u16) {
    let answer = sip_message::ResponseBuilder::for_request(&req, code, "X", Some("t")).build();
    peer.send_raw(from, &answer);
}

#[test]
fn naptr_srv_and_addresses_lead_to_the_next_hop() {
    let (naptr_peer, srv_peer, port_peer) = (Ua::new(), Ua::new(), Ua::new());
    let dns = Dns::start(&[
        // example.test: NAPTR → SRV → sip1 (the UDP service only; TCP's has no SRV).
        "--naptr-record=example.test,10,10,S,SIP+D2U,,_sip._udp.example.test".into(),
        "--naptr-record=example.test,20,10,S,SIP+D2T,,_sip._tcp.example.test".into(),
        format!(
            "--srv-host=_sip._udp.example.test,sip1.example.test,{},10,10",
            naptr_peer.port
        ),
        "--host-record=sip1.example.test,127.0.0.1".into(),
        // srv.test: no NAPTR, an SRV record.
        format!(
            "--srv-host=_sip._udp.srv.test,sip1.example.test,{},0,0",
            srv_peer.port
        ),
    ]);
    let dir = tempfile::tempdir().expect("dir");
    let s = server_with(dir.path(), &dns, "");
    let ua = Ua::new();
    message(&ua, &s, "sip:bob@example.test", "naptr");
    arrives(&naptr_peer, "naptr");
    message(&ua, &s, "sip:bob@srv.test", "srv");
    arrives(&srv_peer, "srv");
    // A port in the URI: no SRV, the name's address at that port.
    let uri = format!("sip:bob@sip1.example.test:{}", port_peer.port);
    message(&ua, &s, &uri, "port");
    arrives(&port_peer, "port");
    // A name with none of these: the caller gets 503.
    message(&ua, &s, "sip:bob@nowhere.test", "nx");
    let answer = ua.recv();
    assert_eq!(answer.status(), Some(503), "{answer:?}");
}

#[test]
fn a_target_that_answers_503_hands_the_request_to_the_next() {
    let (down, up) = (Ua::new(), Ua::new());
    let dns = Dns::start(&[
        format!(
            "--srv-host=_sip._udp.failover.test,down.failover.test,{},10,0",
            down.port
        ),
        format!(
            "--srv-host=_sip._udp.failover.test,up.failover.test,{},20,0",
            up.port
        ),
        "--host-record=down.failover.test,127.0.0.1".into(),
        "--host-record=up.failover.test,127.0.0.1".into(),
    ]);
    let dir = tempfile::tempdir().expect("dir");
    let s = server_with(dir.path(), &dns, "");
    let ua = Ua::new();
    message(&ua, &s, "sip:bob@failover.test", "fo-1");
    respond(&down, arrives(&down, "fo-1"), 503);
    respond(&up, arrives(&up, "fo-1"), 200);
    assert_eq!(ua.recv().status(), Some(200));
    // The next goes to the one that answered first.
    message(&ua, &s, "sip:bob@failover.test", "fo-2");
    respond(&up, arrives(&up, "fo-2"), 200);
    assert_eq!(ua.recv().status(), Some(200));
    assert!(
        down.recv_timeout(Duration::from_millis(300)).is_none(),
        "nothing for the one that failed"
    );
}

/// A peer that answers every request 200 until dropped; how many calls (Call-IDs) it
/// answered.
struct Answering {
    count: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    port: u16,
}

impl Answering {
    fn start() -> Answering {
        let peer = Ua::new();
        let port = peer.port;
        let (count, stop) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (c, s) = (count.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut calls = std::collections::HashSet::new();
            while !s.load(Ordering::Relaxed) {
                if let Some((req, from)) = peer.recv_timeout(Duration::from_millis(50)) {
                    if !req.is_request() || req.method() == Some(sip_message::Method::Ack) {
                        continue;
                    }
                    if calls.insert(req.call_id().unwrap_or_default().to_owned()) {
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                    respond(&peer, (req, from), 200);
                }
            }
        });
        Answering {
            count,
            stop,
            thread: Some(thread),
            port,
        }
    }

    fn answered(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The server, trusting 127.0.0.1, asking `dns`, with `more` configuration.
fn server_with(dir: &std::path::Path, dns: &Dns, more: &str) -> Server {
    let config = format!(
        "[auth]\ntrusted = [\"127.0.0.1/32\"]\n[dns]\nservers = [\"127.0.0.1:{}\"]\n{more}",
        dns.port
    );
    Server::start_with_config(dir, &config)
}

/// The seed's zone: `_sip._udp` with priorities 0 and 1. While the priority-0 target is
/// down (nothing listens there) a call fails over to the backup within its own
/// transaction (timer B, short here), and those after it go to the backup first.
#[test]
fn a_target_that_is_down_hands_over_to_the_backup_within_the_transaction() {
    let backup = Answering::start();
    // Down: a socket that takes requests and never answers.
    let silent = Ua::new();
    let down = silent.port;
    let dns = Dns::start(&[
        format!("--srv-host=_sip._udp.seed.test,sip1.seed.test,{down},0,0"),
        format!(
            "--srv-host=_sip._udp.seed.test,sip2.seed.test,{},1,0",
            backup.port
        ),
        "--host-record=sip1.seed.test,127.0.0.1".into(),
        "--host-record=sip2.seed.test,127.0.0.1".into(),
    ]);
    let dir = tempfile::tempdir().expect("dir");
    // T1 = 50 ms: timer B (64·T1) gives up on the silent target after 3.2 s.
    let s = server_with(dir.path(), &dns, "[timers]\nt1 = 50\nt2 = 400\n");
    let ua = Ua::new();
    let started = std::time::Instant::now();
    call(&ua, &s, "sip:bob@seed.test", "down-1");
    let answer = final_status(&ua, "down-1", Duration::from_secs(8));
    assert_eq!(answer, Some(200), "answered within the transaction");
    assert_eq!(backup.answered(), 1);
    // The priority-0 target was tried first, and given up on at timer B.
    let (first, _) = silent
        .recv_timeout(Duration::from_millis(100))
        .expect("the priority-0 target got the INVITE first");
    assert_eq!(first.call_id().ok(), Some("down-1"));
    assert!(started.elapsed() >= Duration::from_secs(3), "after timer B");
    while silent.recv_timeout(Duration::from_millis(50)).is_some() {}
    // The next ones go to the backup at once.
    for n in 2..=5 {
        let call_id = format!("down-{n}");
        call(&ua, &s, "sip:bob@seed.test", &call_id);
        let answer = final_status(&ua, &call_id, Duration::from_secs(1));
        assert_eq!(answer, Some(200), "at once");
    }
    assert_eq!(backup.answered(), 5);
    assert!(
        silent.recv_timeout(Duration::from_millis(100)).is_none(),
        "nothing more for the target that failed"
    );
}

/// Two targets of one priority, weights 1 and 3: over 1000 calls each gets its share.
#[test]
fn weights_share_the_load_as_the_zone_says() {
    let (light, heavy) = (Answering::start(), Answering::start());
    let dns = Dns::start(&[
        format!(
            "--srv-host=_sip._udp.share.test,a.share.test,{},0,1",
            light.port
        ),
        format!(
            "--srv-host=_sip._udp.share.test,b.share.test,{},0,3",
            heavy.port
        ),
        "--host-record=a.share.test,127.0.0.1".into(),
        "--host-record=b.share.test,127.0.0.1".into(),
    ]);
    let dir = tempfile::tempdir().expect("dir");
    let s = server_with(dir.path(), &dns, "");
    let ua = Ua::new();
    for n in 0..1000 {
        let call_id = format!("share-{n}");
        call(&ua, &s, "sip:bob@share.test", &call_id);
        let answer = final_status(&ua, &call_id, Duration::from_secs(5));
        assert_eq!(answer, Some(200), "{call_id}");
    }
    let (l, h) = (light.answered(), heavy.answered());
    assert_eq!(l + h, 1000);
    eprintln!("weights 1 and 3: {l} and {h} of 1000");
    // 250 expected for weight 1 of 4 (a standard deviation is about 14).
    assert!(
        (180..=320).contains(&l),
        "weight 1 got {l}, weight 3 got {h}"
    );
}

/// A name with both A and AAAA records yields both families (hickory asks for AAAA only
/// without A by default): a peer on IPv6 alone is reached, here after its IPv4 address
/// (where nothing answers) is given up at timer B, or at once.
#[test]
fn a_dual_stack_name_leads_to_its_ipv6_address_too() {
    let Ok(peer) = std::net::UdpSocket::bind("[::1]:0") else {
        return; // no IPv6 on this machine
    };
    let peer_port = peer.local_addr().expect("addr").port();
    let dns = Dns::start(&[
        format!("--srv-host=_sip._udp.dual.test,both.dual.test,{peer_port},0,0"),
        "--host-record=both.dual.test,127.0.0.1,::1".into(),
    ]);
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("ferrosip.toml");
    std::fs::write(
        &config,
        format!(
            "[auth]\ntrusted = [\"127.0.0.1/32\"]\n[dns]\nservers = [\"127.0.0.1:{}\"]\n\
             [timers]\nt1 = 50\nt2 = 400\n",
            dns.port
        ),
    )
    .expect("write");
    let port = support::free_port();
    let listens = [format!("udp:127.0.0.1:{port}"), format!("udp:[::1]:{port}")];
    let config = config.to_str().expect("utf-8 path");
    let s = Server::start_listens(dir.path(), port, &listens, &["--config", config]);
    let ua = Ua::new();
    message(&ua, &s, "sip:bob@dual.test", "dual");
    peer.set_read_timeout(Some(Duration::from_secs(8)))
        .expect("timeout");
    let mut buf = [0u8; 4096];
    let (n, from) = peer
        .recv_from(&mut buf)
        .expect("the IPv6 peer got the MESSAGE");
    let got = sip_message::Message::parse(bytes::Bytes::copy_from_slice(&buf[..n])).expect("SIP");
    assert_eq!(got.call_id().ok(), Some("dual"));
    assert!(from.is_ipv6(), "{from}");
}
