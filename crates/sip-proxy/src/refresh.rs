//! Remote targets refreshed inside a dialog. A re-INVITE, UPDATE, SUBSCRIBE or NOTIFY, or
//! the 2xx of one, may give its sender a new Contact (RFC 3261 §12.2, RFC 6665 §4.3), but
//! the Route key the other party holds ([`crate::route_key`]) covers the old one for the
//! life of the dialog: a route set never changes (§12.2.1.2). A refresh that came with a
//! valid key, or answers a request that did, is noted here, the latest one per party of a
//! dialog, so that later requests to the new target pass. Whoever can note one holds a key
//! of that dialog already, and could have named the same target when it began.
//!
//! The table is bounded: two generations per slot, the older dropped when the newer fills,
//! so a party refreshed long ago with thousands refreshed since may lose its entry (its
//! original target still passes).

use std::collections::HashMap;
use std::sync::Mutex;

/// Slots, each with its own lock (a power of two).
const SLOTS: usize = 16;
/// Entries in one generation of one slot: 2 × 16 × 4096 = 131,072 parties at most.
const GENERATION: usize = 4096;

/// The latest refreshed target of each party: a party's id to the token of its target.
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
    fn slot(&self, party: u64) -> std::sync::MutexGuard<'_, Generations> {
        self.slots[(party as usize) % SLOTS]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Notes `target` (a token) as the remote target of `party` (an id).
    pub(crate) fn note(&self, party: u64, target: u64) {
        let mut g = self.slot(party);
        if g.current.get(&party) == Some(&target) {
            return;
        }
        g.previous.remove(&party);
        if g.current.len() >= GENERATION && !g.current.contains_key(&party) {
            g.previous = std::mem::take(&mut g.current);
        }
        g.current.insert(party, target);
    }

    /// True when `target` is the latest one noted for `party`; a hit in the older
    /// generation moves to the newer.
    pub(crate) fn holds(&self, party: u64, target: u64) -> bool {
        let mut g = self.slot(party);
        if let Some(&t) = g.current.get(&party) {
            return t == target;
        }
        match g.previous.get(&party) {
            Some(&t) if t == target => {
                g.previous.remove(&party);
                drop(g);
                self.note(party, target);
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
    fn the_latest_target_of_a_party_holds() {
        let t = RefreshedTargets::default();
        assert!(!t.holds(1, 10));
        t.note(1, 10);
        assert!(t.holds(1, 10));
        t.note(1, 11);
        assert!(!t.holds(1, 10), "replaced");
        assert!(t.holds(1, 11));
        assert!(!t.holds(2, 11), "another party");
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
