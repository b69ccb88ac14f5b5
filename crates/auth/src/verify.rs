//! Challenges and the check of a response.

use subtle::ConstantTimeEq;

use crate::algorithm::Algorithm;
use crate::credentials::Credentials;
use crate::nonce::{NonceKey, NonceState};
use crate::replay::NonceCounts;

/// The response a client with this HA1 must have sent (RFC 7616 §3.4.1, RFC 2617 §3.2.2.1):
/// with `qop=auth`, H(HA1:nonce:nc:cnonce:auth:HA2), else H(HA1:nonce:HA2), where
/// HA2 = H(method:digest-uri).
pub fn expected_response(ha1: &str, method: &str, c: &Credentials) -> String {
    let alg = c.algorithm;
    let ha2 = alg.hash_hex(&[method.as_bytes(), c.uri.as_bytes()]);
    match &c.qop {
        Some(q) => alg.hash_hex(&[
            ha1.as_bytes(),
            c.nonce.as_bytes(),
            q.nc_text.as_bytes(),
            q.cnonce.as_bytes(),
            b"auth",
            ha2.as_bytes(),
        ]),
        None => alg.hash_hex(&[ha1.as_bytes(), c.nonce.as_bytes(), ha2.as_bytes()]),
    }
}

/// A challenge header value (WWW-Authenticate or Proxy-Authenticate).
pub fn challenge(realm: &str, nonce: &str, algorithm: Algorithm, stale: bool) -> String {
    let stale = if stale { ", stale=true" } else { "" };
    format!(
        "Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"{stale}",
        algorithm.token()
    )
}

/// The outcome of checking credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The response is right, the nonce fresh and its count new.
    Authorized,
    /// The response is right but the nonce expired: challenge again with `stale=true`.
    Stale,
    /// Wrong password, unknown user, a nonce not ours, or a replay: challenge again (the
    /// same answer in every case, so that scanners learn nothing).
    Refused,
}

/// Issues challenges and checks credentials for any number of realms.
#[derive(Debug)]
pub struct Authenticator {
    key: NonceKey,
    counts: NonceCounts,
}

impl Authenticator {
    /// An authenticator with the server's secret; nonces live `lifetime` seconds, and a
    /// request's retransmissions (64·T1) come within `window` seconds.
    pub fn new(secret: &[u8], lifetime: u64, window: u64) -> Authenticator {
        Authenticator {
            key: NonceKey::new(secret, lifetime),
            counts: NonceCounts::new(lifetime, window),
        }
    }

    /// The challenges for a realm: one per algorithm, in the order given (the preferred
    /// first, RFC 8760 §2.4), with one fresh nonce.
    pub fn challenges(
        &self,
        realm: &str,
        algorithms: &[Algorithm],
        now: u64,
        stale: bool,
    ) -> Vec<String> {
        let nonce = self.key.issue(now, realm);
        algorithms
            .iter()
            .map(|&a| challenge(realm, &nonce, a, stale))
            .collect()
    }

