//! The table behind [`MemoryStore`](super::MemoryStore) and the local record
//! of a [`RedisStore`](super::RedisStore): identities with a deadline each,
//! kept in deadline order so that what has run out is dropped first and
//! nothing alive is ever dropped to make room unless the caller asks to.
//!
//! Memory: one hash-map slot (identity, deadline, sequence, lease) and one
//! ordered-index entry (deadline, sequence, identity) per identity; measured
//! at under [`BYTES_PER_ENTRY`] bytes by `tests/tests/store_memory.rs` and
//! the `store_memory` benchmark.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio::time::Instant;

use super::Lease;
use crate::webhooks::identity::EventIdentity;

/// An upper bound on the memory one identity takes in a
/// [`MemoryStore`](super::MemoryStore), its index included (measured by
/// `tests/tests/store_memory.rs` and the `store_memory` benchmark).
///
/// Value: 320 bytes (measured 214 to 270: the hash map doubles its table as
/// it grows; `cargo bench -p nexhealth-api --bench store_memory`).
pub const BYTES_PER_ENTRY: usize = 320;

/// The longest any entry is kept: a keep or lease beyond it is cut to it
/// (so that a deadline never overflows).
pub(crate) const LONGEST: Duration = Duration::from_secs(10 * 365 * 86_400);

/// What one identity holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum State {
    /// A handler runs under this lease.
    Leased(Lease),
    /// Handled.
    Done,
}

#[derive(Debug)]
struct Slot {
    state: State,
    deadline: Instant,
    seq: u64,
}

/// Identities with deadlines, in deadline order.
#[derive(Debug, Default)]
pub(crate) struct Slots {
    map: HashMap<EventIdentity, Slot>,
    order: BTreeMap<(Instant, u64), EventIdentity>,
    next: u64,
}

/// `now + d`, with `d` cut to [`LONGEST`].
pub(crate) fn deadline(now: Instant, d: Duration) -> Instant {
    now.checked_add(d.min(LONGEST)).unwrap_or(now)
}

impl Slots {
    /// Drops every entry whose deadline has passed.
    pub(crate) fn purge(&mut self, now: Instant) {
        while let Some(entry) = self.order.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((_, seq), identity) = entry.remove_entry();
            if self.map.get(&identity).is_some_and(|slot| slot.seq == seq) {
                self.map.remove(&identity);
            }
        }
    }

    /// The live entries.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// The state of `identity`, if alive at `now`.
    pub(crate) fn get(&self, identity: &EventIdentity, now: Instant) -> Option<&State> {
        self.map
            .get(identity)
            .filter(|slot| slot.deadline > now)
            .map(|slot| &slot.state)
    }

    /// The deadline of `identity`, if alive at `now`.
    pub(crate) fn deadline_of(&self, identity: &EventIdentity, now: Instant) -> Option<Instant> {
        self.map
            .get(identity)
            .filter(|slot| slot.deadline > now)
            .map(|slot| slot.deadline)
    }

    /// Sets `identity` to `state` until `until`.
    pub(crate) fn put(&mut self, identity: EventIdentity, state: State, until: Instant) {
        let seq = self.next;
        self.next = self.next.wrapping_add(1);
        if let Some(old) = self.map.insert(
            identity,
            Slot {
                state,
                deadline: until,
                seq,
            },
        ) {
            self.order.remove(&(old.deadline, old.seq));
        }
        self.order.insert((until, seq), identity);
    }

    /// Forgets `identity`.
    pub(crate) fn remove(&mut self, identity: &EventIdentity) {
        if let Some(old) = self.map.remove(identity) {
            self.order.remove(&(old.deadline, old.seq));
        }
    }

    /// Forgets the entry that runs out first (for a record that must stay
    /// bounded whatever it loses).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn pop_soonest(&mut self) {
        if let Some(((_, seq), identity)) = self.order.pop_first()
            && self.map.get(&identity).is_some_and(|slot| slot.seq == seq)
        {
            self.map.remove(&identity);
        }
    }

    /// Every `Done` entry alive at `now`, with the time it has left.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn done(&self, now: Instant) -> Vec<(EventIdentity, Duration)> {
        self.map
            .iter()
            .filter(|(_, slot)| slot.state == State::Done && slot.deadline > now)
            .map(|(identity, slot)| (*identity, slot.deadline - now))
            .collect()
    }
}
