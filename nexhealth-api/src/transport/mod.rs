//! Transport: how one request reaches NexHealth and comes back.
//!
//! Everything here works on `reqwest` requests and knows nothing of
//! institutions or locations: the credentials and the cached bearer token
//! ([`auth`], [`token`], [`secret`]), NexHealth's headers ([`headers`]), the
//! retry loop and the rate limit ([`retry`], [`policy`], [`limit`]: in process
//! or shared through Redis, over the one Redis link, `redis_link`), the state every
//! clone of a client shares ([`state`]) and the per-call context that the
//! progenitor hooks (`api::hooks`) fill in. Nothing here imports from `api/`
//! or above: only the generated types and the one error type.
//!
//! Dependencies point one way: `retry` and `auth` → `policy`,
//! `state` → `auth` and `policy`. A new transport concern (a shared rate-limit
//! backend, say) is a new file here.

pub(crate) mod auth;
pub(crate) mod context;
pub mod headers;
pub(crate) mod limit;
pub mod metrics;
pub(crate) mod policy;
#[cfg(feature = "redis")]
pub(crate) mod redis_link;
pub(crate) mod retry;
pub(crate) mod retry_budget;
pub(crate) mod secret;
pub(crate) mod state;
pub mod token;

/// A random number (a name for this process's grants, a lease): std's
/// randomly keyed hasher over the time, so no RNG crate is needed for ids
/// that must only differ between processes and calls.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    hasher.finish()
}
