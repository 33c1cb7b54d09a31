//! What a call may do when it fails: retries, backoff, rate limits, timeouts.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::transport::retry_budget::RetryBudget;

/// How failed calls are retried. Only calls that are safe to repeat are
/// retried (GETs and `POST /authenticates`; `POST /onboardings` only when the
/// caller opts in with [`CallExt::retry_unsafe`](crate::CallExt::retry_unsafe)),
/// and only on transport errors, timeouts, 429, 502, 503 and 504; never on
/// 400, 403 or 404. Retries also draw on the client's retry budget
/// ([`RetryBudget`], on by default), so that an outage is not multiplied by
/// the attempts of every call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    budget: Option<RetryBudget>,
    initial_backoff: Duration,
    max_backoff: Duration,
    max_retry_after: Duration,
    jitter: bool,
}

impl Default for RetryPolicy {
    /// Three attempts, exponential backoff from 100 ms to 5 s with jitter,
    /// `Retry-After` honoured up to 30 s, retries drawn from the default
    /// [`RetryBudget`] (200 tokens, 5 a retry, 10 a timeout's retry).
    fn default() -> Self {
        Self {
            max_attempts: 3,
            budget: Some(RetryBudget::default()),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Total attempts, the first included (at least 1).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The first backoff and the largest one.
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// The longest `Retry-After` that is waited out; a longer one is returned
    /// to the caller as [`Error::RateLimited`](crate::Error::RateLimited).
    pub fn with_max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }

    /// Sizes the client's retry budget. On a client's policy
    /// ([`ClientBuilder::retry`](crate::ClientBuilder::retry)) this sets the
    /// bucket every clone shares; on one call's policy it only says whether
    /// that call's retries draw on the client's bucket.
    pub fn with_retry_budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Retries draw on no budget: every call may make all its attempts, even
    /// while NexHealth is down.
    pub fn without_retry_budget(mut self) -> Self {
        self.budget = None;
        self
    }

    /// The retry budget's sizes, if retries draw on one.
    pub fn retry_budget(&self) -> Option<RetryBudget> {
        self.budget
    }

    /// Turns jitter off (for reproducible tests).
    pub fn without_jitter(mut self) -> Self {
        self.jitter = false;
        self
    }

    /// Total attempts allowed.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The longest `Retry-After` waited out.
    pub fn max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// The waits between attempts.
    pub(crate) fn delays(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        let mut builder = ExponentialBuilder::new()
            .with_min_delay(self.initial_backoff)
            .with_max_delay(self.max_backoff)
            .with_max_times(self.max_attempts.saturating_sub(1) as usize);
        if self.jitter {
            builder = builder.with_jitter();
        }
        builder.build()
    }
}

/// Settings for one call, set with [`CallExt`](crate::CallExt).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallOptions {
    /// Overrides the client's retry policy.
    pub retry: Option<RetryPolicy>,
    /// Overrides the client's whole-request timeout (each attempt).
    pub timeout: Option<Duration>,
    /// Overrides the client's deadline for the whole call: every attempt,
    /// every wait for budget or `Retry-After`, the token exchange and the
    /// replay after a 401.
    pub deadline: Option<Duration>,
    /// Allows retrying a call that is not idempotent (`POST /onboardings`).
    pub retry_unsafe: bool,
}
