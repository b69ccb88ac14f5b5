//! Building new requests and responses (RFC 3261 §8.1.1, §8.2.6).

use bytes::{BufMut, Bytes, BytesMut};

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::header::{HeaderName, ListIter};
use crate::message::{Header, Message};

/// Writes the header lines and body shared by both builders.
#[derive(Debug)]
struct Parts {
    out: BytesMut,
    body: Option<(String, Bytes)>,
}

/// Room a message starts with: most responses and requests we build fit, so the buffer is
/// not grown (and copied) header by header.
const START_CAPACITY: usize = 512;

impl Parts {
    fn new() -> Parts {
        Parts {
            out: BytesMut::with_capacity(START_CAPACITY),
            body: None,
        }
    }

    fn header(&mut self, name: &str, value: &str) {
        self.out.reserve(name.len() + value.len() + 4);
        self.out.put_slice(name.as_bytes());
        self.out.put_slice(b": ");
        self.out.put_slice(value.as_bytes());
        self.out.put_slice(b"\r\n");
    }

    fn finish(mut self) -> Bytes {
        let body = match self.body.take() {
            Some((ct, body)) => {
                self.header("Content-Type", &ct);
                body
            }
            None => Bytes::new(),
        };
        self.header("Content-Length", &body.len().to_string());
        self.out.put_slice(b"\r\n");
        self.out.put_slice(&body);
        self.out.freeze()
    }
}

/// Builds a request line by line.
#[derive(Debug)]
pub struct RequestBuilder {
    parts: Parts,
}

impl RequestBuilder {
    /// Starts `METHOD uri SIP/2.0`.
    pub fn new(method: &str, uri: &str) -> Self {
        let mut parts = Parts::new();
        parts
            .out
            .put_slice(format!("{method} {uri} SIP/2.0\r\n").as_bytes());
        RequestBuilder { parts }
    }

    /// Adds a header field.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.parts.header(name, value);
        self
    }

    /// Sets the body and its Content-Type.
    pub fn body(mut self, content_type: &str, body: impl Into<Bytes>) -> Self {
        self.parts.body = Some((content_type.to_owned(), body.into()));
        self
    }

    /// Writes the request; Content-Length is added.
    pub fn build(self) -> Bytes {
        self.parts.finish()
    }
}

/// Appends `n` in decimal, without the formatter (ports, counts, seconds in headers we
/// write on every message).
pub fn push_decimal(out: &mut String, n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[at..].iter().map(|&d| char::from(d)));
}

/// Appends an IP address as `Display` writes it (IPv4 without the formatter: the source
/// address of every REGISTER).
pub fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_decimal(out, u64::from(octet));
            }
        }
        IpAddr::V6(v6) => {
            use std::fmt::Write;
            let _ = write!(out, "{v6}");
        }
    }
}

/// Appends a socket address as `Display` writes it: `192.0.2.1:5060`, `[2001:db8::1]:5060`,
/// `[fe80::1%2]:5060` (an IPv6 address, rarer, through the formatter, scope id and all).
pub fn push_socket_addr(out: &mut String, addr: SocketAddr) {
    match addr {
        SocketAddr::V4(v4) => {
            push_ip(out, IpAddr::V4(*v4.ip()));
            out.push(':');
            push_decimal(out, u64::from(v4.port()));
        }
        SocketAddr::V6(v6) => {
            use std::fmt::Write;
            let _ = write!(out, "{v6}");
        }
    }
}

/// Builds a response line by line.
#[derive(Debug)]
pub struct ResponseBuilder {
    parts: Parts,
}

impl ResponseBuilder {
    /// Starts `SIP/2.0 code reason`.
    pub fn new(code: u16, reason: &str) -> Self {
        let mut parts = Parts::new();
        let out = &mut parts.out;
        out.put_slice(b"SIP/2.0 ");
        // Status codes have three digits (a builder given another writes it in full).
        match code {
            100..=999 => out.put_slice(&[
                b'0' + (code / 100) as u8,
                b'0' + (code / 10 % 10) as u8,
                b'0' + (code % 10) as u8,
            ]),
            _ => out.put_slice(code.to_string().as_bytes()),
        }
        out.put_u8(b' ');
        out.put_slice(reason.as_bytes());
        out.put_slice(b"\r\n");
        ResponseBuilder { parts }
    }

