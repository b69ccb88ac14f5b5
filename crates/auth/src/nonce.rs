//! Stateless nonces: the issue time and a serial number, authenticated with an HMAC under
//! the server's secret, so the server needs no table to know a nonce is its own and fresh.

use std::sync::atomic::{AtomicU64, Ordering};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of HMAC kept in a nonce.
const TAG: usize = 16;
/// issued_at (8) + serial (8) + tag.
const RAW: usize = 16 + TAG;

/// Issues and checks nonces.
pub struct NonceKey {
    mac: Hmac<Sha256>,
    serial: AtomicU64,
    lifetime: u64,
}

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceKey")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

/// What a nonce presented by a client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceState {
    /// Ours and fresh.
    Valid {
        /// When it was issued (Unix seconds).
        issued_at: u64,
        /// Its serial number, unique among the nonces this key issued.
        serial: u64,
    },
    /// Ours, but older than the lifetime: challenge again with `stale=true`.
    Stale,
    /// Not a nonce this key issued for this realm.
    Forged,
}

impl NonceKey {
    /// A key from the server's secret (32 random bytes, say); nonces are valid for
    /// `lifetime` seconds.
    pub fn new(secret: &[u8], lifetime: u64) -> NonceKey {
        NonceKey {
            mac: Hmac::new_from_slice(secret).expect("HMAC takes keys of any length"),
            serial: AtomicU64::new(0),
            lifetime,
        }
    }

    fn tag(&self, head: &[u8], realm: &str) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(head);
        mac.update(realm.as_bytes());
        mac
    }

    /// A new nonce for `realm` at `now` (Unix seconds).
    pub fn issue(&self, now: u64, realm: &str) -> String {
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        let mut raw = [0u8; RAW];
        raw[..8].copy_from_slice(&now.to_be_bytes());
        raw[8..16].copy_from_slice(&serial.to_be_bytes());
        let tag = self.tag(&raw[..16], realm).finalize().into_bytes();
        raw[16..].copy_from_slice(&tag[..TAG]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Checks a nonce a client sent for `realm` at `now`; the tag is compared in constant
    /// time.
    pub fn check(&self, nonce: &str, now: u64, realm: &str) -> NonceState {
        let mut raw = [0u8; RAW];
        match URL_SAFE_NO_PAD.decode_slice(nonce.as_bytes(), &mut raw) {
            Ok(RAW) => {}
            _ => return NonceState::Forged,
        }
        if self
            .tag(&raw[..16], realm)
            .verify_truncated_left(&raw[16..])
            .is_err()
        {
            return NonceState::Forged;
        }
        let field = |r: std::ops::Range<usize>| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&raw[r]);
            u64::from_be_bytes(b)
        };
        let (issued_at, serial) = (field(0..8), field(8..16));
        if now.saturating_sub(issued_at) > self.lifetime {
            NonceState::Stale
        } else {
            NonceState::Valid { issued_at, serial }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_nonces_check_until_they_expire() {
        let key = NonceKey::new(b"secret", 300);
        let n = key.issue(1000, "example.com");
        assert!(matches!(
            key.check(&n, 1000, "example.com"),
            NonceState::Valid {
                issued_at: 1000,
                ..
            }
        ));
        assert!(matches!(
            key.check(&n, 1300, "example.com"),
            NonceState::Valid { .. }
        ));
        assert_eq!(key.check(&n, 1301, "example.com"), NonceState::Stale);
        // Another realm, another key, or a changed byte: not ours.
        assert_eq!(key.check(&n, 1000, "example.net"), NonceState::Forged);
        assert_eq!(
            NonceKey::new(b"other", 300).check(&n, 1000, "example.com"),
            NonceState::Forged
        );
        let mut bytes = n.into_bytes();
        bytes[3] = if bytes[3] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert_eq!(
            key.check(&tampered, 1000, "example.com"),
            NonceState::Forged
        );
        assert_eq!(key.check("", 1000, "example.com"), NonceState::Forged);
        assert_eq!(
            key.check("not base64!", 1000, "example.com"),
            NonceState::Forged
        );
    }

    #[test]
    fn serials_differ() {
        let key = NonceKey::new(b"secret", 300);
        let (a, b) = (key.issue(5, "r"), key.issue(5, "r"));
        assert_ne!(a, b);
        let serial = |n: &str| match key.check(n, 5, "r") {
            NonceState::Valid { serial, .. } => serial,
            other => panic!("{other:?}"),
        };
        assert_ne!(serial(&a), serial(&b));
    }

    proptest::proptest! {
        #[test]
        fn any_string_is_checked_without_panic(s in ".{0,80}") {
            let key = NonceKey::new(b"k", 60);
            proptest::prop_assert_ne!(
                std::mem::discriminant(&key.check(&s, 0, "r")),
                std::mem::discriminant(&NonceState::Stale)
            );
        }
    }
}
