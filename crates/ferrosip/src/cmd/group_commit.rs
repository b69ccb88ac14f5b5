//! When the binding writer waits for company before a commit (group commit).

use std::time::{Duration, Instant};

/// Most jobs in one transaction. It also bounds the burst of 200 OKs released by one
/// commit: a client behind one socket (a registrar front end, a load generator) must not
/// have its receive buffer overrun by them.
pub(crate) const MAX_BATCH: usize = 64;

/// What the writer does before its next batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Waits for a job, and takes it (with any that came with it) at once.
    Wait,
    /// Sleeps out the window, then takes what came.
    Gather,
    /// Takes what is queued now: a backlog, or a full batch, needs no wait for more.
    Take,
}

/// Decides, batch after batch, whether the binding writer sleeps out its window before the
/// next commit. Busy (REGISTERs come two or more per window), it does: one wake-up and one
/// transaction serve them all. Quiet, it commits each REGISTER as it comes: a window's wait
/// would add its whole length to the 200 OK, and a timer's wake-up, for no company.
#[derive(Debug)]
pub(crate) struct GroupCommit {
    window: Duration,
    busy: bool,
    /// When the last batch was taken.
    last: Option<Instant>,
}

impl GroupCommit {
    /// Quiet at first; a zero `window` is never busy.
    pub(crate) fn new(window: Duration) -> Self {
        GroupCommit {
            window,
            busy: false,
            last: None,
        }
    }

    /// What to do before the next batch, with `queued` jobs in the channel and `backlog`
    /// when the last batch left some behind.
    pub(crate) fn next(&self, queued: usize, backlog: bool) -> Next {
        match self.busy {
            false => Next::Wait,
            true if backlog || queued >= MAX_BATCH => Next::Take,
            true => Next::Gather,
        }
    }

    /// A batch of `jobs` was taken at `now`, as [`next`] said. Quiet, two jobs at once, or
    /// one within half a window of the last batch, make it busy; busy, a batch of fewer
    /// than two (a window that gathered one, or a backlog's last) makes it quiet. A job is
    /// any the writer is handed, the shutdown's flush included.
    ///
    /// [`next`]: Self::next
    pub(crate) fn taken(&mut self, jobs: usize, now: Instant) {
        let close = self
            .last
            .is_some_and(|t| now.saturating_duration_since(t) <= self.window / 2);
        self.busy = !self.window.is_zero()
            && match self.busy {
                true => jobs >= 2,
                false => jobs >= 2 || (jobs == 1 && close),
            };
        self.last = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_millis(20);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn busy(g: &GroupCommit) -> bool {
        g.next(0, false) == Next::Gather
    }

    #[test]
    fn sparse_registers_are_committed_as_they_come() {
        let t = Instant::now();
        let mut g = GroupCommit::new(WINDOW);
        for i in 0..5 {
            g.taken(1, t + ms(30 * i));
            assert!(!busy(&g), "one every 30 ms, window 20 ms");
        }
    }

    #[test]
    fn two_per_window_gather_over_windows_until_a_window_brings_one() {
        let t = Instant::now();
        let mut g = GroupCommit::new(WINDOW);
        g.taken(1, t);
        g.taken(1, t + ms(10));
        assert!(busy(&g), "a second within half a window");
        g.taken(3, t + ms(30));
        assert!(busy(&g));
        g.taken(2, t + ms(50));
        assert!(busy(&g));
        g.taken(1, t + ms(70));
        assert!(!busy(&g), "a window that gathered one");
        g.taken(0, t + ms(200));
        assert!(!busy(&g));
    }

    #[test]
    fn jobs_that_queued_during_a_commit_make_it_busy() {
        let mut g = GroupCommit::new(WINDOW);
        g.taken(4, Instant::now());
        assert!(busy(&g));
    }

    #[test]
    fn half_a_window_apart_is_close() {
        let t = Instant::now();
        let mut g = GroupCommit::new(WINDOW);
        g.taken(1, t);
        g.taken(1, t + ms(11));
        assert!(!busy(&g), "just over half a window");
        g.taken(1, t + ms(21));
        assert!(busy(&g), "exactly half a window");
    }

    #[test]
    fn a_busy_window_that_brings_nothing_makes_it_quiet() {
        let t = Instant::now();
        let mut g = GroupCommit::new(WINDOW);
        g.taken(5, t);
        assert!(busy(&g));
        g.taken(0, t + WINDOW);
        assert_eq!(g.next(0, false), Next::Wait);
    }

    #[test]
    fn busy_with_a_backlog_or_a_full_batch_queued_takes_at_once() {
        let mut g = GroupCommit::new(WINDOW);
        g.taken(2, Instant::now());
        assert_eq!(g.next(0, true), Next::Take);
        assert_eq!(g.next(MAX_BATCH, false), Next::Take);
        assert_eq!(g.next(MAX_BATCH - 1, false), Next::Gather);
        let quiet = GroupCommit::new(WINDOW);
        assert_eq!(
            quiet.next(MAX_BATCH, true),
            Next::Wait,
            "quiet: a job is taken as it comes"
        );
    }

    #[test]
    fn a_zero_window_is_never_busy() {
        let t = Instant::now();
        let mut g = GroupCommit::new(Duration::ZERO);
        g.taken(1, t);
        g.taken(64, t);
        assert!(!busy(&g));
    }
}
