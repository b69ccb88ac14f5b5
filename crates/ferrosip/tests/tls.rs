//! SIP over TLS end to end: a phone registers over TLS with a certificate our test CA signed
//! and is called from UDP over its TLS connection; it calls a UDP phone; a client that does
//! not trust the server's certificate gets no further than the handshake, and one whose own
//! certificate no CA of ours signed is refused with a log line; a certificate renewed on
//! disk serves after SIGHUP while open connections go on; baresip registers over TLS, calls a
//! baresip on UDP with audio both ways and is called back over its connection; linphonec on
//! TLS is called from UDP over its connection.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use sip_message::Message;
use support::baresip::{call_and_talk, hang_up_having_heard, Baresip};
use support::ca::Ca;
use support::linphone::Linphone;
use support::phone::Account;
use support::{free_port, Server, Ua};

/// A TLS client of the server at `to` trusting `ca` alone.
fn connect(
    to: SocketAddr,
    ca: CertificateDer<'static>,
) -> std::io::Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    connect_with(to, support::ca::client_config(ca))
}

/// A TLS client of the server at `to` with `config`, its handshake done.
fn connect_with(
    to: SocketAddr,
    config: rustls::ClientConfig,
) -> std::io::Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    let name = ServerName::IpAddress(to.ip().into());
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let tcp = TcpStream::connect(to)?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    // The handshake, and whether the server's certificate is trusted.
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

/// Reads one SIP message (without a body: none here has one) from `s`, skipping keepalives.
fn read_message(s: &mut impl Read, buf: &mut Vec<u8>) -> Message {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let msg: Vec<u8> = buf.drain(..end + 4).collect();
            if msg.iter().all(|&b| b == b'\r' || b == b'\n') {
                continue;
            }
            return Message::parse(msg).expect("a SIP message");
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).expect("read within 5 s");
        assert!(n > 0, "the server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn crlf(text: &str) -> Vec<u8> {
    text.replace('\n', "\r\n").into_bytes()
}

/// The server on a UDP and a TLS port of 127.0.0.1, its certificate `server.pem` (with
/// `server.key`) in `dir` and `more` in its `[tls]`, logging what `filter` lets through;
/// its TLS port.
fn tls_server(dir: &Path, more: &str, filter: &str) -> (Server, u16) {
    let config = dir.join("ferrosip.toml");
    let tls = "[tls]\ncertificate = \"server.pem\"\nprivate_key = \"server.key\"\n";
    std::fs::write(&config, format!("{tls}{more}")).expect("config");
    let (port, tls_port) = (free_port(), free_port());
    let listens = [
        format!("udp:127.0.0.1:{port}"),
        format!("tls:127.0.0.1:{tls_port}"),
    ];
    let config = config.to_str().expect("path");
    let s = Server::start_listens_logging(dir, port, &listens, &["--config", config], filter);
    (s, tls_port)
}

/// `user@127.0.0.1` signing in to `proxy` over `transport` (no subscribers: no password).
fn account<'a>(user: &'a str, proxy: SocketAddr, transport: &'a str) -> Account<'a> {
    Account {
        user,
        domain: "127.0.0.1",
        password: "unused",
        proxy,
        transport,
    }
}

