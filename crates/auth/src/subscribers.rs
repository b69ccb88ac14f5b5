//! The subscribers a server authenticates: HA1 per algorithm for each user of each domain.

use std::collections::{HashMap, HashSet};

use crate::algorithm::{ha1, Algorithm};

/// One subscriber's secrets: HA1 for each algorithm (the password itself is not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secrets {
    /// HA1 with MD5.
    pub md5: String,
    /// HA1 with SHA-256.
    pub sha256: String,
}

impl Secrets {
    /// The secrets of `username` in `realm` with this password.
    pub fn from_password(username: &str, realm: &str, password: &str) -> Secrets {
        Secrets {
            md5: ha1(Algorithm::Md5, username, realm, password),
            sha256: ha1(Algorithm::Sha256, username, realm, password),
        }
    }

    /// The HA1 for an algorithm.
    pub fn ha1(&self, algorithm: Algorithm) -> &str {
        match algorithm {
            Algorithm::Md5 => &self.md5,
            Algorithm::Sha256 => &self.sha256,
        }
    }
}

/// Users by (user name, domain), both compared case-insensitively for the domain and
/// exactly for the user name (RFC 3261 §19.1.4 compares user parts case-sensitively).
#[derive(Debug, Clone, Default)]
pub struct Subscribers {
    users: HashMap<(String, String), Secrets>,
    domains: HashSet<String>,
}

impl Subscribers {
    /// No subscribers.
    pub fn new() -> Subscribers {
        Subscribers::default()
    }

    /// Adds or replaces a user of `domain` (also the realm of its HA1s).
    pub fn insert(&mut self, username: &str, domain: &str, secrets: Secrets) {
        let domain = sip_message::canonical_domain(domain).into_owned();
        self.domains.insert(domain.clone());
        self.users.insert((username.to_owned(), domain), secrets);
    }

    /// The secrets of `username` in `domain`.
    pub fn get(&self, username: &str, domain: &str) -> Option<&Secrets> {
        self.users.get(&(
            username.to_owned(),
            sip_message::canonical_domain(domain).into_owned(),
        ))
    }

    /// True when `domain` has at least one subscriber.
    pub fn has_domain(&self, domain: &str) -> bool {
        self.domains
            .contains(sip_message::canonical_domain(domain).as_ref())
    }

    /// Number of subscribers.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_of_two_domains_are_kept_apart() {
        let mut s = Subscribers::new();
        s.insert(
            "alice",
            "Example.COM",
            Secrets::from_password("alice", "example.com", "a"),
        );
        s.insert(
            "alice",
            "example.net",
            Secrets::from_password("alice", "example.net", "b"),
        );
        let com = s.get("alice", "example.com").unwrap();
        let net = s.get("alice", "EXAMPLE.net").unwrap();
        assert_ne!(com, net);
        assert_eq!(
            com.ha1(Algorithm::Md5),
            ha1(Algorithm::Md5, "alice", "example.com", "a")
        );
        assert!(
            s.get("Alice", "example.com").is_none(),
            "user names are case-sensitive"
        );
        assert!(s.has_domain("EXAMPLE.com") && !s.has_domain("example.org"));
        assert_eq!(s.len(), 2);
    }
}