    /// Starts a response to `request` (RFC 3261 §8.2.6.2): copies every Via, From, To,
    /// Call-ID, CSeq (and Timestamp on 100); adds `to_tag` to To when To has no tag.
    pub fn for_request(request: &Message, code: u16, reason: &str, to_tag: Option<&str>) -> Self {
        Self::build_for(request, None, code, reason, to_tag)
    }

    /// As [`ResponseBuilder::for_request`], for a request received from `src`: the top Via
    /// gets `received` and `rport` as RFC 3261 §18.2.1 and RFC 3581 §4 ask, so the client
    /// learns the address it was seen from.
    pub fn for_request_from(
        request: &Message,
        src: SocketAddr,
        code: u16,
        reason: &str,
        to_tag: Option<&str>,
    ) -> Self {
        Self::build_for(request, Some(src), code, reason, to_tag)
    }

    fn build_for(
        request: &Message,
        mut src: Option<SocketAddr>,
        code: u16,
        reason: &str,
        to_tag: Option<&str>,
    ) -> Self {
        let mut b = ResponseBuilder::new(code, reason);
        for h in request.headers() {
            let copy = match h.name {
                HeaderName::Via => {
                    let stamp = src.take().and_then(|s| stamped_via(request, &h, s));
                    match stamp {
                        Some(value) => {
                            b.parts.header("Via", &value);
                            false
                        }
                        None => true,
                    }
                }
                HeaderName::From | HeaderName::CallId | HeaderName::CSeq => true,
                HeaderName::Timestamp => code == 100,
                HeaderName::To => {
                    let value = h.value_unfolded();
                    match to_tag {
                        Some(tag) if request.to().is_ok_and(|t| t.tag().is_none()) => {
                            let mut tagged = String::with_capacity(value.len() + 5 + tag.len());
                            tagged.push_str(&value);
                            tagged.push_str(";tag=");
                            tagged.push_str(tag);
                            b.parts.header("To", &tagged);
                        }
                        _ => b.parts.header("To", &value),
                    }
                    false
                }
                _ => false,
            };
            if copy {
                b.parts.header(h.name.as_str(), &h.value_unfolded());
            }
        }
        b
    }

    /// Adds a header field.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.parts.header(name, value);
        self
    }

    /// Sets the body and its Content-Type.
    pub fn body(mut self, content_type: &str, body: impl Into<Bytes>) -> Self {
        self.parts.body = Some((content_type.to_owned(), body.into()));
        self
    }

    /// Writes the response; Content-Length is added.
    pub fn build(self) -> Bytes {
        self.parts.finish()
    }
}

/// The first Via header of `request`, `via`, with its first entry (the top Via) stamped for
/// `src` ([`Via::stamped`](crate::header::Via::stamped)); `None` when it stays as it is.
fn stamped_via(request: &Message, via: &Header<'_>, src: SocketAddr) -> Option<String> {
    let value = via.value_unfolded();
    let top = ListIter::new(&value).next()?;
    if needs_no_stamp(top, src) {
        return None;
    }
    let stamped = request.top_via().ok()?.stamped(src)?;
    let rest = &value[top.as_ptr() as usize - value.as_ptr() as usize + top.len()..];
    Some(stamped + rest)
}

/// True when the top Via `top` certainly needs nothing for `src`, found without parsing it
/// (every REGISTER's 200 comes here): no rport asked for, and sent-by is `src`'s IPv4
/// address as written. False sends it to the full parse.
fn needs_no_stamp(top: &str, src: SocketAddr) -> bool {
    let IpAddr::V4(ip) = src.ip() else {
        return false;
    };
    if top
        .as_bytes()
        .windows(5)
        .any(|w| w.eq_ignore_ascii_case(b"rport"))
    {
        return false;
    }
    let Some((_, rest)) = top.split_once([' ', '\t']) else {
        return false;
    };
    let host = rest
        .trim_start()
        .split([':', ';', ' ', '\t', ','])
        .next()
        .unwrap_or("");
    host.parse::<Ipv4Addr>().is_ok_and(|h| h == ip)
}

