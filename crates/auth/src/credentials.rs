//! Digest credentials from an Authorization or Proxy-Authorization header.

use sip_message::header::AuthHeader;

use crate::algorithm::Algorithm;

/// The parameters of digest credentials the server checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `username`.
    pub username: String,
    /// `realm`.
    pub realm: String,
    /// `nonce`, as the server issued it.
    pub nonce: String,
    /// `uri`, the digest-uri the client hashed.
    pub uri: String,
    /// `response`, lower-case hex.
    pub response: String,
    /// `algorithm` (MD5 when absent).
    pub algorithm: Algorithm,
    /// `qop=auth` with its `nc` and `cnonce`; `None` for RFC 2069 clients that send none.
    pub qop: Option<QopAuth>,
}

/// The parameters that come with `qop=auth`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QopAuth {
    /// `nc`, the nonce count.
    pub nc: u32,
    /// `nc` as written (it is hashed as written).
    pub nc_text: String,
    /// `cnonce`.
    pub cnonce: String,
}

/// Why credentials cannot be checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialError {
    /// Not the Digest scheme.
    NotDigest,
    /// A required parameter is missing.
    Missing(&'static str),
    /// An algorithm we do not offer.
    Algorithm,
    /// A qop other than `auth`, or `nc` that is not 8 hex digits.
    Qop,
}

impl std::fmt::Display for CredentialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CredentialError::NotDigest => f.write_str("not Digest credentials"),
            CredentialError::Missing(p) => write!(f, "credentials without {p}"),
            CredentialError::Algorithm => f.write_str("unsupported digest algorithm"),
            CredentialError::Qop => f.write_str("unsupported qop or invalid nc"),
        }
    }
}

impl std::error::Error for CredentialError {}

impl Credentials {
    /// Reads digest credentials from a parsed header value, in one pass over its
    /// parameters.
    pub fn from_header(h: &AuthHeader<'_>) -> Result<Credentials, CredentialError> {
        if !h.is_digest() {
            return Err(CredentialError::NotDigest);
        }
        const NAMES: [&str; 9] = [
            "username",
            "realm",
            "nonce",
            "uri",
            "response",
            "algorithm",
            "qop",
            "nc",
            "cnonce",
        ];
        let mut found: [Option<&str>; 9] = [None; 9];
        for (name, value) in h.params() {
            if let Some(i) = NAMES.iter().position(|n| n.eq_ignore_ascii_case(name)) {
                found[i].get_or_insert(value);
            }
        }
        let get = |i: usize| -> Result<String, CredentialError> {
            found[i]
                .map(|v| AuthHeader::unquoted(v).into_owned())
                .ok_or(CredentialError::Missing(NAMES[i]))
        };
        let algorithm = match found[5] {
            None => Algorithm::Md5,
            Some(a) => {
                Algorithm::from_token(&AuthHeader::unquoted(a)).ok_or(CredentialError::Algorithm)?
            }
        };
        let qop = match found[6].map(AuthHeader::unquoted) {
            None => None,
            Some(q) if q.eq_ignore_ascii_case("auth") => {
                let nc_text = get(7)?;
                if nc_text.len() != 8 {
                    return Err(CredentialError::Qop);
                }
                let nc = u32::from_str_radix(&nc_text, 16).map_err(|_| CredentialError::Qop)?;
                Some(QopAuth {
                    nc,
                    nc_text,
                    cnonce: get(8)?,
                })
            }
            Some(_) => return Err(CredentialError::Qop),
        };
        Ok(Credentials {
            username: get(0)?,
            realm: get(1)?,
            nonce: get(2)?,
            uri: get(3)?,
            response: get(4)?.to_ascii_lowercase(),
            algorithm,
            qop,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Credentials, CredentialError> {
        Credentials::from_header(&AuthHeader::parse(s).expect("header"))
    }

    #[test]
    fn rfc_3261_example_credentials() {
        let c = parse(
            "Digest username=\"bob\", realm=\"biloxi.com\", nonce=\"dcd98b\", uri=\"sip:bob@biloxi.com\", \
             qop=auth, nc=00000001, cnonce=\"0a4f113b\", response=\"6629FAE4\", algorithm=MD5",
        )
        .unwrap();
        assert_eq!(c.username, "bob");
        assert_eq!(c.response, "6629fae4");
        assert_eq!(c.algorithm, Algorithm::Md5);
        let q = c.qop.unwrap();
        assert_eq!(
            (q.nc, q.nc_text.as_str(), q.cnonce.as_str()),
            (1, "00000001", "0a4f113b")
        );
    }

    #[test]
    fn what_cannot_be_checked() {
        let base = "username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:r\", response=\"00\"";
        assert!(parse(&format!("Digest {base}")).unwrap().qop.is_none());
        assert_eq!(
            parse(&format!("Basic {base}")),
            Err(CredentialError::NotDigest)
        );
        assert_eq!(
            parse("Digest username=\"u\", realm=\"r\", uri=\"sip:r\", response=\"00\""),
            Err(CredentialError::Missing("nonce"))
        );
        assert_eq!(
            parse(&format!("Digest {base}, algorithm=MD5-sess")),
            Err(CredentialError::Algorithm)
        );
        assert_eq!(
            parse(&format!(
                "Digest {base}, qop=auth-int, nc=00000001, cnonce=\"c\""
            )),
            Err(CredentialError::Qop)
        );
        assert_eq!(
            parse(&format!("Digest {base}, qop=auth, nc=1, cnonce=\"c\"")),
            Err(CredentialError::Qop)
        );
        assert_eq!(
            parse(&format!(
                "Digest {base}, qop=auth, nc=0000000g, cnonce=\"c\""
            )),
            Err(CredentialError::Qop)
        );
        assert_eq!(
            parse(&format!("Digest {base}, qop=auth, nc=00000001")),
            Err(CredentialError::Missing("cnonce"))
        );
    }
}
