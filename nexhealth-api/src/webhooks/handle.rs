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
//! **Replays.** Handling always checks the age: the receiver's
//! [`max_age`](Receiver::max_age), by default [`DEFAULT_MAX_AGE`] (49 h,
//! longer than NexHealth's 48 h of retries), and the store keeps each
//! identity [`keep_for`] that age plus the clock skew allowed. A replayed
//! delivery is therefore either too old or a duplicate.
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
use super::receive::{MAX_CLOCK_SKEW, Receiver, Rejection};
use super::store::{Claim, HandledStore, StoreUnavailable};

/// How long a claim lasts while a handler runs, unless configured.
///
/// Value: 60 s.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// The maximum age of a delivery when handling with a store, unless the
/// receiver sets one: longer than NexHealth's 48 hours of retries.
///
/// Value: 49 hours.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(49 * 3_600);

/// How long a store keeps a handled identity for a maximum age of `max_age`:
/// a delivery older than that is refused as too old, so nothing older needs
/// remembering.
pub fn keep_for(max_age: Duration) -> Duration {
    max_age.saturating_add(MAX_CLOCK_SKEW)
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
        let outcome = self.handle_once(store, headers, body, handler).await;
        self.deliveries.add(
            1,
            &[opentelemetry::KeyValue::new(
                "nexhealth.outcome",
                outcome.as_str(),
            )],
        );
        outcome
    }

    async fn handle_once<S, F, Fut, E>(
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
        let max_age = self.max_age.unwrap_or(DEFAULT_MAX_AGE);
        let receiver = self.clone().max_age(max_age);
        let event = match receiver.receive(headers, body) {
            Ok(event) => event,
            Err(rejection) => return Outcome::Rejected(rejection),
        };
        let identity = EventIdentity::of(&event.envelope().raw);
        match store.claim(&identity, self.lease).await {
            Err(unavailable) => Outcome::StoreUnavailable(unavailable),
            Ok(Claim::Handled) => Outcome::Duplicate(identity),
            Ok(Claim::Busy) => Outcome::InProgress(identity),
            Ok(Claim::Claimed(lease)) => match handler(event).await {
                Ok(()) => {
                    if let Err(unavailable) =
                        store.commit(&identity, &lease, keep_for(max_age)).await
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
                    if let Err(unavailable) = store.release(&identity, &lease).await {
                        tracing::warn!(
                            reason = unavailable.reason,
                            "webhook handler failed and its claim could not be released: \
                             a retry runs it once the lease runs out"
                        );
                    }
                    Outcome::HandlerFailed(identity, error)
                }
            },
        }
    }
}
