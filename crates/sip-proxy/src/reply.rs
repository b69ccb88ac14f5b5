//! Responses the proxy generates itself.

use std::net::SocketAddr;

use bytes::Bytes;
use sip_message::{HeaderName, Message, ResponseBuilder};

use crate::forward::fnv;

/// A To tag that is the same for every retransmission of a request, so replies generated
/// without a transaction stay consistent.
pub(crate) fn to_tag(req: &Message) -> String {
    let part = |n: HeaderName| req.header(n).map_or(&b""[..], |h| h.value.as_bytes());
    let branch = req
        .top_via()
        .ok()
        .and_then(|v| v.branch())
        .unwrap_or_default();
    let hash = fnv(&[
        part(HeaderName::CallId),
        part(HeaderName::From),
        branch.as_bytes(),
    ]);
    // 16 hex digits (as `{:016x}` writes them, without the formatter: every REGISTER's 200).
    let mut tag = String::with_capacity(16);
    crate::branch::push_hex(&mut tag, hash, 16);
    tag
}

/// Builds a response to `req`, received from `src`, with our Server header and any `extra`
/// headers.
pub(crate) fn response(
    req: &Message,
    src: SocketAddr,
    code: u16,
    reason: &str,
    agent: &str,
    extra: &[(&str, &str)],
) -> Bytes {
    let tag = (code > 100).then(|| to_tag(req));
    let mut b = ResponseBuilder::for_request_from(req, src, code, reason, tag.as_deref());
    for (n, v) in extra {
        b = b.header(n, v);
    }
    b.header("Server", agent).build()
}

/// The standard reason phrase of the status codes we send.
pub(crate) fn reason(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        200 => "OK",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        430 => "Flow Failed",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        487 => "Request Terminated",
        500 => "Server Internal Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        505 => "Version Not Supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_tag_is_the_hash_in_sixteen_hex_digits() {
        let req = Message::parse(
            &b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa\r\n\
From: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n\r\n"[..],
        )
        .expect("request");
        let hash = fnv(&[b"c", b"<sip:a@example.com>;tag=1", b"z9hG4bKa"]);
        assert_eq!(to_tag(&req), format!("{hash:016x}"));
        assert_eq!(to_tag(&req), to_tag(&req.clone()));
    }
}
