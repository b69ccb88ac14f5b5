//! Abuse limits per source: a flood of requests is dropped (like Kamailio's pike), and a
//! source that fails authentication too often is banned for a while (like fail2ban).
//! Trusted peers are exempt.
//!
//! A source is an IPv4 address or an IPv6 /64: a single host owns a /64 and can rotate its
//! addresses within it, so the whole /64 counts as one (as the hosts behind an IPv4 NAT do).
//! The cost of a request does not grow with the number of sources, and memory is bounded:
//! counters live in two generations per shard, the older forgotten at each turn (every
//! `auth_window`, at least a second, or when the newer is full: a spray of new sources
//! forgets the idle ones first), and bans in a table of their own in the order they end
//! (sources never push a ban out).

use ahash::RandomState;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const SHARDS: usize = 16;
/// Sources counted per shard in a generation: at most twice as many are tracked.
const GENERATION: usize = 2048;
/// Bans per shard; beyond that the ban closest to its end is lifted early.
const BANS: usize = 4096;

/// The limits, per source (an IPv4 address or an IPv6 /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardConfig {
    /// Requests per second from one source before the rest of that second is dropped;
    /// 0 turns the limit off.
    pub flood_limit: u32,
    /// Failed authentications from one source within `auth_window` before it is banned;
    /// 0 turns bans off.
    pub auth_failures: u32,
    /// The window failed authentications are counted in.
    pub auth_window: Duration,
    /// How long a ban lasts.
    pub ban: Duration,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            flood_limit: 5000,
            auth_failures: 10,
            auth_window: Duration::from_secs(60),
            ban: Duration::from_secs(300),
        }
    }
}

/// What is counted as one source: an IPv4 address (IPv4-mapped IPv6 included) or the /64 of
/// an IPv6 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key(IpAddr);

