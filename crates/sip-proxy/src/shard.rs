//! Proxy contexts, sharded by transaction key: each shard has its own lock, its contexts by
//! id and by key, and its timers — one entry per context, so the cost of a timer does not
//! grow with re-arming. The earliest deadline of each shard is mirrored in an atomic, so
//! that finding the next timeout locks nothing.

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use sip_transaction::TransactionKey;
use siphasher::sip128::Hasher128;

use crate::context::Context;
use crate::linger::Linger;
use crate::originate::Outgoing;

/// Number of shards (a power of two).
pub(crate) const SHARDS: usize = 64;
const NONE: u64 = u64::MAX;

/// A map by context id. Ids are ours (a counter), not a stranger's, so they need no
/// keyed hash: a folded multiplication spreads them.
pub(crate) type ById<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// A transaction key as we keep it: 128 bits of SipHash under a key of this process, so
/// that a stranger's long branch or Call-ID costs no memory and no one can aim two
/// requests at one digest.
pub(crate) type Digest = u128;

/// Context ids by digest (a digest is uniform already: folded, not hashed again).
pub(crate) type ByDigest = HashMap<Digest, u64, BuildHasherDefault<IdHasher>>;

/// Hashes a context id (a `u64`) by one folded multiplication: every bit of the result
/// depends on every bit of the id (the ids of one shard share their low bits, and the
/// table picks buckets by the low bits of the hash).
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u128(&mut self, digest: u128) {
        self.0 = (digest >> 64) as u64 ^ digest as u64;
    }

    fn write_u64(&mut self, id: u64) {
        let product = u128::from(id) * 0x9E37_79B9_7F4A_7C15;
        self.0 = (product >> 64) as u64 ^ product as u64;
    }
}

/// The contexts of one shard and their timers.
#[derive(Default)]
pub(crate) struct Shard {
    /// Boxed: a table keeps the capacity it once needed (and grows with tombstones under
    /// churn), so its slots stay small; a context is touched only once found.
    pub(crate) contexts: ById<Box<Context>>,
    /// Contexts by the digest of their transaction key.
    pub(crate) by_key: ByDigest,
    /// What stays of contexts whose work is done, by id, while their last timers run.
    pub(crate) lingering: ById<Linger>,
    /// Requests of our own, by id (the same ids as contexts).
    pub(crate) outgoing: ById<Outgoing>,
    /// `(deadline, id)`: the `armed` deadline of a context or request of our own, one each.
    timers: BTreeSet<(Instant, u64)>,
    /// The earliest deadline last published in the shard's atomic.
    published: Option<Instant>,
    /// The timer set changed since then (finding its first entry walks the tree).
    timers_moved: bool,
}

struct Slot {
    shard: Mutex<Shard>,
    /// The shard's earliest deadline, in nanoseconds after the epoch ([`NONE`]: no timer).
    next: AtomicU64,
}

/// All shards, and the ids of their contexts.
pub(crate) struct Shards {
    slots: Box<[Slot]>,
    next_id: AtomicU64,
    /// The first time the core was told: deadlines are stored relative to it.
    epoch: OnceLock<Instant>,
    /// The key of transaction key digests (given by the IO layer).
    key: [u8; 16],
    /// Contexts and requests of our own in all shards.
    live: AtomicUsize,
}

impl Shards {
    /// Shards whose transaction keys are digested under `key`.
    pub(crate) fn new(key: [u8; 16]) -> Self {
        Shards {
            slots: (0..SHARDS)
                .map(|_| Slot {
                    shard: Mutex::default(),
                    next: AtomicU64::new(NONE),
                })
                .collect(),
            next_id: AtomicU64::new(1),
            epoch: OnceLock::new(),
            key,
            live: AtomicUsize::new(0),
        }
    }
}

/// A locked shard; releasing it publishes its earliest deadline and its count.
pub(crate) struct ShardGuard<'a> {
    shard: MutexGuard<'a, Shard>,
    next: &'a AtomicU64,
    epoch: &'a OnceLock<Instant>,
    live: &'a AtomicUsize,
    /// The shard's count when locked.
    held: usize,
}

