//! End-to-end over UDP: the real binary as registrar and proxy between in-test user agents.

mod support;

use std::time::Duration;

use sip_message::{HeaderName, Message};
use support::{Server, Ua};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

#[test]
fn options_to_the_server_is_answered() {
    let dir = tmp();
    let s = Server::start(dir.path(), &[]);
    let ua = Ua::new();
    ua.send(s.addr(), &ua.options(s.port, "opt1"));
    let r = ua.recv();
    assert_eq!(r.status(), Some(200));
    assert!(r
        .header(HeaderName::Allow)
        .is_some_and(|h| h.value.contains("INVITE")));
    assert!(r.to().unwrap().tag().is_some());
}

#[test]
fn register_refresh_query_and_remove() {
    let dir = tmp();
    let s = Server::start(dir.path(), &[]);
    let ua = Ua::new();
    ua.send(
        s.addr(),
        &ua.register(s.port, "alice", "reg1", 1, ";expires=600"),
    );
    let r = ua.recv();
    assert_eq!(r.status(), Some(200), "{:?}", r.reason());
    let contacts: Vec<_> = r.contacts().map(|c| c.unwrap()).collect();
    assert_eq!(contacts.len(), 1);
    let sip_message::header::Contact::Address(c) = contacts[0] else {
        panic!("star")
    };
    assert!((590..=600).contains(&c.expires().unwrap()));

    // Refresh with a higher CSeq and a shorter time.
    ua.send(
        s.addr(),
        &ua.register(s.port, "alice", "reg1", 2, ";expires=300"),
    );
    let r = ua.recv();
    let sip_message::header::Contact::Address(c) = r.contacts().next().unwrap().unwrap() else {
        panic!()
    };
    assert!((290..=300).contains(&c.expires().unwrap()));

    // Out-of-order CSeq on the same Call-ID is refused and changes nothing.
    ua.send(
        s.addr(),
        &ua.register(s.port, "alice", "reg1", 1, ";expires=900"),
    );
    assert!(ua.recv().status().unwrap() >= 400);

    // Removal.
    ua.send(
        s.addr(),
        &ua.register(s.port, "alice", "reg1", 3, ";expires=0"),
    );
    let r = ua.recv();
    assert_eq!(r.status(), Some(200));
    assert_eq!(r.contacts().count(), 0);
}

#[test]
fn too_brief_interval_gets_423_with_min_expires() {
    let dir = tmp();
    let s = Server::start(dir.path(), &[]);
    let ua = Ua::new();
    ua.send(
        s.addr(),
        &ua.register(s.port, "bob", "reg423", 1, ";expires=5"),
    );
    let r = ua.recv();
    assert_eq!(r.status(), Some(423));
    assert!(r.min_expires().unwrap().is_some_and(|m| m >= 5));
}

#[test]
fn unknown_user_404_and_max_forwards_zero_483() {
    let dir = tmp();
    let s = Server::start(dir.path(), &[]);
    let ua = Ua::new();
    let invite = |mf: u8, id: &str| {
        format!(
            "INVITE sip:nobody@127.0.0.1:{sp} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bK{id}\n\
From: <sip:a@127.0.0.1>;tag=a\nTo: <sip:nobody@127.0.0.1>\nCall-ID: {id}\nCSeq: 1 INVITE\nMax-Forwards: {mf}\n\
Content-Length: 0\n\n",
            sp = s.port,
            p = ua.port
        )
    };
    ua.send(s.addr(), &invite(70, "u404"));
    assert_eq!(ua.recv().status(), Some(404));
    ua.send(s.addr(), &invite(0, "u483"));
    assert_eq!(ua.recv().status(), Some(483));
}

/// Builds an INVITE from `caller` to `user`.
fn invite(s: &Server, caller: &Ua, user: &str, call_id: &str) -> String {
    format!(
        "INVITE sip:{user}@127.0.0.1:{sp} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bK{call_id};rport\n\
From: <sip:caller@127.0.0.1>;tag=c1\nTo: <sip:{user}@127.0.0.1>\nCall-ID: {call_id}\nCSeq: 1 INVITE\n\
Contact: <sip:caller@127.0.0.1:{p}>\nMax-Forwards: 70\nContent-Type: application/sdp\nContent-Length: 5\n\nv=0\n",
        sp = s.port,
        p = caller.port
    )
}

