//! Remote targets refreshed inside a dialog. The 2xx of a re-INVITE, UPDATE, SUBSCRIBE or
//! NOTIFY may give its sender a new Contact (RFC 3261 §12.2, RFC 6665 §4.3), but the Route
//! key the other party holds ([`crate::route_key`]) covers the old one for the life of the
//! dialog: a route set never changes (§12.2.1.2). When the request it answers came with a
//! valid key, that key is noted here with the new target, the latest one per key, so that
//! later requests with it pass there. Only the key's holder can use it, and only the party
//! it sends to could have named the new target: no one gains a target they could not reach.
//!
//! The table is bounded: two generations per slot, the older dropped when the newer fills,
//! so a target refreshed long ago with thousands refreshed since may lose its entry (the
//! original target still passes).

use std::collections::HashMap;
use std::sync::Mutex;

/// Slots, each with its own lock (a power of two).
const SLOTS: usize = 16;
/// Entries in one generation of one slot: 2 × 16 × 4096 = 131,072 keys at most.
const GENERATION: usize = 4096;

/// The latest refreshed target for each key: a key to the token of its target.
#[derive(Debug, Default)]
pub(crate) struct RefreshedTargets {
    slots: [Mutex<Generations>; SLOTS],
}

#[derive(Debug, Default)]
struct Generations {
    current: HashMap<u64, u64>,
    previous: HashMap<u64, u64>,
}

impl RefreshedTargets {
    fn slot(&self, key: u64) -> std::sync::MutexGuard<'_, Generations> {
        self.slots[(key as usize) % SLOTS]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Notes `target` (a token) as the remote target of requests with `key`.
    pub(crate) fn note(&self, key: u64, target: u64) {
        let mut g = self.slot(key);
        if g.current.get(&key) == Some(&target) {
            return;
        }
        g.previous.remove(&key);
        if g.current.len() >= GENERATION && !g.current.contains_key(&key) {
            g.previous = std::mem::take(&mut g.current);
        }
        g.current.insert(key, target);
    }

    /// True when `target` is the latest one noted for `key`; a hit in the older
    /// generation moves to the newer.
    pub(crate) fn holds(&self, key: u64, target: u64) -> bool {
        let mut g = self.slot(key);
        if let Some(&t) = g.current.get(&key) {
            return t == target;
        }
        match g.previous.get(&key) {
            Some(&t) if t == target => {
                g.previous.remove(&key);
                drop(g);
                self.note(key, target);
                true
            }
            _ => false,
        }
    }

    /// Entries held (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots
            .iter()
            .map(|s| {
                let g = s.lock().expect("lock");
                g.current.len() + g.previous.len()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_target_of_a_key_holds() {
        let t = RefreshedTargets::default();
        assert!(!t.holds(1, 10));
        t.note(1, 10);
        assert!(t.holds(1, 10));
        t.note(1, 11);
        assert!(!t.holds(1, 10), "replaced");
        assert!(t.holds(1, 11));
        assert!(!t.holds(2, 11), "another key");
    }

    #[test]
    fn the_table_is_bounded_and_keeps_what_is_used() {
        let t = RefreshedTargets::default();
        let parties = (SLOTS * GENERATION * 5) as u64;
        t.note(0, 7);
        for p in 1..parties {
            t.note(p, p);
            if p % 1000 == 0 {
                assert!(t.holds(0, 7), "an entry in use survives");
            }
        }
        assert!(t.len() <= 2 * SLOTS * GENERATION);
        assert!(t.holds(0, 7));
        assert!(!t.holds(1, 1), "the oldest unused entries went");
        assert!(t.holds(parties - 1, parties - 1));
    }
}