impl Deref for ShardGuard<'_> {
    type Target = Shard;
    fn deref(&self) -> &Shard {
        &self.shard
    }
}

impl DerefMut for ShardGuard<'_> {
    fn deref_mut(&mut self) -> &mut Shard {
        &mut self.shard
    }
}

impl Drop for ShardGuard<'_> {
    fn drop(&mut self) {
        let held = self.shard.len();
        if held > self.held {
            self.live.fetch_add(held - self.held, Ordering::Relaxed);
        } else if held < self.held {
            self.live.fetch_sub(self.held - held, Ordering::Relaxed);
        }
        if !std::mem::take(&mut self.shard.timers_moved) {
            return;
        }
        let first = self.shard.timers.first().map(|(t, _)| *t);
        if first == self.shard.published {
            return;
        }
        self.shard.published = first;
        // A timer is set with a time, which sets the epoch: without one, it is due.
        let next = first.map_or(NONE, |t| {
            self.epoch
                .get()
                .map_or(0, |e| nanos(t.saturating_duration_since(*e)))
        });
        self.next.store(next, Ordering::Release);
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(NONE - 1)
}

impl Shards {
    /// Locks shard `i` (modulo the shard count).
    pub(crate) fn lock(&self, i: usize) -> ShardGuard<'_> {
        let slot = &self.slots[i % SHARDS];
        let shard = slot.shard.lock().unwrap_or_else(|p| p.into_inner());
        ShardGuard {
            held: shard.len(),
            shard,
            next: &slot.next,
            epoch: &self.epoch,
            live: &self.live,
        }
    }

    /// The shard a context id lives in.
    pub(crate) fn of(id: u64) -> usize {
        (id % SHARDS as u64) as usize
    }

    /// The digest of a transaction key.
    pub(crate) fn digest(&self, key: &TransactionKey) -> Digest {
        let mut h = siphasher::sip128::SipHasher13::new_with_key(&self.key);
        key.hash(&mut h);
        h.finish128().as_u128()
    }

    /// 64 bits of SipHash of `value` under the same key: what a stranger cannot aim at.
    pub(crate) fn keyed_hash(&self, value: impl Hash) -> u64 {
        let mut h = siphasher::sip::SipHasher13::new_with_key(&self.key);
        value.hash(&mut h);
        h.finish()
    }

    /// The shard a transaction key's digest belongs to.
    pub(crate) fn for_digest(digest: Digest) -> usize {
        (digest >> 64) as usize % SHARDS
    }
}

impl Shards {
    /// A new context id that lives in shard `shard`.
    pub(crate) fn new_id(&self, shard: usize) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) * SHARDS as u64 + (shard % SHARDS) as u64
    }

    /// A new context id in any shard.
    pub(crate) fn new_id_any(&self) -> u64 {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        n * SHARDS as u64 + n % SHARDS as u64
    }

    /// The epoch: the first time the core was told.
    pub(crate) fn epoch(&self, now: Instant) -> Instant {
        *self.epoch.get_or_init(|| now)
    }

    /// The epoch, once the core was told a time.
    pub(crate) fn started(&self) -> Option<Instant> {
        self.epoch.get().copied()
    }

    /// The earliest deadline of any shard, read without locking.
    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        let min = self
            .slots
            .iter()
            .map(|s| s.next.load(Ordering::Acquire))
            .min()
            .filter(|&n| n != NONE)?;
        Some(*self.epoch.get()? + Duration::from_nanos(min))
    }

    /// The shards with a deadline at or before `now`.
    pub(crate) fn due(&self, now: Instant) -> impl Iterator<Item = usize> + '_ {
        let limit = nanos(now.saturating_duration_since(self.epoch(now)));
        self.slots
            .iter()
            .enumerate()
            .filter(move |(_, s)| s.next.load(Ordering::Acquire) <= limit)
            .map(|(i, _)| i)
    }

    /// Entries in the timer sets of all shards.
    #[cfg(test)]
    pub(crate) fn timer_entries(&self) -> usize {
        (0..SHARDS).map(|i| self.lock(i).timers.len()).sum()
    }

    /// Contexts lingering as their key alone, in all shards.
    #[cfg(test)]
    pub(crate) fn lingering(&self) -> usize {
        (0..SHARDS).map(|i| self.lock(i).lingering.len()).sum()
    }

    /// Shards locked right now (by anyone, this thread included).
    #[cfg(test)]
    pub(crate) fn locked(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.shard.try_lock().is_err())
            .count()
    }

    /// Number of live contexts and requests of our own.
    pub(crate) fn len(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }
}

