//! The digest algorithms (RFC 7616 §3.1, RFC 8760): MD5 and SHA-256.

use md5::Md5;
use sha2::{Digest, Sha256};

/// A digest algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5`, the default when a challenge names none (RFC 2617).
    Md5,
    /// `SHA-256` (RFC 7616, RFC 8760).
    Sha256,
}

impl Algorithm {
    /// Every algorithm, the preferred first (the order challenges are offered in).
    pub const ALL: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Md5];

    /// The token in `algorithm=`.
    pub fn token(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// The algorithm an `algorithm=` token names (case-insensitive); `None` for the
    /// session variants (`-sess`) and anything else we do not offer.
    pub fn from_token(token: &str) -> Option<Algorithm> {
        if token.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else if token.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }

    /// Lower-case hex of the hash of `parts` joined by `:`.
    pub fn hash_hex(self, parts: &[&[u8]]) -> String {
        fn run<D: Digest>(parts: &[&[u8]]) -> String {
            let mut d = D::new();
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    d.update(b":");
                }
                d.update(p);
            }
            hex(&d.finalize())
        }
        match self {
            Algorithm::Md5 => run::<Md5>(parts),
            Algorithm::Sha256 => run::<Sha256>(parts),
        }
    }
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// HA1 = H(username ":" realm ":" password): what is stored for a subscriber, one per
/// algorithm, instead of the password.
pub fn ha1(algorithm: Algorithm, username: &str, realm: &str, password: &str) -> String {
    algorithm.hash_hex(&[username.as_bytes(), realm.as_bytes(), password.as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert_eq!(Algorithm::from_token("md5"), Some(Algorithm::Md5));
        assert_eq!(Algorithm::from_token("SHA-256"), Some(Algorithm::Sha256));
        assert_eq!(Algorithm::from_token("MD5-sess"), None);
        assert_eq!(Algorithm::from_token("SHA-512-256"), None);
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::from_token(a.token()), Some(a));
        }
    }

    #[test]
    fn ha1_of_the_rfc_7616_example() {
        // RFC 7616 §3.9.1: Mufasa / http-auth@example.org / Circle of Life.
        let (u, r, p) = ("Mufasa", "http-auth@example.org", "Circle of Life");
        assert_eq!(
            ha1(Algorithm::Md5, u, r, p),
            "3d78807defe7de2157e2b0b6573a855f"
        );
        assert_eq!(
            ha1(Algorithm::Sha256, u, r, p),
            "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232"
        );
    }
}
