//! Keeping an API key under NexHealth's limits: 100 requests in any sliding
//! second and 2,000 in any sliding minute per key, the strictest reading.
//!
//! Every client has a limiter unless it is built with
//! [`ClientBuilder::no_rate_limit`](crate::ClientBuilder::no_rate_limit): by
//! default an in-process one at [`RateLimit::NEXHEALTH_DEFAULT`], shared by
//! every clone of the client. With the `redis` feature, [`RedisRateLimit`]
//! shares one budget between every client of every process that uses the
//! same Redis and the same API key: right for a fleet of replicas.
//!
//! Both keep the same sliding windows and count each request a margin after
//! its slot, for the time it takes to reach NexHealth (see
//! [`RedisRateLimit::window_margin`] and [`MAX_MARGIN`]).
//!
//! Every attempt of a call waits for its budget before it is sent, at most
//! until the call's deadline and never longer than the client's
//! [`max_budget_wait`](crate::ClientBuilder::max_budget_wait). A call whose
//! budget would come later fails at once with
//! [`Error::BudgetUnavailable`](crate::Error::BudgetUnavailable), which says
//! when budget frees up; it took nothing. Dropping a call's future while it
//! waits gives back the slot it reserved. A 429 seen by any client pauses
//! the others that share its limiter for the `Retry-After` (or
//! [`DEFAULT_COOLDOWN`]), never longer than [`MAX_SHARED_PAUSE`].

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use crate::error::Error;

mod local;
mod log;
mod margin;
#[cfg(feature = "redis")]
mod redis;

pub(crate) use local::LocalLimiter;
pub use margin::MAX_MARGIN;
#[cfg(feature = "redis")]
pub(crate) use redis::key_id;
#[cfg(feature = "redis")]
pub use redis::{PROBE_INTERVAL, RedisRateLimit, SILENT_AFTER};

/// How long every client sharing a limiter pauses after a 429 without `Retry-After`.
///
/// Value: 1 s.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(1);

/// The longest pause a 429 sets for every client sharing a limiter, whatever
/// its `Retry-After` says. The limiter already keeps NexHealth's windows, so
/// a 429 means someone else spends this key's budget: a short pause lets it
/// drain without a hostile or mistaken `Retry-After` (a day, or 2^64 - 1
/// seconds) stopping a fleet. The call that received the 429 still gets
/// [`Error::RateLimited`](crate::Error::RateLimited) with the value the
/// server sent.
///
/// Value: 10 s.
pub const MAX_SHARED_PAUSE: Duration = Duration::from_secs(10);

/// Moves a pause's end to `pause` from now, at most [`MAX_SHARED_PAUSE`],
/// unless it already ends later.
pub(crate) fn extend_pause(paused_until: &mut Option<Instant>, pause: Duration) {
    let Some(until) = Instant::now().checked_add(pause.min(MAX_SHARED_PAUSE)) else {
        return;
    };
    if paused_until.is_none_or(|current| current < until) {
        *paused_until = Some(until);
    }
}

/// The least margin each grant is counted with after its slot, unless
/// configured otherwise (see [`MAX_MARGIN`] for the most).
///
/// Value: 100 ms.
pub const DEFAULT_WINDOW_MARGIN: Duration = Duration::from_millis(100);

/// A client-side limit that keeps one API key under NexHealth's limits: the
/// per-second and per-minute windows at once.
///
/// Serialized as `{"per_second": 100, "per_minute": 2000}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RateLimit {
    /// Requests in any sliding second.
    pub per_second: NonZeroU32,
    /// Requests in any sliding minute.
    pub per_minute: NonZeroU32,
}

impl RateLimit {
    /// NexHealth's documented default for these endpoints: 100 a second and 2,000 a minute.
    ///
    /// Value: 100 a second, 2,000 a minute.
    pub const NEXHEALTH_DEFAULT: Self = Self {
        per_second: NonZeroU32::new(100).expect("non-zero"),
        per_minute: NonZeroU32::new(2_000).expect("non-zero"),
    };

