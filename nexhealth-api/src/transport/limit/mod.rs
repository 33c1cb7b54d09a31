//! Keeping an API key under NexHealth's limits: 100 requests a second and
//! 2,000 a minute per key.
//!
//! [`RateLimit`] alone is an in-process limiter (governor), shared by every
//! clone of one client: right for a single process. With the `redis` feature,
//! [`RedisRateLimit`] shares one budget between every client of every process
//! that uses the same Redis and the same API key: right for a fleet of
//! replicas. Both are given to [`ClientBuilder::rate_limit`](crate::ClientBuilder::rate_limit).
//!
//! Every attempt of a call waits for the budget before it is sent. The wait
//! counts against the call's timeout (a call whose budget does not come in
//! time fails with [`Error::Timeout`](crate::Error::Timeout)), and dropping a
//! call's future while it waits gives back nothing it did not take. A 429 seen
//! by any client pauses the others that share its limiter for the
//! `Retry-After` (or [`DEFAULT_COOLDOWN`]).

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use crate::Error;

mod local;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
mod sliding;

pub(crate) use local::LocalLimiter;
#[cfg(feature = "redis")]
pub use redis::RedisRateLimit;

/// How long every client sharing a limiter pauses after a 429 without `Retry-After`.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(1);

/// A client-side limit that keeps one API key under NexHealth's limits: the
/// per-second and per-minute windows at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per second.
    pub per_second: NonZeroU32,
    /// Requests per minute.
    pub per_minute: NonZeroU32,
}

impl RateLimit {
    /// NexHealth's documented default for these endpoints: 100 a second and 2,000 a minute.
    pub const NEXHEALTH_DEFAULT: Self = Self {
        per_second: NonZeroU32::new(100).expect("non-zero"),
        per_minute: NonZeroU32::new(2_000).expect("non-zero"),
    };

    /// A limit of `per_second` and `per_minute` requests (each at least 1).
    pub fn new(per_second: u32, per_minute: u32) -> Self {
        Self {
            per_second: NonZeroU32::new(per_second.max(1)).expect("at least 1"),
            per_minute: NonZeroU32::new(per_minute.max(1)).expect("at least 1"),
        }
    }
}

/// What [`ClientBuilder::rate_limit`](crate::ClientBuilder::rate_limit) takes:
/// a [`RateLimit`] for this process, or (feature `redis`) a
/// [`RedisRateLimit`] shared by every process.
#[derive(Debug, Clone)]
pub enum RateLimiter {
    /// An in-process limiter, shared by the clones of one client.
    Local(RateLimit),
    /// One budget in Redis, shared by every client of every process with the
    /// same Redis and API key.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    Redis(RedisRateLimit),
}

impl From<RateLimit> for RateLimiter {
    fn from(limit: RateLimit) -> Self {
        Self::Local(limit)
    }
}

#[cfg(feature = "redis")]
impl From<RedisRateLimit> for RateLimiter {
    fn from(limit: RedisRateLimit) -> Self {
        Self::Redis(limit)
    }
}

/// What a client's limiter is doing, from
/// [`Client::rate_limit_status`](crate::Client::rate_limit_status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitStatus {
    /// The budget is shared through Redis.
    pub shared: bool,
    /// A shared limiter is on its in-process fallback now.
    pub fallback_active: bool,
    /// How many times a shared limiter fell back since the client was built.
    pub fallbacks: u64,
}

/// The running limiter of a client.
pub(crate) enum Limiter {
    Local(LocalLimiter),
    #[cfg(feature = "redis")]
    Redis(Box<redis::RedisLimiter>),
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local(_) => f.write_str("Limiter::Local"),
            #[cfg(feature = "redis")]
            Self::Redis(_) => f.write_str("Limiter::Redis"),
        }
    }
}

impl Limiter {
    /// Starts the limiter `setting` asks for. `api_key` only names the shared
    /// budget (through a digest); it is never stored.
    #[cfg_attr(not(feature = "redis"), allow(unused_variables))]
    pub(crate) fn new(setting: RateLimiter, api_key: &str) -> Result<Self, Error> {
        match setting {
            RateLimiter::Local(limit) => Ok(Self::Local(LocalLimiter::new(limit))),
            #[cfg(feature = "redis")]
            RateLimiter::Redis(shared) => Ok(Self::Redis(Box::new(redis::RedisLimiter::new(
                shared, api_key,
            )?))),
        }
    }

    /// Waits for one request's budget, at most until `deadline`. Answers how
    /// long it waited, or the error to give the caller.
    pub(crate) async fn acquire(
        &self,
        operation: &'static str,
        deadline: Option<Instant>,
    ) -> Result<Duration, Error> {
        let started = Instant::now();
        let outcome = match self {
            Self::Local(local) => local.acquire(deadline).await,
            #[cfg(feature = "redis")]
            Self::Redis(shared) => shared.acquire(deadline).await,
        };
        let waited = started.elapsed();
        let span = tracing::Span::current();
        span.record("budget_wait_ms", waited.as_millis() as u64);
        span.record("limiter_fallback", self.fallback_active());
        match outcome {
            Ok(()) => Ok(waited),
            Err(Exhausted) => {
                tracing::debug!(
                    operation,
                    waited_ms = waited.as_millis() as u64,
                    "the rate-limit budget did not come before the call's timeout"
                );
                Err(Error::Timeout { operation })
            }
        }
    }

    /// A 429 was seen: every client sharing this limiter pauses for `pause`.
    pub(crate) async fn pause(&self, pause: Duration) {
        match self {
            Self::Local(local) => local.pause(pause),
            #[cfg(feature = "redis")]
            Self::Redis(shared) => shared.pause(pause).await,
        }
    }

    pub(crate) fn status(&self) -> RateLimitStatus {
        match self {
            Self::Local(_) => RateLimitStatus {
                shared: false,
                fallback_active: false,
                fallbacks: 0,
            },
            #[cfg(feature = "redis")]
            Self::Redis(shared) => RateLimitStatus {
                shared: true,
                fallback_active: shared.fallback_active(),
                fallbacks: shared.fallbacks(),
            },
        }
    }

    /// Whether a shared limiter is running on its in-process fallback.
    pub(crate) fn fallback_active(&self) -> bool {
        match self {
            Self::Local(_) => false,
            #[cfg(feature = "redis")]
            Self::Redis(shared) => shared.fallback_active(),
        }
    }
}

/// The budget did not come before the deadline.
#[derive(Debug)]
pub(crate) struct Exhausted;

/// Sleeps `wait`, or fails at once when that would pass `deadline`.
pub(crate) async fn sleep_within(
    wait: Duration,
    deadline: Option<Instant>,
) -> Result<(), Exhausted> {
    if let Some(deadline) = deadline
        && Instant::now() + wait > deadline
    {
        return Err(Exhausted);
    }
    tokio::time::sleep(wait).await;
    Ok(())
}
