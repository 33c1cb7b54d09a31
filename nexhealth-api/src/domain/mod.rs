//! Domain helpers: what NexHealth's guide asks of an integrator, built on the
//! API surface (and, for [`fleet`], on the one Redis link the transport keeps).
//!
//! [`directory`] keeps subdomains and location ids; [`sync_health`] reads
//! `/sync_status` by NexHealth's thresholds; [`overview`] joins institutions,
//! syncs and locations for a person to read; [`onboarding`] turns the
//! onboarding guide into a typed decision. Helpers that join answers of two
//! endpoints join on ids (institution id, location id), never on subdomains.

pub mod changes;
pub mod directory;
#[cfg(feature = "redis")]
pub mod fleet;
pub mod onboarding;
pub mod overview;
mod serialize;
mod snapshot;
pub mod sync_health;