#[test]
fn a_phone_on_tls_registers_is_called_from_udp_and_calls_back() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = Ca::new(dir.path(), "server");
    ca.sign("server");
    let ca = ca.der();
    let (s, tls_port) = tls_server(dir.path(), "", "warn");
    let server_tls = SocketAddr::from(([127, 0, 0, 1], tls_port));
    let mut alice = connect(server_tls, ca.clone()).expect("a certificate our CA signed");
    let local = alice.sock.local_addr().expect("addr");
    let mut buf = Vec::new();
    // alice registers over TLS.
    alice
        .write_all(&crlf(&format!(
            "REGISTER sip:127.0.0.1:{tls_port};transport=tls SIP/2.0\n\
Via: SIP/2.0/TLS {local};rport;branch=z9hG4bKtlsreg\n\
From: <sip:alice@127.0.0.1>;tag=r1\nTo: <sip:alice@127.0.0.1>\nCall-ID: tls-reg\nCSeq: 1 REGISTER\n\
Contact: <sip:alice@127.0.0.1:1;transport=tls>\nMax-Forwards: 70\nContent-Length: 0\n\n"
        )))
        .expect("write");
    let ok = read_message(&mut alice, &mut buf);
    assert_eq!(ok.status(), Some(200), "{ok:?}");
    // bob, on UDP, calls her: the INVITE reaches her over her TLS connection.
    let bob = Ua::new();
    bob.send(
        s.addr(),
        &format!(
            "INVITE sip:alice@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{p};rport;branch=z9hG4bKtlsinv\n\
From: <sip:bob@127.0.0.1>;tag=b1\nTo: <sip:alice@127.0.0.1>\nCall-ID: tls-call\nCSeq: 1 INVITE\n\
Contact: <sip:bob@127.0.0.1:{p}>\nMax-Forwards: 70\nContent-Length: 0\n\n",
            p = bob.port
        ),
    );
    let invite = read_message(&mut alice, &mut buf);
    assert_eq!(invite.method(), Some(sip_message::Method::Invite));
    let via = invite.top_via().expect("Via");
    assert_eq!(via.transport, "TLS", "our Via names TLS");
    let rr: Vec<String> = invite
        .headers_named(sip_message::HeaderName::RecordRoute)
        .map(|h| h.value.to_owned())
        .collect();
    assert!(
        rr.iter().any(|r| r.contains(";transport=tls")),
        "the TLS side of the Record-Route: {rr:?}"
    );
    // Her 180 and 200 go back to bob over UDP.
    let answer = |status: &str| {
        let mut answer = format!("SIP/2.0 {status}\n");
        for h in invite.headers() {
            let name = h.name.as_str();
            if ["Via", "From", "Call-ID", "CSeq", "Record-Route"].contains(&name) {
                answer.push_str(&format!("{name}: {}\n", h.value));
            }
            if name == "To" {
                answer.push_str(&format!("To: {};tag=a1\n", h.value));
            }
        }
        answer.push_str("Contact: <sip:alice@127.0.0.1:1;transport=tls>\nContent-Length: 0\n\n");
        crlf(&answer)
    };
    alice.write_all(&answer("180 Ringing")).expect("write");
    assert_eq!(bob.recv().status(), Some(180));
    alice.write_all(&answer("200 OK")).expect("write");
    let ok = bob.recv();
    assert_eq!(ok.status(), Some(200));
    // bob's ACK and BYE reach her over her connection, though her Contact names a port
    // where she does not listen (and an address no certificate of hers shows).
    let mut route: Vec<String> = ok
        .headers_named(sip_message::HeaderName::RecordRoute)
        .flat_map(|h| h.values().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    route.reverse();
    for (method, cseq) in [("ACK", 1), ("BYE", 2)] {
        bob.send(
            s.addr(),
            &format!(
                "{method} sip:alice@127.0.0.1:1;transport=tls SIP/2.0\n\
Via: SIP/2.0/UDP 127.0.0.1:{p};rport;branch=z9hG4bKtls{method}\nRoute: {}\n\
From: <sip:bob@127.0.0.1>;tag=b1\nTo: <sip:alice@127.0.0.1>;tag=a1\nCall-ID: tls-call\n\
CSeq: {cseq} {method}\nMax-Forwards: 70\nContent-Length: 0\n\n",
                route.join(", "),
                p = bob.port
            ),
        );
        let got = read_message(&mut alice, &mut buf);
        assert_eq!(
            got.method().map(|m| m.as_str().to_owned()).as_deref(),
            Some(method)
        );
    }
    // She calls bob (registered on UDP): over UDP to him.
    bob.send(s.addr(), &bob.register(s.port, "bob", "tls-bob", 1, ""));
    assert_eq!(bob.recv().status(), Some(200));
    alice
        .write_all(&crlf(&format!(
            "MESSAGE sip:bob@127.0.0.1 SIP/2.0\nVia: SIP/2.0/TLS {local};rport;branch=z9hG4bKtlsmsg\n\
From: <sip:alice@127.0.0.1>;tag=m1\nTo: <sip:bob@127.0.0.1>\nCall-ID: tls-msg\nCSeq: 1 MESSAGE\n\
Max-Forwards: 70\nContent-Length: 0\n\n"
        )))
        .expect("write");
    let message = bob.recv();
    assert_eq!(message.method(), Some(sip_message::Method::Message));
    assert_eq!(message.top_via().expect("Via").transport, "UDP");
    // A client that trusts another CA stops at the handshake, and the server says why.
    let other = Ca::new(dir.path(), "other");
    assert!(connect(server_tls, other.der()).is_err());
    std::thread::sleep(Duration::from_millis(200));
    drop(alice);
    assert!(s.terminate(), "a clean stop");
}

