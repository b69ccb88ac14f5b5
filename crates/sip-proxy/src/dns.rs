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
pub use sip_dns::Found;

/// Most lookups kept; past it, expired answers are dropped first, then the half that
/// expires soonest (not all: whoever makes us look up many names cannot flush the rest).
const MAX_ENTRIES: usize = 4096;
/// Shortest time an answer is kept: a request handed back right after its lookup must find it.
pub(crate) const MIN_TTL: Duration = Duration::from_secs(5);

/// What is known about a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Where it leads (empty: nowhere), ordered for each request ([`sip_dns::order`]).
    Known(Vec<Found>),
    /// Nothing yet: ask the IO layer.
    Unknown,
}

#[derive(Debug)]
struct Entry {
    addrs: Vec<Found>,
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
    pub(crate) fn insert(&self, now: Instant, lookup: &Lookup, addrs: Vec<Found>, ttl: Duration) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| e.until > now);
            if entries.len() >= MAX_ENTRIES {
                let cut = soonest_half(entries.values().map(|e| e.until));
                entries.retain(|_, e| e.until > cut);
            }
        }
        let until = now + ttl.max(MIN_TTL);
        entries.insert(lookup.clone(), Entry { addrs, until });
    }
}

/// Most next hops remembered as failed; past it, those forgotten already go first, then
/// the half noted longest ago.
const MAX_FAILED: usize = 1024;
/// How long a next hop that failed (no answer, a transport error, 503) is tried last.
pub(crate) const FAILED_FOR: Duration = Duration::from_secs(30);

/// Next hops that failed lately (Kamailio's destination blocklist): tried after the others
/// a lookup gives, never left out, so one failure never blocks a whole domain.
#[derive(Debug, Default)]
pub(crate) struct Failed {
    until: RwLock<HashMap<(Protocol, SocketAddr), Instant>>,
}

impl Failed {
    /// `hop` failed at `now`.
    pub(crate) fn note(&self, now: Instant, hop: (Protocol, SocketAddr)) {
        let mut until = self.until.write().unwrap_or_else(|p| p.into_inner());
        if until.len() >= MAX_FAILED {
            until.retain(|_, u| *u > now);
            if until.len() >= MAX_FAILED {
                let cut = soonest_half(until.values().copied());
                until.retain(|_, u| *u > cut);
            }
        }
        until.insert(hop, now + FAILED_FOR);
    }

    /// `hops` with those that failed lately moved last, each part in its order.
    pub(crate) fn order(
        &self,
        now: Instant,
        hops: Vec<(Protocol, SocketAddr)>,
    ) -> Vec<(Protocol, SocketAddr)> {
        let until = self.until.read().unwrap_or_else(|p| p.into_inner());
        if until.is_empty() {
            return hops;
        }
        let (failed, fine): (Vec<_>, Vec<_>) = hops
            .into_iter()
            .partition(|h| until.get(h).is_some_and(|u| *u > now));
        fine.into_iter().chain(failed).collect()
    }
}

/// The time at or before which the half of `times` that comes soonest falls (a table
/// full of live entries drops that half).
fn soonest_half(times: impl Iterator<Item = Instant>) -> Instant {
    let mut times: Vec<Instant> = times.collect();
    let middle = times.len() / 2;
    let (_, cut, _) = times.select_nth_unstable(middle);
    *cut
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
        let to = Found {
            protocol: Protocol::Tcp,
            rank: 0,
            priority: 0,
            weight: 0,
            addrs: vec!["192.0.2.1:5070".parse().unwrap()],
        };
        c.insert(
            t,
            &name("a.example"),
            vec![to.clone()],
            Duration::from_secs(60),
        );
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
    fn a_failed_hop_goes_last_for_a_while_and_is_never_left_out() {
        let f = Failed::default();
        let t = Instant::now();
        let a = (Protocol::Udp, "192.0.2.1:5060".parse().unwrap());
        let b = (Protocol::Udp, "192.0.2.2:5060".parse().unwrap());
        assert_eq!(f.order(t, vec![a, b]), [a, b]);
        f.note(t, a);
        assert_eq!(f.order(t, vec![a, b]), [b, a]);
        f.note(t, b);
        assert_eq!(f.order(t, vec![a, b]), [a, b], "all failed: all kept");
        assert_eq!(f.order(t + FAILED_FOR, vec![b, a]), [b, a], "forgotten");
    }

    #[test]
    fn bounded_and_a_flood_keeps_what_lives_longest() {
        let c = DnsCache::default();
        let t = Instant::now();
        // A name that lives an hour, then a flood of short-lived ones.
        c.insert(t, &name("kept.example"), vec![], Duration::from_secs(3600));
        for i in 0..MAX_ENTRIES * 3 {
            let n = name(&format!("h{i}.example"));
            c.insert(t, &n, vec![], Duration::from_secs(60));
            assert!(c.entries.read().unwrap().len() <= MAX_ENTRIES);
        }
        assert_eq!(c.get(t, &name("kept.example")), Answer::Known(vec![]));
    }
}
