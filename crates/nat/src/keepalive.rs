//! Keepalives for clients behind NAT: the server pings each one (an OPTIONS) so that its
//! NAT keeps the mapping open, and gives up on one that stopped answering.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// When each pinged client last answered (or was first pinged), and the id its pings
/// carry (an answer names the id).
#[derive(Debug)]
pub struct Keepalives<K> {
    timeout: Duration,
    heard: HashMap<K, (Instant, u64)>,
    ids: HashMap<u64, K>,
}

impl<K: Hash + Eq + Clone> Keepalives<K> {
    /// A client that has not answered for `timeout` is dead.
    pub fn new(timeout: Duration) -> Keepalives<K> {
        Keepalives {
            timeout,
            heard: HashMap::new(),
            ids: HashMap::new(),
        }
    }

    /// `key` is pinged now with `id` in its ping; its clock starts at its first ping.
    pub fn pinged(&mut self, key: &K, id: u64, now: Instant) {
        if !self.heard.contains_key(key) {
            self.heard.insert(key.clone(), (now, id));
            self.ids.insert(id, key.clone());
        }
    }

    /// The client whose pings carry `id` answered (any response: it is there, and its NAT
    /// let the ping in).
    pub fn answered_by(&mut self, id: u64, now: Instant) {
        if let Some((t, _)) = self.ids.get(&id).and_then(|key| self.heard.get_mut(key)) {
            *t = now;
        }
    }

    /// True when `key` has not answered for the timeout since it was first pinged.
    pub fn dead(&self, key: &K, now: Instant) -> bool {
        self.heard
            .get(key)
            .is_some_and(|&(t, _)| now.saturating_duration_since(t) >= self.timeout)
    }

    /// Forgets `key` (its binding is gone).
    pub fn forget(&mut self, key: &K) {
        if let Some((_, id)) = self.heard.remove(key) {
            self.ids.remove(&id);
        }
    }

    /// Forgets every key `keep` refuses (bindings that expired or left).
    pub fn retain(&mut self, keep: impl Fn(&K) -> bool) {
        self.heard.retain(|k, _| keep(k));
        self.ids.retain(|_, k| keep(k));
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
        k.pinged(&"a", 7, t0);
        k.pinged(&"a", 7, s(30));
        assert!(!k.dead(&"a", s(119)));
        k.answered_by(8, s(60));
        assert!(k.dead(&"a", s(120)), "another id is no answer");
        k.answered_by(7, s(60));
        assert!(!k.dead(&"a", s(179)), "answered at 60");
        assert!(k.dead(&"a", s(180)));
        k.forget(&"a");
        assert!(!k.dead(&"a", s(500)));
    }
}
