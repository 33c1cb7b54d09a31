//! Where a receiver remembers which events it handled: claimed with a lease
//! while a handler runs, committed when it succeeded, released when it
//! failed (so that NexHealth's retry runs it again).
//!
//! [`MemoryStore`] keeps identities in this process: bounded, each with its
//! own deadline, and never forgetting a live one to make room (when it is
//! full of live entries it answers [`StoreUnavailable`], so the delivery is
//! answered 503 and NexHealth sends it again later). [`RedisStore`] (feature
//! `redis`) keeps them in Redis, shared by every replica behind the load
//! balancer, so that a retry landing on another replica is still a
//! duplicate; each replica also keeps a bounded record of what it handled
//! and hands it back when Redis comes back empty.

use std::future::Future;
use std::time::Duration;

use super::identity::EventIdentity;

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Nobody handles or handled this event: run the handler under `Lease`.
    Claimed(Lease),
    /// The event was handled already: a duplicate.
    Handled,
    /// Another delivery of the event is being handled now (here or on another
    /// replica), under a lease that has not run out.
    Busy,
}

/// Proof of a claim: only its holder commits or releases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease(String);

impl Lease {
    pub(crate) fn fresh() -> Self {
        Self(format!(
            "lease:{:016x}:{}",
            crate::transport::random_u64(),
            std::process::id()
        ))
    }
}

/// The store could not answer: nothing is known, so the delivery should be
/// answered with a retryable status and NexHealth will send it again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the store of handled webhook events is unavailable: {reason}")]
pub struct StoreUnavailable {
    /// Why, without any key or value.
    pub reason: &'static str,
}

impl StoreUnavailable {
    /// The reason when a [`MemoryStore`] is full of live identities.
    ///
    /// Value: "the store is full of identities it must still remember".
    pub const FULL: &'static str = "the store is full of identities it must still remember";
    /// The reason when the store answered something outside its vocabulary
    /// (a tampered or foreign key, an unexpected reply).
    ///
    /// Value: "the store answered outside its vocabulary".
    pub const UNEXPECTED_ANSWER: &'static str = "the store answered outside its vocabulary";
    /// The reason while a Redis that came back empty is being refilled from
    /// the replicas' records.
    ///
    /// Value: "the store came back empty and the replicas are handing back what they handled".
    pub const RESTORING: &'static str =
        "the store came back empty and the replicas are handing back what they handled";

    /// A short stable name for metrics: `full`, `unexpected_answer`,
    /// `restoring`, or `unavailable` for any other reason.
    pub fn kind(&self) -> &'static str {
        match self.reason {
            Self::FULL => "full",
            Self::UNEXPECTED_ANSWER => "unexpected_answer",
            Self::RESTORING => "restoring",
            _ => "unavailable",
        }
    }
}

/// How a handling ended when its caller dropped it half-way (see
/// [`HandledStore::abandon`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abandoned {
    /// Dropped before the handler finished: the claim should be released,
    /// so that NexHealth's retry runs the handler.
    Unfinished,
    /// Dropped after the handler succeeded, before the commit was recorded:
    /// the identity should be committed for `keep`.
    Handled {
        /// How long to remember it.
        keep: Duration,
    },
}

/// A store of handled events. Every method is atomic for one identity.
pub trait HandledStore: Send + Sync {
    /// Claims `identity` for `lease` unless it is handled or claimed.
    fn claim(
        &self,
        identity: &EventIdentity,
        lease: Duration,
    ) -> impl Future<Output = Result<Claim, StoreUnavailable>> + Send;

    /// Marks `identity` handled for `keep`, if `lease` still holds it.
    fn commit(
        &self,
        identity: &EventIdentity,
        lease: &Lease,
        keep: Duration,
    ) -> impl Future<Output = Result<(), StoreUnavailable>> + Send;

    /// Gives the claim up (the handler failed), if `lease` still holds it.
    fn release(
        &self,
        identity: &EventIdentity,
        lease: &Lease,
    ) -> impl Future<Output = Result<(), StoreUnavailable>> + Send;

    /// Remembers a handled `identity` for at least `keep` from now (a later
    /// copy of it arrived, verifiable for longer). Nothing happens to an
    /// identity that is not handled. The default does nothing.
    fn extend(
        &self,
        identity: &EventIdentity,
        keep: Duration,
    ) -> impl Future<Output = Result<(), StoreUnavailable>> + Send {
        let _ = (identity, keep);
        async { Ok(()) }
    }

    /// Called, synchronously and without blocking, when a handling that
    /// holds `lease` is dropped by its caller before it finished: release
    /// the claim (or commit it, when the handler had succeeded) without
    /// waiting, e.g. on a spawned task. The default does nothing, and the
    /// claim then holds the event until its lease runs out.
    fn abandon(&self, identity: &EventIdentity, lease: &Lease, how: Abandoned) {
        let _ = (identity, lease, how);
    }
}

mod memory;
#[cfg(feature = "redis")]
mod redis;
pub(crate) mod slots;

pub use memory::MemoryStore;
#[cfg(feature = "redis")]
pub use redis::RedisStore;
pub use slots::BYTES_PER_ENTRY;

#[cfg(test)]
mod tests;
