//! Hosts and ports: domain names, IPv4 addresses and IPv6 references (RFC 3261 §25, RFC 5118).

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::SyntaxError;

/// The host part of a URI or Via sent-by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Host<'a> {
    /// A domain name, as written.
    Domain(&'a str),
    /// A dotted-quad IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 address (written in brackets in URIs).
    Ipv6(Ipv6Addr),
}

impl<'a> Host<'a> {
    /// Parses a host: `[v6]`, dotted quad, or domain name.
    pub fn parse(s: &'a str) -> Result<Host<'a>, SyntaxError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or(SyntaxError("unterminated IPv6 reference"))?;
            return parse_ipv6(inner).map(Host::Ipv6);
        }
        if s.is_empty() {
            return Err(SyntaxError("empty host"));
        }
        if s.as_bytes()[0].is_ascii_digit() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return parse_ipv4(s.as_bytes())
                .map(Host::Ipv4)
                .ok_or(SyntaxError("invalid IPv4 address"));
        }
        check_domain(s)?;
        Ok(Host::Domain(s))
    }

    /// Parses a host that may also be a bare IPv6 address, as in Via `received` (RFC 5118 §4.5).
    pub fn parse_address(s: &'a str) -> Result<Host<'a>, SyntaxError> {
        if s.contains(':') && !s.starts_with('[') {
            return parse_ipv6(s).map(Host::Ipv6);
        }
        Host::parse(s)
    }

    /// Splits `host[:port]` and parses both.
    pub fn parse_with_port(s: &'a str) -> Result<(Host<'a>, Option<u16>), SyntaxError> {
        let (host, port) = if s.starts_with('[') {
            let close = s
                .find(']')
                .ok_or(SyntaxError("unterminated IPv6 reference"))?;
            match &s[close + 1..] {
                "" => (s, None),
                rest => (
                    &s[..=close],
                    Some(
                        rest.strip_prefix(':')
                            .ok_or(SyntaxError("junk after IPv6 reference"))?,
                    ),
                ),
            }
        } else {
            match crate::syntax::split_byte(s, b':') {
                Some((h, p)) => (h, Some(p)),
                None => (s, None),
            }
        };
        let port = port.map(parse_port).transpose()?;
        Ok((Host::parse(host)?, port))
    }

    /// The address, when the host is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        match *self {
            Host::Domain(_) => None,
            Host::Ipv4(a) => Some(IpAddr::V4(a)),
            Host::Ipv6(a) => Some(IpAddr::V6(a)),
        }
    }
}

impl fmt::Display for Host<'_> {
    /// Writes the host as it belongs in a URI (IPv6 in brackets).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::Ipv4(a) => write!(f, "{a}"),
            Host::Ipv6(a) => write!(f, "[{a}]"),
        }
    }
}

/// A domain as we key it everywhere (hosted domains, realms, subscribers, the CLI): lower
/// case, without a trailing dot, an IPv6 address without brackets in its RFC 5952 form
/// (`[::1]`, `::1` and `0:0::1` are one domain). Borrows when `host` is already so.
pub fn canonical_domain(host: &str) -> Cow<'_, str> {
    let plain = !host.is_empty()
        && !host.ends_with('.')
        && !host
            .bytes()
            .any(|b| b.is_ascii_uppercase() || b == b'[' || b == b':');
    if plain {
        return Cow::Borrowed(host);
    }
    let inner = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(a) = parse_ipv6(inner) {
        return Cow::Owned(a.to_string());
    }
    // Brackets around anything but an IPv6 address stay (and make no valid host).
    let host = host.strip_suffix('.').unwrap_or(host);
    Cow::Owned(host.to_ascii_lowercase())
}

/// A canonical domain as it is written in a URI: an IPv6 address in brackets.
pub fn domain_in_uri(domain: &str) -> Cow<'_, str> {
    if domain.contains(':') {
        Cow::Owned(format!("[{domain}]"))
    } else {
        Cow::Borrowed(domain)
    }
}

/// A dotted quad of digits and dots: four decimal numbers of at most 255, without leading
/// zeros (as the standard library reads them, in one pass: every request has a few).
fn parse_ipv4(b: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = b.split(|&c| c == b'.');
    for o in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || (part.len() > 1 && part[0] == b'0') {
            return None;
        }
        let n = part.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
        *o = u8::try_from(n).ok()?;
    }
    parts.next().is_none().then_some(Ipv4Addr::from(octets))
}

/// Parses a port number: 1 to 5 digits, at most 65535.
pub fn parse_port(s: &str) -> Result<u16, SyntaxError> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SyntaxError("invalid port"));
    }
    s.parse().map_err(|_| SyntaxError("port out of range"))
}

