//! Addresses-of-record and URI comparison (RFC 3261 §10.3 step 5, §19.1.4).

use sip_message::{canonical_domain, domain_in_uri, percent_decode, Uri};

/// The canonical address-of-record of a To URI: `sip:user@host` with the scheme lowercased,
/// the host canonical (lower case, no trailing dot, IPv6 in RFC 5952 form), the user %-decoded, and no port, parameters or headers (a user is one account
/// per domain whatever port the request named). `None` for non-SIP URIs and URIs without user.
pub fn aor_of(uri: &Uri<'_>) -> Option<String> {
    let sip = uri.as_sip()?;
    let user = percent_decode(sip.user?);
    let user = String::from_utf8_lossy(&user);
    let scheme = if sip.secure { "sips:" } else { "sip:" };
    let domain = canonical_domain(sip.host_raw);
    let domain = domain_in_uri(&domain);
    // Written in place, not formatted: every REGISTER's To.
    let mut aor = String::with_capacity(scheme.len() + user.len() + 1 + domain.len());
    for part in [scheme, &user, "@", &domain] {
        aor.push_str(part);
    }
    Some(aor)
}

/// RFC 3261 §19.1.4 equality of two SIP URIs given as text; other schemes compare as text.
pub fn uri_equal(a: &str, b: &str) -> bool {
    let (Ok(ua), Ok(ub)) = (Uri::parse(a), Uri::parse(b)) else {
        return a == b;
    };
    let (Some(x), Some(y)) = (ua.as_sip(), ub.as_sip()) else {
        return a.eq_ignore_ascii_case(b);
    };
    let dec = |s: Option<&str>| s.map(|s| percent_decode(s).into_owned());
    if x.secure != y.secure
        || dec(x.user) != dec(y.user)
        || dec(x.password) != dec(y.password)
        || canonical_domain(x.host_raw) != canonical_domain(y.host_raw)
        || x.port != y.port
    {
        return false;
    }
    // user, ttl, method, maddr and transport must match when either has them; any other
    // parameter only when both have it.
    for p in x.params.iter().chain(y.params.iter()) {
        let (vx, vy) = (x.params.get(p.name), y.params.get(p.name));
        let special = ["user", "ttl", "method", "maddr", "transport"]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(p.name));
        let differ = match (vx, vy) {
            (Some(a), Some(b)) => !a.unwrap_or("").eq_ignore_ascii_case(b.unwrap_or("")),
            _ => special,
        };
        if differ {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aors() {
        let aor = |s: &str| aor_of(&Uri::parse(s).unwrap());
        assert_eq!(
            aor("sip:%61lice@Example.COM:5070;transport=tcp"),
            Some("sip:alice@example.com".into())
        );
        assert_eq!(aor("sips:bob@h"), Some("sips:bob@h".into()));
        assert_eq!(aor("tel:+123"), None);
        assert_eq!(aor("sip:example.com"), None);
    }

    #[test]
    fn rfc3261_equal_uris() {
        assert!(uri_equal(
            "sip:%61lice@atlanta.com;transport=TCP",
            "sip:alice@AtLanTa.CoM;Transport=tcp"
        ));
        assert!(uri_equal(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com;newparam=5"
        ));
        assert!(uri_equal(
            "sip:carol@chicago.com;security=on",
            "sip:carol@chicago.com;newparam=5"
        ));
        assert!(uri_equal(
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"
        ));
    }

    #[test]
    fn rfc3261_unequal_uris() {
        assert!(!uri_equal(
            "SIP:ALICE@AtLanTa.CoM;Transport=udp",
            "sip:alice@AtLanTa.CoM;Transport=UDP"
        ));
        assert!(!uri_equal("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
        assert!(!uri_equal(
            "sip:bob@biloxi.com",
            "sip:bob@biloxi.com;transport=udp"
        ));
        assert!(!uri_equal(
            "sip:carol@chicago.com;security=on",
            "sip:carol@chicago.com;security=off"
        ));
    }
}
