//! Framing of messages on a stream transport (TCP, TLS): Content-Length delimits each
//! message (RFC 3261 §18.3); CRLF keep-alives (RFC 5626 §3.5.1) are recognised.

use bytes::{Buf, BytesMut};

use crate::error::{ErrorKind, ParseError};
use crate::limits::Limits;
use crate::message::{parse_head, ContentLength, Head, Message};

/// What the decoder found at the front of the stream buffer.
// A frame is matched as soon as it is returned; boxing the message would cost an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Frame {
    /// A complete message, removed from the buffer.
    Message(Message),
    /// A `CRLF CRLF` keep-alive ping, removed from the buffer; answer with one `CRLF`.
    Ping,
}

/// The RFC 5626 keep-alive ping.
const PING: &[u8] = b"\r\n\r\n";

/// Splits a byte stream into messages. It remembers how far it looked for the end of the
/// header and the header it parsed while the body comes in: a message that arrives a few
/// bytes at a time costs its length once, not once per read.
#[derive(Debug, Clone, Default)]
pub struct StreamDecoder {
    limits: Limits,
    /// Bytes at the front of the buffer known to hold no end of header.
    scanned: usize,
    /// The message whose header is parsed and whose body is awaited.
    pending: Option<Pending>,
}

/// A parsed header waiting for its body.
#[derive(Debug, Clone)]
struct Pending {
    head: Head,
    head_end: usize,
    body_len: usize,
}

impl StreamDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        StreamDecoder {
            limits,
            ..StreamDecoder::default()
        }
    }

    /// Takes the next frame off the front of `buf`, to which bytes are only ever appended
    /// between calls. `Ok(None)` means more bytes are needed. After an error the stream
    /// cannot be resynchronised and should be closed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, ParseError> {
        let frame = self.next_frame(buf);
        if frame.is_err() {
            // Nothing of that stream is worth remembering.
            (self.scanned, self.pending) = (0, None);
        }
        frame
    }

    fn next_frame(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, ParseError> {
        if let Some(p) = self.pending.take() {
            return Ok(self.complete(buf, p));
        }
        // Line ends before a start line are skipped one byte at a time, except a CRLF CRLF
        // ping; the decision never depends on how the bytes were split into reads.
        loop {
            if buf.starts_with(PING) {
                buf.advance(PING.len());
                return Ok(Some(Frame::Ping));
            }
            if PING.starts_with(buf) {
                return Ok(None); // empty, or maybe the start of a ping
            }
            if !matches!(buf[0], b'\r' | b'\n') {
                break;
            }
            buf.advance(1);
        }
        // The end marker is at most 3 bytes: it may have begun in the bytes seen already.
        let Some(head_end) = find_head_end(buf, self.scanned.saturating_sub(2)) else {
            self.scanned = buf.len();
            if buf.len() > self.limits.max_message_size {
                return Err(ParseError::new(
                    ErrorKind::TooLarge,
                    self.limits.max_message_size,
                ));
            }
            return Ok(None);
        };
        self.scanned = 0;
        if head_end > self.limits.max_message_size {
            return Err(ParseError::new(
                ErrorKind::TooLarge,
                self.limits.max_message_size,
            ));
        }
        let head = parse_head(&buf[..head_end], 0, &self.limits)?;
        let body_len = match head.content_length {
            ContentLength::Value(n) => n,
            ContentLength::Absent => {
                return Err(ParseError::new(ErrorKind::MissingContentLength, 0))
            }
            ContentLength::Conflicting => {
                return Err(ParseError::new(ErrorKind::ConflictingContentLength, 0))
            }
        };
        let total = head_end
            .checked_add(body_len)
            .filter(|&t| t <= self.limits.max_message_size)
            .ok_or(ParseError::new(ErrorKind::TooLarge, head_end))?;
        if buf.len() < total {
            buf.reserve(total - buf.len());
        }
        let p = Pending {
            head,
            head_end,
            body_len,
        };
        Ok(self.complete(buf, p))
    }

    /// The message of `p` once its body is in `buf`; else it waits.
    fn complete(&mut self, buf: &mut BytesMut, p: Pending) -> Option<Frame> {
        if buf.len() < p.head_end + p.body_len {
            self.pending = Some(p);
            return None;
        }
        let bytes = buf.split_to(p.head_end + p.body_len).freeze();
        Some(Frame::Message(Message::from_parts(
            bytes, 0, p.head, p.body_len,
        )))
    }
}

/// Offset just past the empty line that ends the header section (CRLF or bare LF line
/// ends), looking from `from` on.
fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let from = from.min(buf.len());
    for lf in memchr::memchr_iter(b'\n', &buf[from..]).map(|i| i + from) {
        match buf.get(lf + 1) {
            Some(b'\n') => return Some(lf + 2),
            Some(b'\r') if buf.get(lf + 2) == Some(&b'\n') => return Some(lf + 3),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nContent-Length: 5\r\n\r\nhello";

    fn decode_all(chunks: &[&[u8]]) -> Vec<String> {
        let mut d = StreamDecoder::default();
        let mut buf = BytesMut::new();
        let mut out = vec![];
        for c in chunks {
            buf.extend_from_slice(c);
            while let Some(f) = d.decode(&mut buf).unwrap() {
                out.push(match f {
                    Frame::Ping => "ping".to_string(),
                    Frame::Message(m) => String::from_utf8(m.body().to_vec()).unwrap(),
                });
            }
        }
        out
    }

    #[test]
    fn byte_by_byte_and_pipelined() {
        let mut all = REQ.to_vec();
        all.extend_from_slice(b"\r\n\r\n");
        all.extend_from_slice(REQ);
        let bytes: Vec<&[u8]> = all.chunks(1).collect();
        assert_eq!(decode_all(&bytes), ["hello", "ping", "hello"]);
        assert_eq!(decode_all(&[&all]), ["hello", "ping", "hello"]);
    }

    #[test]
    fn line_ends_before_a_ping_frame_the_same_in_any_chunking() {
        let mut stream = vec![b'\n'; 40];
        stream.extend_from_slice(b"\r\n\r\n");
        stream.extend_from_slice(REQ);
        let whole = decode_all(&[&stream]);
        assert_eq!(whole, ["ping", "hello"]);
        for step in 1..16 {
            let chunks: Vec<&[u8]> = stream.chunks(step).collect();
            assert_eq!(decode_all(&chunks), whole, "chunks of {step}");
        }
    }

    #[test]
    fn stream_errors() {
        let mut d = StreamDecoder::default();
        let mut buf = BytesMut::from(&b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n"[..]);
        assert_eq!(
            d.decode(&mut buf).unwrap_err().kind,
            ErrorKind::MissingContentLength
        );
        let mut buf = BytesMut::from(&b"OPTIONS sip:a@b SIP/2.0\r\nl: 1\r\nl: 2\r\n\r\nab"[..]);
        assert_eq!(
            d.decode(&mut buf).unwrap_err().kind,
            ErrorKind::ConflictingContentLength
        );
        let mut small = StreamDecoder::new(Limits {
            max_message_size: 100,
            ..Limits::default()
        });
        let mut buf = BytesMut::from(&[b'a'; 200][..]);
        assert_eq!(
            small.decode(&mut buf).unwrap_err().kind,
            ErrorKind::TooLarge
        );
        let mut buf = BytesMut::from(&b"OPTIONS sip:a@b SIP/2.0\r\nl: 1000\r\n\r\n"[..]);
        assert_eq!(
            small.decode(&mut buf).unwrap_err().kind,
            ErrorKind::TooLarge
        );
    }
}
