//! SIP over WebSocket (RFC 7118) end to end with a client written here, as a browser's SIP
//! library speaks: it registers over WS with a `*.invalid` Contact, is called from a phone
//! on UDP over its connection and the dialog's requests follow that connection both ways; a
//! reconnect replaces its binding; once its connection is gone its binding goes with it,
//! and a request of a dialog over it gets 430 Flow Failed.
//! Over WSS the same client registers and gets a MESSAGE from UDP.

mod support;

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use sip_message::{HeaderName, Message, Method};
use support::ca::Ca;
use support::{free_port, Server, Ua};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;

/// A WebSocket SIP client over any stream (TCP or TLS).
struct WsPhone<S: std::io::Read + std::io::Write> {
    ws: tungstenite::WebSocket<S>,
    /// The `*.invalid` host of its Contact and Via.
    host: String,
}

impl WsPhone<TcpStream> {
    /// Connects to `ws://to` offering `sip`.
    fn connect(to: SocketAddr, host: &str) -> Self {
        let tcp = TcpStream::connect(to).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        WsPhone::over(tcp, &format!("ws://{to}"), host)
    }
}

impl<S: std::io::Read + std::io::Write> WsPhone<S> {
    fn over(stream: S, url: &str, host: &str) -> Self {
        let mut request = url.into_client_request().expect("request");
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("sip"));
        let (ws, response) = tungstenite::client(request, stream).expect("handshake");
        assert_eq!(response.headers()["Sec-WebSocket-Protocol"], "sip");
        WsPhone {
            ws,
            host: host.to_owned(),
        }
    }

    fn send(&mut self, text: &str) {
        let text = text.replace('\n', "\r\n");
        self.ws
            .send(tungstenite::Message::text(text))
            .expect("send");
    }

    /// The next SIP message (each WebSocket message is one), skipping 100 Trying.
    fn recv(&mut self) -> Message {
        loop {
            match self.ws.read().expect("a message within 5 s") {
                tungstenite::Message::Text(t) => {
                    let m = Message::parse(bytes::Bytes::from(t)).expect("SIP");
                    if m.status() != Some(100) {
                        return m;
                    }
                }
                tungstenite::Message::Binary(b) => return Message::parse(b).expect("SIP"),
                _ => {}
            }
        }
    }

    /// Registers `user` with a Contact of `contact_user` on its `.invalid` host, of instance
    /// `urn:uuid:5e1c` and reg-id 1, as JsSIP does; the 200.
    fn register(&mut self, user: &str, contact_user: &str, transport: &str, cseq: u32) -> Message {
        let host = self.host.clone();
        self.send(&format!(
            "REGISTER sip:127.0.0.1 SIP/2.0\nVia: SIP/2.0/{via} {host};branch=z9hG4bKwsreg{cseq}\n\
From: <sip:{user}@127.0.0.1>;tag=r1\nTo: <sip:{user}@127.0.0.1>\nCall-ID: ws-reg-{user}\nCSeq: {cseq} REGISTER\n\
Contact: <sip:{contact_user}@{host};transport={transport}>;+sip.ice;reg-id=1;+sip.instance=\"<urn:uuid:5e1c>\";expires=600\n\
Supported: path,outbound,gruu\nMax-Forwards: 69\nContent-Length: 0\n\n",
            via = transport.to_uppercase()
        ));
        self.recv()
    }

    /// Answers a request with `code`, echoing its Record-Route (a 2xx to INVITE also gets
    /// a Contact and a To tag).
    fn answer(&mut self, req: &Message, code: u16, contact_user: &str) {
        let mut r = format!("SIP/2.0 {code} X\n");
        for h in req.headers() {
            let name = h.name.as_str();
            if ["Via", "From", "Call-ID", "CSeq", "Record-Route"].contains(&name) {
                r.push_str(&format!("{name}: {}\n", h.value));
            }
            if name == "To" {
                r.push_str(&format!("To: {};tag=ws1\n", h.value));
            }
        }
        if req.method() == Some(Method::Invite) {
            r.push_str(&format!(
                "Contact: <sip:{contact_user}@{};transport=ws>\n",
                self.host
            ));
        }
        r.push_str("Content-Length: 0\n\n");
        self.send(&r);
    }
}

/// The next message `ua` gets of call `call_id` (the 486 of another is retransmitted until
/// acknowledged: the tests do not bother).
fn answer_to(ua: &Ua, call_id: &str) -> Message {
    loop {
        let m = ua.recv();
        if m.call_id().ok() == Some(call_id) {
            return m;
        }
    }
}

/// An INVITE from `ua` to `user`.
fn invite(ua: &Ua, user: &str, call_id: &str) -> String {
    format!(
        "INVITE sip:{user}@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{p};rport;branch=z9hG4bK{call_id}\n\
From: <sip:bob@127.0.0.1>;tag=b1\nTo: <sip:{user}@127.0.0.1>\nCall-ID: {call_id}\nCSeq: 1 INVITE\n\
Contact: <sip:bob@127.0.0.1:{p}>\nMax-Forwards: 70\nContent-Length: 0\n\n",
        p = ua.port
    )
}

