//! Messages for the unit tests.

use sip_message::Message;

/// A request of `method` with branch `z9hG4bKx`.
pub(crate) fn request(method: &str) -> Message {
    Message::parse(format!(
        "{method} sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP p;branch=z9hG4bKx\r\nFrom: <sip:a@h>;tag=f\r\n\
To: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    ))
    .expect("test request")
}

/// A `code` response to [`request`]`(method)`, with a To tag.
pub(crate) fn response(code: u16, method: &str) -> Message {
    Message::parse(format!(
        "SIP/2.0 {code} X\r\nVia: SIP/2.0/UDP p;branch=z9hG4bKx\r\nFrom: <sip:a@h>;tag=f\r\n\
To: <sip:b@h>;tag=t\r\nCall-ID: c\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    ))
    .expect("test response")
}
