//! [`MemoryStore`]: handled events in this process.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::slots::{BYTES_PER_ENTRY, Slots, State, deadline};
use super::{Abandoned, Claim, HandledStore, Lease, StoreUnavailable};
use crate::webhooks::identity::EventIdentity;

/// Handled events in this process: right for one replica.
///
/// At most `capacity` identities alive at once (default
/// [`MemoryStore::DEFAULT_CAPACITY`], sized for
/// [`MemoryStore::DEFAULT_MEMORY`] at [`BYTES_PER_ENTRY`] each). An identity
/// is forgotten only when its own deadline passes (a lease that ran out, or
/// the keep time of a handled event); nothing alive is ever dropped to make
/// room. When the store is full of live identities, a claim of a new one
/// answers [`StoreUnavailable::FULL`] (the delivery is answered 503 and
/// NexHealth sends it again later, when room has freed up), with one
/// warning per full spell in the log and a count in
/// `nexhealth.webhook.deliveries` (`store_unavailable`, trouble `full`).
/// Retries of events it holds are still answered while it is full.
///
/// Time is tokio's clock, so a test with a paused runtime controls it.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    slots: Mutex<Slots>,
    capacity: usize,
    full: AtomicBool,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.len())
            .field("capacity", &self.inner.capacity)
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }
}

impl MemoryStore {
    /// The memory the default store may take.
    ///
    /// Value: 64 MiB.
    pub const DEFAULT_MEMORY: usize = 64 * 1024 * 1024;

    /// Default bound on the identities alive at once:
    /// [`DEFAULT_MEMORY`](Self::DEFAULT_MEMORY) / [`BYTES_PER_ENTRY`].
    ///
    /// Value: 209,715.
    pub const DEFAULT_CAPACITY: u64 = (Self::DEFAULT_MEMORY / BYTES_PER_ENTRY) as u64;

    /// A store of at most `capacity` live identities (at least 1).
    pub fn with_capacity(capacity: u64) -> Self {
        Self {
            inner: Arc::new(Inner {
                slots: Mutex::new(Slots::default()),
                capacity: usize::try_from(capacity.max(1)).unwrap_or(usize::MAX),
                full: AtomicBool::new(false),
            }),
        }
    }

    /// A store that takes at most about `bytes` of memory
    /// (`bytes / BYTES_PER_ENTRY` identities).
    pub fn with_memory(bytes: usize) -> Self {
        Self::with_capacity((bytes / BYTES_PER_ENTRY) as u64)
    }

    /// The most identities alive at once.
    pub fn capacity(&self) -> u64 {
        self.inner.capacity as u64
    }

    /// The identities alive now (leased or handled).
    pub fn len(&self) -> usize {
        let mut slots = self.slots();
        slots.purge(Instant::now());
        slots.len()
    }

    /// Whether no identity is alive now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.inner.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn claim_now(
        &self,
        identity: &EventIdentity,
        lease: Duration,
    ) -> Result<Claim, StoreUnavailable> {
        let now = Instant::now();
        let mut slots = self.slots();
        slots.purge(now);
        match slots.get(identity, now) {
            Some(State::Done) => return Ok(Claim::Handled),
            Some(State::Leased(_)) => return Ok(Claim::Busy),
            None => {}
        }
        if slots.len() >= self.inner.capacity {
            drop(slots);
            if !self.inner.full.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    capacity = self.inner.capacity,
                    "webhook store full of events it must still remember: new events are \
                     answered 503 (NexHealth retries them) until room frees up; give it more \
                     capacity or use RedisStore"
                );
            }
            return Err(StoreUnavailable {
                reason: StoreUnavailable::FULL,
            });
        }
        if self.inner.full.swap(false, Ordering::Relaxed) {
            tracing::info!("webhook store has room again");
        }
        let fresh = Lease::fresh();
        slots.put(
            *identity,
            State::Leased(fresh.clone()),
            deadline(now, lease),
        );
        Ok(Claim::Claimed(fresh))
    }

    fn commit_now(&self, identity: &EventIdentity, lease: &Lease, keep: Duration) {
        let now = Instant::now();
        let mut slots = self.slots();
        match slots.get(identity, now) {
            // Another claim holds it now: its holder decides.
            Some(State::Leased(held)) if held != lease => {}
            Some(State::Done) => extend(&mut slots, identity, now, keep),
            // Ours, or run out with nobody claiming it since: handled. (This
            // may pass the capacity by the handlers running: never lost.)
            _ => slots.put(*identity, State::Done, deadline(now, keep)),
        }
    }

    fn release_now(&self, identity: &EventIdentity, lease: &Lease) {
        let now = Instant::now();
        let mut slots = self.slots();
        if matches!(slots.get(identity, now), Some(State::Leased(held)) if held == lease) {
            slots.remove(identity);
        }
    }
}

/// Moves a handled identity's deadline to `now + keep` if that is later.
fn extend(slots: &mut Slots, identity: &EventIdentity, now: Instant, keep: Duration) {
    let until = deadline(now, keep);
    if slots
        .deadline_of(identity, now)
        .is_some_and(|current| current < until)
    {
        slots.put(*identity, State::Done, until);
    }
}

impl HandledStore for MemoryStore {
    async fn claim(
        &self,
        identity: &EventIdentity,
        lease: Duration,
    ) -> Result<Claim, StoreUnavailable> {
        self.claim_now(identity, lease)
    }

    async fn commit(
        &self,
        identity: &EventIdentity,
        lease: &Lease,
        keep: Duration,
    ) -> Result<(), StoreUnavailable> {
        self.commit_now(identity, lease, keep);
        Ok(())
    }

    async fn release(
        &self,
        identity: &EventIdentity,
        lease: &Lease,
    ) -> Result<(), StoreUnavailable> {
        self.release_now(identity, lease);
        Ok(())
    }

    async fn extend(
        &self,
        identity: &EventIdentity,
        keep: Duration,
    ) -> Result<(), StoreUnavailable> {
        let now = Instant::now();
        let mut slots = self.slots();
        if slots.get(identity, now) == Some(&State::Done) {
            extend(&mut slots, identity, now, keep);
        }
        Ok(())
    }

    fn abandon(&self, identity: &EventIdentity, lease: &Lease, how: Abandoned) {
        match how {
            Abandoned::Unfinished => self.release_now(identity, lease),
            Abandoned::Handled { keep } => self.commit_now(identity, lease, keep),
        }
    }
}
