//! One picture for a fleet of replicas (feature `redis`): the location
//! directory and the sync health that webhooks update, shared through the
//! Redis the rate limit uses.
//!
//! **The directory.** Replicas of one service that share a Redis and an API
//! key share one copy of `GET /locations`: a replica whose copy is due reads
//! the stored one when it is fresh enough; when it is not, one replica takes a
//! lease (`SET NX PX`), fetches, and stores what it got, while the others wait
//! for it (at most the lease) and read that. Each replica still compares the
//! copy it reads with its own previous one, so every replica sees every
//! change. When Redis cannot be reached, is slow, or answers an error or
//! garbage, a replica fetches for itself (one warning; one notice when Redis
//! answers again), and goes back to sharing at its next refresh.
//!
//! **Sync health.** A `sync_status_*` webhook arrives at one replica;
//! [`SharedSyncHealth::apply_event`] stores it (the latest
//! [`FleetShare::MAX_EVENTS`], expiring) and every replica's
//! [`SharedSyncHealth::report`] applies what the fleet stored to its own
//! `GET /sync_status`. Applying is idempotent and order does not matter (each
//! side ends at the latest time seen, the worse status at one time), so
//! replicas agree. An event that
//! could not be stored is kept (bounded) and stored at the next contact.
//!
//! **Keys** follow the rate limit's conventions: a prefix (default
//! `nexhealth-api:fleet`), then a hash tag with the digest of the API key (never
//! the key; one cluster slot), and every key expires
//! ([`FleetShare::expiry`]). A subdomain is named by a digest too.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sha2::Digest;

use crate::error::Error;
use crate::generated::Client;
use crate::transport::redis_link::{RedisLink, Target};

mod directory_share;
mod sync_health_share;

pub(crate) use directory_share::{DirectoryShare, Lease, Read};
pub use sync_health_share::SharedSyncHealth;

/// Where a fleet shares its directory and sync health: the same Redis
/// options as [`RedisRateLimit`](crate::RedisRateLimit) (`redis://` or
/// `rediss://` through rustls, a cluster, a timeout per round trip).
///
/// ```no_run
/// use nexhealth_api::fleet::FleetShare;
/// use nexhealth_api::{Client, LocationDirectory};
///
/// # fn run(client: Client) -> Result<(), nexhealth_api::Error> {
/// let share = FleetShare::new("redis://redis.internal:6379/");
/// let directory = LocationDirectory::new(client).shared(&share)?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct FleetShare {
    target: Target,
    prefix: String,
    redis_timeout: Duration,
    lease: Duration,
    expiry: Duration,
    root_certificates: Option<Vec<u8>>,
}

/// The URLs may carry a password: never shown.
impl std::fmt::Debug for FleetShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetShare")
            .field("target", &self.target.redacted())
            .field("prefix", &self.prefix)
            .field("redis_timeout", &self.redis_timeout)
            .field("lease", &self.lease)
            .field("expiry", &self.expiry)
            .field("root_certificates", &self.root_certificates.is_some())
            .finish()
    }
}

impl FleetShare {
    /// Default prefix of the keys.
    pub const DEFAULT_PREFIX: &'static str = "nexhealth-api:fleet";
    /// Default wait for one Redis round trip before a replica works on its own.
    ///
    /// Value: 250 ms (the rate limit's).
    pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(250);
    /// Default lease of the replica that fetches the directory for the fleet:
    /// the longest the others wait for it before fetching for themselves.
    ///
    /// Value: 30 s.
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
    /// Default life of what is stored (the directory, the events).
    ///
    /// Value: 24 hours.
    pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(24 * 3_600);
    /// The most sync-status events kept for the fleet (the newest).
    ///
    /// Value: 256.
    pub const MAX_EVENTS: usize = 256;

    /// Shares through the Redis at `url` (`redis://[:password@]host:port/[db]`
    /// or `rediss://`).
    pub fn new(url: impl Into<String>) -> Self {
        Self::with_target(Target::Single(url.into()))
    }

    /// Shares through the Redis Cluster reachable at any of `nodes`.
    pub fn cluster<I, S>(nodes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::with_target(Target::Cluster(nodes.into_iter().map(Into::into).collect()))
    }

    fn with_target(target: Target) -> Self {
        Self {
            target,
            prefix: Self::DEFAULT_PREFIX.to_string(),
            redis_timeout: Self::DEFAULT_REDIS_TIMEOUT,
            lease: Self::DEFAULT_LEASE,
            expiry: Self::DEFAULT_EXPIRY,
            root_certificates: None,
        }
    }

    /// The prefix of the keys (default `nexhealth-api:fleet`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The longest one Redis round trip may take (default 250 ms; clamped to
    /// 1 ms ..= 60 s).
    pub fn redis_timeout(mut self, timeout: Duration) -> Self {
        self.redis_timeout = timeout.clamp(Duration::from_millis(1), Duration::from_secs(60));
        self
    }

    /// How long the replica fetching the directory holds the fleet's lease,
    /// and so the longest the others wait (default 30 s; clamped to
    /// 10 ms ..= 10 minutes).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.clamp(Duration::from_millis(10), Duration::from_secs(600));
        self
    }

    /// How long what is stored lives without being written again (default
    /// 24 hours; clamped to 1 s ..= 30 days).
    pub fn expiry(mut self, expiry: Duration) -> Self {
        self.expiry = expiry.clamp(Duration::from_secs(1), Duration::from_secs(30 * 86_400));
        self
    }

    /// Trusts these PEM root certificates (instead of the system's) for
    /// `rediss://` URLs.
    pub fn root_certificates(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates = Some(pem.into());
        self
    }

    fn link(&self, what: &str) -> Result<RedisLink, Error> {
        RedisLink::new(
            self.target.clone(),
            self.root_certificates.clone(),
            self.redis_timeout,
        )
        .map_err(|reason| Error::invalid_request(format!("the {what}'s Redis: {reason}")))
    }

    /// `{prefix}:{<key digest>}`: one hash tag, so a cluster keeps a fleet's
    /// keys on one node.
    fn base(&self, client: &Client) -> String {
        format!("{}:{{{}}}", self.prefix, client.session().key_id())
    }
}

fn millis(d: Duration) -> u64 {
    d.as_millis().clamp(1, u64::MAX as u128) as u64
}

/// A short digest that names a subdomain in a key.
fn digest(text: &str) -> String {
    let digest = sha2::Sha256::new()
        .chain_update(b"nexhealth-api fleet scope\0")
        .chain_update(text.as_bytes())
        .finalize();
    hex::encode(&digest[..12])
}

/// Redis in trouble: one warning when a replica starts working on its own,
/// one notice when Redis answers again.
#[derive(Default)]
struct Trouble(AtomicBool);

impl Trouble {
    fn seen(&self, what: &str, reason: &str) {
        if !self.0.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                reason,
                "{what}: Redis is in trouble; this replica works on its own"
            );
        }
    }

    fn cleared(&self, what: &str) {
        if self.0.swap(false, Ordering::Relaxed) {
            tracing::info!("{what}: Redis answers again; sharing with the fleet");
        }
    }

    fn active(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;

#[cfg(all(test, feature = "mock"))]
mod redis_tests;
