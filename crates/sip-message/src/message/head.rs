//! One pass over the start line and header lines: builds the header index, nothing copied.

use smallvec::SmallVec;

use crate::error::{ErrorKind, ParseError};
use crate::header::{parse_content_length, HeaderName};
use crate::limits::Limits;
use crate::syntax::is_token_char;
use crate::uri::Uri;

/// A byte range in the message buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    pub(crate) fn new(start: usize, end: usize) -> Span {
        // Messages are bounded by `Limits::max_message_size`, far below 4 GiB.
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    pub(crate) fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// The first line of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartLine {
    Request {
        method: Span,
        uri: Span,
        /// The Request-URI as parsed.
        parsed: super::kept::UriAt,
    },
    Response {
        code: u16,
        reason: Span,
    },
}

/// Where one header field lies in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeaderEntry {
    pub(crate) name: HeaderName,
    /// The whole field: from the name to after the last line end, continuation lines included.
    pub(crate) line: Span,
    /// End of the name as written (it starts at `line.start`).
    pub(crate) name_end: u32,
    /// The value, trimmed; may contain folded line ends.
    pub(crate) value: Span,
}

/// Inline capacity of the header index: typical messages never allocate.
pub(crate) const INLINE_HEADERS: usize = 24;
pub(crate) type HeaderIndex = SmallVec<[HeaderEntry; INLINE_HEADERS]>;

/// What the Content-Length headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContentLength {
    Absent,
    Value(usize),
    Conflicting,
}

/// The parsed head of a message.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub(crate) start_line: StartLine,
    /// Offset of the line after the start line.
    pub(crate) start_line_next: usize,
    pub(crate) headers: HeaderIndex,
    /// Offset of the first body byte (just after the empty line).
    pub(crate) body_start: usize,
    pub(crate) content_length: ContentLength,
}

fn err(kind: ErrorKind, offset: usize) -> ParseError {
    ParseError::new(kind, offset)
}

/// Returns the end of the line starting at `at` (index of its LF, or of its CR when CRLF)
/// and the start of the next line.
#[inline]
fn line_end(buf: &[u8], at: usize) -> Option<(usize, usize)> {
    let lf = at + memchr::memchr(b'\n', &buf[at..])?;
    let end = if lf > at && buf[lf - 1] == b'\r' {
        lf - 1
    } else {
        lf
    };
    Some((end, lf + 1))
}

/// Parses start line and headers of the message that begins at `start`.
pub(crate) fn parse_head(buf: &[u8], start: usize, limits: &Limits) -> Result<Head, ParseError> {
    let (sl_end, mut at) = line_end(buf, start).ok_or(err(ErrorKind::Unterminated, buf.len()))?;
    if sl_end - start > limits.max_line_length {
        return Err(err(ErrorKind::LineTooLong, start));
    }
    let start_line = parse_start_line(buf, start, sl_end)?;
    let start_line_next = at;
    let mut headers = HeaderIndex::new();
    let mut content_length = ContentLength::Absent;
    loop {
        let (end, next) = line_end(buf, at).ok_or(err(ErrorKind::Unterminated, buf.len()))?;
        if end - at > limits.max_line_length {
            return Err(err(ErrorKind::LineTooLong, at));
        }
        if end == at {
            at = next;
            break;
        }
        let first = buf[at];
        if first == b' ' || first == b'\t' {
            // Continuation of the previous field (header folding).
            let last = headers.last_mut().ok_or(err(ErrorKind::HeaderLine, at))?;
            let trimmed = trim_end(buf, at, end);
            if trimmed > at && buf[at..trimmed].iter().any(|&b| b != b' ' && b != b'\t') {
                if last.value.start == last.value.end {
                    last.value.start = skip_ws(buf, at, trimmed) as u32;
                }
                last.value.end = trimmed as u32;
            }
            last.line.end = next as u32;
        } else {
            if headers.len() == limits.max_headers {
                return Err(err(ErrorKind::TooManyHeaders, at));
            }
            headers.push(parse_header_line(buf, at, end, next)?);
        }
        at = next;
    }
    std::str::from_utf8(&buf[start..at])
        .map_err(|e| err(ErrorKind::Utf8, start + e.valid_up_to()))?;
    for h in headers
        .iter()
        .filter(|h| h.name == HeaderName::ContentLength)
    {
        // Safe to view as text: the whole head was validated as UTF-8 just above.
        let text = std::str::from_utf8(&buf[h.value.range()]).unwrap_or("");
        let n = parse_content_length(text).map_err(|e| {
            err(
                ErrorKind::Header {
                    name: HeaderName::ContentLength,
                    reason: e.0,
                },
                h.value.start as usize,
            )
        })?;
        content_length = match content_length {
            ContentLength::Absent => ContentLength::Value(n),
            ContentLength::Value(m) if m == n => ContentLength::Value(n),
            _ => ContentLength::Conflicting,
        };
    }
    Ok(Head {
        start_line,
        start_line_next,
        headers,
        body_start: at,
        content_length,
    })
}

