//! What strangers can make the location table hold: bindings in all, and per source (an
//! IPv4 address, or an IPv6 /64 as a whole, the source of the REGISTER that made them).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::binding::Binding;

const SHARDS: usize = 16;

/// A limit a registration would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    /// `max_bindings`: the table is full.
    Total,
    /// `max_bindings_per_source`: this source holds its share.
    Source,
}

/// The source a binding counts against: its IPv4 address, or its IPv6 /64.
type SourceKey = u128;

fn key_of(source: &str) -> Option<SourceKey> {
    let addr = source.split_once(':')?.1;
    let ip = addr
        .parse::<SocketAddr>()
        .map(|a| a.ip())
        .or_else(|_| addr.parse::<IpAddr>())
        .ok()?;
    // An IPv4 peer of a dual-stack socket (::ffff:a.b.c.d) is that IPv4 address.
    Some(match ip.to_canonical() {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a) & !u128::from(u64::MAX) | 1,
    })
}

/// Bindings counted in all and per source.
#[derive(Debug)]
pub(crate) struct Counts {
    total: AtomicUsize,
    by_source: Vec<Mutex<HashMap<SourceKey, usize, ahash::RandomState>>>,
    hasher: ahash::RandomState,
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            total: AtomicUsize::new(0),
            by_source: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: ahash::RandomState::new(),
        }
    }
}

/// Per source, how many bindings an AOR's list gains (positive) or loses going from `old`
/// to `new`. Usually one source or two.
fn deltas(old: &[Binding], new: &[Binding]) -> Vec<(SourceKey, isize)> {
    let mut out: Vec<(SourceKey, isize)> = Vec::new();
    // A refresh from where the bindings came before (most REGISTERs): no source to read.
    if old.len() == new.len() && old.iter().zip(new).all(|(o, n)| o.source == n.source) {
        return out;
    }
    let changes = old
        .iter()
        .map(|b| (b, -1))
        .chain(new.iter().map(|b| (b, 1)));
    for (b, d) in changes {
        let Some(k) = key_of(&b.source) else {
            continue;
        };
        match out.iter_mut().find(|(x, _)| *x == k) {
            Some((_, n)) => *n += d,
            None => out.push((k, d)),
        }
    }
    out.retain(|(_, d)| *d != 0);
    out
}

impl Counts {
    fn shard(&self, k: SourceKey) -> MutexGuard<'_, HashMap<SourceKey, usize, ahash::RandomState>> {
        self.by_source[self.hasher.hash_one(k) as usize % SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Bindings in all.
    pub(crate) fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Counts an AOR's list going from `old` to `new`, unless that takes the table past
    /// `max_total` or a source it grows past `max_per_source` (`None`: that source is not
    /// limited); then nothing is counted. 0 is no limit.
    pub(crate) fn admit(
        &self,
        old: &[Binding],
        new: &[Binding],
        max_total: usize,
        max_per_source: Option<usize>,
    ) -> Result<(), Limit> {
        let grows = new.len().saturating_sub(old.len());
        if grows > 0 && max_total > 0 && self.total() + grows > max_total {
            return Err(Limit::Total);
        }
        let deltas = deltas(old, new);
        if let Some(max) = max_per_source.filter(|&m| m > 0) {
            for &(k, d) in deltas.iter().filter(|(_, d)| *d > 0) {
                let held = self.shard(k).get(&k).copied().unwrap_or(0);
                if held + d.unsigned_abs() > max {
                    return Err(Limit::Source);
                }
            }
        }
        self.apply_deltas(&deltas);
        self.apply_total(old.len(), new.len());
        Ok(())
    }

    /// Counts an AOR's list going from `old` to `new`, whatever the limits (bindings that
    /// expire, undone registrations, a restart's load).
    pub(crate) fn apply(&self, old: &[Binding], new: &[Binding]) {
        self.apply_deltas(&deltas(old, new));
        self.apply_total(old.len(), new.len());
    }

    fn apply_total(&self, old: usize, new: usize) {
        if new >= old {
            self.total.fetch_add(new - old, Ordering::Relaxed);
        } else {
            let _ = self
                .total
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                    Some(t.saturating_sub(old - new))
                });
        }
    }

    fn apply_deltas(&self, deltas: &[(SourceKey, isize)]) {
        for &(k, d) in deltas {
            let mut shard = self.shard(k);
            let n = shard.entry(k).or_insert(0);
            *n = n.saturating_add_signed(d);
            if *n == 0 {
                shard.remove(&k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(contact: &str, source: &str) -> Binding {
        Binding {
            aor: "sip:a@example.com".into(),
            contact: contact.into(),
            q: 1000,
            expires_at: 100,
            call_id: "c".into(),
            cseq: 1,
            path: Vec::new(),
            source: source.into(),
            via_at_source: false,
            user_agent: None,
            instance: None,
            reg_id: None,
        }
    }

    #[test]
    fn sources_are_addresses_and_ipv6_networks() {
        assert_eq!(key_of("udp:192.0.2.1:5060"), key_of("tcp:192.0.2.1:7000"));
        assert_ne!(key_of("udp:192.0.2.1:5060"), key_of("udp:192.0.2.2:5060"));
        assert_eq!(
            key_of("udp:[2001:db8::1]:5060"),
            key_of("udp:[2001:db8::ffff]:9")
        );
        assert_ne!(
            key_of("udp:[2001:db8::1]:5060"),
            key_of("udp:[2001:db8:0:1::1]:9")
        );
        assert_eq!(
            key_of("tcp:[::ffff:192.0.2.1]:5060"),
            key_of("udp:192.0.2.1:5060")
        );
        assert_ne!(
            key_of("tcp:[::ffff:192.0.2.1]:5060"),
            key_of("tcp:[::ffff:192.0.2.2]:5060")
        );
        assert_eq!(key_of("nonsense"), None);
    }

    #[test]
    fn limits_hold_and_removals_give_room_back() {
        let c = Counts::default();
        let a: Vec<Binding> = (0..3)
            .map(|i| binding(&format!("sip:{i}@h"), "udp:192.0.2.1:5060"))
            .collect();
        assert_eq!(c.admit(&[], &a, 0, Some(3)), Ok(()));
        let more = [a.clone(), vec![binding("sip:9@h", "udp:192.0.2.1:1")]].concat();
        assert_eq!(c.admit(&a, &more, 0, Some(3)), Err(Limit::Source));
        assert_eq!(c.admit(&a, &more, 3, None), Err(Limit::Total));
        assert_eq!(c.admit(&a, &more, 0, None), Ok(()), "an unlimited source");
        assert_eq!(c.total(), 4);
        // Another source has its own share; a refresh from elsewhere moves one.
        let other = [binding("sip:x@h", "udp:192.0.2.7:5060")];
        assert_eq!(c.admit(&[], &other, 0, Some(3)), Ok(()));
        c.apply(&more, &a[..1]);
        assert_eq!(c.total(), 2);
        assert_eq!(c.admit(&a[..1], &a, 0, Some(3)), Ok(()), "room again");
        // A refresh from the same source, even from another port, counts nothing.
        let refreshed: Vec<Binding> = a
            .iter()
            .map(|b| binding(&b.contact, "udp:192.0.2.1:7"))
            .collect();
        assert_eq!(deltas(&a, &a), vec![]);
        assert_eq!(deltas(&a, &refreshed), vec![]);
        assert_eq!(c.admit(&a, &a, 0, Some(3)), Ok(()));
        assert_eq!(c.total(), 4);
        assert_eq!(c.admit(&[], &other, 0, Some(1)), Err(Limit::Source));
    }
}