/// The UAS answers `req` with `code`, copying Via/From/To/Call-ID/CSeq/Record-Route and
/// adding a To tag.
fn answer(uas: &Ua, req: &Message, code: u16, to: std::net::SocketAddr) {
    let mut b = sip_message::ResponseBuilder::for_request(req, code, "X", Some("uas1"))
        .header("Contact", &format!("<sip:uas@127.0.0.1:{}>", uas.port));
    // RFC 3261 §12.1.1: the UAS copies Record-Route into its responses.
    for rr in req.headers_named(HeaderName::RecordRoute) {
        b = b.header("Record-Route", rr.value);
    }
    let resp = b.build();
    uas.send_raw(to, &resp);
}

#[test]
fn call_through_the_proxy_and_retransmission_absorbed() {
    let dir = tmp();
    let s = Server::start(dir.path(), &[]);
    let (uac, uas) = (Ua::new(), Ua::new());
    uas.send(s.addr(), &uas.register(s.port, "uas", "regc", 1, ""));
    assert_eq!(uas.recv().status(), Some(200));

    let inv = invite(&s, &uac, "uas", "call1");
    uac.send(s.addr(), &inv);
    let (trying, _) = uac
        .recv_timeout(Duration::from_secs(5))
        .expect("100 Trying");
    assert_eq!(trying.status(), Some(100));
    let (req, from) = uas
        .recv_timeout(Duration::from_secs(5))
        .expect("INVITE at the UAS");
    assert_eq!(req.method().map(|m| m.as_str()), Some("INVITE"));
    assert_eq!(
        req.request_uri_str(),
        Some(format!("sip:uas@127.0.0.1:{}", uas.port).as_str())
    );
    assert_eq!(req.vias().count(), 2);
    assert_eq!(req.record_routes().count(), 1);
    assert_eq!(req.max_forwards().unwrap(), Some(69));
    assert_eq!(req.body().as_ref(), b"v=0\r\n");

    answer(&uas, &req, 180, from);
    assert_eq!(uac.recv().status(), Some(180));
    // A retransmission from the caller is absorbed: the UAS sees nothing new, the caller
    // gets the 180 again.
    uac.send(s.addr(), &inv);
    assert!(
        uas.recv_timeout(Duration::from_millis(300)).is_none(),
        "retransmitted INVITE leaked"
    );
    assert_eq!(uac.recv().status(), Some(180));
    answer(&uas, &req, 200, from);
    let ok = uac.recv();
    assert_eq!(ok.status(), Some(200));
    assert_eq!(ok.vias().count(), 1);
    let rr = ok
        .record_routes()
        .next()
        .unwrap()
        .unwrap()
        .uri
        .as_str()
        .to_owned();

    // ACK and BYE follow the Record-Route to the UAS's contact.
    let in_dialog = |method: &str, cseq: u32| {
        format!(
            "{method} sip:uas@127.0.0.1:{up} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bK{method}{cseq}\n\
Route: <{rr}>\nFrom: <sip:caller@127.0.0.1>;tag=c1\nTo: <sip:uas@127.0.0.1>;tag=uas1\nCall-ID: call1\n\
CSeq: {cseq} {method}\nMax-Forwards: 70\nContent-Length: 0\n\n",
            up = uas.port,
            p = uac.port
        )
    };
    uac.send(s.addr(), &in_dialog("ACK", 1));
    let (ack, _) = uas
        .recv_timeout(Duration::from_secs(5))
        .expect("ACK at the UAS");
    assert_eq!(ack.method().map(|m| m.as_str()), Some("ACK"));
    assert_eq!(ack.routes().count(), 0, "our Route was removed");
    uac.send(s.addr(), &in_dialog("BYE", 2));
    let (bye, from) = uas
        .recv_timeout(Duration::from_secs(5))
        .expect("BYE at the UAS");
    assert_eq!(bye.method().map(|m| m.as_str()), Some("BYE"));
    answer(&uas, &bye, 200, from);
    let r = uac.recv();
    assert_eq!(
        (r.status(), r.cseq().unwrap().method.as_str()),
        (Some(200), "BYE")
    );
}

