//! Keepalives for clients behind NAT: the server pings each one (an OPTIONS) so that its
//! NAT keeps the mapping open, and gives up on one that stopped answering.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// When each pinged client last answered (or was first pinged).
#[derive(Debug)]
pub struct Keepalives<K> {
    timeout: Duration,
    heard: HashMap<K, Instant>,
}

impl<K: Hash + Eq + Clone> Keepalives<K> {
    /// A client that has not answered for `timeout` is dead.
    pub fn new(timeout: Duration) -> Keepalives<K> {
        Keepalives {
            timeout,
            heard: HashMap::new(),
        }
    }

    /// `key` is pinged now; its clock starts at its first ping.
    pub fn pinged(&mut self, key: &K, now: Instant) {
        if !self.heard.contains_key(key) {
            self.heard.insert(key.clone(), now);
        }
    }

    /// `key` answered (any final response: it is there, and its NAT let the ping in).
    pub fn answered(&mut self, key: K, now: Instant) {
        self.heard.insert(key, now);
    }

    /// True when `key` has not answered for the timeout since it was first pinged.
    pub fn dead(&self, key: &K, now: Instant) -> bool {
        self.heard
            .get(key)
            .is_some_and(|&t| now.saturating_duration_since(t) >= self.timeout)
    }

    /// Forgets `key` (its binding is gone).
    pub fn forget(&mut self, key: &K) {
        self.heard.remove(key);
    }

    /// Forgets every key `keep` refuses (bindings that expired or left).
    pub fn retain(&mut self, keep: impl Fn(&K) -> bool) {
        self.heard.retain(|k, _| keep(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_dead_after_the_timeout_without_an_answer() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut k = Keepalives::new(Duration::from_secs(120));
        assert!(!k.dead(&"a", t0), "never pinged");
        k.pinged(&"a", t0);
        k.pinged(&"a", s(30));
        assert!(!k.dead(&"a", s(119)));
        k.answered("a", s(60));
        assert!(!k.dead(&"a", s(179)), "answered at 60");
        assert!(k.dead(&"a", s(180)));
        k.forget(&"a");
        assert!(!k.dead(&"a", s(500)));
    }
}
