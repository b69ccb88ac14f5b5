//! Replay protection: the highest nonce-count accepted for each live nonce, and the request
//! it was accepted in (whose retransmissions carry the same count).

use std::collections::HashMap;
use std::sync::Mutex;

const SHARDS: usize = 16;

/// Remembers, per nonce serial, the highest `nc` accepted, for as long as the nonce lives.
#[derive(Debug)]
pub struct NonceCounts {
    shards: Vec<Mutex<Shard>>,
    lifetime: u64,
    /// How long after its acceptance a count is accepted again in the same request.
    window: u64,
}

/// The nonces of one shard, and when expired ones are next swept out.
#[derive(Debug, Default)]
struct Shard {
    seen: HashMap<u64, Seen>,
    next_sweep: u64,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    nc: u32,
    issued_at: u64,
    /// The request the highest count came in, and when.
    request: u64,
    accepted_at: u64,
}

impl NonceCounts {
    /// Counts for nonces that live `lifetime` seconds; a request retransmitted within
    /// `window` seconds (64·T1) may use its count again.
    pub fn new(lifetime: u64, window: u64) -> NonceCounts {
        NonceCounts {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            lifetime,
            window,
        }
    }

    /// Records use `nc` of nonce `serial` (issued at `issued_at`) in `request` (a digest of
    /// what identifies a request and its sender: a retransmission has the same); false when
    /// it is not above every count already accepted for that nonce (a replay), unless it is
    /// the highest, accepted in this same request at most `window` seconds ago. `nc` 0
    /// stands for credentials without qop: such a nonce is good for one request.
    pub fn accept(&self, serial: u64, issued_at: u64, nc: u32, request: u64, now: u64) -> bool {
        let mut shard = self.shards[(serial % SHARDS as u64) as usize]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // Expired nonces go in a sweep every tenth of a lifetime (a sweep per call would
        // cost the whole shard on every REGISTER under load).
        if now >= shard.next_sweep {
            let lifetime = self.lifetime;
            shard
                .seen
                .retain(|_, s| now.saturating_sub(s.issued_at) <= lifetime);
            shard.next_sweep = now + (lifetime / 10).max(1);
        }
        let window = self.window;
        let fresh = Seen {
            nc,
            issued_at,
            request,
            accepted_at: now,
        };
        match shard.seen.get_mut(&serial) {
            Some(seen) if nc == seen.nc && request == seen.request => {
                now.saturating_sub(seen.accepted_at) <= window
            }
            Some(seen) if nc <= seen.nc || nc == 0 => false,
            Some(seen) => {
                *seen = fresh;
                true
            }
            None => {
                shard.seen.insert(serial, fresh);
                true
            }
        }
    }

    /// Nonces tracked now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).seen.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_must_grow() {
        let c = NonceCounts::new(300, 32);
        assert!(c.accept(7, 100, 1, 1, 100));
        assert!(
            !c.accept(7, 100, 1, 2, 101),
            "the same nc again is a replay"
        );
        assert!(c.accept(7, 100, 3, 3, 102), "a gap is fine");
        assert!(!c.accept(7, 100, 2, 4, 103), "a lower one is not");
        assert!(
            c.accept(8, 100, 1, 5, 103),
            "another nonce has its own count"
        );
    }

    #[test]
    fn a_retransmission_may_use_its_count_again_for_a_while() {
        let c = NonceCounts::new(300, 32);
        assert!(c.accept(7, 100, 1, 42, 100));
        assert!(c.accept(7, 100, 1, 42, 110), "the same request again");
        assert!(c.accept(7, 100, 1, 42, 132), "until the window closes");
        assert!(!c.accept(7, 100, 1, 42, 133), "then it is a replay");
        assert!(c.accept(7, 100, 2, 43, 134));
        assert!(
            !c.accept(7, 100, 1, 42, 134),
            "an older count never comes back"
        );
        assert!(
            !c.accept(7, 100, 2, 44, 134),
            "another request with the same count"
        );
    }

    #[test]
    fn without_qop_a_nonce_is_good_for_one_request() {
        let c = NonceCounts::new(300, 32);
        assert!(c.accept(1, 0, 0, 9, 0));
        assert!(!c.accept(1, 0, 0, 10, 1));
        assert!(c.accept(1, 0, 0, 9, 1), "its retransmission");
    }

    #[test]
    fn expired_nonces_are_forgotten() {
        let c = NonceCounts::new(10, 32);
        for serial in 0..20_000u64 {
            assert!(c.accept(serial, 0, 1, serial, 0));
        }
        // Much later, new nonces push the dead ones out.
        for serial in 5000..5100u64 {
            assert!(c.accept(serial, 1000, 1, serial, 1000));
        }
        assert!(c.len() <= 1100, "{}", c.len());
    }
}