fn parse_ipv6(s: &str) -> Result<Ipv6Addr, SyntaxError> {
    if let Ok(a) = s.parse() {
        return Ok(a);
    }
    // RFC 5118 §4.10: accept the three-colon form that RFC 3261's ABNF allowed by mistake.
    if let Some((head, tail)) = s.split_once(":::") {
        if tail.contains('.') && !tail.contains(':') {
            let mut buf = [0u8; 64];
            let fixed = [head.as_bytes(), b"::", tail.as_bytes()];
            let len: usize = fixed.iter().map(|p| p.len()).sum();
            if len <= buf.len() {
                let mut at = 0;
                for p in fixed {
                    buf[at..at + p.len()].copy_from_slice(p);
                    at += p.len();
                }
                if let Some(a) = std::str::from_utf8(&buf[..len])
                    .ok()
                    .and_then(|t| t.parse().ok())
                {
                    return Ok(a);
                }
            }
        }
    }
    Err(SyntaxError("invalid IPv6 address"))
}

/// `hostname = *( domainlabel "." ) toplabel [ "." ]`; labels are alphanumerics and hyphens
/// (underscores tolerated, as deployed DNS names carry them). One pass over the bytes.
fn check_domain(s: &str) -> Result<(), SyntaxError> {
    let b = s.as_bytes();
    let b = b.strip_suffix(b".").unwrap_or(b);
    let bad = SyntaxError("invalid host name");
    let mut label_start = 0;
    for (i, &c) in b.iter().enumerate() {
        if c == b'.' {
            if i == label_start || b[i - 1] == b'-' || i - label_start > 63 {
                return Err(bad);
            }
            label_start = i + 1;
        } else if !crate::syntax::LABEL[c as usize]
            || (i == label_start && !c.is_ascii_alphanumeric())
        {
            return Err(bad);
        }
    }
    if b.len() == label_start || b[b.len() - 1] == b'-' || b.len() - label_start > 63 {
        return Err(bad);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(Host::parse("example.com"), Ok(Host::Domain("example.com")));
        assert_eq!(
            Host::parse("192.0.2.1"),
            Ok(Host::Ipv4(Ipv4Addr::new(192, 0, 2, 1)))
        );
        assert!(Host::parse("192.0.2.256").is_err());
        assert!(Host::parse("exa mple").is_err());
        assert!(Host::parse("-bad.com").is_err());
        assert!(Host::parse("2001:db8::1").is_err());
        assert!(matches!(Host::parse("[2001:db8::1]"), Ok(Host::Ipv6(_))));
        assert!(matches!(
            Host::parse_address("2001:db8::9:255"),
            Ok(Host::Ipv6(_))
        ));
    }

    #[test]
    fn ipv4_addresses_read_as_the_standard_library_reads_them() {
        for s in [
            "0.0.0.0",
            "255.255.255.255",
            "192.0.2.1",
            "1.2.3",
            "1.2.3.4.5",
            "256.1.1.1",
            "01.2.3.4",
            "1..2.3",
            "1.2.3.",
            ".1.2.3",
            "1.2.3.4444",
            "10.0.0.10",
            "0.10.100.1",
        ] {
            assert_eq!(parse_ipv4(s.as_bytes()), s.parse().ok(), "{s}");
        }
    }

    #[test]
    fn host_and_port() {
        let (h, p) = Host::parse_with_port("[2001:db8::10]:5070").unwrap();
        assert_eq!((h.to_string().as_str(), p), ("[2001:db8::10]", Some(5070)));
        let (h, p) = Host::parse_with_port("[2001:db8::10:5070]").unwrap();
        assert_eq!((h.to_string().as_str(), p), ("[2001:db8::10:5070]", None));
        assert!(Host::parse_with_port("2001:db8::10").is_err());
        assert!(Host::parse_with_port("host:99999").is_err());
        assert!(Host::parse_with_port("host:").is_err());
    }

    #[test]
    fn canonical_domains() {
        for (given, canonical) in [
            ("example.com", "example.com"),
            ("Example.COM.", "example.com"),
            ("[::1]", "::1"),
            ("::1", "::1"),
            ("[0:0:0:0:0:0:0:1]", "::1"),
            ("[2001:DB8::A]", "2001:db8::a"),
            ("192.0.2.1", "192.0.2.1"),
        ] {
            assert_eq!(canonical_domain(given), canonical, "{given}");
        }
        assert!(matches!(canonical_domain("example.com"), Cow::Borrowed(_)));
        assert_eq!(
            canonical_domain("[v1.FE]"),
            "[v1.fe]",
            "not an IPv6 address"
        );
        assert_eq!(domain_in_uri("::1"), "[::1]");
        assert_eq!(domain_in_uri("example.com"), "example.com");
    }

    #[test]
    fn three_colon_ipv6_accepted() {
        let h = Host::parse("[2001:db8:::192.0.2.1]").unwrap();
        assert_eq!(h, Host::parse("[2001:db8::192.0.2.1]").unwrap());
    }
}