#[inline]
fn trim_end(buf: &[u8], start: usize, mut end: usize) -> usize {
    while end > start && matches!(buf[end - 1], b' ' | b'\t') {
        end -= 1;
    }
    end
}

#[inline]
fn skip_ws(buf: &[u8], mut at: usize, end: usize) -> usize {
    while at < end && matches!(buf[at], b' ' | b'\t') {
        at += 1;
    }
    at
}

#[inline]
fn parse_header_line(
    buf: &[u8],
    start: usize,
    end: usize,
    next: usize,
) -> Result<HeaderEntry, ParseError> {
    let mut at = start;
    while at < end && is_token_char(buf[at]) {
        at += 1;
    }
    let name_end = at;
    if name_end == start {
        return Err(err(ErrorKind::HeaderLine, start));
    }
    at = skip_ws(buf, at, end);
    if at == end || buf[at] != b':' {
        return Err(err(ErrorKind::HeaderLine, start));
    }
    let value_start = skip_ws(buf, at + 1, end);
    let value_end = trim_end(buf, value_start, end);
    Ok(HeaderEntry {
        name: HeaderName::from_bytes(&buf[start..name_end]),
        line: Span::new(start, next),
        name_end: name_end as u32,
        value: Span::new(value_start, value_end),
    })
}

fn parse_start_line(buf: &[u8], start: usize, end: usize) -> Result<StartLine, ParseError> {
    let line = &buf[start..end];
    let bad = |why| err(ErrorKind::StartLine(why), start);
    if line.starts_with(b"SIP/") {
        let sp = memchr::memchr(b' ', line).ok_or(bad("missing status code"))?;
        check_version(&line[..sp]).map_err(|k| err(k, start))?;
        let rest = &line[sp + 1..];
        let code_end = memchr::memchr(b' ', rest).unwrap_or(rest.len());
        let code = &rest[..code_end];
        if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
            return Err(bad("status code must be three digits"));
        }
        let code = code.iter().fold(0u16, |v, d| v * 10 + u16::from(d - b'0'));
        if !(100..=699).contains(&code) {
            return Err(bad("status code out of range"));
        }
        let reason_start = start + sp + 1 + (code_end + 1).min(rest.len());
        if line.iter().any(|&b| b < 0x20 && b != b'\t') {
            return Err(bad("control character in reason phrase"));
        }
        return Ok(StartLine::Response {
            code,
            reason: Span::new(reason_start, end),
        });
    }
    let sp1 = memchr::memchr(b' ', line).ok_or(bad("expected method, URI and version"))?;
    let sp2 = memchr::memrchr(b' ', line)
        .filter(|&p| p > sp1)
        .ok_or(bad("expected method, URI and version"))?;
    let method = &line[..sp1];
    if method.is_empty() || !method.iter().all(|&b| is_token_char(b)) {
        return Err(bad("invalid method"));
    }
    check_version(&line[sp2 + 1..]).map_err(|k| err(k, start + sp2 + 1))?;
    let uri = &line[sp1 + 1..sp2];
    if uri.is_empty() || uri.iter().any(|&b| b == b' ' || b == b'\t') {
        return Err(bad("white space in Request-URI"));
    }
    let uri_text = std::str::from_utf8(uri).map_err(|_| err(ErrorKind::Utf8, start + sp1 + 1))?;
    let parsed =
        Uri::parse(uri_text).map_err(|e| err(ErrorKind::StartLine(e.0), start + sp1 + 1))?;
    Ok(StartLine::Request {
        method: Span::new(start, start + sp1),
        uri: Span::new(start + sp1 + 1, start + sp2),
        parsed: super::kept::UriAt::keep(buf, &parsed),
    })
}

/// `SIP/2.0` is accepted; another well-formed `SIP/x.y` is [`ErrorKind::Version`].
fn check_version(v: &[u8]) -> Result<(), ErrorKind> {
    if v.eq_ignore_ascii_case(b"SIP/2.0") {
        return Ok(());
    }
    let well_formed = v.len() > 4
        && v[..4].eq_ignore_ascii_case(b"SIP/")
        && matches!(v[4..].split(|&b| b == b'.').collect::<SmallVec<[&[u8]; 2]>>().as_slice(),
            [a, b] if !a.is_empty() && !b.is_empty() && a.iter().chain(*b).all(u8::is_ascii_digit));
    Err(if well_formed {
        ErrorKind::Version
    } else {
        ErrorKind::StartLine("invalid SIP version")
    })
}