#[test]
fn bindings_survive_kill_9() {
    let dir = tmp();
    let s = Server::start(dir.path(), &[]);
    let ua = Ua::new();
    ua.send(
        s.addr(),
        &ua.register(s.port, "carol", "regk", 1, ";expires=600"),
    );
    assert_eq!(ua.recv().status(), Some(200));
    let (dir_path, port) = s.kill9();
    let s = Server::start_on(&dir_path, port, &[]);
    // A query (REGISTER without Contact) lists the stored binding.
    let query = format!(
        "REGISTER sip:127.0.0.1:{port} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bKq1\n\
From: <sip:carol@127.0.0.1>;tag=q\nTo: <sip:carol@127.0.0.1>\nCall-ID: regq\nCSeq: 1 REGISTER\n\
Max-Forwards: 70\nContent-Length: 0\n\n",
        p = ua.port
    );
    ua.send(s.addr(), &query);
    let r = ua.recv();
    assert_eq!(r.status(), Some(200));
    assert_eq!(r.contacts().count(), 1, "binding lost across kill -9");
}

#[test]
fn sigterm_stops_cleanly_after_writing_bindings() {
    let dir = tmp();
    let s = Server::start(dir.path(), &[]);
    let ua = Ua::new();
    ua.send(
        s.addr(),
        &ua.register(s.port, "dora", "regt", 1, ";expires=600"),
    );
    assert_eq!(ua.recv().status(), Some(200));
    let port = s.port;
    assert!(s.terminate(), "no clean exit on SIGTERM");
    let s = Server::start_on(dir.path(), port, &[]);
    let invite = invite(&s, &ua, "dora", "after-restart");
    ua.send(s.addr(), &invite);
    // The INVITE reaches dora's contact: this UA itself.
    let mut seen_invite = false;
    for _ in 0..5 {
        match ua.recv_timeout(Duration::from_secs(2)) {
            Some((m, _)) if m.method().is_some() => {
                seen_invite = true;
                break;
            }
            Some(_) => continue,
            None => break,
        }
    }
    assert!(seen_invite, "binding lost across a clean restart");
}

