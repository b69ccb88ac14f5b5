//! Editing a parsed message: edits are recorded as splices over the original buffer, and
//! [`Editor::finish`] writes the untouched bytes as they were with the splices applied.

use bytes::{BufMut, Bytes, BytesMut};
use smallvec::SmallVec;

use crate::header::{HeaderName, ListIter, Via};
use crate::message::{Message, Span};

/// One replacement: the original bytes `at` are replaced by `text` (a range of the arena).
#[derive(Debug, Clone, Copy)]
struct Splice {
    at: Span,
    text: Span,
}

/// Records changes to a [`Message`] and writes the result. Edits address the original
/// message, so they must not overlap (removing a header and editing inside it, say).
#[derive(Debug)]
pub struct Editor<'m> {
    msg: &'m Message,
    splices: SmallVec<[Splice; 8]>,
    arena: String,
    body: Option<Bytes>,
}

impl Message {
    /// Starts editing this message.
    pub fn edit(&self) -> Editor<'_> {
        Editor {
            msg: self,
            splices: SmallVec::new(),
            arena: String::new(),
            body: None,
        }
    }
}

impl<'m> Editor<'m> {
    fn splice(&mut self, start: usize, end: usize, parts: &[&str]) {
        let from = self.arena.len();
        for p in parts {
            self.arena.push_str(p);
        }
        self.splices.push(Splice {
            at: Span::new(start, end),
            text: Span::new(from, self.arena.len()),
        });
    }

    fn insert_line(&mut self, at: usize, name: &str, value: &str) {
        self.splice(at, at, &[name, ": ", value, "\r\n"]);
    }

    /// Offset where a new header goes at the end of the header section.
    fn headers_end(&self) -> usize {
        self.msg
            .entries()
            .last()
            .map_or(self.msg.start_line_end(), |e| e.line.end as usize)
    }

    /// Replaces the Request-URI (requests only; a response is left as it is).
    pub fn set_request_uri(&mut self, uri: &str) -> &mut Self {
        if let Some(old) = self.msg.request_uri_str() {
            let start = self.msg.offset_of(old);
            self.splice(start, start + old.len(), &[uri]);
        }
        self
    }

    /// Appends a header field after the last one.
    pub fn add_header(&mut self, name: &str, value: &str) -> &mut Self {
        let at = self.headers_end();
        self.insert_line(at, name, value);
        self
    }

    /// Inserts a header field above the first field of the same name (or appends it):
    /// how a proxy adds Via and Record-Route.
    pub fn push_front(&mut self, name: HeaderName, value: &str) -> &mut Self {
        let at = self
            .msg
            .entries()
            .iter()
            .find(|e| e.name == name)
            .map_or_else(|| self.headers_end(), |e| e.line.start as usize);
        self.insert_line(at, name.as_str(), value);
        self
    }

    /// Removes the header field at `index` (as in [`Header::index`](crate::Header)).
    pub fn remove_header(&mut self, index: usize) -> &mut Self {
        if let Some(e) = self.msg.entries().get(index) {
            let line = e.line;
            self.splice(line.start as usize, line.end as usize, &[]);
        }
        self
    }

    /// Replaces `part`, a slice of this message's text (a parameter's value, say), with
    /// `text`.
    pub fn replace(&mut self, part: &str, text: &str) -> &mut Self {
        let start = self.msg.offset_of(part);
        self.splice(start, start + part.len(), &[text]);
        self
    }

    /// Removes every field with this name.
    pub fn remove_headers(&mut self, name: HeaderName) -> &mut Self {
        let indexes: SmallVec<[usize; 8]> = self.msg.headers_named(name).map(|h| h.index).collect();
        for i in indexes {
            self.remove_header(i);
        }
        self
    }

    /// Replaces the value of the header field at `index`.
    pub fn set_header_value(&mut self, index: usize, value: &str) -> &mut Self {
        if let Some(e) = self.msg.entries().get(index) {
            let v = e.value;
            self.splice(v.start as usize, v.end as usize, &[value]);
        }
        self
    }

    /// Removes the first comma-separated value of the first field with this name (the top
    /// Via of a response, the top Route of a request); the field goes when it held only one.
    pub fn remove_first_value(&mut self, name: HeaderName) -> &mut Self {
        let Some(h) = self.msg.header(name) else {
            return self;
        };
        let mut values = ListIter::new(h.value);
        let (Some(_), Some(second)) = (values.next(), values.next()) else {
            return self.remove_header(h.index);
        };
        let start = self.msg.offset_of(h.value);
        self.splice(start, self.msg.offset_of(second), &[]);
        self
    }

