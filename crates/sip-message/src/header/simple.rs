//! Headers with a simple value: Call-ID, Max-Forwards, Content-Length, Expires, token lists,
//! Content-Type and Date.

use crate::error::SyntaxError;
use crate::header::list::ListIter;
use crate::params::{ParamRules, Params};
use crate::syntax::{is_token, is_word, parse_u64, trim_lws, Scanner};

/// Checks a Call-ID: `word [ "@" word ]`.
pub fn parse_call_id(s: &str) -> Result<&str, SyntaxError> {
    let s = trim_lws(s);
    let ok = match crate::syntax::split_byte(s, b'@') {
        Some((a, b)) => is_word(a) && is_word(b),
        None => is_word(s),
    };
    if ok {
        Ok(s)
    } else {
        Err(SyntaxError("invalid Call-ID"))
    }
}

/// Parses Max-Forwards: 0 to 255.
pub fn parse_max_forwards(s: &str) -> Result<u8, SyntaxError> {
    let s = trim_lws(s);
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SyntaxError("not a number"));
    }
    parse_u64(s)
        .and_then(|v| u8::try_from(v).ok())
        .ok_or(SyntaxError("out of range 0-255"))
}

/// Parses Content-Length.
pub fn parse_content_length(s: &str) -> Result<usize, SyntaxError> {
    parse_u64(trim_lws(s))
        .and_then(|v| usize::try_from(v).ok())
        .ok_or(SyntaxError("not a non-negative number"))
}

/// Parses a `delta-seconds` value (Expires, Min-Expires), saturating at 2^32-1.
pub fn parse_seconds(s: &str) -> Result<u32, SyntaxError> {
    super::name_addr::parse_delta_seconds(s).ok_or(SyntaxError("not a number of seconds"))
}

/// Iterates over a comma-separated token list (Require, Supported, Allow…); checks each.
pub fn parse_tokens(s: &str) -> impl Iterator<Item = Result<&str, SyntaxError>> {
    let empty = trim_lws(s).is_empty();
    ListIter::new(s).filter(move |_| !empty).map(|t| {
        if is_token(t) {
            Ok(t)
        } else {
            Err(SyntaxError("invalid token in list"))
        }
    })
}

/// `type/subtype;params`, as in Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaType<'a> {
    /// Top-level type, such as `application`.
    pub kind: &'a str,
    /// Subtype, such as `sdp`.
    pub subtype: &'a str,
    /// Parameters such as `boundary`.
    pub params: Params<'a>,
}

impl<'a> MediaType<'a> {
    /// Parses a media type.
    pub fn parse(s: &'a str) -> Result<MediaType<'a>, SyntaxError> {
        let mut sc = Scanner::new(s);
        sc.skip_lws();
        let kind = sc.token("missing media type")?;
        sc.skip_lws();
        sc.expect(b'/', "expected '/' in media type")?;
        sc.skip_lws();
        let subtype = sc.token("missing media subtype")?;
        let params = Params::parse(sc.rest(), ParamRules::Header)?;
        Ok(MediaType {
            kind,
            subtype,
            params,
        })
    }

    /// True when type and subtype match, case-insensitively.
    pub fn is(&self, kind: &str, subtype: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind) && self.subtype.eq_ignore_ascii_case(subtype)
    }
}

/// Checks an RFC 1123 date in GMT, as SIP requires: `Sat, 13 Nov 2010 23:29:00 GMT`.
pub fn check_date(s: &str) -> Result<(), SyntaxError> {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let bad = SyntaxError("invalid date (RFC 1123, GMT)");
    let s = trim_lws(s);
    let b = s.as_bytes();
    if b.len() != 29 || !b.is_ascii() {
        return Err(bad);
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let ok = DAYS.contains(&&s[0..3])
        && &s[3..5] == ", "
        && digits(5..7)
        && b[7] == b' '
        && MONTHS.contains(&&s[8..11])
        && b[11] == b' '
        && digits(12..16)
        && b[16] == b' '
        && digits(17..19)
        && b[19] == b':'
        && digits(20..22)
        && b[22] == b':'
        && digits(23..25)
        && &s[25..] == " GMT";
    if ok {
        Ok(())
    } else {
        Err(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_values() {
        assert!(parse_call_id("intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{").is_ok());
        assert!(parse_call_id("a@b@c").is_err());
        assert!(parse_call_id("has space").is_err());
        assert_eq!(parse_max_forwards("0068"), Ok(68));
        assert!(parse_max_forwards("300").is_err());
        assert!(parse_max_forwards("-1").is_err());
        assert_eq!(parse_content_length(" 150 "), Ok(150));
        assert!(parse_content_length("-999").is_err());
        assert_eq!(parse_seconds("1000000000000000000000000"), Ok(u32::MAX));
        let t: Vec<_> = parse_tokens("100rel, timer ,path").collect();
        assert_eq!(t, [Ok("100rel"), Ok("timer"), Ok("path")]);
        assert_eq!(parse_tokens("  ").count(), 0);
        assert!(parse_tokens("a,,b").any(|t| t.is_err()));
    }

    #[test]
    fn media_type_and_date() {
        let m = MediaType::parse("multipart/mixed;boundary=7a9cbec02ceef655").unwrap();
        assert!(m.is("Multipart", "MIXED"));
        assert_eq!(m.params.get("boundary"), Some(Some("7a9cbec02ceef655")));
        assert!(MediaType::parse("application").is_err());
        assert!(check_date("Sat, 15 Oct 2005 04:44:56 GMT").is_ok());
        assert!(check_date("Fri, 01 Jan 2010 16:00:00 EST").is_err());
    }
}