    /// Checks credentials for a request with this method. `ha1` is the user's HA1 for the
    /// credentials' realm and algorithm, `None` for an unknown user (the same work is done
    /// and the same verdict given as for a wrong password). The caller checks that the
    /// digest-uri is the request's and that the user may use the identity it claims.
    /// `request` digests the request and its sender (its bytes and source address, under a
    /// key of the caller's): credentials accepted are accepted again in its retransmissions
    /// for a while (see [`NonceCounts::accept`]), so that a request whose answer was lost is
    /// not refused.
    pub fn verify(
        &self,
        c: &Credentials,
        method: &str,
        ha1: Option<&str>,
        request: u64,
        now: u64,
    ) -> Verdict {
        let state = self.key.check(&c.nonce, now, &c.realm);
        // An unknown user is checked against an HA1 no password gives.
        let unknown;
        let ha1 = match ha1 {
            Some(h) => h,
            None => {
                unknown = "0".repeat(if c.algorithm == Algorithm::Md5 {
                    32
                } else {
                    64
                });
                &unknown
            }
        };
        let expected = expected_response(ha1, method, c);
        let right: bool = expected.as_bytes().ct_eq(c.response.as_bytes()).into();
        match (state, right) {
            (_, false) | (NonceState::Forged, _) => Verdict::Refused,
            (NonceState::Stale, true) => Verdict::Stale,
            (NonceState::Valid { issued_at, serial }, true) => {
                let nc = c.qop.as_ref().map_or(0, |q| q.nc);
                if self.counts.accept(serial, issued_at, nc, request, now) {
                    Verdict::Authorized
                } else {
                    Verdict::Refused
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use sip_message::header::AuthHeader;

    use super::*;
    use crate::algorithm::ha1;
    use crate::credentials::QopAuth;

    /// RFC 7616 §3.9.1, for both algorithms.
    #[test]
    fn rfc_7616_responses() {
        for (alg, response) in [
            (Algorithm::Md5, "8ca523f5e9506fed4657c9700eebdbec"),
            (
                Algorithm::Sha256,
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
        ] {
            let c = Credentials {
                username: "Mufasa".into(),
                realm: "http-auth@example.org".into(),
                nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v".into(),
                uri: "/dir/index.html".into(),
                response: response.into(),
                algorithm: alg,
                qop: Some(QopAuth {
                    nc: 1,
                    nc_text: "00000001".into(),
                    cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ".into(),
                }),
            };
            let h = ha1(alg, "Mufasa", "http-auth@example.org", "Circle of Life");
            assert_eq!(expected_response(&h, "GET", &c), response, "{alg:?}");
        }
    }

    /// RFC 2617 §3.5.
    #[test]
    fn rfc_2617_response() {
        let c = Credentials::from_header(
            &AuthHeader::parse(
                "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
                 nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", qop=auth, \
                 nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\"",
            )
            .unwrap(),
        )
        .unwrap();
        let h = ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        assert_eq!(expected_response(&h, "GET", &c), c.response);
    }

    /// What a client computes from a challenge.
    fn answer(challenge: &str, user: &str, password: &str, nc: u32) -> Credentials {
        let ch = AuthHeader::parse(challenge).unwrap();
        let (realm, nonce) = (ch.get("realm").unwrap(), ch.get("nonce").unwrap());
        let alg = Algorithm::from_token(&ch.get("algorithm").unwrap()).unwrap();
        let mut c = Credentials {
            username: user.into(),
            realm: realm.to_string(),
            nonce: nonce.to_string(),
            uri: "sip:example.com".into(),
            response: String::new(),
            algorithm: alg,
            qop: Some(QopAuth {
                nc,
                nc_text: format!("{nc:08x}"),
                cnonce: "c0ffee".into(),
            }),
        };
        c.response = expected_response(&ha1(alg, user, &realm, password), "REGISTER", &c);
        c
    }

    #[test]
    fn challenge_answer_replay_and_stale() {
        let auth = Authenticator::new(b"server secret", 300, 32);
        let challenges = auth.challenges("example.com", &Algorithm::ALL, 1000, false);
        assert_eq!(challenges.len(), 2);
        assert!(
            challenges[0].contains("algorithm=SHA-256") && challenges[1].contains("algorithm=MD5")
        );
        assert!(challenges[0].contains("qop=\"auth\"") && !challenges[0].contains("stale"));
        for (i, ch) in challenges.iter().enumerate() {
            let alg = Algorithm::ALL[i];
            let h = ha1(alg, "alice", "example.com", "secret");
            // Each algorithm's challenge shares the nonce; counts go on across them.
            let c = answer(ch, "alice", "secret", 1 + 2 * i as u32);
            assert_eq!(
                auth.verify(&c, "REGISTER", Some(&h), 99, 1001),
                Verdict::Authorized
            );
            assert_eq!(
                auth.verify(&c, "REGISTER", Some(&h), 99, 1002),
                Verdict::Authorized,
                "a retransmission of the same request"
            );
            assert_eq!(
                auth.verify(&c, "REGISTER", Some(&h), 100, 1002),
                Verdict::Refused,
                "replay in another request"
            );
            let next = answer(ch, "alice", "secret", 2 + 2 * i as u32);
            assert_eq!(
                auth.verify(&next, "REGISTER", Some(&h), 110, 1003),
                Verdict::Authorized
            );
            let wrong = answer(ch, "alice", "guess", 9 + i as u32);
            assert_eq!(
                auth.verify(&wrong, "REGISTER", Some(&h), 119, 1003),
                Verdict::Refused
            );
            assert_eq!(
                auth.verify(&c, "INVITE", Some(&h), 99, 1003),
                Verdict::Refused,
                "another method"
            );
            assert_eq!(
                auth.verify(&next, "REGISTER", None, 110, 1003),
                Verdict::Refused,
                "unknown user"
            );
            let late = answer(ch, "alice", "secret", 20 + i as u32);
            assert_eq!(
                auth.verify(&late, "REGISTER", Some(&h), 108, 1301),
                Verdict::Stale
            );
        }
        assert!(
            auth.challenges("example.com", &Algorithm::ALL, 1301, true)[0].ends_with("stale=true")
        );
    }

    #[test]
    fn a_nonce_from_another_realm_or_server_is_refused() {
        let auth = Authenticator::new(b"server secret", 300, 32);
        let other = Authenticator::new(b"another secret", 300, 32);
        let h = ha1(Algorithm::Sha256, "alice", "example.com", "secret");
        let foreign = answer(
            &other.challenges("example.com", &Algorithm::ALL, 0, false)[0],
            "alice",
            "secret",
            1,
        );
        assert_eq!(
            auth.verify(&foreign, "REGISTER", Some(&h), 102, 1),
            Verdict::Refused
        );
        let mut moved = answer(
            &auth.challenges("example.net", &Algorithm::ALL, 0, false)[0],
            "alice",
            "secret",
            1,
        );
        moved.realm = "example.com".into();
        moved.response = expected_response(&h, "REGISTER", &moved);
        assert_eq!(
            auth.verify(&moved, "REGISTER", Some(&h), 109, 1),
            Verdict::Refused
        );
    }
}
