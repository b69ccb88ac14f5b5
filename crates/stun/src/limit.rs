//! How many answers one address gets a second: a stranger who forges a victim's address as
//! his own would otherwise have us send the victim an answer, a little larger than his
//! request, for each one.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Answers one address may get a second: a phone's keepalives come every 15–30 s, and
/// hundreds of phones behind one carrier-grade NAT stay well under it.
pub const PER_SECOND: u32 = 100;

/// Addresses counted at once; another address whose hash lands on a slot takes it over.
const SLOTS: usize = 1024;

#[derive(Clone, Copy)]
struct Slot {
    ip: Option<IpAddr>,
    since: Instant,
    count: u32,
}

/// The answers each address got in its current second, in a table of fixed size hashed
/// with a secret key (a stranger cannot pick addresses that share a victim's slot).
pub struct AnswerLimit {
    slots: Box<[Slot]>,
    hasher: RandomState,
}

impl AnswerLimit {
    /// A limit with nothing counted yet.
    pub fn new(now: Instant) -> AnswerLimit {
        let empty = Slot {
            ip: None,
            since: now,
            count: 0,
        };
        AnswerLimit {
            slots: vec![empty; SLOTS].into_boxed_slice(),
            hasher: RandomState::new(),
        }
    }

    /// True when `ip` may get one more answer at `now` (which is then counted).
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        let i = self.hasher.hash_one(ip.to_canonical()) as usize % SLOTS;
        let slot = &mut self.slots[i];
        if slot.ip != Some(ip)
            || now.saturating_duration_since(slot.since) >= Duration::from_secs(1)
        {
            *slot = Slot {
                ip: Some(ip),
                since: now,
                count: 0,
            };
        }
        slot.count += 1;
        slot.count <= PER_SECOND
    }
}
