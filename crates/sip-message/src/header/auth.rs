//! Authentication headers (RFC 3261 §20.7, §20.27, §20.28, §20.44; RFC 7616): a scheme and
//! comma-separated `name=value` parameters, used for both credentials and challenges.

use std::borrow::Cow;

use crate::error::SyntaxError;
use crate::header::list::ListIter;
use crate::syntax::{is_token, trim_lws, unquote, Scanner};

/// `Digest username="…", realm="…", …` in Authorization, Proxy-Authorization,
/// WWW-Authenticate or Proxy-Authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthHeader<'a> {
    /// The scheme, such as `Digest`.
    pub scheme: &'a str,
    params: &'a str,
}

impl<'a> AuthHeader<'a> {
    /// Parses a credentials or challenge value.
    pub fn parse(s: &'a str) -> Result<AuthHeader<'a>, SyntaxError> {
        let mut sc = Scanner::new(s);
        sc.skip_lws();
        let scheme = sc.token("missing auth scheme")?;
        if !sc.skip_lws() {
            return Err(SyntaxError("expected space after auth scheme"));
        }
        let params = trim_lws(sc.rest());
        for item in ListIter::new(params) {
            split_param(item)?;
        }
        Ok(AuthHeader { scheme, params })
    }

    /// True for the Digest scheme.
    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("Digest")
    }

    /// The parameters in order, values as written (quotes kept).
    pub fn params(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        ListIter::new(self.params).filter_map(|item| split_param(item).ok())
    }

    /// A parameter's value with quotes and escapes removed; names compare case-insensitively.
    pub fn get(&self, name: &str) -> Option<Cow<'a, str>> {
        self.params()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| Self::unquoted(v))
    }

    /// A value as [`params`](Self::params) gives it, without its quotes and escapes.
    pub fn unquoted(value: &'a str) -> Cow<'a, str> {
        match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(inner) => unquote(inner),
            None => value.into(),
        }
    }
}

fn split_param(item: &str) -> Result<(&str, &str), SyntaxError> {
    let (name, value) =
        crate::syntax::split_byte(item, b'=').ok_or(SyntaxError("auth parameter without '='"))?;
    let (name, value) = (trim_lws(name), trim_lws(value));
    if !is_token(name) {
        return Err(SyntaxError("invalid auth parameter name"));
    }
    if value.starts_with('"') {
        let mut sc = Scanner::new(value);
        sc.quoted_string()?;
        if !sc.at_end() {
            return Err(SyntaxError("junk after quoted auth parameter"));
        }
    } else if !is_token(value) {
        return Err(SyntaxError("invalid auth parameter value"));
    }
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_credentials() {
        let a = AuthHeader::parse(
            "Digest username=\"bob\", realm=\"biloxi.com\",\r\n nonce=\"dcd98b\", uri=\"sip:bob@biloxi.com\", qop=auth, nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae4\", algorithm=MD5",
        )
        .unwrap();
        assert!(a.is_digest());
        assert_eq!(a.get("USERNAME").unwrap(), "bob");
        assert_eq!(a.get("uri").unwrap(), "sip:bob@biloxi.com");
        assert_eq!(a.get("nc").unwrap(), "00000001");
        assert_eq!(a.get("algorithm").unwrap(), "MD5");
        assert_eq!(a.params().count(), 9);
    }

    #[test]
    fn other_schemes_and_errors() {
        let a = AuthHeader::parse("NoOneKnowsThisScheme opaque-data=here").unwrap();
        assert_eq!(a.scheme, "NoOneKnowsThisScheme");
        assert!(AuthHeader::parse("Digest").is_err());
        assert!(AuthHeader::parse("Digest realm=\"x").is_err());
        assert!(AuthHeader::parse("Digest realm").is_err());
    }
}
