//! Whole-message checks: the syntax of every well-known header, and the RFC 3261 §8.2 /
//! §16.3 sanity rules (required headers present, single headers not repeated).

use super::{ContentLength, Message};
use crate::error::{ErrorKind, ParseError, SyntaxError};
use crate::header::{
    check_date, parse_call_id, parse_max_forwards, parse_seconds, AuthHeader, HeaderName, ListIter,
    MediaType, NameAddr,
};
use crate::syntax::is_token;

/// Checks the syntax of one header value.
type Check = fn(&str) -> Result<(), SyntaxError>;

/// The checker for one value of a well-known header, and whether the header is a list.
fn checker(name: HeaderName) -> Option<(Check, bool)> {
    use HeaderName::*;
    fn ok<T>(r: Result<T, SyntaxError>) -> Result<(), SyntaxError> {
        r.map(drop)
    }
    Some(match name {
        Via => (|v| ok(crate::header::Via::parse(v)), true),
        From | To | ReplyTo | ReferTo | ReferredBy => (|v| ok(NameAddr::parse(v)), false),
        Contact => (|v| ok(crate::header::Contact::parse(v)), true),
        Route | RecordRoute | Path => (|v| ok(NameAddr::parse_bracketed(v)), true),
        CallId => (|v| ok(parse_call_id(v)), false),
        CSeq => (|v| ok(crate::header::CSeq::parse(v)), false),
        MaxForwards => (|v| ok(parse_max_forwards(v)), false),
        Expires | MinExpires => (|v| ok(parse_seconds(v)), false),
        ContentType => (|v| ok(MediaType::parse(v)), false),
        Date => (check_date, false),
        Require | ProxyRequire | Unsupported | Allow => (check_token, true),
        Supported => (|v| if v.is_empty() { Ok(()) } else { check_token(v) }, true),
        Authorization | ProxyAuthorization | WwwAuthenticate | ProxyAuthenticate => {
            (|v| ok(AuthHeader::parse(v)), false)
        }
        _ => return None,
    })
}

fn check_token(v: &str) -> Result<(), SyntaxError> {
    if is_token(v) {
        Ok(())
    } else {
        Err(SyntaxError("invalid token in list"))
    }
}

impl Message {
    /// Checks the syntax of every well-known header and that the CSeq method matches the
    /// request method. A message that fails is malformed: answer 400 (a request) or drop it
    /// (a response).
    pub fn validate(&self) -> Result<(), ParseError> {
        // The top Via is checked by parsing it once for all (the proxy reads it again).
        let mut top_via = true;
        for h in self.headers() {
            let Some((check, is_list)) = checker(h.name) else {
                continue;
            };
            if is_list && !(h.name == HeaderName::Supported && h.value.is_empty()) {
                for v in ListIter::new(h.value) {
                    if h.name == HeaderName::Via && std::mem::take(&mut top_via) {
                        self.top_via()?;
                        continue;
                    }
                    check(v).map_err(|e| self.header_error(h.name, v, e))?;
                }
            } else {
                check(h.value).map_err(|e| self.header_error(h.name, h.value, e))?;
            }
        }
        if let Some(method) = self.method() {
            if let Some(h) = self.header(HeaderName::CSeq) {
                let cseq = crate::header::CSeq::parse(h.value)
                    .map_err(|e| self.header_error(HeaderName::CSeq, h.value, e))?;
                if cseq.method != method {
                    return Err(ParseError::new(
                        ErrorKind::CSeqMismatch,
                        self.offset_of(h.value),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The RFC 3261 sanity rules a server applies before processing: To, From, Call-ID, CSeq
    /// and Via present; no repeated single-instance header; one Content-Length. Assumes
    /// [`validate`](Self::validate) passed.
    pub fn sanity_check(&self) -> Result<(), ParseError> {
        let missing = |name| ParseError::new(ErrorKind::MissingHeader(name), self.start_line_end());
        for name in [
            HeaderName::To,
            HeaderName::From,
            HeaderName::CallId,
            HeaderName::CSeq,
            HeaderName::Via,
        ] {
            if self.header(name).is_none() {
                return Err(missing(name));
            }
        }
        let entries = self.entries();
        for (i, e) in entries.iter().enumerate() {
            if e.name.is_single() && entries[..i].iter().any(|p| p.name == e.name) {
                return Err(ParseError::new(
                    ErrorKind::DuplicateHeader(e.name),
                    e.line.start as usize,
                ));
            }
        }
        if self.content_length_state() == ContentLength::Conflicting {
            return Err(ParseError::new(
                ErrorKind::ConflictingContentLength,
                self.start_line_end(),
            ));
        }
        Ok(())
    }
}
