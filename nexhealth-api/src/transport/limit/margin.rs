//! The margin between taking a slot and the request reaching NexHealth.
//!
//! NexHealth counts a request when it arrives; the limiter counts it when it
//! takes the slot. A scheduler that wakes a task late, a busy CPU, a slow
//! connection or a queue in front of NexHealth all move the arrival later,
//! and two requests a window apart by the limiter's clock can arrive less
//! than a window apart. Each grant is therefore counted at its slot plus a
//! margin: the longest time from a slot to the answer seen in the last
//! [`MEMORY`] (an upper bound of the time to arrive), a quarter more, never
//! less than the configured floor and never more than [`MAX_MARGIN`].

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest margin: a longer measured delay is still counted as this.
///
/// Value: 1 s.
pub const MAX_MARGIN: Duration = Duration::from_secs(1);
/// How long a measured delay is remembered.
pub(crate) const MEMORY: Duration = Duration::from_secs(30);
/// The most measurements kept (older ones leave first).
const MAX_SAMPLES: usize = 4_096;

/// The running estimate: a sliding maximum over the last [`MEMORY`].
#[derive(Debug)]
pub(crate) struct Margin {
    floor: Duration,
    /// Decreasing delays with the time each was seen: the front is the maximum.
    samples: Mutex<VecDeque<(Instant, Duration)>>,
}

impl Margin {
    /// An estimate that never goes below `floor` (itself capped at [`MAX_MARGIN`]).
    pub(crate) fn new(floor: Duration) -> Self {
        Self {
            floor: floor.min(MAX_MARGIN),
            samples: Mutex::new(VecDeque::new()),
        }
    }

    /// Records that a request whose slot was `slot` was answered at `answered`.
    pub(crate) fn observe(&self, slot: Instant, answered: Instant) {
        let delay = answered.saturating_duration_since(slot).min(MAX_MARGIN);
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        while samples.back().is_some_and(|(_, d)| *d <= delay) {
            samples.pop_back();
        }
        if samples.len() >= MAX_SAMPLES {
            samples.pop_front();
        }
        samples.push_back((answered, delay));
    }

    /// The margin to count a grant taken now with.
    pub(crate) fn current(&self) -> Duration {
        let now = Instant::now();
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        while samples
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > MEMORY)
        {
            samples.pop_front();
        }
        let measured = samples.front().map_or(Duration::ZERO, |(_, d)| *d);
        (measured + measured / 4).max(self.floor).min(MAX_MARGIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_until_something_slower_is_seen() {
        let margin = Margin::new(Duration::from_millis(100));
        assert_eq!(margin.current(), Duration::from_millis(100));
        let slot = Instant::now();
        margin.observe(slot, slot + Duration::from_millis(40));
        assert_eq!(margin.current(), Duration::from_millis(100));
        margin.observe(slot, slot + Duration::from_millis(400));
        margin.observe(slot, slot + Duration::from_millis(200));
        assert_eq!(margin.current(), Duration::from_millis(500));
    }

    #[test]
    fn never_more_than_the_cap_whatever_is_measured() {
        let margin = Margin::new(Duration::MAX);
        assert_eq!(margin.current(), MAX_MARGIN);
        let slot = Instant::now();
        margin.observe(slot, slot + Duration::from_secs(3_600));
        assert_eq!(margin.current(), MAX_MARGIN);
        // An answer before its slot (a clock that went back) counts as zero.
        margin.observe(slot + Duration::from_secs(5), slot);
        assert_eq!(margin.current(), MAX_MARGIN);
    }

    #[test]
    fn old_measurements_are_forgotten() {
        let margin = Margin::new(Duration::ZERO);
        let Some(long_ago) = Instant::now().checked_sub(MEMORY + Duration::from_secs(1)) else {
            return;
        };
        margin.observe(long_ago, long_ago + Duration::from_millis(800));
        assert_eq!(margin.current(), Duration::ZERO);
    }
}
