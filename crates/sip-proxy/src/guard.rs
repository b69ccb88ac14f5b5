//! Abuse limits per source address: a flood of requests is dropped (like Kamailio's pike),
//! and a source that fails authentication too often is banned for a while (like fail2ban).
//! Trusted peers are exempt.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const SHARDS: usize = 16;
/// Sources tracked per shard before idle ones are forgotten.
const CLEAN_ABOVE: usize = 4096;

/// The limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardConfig {
    /// Requests per second from one address before the rest of that second is dropped;
    /// 0 turns the limit off.
    pub flood_limit: u32,
    /// Failed authentications from one address within `auth_window` before it is banned;
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

#[derive(Debug, Clone, Copy)]
struct Source {
    second: Instant,
    requests: u32,
    failures_since: Instant,
    failures: u32,
    banned_until: Option<Instant>,
    last_seen: Instant,
}

impl Source {
    fn new(now: Instant) -> Source {
        Source {
            second: now,
            requests: 0,
            failures_since: now,
            failures: 0,
            banned_until: None,
            last_seen: now,
        }
    }
}

/// What the core keeps per source address.
#[derive(Debug)]
pub(crate) struct Guard {
    cfg: GuardConfig,
    shards: Vec<Mutex<HashMap<IpAddr, Source>>>,
}

impl Guard {
    pub(crate) fn new(cfg: GuardConfig) -> Guard {
        Guard {
            cfg,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    fn with<R>(&self, ip: IpAddr, now: Instant, f: impl FnOnce(&mut Source) -> R) -> R {
        let i = match ip {
            IpAddr::V4(v) => v.octets()[3] as usize,
            IpAddr::V6(v) => v.octets()[15] as usize,
        } % SHARDS;
        let mut shard = self.shards[i].lock().unwrap_or_else(|p| p.into_inner());
        if shard.len() > CLEAN_ABOVE {
            let keep = self.cfg.auth_window.max(self.cfg.ban);
            shard.retain(|_, s| {
                s.banned_until.is_some_and(|b| b > now) || now.duration_since(s.last_seen) < keep
            });
        }
        let source = shard.entry(ip).or_insert_with(|| Source::new(now));
        source.last_seen = now;
        f(source)
    }

    /// Counts a request from `ip`; false when it must be dropped (banned, or flooding).
    pub(crate) fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        let limit = self.cfg.flood_limit;
        self.with(ip, now, |s| {
            if s.banned_until.is_some_and(|b| b > now) {
                return false;
            }
            if now.duration_since(s.second) >= Duration::from_secs(1) {
                s.second = now;
                s.requests = 0;
            }
            s.requests = s.requests.saturating_add(1);
            let flooding = limit > 0 && s.requests > limit;
            if flooding && s.requests == limit + 1 {
                tracing::warn!(%ip, limit, "request flood: dropping the rest of this second");
            }
            !flooding
        })
    }

    /// Counts a failed authentication from `ip`; bans it when there were too many.
    pub(crate) fn auth_failed(&self, ip: IpAddr, now: Instant) {
        let cfg = self.cfg;
        if cfg.auth_failures == 0 {
            return;
        }
        self.with(ip, now, |s| {
            if now.duration_since(s.failures_since) > cfg.auth_window {
                s.failures_since = now;
                s.failures = 0;
            }
            s.failures += 1;
            if s.failures >= cfg.auth_failures {
                tracing::warn!(%ip, failures = s.failures, ban = ?cfg.ban, "too many failed authentications: banned");
                s.banned_until = Some(now + cfg.ban);
                s.failures = 0;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
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
}
