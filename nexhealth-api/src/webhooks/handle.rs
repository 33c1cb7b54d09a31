//! Handling each logical event once, across a fleet.
//!
//! [`Receiver::handle`] verifies a delivery, works out its
//! [`EventIdentity`], claims it in a [`HandledStore`] with a lease, runs the
//! service's handler only on a successful claim, then commits (the event is
//! handled: every later delivery of it is a duplicate) or, when the handler
//! failed, releases the claim so that NexHealth's next retry runs it again.
//! The [`Outcome`] says what to answer, so that NexHealth does the right thing:
//!
//! | outcome | status | NexHealth then |
//! |---|---|---|
//! | handled, or a duplicate of a handled event | 200 | stops |
//! | the handler failed | 500 | retries (and the retry runs the handler) |
//! | being handled elsewhere right now | 503 | retries (and the retry is a duplicate once that succeeded) |
//! | the store cannot answer | 503 | retries: nothing is lost |
//! | refused (signature, age, size, not an event) | 401, 413, 400 | retries, then turns the endpoint off |
//!
//! **Replays and the keep window.** Handling always checks the age: the
//! receiver's [`max_age`](Receiver::max_age), by default [`DEFAULT_MAX_AGE`]
//! (49 h, longer than NexHealth's 48 h of retries; a shorter one is refused
//! unless chosen with [`Receiver::max_age_below_retry_horizon`]). A copy
//! NexHealth signs later stays verifiable for longer than the first, so the
//! store keeps each identity [`keep_for`] the maximum age: the age, plus
//! NexHealth's [`RETRY_HORIZON`] (the last retry is signed at most 48 h after
//! the first delivery), plus the clock skew allowed, counted from the first
//! handling; and every verified duplicate pushes the identity's keep time
//! to `keep_for` from its arrival ([`HandledStore::extend`]). So any copy
//! that still verifies finds its identity remembered: a replay is either
//! too old or a duplicate, while the store holds its state (see the
//! README's table for what holds when it does not). Under
//! [`Scheme::RawBody`](super::Scheme::RawBody) the `timestamp` header is not
//! signed, so the age is read from the signed body's `event_time`.
//!
//! **Cancellation.** A `handle` future dropped by its caller after it
//! claimed the event gives the claim back at once
//! ([`HandledStore::abandon`]): released when the handler had not finished,
//! so NexHealth's retry runs it; committed when it had succeeded.
//!
//! **Limits.** A handler that runs longer than the lease may be run a second
//! time by a retry on another replica; one whose process dies after it
//! succeeded but before the commit is run again by the retry. Handlers should
//! still be idempotent where they can be: the store makes duplicates rare,
//! not impossible.

use std::future::Future;
use std::time::Duration;

use super::event::Event;
use super::identity::EventIdentity;
pub use super::receive::{DEFAULT_LEASE, RETRY_HORIZON};
use super::receive::{MAX_CLOCK_SKEW, Receiver, Rejection};
use super::store::{Abandoned, Claim, HandledStore, Lease, StoreUnavailable};

/// The maximum age of a delivery when handling with a store, unless the
/// receiver sets one: longer than NexHealth's 48 hours of retries.
///
/// Value: 49 hours.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(49 * 3_600);

/// How long a store keeps a handled identity for a maximum age of `max_age`:
/// the last copy NexHealth may sign ([`RETRY_HORIZON`] after the first) stays
/// verifiable for `max_age` plus the clock skew allowed, so nothing needs
/// remembering longer than their sum.
pub fn keep_for(max_age: Duration) -> Duration {
    max_age
        .saturating_add(MAX_CLOCK_SKEW)
        .saturating_add(RETRY_HORIZON)
}

/// Gives a claim back if the handling holding it is dropped half-way.
struct ClaimGuard<'a, S: HandledStore> {
    store: &'a S,
    identity: EventIdentity,
    lease: Lease,
    /// `Some` once the handler succeeded: commit for this keep.
    handled: Option<Duration>,
    armed: bool,
}

impl<S: HandledStore> Drop for ClaimGuard<'_, S> {
    fn drop(&mut self) {
        if self.armed {
            let how = match self.handled {
                Some(keep) => Abandoned::Handled { keep },
                None => Abandoned::Unfinished,
            };
            self.store.abandon(&self.identity, &self.lease, how);
        }
    }
}

/// What handling one delivery came to.
#[derive(Debug)]
#[non_exhaustive]
pub enum Outcome<E> {
    /// Verified, claimed, and the handler succeeded: the event is handled.
    Handled(EventIdentity),
    /// Verified, and the event was handled already (a retry or a replay).
    Duplicate(EventIdentity),
    /// Verified, and another delivery of it is being handled now.
    InProgress(EventIdentity),
    /// Verified and claimed; the handler failed, the claim was released.
    HandlerFailed(EventIdentity, E),
    /// Verified; the store could not answer, the handler did not run.
    StoreUnavailable(StoreUnavailable),
    /// Refused before any handling.
    Rejected(Rejection),
}

impl<E> Outcome<E> {
    /// The HTTP status to answer NexHealth with (see the module's table).
    pub fn status(&self) -> u16 {
        match self {
            Self::Handled(_) | Self::Duplicate(_) => 200,
            Self::HandlerFailed(..) => 500,
            Self::InProgress(_) | Self::StoreUnavailable(_) => 503,
            Self::Rejected(rejection) => rejection.status(),
        }
    }