/// A response to a request too malformed to parse (RFC 3261 §21.4.1 400, or 505): copies the
/// Via, From, To, Call-ID and CSeq lines found in the raw bytes, tags To, and sets
/// Content-Length: 0. `None` for a response (never answered) or when no Via line is found.
pub fn response_to_unparsable(raw: &[u8], code: u16, reason: &str) -> Option<Bytes> {
    if raw.starts_with(b"SIP/") {
        return None;
    }
    let head_end = memchr::memmem::find(raw, b"\r\n\r\n").unwrap_or(raw.len());
    let head = std::str::from_utf8(&raw[..head_end]).ok()?;
    let mut b = ResponseBuilder::new(code, reason);
    let mut has_via = false;
    let mut lines = head.split("\r\n").skip(1).peekable();
    while let Some(line) = lines.next() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let mut value = value.trim().to_owned();
        while let Some(cont) = lines.next_if(|l| l.starts_with([' ', '\t'])) {
            value.push(' ');
            value.push_str(cont.trim());
        }
        let name = name.trim_end();
        if !crate::syntax::is_token(name)
            || value.bytes().any(|c| c.is_ascii_control() && c != b'\t')
        {
            continue;
        }
        let name = HeaderName::from_bytes(name.as_bytes());
        match name {
            HeaderName::Via => has_via = true,
            HeaderName::To if !value.contains("tag=") => value.push_str(";tag=e0"),
            HeaderName::From | HeaderName::To | HeaderName::CallId | HeaderName::CSeq => {}
            _ => continue,
        }
        b = b.header(name.as_str(), &value);
    }
    // The copied values were not checked against their grammar: answer only if ours parses.
    let resp = b.build();
    (has_via && Message::parse(resp.clone()).is_ok()).then_some(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_as_the_formatter_writes_them() {
        for n in [0, 7, 10, 5060, 65535, 4_294_967_296, u64::MAX] {
            let mut s = "x".to_owned();
            push_decimal(&mut s, n);
            assert_eq!(s, format!("x{n}"));
        }
    }

    #[test]
    fn request_and_response() {
        let req = RequestBuilder::new("INVITE", "sip:bob@example.com")
            .header("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc")
            .header("From", "<sip:alice@example.com>;tag=a1")
            .header("To", "<sip:bob@example.com>")
            .header("Call-ID", "c1")
            .header("CSeq", "1 INVITE")
            .header("Max-Forwards", "70")
            .header("Timestamp", "54")
            .body("application/sdp", "v=0\r\n")
            .build();
        let req = Message::parse(req).unwrap();
        req.validate().unwrap();
        req.sanity_check().unwrap();
        assert_eq!(req.body().as_ref(), b"v=0\r\n");
        let resp = ResponseBuilder::for_request(&req, 180, "Ringing", Some("b2"))
            .header("Contact", "<sip:bob@h>")
            .build();
        let resp = Message::parse(resp).unwrap();
        resp.validate().unwrap();
        assert_eq!(resp.status(), Some(180));
        assert_eq!(resp.to().unwrap().tag(), Some("b2"));
        assert_eq!(resp.from().unwrap().tag(), Some("a1"));
        assert_eq!(resp.top_via().unwrap().branch(), Some("z9hG4bKabc"));
        assert!(resp.header(HeaderName::Timestamp).is_none());
        assert_eq!(resp.content_length(), Some(0));
        let trying =
            Message::parse(ResponseBuilder::for_request(&req, 100, "Trying", None).build())
                .unwrap();
        assert_eq!(trying.to().unwrap().tag(), None);
        assert!(trying.header(HeaderName::Timestamp).is_some());
    }
}

#[cfg(test)]
mod stamp_tests {
    use super::*;

    fn stamped(via: &str, src: &str) -> String {
        let req = RequestBuilder::new("REGISTER", "sip:example.com")
            .header("Via", via)
            .header("Via", "SIP/2.0/UDP 192.0.2.99;branch=z9hG4bKold")
            .header("CSeq", "1 REGISTER")
            .build();
        let req = Message::parse(req).unwrap();
        let resp = ResponseBuilder::for_request_from(&req, src.parse().unwrap(), 200, "OK", None);
        let resp = Message::parse(resp.build()).unwrap();
        let vias: Vec<String> = resp
            .headers()
            .filter(|h| h.name == HeaderName::Via)
            .map(|h| h.value_unfolded().into_owned())
            .collect();
        assert_eq!(
            vias[1], "SIP/2.0/UDP 192.0.2.99;branch=z9hG4bKold",
            "only the top Via"
        );
        vias[0].clone()
    }