/// An OPTIONS to the server over `tls`, and its answer; an error when the server closes
/// the connection instead.
fn ping(
    tls: &mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    tls_port: u16,
    n: u32,
) -> std::io::Result<Message> {
    let local = tls.sock.local_addr()?;
    tls.write_all(&crlf(&format!(
        "OPTIONS sip:127.0.0.1:{tls_port};transport=tls SIP/2.0\n\
Via: SIP/2.0/TLS {local};rport;branch=z9hG4bKping{n}\n\
From: <sip:probe@127.0.0.1>;tag=p\nTo: <sip:127.0.0.1>\nCall-ID: ping-{n}\nCSeq: {n} OPTIONS\n\
Max-Forwards: 70\nContent-Length: 0\n\n"
    )))?;
    let mut buf = Vec::new();
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let msg: Vec<u8> = buf.drain(..end + 4).collect();
            return Ok(Message::parse(msg).expect("a SIP message"));
        }
        let mut chunk = [0u8; 4096];
        match tls.read(&mut chunk)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[test]
fn a_bad_client_certificate_is_refused_and_a_renewed_certificate_serves_after_a_reload() {
    let dir = tempfile::tempdir().expect("dir");
    let (ca, other) = (Ca::new(dir.path(), "server"), Ca::new(dir.path(), "other"));
    // The CA of peers' certificates, client_ca.
    Ca::new(dir.path(), "peers");
    let first = ca.sign("server");
    let clients = "verify_clients = \"optional\"\nclient_ca = \"peers-ca.pem\"\n";
    let (s, tls_port) = tls_server(dir.path(), clients, "info");
    let at = SocketAddr::from(([127, 0, 0, 1], tls_port));
    // A phone without a certificate of its own is let in (they are optional here).
    let mut phone = connect(at, ca.der()).expect("handshake");
    assert_eq!(
        ping(&mut phone, tls_port, 1).expect("answer").status(),
        Some(200)
    );
    assert_eq!(
        phone.conn.peer_certificates().expect("shown")[0],
        first,
        "the certificate on disk"
    );
    // A client whose certificate no CA of ours signed is refused, and the log says why.
    let forged = other.sign("forged");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der()).expect("root");
    let key = std::fs::read(dir.path().join("forged.key")).expect("key");
    let key =
        <rustls::pki_types::PrivateKeyDer as rustls::pki_types::pem::PemObject>::from_pem_slice(
            &key,
        )
        .expect("key");
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(vec![forged], key)
        .expect("client certificate");
    let refused = connect_with(at, config).and_then(|mut c| ping(&mut c, tls_port, 2));
    assert!(refused.is_err(), "{refused:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !s.log().contains("TLS handshake failed") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = s.log();
    let line = log
        .lines()
        .find(|l| l.contains("TLS handshake failed"))
        .unwrap_or_else(|| panic!("no log line for the refused client:\n{log}"));
    assert!(line.contains("certificate"), "{line}");
    // The certificate is renewed on disk; after a reload new connections get it, and the
    // phone's connection goes on.
    let renewed = ca.sign("server");
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &s.pid().to_string()])
        .status()
        .expect("kill");
    assert!(hup.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let fresh = connect(at, ca.der()).expect("handshake");
        if fresh.conn.peer_certificates().expect("shown")[0] == renewed {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the renewed certificate within 5 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        ping(&mut phone, tls_port, 3).expect("answer").status(),
        Some(200)
    );
    drop(phone);
    assert!(s.terminate(), "a clean stop");
}

