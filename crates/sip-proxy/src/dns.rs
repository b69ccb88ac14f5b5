//! Answers to the lookups the core asked the IO layer for: where a host name leads (RFC 3263:
//! NAPTR, SRV, A/AAAA), as transport addresses in the order to try them.
//!
//! The core never waits on DNS: a next hop named by a host that is not here yet turns into
//! [`Command::Resolve`](crate::Command::Resolve); the IO layer resolves it, hands the answer
//! to [`Core::dns_answer`](crate::Core::dns_answer) and calls [`Core::resume`](crate::Core::resume)
//! (the request's script or the transaction's failure route runs again and finds the answer
//! here).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use sip_message::Protocol;

use crate::target::Lookup;

/// Most names kept; past it, expired answers are dropped first, then everything.
const MAX_ENTRIES: usize = 4096;
/// Shortest time an answer is kept: a request handed back right after its lookup must find it.
pub(crate) const MIN_TTL: Duration = Duration::from_secs(5);

/// What is known about a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Where it leads, best first (empty: nowhere).
    Known(Vec<(Protocol, SocketAddr)>),
    /// Nothing yet: ask the IO layer.
    Unknown,
}

#[derive(Debug)]
struct Entry {
    addrs: Vec<(Protocol, SocketAddr)>,
    until: Instant,
}

/// Answered lookups, shared by all IO tasks (read-mostly).
#[derive(Debug, Default)]
pub(crate) struct DnsCache {
    entries: RwLock<HashMap<Lookup, Entry>>,
}

impl DnsCache {
    /// The answer to `lookup` if it has not expired at `now`.
    pub(crate) fn get(&self, now: Instant, lookup: &Lookup) -> Answer {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        match entries.get(lookup) {
            Some(e) if e.until > now => Answer::Known(e.addrs.clone()),
            _ => Answer::Unknown,
        }
    }

    /// Stores an answer (no addresses: the name leads nowhere) for at least [`MIN_TTL`].
    pub(crate) fn insert(
        &self,
        now: Instant,
        lookup: &Lookup,
        addrs: Vec<(Protocol, SocketAddr)>,
        ttl: Duration,
    ) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| e.until > now);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        let until = now + ttl.max(MIN_TTL);
        entries.insert(lookup.clone(), Entry { addrs, until });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(host: &str) -> Lookup {
        Lookup {
            host: host.into(),
            port: None,
            transport: None,
            secure: false,
        }
    }

    #[test]
    fn answers_expire_and_misses_are_kept() {
        let c = DnsCache::default();
        let t = Instant::now();
        assert_eq!(c.get(t, &name("a.example")), Answer::Unknown);
        let to = (Protocol::Tcp, "192.0.2.1:5070".parse().unwrap());
        c.insert(t, &name("a.example"), vec![to], Duration::from_secs(60));
        c.insert(t, &name("nx.example"), vec![], Duration::ZERO);
        assert_eq!(c.get(t, &name("a.example")), Answer::Known(vec![to]));
        let nx = name("nx.example");
        assert_eq!(c.get(t + MIN_TTL / 2, &nx), Answer::Known(vec![]));
        assert_eq!(c.get(t + MIN_TTL, &nx), Answer::Unknown);
        let later = t + Duration::from_secs(61);
        assert_eq!(c.get(later, &name("a.example")), Answer::Unknown);
        let other_port = Lookup {
            port: Some(5060),
            ..name("a.example")
        };
        assert_eq!(c.get(t, &other_port), Answer::Unknown, "another lookup");
    }

    #[test]
    fn bounded() {
        let c = DnsCache::default();
        let t = Instant::now();
        for i in 0..MAX_ENTRIES + 10 {
            let n = name(&format!("h{i}.example"));
            c.insert(t, &n, vec![], Duration::from_secs(60));
        }
        assert!(c.entries.read().unwrap().len() <= MAX_ENTRIES);
    }
}
