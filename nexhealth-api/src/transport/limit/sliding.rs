//! The shared limiter's in-process fallback: the same sliding logs as the
//! Redis script, kept in this process.
//!
//! governor's cell-rate algorithm cannot say "at most n in any sliding window"
//! and cannot be told what the fleet already spent, so the fallback keeps
//! the two logs itself (a few dozen lines mirroring the Lua script): it can
//! then be seeded with this process's share of what Redis last reported, and
//! hand its grants back to Redis when Redis returns.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::RateLimit;

pub(crate) struct SlidingLog {
    limits: [usize; 2],
    windows: [Duration; 2],
    logs: Mutex<[VecDeque<Instant>; 2]>,
}

impl SlidingLog {
    /// `share` of `limit`, over windows of one second and one minute
    /// lengthened by `margin`.
    pub(crate) fn share_of(limit: RateLimit, share: f64, margin: Duration) -> Self {
        let part = |n: u32| ((f64::from(n) * share).floor() as usize).max(1);
        Self {
            limits: [part(limit.per_second.get()), part(limit.per_minute.get())],
            windows: [
                Duration::from_secs(1) + margin,
                Duration::from_secs(60) + margin,
            ],
            logs: Mutex::new([VecDeque::new(), VecDeque::new()]),
        }
    }

    /// Takes a slot now, or answers how long until one frees up.
    pub(crate) fn try_take(&self) -> Result<(), Duration> {
        let now = Instant::now();
        let Ok(mut logs) = self.logs.lock() else {
            return Err(Duration::from_millis(10));
        };
        let mut wait = Duration::ZERO;
        for i in 0..2 {
            let window = self.windows[i];
            while logs[i]
                .front()
                .is_some_and(|t| now.duration_since(*t) >= window)
            {
                logs[i].pop_front();
            }
            if logs[i].len() >= self.limits[i] {
                let leaving = logs[i][logs[i].len() - self.limits[i]];
                wait = wait.max(
                    (leaving + window).saturating_duration_since(now) + Duration::from_millis(1),
                );
            }
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        for log in logs.iter_mut() {
            log.push_back(now);
        }
        Ok(())
    }

    /// Records `counts` (per second, per minute) of the fleet's recent grants,
    /// scaled by this process's share, as if taken now: the fallback then
    /// cannot spend what the fleet already spent. Conservative: they leave the
    /// logs a whole window from now.
    pub(crate) fn seed(&self, counts: [u64; 2], share: f64) {
        let now = Instant::now();
        if let Ok(mut logs) = self.logs.lock() {
            for i in 0..2 {
                let n = ((counts[i] as f64 * share).ceil() as usize).min(self.limits[i]);
                logs[i].clear();
                logs[i].extend(std::iter::repeat_n(now, n));
            }
        }
    }

    /// The grants still inside the minute window, oldest first (to hand to
    /// Redis; they stay here as well).
    pub(crate) fn grants(&self) -> Vec<Instant> {
        let now = Instant::now();
        let Ok(logs) = self.logs.lock() else {
            return Vec::new();
        };
        let window = self.windows[1];
        logs[1]
            .iter()
            .copied()
            .filter(|t| now.duration_since(*t) < window)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_the_share_in_a_window_and_the_wait_until_one_leaves() {
        let log = SlidingLog::share_of(RateLimit::new(30, 10_000), 1.0 / 3.0, Duration::ZERO);
        for _ in 0..10 {
            assert!(log.try_take().is_ok());
        }
        let wait = log.try_take().unwrap_err();
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_millis(1_001),
            "{wait:?}"
        );
    }

    #[test]
    fn a_seed_spends_the_fleet_share_up_front() {
        let log = SlidingLog::share_of(RateLimit::new(100, 60), 0.5, Duration::ZERO);
        // The fleet spent 60 of 60 this minute: half of it is this process's.
        log.seed([0, 60], 0.5);
        assert!(log.try_take().is_err());
        assert_eq!(log.grants().len(), 30);
    }
}
