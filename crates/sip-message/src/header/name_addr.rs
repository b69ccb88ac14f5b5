//! `name-addr` / `addr-spec` values: From, To, Contact, Route, Record-Route, Path (RFC 3261 §20).

use std::borrow::Cow;

use crate::error::SyntaxError;
use crate::params::{ParamRules, Params};
use crate::syntax::{is_lws, is_token_char, unquote, Scanner};
use crate::uri::Uri;

/// An address with optional display name and header parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// The display name as written: a quoted string with its quotes, or tokens.
    pub display: Option<&'a str>,
    /// The address.
    pub uri: Uri<'a>,
    /// True when the URI was written in `<…>`.
    pub bracketed: bool,
    /// Header parameters after the address (`;tag=…`, `;q=…`).
    pub params: Params<'a>,
}

impl<'a> NameAddr<'a> {
    /// Parses `name-addr` or `addr-spec` followed by parameters.
    pub fn parse(s: &'a str) -> Result<NameAddr<'a>, SyntaxError> {
        parse(s, false)
    }

    /// Parses a value that must be a `name-addr` (`<…>`), as in Route and Record-Route.
    pub fn parse_bracketed(s: &'a str) -> Result<NameAddr<'a>, SyntaxError> {
        parse(s, true)
    }

    /// The display name without quotes and escapes.
    pub fn display_name(&self) -> Option<Cow<'a, str>> {
        self.display.map(
            |d| match d.strip_prefix('"').and_then(|d| d.strip_suffix('"')) {
                Some(inner) => unquote(inner),
                None => d.into(),
            },
        )
    }

    /// The `tag` parameter (From and To).
    pub fn tag(&self) -> Option<&'a str> {
        self.params.get("tag").flatten()
    }

    /// The `q` parameter of a Contact, in thousandths (1000 = 1.0).
    pub fn q(&self) -> Option<u16> {
        self.params.get("q").flatten().and_then(parse_qvalue)
    }

    /// The `expires` parameter of a Contact, saturating at 2^32-1.
    pub fn expires(&self) -> Option<u32> {
        self.params
            .get("expires")
            .flatten()
            .and_then(parse_delta_seconds)
    }
}

fn parse(s: &str, require_brackets: bool) -> Result<NameAddr<'_>, SyntaxError> {
    let mut sc = Scanner::new(s);
    sc.skip_lws();
    let start = sc.pos();
    let display = match sc.peek() {
        Some(b'"') => {
            sc.quoted_string()?;
            let d = sc.slice(start, sc.pos());
            sc.skip_lws();
            if sc.peek() != Some(b'<') {
                return Err(SyntaxError("expected '<' after display name"));
            }
            Some(d)
        }
        Some(b'<') => None,
        _ => token_display(&mut sc),
    };
    let (uri, bracketed) = if sc.eat(b'<') {
        let uri = sc.take_while(|b| b != b'>');
        sc.expect(b'>', "missing '>'")?;
        (
            Uri::parse(uri).map_err(|_| SyntaxError("invalid URI in <>"))?,
            true,
        )
    } else if require_brackets {
        return Err(SyntaxError("expected '<'"));
    } else {
        let uri = sc.take_while(|b| b != b';' && !is_lws(b));
        if uri.contains(['?', ',']) {
            return Err(SyntaxError("URI with '?' or ',' must be enclosed in <>"));
        }
        (Uri::parse(uri)?, false)
    };
    let params = Params::parse(sc.rest(), ParamRules::Header)?;
    let na = NameAddr {
        display,
        uri,
        bracketed,
        params,
    };
    check_params(&na)?;
    Ok(na)
}

/// Reads `*(token LWS)` when it is followed by `<`; otherwise rewinds and returns `None`.
fn token_display<'a>(sc: &mut Scanner<'a>) -> Option<&'a str> {
    let start = sc.pos();
    let mut end = start;
    loop {
        if sc.take_while(is_token_char).is_empty() {
            break;
        }
        end = sc.pos();
        sc.skip_lws();
    }
    if end > start && sc.peek() == Some(b'<') {
        Some(sc.slice(start, end))
    } else {
        sc.set_pos(start);
        None
    }
}

fn check_params(na: &NameAddr<'_>) -> Result<(), SyntaxError> {
    for p in na.params {
        if p.name.eq_ignore_ascii_case("q") && p.value.and_then(parse_qvalue).is_none() {
            return Err(SyntaxError("invalid q value"));
        }
        if p.name.eq_ignore_ascii_case("expires") && p.value.and_then(parse_delta_seconds).is_none()
        {
            return Err(SyntaxError("invalid expires parameter"));
        }
        if p.name.eq_ignore_ascii_case("tag") && p.value.is_none_or(|v| !crate::syntax::is_token(v))
        {
            return Err(SyntaxError("invalid tag"));
        }
    }
    Ok(())
}

/// Parses `qvalue` (`0`, `0.5`, `1.000`) into thousandths.
pub fn parse_qvalue(s: &str) -> Option<u16> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// Parses `delta-seconds`, saturating at 2^32-1 as RFC 3261 §20.19 asks.
pub fn parse_delta_seconds(s: &str) -> Option<u32> {
    let s = crate::syntax::trim_lws(s);
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(crate::syntax::parse_u64(s).map_or(u32::MAX, |v| u32::try_from(v).unwrap_or(u32::MAX)))
}

/// One Contact value: `*` or an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contact<'a> {
    /// `Contact: *`, only valid in a REGISTER with Expires 0.
    Star,
    /// An address with its parameters.
    Address(NameAddr<'a>),
}

impl<'a> Contact<'a> {
    /// Parses one Contact value.
    pub fn parse(s: &'a str) -> Result<Contact<'a>, SyntaxError> {
        if crate::syntax::trim_lws(s) == "*" {
            Ok(Contact::Star)
        } else {
            NameAddr::parse(s).map(Contact::Address)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names() {
        let n = NameAddr::parse(
            "\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8",
        )
        .unwrap();
        assert_eq!(n.display_name().unwrap(), "J Rosenberg \\\"");
        assert_eq!(n.tag(), Some("98asjd8"));
        let n = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(n.display, Some("caller"));
        let n =
            NameAddr::parse("token1~` token2'+_ token3*%!.- <sip:mundane@example.com>").unwrap();
        assert_eq!(n.display, Some("token1~` token2'+_ token3*%!.-"));
        let n =
            NameAddr::parse(" sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert_eq!(
            (n.display, n.bracketed, n.tag()),
            (None, false, Some("1918181833n"))
        );
    }

    #[test]
    fn rejected() {
        for bad in [
            "\"Mr. J. User <sip:j.user@example.com>",
            "\"Watson, Thomas\" < sip:t.watson@example.org >",
            "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            "\"Joe\" <sip:joe@example.org>;;;;",
            "<sip:a@b>;q=2",
            "<sip:a@b;lr",
        ] {
            assert!(NameAddr::parse(bad).is_err(), "{bad}");
        }
        assert!(NameAddr::parse_bracketed("sip:a@b").is_err());
    }

    #[test]
    fn contact_params() {
        let c = Contact::parse("<sip:a@b>;q=0.33;expires=280297596632815").unwrap();
        let Contact::Address(a) = c else { panic!() };
        assert_eq!((a.q(), a.expires()), (Some(330), Some(u32::MAX)));
        assert_eq!(Contact::parse(" * ").unwrap(), Contact::Star);
        assert_eq!(parse_qvalue("1.000"), Some(1000));
        assert_eq!(parse_qvalue("1.001"), None);
        assert_eq!(parse_qvalue("0"), Some(0));
    }
}
