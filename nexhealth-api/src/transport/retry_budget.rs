//! The retry budget: a token bucket per client, shared by its clones, that
//! keeps an outage from multiplying the load (aws-sdk-rust's standard retry
//! mode does the same). A retry spends tokens, a timeout's retry more; a call
//! that ends answered by a working server (any status below 500 that is not
//! retried) gives back what its retries cost, or one token when it needed
//! none, and the bucket
//! also refills with time, so that retries come back after a long outage
//! even before a call succeeds. A retry that is never sent (its call was
//! dropped while it waited) gives its tokens back. An empty bucket means no retry: the call
//! fails with what it got.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The sizes of the retry budget ([`RetryPolicy::with_retry_budget`](crate::RetryPolicy::with_retry_budget)).
///
/// The defaults, and why:
/// - **capacity 200 tokens, a retry costs 5**: 40 retries in a row before
///   retries stop. During a full outage 200 calls then send at most
///   200 + 40 (+ the refill) requests, under 1.3 per call, where 3 attempts
///   a call would send 3 per call. aws-sdk-rust keeps 500 tokens for a
///   client that may call many services; one NexHealth key is limited to
///   100 requests a second, so a smaller bucket protects the shared budget.
/// - **a timeout's retry costs 10**: a timeout held a connection and the
///   server's time, and is the likelier sign of an overloaded service (as
///   in aws-sdk-rust).
/// - **a call that ends answered below 500 gives back what its retries cost,
///   or 1 when it needed none** (aws-sdk-rust's rule; a 500 after a 503 is
///   the same outage and gives nothing back): when NexHealth is back but
///   flaky, a retry that works is free, so the bucket stays full and every
///   call keeps its retries; only retries that fail again drain it.
/// - **1 token a second over time**: after an outage long enough to empty
///   the bucket, one retry every 5 seconds is allowed again before any call
///   succeeds, and the bucket is full again after about 3 minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryBudget {
    /// The most tokens held (and the tokens at start).
    pub capacity: u32,
    /// What a retry after an error answer or a failed connection costs.
    pub retry_cost: u32,
    /// What a retry after a timeout costs.
    pub timeout_cost: u32,
    /// What a call answered without needing a retry gives back (one that
    /// needed retries gives back what they cost).
    pub success_refill: u32,
    /// Tokens added per second, whatever the calls do (at most the capacity).
    pub refill_per_second: u32,
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self {
            capacity: 200,
            retry_cost: 5,
            timeout_cost: 10,
            success_refill: 1,
            refill_per_second: 1,
        }
    }
}

impl RetryBudget {
    /// The bucket's refill rate, bounded by the capacity a second.
    fn rate(&self) -> f64 {
        f64::from(self.refill_per_second.min(self.capacity))
    }
}

/// Why a retry is wanted: a timeout costs more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryKind {
    Error,
    Timeout,
}

/// The bucket of one client.
#[derive(Debug)]
pub(crate) struct RetryTokens {
    budget: RetryBudget,
    state: Mutex<(f64, Instant)>,
}

impl RetryTokens {
    pub(crate) fn new(budget: RetryBudget) -> Self {
        Self::new_at(budget, Instant::now())
    }

    /// A full bucket whose refill is counted from `now`.
    fn new_at(budget: RetryBudget, now: Instant) -> Self {
        Self {
            budget,
            state: Mutex::new((f64::from(budget.capacity), now)),
        }
    }

    /// Adds the refill since the last look (none for a `now` before it, at
    /// most the capacity), then hands the tokens to `f`.
    fn with_state_at<T>(&self, now: Instant, f: impl FnOnce(&mut f64) -> T) -> T {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = now.saturating_duration_since(state.1).as_secs_f64();
        state.0 = (state.0 + elapsed * self.budget.rate()).min(f64::from(self.budget.capacity));
        state.1 = state.1.max(now);
        f(&mut state.0)
    }

    /// Takes the cost of one retry and answers it; `None` (nothing taken)
    /// when too few tokens are left.
    pub(crate) fn try_spend(&self, kind: RetryKind) -> Option<u32> {
        self.try_spend_at(kind, Instant::now())
    }

    fn try_spend_at(&self, kind: RetryKind, now: Instant) -> Option<u32> {
        let cost = match kind {
            RetryKind::Error => self.budget.retry_cost,
            RetryKind::Timeout => self.budget.timeout_cost,
        };
        self.with_state_at(now, |tokens| {
            if *tokens >= f64::from(cost) {
                *tokens -= f64::from(cost);
                Some(cost)
            } else {
                None
            }
        })
    }

