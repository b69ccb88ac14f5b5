//! The parsed message: one shared buffer and an index of byte ranges into it.

mod head;
mod kept;
mod typed;
mod validate;

use std::borrow::Cow;

use bytes::Bytes;

use crate::error::{ErrorKind, ParseError, SyntaxError};
use crate::header::{HeaderName, ListIter};
use crate::limits::Limits;
use crate::method::Method;
use crate::uri::Uri;

pub(crate) use head::{parse_head, ContentLength, Head, HeaderEntry, Span, StartLine};

/// A SIP request or response over one immutable buffer. Parsing indexes the start line and
/// header fields; header values are parsed when asked for and never copied.
#[derive(Debug, Clone)]
pub struct Message {
    buf: Bytes,
    /// Offset of the start line (leading CRLFs are skipped).
    start: usize,
    head: Head,
    body: Span,
    /// The top Via, parsed when first asked for.
    top_via: std::cell::OnceCell<Result<kept::ViaAt, ParseError>>,
}

/// One header field as it appears in the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The well-known name, or `Other`.
    pub name: HeaderName,
    /// The name as written (`v`, `VIA`, `X-Custom`).
    pub raw_name: &'a str,
    /// The value as written, trimmed; folded lines keep their line breaks.
    pub value: &'a str,
    /// Position of this field among all header fields.
    pub index: usize,
}

impl<'a> Header<'a> {
    /// The value with each folded line break replaced by one space.
    pub fn value_unfolded(&self) -> Cow<'a, str> {
        unfold(self.value)
    }

    /// The comma-separated elements of the value (for list headers).
    pub fn values(&self) -> ListIter<'a> {
        ListIter::new(self.value)
    }

    /// True when the field has this name; `Other` names compare as written, case-insensitively.
    pub fn is_named(&self, name: &str) -> bool {
        let known = HeaderName::from_bytes(name.as_bytes());
        if known == HeaderName::Other {
            self.name == HeaderName::Other && self.raw_name.eq_ignore_ascii_case(name)
        } else {
            self.name == known
        }
    }
}

/// Replaces `CRLF 1*WSP` (and any surrounding white space) with one space.
pub(crate) fn unfold(s: &str) -> Cow<'_, str> {
    if memchr::memchr(b'\n', s.as_bytes()).is_none() {
        return s.into();
    }
    let mut out = String::with_capacity(s.len());
    for (i, line) in s.split('\n').enumerate() {
        let line = line.trim_end_matches('\r');
        if i == 0 {
            out.push_str(line.trim_end_matches([' ', '\t']));
        } else {
            out.push(' ');
            out.push_str(line.trim_matches([' ', '\t']));
        }
    }
    out.into()
}

impl Message {
    /// Parses one message as received in a datagram, with default [`Limits`]. Bytes after the
    /// body that Content-Length delimits are ignored; without Content-Length the body runs to
    /// the end of the datagram (RFC 3261 §18.3).
    pub fn parse(buf: impl Into<Bytes>) -> Result<Message, ParseError> {
        Message::parse_with(buf.into(), &Limits::default())
    }

    /// [`parse`](Self::parse) with explicit limits.
    pub fn parse_with(buf: Bytes, limits: &Limits) -> Result<Message, ParseError> {
        if buf.len() > limits.max_message_size {
            return Err(ParseError::new(
                ErrorKind::TooLarge,
                limits.max_message_size,
            ));
        }
        let start = leading_crlf(&buf);
        let head = parse_head(&buf, start, limits)?;
        let body_end = match head.content_length {
            ContentLength::Value(n) => {
                let end = head.body_start + n;
                if end > buf.len() {
                    return Err(ParseError::new(ErrorKind::BodyTruncated, buf.len()));
                }
                end
            }
            // Conflicting values are reported by `sanity_check`; take the whole datagram.
            ContentLength::Absent | ContentLength::Conflicting => buf.len(),
        };
        let body = Span::new(head.body_start, body_end);
        Ok(Message {
            buf,
            start,
            head,
            body,
            top_via: Default::default(),
        })
    }

    /// Builds a message from a head already parsed by the stream decoder.
    pub(crate) fn from_parts(buf: Bytes, start: usize, head: Head, body_len: usize) -> Message {
        let body = Span::new(head.body_start, head.body_start + body_len);
        Message {
            buf,
            start,
            head,
            body,
            top_via: Default::default(),
        }
    }

    /// The buffer the message was parsed from (may hold trailing bytes after the body).
    pub fn buffer(&self) -> &Bytes {
        &self.buf
    }

    /// The message as it goes on the wire: start line to end of body, nothing copied.
    pub fn to_bytes(&self) -> Bytes {
        self.buf.slice(self.start..self.body.end as usize)
    }

