//! Any datagram: parse, validate and read every header must not panic; a valid message
//! written back out (edited or not) must parse again with the same body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip_message::{HeaderName, Message};

fuzz_target!(|data: &[u8]| {
    if let Some(resp) = sip_message::response_to_unparsable(data, 400, "Bad Request") {
        Message::parse(resp).expect("our 400 parses");
    }
    let Ok(m) = Message::parse(data.to_vec()) else { return };
    let valid = m.validate().is_ok();
    let _ = m.sanity_check();
    let _ = (m.method(), m.request_uri(), m.status(), m.reason(), m.start_line());
    let _ = (m.from(), m.to(), m.call_id(), m.cseq(), m.max_forwards(), m.expires(), m.content_type());
    for h in m.headers() {
        let _ = h.value_unfolded();
        let _ = h.values().count();
    }
    let _ = m.vias().count() + m.contacts().count() + m.routes().count() + m.record_routes().count();
    let _ = m.auth_headers(HeaderName::Authorization).count();
    if !valid {
        return;
    }
    let plain = Message::parse(m.edit().finish()).expect("unedited message parses again");
    assert_eq!(plain.body(), m.body());
    assert!(plain.validate().is_ok());
    let mut e = m.edit();
    e.push_front(HeaderName::Via, "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKfuzz")
        .set_top_via_param("received", Some("192.0.2.2"))
        .add_header("Record-Route", "<sip:192.0.2.1;lr>");
    if m.is_request() {
        e.set_request_uri("sip:fuzz@192.0.2.3");
    }
    let edited = Message::parse(e.finish()).expect("edited message parses again");
    assert_eq!(edited.body(), m.body());
    assert_eq!(edited.top_via().expect("pushed Via").branch(), Some("z9hG4bKfuzz"));
});
