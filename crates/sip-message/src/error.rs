//! Parse errors: what went wrong and where.

use crate::header::HeaderName;

/// A syntax error inside one element (a URI, a header value); the text names the problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SyntaxError(pub &'static str);

/// What made a message unacceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// The message is larger than [`Limits::max_message_size`](crate::Limits).
    #[error("message too large")]
    TooLarge,
    /// More header fields than [`Limits::max_headers`](crate::Limits).
    #[error("too many header fields")]
    TooManyHeaders,
    /// A line longer than [`Limits::max_line_length`](crate::Limits).
    #[error("line too long")]
    LineTooLong,
    /// The header section does not end with an empty line.
    #[error("header section not terminated")]
    Unterminated,
    /// The header section is not valid UTF-8.
    #[error("invalid UTF-8 in header section")]
    Utf8,
    /// The request or status line is malformed.
    #[error("invalid start line: {0}")]
    StartLine(&'static str),
    /// The SIP version is well formed but not 2.0 (answer 505).
    #[error("SIP version not supported")]
    Version,
    /// A header line is neither `name: value` nor a continuation line.
    #[error("invalid header line")]
    HeaderLine,
    /// A header field value does not parse.
    #[error("invalid {name} header: {reason}")]
    Header {
        /// The header's canonical name.
        name: HeaderName,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The body is shorter than Content-Length says.
    #[error("body shorter than Content-Length")]
    BodyTruncated,
    /// A stream message has no Content-Length (RFC 3261 §18.3).
    #[error("Content-Length required on a stream")]
    MissingContentLength,
    /// Several Content-Length values disagree, so a stream cannot be framed.
    #[error("conflicting Content-Length values")]
    ConflictingContentLength,
    /// A header every request and response needs is missing (RFC 3261 §8.1.1).
    #[error("missing {0} header")]
    MissingHeader(HeaderName),
    /// A header that may appear once appears more than once.
    #[error("more than one {0} header")]
    DuplicateHeader(HeaderName),
    /// The CSeq method differs from the request method.
    #[error("CSeq method does not match the request method")]
    CSeqMismatch,
}

/// A parse failure and the byte offset in the input where it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct ParseError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Byte offset into the message where the problem is.
    pub offset: usize,
}

impl ParseError {
    pub(crate) fn new(kind: ErrorKind, offset: usize) -> Self {
        ParseError { kind, offset }
    }

    /// The 1-based line number of [`offset`](Self::offset) and that line's text (lossy UTF-8),
    /// for error reports.
    pub fn line_in<'a>(&self, input: &'a [u8]) -> (usize, std::borrow::Cow<'a, str>) {
        let at = self.offset.min(input.len());
        let start = memchr::memrchr(b'\n', &input[..at]).map_or(0, |p| p + 1);
        let end = memchr::memchr(b'\n', &input[at..]).map_or(input.len(), |p| at + p);
        let line = input[start..end]
            .strip_suffix(b"\r")
            .unwrap_or(&input[start..end]);
        let number = 1 + memchr::memchr_iter(b'\n', &input[..start]).count();
        (number, String::from_utf8_lossy(line))
    }
}