#[test]
fn baresip_on_tls_calls_a_phone_on_udp_and_is_called_back_over_its_connection() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = Ca::new(dir.path(), "server");
    ca.sign("server");
    let (s, tls_port) = tls_server(dir.path(), "", "warn");
    let tls_addr = SocketAddr::from(([127, 0, 0, 1], tls_port));
    // alice trusts the server's CA (baresip checks the certificate).
    let trust = format!(
        "sip_cafile {}\n",
        dir.path().join("server-ca.pem").display()
    );
    let mut alice = Baresip::start_with(
        &account("alice", tls_addr, "tls"),
        "sip:bob@127.0.0.1",
        &trust,
    );
    let mut bob = Baresip::start(&account("bob", s.addr(), "udp"), "sip:alice@127.0.0.1");
    let heard = call_and_talk(&mut alice, &mut bob, "sip:bob@127.0.0.1", 3);
    hang_up_having_heard(&mut alice, &mut bob, heard);
    let heard = call_and_talk(&mut bob, &mut alice, "sip:alice@127.0.0.1", 3);
    hang_up_having_heard(&mut bob, &mut alice, heard);
    // Every message of alice's went over TLS.
    let trace = alice.trace();
    assert!(!trace.is_empty());
    assert!(
        trace.iter().all(|m| m.transport == "TLS"),
        "{:?}",
        trace
            .iter()
            .filter(|m| m.transport != "TLS")
            .collect::<Vec<_>>()
    );
}

#[test]
fn linphonec_on_tls_is_called_from_a_phone_on_udp_over_its_connection() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = Ca::new(dir.path(), "server");
    ca.sign("server");
    let (s, tls_port) = tls_server(dir.path(), "", "warn");
    let tls_addr = SocketAddr::from(([127, 0, 0, 1], tls_port));
    // alice checks the server's certificate chain against the test CA (not its name:
    // Debian's liblinphone does not match an IP address among a certificate's names).
    let trust = format!(
        "root_ca={}\nverify_server_certs=1\nverify_server_cn=0\n",
        dir.path().join("server-ca.pem").display()
    );
    let mut alice = Linphone::start_with(&account("alice", tls_addr, "tls"), &trust);
    let mut bob = Baresip::start(&account("bob", s.addr(), "udp"), "sip:alice@127.0.0.1");
    bob.dial("sip:alice@127.0.0.1");
    let id = alice.incoming();
    alice.send(&format!("answer {id}"));
    bob.expect("Call established");
    alice.expect("connected");
    bob.send("/hangup");
    alice.expect("ended");
}

/// A TLS server of the test's own with `cert` (its key beside it) that answers each
/// request it reads with 200 and keeps its connections open; what it saw of each: the
/// connection's number (from 0), the name the client asked for (SNI) and the Call-ID.
type Seen = std::sync::mpsc::Receiver<(usize, Option<String>, String)>;
fn peer(dir: &Path, cert: &str) -> (u16, Seen) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::PrivateKeyDer;
    let chain = CertificateDer::pem_file_iter(dir.join(format!("{cert}.pem")))
        .expect("pem")
        .collect::<Result<Vec<_>, _>>()
        .expect("chain");
    let key = PrivateKeyDer::from_pem_file(dir.join(format!("{cert}.key"))).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("server config");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let config = Arc::new(config);
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(tcp) = stream else { return };
            // Ends with the connection: the client's idle timeout, or the test's end.
            tcp.set_read_timeout(Some(Duration::from_secs(30))).ok();
            let conn = rustls::ServerConnection::new(config.clone()).expect("connection");
            let (mut tls, tx) = (rustls::StreamOwned::new(conn, tcp), tx.clone());
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                // A client that refuses our certificate ends here.
                while let Some(req) = read_request(&mut tls, &mut buf) {
                    let sni = tls.conn.server_name().map(str::to_owned);
                    let ok = sip_message::ResponseBuilder::for_request(&req, 200, "OK", Some("p"))
                        .build();
                    let _ = tls.write_all(&ok);
                    let _ = tls.flush();
                    let _ = tx.send((n, sni, req.call_id().unwrap_or_default().to_owned()));
                }
            });
        }
    });
    (port, rx)
}