#[test]
fn ipv6_and_ipv4_together() {
    let dir = tmp();
    let port = support::free_port();
    let listens = [format!("udp:127.0.0.1:{port}"), format!("udp:[::1]:{port}")];
    let s = Server::start_listens(dir.path(), port, &listens, &[]);
    let v6 = std::net::UdpSocket::bind("[::1]:0").expect("IPv6 loopback");
    let v6_port = v6.local_addr().expect("addr").port();
    let server6: std::net::SocketAddr = format!("[::1]:{port}").parse().expect("addr");
    let register = format!(
        "REGISTER sip:[::1]:{port} SIP/2.0\r\nVia: SIP/2.0/UDP [::1]:{v6_port};branch=z9hG4bK6r\r\n\
From: <sip:six@127.0.0.1>;tag=6\r\nTo: <sip:six@127.0.0.1>\r\nCall-ID: six\r\nCSeq: 1 REGISTER\r\n\
Contact: <sip:six@[::1]:{v6_port}>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    v6.send_to(register.as_bytes(), server6).expect("send");
    v6.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = vec![0u8; 65535];
    let (n, _) = v6.recv_from(&mut buf).expect("200 over IPv6");
    assert_eq!(
        Message::parse(buf[..n].to_vec()).expect("parse").status(),
        Some(200)
    );
    // An IPv4 caller reaches the IPv6 contact through the proxy.
    let caller = Ua::new();
    caller.send(s.addr(), &invite(&s, &caller, "six", "v4to6"));
    let (n, _) = v6.recv_from(&mut buf).expect("INVITE over IPv6");
    let inv = Message::parse(buf[..n].to_vec()).expect("parse");
    assert_eq!(inv.method().map(|m| m.as_str()), Some("INVITE"));
    assert!(
        matches!(inv.top_via().expect("via").host, sip_message::Host::Ipv6(_)),
        "our Via is IPv6"
    );
}

#[test]
fn next_hop_named_by_host_is_resolved() {
    let dir = tmp();
    // Trusted: other domains are reached by trusted peers and subscribers only.
    let s = Server::start_with_config(dir.path(), "[auth]\ntrusted = [\"127.0.0.0/8\"]\n");
    let (uac, uas) = (Ua::new(), Ua::new());
    let options = |host: &str, call_id: &str| {
        format!(
            "OPTIONS sip:svc@{host} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bK{call_id}\n\
From: <sip:probe@127.0.0.1>;tag=1\nTo: <sip:svc@{host}>\nCall-ID: {call_id}\nCSeq: 1 OPTIONS\n\
Max-Forwards: 70\nContent-Length: 0\n\n",
            p = uac.port
        )
    };
    // `localhost` resolves (RFC 6761) without a name server.
    uac.send(
        s.addr(),
        &options(&format!("localhost:{}", uas.port), "dns1"),
    );
    let (req, _) = uas
        .recv_timeout(Duration::from_secs(10))
        .expect("OPTIONS at the host the name resolves to");
    assert_eq!(
        req.request_uri_str(),
        Some(format!("sip:svc@localhost:{}", uas.port).as_str())
    );
    // A name that cannot exist (RFC 6761 `.invalid`): 503 to the caller.
    uac.send(s.addr(), &options("nowhere.invalid", "dns2"));
    let (r, _) = uac
        .recv_timeout(Duration::from_secs(15))
        .expect("an answer for an unresolvable next hop");
    assert_eq!(r.status(), Some(503));
}

/// RFC 3261 §18.1.1: a request too large for UDP goes over TCP, and over UDP after all when
/// the TCP connection is refused; but a client that registered over UDP gets it over UDP
/// (it may listen on nothing else, or sit behind a NAT that lets only that through).
#[test]
fn large_request_tries_tcp_then_falls_back_to_udp() {
    let dir = tmp();
    // Trusted: the caller may send to any address.
    let s = Server::start_with_config(dir.path(), "[auth]\ntrusted = [\"127.0.0.0/8\"]\n");
    let (uac, uas) = (Ua::new(), Ua::new());
    uas.send(s.addr(), &uas.register(s.port, "big", "regbig", 1, ""));
    assert_eq!(uas.recv().status(), Some(200));
    let tcp = std::net::TcpListener::bind(("127.0.0.1", uas.port)).expect("tcp listener");
    let sdp = "a=rtpmap:0 PCMU/8000\n".repeat(70);
    let big = |uri: &str, call_id: &str| {
        format!(
            "INVITE {uri} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bK{call_id}\n\
From: <sip:caller@127.0.0.1>;tag=c1\nTo: <sip:big@127.0.0.1>\nCall-ID: {call_id}\nCSeq: 1 INVITE\n\
Max-Forwards: 70\nContent-Type: application/sdp\nContent-Length: {len}\n\n{sdp}",
            p = uac.port,
            len = sdp.len() + 70, // the test UA turns every LF into CRLF
        )
    };
    // To the registered client: over UDP, though it listens on TCP too.
    uac.send(
        s.addr(),
        &big(&format!("sip:big@127.0.0.1:{}", s.port), "big0"),
    );
    let (req, _) = uas
        .recv_timeout(Duration::from_secs(5))
        .expect("INVITE over UDP to a client registered over UDP");
    assert_eq!(req.call_id().unwrap(), "big0");
    assert_eq!(req.top_via().unwrap().transport, "UDP");
    // To an address: a TCP listener there takes it.
    let direct = format!("sip:big@127.0.0.1:{}", uas.port);
    uac.send(s.addr(), &big(&direct, "big1"));
    tcp.set_nonblocking(false).unwrap();
    let (mut conn, _) = tcp.accept().expect("the proxy connects over TCP");
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") || got.len() < 1400 {
        let n = std::io::Read::read(&mut conn, &mut buf).expect("INVITE over TCP");
        assert!(n > 0, "connection closed early");
        got.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&got);
    assert!(head.starts_with("INVITE "), "{head}");
    assert!(head.contains("SIP/2.0/TCP"), "our Via says TCP");
    drop((conn, tcp));
    // Let the proxy see the connection close: a write on it would still be taken by the
    // kernel and lost, so the next request must open a new one.
    std::thread::sleep(Duration::from_millis(300));

    // With nothing listening on TCP, the request goes over UDP after all.
    uac.send(s.addr(), &big(&direct, "big2"));
    let (req, _) = loop {
        let got = uas
            .recv_timeout(Duration::from_secs(5))
            .expect("INVITE over UDP after the TCP connection was refused");
        // (Skips the retransmissions of the first INVITE, which nothing answered.)
        if got.0.call_id().unwrap() != "big0" {
            break got;
        }
    };
    assert_eq!(req.call_id().unwrap(), "big2");
    assert_eq!(req.top_via().unwrap().transport, "UDP");
}