impl Key {
    fn of(ip: IpAddr) -> Key {
        match ip.to_canonical() {
            IpAddr::V6(v) => Key(IpAddr::V6(Ipv6Addr::from_bits(
                v.to_bits() & !u128::from(u64::MAX),
            ))),
            v4 => Key(v4),
        }
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v) => write!(f, "{v}"),
            IpAddr::V6(v) => write!(f, "{v}/64"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Source {
    second: Instant,
    requests: u32,
    failures_since: Instant,
    failures: u32,
}

impl Source {
    fn new(now: Instant) -> Source {
        Source {
            second: now,
            requests: 0,
            failures_since: now,
            failures: 0,
        }
    }
}

/// The sources of one shard.
#[derive(Debug, Default)]
struct Shard {
    /// Sources seen since the last turn.
    current: HashMap<Key, Source, RandomState>,
    /// Sources of the generation before: one seen again moves to `current`, the others are
    /// forgotten at the next turn.
    previous: HashMap<Key, Source, RandomState>,
    /// When `current` began.
    since: Option<Instant>,
    /// Banned sources, until when.
    bans: HashMap<Key, Instant, RandomState>,
    /// The bans in the order they end (all last as long).
    ending: VecDeque<(Instant, Key)>,
}

impl Shard {
    /// The counters of `key`, carried into the current generation or new. The generations
    /// turn every `period`, and early when the current one is full.
    fn source(&mut self, key: Key, now: Instant, period: Duration) -> &mut Source {
        let since = *self.since.get_or_insert(now);
        if now.duration_since(since) >= period {
            self.turn(now);
        }
        if !self.current.contains_key(&key) {
            let carried = self.previous.remove(&key);
            if self.current.len() >= GENERATION {
                self.turn(now);
            }
            if let Some(s) = carried {
                self.current.insert(key, s);
            }
        }
        self.current.entry(key).or_insert_with(|| Source::new(now))
    }

    /// Forgets the sources not seen for a whole generation. Their values need no drop, so
    /// freeing the map is one deallocation.
    fn turn(&mut self, now: Instant) {
        self.previous = std::mem::take(&mut self.current);
        self.since = Some(now);
    }

    /// True while `key` is banned; lifts the bans that ended, each once.
    fn banned(&mut self, key: Key, now: Instant) -> bool {
        while let Some(&(until, _)) = self.ending.front() {
            if until > now {
                break;
            }
            self.lift_first();
        }
        self.bans.get(&key).is_some_and(|&until| until > now)
    }

    /// Bans `key` until `until`; when the table is full, the ban closest to its end is
    /// lifted early to make room.
    fn ban(&mut self, key: Key, until: Instant) {
        while self.bans.len() >= BANS && !self.ending.is_empty() {
            self.lift_first();
        }
        self.bans.insert(key, until);
        self.ending.push_back((until, key));
    }

    fn lift_first(&mut self) {
        if let Some((until, key)) = self.ending.pop_front() {
            if self.bans.get(&key) == Some(&until) {
                self.bans.remove(&key);
            }
        }
    }
}

/// What the core keeps per source.
#[derive(Debug)]
pub(crate) struct Guard {
    cfg: GuardConfig,
    /// Spreads sources over the shards (keyed per process: no one can aim at one shard).
    hasher: RandomState,
    shards: Vec<Mutex<Shard>>,
}

impl Guard {
    pub(crate) fn new(cfg: GuardConfig) -> Guard {
        Guard {
            cfg,
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    fn shard(&self, key: Key) -> std::sync::MutexGuard<'_, Shard> {
        let i = self.hasher.hash_one(key) as usize % SHARDS;
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long counters are kept without being seen: the failure window (at least the
    /// second floods are counted in).
    fn period(&self) -> Duration {
        self.cfg.auth_window.max(Duration::from_secs(1))
    }

    /// Counts a request from `ip`; false when it must be dropped (banned, or flooding).
    pub(crate) fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        let key = Key::of(ip);
        let limit = self.cfg.flood_limit;
        let mut shard = self.shard(key);
        if shard.banned(key, now) {
            return false;
        }
        if limit == 0 {
            return true;
        }
        let s = shard.source(key, now, self.period());
        if now.duration_since(s.second) >= Duration::from_secs(1) {
            s.second = now;
            s.requests = 0;
        }
        s.requests = s.requests.saturating_add(1);
        if s.requests == limit + 1 {
            tracing::warn!(%ip, source = %key, limit, "request flood: dropping the rest of this second");
        }
        s.requests <= limit
    }

    /// Counts a failed authentication from `ip`; bans its source when there were too many.
    pub(crate) fn auth_failed(&self, ip: IpAddr, now: Instant) {
        let cfg = self.cfg;
        if cfg.auth_failures == 0 {
            return;
        }
        let key = Key::of(ip);
        let mut shard = self.shard(key);
        if shard.banned(key, now) {
            return;
        }
        let s = shard.source(key, now, self.period());
        if now.duration_since(s.failures_since) > cfg.auth_window {
            s.failures_since = now;
            s.failures = 0;
        }
        s.failures += 1;
        if s.failures >= cfg.auth_failures {
            // A stable line for fail2ban (README): the message, then `src=`.
            tracing::warn!(
                src = %ip,
                network = %key,
                failures = s.failures,
                seconds = cfg.ban.as_secs(),
                "source banned after failed authentications"
            );
            s.failures = 0;
            shard.ban(key, now + cfg.ban);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    impl Guard {
        /// Sources counted and bans kept, over all shards.
        fn tracked(&self) -> (usize, usize) {
            self.shards.iter().fold((0, 0), |(n, b), s| {
                let s = s.lock().unwrap();
                (n + s.current.len() + s.previous.len(), b + s.bans.len())
            })
        }
    }

    #[test]
    fn a_flood_is_cut_for_the_rest_of_the_second() {
        let g = Guard::new(GuardConfig {
            flood_limit: 3,
            ..GuardConfig::default()
        });
        let t = Instant::now();
        let a = ip("192.0.2.1");
        assert!((0..3).all(|_| g.allow(a, t)));
        assert!(!g.allow(a, t + Duration::from_millis(500)));
        assert!(
            g.allow(ip("192.0.2.2"), t),
            "another source is not affected"
        );
        assert!(
            g.allow(a, t + Duration::from_millis(1000)),
            "the next second"
        );
    }

    #[test]
    fn too_many_failed_authentications_ban_the_source_for_a_while() {
        let g = Guard::new(GuardConfig {
            auth_failures: 3,
            ..GuardConfig::default()
        });
        let t = Instant::now();
        let a = ip("2001:db8::7");
        g.auth_failed(a, t);
        g.auth_failed(a, t);
        assert!(g.allow(a, t), "two failures are tolerated");
        g.auth_failed(a, t);
        assert!(!g.allow(a, t + Duration::from_secs(299)), "banned");
        assert!(g.allow(a, t + Duration::from_secs(301)), "the ban ends");
        // Failures spread over more than the window do not add up.
        let b = ip("192.0.2.9");
        for i in 0..5u64 {
            g.auth_failed(b, t + Duration::from_secs(61 * i));
        }
        assert!(g.allow(b, t + Duration::from_secs(300)));
    }

    #[test]
    fn limits_of_zero_are_off() {
        let g = Guard::new(GuardConfig {
            flood_limit: 0,
            auth_failures: 0,
            ..GuardConfig::default()
        });
        let t = Instant::now();
        let a = ip("192.0.2.1");
        for _ in 0..100 {
            g.auth_failed(a, t);
        }
        assert!((0..10_000).all(|_| g.allow(a, t)));
    }

    #[test]
    fn a_ban_covers_the_whole_ipv6_64() {
        let g = Guard::new(GuardConfig {
            auth_failures: 2,
            ..GuardConfig::default()
        });
        let t = Instant::now();
        g.auth_failed(ip("2001:db8::1"), t);
        g.auth_failed(ip("2001:db8::1:0:0:1"), t);
        assert!(!g.allow(ip("2001:db8::1"), t), "banned");
        assert!(!g.allow(ip("2001:db8::2"), t), "another address of its /64");
        assert!(g.allow(ip("2001:db8:0:1::1"), t), "the next /64 is not");
        // An IPv4-mapped address is its IPv4 address, not a /64 of all of IPv4.
        g.auth_failed(ip("::ffff:192.0.2.1"), t);
        g.auth_failed(ip("192.0.2.1"), t);
        assert!(!g.allow(ip("192.0.2.1"), t));
        assert!(g.allow(ip("::ffff:192.0.2.2"), t));
    }

    #[test]
    fn a_flood_from_many_addresses_of_one_64_is_cut() {
        let g = Guard::new(GuardConfig {
            flood_limit: 100,
            ..GuardConfig::default()
        });
        let t = Instant::now();
        let addr = |net, host| IpAddr::from([0x2001, 0xdb8, 0, net, 0, 0, 0, host]);
        let allowed = (1..=1000).filter(|&h| g.allow(addr(0, h), t)).count();
        assert_eq!(allowed, 100, "the /64 counts as one source");
        assert!(g.allow(addr(1, 1), t), "another /64 is not affected");
    }

    #[test]
    fn tracked_sources_stay_bounded_and_a_ban_outlives_a_spray() {
        let g = Guard::new(GuardConfig {
            auth_failures: 1,
            ..GuardConfig::default()
        });
        let t = Instant::now();
        let banned = ip("192.0.2.1");
        g.auth_failed(banned, t);
        // 200 000 addresses once each, within the failure window (nothing is idle yet).
        for i in 0..200_000u32 {
            let at = t + Duration::from_micros(u64::from(i) * 100);
            assert!(g.allow(IpAddr::from((0x0a00_0000 + i).to_be_bytes()), at));
        }
        let (sources, bans) = g.tracked();
        assert!(
            sources <= SHARDS * 2 * GENERATION,
            "{sources} sources tracked"
        );
        assert_eq!(bans, 1);
        assert!(
            !g.allow(banned, t + Duration::from_secs(21)),
            "still banned"
        );
        // Bans are bounded too: beyond the table, those closest to their end go first.
        let t = t + Duration::from_secs(30);
        for i in 0..100_000u32 {
            g.auth_failed(IpAddr::from((0x0b00_0000 + i).to_be_bytes()), t);
        }
        let (sources, bans) = g.tracked();
        assert!(
            sources <= SHARDS * 2 * GENERATION,
            "{sources} sources tracked"
        );
        assert!(bans <= SHARDS * BANS, "{bans} bans kept");
        assert!(!g.allow(ip("11.1.134.159"), t), "the last ban holds");
    }
}