    /// Removes the first `n` comma-separated values of the fields with this name, across
    /// fields (the two top Routes of a double Record-Route, RFC 5658); a field goes when
    /// all its values do.
    pub fn remove_first_values(&mut self, name: HeaderName, n: usize) -> &mut Self {
        if n == 1 {
            return self.remove_first_value(name); // the common case, without a list
        }
        let mut left = n;
        let fields: SmallVec<[(usize, &'m str); 2]> = self
            .msg
            .headers_named(name)
            .map(|h| (h.index, h.value))
            .take(n)
            .collect();
        for (index, value) in fields {
            if left == 0 {
                break;
            }
            match ListIter::new(value).nth(left) {
                Some(next) => {
                    let start = self.msg.offset_of(value);
                    self.splice(start, self.msg.offset_of(next), &[]);
                    left = 0;
                }
                None => {
                    left -= ListIter::new(value).count().min(left);
                    self.remove_header(index);
                }
            }
        }
        self
    }

    /// Sets a parameter on the top Via (`received`, `rport`): replaces it when present,
    /// appends it otherwise. `None` writes a flag without a value.
    pub fn set_top_via_param(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        let Some(h) = self.msg.header(HeaderName::Via) else {
            return self;
        };
        let Some(top) = ListIter::new(h.value).next() else {
            return self;
        };
        let Ok(via) = Via::parse(top) else {
            return self;
        };
        let text: [&str; 4] = match value {
            Some(v) => [";", name, "=", v],
            None => [";", name, "", ""],
        };
        if let Some(p) = via.params.find(name) {
            // Replace from this parameter's `;` to the end of its value.
            let end = p
                .value
                .map_or(self.msg.offset_of(p.name) + p.name.len(), |v| {
                    self.msg.offset_of(v) + v.len()
                });
            let params = via.params.as_str();
            let semi = params[..self.msg.offset_of(p.name) - self.msg.offset_of(params)]
                .rfind(';')
                .map_or(self.msg.offset_of(p.name), |i| {
                    self.msg.offset_of(params) + i
                });
            self.splice(semi, end, &text);
        } else {
            let end = self.msg.offset_of(top) + top.len();
            self.splice(end, end, &text);
        }
        self
    }

    /// Replaces the body and its Content-Type (`None` removes Content-Type); Content-Length
    /// is rewritten to match.
    pub fn set_body(&mut self, content_type: Option<&str>, body: Bytes) -> &mut Self {
        let ct = self.msg.header(HeaderName::ContentType);
        match (ct, content_type) {
            (Some(h), Some(t)) => {
                self.set_header_value(h.index, t);
            }
            (Some(h), None) => {
                self.remove_header(h.index);
            }
            (None, Some(t)) => {
                self.add_header("Content-Type", t);
            }
            (None, None) => {}
        }
        self.body = Some(body);
        self
    }

    /// Replaces the body, keeping its Content-Type; Content-Length is rewritten to match.
    pub fn replace_body(&mut self, body: Bytes) -> &mut Self {
        self.body = Some(body);
        self
    }

    /// Writes the edited message.
    pub fn finish(mut self) -> Bytes {
        let body = self.body.take().unwrap_or_else(|| self.msg.body());
        let len = itoa_buf(body.len());
        let cl: SmallVec<[usize; 2]> = self
            .msg
            .headers_named(HeaderName::ContentLength)
            .map(|h| h.index)
            .collect();
        match cl.split_first() {
            Some((&first, rest)) => {
                if self.msg.content_length() != Some(body.len()) || !rest.is_empty() {
                    self.set_header_value(first, len.as_str());
                    for &i in rest {
                        self.remove_header(i);
                    }
                }
            }
            None => {
                let at = self.headers_end();
                self.insert_line(at, "Content-Length", len.as_str());
            }
        }
        self.splices.sort_by_key(|s| s.at.start);
        let buf = self.msg.buffer();
        let head_end = self.msg.body_span().start as usize;
        let mut out = BytesMut::with_capacity(head_end + self.arena.len() + body.len());
        let mut cursor = self.msg.start_offset();
        for s in &self.splices {
            let (start, end) = (s.at.start as usize, s.at.end as usize);
            if start > cursor {
                out.put_slice(&buf[cursor..start]);
            }
            out.put_slice(&self.arena.as_bytes()[s.text.range()]);
            cursor = cursor.max(end);
        }
        out.put_slice(&buf[cursor..head_end]);
        out.put_slice(&body);
        out.freeze()
    }
}

/// A decimal number as text without allocating.
struct NumText {
    buf: [u8; 20],
    len: usize,
}

impl NumText {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[20 - self.len..]).unwrap_or("0")
    }
}

