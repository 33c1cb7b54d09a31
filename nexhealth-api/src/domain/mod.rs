//! Domain helpers: what NexHealth's guide asks of an integrator, built on the
//! API surface only (never on the transport).
//!
//! [`directory`] keeps subdomains and location ids; [`sync_health`] reads
//! `/sync_status` by NexHealth's thresholds; [`onboarding`] turns the
//! onboarding guide into a typed decision.

pub mod directory;
pub mod onboarding;
pub mod sync_health;