#[test]
fn udp_workers_share_one_port_and_one_state() {
    let dir = tmp();
    let s = Server::start_with_config(dir.path(), "[server]\nudp_workers = 4\n");
    let names: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", s.pid()))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|n| n.starts_with("ferrosip-udp-"))
        .collect();
    assert_eq!(names.len(), 4, "four UDP receive threads: {names:?}");
    // Many peers (the kernel spreads them over the sockets by address): each registers,
    // then calls the next one, whose binding another thread may have written.
    let uas: Vec<Ua> = (0..12).map(|_| Ua::new()).collect();
    for (i, ua) in uas.iter().enumerate() {
        ua.send(
            s.addr(),
            &ua.register(s.port, &format!("w{i}"), &format!("rw{i}"), 1, ""),
        );
        assert_eq!(ua.recv().status(), Some(200), "REGISTER of w{i}");
    }
    for (i, ua) in uas.iter().enumerate() {
        let callee = (i + 1) % uas.len();
        ua.send(
            s.addr(),
            &invite(&s, ua, &format!("w{callee}"), &format!("cw{i}")),
        );
        // The callee may still hold the 100 Trying of its own call: skip responses.
        let req = std::iter::from_fn(|| uas[callee].recv_timeout(Duration::from_secs(5)))
            .map(|(m, _)| m)
            .find(Message::is_request)
            .expect("INVITE at the callee");
        assert_eq!(req.call_id().unwrap(), format!("cw{i}"));
    }
}

#[test]
fn idle_tcp_connections_are_closed() {
    use std::io::{Read, Write};
    let dir = tmp();
    let s = Server::start_with_config(dir.path(), "[server]\ntcp_idle_timeout = 1\n");
    let mut conn = std::net::TcpStream::connect(s.addr()).expect("connect");
    let port = conn.local_addr().unwrap().port();
    let options = format!(
        "OPTIONS sip:127.0.0.1:{sp} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bKidle\r\n\
From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: idle\r\nCSeq: 1 OPTIONS\r\n\
Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        sp = s.port
    );
    conn.write_all(options.as_bytes()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 2048];
    let n = conn.read(&mut buf).expect("answer over TCP");
    assert!(buf[..n].starts_with(b"SIP/2.0 200"));
    // Silent for longer than the idle timeout: the server closes (read returns 0).
    let start = std::time::Instant::now();
    let n = conn.read(&mut buf).expect("close, not a timeout");
    assert_eq!(n, 0, "nothing else sent");
    assert!(start.elapsed() < Duration::from_secs(4));
}

