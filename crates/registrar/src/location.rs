//! The location service: bindings in memory, sharded by address-of-record so that no lock
//! is global.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use sip_message::Message;

use crate::binding::{Binding, Change};
use crate::limits::{Counts, Limit};
use crate::register::{
    aor_from_to, process_for, reject, Registered, RegistrarConfig, Rejection, Removed,
};

const SHARDS: usize = 64;

/// How long a removed contact is remembered (seconds): longer than a REGISTER's
/// retransmissions last (64·T1, 32 s by default).
const REMEMBER_REMOVED: u64 = 64;

/// The bindings of one AOR, shared with the registration that made them (and the one
/// after, to put them back if its changes cannot be stored): copied only to be changed.
type Bindings = Arc<Vec<Binding>>;

/// The AORs of one shard (a stranger's text: hashed with a random key, ahash).
#[derive(Debug, Default)]
struct Shard {
    bindings: HashMap<String, Bindings, ahash::RandomState>,
    /// Contacts removed lately, by AOR.
    removed: HashMap<String, Vec<Removed>, ahash::RandomState>,
}

/// Every binding, by address-of-record.
#[derive(Debug)]
pub struct Location {
    shards: Vec<Mutex<Shard>>,
    /// Spreads AORs over the shards, with a random key.
    hasher: ahash::RandomState,
    /// Bindings in all and per source, for the limits.
    counts: Counts,
}

impl Default for Location {
    fn default() -> Self {
        Location::new()
    }
}

impl Location {
    /// An empty location table.
    pub fn new() -> Location {
        Location {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: ahash::RandomState::new(),
            counts: Counts::default(),
        }
    }

