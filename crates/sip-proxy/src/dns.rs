//! Answers to the host-name lookups (A/AAAA) the core asked the IO layer for.
//!
//! The core never waits on DNS: a next hop named by a host that is not here yet turns into
//! [`Command::Resolve`](crate::Command::Resolve); the IO layer resolves it, hands the answer
//! to [`Core::dns_answer`](crate::Core::dns_answer) and calls [`Core::resume`](crate::Core::resume)
//! (the request's script or the transaction's failure route runs again and finds the answer
//! here).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Most names kept; past it, expired answers are dropped first, then everything.
const MAX_ENTRIES: usize = 4096;
/// Shortest time an answer is kept: a request handed back right after its lookup must find it.
pub(crate) const MIN_TTL: Duration = Duration::from_secs(5);

/// What is known about a host name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Its addresses (empty: it does not resolve).
    Known(Vec<IpAddr>),
    /// Nothing yet: ask the IO layer.
    Unknown,
}

#[derive(Debug)]
struct Entry {
    addrs: Vec<IpAddr>,
    until: Instant,
}

/// Resolved names, shared by all IO tasks (read-mostly).
#[derive(Debug, Default)]
pub(crate) struct DnsCache {
    entries: RwLock<HashMap<String, Entry>>,
}

impl DnsCache {
    /// The answer for `host` (lower case) if it has not expired at `now`.
    pub(crate) fn get(&self, now: Instant, host: &str) -> Answer {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        match entries.get(host) {
            Some(e) if e.until > now => Answer::Known(e.addrs.clone()),
            _ => Answer::Unknown,
        }
    }

    /// Stores an answer (no addresses: the name does not resolve) for at least [`MIN_TTL`].
    pub(crate) fn insert(&self, now: Instant, host: &str, addrs: Vec<IpAddr>, ttl: Duration) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| e.until > now);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        let until = now + ttl.max(MIN_TTL);
        entries.insert(host.to_ascii_lowercase(), Entry { addrs, until });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_expire_and_misses_are_kept() {
        let c = DnsCache::default();
        let t = Instant::now();
        assert_eq!(c.get(t, "a.example"), Answer::Unknown);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        c.insert(t, "A.example", vec![ip], Duration::from_secs(60));
        c.insert(t, "nx.example", vec![], Duration::ZERO);
        assert_eq!(c.get(t, "a.example"), Answer::Known(vec![ip]));
        assert_eq!(c.get(t + MIN_TTL / 2, "nx.example"), Answer::Known(vec![]));
        assert_eq!(c.get(t + MIN_TTL, "nx.example"), Answer::Unknown);
        assert_eq!(
            c.get(t + Duration::from_secs(61), "a.example"),
            Answer::Unknown
        );
    }

    #[test]
    fn bounded() {
        let c = DnsCache::default();
        let t = Instant::now();
        for i in 0..MAX_ENTRIES + 10 {
            c.insert(t, &format!("h{i}.example"), vec![], Duration::from_secs(60));
        }
        assert!(c.entries.read().unwrap().len() <= MAX_ENTRIES);
    }
}
