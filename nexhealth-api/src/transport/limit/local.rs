//! The in-process limiter: one sliding log of reservations and a pause set
//! by a 429.
//!
//! A call reserves the earliest slot both windows allow and sleeps until
//! then; the reservations queue in order, so waiting callers are served
//! first come, first served and no wake-up is wasted. A call that would wait
//! past its bound takes nothing and fails at once with when budget frees up.
//! A call dropped while it waits gives its slot back.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::log::SlidingLog;
use super::margin::Margin;
use super::{Grant, RateLimit, Unavailable, extend_pause};

struct State {
    log: SlidingLog,
    paused_until: Option<Instant>,
    next_id: u64,
}

pub(crate) struct LocalLimiter {
    state: Mutex<State>,
    margin: Margin,
}

/// A slot reserved in the log, given back if the call is dropped before it.
struct Reservation<'a> {
    limiter: &'a LocalLimiter,
    id: Option<u64>,
}

impl Reservation<'_> {
    fn keep(mut self) {
        self.id = None;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.limiter.lock().log.remove(id);
        }
    }
}

impl LocalLimiter {
    /// `limit` in this process, each grant counted `margin_floor` or more
    /// after its slot (see [`Margin`]).
    pub(crate) fn new(limit: RateLimit, margin_floor: Duration) -> Self {
        Self {
            state: Mutex::new(State {
                log: SlidingLog::new([
                    limit.per_second.get() as usize,
                    limit.per_minute.get() as usize,
                ]),
                paused_until: None,
                next_id: 1,
            }),
            margin: Margin::new(margin_floor),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent between statements: a panic elsewhere
        // while it was held leaves nothing half-done.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for one request's slot, or fails at once when the slot would
    /// come after `bound`.
    pub(crate) async fn acquire(&self, bound: Option<Instant>) -> Result<Grant, Unavailable> {
        loop {
            let now = Instant::now();
            let (slot, id) = {
                let mut state = self.lock();
                let not_before = state.paused_until.unwrap_or(now);
                let id = state.next_id;
                state.next_id += 1;
                let margin = self.margin.current();
                match state.log.reserve(now, not_before, bound, margin, id) {
                    Ok(reserved) => (reserved.at, id),
                    Err(free_in) => return Err(Unavailable { free_in }),
                }
            };
            if slot <= now {
                return Ok(Grant { slot });
            }
            let reservation = Reservation {
                limiter: self,
                id: Some(id),
            };
            tokio::time::sleep_until(slot.into()).await;
            // A 429 seen while this call waited moves it behind the pause.
            if self
                .lock()
                .paused_until
                .is_some_and(|until| until > Instant::now())
            {
                drop(reservation);
                continue;
            }
            reservation.keep();
            return Ok(Grant { slot });
        }
    }

    /// A 429 was seen: nothing is sent for `pause` (at most [`MAX_SHARED_PAUSE`](super::MAX_SHARED_PAUSE)).
    pub(crate) fn pause(&self, pause: Duration) {
        extend_pause(&mut self.lock().paused_until, pause);
    }

    /// A request granted `grant` was answered at `answered`.
    pub(crate) fn observe(&self, grant: &Grant, answered: Instant) {
        self.margin.observe(grant.slot, answered);
    }

    /// The margin a grant taken now is counted with.
    pub(crate) fn margin(&self) -> Duration {
        self.margin.current()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::limit::MAX_SHARED_PAUSE;

    #[tokio::test]
    async fn a_wait_past_the_bound_fails_at_once_and_says_when() {
        let limiter = LocalLimiter::new(RateLimit::new(1, 60), Duration::ZERO);
        limiter.acquire(None).await.unwrap();
        let started = Instant::now();
        let bound = started + Duration::from_millis(100);
        let Unavailable { free_in } = limiter.acquire(Some(bound)).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(50), "failed fast");
        assert!(
            free_in > Duration::from_millis(900) && free_in <= Duration::from_secs(1),
            "{free_in:?}"
        );
        // Nothing was taken: the next slot is still one second after the first.
        let Unavailable { free_in: again } = limiter.acquire(Some(bound)).await.unwrap_err();
        assert!(again <= free_in);
    }

    #[tokio::test]
    async fn a_pause_delays_the_next_request_and_is_capped() {
        let limiter = LocalLimiter::new(RateLimit::NEXHEALTH_DEFAULT, Duration::ZERO);
        limiter.pause(Duration::from_millis(300));
        let started = Instant::now();
        limiter.acquire(None).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(290));
        // A server asking for forever pauses at most MAX_SHARED_PAUSE.
        limiter.pause(Duration::MAX);
        let bound = Instant::now() + MAX_SHARED_PAUSE + Duration::from_millis(50);
        let Unavailable { free_in } = limiter
            .acquire(Some(Instant::now()))
            .await
            .expect_err("paused");
        assert!(free_in <= MAX_SHARED_PAUSE, "{free_in:?}");
        assert!(Instant::now() + free_in <= bound);
    }

    #[tokio::test]
    async fn a_dropped_wait_gives_its_slot_back() {
        let limiter = LocalLimiter::new(RateLimit::new(1, 60), Duration::ZERO);
        let first = limiter.acquire(None).await.unwrap();
        // Reserve the next slot, then give up.
        let waiting = tokio::time::timeout(Duration::from_millis(50), limiter.acquire(None)).await;
        assert!(waiting.is_err(), "it waits for the next second");
        // The slot given up is the next one again, and the minute lost nothing:
        // 59 more fit in the minute.
        let Unavailable { free_in } = limiter
            .acquire(Some(Instant::now()))
            .await
            .expect_err("not yet");
        let free_at = Instant::now() + free_in;
        assert!(
            free_at <= first.slot + Duration::from_millis(1_010),
            "{free_in:?}"
        );
        let state = limiter.lock();
        assert_eq!(
            state.log.count_after(first.slot - Duration::from_secs(1)),
            1
        );
    }

    #[tokio::test]
    async fn the_longer_pause_wins() {
        let limiter = LocalLimiter::new(RateLimit::NEXHEALTH_DEFAULT, Duration::ZERO);
        let now = Instant::now();
        limiter.pause(Duration::from_millis(100));
        limiter.pause(Duration::from_secs(2));
        limiter.pause(Duration::from_millis(500));
        let Unavailable { free_in } = limiter.acquire(Some(now)).await.expect_err("paused");
        assert!(free_in > Duration::from_millis(1_900), "{free_in:?}");
    }

    #[tokio::test]
    async fn a_pause_set_while_a_call_waits_moves_it_behind_the_pause() {
        let limiter = std::sync::Arc::new(LocalLimiter::new(RateLimit::new(1, 60), Duration::ZERO));
        let first = limiter.acquire(None).await.unwrap();
        let waiting = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.acquire(None).await.map(|g| g.slot) })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        limiter.pause(Duration::from_millis(1_500));
        let slot = waiting.await.unwrap().unwrap();
        assert!(
            slot >= first.slot + Duration::from_millis(1_550),
            "it would have gone at one second, inside the pause"
        );
    }

    #[tokio::test]
    async fn dropping_one_of_two_waiting_calls_frees_its_own_slot() {
        let limiter = std::sync::Arc::new(LocalLimiter::new(RateLimit::new(1, 60), Duration::ZERO));
        let first = limiter.acquire(None).await.unwrap();
        // Two calls wait: one for 1 s after the first, one for 2 s after.
        let early = tokio::spawn({
            let limiter = limiter.clone();
            async move { limiter.acquire(None).await.map(|g| g.slot) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let late = tokio::spawn({
            let limiter = limiter.clone();
            async move { limiter.acquire(None).await.map(|g| g.slot) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        early.abort();
        let _ = early.await;
        // The late one keeps its slot, so the next free one is a second after it.
        let Unavailable { free_in } = limiter
            .acquire(Some(Instant::now()))
            .await
            .expect_err("not yet");
        let free_at = Instant::now() + free_in;
        assert!(
            free_at >= first.slot + Duration::from_millis(2_990),
            "the slot given back must be the dropped call's, not the waiting one's"
        );
        let late_slot = late.await.unwrap().unwrap();
        assert!(late_slot >= first.slot + Duration::from_secs(2));
    }

    #[tokio::test]
    async fn the_margin_counts_a_grant_later_than_its_slot() {
        let limiter = LocalLimiter::new(RateLimit::new(1, 60), Duration::from_millis(200));
        let grant = limiter.acquire(None).await.unwrap();
        let Unavailable { free_in } = limiter
            .acquire(Some(Instant::now()))
            .await
            .expect_err("not yet");
        let free_at = Instant::now() + free_in;
        assert!(
            free_at >= grant.slot + Duration::from_millis(1_200),
            "the next slot comes one second and the margin after the first"
        );
    }
}