    fn shard(&self, aor: &str) -> MutexGuard<'_, Shard> {
        self.shards[self.hasher.hash_one(aor) as usize % SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Processes a REGISTER and applies it, atomically for its AOR. An AOR whose domain is
    /// not `served` is refused with 403; a registration that would take the table past
    /// `max_bindings` with 503, one that would take its source past
    /// `max_bindings_per_source` (unless `source_exempt`: a trusted peer, an edge proxy)
    /// with 403.
    pub fn register(
        &self,
        cfg: &RegistrarConfig,
        now: u64,
        req: &Message,
        source: &str,
        source_exempt: bool,
        served: &dyn Fn(&str) -> bool,
    ) -> Result<Registered, Rejection> {
        let aor = aor_from_to(req)?;
        let domain = aor.rsplit_once('@').map_or("", |(_, d)| d);
        if !served(domain) {
            return Err(reject(403, "Forbidden (not a domain served here)"));
        }
        let mut shard = self.shard(&aor);
        let held = shard.bindings.get(&aor).cloned().unwrap_or_default();
        let current = match held.iter().all(|b| b.expires_at > now) {
            true => Arc::clone(&held),
            false => Arc::new(unexpired(&held, now)),
        };
        let removed = shard.removed.get(&aor).map_or(&[][..], Vec::as_slice);
        let reg = process_for(cfg, now, req, aor, source, current, removed)?;
        let per_source = (!source_exempt).then_some(cfg.max_bindings_per_source);
        match self
            .counts
            .admit(&held, &reg.bindings, cfg.max_bindings, per_source)
        {
            Ok(()) => {}
            Err(limit) => {
                let (status, reason) = match limit {
                    Limit::Total => (503, "Service Unavailable (location table full)"),
                    Limit::Source => (403, "Forbidden (too many bindings from this address)"),
                };
                return Err(Rejection {
                    limit: true,
                    ..reject(status, reason)
                });
            }
        }
        remember_removed(&mut shard.removed, now, req, &reg);
        let list = Arc::clone(&reg.bindings);
        match shard.bindings.get_mut(&reg.aor) {
            _ if list.is_empty() => drop(shard.bindings.remove(&reg.aor)),
            Some(slot) => *slot = list,
            None => drop(shard.bindings.insert(reg.aor.clone(), list)),
        }
        Ok(reg)
    }

    /// Takes back a registration whose `changes` could not be stored: each contact they
    /// touch that still holds what they made gets its binding from `before` (the AOR's, as
    /// the registration found them) again; one a later registration changed since is left
    /// to that one. Several that failed together, undone newest first, restore the state
    /// before the oldest.
    pub fn undo(&self, before: &[Binding], changes: &[Change]) {
        let Some(aor) = changes.first().map(Change::aor) else {
            return;
        };
        let mut shard = self.shard(aor);
        let held = shard.bindings.remove(aor).unwrap_or_default();
        let mut list = Vec::clone(&held);
        for change in changes {
            let now = list.iter().position(|b| b.is_changed_by(change));
            let untouched = match (change, now) {
                (Change::Upsert(made), Some(i)) => list[i] == *made,
                (Change::Remove { .. }, None) => true,
                _ => false,
            };
            if !untouched {
                continue;
            }
            list.retain(|b| !b.is_changed_by(change));
            list.extend(before.iter().filter(|b| b.is_changed_by(change)).cloned());
        }
        list.sort_by_key(|b| std::cmp::Reverse(b.q));
        self.counts.apply(&held, &list);
        if !list.is_empty() {
            shard.bindings.insert(aor.to_owned(), Arc::new(list));
        }
    }

    /// Restores bindings (after a restart).
    pub fn load(&self, bindings: impl IntoIterator<Item = Binding>) {
        for b in bindings {
            let mut shard = self.shard(&b.aor);
            let list = Arc::make_mut(shard.bindings.entry(b.aor.clone()).or_default());
            let same = |x: &Binding| x.contact == b.contact && x.reg_id == b.reg_id;
            let old: Vec<Binding> = list.iter().filter(|x| same(x)).cloned().collect();
            self.counts.apply(&old, std::slice::from_ref(&b));
            list.retain(|x| !same(x));
            // Exactly as large as needed, as a registration makes it: most AORs hold one.
            list.reserve_exact(1);
            list.push(b);
            list.sort_by_key(|b| std::cmp::Reverse(b.q));
        }
    }

    /// The unexpired bindings of an AOR, by q descending.
    pub fn lookup(&self, aor: &str, now: u64) -> Vec<Binding> {
        self.shard(aor)
            .bindings
            .get(aor)
            .map(|v| unexpired(v, now))
            .unwrap_or_default()
    }

    /// Removes every binding of an AOR.
    pub fn remove_aor(&self, aor: &str) -> Vec<Change> {
        let gone = self.shard(aor).bindings.remove(aor).unwrap_or_default();
        self.counts.apply(&gone, &[]);
        gone.iter().map(Binding::removal).collect()
    }

    /// Drops expired bindings; returns their removals.
    pub fn purge_expired(&self, now: u64) -> Vec<Change> {
        let mut out = Vec::new();
        for s in &self.shards {
            let mut shard = s.lock().unwrap_or_else(|p| p.into_inner());
            shard.removed.retain(|_, gone| {
                gone.retain(|r| now.saturating_sub(r.at) <= REMEMBER_REMOVED);
                !gone.is_empty()
            });
            shard.bindings.retain(|_, list| {
                if list.iter().all(|b| b.expires_at > now) {
                    return true;
                }
                let list = Arc::make_mut(list);
                list.retain(|b| {
                    let live = b.expires_at > now;
                    if !live {
                        self.counts.apply(std::slice::from_ref(b), &[]);
                        out.push(b.removal());
                    }
                    live
                });
                !list.is_empty()
            });
        }
        out
    }

    /// The unexpired bindings `keep` chooses (cloned under each shard's lock: only those).
    pub fn matching(&self, now: u64, keep: impl Fn(&Binding) -> bool) -> Vec<Binding> {
        self.shards
            .iter()
            .flat_map(|s| {
                s.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .bindings
                    .values()
                    .flat_map(|list| list.iter())
                    .filter(|b| b.expires_at > now && keep(b))
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Removes binding `b` if it is still as given (not refreshed since); its removal.
    pub fn remove_binding(&self, b: &Binding) -> Option<Change> {
        let mut shard = self.shard(&b.aor);
        let list = shard.bindings.get_mut(&b.aor)?;
        let i = list.iter().position(|x| x == b)?;
        let gone = Arc::make_mut(list).remove(i);
        if list.is_empty() {
            shard.bindings.remove(&b.aor);
        }
        self.counts.apply(std::slice::from_ref(&gone), &[]);
        Some(gone.removal())
    }

    /// Every unexpired binding.
    pub fn all(&self, now: u64) -> Vec<Binding> {
        self.shards
            .iter()
            .flat_map(|s| {
                s.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .bindings
                    .values()
                    .flat_map(|list| list.iter())
                    .filter(|b| b.expires_at > now)
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Number of bindings (expired ones not yet purged included).
    pub fn len(&self) -> usize {
        self.counts.total()
    }

    /// True when there is no binding.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The unexpired bindings of `list`.
fn unexpired(list: &[Binding], now: u64) -> Vec<Binding> {
    list.iter()
        .filter(|b| b.expires_at > now)
        .cloned()
        .collect()
}

/// Remembers the contacts a registration removed, with its Call-ID and CSeq; a contact it
/// binds again is no longer removed. Entries older than [`REMEMBER_REMOVED`] go.
fn remember_removed(
    removed: &mut HashMap<String, Vec<Removed>, ahash::RandomState>,
    now: u64,
    req: &Message,
    reg: &Registered,
) {
    let removes = reg
        .changes
        .iter()
        .any(|c| matches!(c, Change::Remove { .. }));
    if !removes && (removed.is_empty() || !removed.contains_key(&reg.aor)) {
        return; // the common case: nothing to remember or forget
    }
    let (Ok(call_id), Ok(cseq)) = (req.call_id(), req.cseq()) else {
        return;
    };
    let gone = removed.entry(reg.aor.clone()).or_default();
    gone.retain(|r| now.saturating_sub(r.at) <= REMEMBER_REMOVED);
    for change in &reg.changes {
        gone.retain(|r| !crate::uri_equal(&r.contact, change.contact()));
        if let Change::Remove { contact, .. } = change {
            gone.push(Removed {
                contact: contact.clone(),
                call_id: call_id.to_owned(),
                cseq: cseq.seq,
                at: now,
            });
        }
    }
    if gone.is_empty() {
        removed.remove(&reg.aor);
    }
}