    /// A call ended with an answer worth no retry, after retries that cost
    /// `spent` tokens (0: it needed none).
    pub(crate) fn succeeded(&self, spent: u32) {
        self.succeeded_at(spent, Instant::now());
    }

    fn succeeded_at(&self, spent: u32, now: Instant) {
        let refill = if spent == 0 {
            self.budget.success_refill
        } else {
            spent
        };
        self.give_back_at(refill, now);
    }

    /// Gives back `cost` taken by [`try_spend`](Self::try_spend) for a retry
    /// that was never sent (its call was dropped while it waited), at most
    /// up to the capacity.
    pub(crate) fn refund(&self, cost: u32) {
        self.give_back_at(cost, Instant::now());
    }

    fn give_back_at(&self, tokens: u32, now: Instant) {
        let (tokens, capacity) = (f64::from(tokens), f64::from(self.budget.capacity));
        self.with_state_at(now, |left| *left = (*left + tokens).min(capacity));
    }

    /// The tokens left now.
    pub(crate) fn left(&self) -> f64 {
        self.left_at(Instant::now())
    }

    fn left_at(&self, now: Instant) -> f64 {
        self.with_state_at(now, |tokens| *tokens)
    }

    /// The bucket's sizes.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn budget(&self) -> RetryBudget {
        self.budget
    }
}