/// An in-dialog request from bob (UDP) after the 2xx `ok`: its route set is the 2xx's
/// Record-Route reversed, its target the 2xx's Contact.
fn in_dialog(ua: &Ua, ok: &Message, method: &str, cseq: u32) -> String {
    let target = ok.contacts().next().expect("Contact").expect("Contact");
    let target = match target {
        sip_message::header::Contact::Address(a) => a.uri.as_str().to_owned(),
        sip_message::header::Contact::Star => panic!("Contact *"),
    };
    let routes: Vec<String> = ok
        .headers_named(HeaderName::RecordRoute)
        .flat_map(|h| h.values().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    let route: String = routes
        .iter()
        .rev()
        .map(|r| format!("Route: {r}\n"))
        .collect();
    let to = ok.header(HeaderName::To).expect("To").value;
    let call_id = ok.call_id().expect("Call-ID");
    format!(
        "{method} {target} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{p};rport;branch=z9hG4bK{method}{cseq}\n\
{route}From: <sip:bob@127.0.0.1>;tag=b1\nTo: {to}\nCall-ID: {call_id}\nCSeq: {cseq} {method}\n\
Max-Forwards: 70\nContent-Length: 0\n\n",
        p = ua.port
    )
}

#[test]
fn a_websocket_client_is_called_over_its_connection_until_it_is_gone() {
    let dir = tempfile::tempdir().expect("dir");
    let (s, _, ws_port) = ws_server(dir.path());
    let ws_addr = SocketAddr::from(([127, 0, 0, 1], ws_port));
    let mut alice = WsPhone::connect(ws_addr, "df7jal23ls0d.invalid");
    let ok = alice.register("alice", "k3l", "ws", 1);
    assert_eq!(ok.status(), Some(200), "{ok:?}");
    let contact = ok.header(HeaderName::Contact).expect("Contact").value;
    assert!(
        contact.contains("reg-id=1") && contact.contains("urn:uuid:5e1c"),
        "{contact}"
    );

    // bob, on UDP, calls her: the INVITE comes over her connection.
    let bob = Ua::new();
    bob.send(s.addr(), &invite(&bob, "alice", "ws-call"));
    let inv = alice.recv();
    assert_eq!(inv.method(), Some(Method::Invite), "{inv:?}");
    assert_eq!(inv.top_via().expect("Via").transport, "WS");
    alice.answer(&inv, 200, "k3l");
    let ok = bob.recv();
    assert_eq!(ok.status(), Some(200), "{ok:?}");
    // bob's ACK and BYE reach her over her connection, though her Contact is `.invalid`.
    bob.send(s.addr(), &in_dialog(&bob, &ok, "ACK", 1));
    assert_eq!(alice.recv().method(), Some(Method::Ack));
    bob.send(s.addr(), &in_dialog(&bob, &ok, "BYE", 2));
    let bye = alice.recv();
    assert_eq!(bye.method(), Some(Method::Bye));
    alice.answer(&bye, 200, "k3l");
    assert_eq!(bob.recv().status(), Some(200));

    // She reconnects (a new page: a new Contact, the same instance and reg-id); her old
    // connection stays open, but calls reach her on the new one only.
    let mut again = WsPhone::connect(ws_addr, "0hd3.invalid");
    assert_eq!(again.register("alice", "q8z", "ws", 2).status(), Some(200));
    bob.send(s.addr(), &invite(&bob, "alice", "ws-call-2"));
    let inv = again.recv();
    assert_eq!(
        inv.request_uri_str(),
        Some("sip:q8z@0hd3.invalid;transport=ws")
    );
    again.answer(&inv, 486, "q8z");
    assert_eq!(bob.recv().status(), Some(486));
    alice
        .ws
        .get_mut()
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    assert!(alice.ws.read().is_err(), "nothing on the old connection");

    // A call on the new connection; then her connections are gone: a request of that
    // dialog gets 430 Flow Failed, and a new call finds no binding (it went with its
    // connection).
    bob.send(s.addr(), &invite(&bob, "alice", "ws-call-3"));
    // (The ACK of her 486 comes first.)
    let inv = loop {
        let m = again.recv();
        if m.method() == Some(Method::Invite) {
            break m;
        }
    };
    again.answer(&inv, 200, "q8z");
    let ok = answer_to(&bob, "ws-call-3");
    assert_eq!(ok.status(), Some(200));
    bob.send(s.addr(), &in_dialog(&bob, &ok, "ACK", 1));
    assert_eq!(again.recv().method(), Some(Method::Ack));
    drop(alice);
    drop(again);
    std::thread::sleep(Duration::from_millis(300));
    bob.send(s.addr(), &in_dialog(&bob, &ok, "BYE", 2));
    let failed = answer_to(&bob, "ws-call-3");
    assert_eq!(failed.status(), Some(430), "{failed:?}");
    assert_eq!(failed.reason(), Some("Flow Failed"));
    bob.send(s.addr(), &invite(&bob, "alice", "ws-call-4"));
    let gone = answer_to(&bob, "ws-call-4");
    assert_eq!(gone.status(), Some(404), "{gone:?}");
}

/// The server on UDP and WS, its database in `dir`: it, its listen addresses (to start it
/// again) and its WS port.
fn ws_server(dir: &Path) -> (Server, [String; 2], u16) {
    let (port, ws_port) = (free_port(), free_port());
    let listens = [
        format!("udp:127.0.0.1:{port}"),
        format!("ws:127.0.0.1:{ws_port}"),
    ];
    let s = Server::start_listens(dir, port, &listens, &[]);
    (s, listens, ws_port)
}

/// The server on UDP and WSS, its certificate signed by a test CA; the WSS port and CA.
fn wss_server(dir: &Path) -> (Server, u16, Ca) {
    let ca = Ca::new(dir, "server");
    ca.sign("server");
    let config = dir.join("ferrosip.toml");
    let tls = "[tls]\ncertificate = \"server.pem\"\nprivate_key = \"server.key\"\n";
    std::fs::write(&config, tls).expect("config");
    let (port, wss_port) = (free_port(), free_port());
    let listens = [
        format!("udp:127.0.0.1:{port}"),
        format!("wss:127.0.0.1:{wss_port}"),
    ];
    let config = config.to_str().expect("path");
    let s = Server::start_listens(dir, port, &listens, &["--config", config]);
    (s, wss_port, ca)
}

#[test]
fn a_secure_websocket_client_registers_and_gets_a_message_from_udp() {
    let dir = tempfile::tempdir().expect("dir");
    let (s, wss_port, ca) = wss_server(dir.path());
    let to = SocketAddr::from(([127, 0, 0, 1], wss_port));
    let config = support::ca::client_config(ca.der());
    let name = ServerName::IpAddress(to.ip().into());
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let tcp = TcpStream::connect(to).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let tls = rustls::StreamOwned::new(conn, tcp);
    let mut carol = WsPhone::over(tls, &format!("wss://{to}"), "c4r.invalid");
    let ok = carol.register("carol", "c4r", "wss", 1);
    assert_eq!(ok.status(), Some(200), "{ok:?}");

    let bob = Ua::new();
    bob.send(
        s.addr(),
        &format!(
            "MESSAGE sip:carol@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{p};rport;branch=z9hG4bKwssmsg\n\
From: <sip:bob@127.0.0.1>;tag=b1\nTo: <sip:carol@127.0.0.1>\nCall-ID: wss-msg\nCSeq: 1 MESSAGE\n\
Max-Forwards: 70\nContent-Type: text/plain\nContent-Length: 5\n\nhello",
            p = bob.port
        ),
    );
    let m = carol.recv();
    assert_eq!(m.method(), Some(Method::Message), "{m:?}");
    assert_eq!(m.top_via().expect("Via").transport, "WSS");
    assert_eq!(&m.body()[..], b"hello");
    carol.answer(&m, 200, "c4r");
    assert_eq!(bob.recv().status(), Some(200));
}

/// A restart closes every WebSocket connection: the bindings made over them do not come
/// back with the others (a new call finds none, rather than a flow that is gone).
#[test]
fn websocket_bindings_do_not_outlive_a_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let (s, listens, ws_port) = ws_server(dir.path());
    let mut alice = WsPhone::connect(SocketAddr::from(([127, 0, 0, 1], ws_port)), "r1.invalid");
    assert_eq!(alice.register("alice", "k3l", "ws", 1).status(), Some(200));
    // bob on UDP registers too: his binding comes back.
    let bob = Ua::new();
    let s_port = s.port;
    bob.send(s.addr(), &bob.register(s_port, "bob", "bob-reg", 1, ""));
    assert_eq!(bob.recv().status(), Some(200));
    // (Her connection stays open until the server stops.)
    assert!(s.terminate(), "stopped cleanly");
    drop(alice);
    let s = Server::start_listens(dir.path(), s_port, &listens, &[]);
    let carol = Ua::new();
    carol.send(s.addr(), &invite(&carol, "alice", "after-restart"));
    assert_eq!(answer_to(&carol, "after-restart").status(), Some(404));
    carol.send(s.addr(), &invite(&carol, "bob", "bob-after-restart"));
    let (to_bob, _) = bob
        .recv_timeout(Duration::from_secs(5))
        .expect("bob is called");
    assert_eq!(to_bob.method(), Some(Method::Invite));
}