/// The first message (without a body) read from `s`, or none when it fails first.
fn read_request(s: &mut impl Read, buf: &mut Vec<u8>) -> Option<Message> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head: Vec<u8> = buf.drain(..end + 4).collect();
            return Message::parse(head).ok();
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk) {
            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
}

/// RFC 5922: a TLS connection the server opens to a next hop found by name asks for that
/// name and checks the certificate against it, not against the address; and it carries
/// requests for that name only (§4): another name at the address gets a connection of its
/// own, an impostor (a name the certificate does not show) none, though one is open there.
#[test]
fn a_next_hop_over_tls_is_checked_against_the_name_it_was_found_by() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = Ca::new(dir.path(), "server");
    ca.sign("server");
    ca.sign_for("peer", &["peer.test", "other.test"]);
    let (peer_port, seen) = peer(dir.path(), "peer");
    let dns = support::dns::Dns::start(&[
        "--host-record=peer.test,127.0.0.1".into(),
        "--host-record=other.test,127.0.0.1".into(),
        "--host-record=impostor.test,127.0.0.1".into(),
    ]);
    let more = format!(
        "ca = \"server-ca.pem\"\n[auth]\ntrusted = [\"127.0.0.1/32\"]\n[dns]\nservers = [\"127.0.0.1:{}\"]\n",
        dns.port
    );
    let (s, _tls_port) = tls_server(dir.path(), &more, "warn");
    let ua = Ua::new();
    let options = |host: &str, call_id: &str| {
        format!(
            "OPTIONS sip:bob@{host}:{peer_port};transport=tls SIP/2.0\n\
Via: SIP/2.0/UDP 127.0.0.1:{p};rport;branch=z9hG4bK{call_id}\n\
From: <sip:a@127.0.0.1>;tag=a\nTo: <sip:bob@{host}>\nCall-ID: {call_id}\nCSeq: 1 OPTIONS\n\
Max-Forwards: 70\nContent-Length: 0\n\n",
            p = ua.port
        )
    };
    let ask = |host: &str, call_id: &str| {
        ua.send(s.addr(), &options(host, call_id));
        let got = seen
            .recv_timeout(Duration::from_secs(10))
            .expect("the peer got the request");
        assert_eq!(ua.recv().status(), Some(200), "{call_id}");
        (got.0, got.1.unwrap_or_default(), got.2)
    };
    let first = ask("peer.test", "by-name");
    assert_eq!(
        (first.1.as_str(), first.2.as_str()),
        ("peer.test", "by-name")
    );
    let other = ask("other.test", "other-name");
    assert_eq!(other.1, "other.test");
    assert_ne!(other.0, first.0, "a connection of its own for another name");
    assert_eq!(
        ask("peer.test", "again").0,
        first.0,
        "its connection reused"
    );
    // The same address found by another name: its certificate does not say that name, so
    // no request goes there, though connections to the address are open; the caller gets
    // an error.
    ua.send(s.addr(), &options("impostor.test", "impostor"));
    let answer = ua.recv();
    assert!(answer.status().is_some_and(|c| c >= 500), "{answer:?}");
    assert!(
        seen.recv_timeout(Duration::from_millis(500)).is_err(),
        "nothing reached the peer"
    );
}
