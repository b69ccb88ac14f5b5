//! Requests within an INVITE's transaction: the hop-by-hop ACK for a non-2xx final response
//! (RFC 3261 §17.1.1.3) and the CANCEL (§9.1).

use bytes::Bytes;
use sip_message::{HeaderName, Message, RequestBuilder};

/// Builds the ACK for `response` to `invite`: same Request-URI, Call-ID, From, CSeq number and
/// top Via as the INVITE, To from the response, and the INVITE's Route headers.
pub fn build_ack(invite: &Message, response: &Message) -> Bytes {
    in_transaction(invite, "ACK", response)
}

/// Builds the CANCEL of a pending INVITE (RFC 3261 §9.1): same Request-URI, Call-ID, From, To,
/// CSeq number and top Via as the INVITE, and its Route headers.
pub fn build_cancel(invite: &Message) -> Bytes {
    in_transaction(invite, "CANCEL", invite)
}

/// A request of the INVITE's transaction (same branch), with To taken from `to_source`.
fn in_transaction(invite: &Message, method: &str, to_source: &Message) -> Bytes {
    let uri = invite.request_uri_str().unwrap_or_default();
    let mut b = RequestBuilder::new(method, uri);
    if let Some(via) = invite.header(HeaderName::Via) {
        b = b.header("Via", via.values().next().unwrap_or_default());
    }
    b = b.header("Max-Forwards", "70");
    for (name, source) in [
        (HeaderName::From, invite),
        (HeaderName::To, to_source),
        (HeaderName::CallId, invite),
    ] {
        if let Some(h) = source.header(name) {
            b = b.header(name.as_str(), &h.value_unfolded());
        }
    }
    let seq = invite.cseq().map_or(0, |c| c.seq);
    b = b.header("CSeq", &format!("{seq} {method}"));
    for route in invite.headers_named(HeaderName::Route) {
        b = b.header("Route", &route.value_unfolded());
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_fields() {
        let invite = Message::parse(&b"INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP p;branch=z9hG4bKx, SIP/2.0/UDP q;branch=z9hG4bKy\r\n\
Route: <sip:r1;lr>\r\nFrom: <sip:a@h>;tag=f\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n"[..])
        .unwrap();
        let resp = Message::parse(&b"SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP p;branch=z9hG4bKx\r\n\
From: <sip:a@h>;tag=f\r\nTo: <sip:b@h>;tag=t\r\nCall-ID: c\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n"[..])
        .unwrap();
        let ack = Message::parse(build_ack(&invite, &resp)).unwrap();
        ack.validate().unwrap();
        assert_eq!(ack.request_uri_str(), Some("sip:b@h"));
        assert_eq!(ack.vias().count(), 1);
        assert_eq!(ack.top_via().unwrap().branch(), Some("z9hG4bKx"));
        assert_eq!(ack.to().unwrap().tag(), Some("t"));
        assert_eq!(ack.cseq().unwrap().seq, 7);
        assert_eq!(ack.routes().count(), 1);
        let cancel = Message::parse(build_cancel(&invite)).unwrap();
        assert_eq!(cancel.method().map(|m| m.as_str()), Some("CANCEL"));
        assert_eq!(cancel.top_via().unwrap().branch(), Some("z9hG4bKx"));
        assert_eq!(
            (cancel.to().unwrap().tag(), cancel.cseq().unwrap().seq),
            (None, 7)
        );
        assert_eq!(cancel.routes().count(), 1);
    }
}
