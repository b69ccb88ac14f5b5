//! WebSocket clients (RFC 7118) through the core: reached only over the connection they
//! registered on, their dialogs' in-dialog requests over the connection the Record-Route
//! entry facing them names (RFC 5626 flow tokens), 430 once that connection is gone, and a
//! reconnect replacing the binding of its instance and reg-id.

use std::sync::Arc;
use std::time::Instant;

use registrar::Location;
use sip_message::{HeaderName, Message, Protocol, ResponseBuilder};

use crate::tests::{config, handle, invite, msg, sent, udp, CALLER};
use crate::{Core, Destination, ProxyConfig};

const BROWSER: &str = "198.51.100.9:51000";
const CONTACT: &str = "sip:k3l@df7jal23ls0d.invalid;transport=ws";

fn ws_core() -> (Core, Arc<Location>) {
    let mut cfg: ProxyConfig = config();
    cfg.advertised
        .push((Protocol::Ws, "192.0.2.1:8080".parse().expect("addr")));
    let location = Arc::new(Location::new());
    (Core::new(cfg, location.clone()), location)
}

fn flow(addr: &str) -> Destination {
    Destination::flow(Protocol::Ws, addr.parse().expect("addr"))
}

/// A browser's REGISTER (as JsSIP writes it) over the connection from `from`.
fn register(core: &Core, from: &str, contact: &str, cseq: u32) -> Vec<(Destination, Message)> {
    register_flow(core, from, contact, 1, cseq)
}

/// [`register`] for flow `reg_id` of the browser's instance (each flow its own Call-ID).
fn register_flow(
    core: &Core,
    from: &str,
    contact: &str,
    reg_id: u32,
    cseq: u32,
) -> Vec<(Destination, Message)> {
    let reg = register_message(contact, reg_id, cseq);
    sent(handle(core, Instant::now(), reg, flow(from)))
}

/// The REGISTER of [`register_flow`].
fn register_message(contact: &str, reg_id: u32, cseq: u32) -> Message {
    msg(&format!(
        "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKws{reg_id}{cseq}\n\
From: <sip:alice@example.com>;tag=r\nTo: <sip:alice@example.com>\nCall-ID: ws-reg-{reg_id}\nCSeq: {cseq} REGISTER\n\
Contact: <{contact}>;+sip.ice;reg-id={reg_id};+sip.instance=\"<urn:uuid:5e1c>\";expires=600\n\
Supported: path,outbound,gruu\nMax-Forwards: 69\nContent-Length: 0\n\n"
    ))
}