impl Shard {
    /// Contexts (lingering ones too) and requests of our own.
    fn len(&self) -> usize {
        self.contexts.len() + self.lingering.len() + self.outgoing.len()
    }

    /// Adds a context, matched by its key unless `by_key` is false.
    pub(crate) fn insert(&mut self, id: u64, mut ctx: Box<Context>, by_key: bool) {
        ctx.id = id;
        if by_key {
            self.by_key.insert(ctx.key, id);
        }
        self.contexts.insert(id, ctx);
        self.settle(id);
    }

    /// After a context (or request of our own) changed: its timer follows its next
    /// deadline, and it is removed once done.
    pub(crate) fn settle(&mut self, id: u64) {
        let (armed, deadline) = if let Some(ctx) = self.contexts.get_mut(&id) {
            let done = ctx.is_done();
            // Its work done, only its last timers left: what stays of it takes its place.
            if let Some(linger) = (!done).then(|| ctx.linger()).flatten() {
                return self.linger(id, linger);
            }
            let deadline = ctx.next_deadline();
            (if done { None } else { Some(&mut ctx.armed) }, deadline)
        } else if let Some(own) = self.outgoing.get_mut(&id) {
            let (deadline, done) = (own.next_deadline(), own.is_done());
            (if done { None } else { Some(&mut own.armed) }, deadline)
        } else {
            return;
        };
        let Some(armed) = armed else {
            return self.remove(id);
        };
        if *armed != deadline {
            let old = std::mem::replace(armed, deadline);
            if let Some(old) = old {
                self.timers.remove(&(old, id));
                self.timers_moved = true;
            }
            if let Some(d) = deadline {
                self.timers.insert((d, id));
                self.timers_moved = true;
            }
        }
    }

    /// Puts what stays of context `id` in its place, with its timer.
    fn linger(&mut self, id: u64, linger: Linger) {
        if let Some(t) = self.contexts.remove(&id).and_then(|c| c.armed) {
            self.timers.remove(&(t, id));
        }
        self.timers.insert((linger.until, id));
        self.timers_moved = true;
        self.lingering.insert(id, linger);
    }

    /// Adds a request of our own.
    pub(crate) fn insert_outgoing(&mut self, id: u64, own: Outgoing) {
        self.outgoing.insert(id, own);
        self.settle(id);
    }

    /// Forgets a context (or request of our own) and its timer.
    pub(crate) fn remove(&mut self, id: u64) {
        let armed = if let Some(ctx) = self.contexts.remove(&id) {
            self.forget_key(ctx.key, id);
            ctx.armed
        } else if let Some(linger) = self.lingering.remove(&id) {
            self.forget_key(linger.key, id);
            Some(linger.until)
        } else {
            self.outgoing.remove(&id).and_then(|o| o.armed)
        };
        if let Some(t) = armed {
            self.timers.remove(&(t, id));
            self.timers_moved = true;
        }
    }

    /// Drops `key` from the index unless it now leads to another id.
    fn forget_key(&mut self, key: Digest, id: u64) {
        if self.by_key.get(&key) == Some(&id) {
            self.by_key.remove(&key);
        }
    }

    /// Takes the next context whose deadline is at or before `now` off the timer set (a
    /// lingering one ends there).
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<u64> {
        let &(t, id) = self.timers.first().filter(|(t, _)| *t <= now)?;
        self.timers.remove(&(t, id));
        self.timers_moved = true;
        if let Some(ctx) = self.contexts.get_mut(&id) {
            ctx.armed = None;
        } else if let Some(own) = self.outgoing.get_mut(&id) {
            own.armed = None;
        } else if let Some(linger) = self.lingering.remove(&id) {
            self.forget_key(linger.key, id);
        }
        Some(id)
    }
}