fn itoa_buf(mut n: usize) -> NumText {
    let mut t = NumText {
        buf: [0; 20],
        len: 0,
    };
    loop {
        t.len += 1;
        t.buf[20 - t.len] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return t;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:bob@biloxi.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds, SIP/2.0/UDP h2;branch=z9hG4bK2\r\n\
Max-Forwards: 70\r\n\
Route: <sip:p1.example.com;lr>\r\n\
Route: <sip:p2.example.com;lr>\r\n\
To: Bob <sip:bob@biloxi.com>\r\n\
From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n\
CSeq: 314159 INVITE\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\r\nv=0\r";

    fn parse(s: &str) -> Message {
        Message::parse(Bytes::copy_from_slice(s.as_bytes())).unwrap()
    }

    fn text(b: Bytes) -> String {
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[test]
    fn untouched_message_is_copied_verbatim() {
        let m = parse(INVITE);
        assert_eq!(text(m.edit().finish()), INVITE);
    }

    #[test]
    fn proxy_edits() {
        let m = parse(INVITE);
        let mut e = m.edit();
        e.push_front(
            HeaderName::Via,
            "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp1",
        )
        .set_top_via_param("received", Some("192.0.2.1"))
        .set_top_via_param("rport", Some("5062"))
        .remove_first_value(HeaderName::Route)
        .add_header("Record-Route", "<sip:proxy.example.com;lr>")
        .set_request_uri("sip:bob@192.0.2.4:5060");
        let out = parse(&text(e.finish()));
        assert_eq!(out.request_uri_str(), Some("sip:bob@192.0.2.4:5060"));
        let vias: Vec<_> = out.vias().map(|v| v.unwrap()).collect();
        assert_eq!(vias.len(), 3);
        assert_eq!(vias[0].branch(), Some("z9hG4bKp1"));
        assert_eq!(
            vias[1].params.as_str(),
            ";branch=z9hG4bK776asdhds;received=192.0.2.1;rport=5062"
        );
        let routes: Vec<_> = out.routes().map(|r| r.unwrap().uri.as_str()).collect();
        assert_eq!(routes, ["sip:p2.example.com;lr"]);
        assert_eq!(out.record_routes().count(), 1);
        assert_eq!(out.body().as_ref(), b"v=0\r");
        out.validate().unwrap();
    }

    #[test]
    fn replace_existing_via_param_and_pop_via() {
        let m = parse(&INVITE.replace("branch=z9hG4bK776asdhds", "rport;branch=z9hG4bK776asdhds"));
        let mut e = m.edit();
        e.set_top_via_param("rport", Some("5060"));
        let out = parse(&text(e.finish()));
        assert_eq!(out.top_via().unwrap().rport(), Some(Some(5060)));
        let mut e = out.edit();
        e.remove_first_value(HeaderName::Via);
        let popped = parse(&text(e.finish()));
        assert_eq!(popped.top_via().unwrap().host_raw, "h2");
        let mut e = popped.edit();
        e.remove_first_value(HeaderName::Via);
        assert!(parse(&text(e.finish())).top_via().is_err());
    }

    #[test]
    fn body_replacement_updates_length_and_type() {
        let m = parse(INVITE);
        let mut e = m.edit();
        e.set_body(Some("text/plain"), Bytes::from_static(b"hello world"));
        let out = parse(&text(e.finish()));
        assert_eq!(out.content_length(), Some(11));
        assert!(out.content_type().unwrap().unwrap().is("text", "plain"));
        assert_eq!(out.body().as_ref(), b"hello world");
        let mut e = out.edit();
        e.set_body(None, Bytes::new())
            .remove_headers(HeaderName::Route);
        let out = parse(&text(e.finish()));
        assert_eq!(
            (out.content_length(), out.content_type().unwrap()),
            (Some(0), None)
        );
        assert_eq!(out.routes().count(), 0);
    }

    #[test]
    fn missing_content_length_is_added_and_trailing_bytes_dropped() {
        let m = parse("OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n");
        let out = text(m.edit().finish());
        assert!(out.ends_with("Content-Length: 0\r\n\r\n"), "{out}");
        let m = parse("OPTIONS sip:a@b SIP/2.0\r\n\r\nbody");
        assert_eq!(
            text(m.edit().finish()),
            "OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 4\r\n\r\nbody"
        );
        let m = parse("OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\ntrailing");
        assert_eq!(
            text(m.edit().finish()),
            "OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\n"
        );
    }
}
