//! Remote targets refreshed inside a dialog. A re-INVITE, UPDATE, SUBSCRIBE or NOTIFY, or
//! the 2xx of one, may give its sender a new Contact (RFC 3261 §12.2, RFC 6665 §4.3), but
//! the Route key the other party holds ([`crate::route_key`]) covers the old one for the
//! life of the dialog: a route set never changes (§12.2.1.2). So the keys of a dialog are
//! noted in pairs as we make them (the callee's copy, and the caller's made from it for
//! each 18x and 2xx we relay), and a refresh is noted for the key of the party that will
//! send to the new target:
//! - a keyed request names its sender's new Contact for the other copy of its key;
//! - a 2xx names its sender's new Contact for the key of the request it answers.
//!
//! Only the party a key leads to can name that key's new target, and only that key's holder
//! can use it (the other party never sees it): no one gains a target they could not reach.
//!
//! Both tables are bounded: two generations per slot, the older dropped when the newer
//! fills, so a dialog set up long ago with many set up since may lose its pair (its
//! refreshes are then not followed; its first targets still pass).

use std::collections::HashMap;
use std::sync::Mutex;

/// Slots, each with its own lock (a power of two).
const SLOTS: usize = 16;

/// The keys of each dialog in pairs, and the latest refreshed target for each key.
#[derive(Debug, Default)]
pub(crate) struct RefreshedTargets {
    /// A key to the other copy of its dialog's key: 2 × 16 × 16384 = 524,288 keys (about
    /// 10 MB full), two per dialog.
    partners: Bounded<16384>,
    /// A key to the token of its refreshed target: 131,072 keys at most.
    targets: Bounded<4096>,
}

impl RefreshedTargets {
    /// Notes `a` and `b` as the two copies of one dialog's key.
    pub(crate) fn pair(&self, a: u64, b: u64) {
        if a == b {
            // Never a pair (the copies are made for different holders): no key may lead
            // where its own holder names.
            return;
        }
        self.partners.insert(a, b);
        self.partners.insert(b, a);
    }

    /// A request with `key` names `target` (a token) as its sender's new target: for the
    /// other copy of the key, when it is known.
    pub(crate) fn refresh_partner(&self, key: u64, target: u64) {
        if let Some(other) = self.partners.get(key) {
            self.targets.insert(other, target);
        }
    }

    /// Notes `target` (a token) as the remote target of requests with `key`.
    pub(crate) fn note(&self, key: u64, target: u64) {
        self.targets.insert(key, target);
    }

    /// True when `target` is the latest one noted for `key`.
    pub(crate) fn holds(&self, key: u64, target: u64) -> bool {
        self.targets.get(key) == Some(target)
    }
}

/// A map of `u64` to `u64` holding at most 2 × SLOTS × `N` entries: the older of two
/// generations per slot is dropped when the newer fills; what is read moves to the newer.
#[derive(Debug)]
struct Bounded<const N: usize> {
    slots: [Mutex<Generations>; SLOTS],
}

impl<const N: usize> Default for Bounded<N> {
    fn default() -> Self {
        Bounded {
            slots: Default::default(),
        }
    }
}

#[derive(Debug, Default)]
struct Generations {
    current: HashMap<u64, u64>,
    previous: HashMap<u64, u64>,
}

impl<const N: usize> Bounded<N> {
    fn slot(&self, key: u64) -> std::sync::MutexGuard<'_, Generations> {
        self.slots[(key as usize) % SLOTS]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn insert(&self, key: u64, value: u64) {
        Self::insert_in(&mut self.slot(key), key, value);
    }

    fn insert_in(g: &mut Generations, key: u64, value: u64) {
        if g.current.get(&key) == Some(&value) {
            return;
        }
        g.previous.remove(&key);
        if g.current.len() >= N && !g.current.contains_key(&key) {
            g.previous = std::mem::take(&mut g.current);
        }
        g.current.insert(key, value);
    }

    fn get(&self, key: u64) -> Option<u64> {
        let mut g = self.slot(key);
        if let Some(&v) = g.current.get(&key) {
            return Some(v);
        }
        let v = g.previous.remove(&key)?;
        Self::insert_in(&mut g, key, v);
        Some(v)
    }

    /// Entries held.
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
    fn a_refresh_names_the_target_of_the_other_copy() {
        let t = RefreshedTargets::default();
        t.refresh_partner(1, 10);
        assert!(!t.holds(2, 10), "no pair yet");
        t.pair(1, 2);
        t.refresh_partner(1, 10);
        assert!(t.holds(2, 10), "the other copy leads there");
        assert!(!t.holds(1, 10), "not the refresher's own");
        t.refresh_partner(2, 20);
        assert!(t.holds(1, 20));
    }

    #[test]
    fn the_tables_are_bounded_and_keep_what_is_used() {
        const N: usize = 64;
        let t = Bounded::<N>::default();
        let keys = (SLOTS * N * 5) as u64;
        t.insert(0, 7);
        for k in 1..keys {
            t.insert(k, k);
            if k % 100 == 0 {
                assert_eq!(t.get(0), Some(7), "an entry in use survives");
            }
        }
        assert!(t.len() <= 2 * SLOTS * N);
        assert_eq!(t.get(0), Some(7));
        assert_eq!(t.get(1), None, "the oldest unused entries went");
        assert_eq!(t.get(keys - 1), Some(keys - 1));
    }
}