    /// A short stable name for logs and metrics: `handled`, `duplicate`,
    /// `in_progress`, `handler_failed`, `store_unavailable`, or the rejection's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Handled(_) => "handled",
            Self::Duplicate(_) => "duplicate",
            Self::InProgress(_) => "in_progress",
            Self::HandlerFailed(..) => "handler_failed",
            Self::StoreUnavailable(_) => "store_unavailable",
            Self::Rejected(rejection) => rejection.kind(),
        }
    }

    /// The same as [`kind`](Self::kind): the stable name every answer enum
    /// of the crate has.
    pub fn as_str(&self) -> &'static str {
        self.kind()
    }

    /// Whether the delivery was accepted: signed, in time, and a readable
    /// event, so the store and the handler saw it. `false` for every
    /// [`Rejection`], including a correctly signed body that is not JSON or
    /// not an event ([`Rejection::NotJson`], [`Rejection::NotAnEvent`]).
    pub fn verified(&self) -> bool {
        !matches!(self, Self::Rejected(_))
    }
}

impl Receiver {
    /// Verifies a delivery and runs `handler` on its event at most once per
    /// logical event across every receiver that shares `store` (see the
    /// module's docs for the answers and their meaning).
    pub async fn handle<S, F, Fut, E>(
        &self,
        store: &S,
        headers: &http::HeaderMap,
        body: &[u8],
        handler: F,
    ) -> Outcome<E>
    where
        S: HandledStore,
        F: FnOnce(Event) -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        self.handle_at(store, headers, body, chrono::Utc::now(), handler)
            .await
    }

    /// [`handle`](Self::handle) with the delivery's age judged as of `now`
    /// (the store keeps its own clock: tokio's, which a test can pause).
    pub async fn handle_at<S, F, Fut, E>(
        &self,
        store: &S,
        headers: &http::HeaderMap,
        body: &[u8],
        now: chrono::DateTime<chrono::Utc>,
        handler: F,
    ) -> Outcome<E>
    where
        S: HandledStore,
        F: FnOnce(Event) -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        let outcome = self.handle_once(store, headers, body, now, handler).await;
        let mut attributes = vec![opentelemetry::KeyValue::new(
            "nexhealth.outcome",
            outcome.as_str(),
        )];
        if let Outcome::StoreUnavailable(unavailable) = &outcome {
            attributes.push(opentelemetry::KeyValue::new(
                "nexhealth.store.trouble",
                unavailable.kind(),
            ));
        }
        self.deliveries.add(1, &attributes);
        outcome
    }

    async fn handle_once<S, F, Fut, E>(
        &self,
        store: &S,
        headers: &http::HeaderMap,
        body: &[u8],
        now: chrono::DateTime<chrono::Utc>,
        handler: F,
    ) -> Outcome<E>
    where
        S: HandledStore,
        F: FnOnce(Event) -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        let max_age = self.max_age.unwrap_or(DEFAULT_MAX_AGE);
        let receiver = self.clone().max_age_below_retry_horizon(max_age);
        let event = match receiver.receive_at(headers, body, now) {
            Ok(event) => event,
            Err(rejection) => return Outcome::Rejected(rejection),
        };
        // From the exact text (numbers by value, exact); the body parsed, so
        // this answers, but fall back on the parsed value rather than panic.
        let identity = EventIdentity::of_json(body)
            .unwrap_or_else(|| EventIdentity::of(&event.envelope().raw));
        let keep = keep_for(max_age);
        match store.claim(&identity, self.lease).await {
            Err(unavailable) => Outcome::StoreUnavailable(unavailable),
            Ok(Claim::Handled) => {
                // This copy may verify longer than the first: remember it
                // as long (best effort: the answer is a duplicate anyway).
                if let Err(unavailable) = store.extend(&identity, keep).await {
                    tracing::debug!(
                        reason = unavailable.reason,
                        "webhook duplicate: its keep time could not be extended"
                    );
                }
                Outcome::Duplicate(identity)
            }
            Ok(Claim::Busy) => Outcome::InProgress(identity),
            Ok(Claim::Claimed(lease)) => {
                let mut guard = ClaimGuard {
                    store,
                    identity,
                    lease,
                    handled: None,
                    armed: true,
                };
                let outcome = match handler(event).await {
                    Ok(()) => {
                        guard.handled = Some(keep);
                        if let Err(unavailable) = store.commit(&identity, &guard.lease, keep).await
                        {
                            // Handled: say so. The claim runs out by itself, and a
                            // retry after that would run the handler again.
                            tracing::warn!(
                                reason = unavailable.reason,
                                "webhook event handled, but the store could not record it"
                            );
                        }
                        Outcome::Handled(identity)
                    }
                    Err(error) => {
                        if let Err(unavailable) = store.release(&identity, &guard.lease).await {
                            tracing::warn!(
                                reason = unavailable.reason,
                                "webhook handler failed and its claim could not be released: \
                                 a retry runs it once the lease runs out"
                            );
                        }
                        Outcome::HandlerFailed(identity, error)
                    }
                };
                guard.armed = false;
                outcome
            }
        }
    }
}
