//! The sliding log both limiters keep in process: the times requests were
//! (or will be) sent in the last minute, oldest first.
//!
//! One log serves both windows. A request may go at `t` only when fewer than
//! `per_second` entries lie after `t - 1 s` and fewer than `per_minute` after
//! `t - 60 s`, counting every entry after that point, later reservations
//! included. Any window of one second or one minute that holds the new entry
//! then holds at most the limit: the strictest reading of NexHealth's limits,
//! with no burst above them. governor's cell-rate algorithm cannot say "at
//! most n in any sliding window" (its burst doubles the count in a window
//! that straddles a refill), which is why this log replaced it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The two windows NexHealth counts requests in.
pub(crate) const WINDOWS: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(60)];

/// One request in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    /// When the request is counted: its send time plus the margin for the
    /// time it takes to reach NexHealth.
    pub(crate) at: Instant,
    /// Unique within the process (from 1); names the grant when it is handed
    /// to Redis. 0 stands for requests other processes made (a fallback's
    /// seed): counted here, never handed over (they are not in the grants
    /// a limiter keeps for that).
    pub(crate) id: u64,
}

/// The sorted log and the limits it keeps.
#[derive(Debug)]
pub(crate) struct SlidingLog {
    limits: [usize; 2],
    entries: VecDeque<Entry>,
}

impl SlidingLog {
    /// A log that admits `limits[0]` requests in any second and `limits[1]`
    /// in any minute (each at least 1).
    pub(crate) fn new(limits: [usize; 2]) -> Self {
        Self {
            limits: [limits[0].max(1), limits[1].max(1)],
            entries: VecDeque::new(),
        }
    }

    /// The limits it keeps.
    #[cfg(test)]
    pub(crate) fn limits(&self) -> [usize; 2] {
        self.limits
    }

    /// Forgets entries that no window starting after `now - 60 s` can hold.
    fn prune(&mut self, now: Instant) {
        while self
            .entries
            .front()
            .is_some_and(|e| now.saturating_duration_since(e.at) >= WINDOWS[1])
        {
            self.entries.pop_front();
        }
    }

    /// The earliest instant, not before `now` nor `not_before`, at which one
    /// more request keeps both windows within their limits.
    pub(crate) fn earliest(&mut self, now: Instant, not_before: Instant) -> Instant {
        self.prune(now);
        let mut slot = now.max(not_before);
        for (limit, window) in self.limits.into_iter().zip(WINDOWS) {
            if self.entries.len() >= limit {
                // Every entry after `slot - window` counts: the limit-th newest
                // must have left the window by `slot`.
                let leaving = self.entries[self.entries.len() - limit].at;
                slot = slot.max(leaving + window);
            }
        }
        slot
    }

    /// Reserves the earliest slot from `now`, not before `not_before`, as
    /// grant `id` counted `margin` after it; or, when that slot would come
    /// after `bound`, takes nothing and answers how long until it.
    pub(crate) fn reserve(
        &mut self,
        now: Instant,
        not_before: Instant,
        bound: Option<Instant>,
        margin: Duration,
        id: u64,
    ) -> Result<Entry, Duration> {
        let slot = self.earliest(now, not_before);
        if bound.is_some_and(|bound| slot > bound) {
            return Err(slot - now);
        }
        let entry = Entry {
            at: slot + margin,
            id,
        };
        self.insert(entry);
        Ok(Entry { at: slot, ..entry })
    }

    /// Adds `entry` in its place (the log stays sorted by time).
    pub(crate) fn insert(&mut self, entry: Entry) {
        let index = self.entries.partition_point(|e| e.at <= entry.at);
        self.entries.insert(index, entry);
    }

    /// Removes the entry `id` (a reservation given up). Searches from the
    /// newest end, where reservations are.
    pub(crate) fn remove(&mut self, id: u64) -> bool {
        match self.entries.iter().rposition(|e| e.id == id) {
            Some(index) => self.entries.remove(index).is_some(),
            None => false,
        }
    }