#[test]
fn a_browser_is_called_over_its_connection_and_its_dialog_follows_the_flow() {
    let (core, _) = ws_core();
    let now = Instant::now();
    let ok = register(&core, BROWSER, CONTACT, 1);
    assert_eq!(ok[0].0, flow(BROWSER), "answered over its connection");
    let contact = ok[0].1.header(HeaderName::Contact).expect("Contact").value;
    assert!(
        contact.contains("+sip.instance=\"<urn:uuid:5e1c>\""),
        "{contact}"
    );
    assert!(contact.contains("reg-id=1"), "{contact}");
    assert_eq!(
        ok[0].1.header(HeaderName::Require).map(|h| h.value),
        Some("outbound")
    );
    assert_eq!(
        ok[0]
            .1
            .headers()
            .find(|h| h.raw_name == "Flow-Timer")
            .map(|h| h.value),
        Some("120")
    );

    // A call from UDP goes over the connection, record-routed on both sides; the entry that
    // faces the browser names its connection.
    let out = sent(core.handle_message(now, invite("alice", ""), udp(CALLER)));
    let (dest, fwd) = &out[0];
    assert_eq!(*dest, flow(BROWSER));
    assert_eq!(fwd.request_uri_str(), Some(CONTACT));
    assert_eq!(fwd.vias().next().unwrap().unwrap().transport, "WS");
    let rr: Vec<String> = fwd
        .headers_named(HeaderName::RecordRoute)
        .map(|h| h.value.to_owned())
        .collect();
    assert_eq!(rr.len(), 2, "{rr:?}");
    assert!(
        rr[0].starts_with("<sip:192.0.2.1:8080;transport=ws;lr;"),
        "{rr:?}"
    );
    assert!(rr[0].contains(";ft="), "{rr:?}");
    assert!(
        !rr[1].contains(";ft=") && !rr[1].contains("transport"),
        "{rr:?}"
    );

    // The browser answers; the caller's copy of the route set comes back with the 200.
    let mut answer = ResponseBuilder::for_request(fwd, 200, "OK", Some("b"))
        .header("Contact", &format!("<{CONTACT}>"));
    for v in &rr {
        answer = answer.header("Record-Route", v);
    }
    let up = sent(core.handle_message(now, Message::parse(answer.build()).unwrap(), flow(BROWSER)));
    let caller_rr: Vec<String> = up[0]
        .1
        .headers_named(HeaderName::RecordRoute)
        .map(|h| h.value.to_owned())
        .collect();
    assert_eq!(caller_rr.len(), 2);

    // The caller's BYE (route set reversed: UDP entry first) reaches the browser over its
    // connection, though the Request-URI is `*.invalid`.
    let bye = |routes: &[String], via: &str, from: &str, to: &str, ruri: &str| {
        let route: String = routes.iter().map(|r| format!("Route: {r}\n")).collect();
        msg(&format!(
            "BYE {ruri} SIP/2.0\nVia: {via};branch=z9hG4bKbye{}\n{route}From: {from}\nTo: {to}\n\
Call-ID: call-1\nCSeq: 2 BYE\nMax-Forwards: 70\nContent-Length: 0\n\n",
            routes.len()
        ))
    };
    let reversed: Vec<String> = caller_rr.iter().rev().cloned().collect();
    let caller_bye = bye(
        &reversed,
        &format!("SIP/2.0/UDP {CALLER}"),
        "<sip:caller@example.net>;tag=c",
        "<sip:alice@example.com>;tag=b",
        CONTACT,
    );
    let out = sent(core.handle_message(now, caller_bye, udp(CALLER)));
    assert_eq!(out[0].0, flow(BROWSER));
    assert_eq!(out[0].1.routes().count(), 0);

    // The browser's BYE (over its connection, WS entry first) goes to the caller's Contact.
    let browser_bye = bye(
        &rr,
        "SIP/2.0/WS df7jal23ls0d.invalid",
        "<sip:alice@example.com>;tag=b",
        "<sip:caller@example.net>;tag=c",
        "sip:caller@192.0.2.10:5060",
    );
    let out = sent(core.handle_message(now, browser_bye, flow(BROWSER)));
    assert_eq!(out[0].0, udp(CALLER));

    // A token changed by the caller leads nowhere near another connection.
    let forged: Vec<String> = reversed
        .iter()
        .map(|r| r.replace(";ft=c6336409c7", ";ft=c6336409c8"))
        .collect();
    assert_ne!(forged, reversed, "the token names 198.51.100.9:51000");
    let forged_bye = bye(
        &forged,
        &format!("SIP/2.0/UDP {CALLER}"),
        "<sip:caller@example.net>;tag=c",
        "<sip:alice@example.com>;tag=b",
        CONTACT,
    );
    let out = sent(core.handle_message(now, forged_bye, udp(CALLER)));
    assert!(
        out.iter().all(|(d, _)| !d.protocol.is_websocket()),
        "{out:?}"
    );
}

/// A new request for a browser whose connection is gone: its caller hears 480 (430 is
/// for proxies, RFC 5626 §5.3; a request of a dialog gets it, see the first test).
#[test]
fn a_call_for_a_connection_that_is_gone_gets_480() {
    let (core, _) = ws_core();
    let now = Instant::now();
    register(&core, BROWSER, CONTACT, 1);
    let cmds = core.handle_message(now, invite("alice", ""), udp(CALLER));
    let (dest, data) = cmds
        .iter()
        .find_map(|c| match c {
            crate::Command::Send { dest, data } => Some((*dest, data.clone())),
            _ => None,
        })
        .expect("forwarded");
    assert_eq!(dest, flow(BROWSER));
    let up = sent(core.send_failed(now, dest, data));
    let (to, resp) = up.last().expect("an answer upstream");
    assert_eq!(*to, udp(CALLER));
    assert_eq!(resp.status(), Some(480));
}