#[test]
fn a_port_in_use_is_an_error_even_with_udp_workers() {
    let dir = tmp();
    let s = Server::start(dir.path(), &[]);
    let mut second = std::process::Command::new(env!("CARGO_BIN_EXE_ferrosip"))
        .args(["serve", "--listen", &format!("udp:127.0.0.1:{}", s.port)])
        .arg("--db")
        .arg(dir.path().join("second.db"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run a second server");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = second.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = second.kill();
            let _ = second.wait();
            panic!("a second server took the same port");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains(&s.port.to_string()), "{err}");
}

/// A binding the database refuses to store is tried again, and the 200 OK waits for it.
#[test]
fn a_failed_binding_write_is_retried_before_the_answer() {
    use sqlx::{Connection, Executor};
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let db = format!("sqlite:{}", dir.path().join("ferrosip.db").display());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let sql = |q: &'static str| {
        rt.block_on(async {
            let mut c = sqlx::SqliteConnection::connect(&db).await.expect("open");
            c.execute(q).await.expect(q);
        })
    };
    sql("CREATE TRIGGER refuse BEFORE INSERT ON location BEGIN SELECT RAISE(ABORT, 'no'); END");
    let ua = Ua::new();
    ua.send(s.addr(), &ua.register(s.port, "dora", "retry-1", 1, ""));
    assert!(
        ua.recv_timeout(Duration::from_millis(400)).is_none(),
        "no 200 OK while the binding is not stored"
    );
    sql("DROP TRIGGER refuse");
    let (ok, _) = ua
        .recv_timeout(Duration::from_secs(5))
        .expect("the 200 OK once a retry stored it");
    assert_eq!(ok.status(), Some(200));
    drop(s);
    let rows = rt.block_on(async {
        let mut c = sqlx::SqliteConnection::connect(&db).await.expect("open");
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM location WHERE aor = 'sip:dora@127.0.0.1'",
        )
        .fetch_one(&mut c)
        .await
        .expect("count")
    });
    assert_eq!(rows, 1);
}

#[test]
fn a_response_whose_tcp_connection_closed_goes_to_the_via_port() {
    use std::io::{Read, Write};
    let dir = tmp();
    let s = Server::start(dir.path(), &[]);
    let uas = Ua::new();
    uas.send(s.addr(), &uas.register(s.port, "busy", "regbusy", 1, ""));
    assert_eq!(uas.recv().status(), Some(200));
    // The caller listens on the port of its Via, and sends from another (its connection's).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("tcp listener");
    let via_port = listener.local_addr().unwrap().port();
    let mut conn = std::net::TcpStream::connect(s.addr()).expect("connect");
    let invite = format!(
        "INVITE sip:busy@127.0.0.1:{sp} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:{via_port};branch=z9hG4bKgone;rport\r\n\
From: <sip:caller@127.0.0.1>;tag=c1\r\nTo: <sip:busy@127.0.0.1>\r\nCall-ID: gone\r\nCSeq: 1 INVITE\r\n\
Contact: <sip:caller@127.0.0.1:{via_port};transport=tcp>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        sp = s.port
    );
    conn.write_all(invite.as_bytes()).unwrap();
    let req = uas.recv();
    assert_eq!(req.call_id().unwrap(), "gone");
    // The connection closes before the answer; let the proxy see it close.
    drop(conn);
    std::thread::sleep(Duration::from_millis(300));
    answer(&uas, &req, 486, s.addr());

    listener.set_nonblocking(true).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut back = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("no connection to the Via port within 5 s: {e}"),
        }
    };
    back.set_nonblocking(false).unwrap();
    back.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("SIP/2.0 486") {
        let n = back
            .read(&mut buf)
            .expect("the 486 over the new connection");
        assert!(
            n > 0,
            "closed before the 486: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&got).contains("Call-ID: gone"));
}

/// A binding the database keeps refusing: after the retries the REGISTER gets 500 with
/// Retry-After, never a 200 for a binding that is not stored.
#[test]
fn a_binding_write_that_keeps_failing_is_answered_500() {
    use sqlx::{Connection, Executor};
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start(dir.path(), &[]);
    let db = format!("sqlite:{}", dir.path().join("ferrosip.db").display());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut c = sqlx::SqliteConnection::connect(&db).await.expect("open");
        let q =
            "CREATE TRIGGER refuse BEFORE INSERT ON location BEGIN SELECT RAISE(ABORT, 'no'); END";
        c.execute(q).await.expect(q);
    });
    let ua = Ua::new();
    ua.send(s.addr(), &ua.register(s.port, "dora", "fail-1", 1, ""));
    let (answer, _) = ua
        .recv_timeout(Duration::from_secs(10))
        .expect("an answer once the retries are spent");
    assert_eq!(answer.status(), Some(500));
    assert!(answer.header_str("Retry-After").is_some());
}