    /// Empties the log.
    #[cfg(test)]
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    /// How many entries it holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// How many entries lie after `since`.
    #[cfg(test)]
    pub(crate) fn count_after(&self, since: Instant) -> usize {
        self.entries.iter().filter(|e| e.at > since).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(at: Instant, id: u64) -> Entry {
        Entry { at, id }
    }

    /// Takes slots as fast as the log allows, from `start`, and answers them.
    fn fill(log: &mut SlidingLog, start: Instant, n: u64) -> Vec<Instant> {
        (0..n)
            .map(|id| {
                let slot = log.earliest(start, start);
                log.insert(grant(slot, id));
                slot
            })
            .collect()
    }

    /// The most slots in any window of `length` starting at a slot.
    fn most_in_window(slots: &[Instant], length: Duration) -> usize {
        (0..slots.len())
            .map(|i| {
                slots[i..]
                    .iter()
                    .filter(|s| **s < slots[i] + length)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn no_burst_above_either_limit_in_any_sliding_window() {
        let start = Instant::now();
        let mut log = SlidingLog::new([10, 25]);
        let slots = fill(&mut log, start, 60);
        assert_eq!(most_in_window(&slots, WINDOWS[0]), 10);
        assert_eq!(most_in_window(&slots, WINDOWS[1]), 25);
        // The 11th waits exactly until the 1st leaves its second.
        assert_eq!(slots[10], slots[0] + WINDOWS[0]);
        // The 26th waits until the 1st leaves its minute.
        assert_eq!(slots[25], slots[0] + WINDOWS[1]);
    }

    #[test]
    fn a_window_edge_one_millisecond_early_is_refused() {
        let start = Instant::now();
        let mut log = SlidingLog::new([1, 100]);
        log.insert(grant(start, 0));
        let slot = log.earliest(start, start);
        assert_eq!(slot, start + Duration::from_secs(1));
        assert!(slot > start + Duration::from_millis(999));
    }

    #[test]
    fn a_reservation_given_up_frees_its_slot() {
        let start = Instant::now();
        let mut log = SlidingLog::new([1, 100]);
        log.insert(grant(start, 0));
        let later = log.earliest(start, start);
        log.insert(grant(later, 1));
        assert!(log.remove(1));
        assert!(!log.remove(1));
        assert_eq!(log.earliest(start, start), later);
        assert_eq!(log.count_after(start - Duration::from_secs(1)), 1);
    }

    #[test]
    fn entries_out_of_order_are_kept_sorted_and_counted() {
        let start = Instant::now();
        let mut log = SlidingLog::new([2, 100]);
        log.insert(grant(start + Duration::from_millis(300), 0));
        log.insert(grant(start, 1));
        // Both count: the next slot is a second after the older one... of the
        // two newest, the older (at `start`).
        assert_eq!(log.earliest(start, start), start + WINDOWS[0]);
        assert_eq!(log.limits(), [2, 100]);
        log.clear();
        assert_eq!(log.earliest(start, start), start);
    }

    #[test]
    fn entries_a_minute_old_are_forgotten() {
        let now = Instant::now();
        let Some(old) = now.checked_sub(WINDOWS[1] + Duration::from_millis(1)) else {
            return;
        };
        let mut log = SlidingLog::new([5, 5]);
        for id in 0..1_000 {
            log.insert(grant(old, id));
        }
        log.insert(grant(now, 1_000));
        assert_eq!(log.earliest(now, now), now);
        assert_eq!(log.len(), 1, "the log holds a minute, not every grant ever");
    }

    #[test]
    fn a_pause_is_a_lower_bound() {
        let start = Instant::now();
        let mut log = SlidingLog::new([5, 5]);
        let later = start + Duration::from_millis(700);
        assert_eq!(log.earliest(start, later), later);
    }
}