/// How long an empty bucket takes to allow one retry again.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn time_to_one_retry(budget: &RetryBudget) -> Option<Duration> {
    let rate = budget.rate();
    (rate > 0.0).then(|| Duration::from_secs_f64(f64::from(budget.retry_cost) / rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(capacity: u32) -> RetryBudget {
        RetryBudget {
            capacity,
            refill_per_second: 0,
            ..RetryBudget::default()
        }
    }

    #[test]
    fn retries_spend_and_successes_refill_up_to_the_capacity() {
        let tokens = RetryTokens::new(budget(20));
        assert_eq!(tokens.left(), 20.0);
        assert_eq!(tokens.try_spend(RetryKind::Timeout), Some(10));
        assert_eq!(tokens.left(), 10.0);
        assert_eq!(tokens.try_spend(RetryKind::Error), Some(5));
        assert_eq!(tokens.try_spend(RetryKind::Error), Some(5));
        assert_eq!(tokens.left(), 0.0);
        assert_eq!(tokens.try_spend(RetryKind::Error), None, "empty: no retry");
        for _ in 0..4 {
            tokens.succeeded(0);
        }
        assert_eq!(tokens.try_spend(RetryKind::Error), None, "4 < 5");
        assert_eq!(tokens.left(), 4.0, "a refused retry takes nothing");
        tokens.succeeded(0);
        assert_eq!(tokens.try_spend(RetryKind::Error), Some(5));
        // A retried call that ends answered gives back what it spent.
        tokens.succeeded(5);
        assert_eq!(tokens.left(), 5.0);
        for _ in 0..100 {
            tokens.succeeded(0);
        }
        assert_eq!(tokens.left(), 20.0, "never above the capacity");
        assert_eq!(tokens.budget().capacity, 20);
    }

    /// The tokens held, as stored: no refill or cap applied on the way.
    fn stored(tokens: &RetryTokens) -> f64 {
        tokens.state.lock().unwrap().0
    }

    /// Spends retries at `now` until the bucket refuses one (bounded: a
    /// bucket that never runs out fails the test rather than hanging it).
    fn spend_all(tokens: &RetryTokens, now: Instant) {
        for _ in 0..=tokens.budget().capacity {
            if tokens.try_spend_at(RetryKind::Error, now).is_none() {
                return;
            }
        }
        panic!("the bucket never ran out");
    }

    #[test]
    fn the_refill_is_exactly_the_rate_times_the_time_elapsed() {
        let t0 = Instant::now();
        let budget = RetryBudget {
            refill_per_second: 3,
            ..RetryBudget::default()
        };
        assert_eq!(budget.rate(), 3.0);
        let tokens = RetryTokens::new_at(budget, t0);
        spend_all(&tokens, t0);
        assert_eq!(tokens.left_at(t0), 0.0);
        for (secs, expected) in [(0.5, 1.5), (7.0, 21.0), (40.0, 120.0)] {
            let left = tokens.left_at(t0 + Duration::from_secs_f64(secs));
            assert!(
                (left - expected).abs() < 1e-9,
                "{secs} s at 3 a second: {left}, not {expected}"
            );
        }
        // Counted once: looking again at the same instant adds nothing, and
        // a `now` before the last look neither adds nor takes.
        let at_40 = t0 + Duration::from_secs(40);
        assert!((tokens.left_at(at_40) - 120.0).abs() < 1e-9);
        assert!((tokens.left_at(t0) - 120.0).abs() < 1e-9);
        assert!((tokens.left_at(at_40 + Duration::from_secs(1)) - 123.0).abs() < 1e-9);
        // The default, 1 a second: an empty bucket allows a retry after 5 s.
        let tokens = RetryTokens::new_at(RetryBudget::default(), t0);
        spend_all(&tokens, t0);
        let almost = t0 + Duration::from_millis(4_999);
        assert_eq!(tokens.try_spend_at(RetryKind::Error, almost), None);
        let five = t0 + Duration::from_secs(5);
        assert_eq!(tokens.try_spend_at(RetryKind::Error, five), Some(5));
        assert!(tokens.left_at(five).abs() < 1e-9);
    }

    #[test]
    fn the_refill_never_passes_the_capacity() {
        let t0 = Instant::now();
        let budget = RetryBudget {
            capacity: 20,
            refill_per_second: 2,
            ..RetryBudget::default()
        };
        let tokens = RetryTokens::new_at(budget, t0);
        assert_eq!(tokens.try_spend_at(RetryKind::Timeout, t0), Some(10));
        // A long idle time: full, not 10 + 2 * 3600.
        let later = t0 + Duration::from_secs(3_600);
        assert_eq!(tokens.left_at(later), 20.0);
        assert_eq!(stored(&tokens), 20.0);
        // Just enough time: full, not past it.
        assert_eq!(tokens.try_spend_at(RetryKind::Timeout, later), Some(10));
        let refilled = later + Duration::from_secs(6);
        assert_eq!(tokens.left_at(refilled), 20.0);
        assert_eq!(stored(&tokens), 20.0);
        // A success or a refund on a full bucket leaves it full, as stored
        // too (the next look would cap it again and hide the excess).
        tokens.succeeded_at(0, refilled);
        assert_eq!(stored(&tokens), 20.0);
        tokens.succeeded_at(15, refilled);
        assert_eq!(stored(&tokens), 20.0);
        tokens.refund(10);
        assert_eq!(stored(&tokens), 20.0);
        // Nearly full: topped up to the capacity, not over.
        assert_eq!(tokens.try_spend_at(RetryKind::Error, refilled), Some(5));
        tokens.succeeded_at(10, refilled);
        assert_eq!(stored(&tokens), 20.0);
    }

    #[test]
    fn one_retry_comes_back_after_its_cost_over_the_rate() {
        let at = |refill_per_second, retry_cost| {
            time_to_one_retry(&RetryBudget {
                refill_per_second,
                retry_cost,
                ..RetryBudget::default()
            })
        };
        assert_eq!(at(2, 5), Some(Duration::from_millis(2_500)));
        assert_eq!(at(4, 10), Some(Duration::from_millis(2_500)));
        assert_eq!(at(1, 5), Some(Duration::from_secs(5)));
        assert_eq!(at(0, 5), None, "no refill: never");
    }

    #[test]
    fn a_refund_gives_back_exactly_the_cost() {
        let tokens = RetryTokens::new(budget(20));
        assert_eq!(tokens.try_spend(RetryKind::Timeout), Some(10));
        assert_eq!(tokens.try_spend(RetryKind::Error), Some(5));
        assert_eq!(tokens.left(), 5.0);
        tokens.refund(5);
        assert_eq!(tokens.left(), 10.0);
        tokens.refund(10);
        assert_eq!(tokens.left(), 20.0);
        tokens.refund(10);
        assert_eq!(tokens.left(), 20.0, "never above the capacity");
    }

    #[test]
    fn the_bucket_refills_with_time_bounded_by_its_capacity() {
        let tokens = RetryTokens::new(RetryBudget {
            refill_per_second: 1_000,
            ..budget(10)
        });
        assert!(tokens.try_spend(RetryKind::Timeout).is_some());
        assert!(tokens.try_spend(RetryKind::Error).is_none());
        // At most the capacity a second: 10 a second, so 5 take 0.5 s.
        std::thread::sleep(Duration::from_millis(200));
        assert!(tokens.try_spend(RetryKind::Error).is_none(), "2 tokens");
        std::thread::sleep(Duration::from_millis(400));
        assert!(tokens.try_spend(RetryKind::Error).is_some(), "refilled");
        let still = RetryBudget {
            refill_per_second: 0,
            ..budget(10)
        };
        assert_eq!(time_to_one_retry(&still), None);
        let huge = RetryBudget {
            refill_per_second: u32::MAX,
            ..budget(10)
        };
        assert_eq!(huge.rate(), 10.0);
        assert_eq!(
            time_to_one_retry(&RetryBudget::default()),
            Some(Duration::from_secs(5))
        );
    }
}
