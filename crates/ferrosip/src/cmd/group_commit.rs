//! When the binding writer waits for company before a commit (group commit).

use std::time::{Duration, Instant};

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

    /// True when the next batch is gathered over a window's sleep; false: it is taken as
    /// its first job comes.
    pub(crate) fn busy(&self) -> bool {
        self.busy
    }

    /// A batch of `jobs` was taken at `now` (after a window's sleep when [`busy`] was true).
    /// Quiet, two jobs at once, or one within half a window of the last batch, make it busy;
    /// busy, a window that gathered fewer than two makes it quiet.
    ///
    /// [`busy`]: Self::busy
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

    #[test]
    fn sparse_registers_are_committed_as_they_come() {
        let t = Instant::now();
        let mut g = GroupCommit::new(WINDOW);
        for i in 0..5 {
            g.taken(1, t + ms(30 * i));
            assert!(!g.busy(), "one every 30 ms, window 20 ms");
        }
    }

    #[test]
    fn two_per_window_gather_over_windows_until_a_window_brings_one() {
        let t = Instant::now();
        let mut g = GroupCommit::new(WINDOW);
        g.taken(1, t);
        g.taken(1, t + ms(10));
        assert!(g.busy(), "a second within half a window");
        g.taken(3, t + ms(30));
        assert!(g.busy());
        g.taken(2, t + ms(50));
        assert!(g.busy());
        g.taken(1, t + ms(70));
        assert!(!g.busy(), "a window that gathered one");
        g.taken(0, t + ms(200));
        assert!(!g.busy());
    }

    #[test]
    fn jobs_that_queued_during_a_commit_make_it_busy() {
        let mut g = GroupCommit::new(WINDOW);
        g.taken(4, Instant::now());
        assert!(g.busy());
    }

    #[test]
    fn a_zero_window_is_never_busy() {
        let t = Instant::now();
        let mut g = GroupCommit::new(Duration::ZERO);
        g.taken(1, t);
        g.taken(64, t);
        assert!(!g.busy());
    }
}
