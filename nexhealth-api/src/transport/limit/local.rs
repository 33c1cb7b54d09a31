//! The in-process limiter: two governor limiters (per second, per minute)
//! and a pause set by a 429.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{Quota, RateLimiter};

use super::{Exhausted, RateLimit, sleep_within};

type Direct = governor::DefaultDirectRateLimiter;

pub(crate) struct LocalLimiter {
    second: Direct,
    minute: Direct,
    paused_until: Mutex<Option<Instant>>,
}

impl LocalLimiter {
    /// The default in-process limiter: each window's quota, with bursts up to
    /// the quota (governor's GCRA).
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self::with(
            Quota::per_second(limit.per_second),
            Quota::per_minute(limit.per_minute),
        )
    }

    fn with(second: Quota, minute: Quota) -> Self {
        Self {
            second: RateLimiter::direct(second),
            minute: RateLimiter::direct(minute),
            paused_until: Mutex::new(None),
        }
    }

    pub(crate) async fn acquire(&self, deadline: Option<Instant>) -> Result<(), Exhausted> {
        let paused = self
            .paused_until
            .lock()
            .ok()
            .and_then(|p| *p)
            .map(|until| until.saturating_duration_since(Instant::now()));
        if let Some(pause) = paused.filter(|p| !p.is_zero()) {
            sleep_within(pause, deadline).await?;
        }
        let ready = async {
            self.minute.until_ready().await;
            self.second.until_ready().await;
        };
        match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline.into(), ready)
                .await
                .map_err(|_| Exhausted),
            None => {
                ready.await;
                Ok(())
            }
        }
    }

    pub(crate) fn pause(&self, pause: Duration) {
        let until = Instant::now() + pause;
        if let Ok(mut slot) = self.paused_until.lock()
            && slot.is_none_or(|current| current < until)
        {
            *slot = Some(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_wait_respects_the_deadline() {
        let limiter = LocalLimiter::new(RateLimit::new(1, 60));
        limiter.acquire(None).await.unwrap();
        let deadline = Instant::now() + Duration::from_millis(100);
        assert!(limiter.acquire(Some(deadline)).await.is_err());
        assert!(Instant::now() < deadline + Duration::from_millis(100));
    }

    #[tokio::test]
    async fn a_pause_delays_the_next_request() {
        let limiter = LocalLimiter::new(RateLimit::NEXHEALTH_DEFAULT);
        limiter.pause(Duration::from_millis(300));
        let started = Instant::now();
        limiter.acquire(None).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(290));
    }
}
