//! URIs: SIP and SIPS (RFC 3261 §19.1), TEL (RFC 3966), any other scheme kept opaque.

use std::fmt;

use crate::error::SyntaxError;
use crate::host::Host;
use crate::params::{ParamRules, Params};
use crate::syntax::{check_uri_part, find_byte, percent_decode, rfind_byte, split_byte, UriPart};

/// A parsed URI borrowing from the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uri<'a> {
    /// `sip:` or `sips:`.
    Sip(SipUri<'a>),
    /// `tel:`.
    Tel(TelUri<'a>),
    /// Any other scheme, not interpreted.
    Other(OtherUri<'a>),
}

/// A `sip:` or `sips:` URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipUri<'a> {
    /// The whole URI as written.
    pub raw: &'a str,
    /// True for `sips:`.
    pub secure: bool,
    /// The user part, still %-escaped.
    pub user: Option<&'a str>,
    /// The password, still %-escaped.
    pub password: Option<&'a str>,
    /// The host.
    pub host: Host<'a>,
    /// The host as written (IPv6 with brackets).
    pub host_raw: &'a str,
    /// The port, when given.
    pub port: Option<u16>,
    /// URI parameters (`;transport=tcp;lr`).
    pub params: Params<'a>,
    /// URI headers after `?`, still escaped, without the `?`.
    pub headers: Option<&'a str>,
}

/// A `tel:` URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelUri<'a> {
    /// The whole URI as written.
    pub raw: &'a str,
    /// The telephone number (global `+…` or local).
    pub number: &'a str,
    /// Parameters such as `phone-context`.
    pub params: Params<'a>,
}

/// A URI of a scheme we do not interpret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtherUri<'a> {
    /// The whole URI as written.
    pub raw: &'a str,
    /// The scheme, before the colon.
    pub scheme: &'a str,
}

impl<'a> Uri<'a> {
    /// Parses a URI; it must not contain white space.
    pub fn parse(s: &'a str) -> Result<Uri<'a>, SyntaxError> {
        let (scheme, rest) = split_byte(s, b':').ok_or(SyntaxError("URI without scheme"))?;
        let sb = scheme.as_bytes();
        let scheme_ok = sb.first().is_some_and(u8::is_ascii_alphabetic)
            && sb
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if !scheme_ok {
            return Err(SyntaxError("invalid URI scheme"));
        }
        if scheme.eq_ignore_ascii_case("sip") {
            SipUri::parse_rest(s, false, rest).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case("sips") {
            SipUri::parse_rest(s, true, rest).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case("tel") {
            TelUri::parse_rest(s, rest).map(Uri::Tel)
        } else {
            if rest.is_empty()
                || rest
                    .bytes()
                    .any(|b| b <= b' ' || b == 0x7f || b == b'<' || b == b'>' || b == b'"')
            {
                return Err(SyntaxError("invalid character in URI"));
            }
            Ok(Uri::Other(OtherUri { raw: s, scheme }))
        }
    }

    /// The URI as written.
    pub fn as_str(&self) -> &'a str {
        match self {
            Uri::Sip(u) => u.raw,
            Uri::Tel(u) => u.raw,
            Uri::Other(u) => u.raw,
        }
    }

    /// The scheme as written.
    pub fn scheme(&self) -> &'a str {
        let raw = self.as_str();
        &raw[..find_byte(raw, b':').unwrap_or(0)]
    }

    /// The SIP URI, if this is one.
    pub fn as_sip(&self) -> Option<&SipUri<'a>> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }
}

impl fmt::Display for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'a> SipUri<'a> {
    fn parse_rest(raw: &'a str, secure: bool, rest: &'a str) -> Result<SipUri<'a>, SyntaxError> {
        // '@' is allowed neither in parameters nor in headers, so the first one ends userinfo.
        let (userinfo, hostpart) = match memchr::memchr(b'@', rest.as_bytes()) {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => {
                let (u, p) = match split_byte(ui, b':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (ui, None),
                };
                if u.is_empty() {
                    return Err(SyntaxError("empty user part"));
                }
                check_uri_part(u, UriPart::User)?;
                if let Some(p) = p {
                    check_uri_part(p, UriPart::Password)?;
                }
                (Some(u), p)
            }
        };
        let (before_headers, headers) = match split_byte(hostpart, b'?') {
            Some((b, h)) => (b, Some(h)),
            None => (hostpart, None),
        };
        let (hostport, params) = match find_byte(before_headers, b';') {
            Some(i) => before_headers.split_at(i),
            None => (before_headers, ""),
        };
        let (host, port) = Host::parse_with_port(hostport)?;
        let host_raw = match port {
            Some(_) => &hostport[..rfind_byte(hostport, b':').unwrap_or(hostport.len())],
            None => hostport,
        };
        let params = Params::parse(params, ParamRules::Uri)?;
        if let Some(h) = headers {
            check_uri_headers(h)?;
        }
        Ok(SipUri {
            raw,
            secure,
            user,
            password,
            host,
            host_raw,
            port,
            params,
            headers,
        })
    }