    /// A limit of `per_second` and `per_minute` requests (each at least 1).
    pub fn new(per_second: u32, per_minute: u32) -> Self {
        Self {
            per_second: NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN),
            per_minute: NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN),
        }
    }

    /// This limit split evenly between `replicas` processes that each limit
    /// only themselves (rounded down, at least 1 each): what each replica of a
    /// fleet without Redis should use.
    pub fn divided_among(self, replicas: u32) -> Self {
        let replicas = replicas.max(1);
        Self::new(
            self.per_second.get() / replicas,
            self.per_minute.get() / replicas,
        )
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::NEXHEALTH_DEFAULT
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
///
/// Serialized as its fields, the margin as `"margin_ms"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct RateLimitStatus {
    /// The budget is shared through Redis.
    pub shared: bool,
    /// A shared limiter is on its in-process fallback now.
    pub fallback_active: bool,
    /// How many times a shared limiter fell back since the client was built.
    pub fallbacks: u64,
    /// The margin each grant is counted with now (see [`MAX_MARGIN`]).
    #[serde(rename = "margin_ms", serialize_with = "millis")]
    pub margin: Duration,
}

fn millis<S: serde::Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
}

/// One request's budget, taken.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grant {
    /// When the request was allowed to go: the margin is measured from here.
    pub(crate) slot: Instant,
}

/// No budget before the bound; nothing was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unavailable {
    /// When budget is expected to be free, from now.
    pub(crate) free_in: Duration,
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
            RateLimiter::Local(limit) => {
                Ok(Self::Local(LocalLimiter::new(limit, DEFAULT_WINDOW_MARGIN)))
            }
            #[cfg(feature = "redis")]
            RateLimiter::Redis(shared) => Ok(Self::Redis(Box::new(redis::RedisLimiter::new(
                shared, api_key,
            )?))),
        }
    }

    /// Waits for one request's budget, at most until `bound`. Answers the
    /// grant, or the error to give the caller.
    pub(crate) async fn acquire(
        &self,
        operation: &'static str,
        bound: Option<Instant>,
    ) -> Result<Grant, Error> {
        let started = Instant::now();
        let outcome = match self {
            Self::Local(local) => local.acquire(bound).await,
            #[cfg(feature = "redis")]
            Self::Redis(shared) => shared.acquire(bound).await,
        };
        let waited = started.elapsed();
        let span = tracing::Span::current();
        span.record("budget_wait_ms", waited.as_millis() as u64);
        span.record("limiter_fallback", self.fallback_active());
        match outcome {
            Ok(grant) => Ok(grant),
            Err(Unavailable { free_in }) => {
                tracing::debug!(
                    operation,
                    waited_ms = waited.as_millis() as u64,
                    free_in_ms = free_in.as_millis() as u64,
                    "no rate-limit budget before the call's deadline"
                );
                Err(Error::BudgetUnavailable {
                    operation,
                    available_in: free_in,
                })
            }
        }
    }

    /// The request of `grant` was answered at `answered` (the margin learns from it).
    pub(crate) fn observe(&self, grant: &Grant, answered: Instant) {
        match self {
            Self::Local(local) => local.observe(grant, answered),
            #[cfg(feature = "redis")]
            Self::Redis(shared) => shared.observe(grant, answered),
        }
    }

    /// A 429 was seen: every client sharing this limiter pauses for `pause`,
    /// at most [`MAX_SHARED_PAUSE`].
    pub(crate) async fn pause(&self, pause: Duration) {
        let pause = pause.min(MAX_SHARED_PAUSE);
        match self {
            Self::Local(local) => local.pause(pause),
            #[cfg(feature = "redis")]
            Self::Redis(shared) => shared.pause(pause).await,
        }
    }

    pub(crate) fn status(&self) -> RateLimitStatus {
        match self {
            Self::Local(local) => RateLimitStatus {
                shared: false,
                fallback_active: self.fallback_active(),
                fallbacks: 0,
                margin: local.margin(),
            },
            #[cfg(feature = "redis")]
            Self::Redis(shared) => RateLimitStatus {
                shared: true,
                fallback_active: self.fallback_active(),
                fallbacks: shared.fallbacks(),
                margin: shared.margin(),
            },
        }
    }

    /// `local` or `redis`: the limiter's kind, for metrics.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Local(_) => "local",
            #[cfg(feature = "redis")]
            Self::Redis(_) => "redis",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_names_the_limiter_and_nothing_else() {
        let limiter = Limiter::new(RateLimit::NEXHEALTH_DEFAULT.into(), "secret-key").unwrap();
        assert_eq!(format!("{limiter:?}"), "Limiter::Local");
        let status = limiter.status();
        assert!(!status.shared && !status.fallback_active && status.fallbacks == 0);
    }
}