    /// Bytes after the body in the datagram, ignored.
    pub fn trailing_len(&self) -> usize {
        self.buf.len() - self.body.end as usize
    }

    /// Text of a span inside the head, which was checked to be UTF-8.
    pub(crate) fn text(&self, span: Span) -> &str {
        let bytes = &self.buf[span.range()];
        debug_assert!(
            span.end as usize <= self.head.body_start && std::str::from_utf8(bytes).is_ok()
        );
        // SAFETY: every span given here lies inside the head, which `parse_head` checked to be
        // UTF-8, and starts and ends next to ASCII delimiters, so on character boundaries.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }

    /// Offset of a slice of this message's head in the buffer.
    pub(crate) fn offset_of(&self, s: &str) -> usize {
        (s.as_ptr() as usize)
            .wrapping_sub(self.buf.as_ptr() as usize)
            .min(self.buf.len())
    }

    pub(crate) fn entries(&self) -> &[HeaderEntry] {
        &self.head.headers
    }

    pub(crate) fn start_offset(&self) -> usize {
        self.start
    }

    pub(crate) fn start_line_end(&self) -> usize {
        self.head.start_line_next
    }

    pub(crate) fn body_span(&self) -> Span {
        self.body
    }

    pub(crate) fn content_length_state(&self) -> ContentLength {
        self.head.content_length
    }

    /// True for a request, false for a response.
    pub fn is_request(&self) -> bool {
        matches!(self.head.start_line, StartLine::Request { .. })
    }

    /// The request method; `None` for a response.
    pub fn method(&self) -> Option<Method<'_>> {
        match self.head.start_line {
            StartLine::Request { method, .. } => Some(Method::from_token(self.text(method))),
            StartLine::Response { .. } => None,
        }
    }

    /// The method token as written (methods are case-sensitive); `None` for a response.
    pub fn method_token(&self) -> Option<&str> {
        match self.head.start_line {
            StartLine::Request { method, .. } => Some(self.text(method)),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI as written; `None` for a response.
    pub fn request_uri_str(&self) -> Option<&str> {
        match self.head.start_line {
            StartLine::Request { uri, .. } => Some(self.text(uri)),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI (parsed with the message); `None` for a response.
    pub fn request_uri(&self) -> Option<Uri<'_>> {
        match self.head.start_line {
            StartLine::Request { parsed, .. } => Some(parsed.get(self)),
            StartLine::Response { .. } => None,
        }
    }

    /// The status code; `None` for a request.
    pub fn status(&self) -> Option<u16> {
        match self.head.start_line {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// The reason phrase; `None` for a request.
    pub fn reason(&self) -> Option<&str> {
        match self.head.start_line {
            StartLine::Response { reason, .. } => Some(self.text(reason)),
            StartLine::Request { .. } => None,
        }
    }

    /// The start line as written, without its line end.
    pub fn start_line(&self) -> &str {
        let end = self.start_line_end();
        self.text(Span::new(self.start, end))
            .trim_end_matches(['\r', '\n'])
    }

    fn header_at(&self, index: usize, e: &HeaderEntry) -> Header<'_> {
        Header {
            name: e.name,
            raw_name: self.text(Span {
                start: e.line.start,
                end: e.name_end,
            }),
            value: self.text(e.value),
            index,
        }
    }

    /// All header fields in order.
    pub fn headers(&self) -> impl Iterator<Item = Header<'_>> + '_ {
        self.head
            .headers
            .iter()
            .enumerate()
            .map(|(i, e)| self.header_at(i, e))
    }

    /// The fields with a well-known name, in order.
    pub fn headers_named(&self, name: HeaderName) -> impl Iterator<Item = Header<'_>> + '_ {
        self.head
            .headers
            .iter()
            .enumerate()
            .filter(move |(_, e)| e.name == name)
            .map(|(i, e)| self.header_at(i, e))
    }

    /// The first field with a well-known name.
    pub fn header(&self, name: HeaderName) -> Option<Header<'_>> {
        self.headers_named(name).next()
    }

    /// The first field with this name as text (compact forms and extensions included).
    pub fn header_str(&self, name: &str) -> Option<Header<'_>> {
        self.headers().find(|h| h.is_named(name))
    }

    /// The body, sharing the message buffer.
    pub fn body(&self) -> Bytes {
        self.buf.slice(self.body.range())
    }

    /// Wraps a syntax error found in a header value into a [`ParseError`] at that value.
    pub(crate) fn header_error(&self, name: HeaderName, value: &str, e: SyntaxError) -> ParseError {
        ParseError::new(
            ErrorKind::Header { name, reason: e.0 },
            self.offset_of(value),
        )
    }
}

fn leading_crlf(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count()
}