    /// The user part with %-escapes decoded.
    pub fn user_decoded(&self) -> Option<std::borrow::Cow<'a, [u8]>> {
        self.user.map(percent_decode)
    }

    /// The `transport` parameter, if any.
    pub fn transport(&self) -> Option<&'a str> {
        self.params.get("transport").flatten()
    }

    /// The port, or the one its scheme and transport mean without one (RFC 3261 §19.1.2):
    /// 5061 for `sips:` and `transport=tls`, else 5060.
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or_else(|| {
            let tls = self.secure
                || self
                    .transport()
                    .is_some_and(|t| t.eq_ignore_ascii_case("tls"));
            if tls {
                5061
            } else {
                5060
            }
        })
    }

    /// True when the URI carries the `lr` (loose routing) parameter.
    pub fn is_loose_route(&self) -> bool {
        self.params.contains("lr")
    }
}

fn check_uri_headers(h: &str) -> Result<(), SyntaxError> {
    for pair in h.split('&') {
        let (name, value) = pair
            .split_once('=')
            .ok_or(SyntaxError("URI header without '='"))?;
        if name.is_empty() {
            return Err(SyntaxError("empty URI header name"));
        }
        check_uri_part(name, UriPart::Header)?;
        check_uri_part(value, UriPart::Header)?;
    }
    Ok(())
}

impl<'a> TelUri<'a> {
    fn parse_rest(raw: &'a str, rest: &'a str) -> Result<TelUri<'a>, SyntaxError> {
        let (number, params) = match find_byte(rest, b';') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let nb = number.as_bytes();
        let digits = nb.strip_prefix(b"+").unwrap_or(nb);
        if digits.is_empty()
            || !digits.iter().all(|b| {
                b.is_ascii_hexdigit() || matches!(b, b'-' | b'.' | b'(' | b')' | b'*' | b'#')
            })
        {
            return Err(SyntaxError("invalid telephone number"));
        }
        let params = Params::parse(params, ParamRules::Uri)?;
        Ok(TelUri {
            raw,
            number,
            params,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sip(s: &str) -> SipUri<'_> {
        match Uri::parse(s) {
            Ok(Uri::Sip(u)) => u,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn full_sip_uri() {
        let u =
            sip("sips:alice:secret@[2001:db8::1]:5061;transport=tcp;lr?Subject=hi&Priority=urgent");
        assert!(u.secure);
        assert_eq!(u.user, Some("alice"));
        assert_eq!(u.password, Some("secret"));
        assert_eq!(u.host_raw, "[2001:db8::1]");
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.transport(), Some("tcp"));
        assert!(u.is_loose_route());
        assert_eq!(u.headers, Some("Subject=hi&Priority=urgent"));
    }

    #[test]
    fn a_uri_without_a_port_means_5061_over_tls_and_5060_else() {
        for (u, port) in [
            ("sip:a@192.0.2.1", 5060),
            ("sip:a@192.0.2.1;transport=tcp", 5060),
            ("sip:a@192.0.2.1;transport=TLS", 5061),
            ("sips:a@192.0.2.1", 5061),
            ("sips:a@192.0.2.1:5071", 5071),
        ] {
            assert_eq!(sip(u).port_or_default(), port, "{u}");
        }
    }

    #[test]
    fn unusual_users() {
        let u = sip("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com");
        assert_eq!(
            u.user,
            Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        );
        assert_eq!(u.host, Host::Domain("example.com"));
        let u = sip("sip:user;par=u%40example.net@example.com");
        assert_eq!(u.user, Some("user;par=u%40example.net"));
        let u = sip("sip:null-%00-null@example.com");
        assert_eq!(u.user_decoded().unwrap().as_ref(), b"null-\0-null");
        let u = sip("sip:%75se%72@example.com");
        assert_eq!(u.user_decoded().unwrap().as_ref(), b"user");
    }

    #[test]
    fn bad_sip_uris() {
        for bad in [
            "sip:",
            "sip:@example.com",
            "sip:user@",
            "sip:user@exa mple.com",
            "sip:2001:db8::10",
            "sip:host;;lr",
            "sip:host?x",
            "sip:us%zzer@host",
            "<sip:user@example.com>",
            "sip:user@example.com;",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tel_and_other() {
        match Uri::parse("tel:+1-201-555-0123;phone-context=example.com").unwrap() {
            Uri::Tel(t) => {
                assert_eq!(t.number, "+1-201-555-0123");
                assert_eq!(t.params.get("phone-context"), Some(Some("example.com")));
            }
            other => panic!("{other:?}"),
        }
        let u = Uri::parse("soap.beep://192.0.2.103:3002").unwrap();
        assert_eq!(u.scheme(), "soap.beep");
        assert!(matches!(u, Uri::Other(_)));
        assert!(Uri::parse("nobodyKnowsThisScheme:totallyopaquecontent").is_ok());
        assert!(Uri::parse("9sip:x").is_err());
    }
}
