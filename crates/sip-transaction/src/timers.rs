//! Timer values of RFC 3261 §17 (Table 4), from the configurable T1, T2 and T4.

use std::time::{Duration, Instant};

/// The base timer values; every transaction timer derives from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate (default 500 ms).
    pub t1: Duration,
    /// Longest retransmit interval for non-INVITE requests and INVITE responses (default 4 s).
    pub t2: Duration,
    /// Longest time a message stays in the network (default 5 s).
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// 64·T1: timers B, F, H, J (unreliable), L and M.
    pub fn timeout(&self) -> Duration {
        self.t1 * 64
    }

    /// Timer D: at least 32 s over an unreliable transport, zero over a reliable one.
    pub fn timer_d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.timeout().max(Duration::from_secs(32))
        }
    }

    /// Timers I and K: T4 over an unreliable transport, zero over a reliable one.
    pub fn linger(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.t4
        }
    }
}

/// A retransmission timer with its current interval (timers A, E and G).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retransmit {
    pub(crate) at: Instant,
    pub(crate) interval: Duration,
}

impl Retransmit {
    pub(crate) fn start(now: Instant, interval: Duration) -> Self {
        Retransmit {
            at: now + interval,
            interval,
        }
    }

    /// Doubles the interval, capped at `cap` (timer A has no cap: pass `None`).
    pub(crate) fn backoff(&mut self, now: Instant, cap: Option<Duration>) {
        self.interval = cap.map_or(self.interval * 2, |c| (self.interval * 2).min(c));
        self.at = now + self.interval;
    }
}

/// The earliest of some optional deadlines.
pub(crate) fn earliest(deadlines: &[Option<Instant>]) -> Option<Instant> {
    deadlines.iter().flatten().min().copied()
}

/// True when an optional deadline has passed.
pub(crate) fn due(deadline: Option<Instant>, now: Instant) -> bool {
    deadline.is_some_and(|d| d <= now)
}