/// RFC 5626 §5.3: an instance with two flows (the same Contact, reg-id 1 and 2) is called
/// over one, the last registered; when that one fails, over the other, in the same
/// transaction.
#[test]
fn an_instance_is_called_over_one_flow_and_then_its_other() {
    let (core, location) = ws_core();
    let now = Instant::now();
    let second = "198.51.100.9:51001";
    register_flow(&core, BROWSER, CONTACT, 1, 1);
    let ok = register_flow(&core, second, CONTACT, 2, 1);
    assert_eq!(ok[0].1.status(), Some(200));
    assert_eq!(location.all(0).len(), 2, "two flows, one Contact");
    let cmds = core.handle_message(now, invite("alice", ""), udp(CALLER));
    let sends: Vec<_> = cmds
        .iter()
        .filter_map(|c| match c {
            crate::Command::Send { dest, data } => Some((*dest, data.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(sends.len(), 1, "one flow per instance: {sends:?}");
    let (dest, data) = sends[0].clone();
    assert_eq!(dest, flow(second), "the flow registered last");
    let out = sent(core.send_failed(now, dest, data));
    assert_eq!(out.len(), 1, "{out:?}");
    let (to, again) = &out[0];
    assert_eq!(*to, flow(BROWSER), "the other flow, instead of 430");
    assert_eq!(again.method(), Some(sip_message::Method::Invite));
    // Both gone: the caller hears the callee is unavailable.
    let out = sent(core.send_failed(now, *to, again.to_bytes()));
    let (to, resp) = out.last().expect("an answer upstream");
    assert_eq!((*to, resp.status()), (udp(CALLER), Some(480)));
}

/// A 503 from the client itself is its answer: the request does not go to its other flow
/// (RFC 5626 §5.3 moves on after 430 or a transport error only).
#[test]
fn a_503_from_the_client_is_not_tried_on_its_other_flow() {
    let (core, _) = ws_core();
    let now = Instant::now();
    let second = "198.51.100.9:51001";
    register_flow(&core, BROWSER, CONTACT, 1, 1);
    register_flow(&core, second, CONTACT, 2, 1);
    let out = sent(core.handle_message(now, invite("alice", ""), udp(CALLER)));
    let (dest, fwd) = &out[0];
    assert_eq!(*dest, flow(second));
    let busy = ResponseBuilder::for_request(fwd, 503, "Service Unavailable", Some("b")).build();
    let out = sent(core.handle_message(now, Message::parse(busy).unwrap(), flow(second)));
    assert!(out.iter().all(|(d, _)| *d != flow(BROWSER)), "{out:?}");
    let (to, resp) = out.last().expect("an answer upstream");
    assert_eq!((*to, resp.status()), (udp(CALLER), Some(500)));
}

#[test]
fn a_reconnected_browser_replaces_its_binding() {
    let (core, location) = ws_core();
    register(&core, BROWSER, CONTACT, 1);
    // After a reconnect: another connection, and (a new page) another Contact, of the same
    // instance and reg-id.
    let again = "198.51.100.9:51007";
    let other = "sip:q8z@0hd3.invalid;transport=ws";
    let ok = register(&core, again, other, 2);
    assert_eq!(ok[0].1.status(), Some(200));
    // (The core's clock starts at 0 in tests.)
    let bindings = location.all(0);
    assert_eq!(bindings.len(), 1, "{bindings:?}");
    assert_eq!(bindings[0].contact, other);
    assert_eq!(bindings[0].source, format!("ws:{again}"));
    let out = sent(core.handle_message(Instant::now(), invite("alice", ""), udp(CALLER)));
    assert_eq!(out[0].0, flow(again));
}

/// A reconnect's REGISTER replaced the binding of the old connection, which then closed
/// (its close found no binding of its own), and the write failed: the binding put back
/// goes again, rather than point at a closed connection.
#[test]
fn a_binding_put_back_after_a_failed_write_goes_if_its_connection_closed() {
    let (core, location) = ws_core();
    let now = Instant::now();
    register(&core, BROWSER, CONTACT, 1);
    let again = "198.51.100.9:51007";
    let pending = core.handle_message(now, register_message(CONTACT, 1, 2), flow(again));
    let old = BROWSER.parse().expect("addr");
    assert!(core.connection_closed(now, Protocol::Ws, old).is_empty());
    let out = crate::tests::written(&core, now, pending, false);
    assert!(location.all(0).is_empty(), "{:?}", location.all(0));
    let removed = out.iter().any(|c| {
        matches!(c, crate::Command::Persist { changes, then: None }
            if matches!(&changes[..], [registrar::Change::Remove { contact, .. }] if contact == CONTACT))
    });
    assert!(removed, "{out:?}");
}

/// A flow token names its connection in its own dialog only: a caller that learnt the
/// browser's token cannot carry it into its dialog with someone else to reach the browser.
#[test]
fn a_flow_token_leads_nowhere_outside_its_dialog() {
    let (core, _) = ws_core();
    let now = Instant::now();
    register(&core, BROWSER, CONTACT, 1);
    crate::tests::register(&core, "bob", "192.0.2.20:5060", "1.0");
    // The caller calls the browser and reads the browser-facing entry from its INVITE.
    let out = sent(core.handle_message(now, invite("alice", ""), udp(CALLER)));
    let ws_entry = out[0]
        .1
        .headers_named(HeaderName::RecordRoute)
        .map(|h| h.value.to_owned())
        .find(|v| v.contains(";ft="))
        .expect("the browser's entry");
    // Then it calls bob, and gets its own key for that dialog from bob's 200.
    let to_bob = crate::tests::invite_on("bob1", "bob", "");
    let text = String::from_utf8_lossy(&to_bob.to_bytes()).replace("call-1", "call-2");
    let to_bob = Message::parse(text.into_bytes()).expect("INVITE");
    let out = sent(core.handle_message(now, to_bob, udp(CALLER)));
    let fwd = &out[0].1;
    let mut ok = ResponseBuilder::for_request(fwd, 200, "OK", Some("b"))
        .header("Contact", "<sip:bob@192.0.2.20:5060>");
    for h in fwd.headers_named(HeaderName::RecordRoute) {
        ok = ok.header("Record-Route", h.value);
    }
    let up = sent(core.handle_message(
        now,
        Message::parse(ok.build()).unwrap(),
        udp("192.0.2.20:5060"),
    ));
    let bob_routes: Vec<String> = up[0]
        .1
        .headers_named(HeaderName::RecordRoute)
        .map(|h| h.value.to_owned())
        .collect();
    // A MESSAGE in bob's dialog with the browser's entry added after ours, without its key
    // (so that both are taken off as one double entry).
    let mut routes: String = bob_routes
        .iter()
        .rev()
        .map(|r| format!("Route: {r}\n"))
        .collect();
    let keyless: String = ws_entry
        .trim_matches(|c| c == '<' || c == '>')
        .split(';')
        .filter(|p| !p.starts_with("rk="))
        .collect::<Vec<_>>()
        .join(";");
    routes.push_str(&format!("Route: <{keyless}>\n"));
    let smuggled = crate::tests::msg(&format!(
        "MESSAGE sip:bob@192.0.2.20:5060 SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKsmug\n\
{routes}From: <sip:boss@example.com>;tag=c\nTo: <sip:bob@example.com>;tag=b\nCall-ID: call-2\n\
CSeq: 2 MESSAGE\nMax-Forwards: 70\nContent-Length: 0\n\n"
    ));
    let out = sent(core.handle_message(now, smuggled, udp(CALLER)));
    assert!(
        out.iter().all(|(d, _)| !d.protocol.is_websocket()),
        "{out:?}"
    );
}

#[test]
fn a_browsers_binding_goes_when_its_connection_closes() {
    let (core, location) = ws_core();
    let now = Instant::now();
    register(&core, BROWSER, CONTACT, 1);
    // A second address-of-record over the same connection.
    let carol = msg(
        "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKcarol\n\
From: <sip:carol@example.com>;tag=r\nTo: <sip:carol@example.com>\nCall-ID: ws-carol\nCSeq: 1 REGISTER\n\
Contact: <sip:c4@df7jal23ls0d.invalid;transport=ws>;expires=600\nContent-Length: 0\n\n",
    );
    assert_eq!(
        sent(handle(&core, now, carol, flow(BROWSER)))[0].1.status(),
        Some(200)
    );
    assert_eq!(location.all(0).len(), 2);
    let addr = BROWSER.parse().expect("addr");
    // Another connection closing changes nothing.
    let other = "198.51.100.9:51999".parse().expect("addr");
    assert!(core.connection_closed(now, Protocol::Ws, other).is_empty());
    let cmds = core.connection_closed(now, Protocol::Ws, addr);
    let removed: Vec<&str> = cmds
        .iter()
        .flat_map(|c| match c {
            crate::Command::Persist {
                changes,
                then: None,
            } => changes.iter().collect::<Vec<_>>(),
            _ => Vec::new(),
        })
        .filter_map(|c| match c {
            registrar::Change::Remove { contact, .. } => Some(contact.as_str()),
            registrar::Change::Upsert(_) => None,
        })
        .collect();
    assert_eq!(removed.len(), 2, "{cmds:?}");
    assert!(removed.contains(&CONTACT));
    assert!(location.all(0).is_empty());
    assert!(
        core.connection_closed(now, Protocol::Ws, addr).is_empty(),
        "once"
    );
}

/// A phone's call to a browser goes through the relay, which is told the SDP goes to a
/// browser (WebRTC); the browser's answer goes back to a phone (plain RTP).
#[test]
fn a_call_to_a_browser_has_its_media_bridged_for_it() {
    let (core, _) = ws_core();
    let now = Instant::now();
    register(&core, BROWSER, CONTACT, 1);
    let sdp = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    let invite = msg(&format!(
        "INVITE sip:alice@example.com SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKwebrtc\n\
From: <sip:caller@example.net>;tag=c\nTo: <sip:alice@example.com>\nCall-ID: webrtc-1\nCSeq: 1 INVITE\n\
Contact: <sip:caller@192.0.2.10:5060>\nMax-Forwards: 70\nContent-Type: application/sdp\nContent-Length: {}\n\n{sdp}",
        sdp.len()
    ));
    let cmds = handle(&core, now, invite, udp(CALLER));
    let asked: Vec<_> = cmds
        .iter()
        .filter_map(|c| match c {
            crate::Command::Media { request, .. } => Some(request.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(asked.len(), 1, "{cmds:?}");
    assert_eq!(
        asked[0].receiver,
        relay::Peer::WebRtc,
        "alice registered over WebSocket"
    );
}