    /// RFC 3261 §18.2.1 and RFC 3581 §4.
    #[test]
    fn the_top_via_names_the_source() {
        for (via, src, expected) in [
            (
                "SIP/2.0/UDP 10.9.9.9:5999;rport;branch=z9hG4bK1",
                "127.0.0.1:4000",
                "SIP/2.0/UDP 10.9.9.9:5999;branch=z9hG4bK1;received=127.0.0.1;rport=4000",
            ),
            (
                "SIP/2.0/UDP 10.9.9.9:5999;branch=z9hG4bK1",
                "127.0.0.1:4000",
                "SIP/2.0/UDP 10.9.9.9:5999;branch=z9hG4bK1;received=127.0.0.1",
            ),
            (
                "SIP/2.0/UDP 127.0.0.1:4000;branch=z9hG4bK1",
                "127.0.0.1:4000",
                "SIP/2.0/UDP 127.0.0.1:4000;branch=z9hG4bK1",
            ),
            (
                "SIP / 2.0 / UDP 127.0.0.1:4000;branch=z9hG4bK1",
                "127.0.0.1:4000",
                "SIP / 2.0 / UDP 127.0.0.1:4000;branch=z9hG4bK1",
            ),
            (
                "SIP/2.0/UDP 127.0.0.1:4000;branch=z9hG4bK1;RPORT",
                "127.0.0.1:4000",
                "SIP/2.0/UDP 127.0.0.1:4000;branch=z9hG4bK1;received=127.0.0.1;rport=4000",
            ),
            (
                "SIP/2.0/TCP phone.example.com;branch=z9hG4bK1;received=1.2.3.4;rport=9",
                "[2001:db8::5]:5070",
                "SIP/2.0/TCP phone.example.com;branch=z9hG4bK1;received=2001:db8::5;rport=5070",
            ),
            (
                "SIP/2.0/UDP [2001:db8::5]:5060;rport;branch=z9hG4bK1",
                "[2001:db8::5]:5070",
                "SIP/2.0/UDP [2001:db8::5]:5060;branch=z9hG4bK1;received=2001:db8::5;rport=5070",
            ),
        ] {
            assert_eq!(stamped(via, src), expected, "{via}");
        }
    }
}

#[cfg(test)]
mod unparsable_tests {
    use super::*;

    #[test]
    fn answers_broken_requests_from_their_raw_lines() {
        let raw = b"INVITE <sip:user@example.com> SIP/2.0\r\nTo: sip:user@example.com\r\nFrom: sip:caller@example.net;tag=39291\r\n\
Call-ID: ltgtruri.1@192.0.2.5\r\nCSeq: 1 INVITE\r\nVia: SIP/2.0/UDP 192.0.2.5\r\n  ;branch=z9hG4bK1\r\nContent-Length: 9999\r\n\r\nv=0";
        let resp =
            Message::parse(response_to_unparsable(raw, 400, "Bad Request").unwrap()).unwrap();
        resp.validate().unwrap();
        assert_eq!(resp.status(), Some(400));
        assert_eq!(resp.top_via().unwrap().branch(), Some("z9hG4bK1"));
        assert_eq!(resp.to().unwrap().tag(), Some("e0"));
        assert_eq!(resp.cseq().unwrap().seq, 1);
        assert!(response_to_unparsable(b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n", 400, "x").is_none());
        assert!(response_to_unparsable(b"garbage", 400, "x").is_none());
        // A bare LF inside a copied value would split it into a line that is no header.
        let raw = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall-ID: a\nb c\r\n\r\n";
        let resp = Message::parse(response_to_unparsable(raw, 400, "x").unwrap()).unwrap();
        assert!(resp.call_id().is_err());
        // A header name with inner whitespace is not a header we copy.
        let raw =
            b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall ID: a\r\n\r\n";
        assert!(response_to_unparsable(raw, 400, "x").is_some());
    }
}
