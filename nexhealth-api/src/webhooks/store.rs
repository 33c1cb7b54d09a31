//! Where a receiver remembers which events it handled: claimed with a lease
//! while a handler runs, committed when it succeeded, released when it
//! failed (so that NexHealth's retry runs it again).
//!
//! [`MemoryStore`] keeps identities in this process (bounded, each entry
//! with its own expiry: moka's cache); [`RedisStore`] (feature `redis`) in
//! Redis, shared by every replica behind the load balancer, so that a retry
//! landing on another replica is still a duplicate.

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
    fn fresh() -> Self {
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
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    Leased { lease: Lease, ttl: Duration },
    Done { ttl: Duration },
}

impl Slot {
    fn ttl(&self) -> Duration {
        match self {
            Self::Leased { ttl, .. } | Self::Done { ttl } => *ttl,
        }
    }
}

struct SlotExpiry;

impl moka::Expiry<EventIdentity, Slot> for SlotExpiry {
    fn expire_after_create(
        &self,
        _: &EventIdentity,
        slot: &Slot,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(slot.ttl())
    }

    fn expire_after_update(
        &self,
        _: &EventIdentity,
        slot: &Slot,
        _: std::time::Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(slot.ttl())
    }
}

/// Handled events in this process: right for one replica. At most
/// `capacity` identities (default [`MemoryStore::DEFAULT_CAPACITY`]); past
/// it the least used are forgotten first, and a forgotten one would be
/// handled again if it came back.
#[derive(Clone)]
pub struct MemoryStore {
    cache: moka::sync::Cache<EventIdentity, Slot>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.cache.entry_count())
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }
}

impl MemoryStore {
    /// Default bound on the identities kept.
    ///
    /// Value: 100,000.
    pub const DEFAULT_CAPACITY: u64 = 100_000;

    /// A store of at most `capacity` identities.
    pub fn with_capacity(capacity: u64) -> Self {
        Self {
            cache: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .expire_after(SlotExpiry)
                .build(),
        }
    }
}

impl HandledStore for MemoryStore {
    async fn claim(
        &self,
        identity: &EventIdentity,
        lease: Duration,
    ) -> Result<Claim, StoreUnavailable> {
        let fresh = Lease::fresh();
        let mut claim = Claim::Busy;
        self.cache.entry(*identity).and_compute_with(|existing| {
            match existing.map(|e| e.into_value()) {
                Some(Slot::Done { .. }) => {
                    claim = Claim::Handled;
                    moka::ops::compute::Op::Nop
                }
                Some(Slot::Leased { .. }) => moka::ops::compute::Op::Nop,
                None => {
                    claim = Claim::Claimed(fresh.clone());
                    moka::ops::compute::Op::Put(Slot::Leased {
                        lease: fresh,
                        ttl: lease,
                    })
                }
            }
        });
        Ok(claim)
    }

    async fn commit(
        &self,
        identity: &EventIdentity,
        lease: &Lease,
        keep: Duration,
    ) -> Result<(), StoreUnavailable> {
        self.cache.entry(*identity).and_compute_with(|existing| {
            match existing.map(|e| e.into_value()) {
                // Ours, or run out (nobody else claimed it since): handled.
                Some(Slot::Leased { lease: held, .. }) if held != *lease => {
                    moka::ops::compute::Op::Nop
                }
                Some(Slot::Done { .. }) => moka::ops::compute::Op::Nop,
                _ => moka::ops::compute::Op::Put(Slot::Done { ttl: keep }),
            }
        });
        Ok(())
    }

    async fn release(
        &self,
        identity: &EventIdentity,
        lease: &Lease,
    ) -> Result<(), StoreUnavailable> {
        self.cache.entry(*identity).and_compute_with(|existing| {
            match existing.map(|e| e.into_value()) {
                Some(Slot::Leased { lease: held, .. }) if held == *lease => {
                    moka::ops::compute::Op::Remove
                }
                _ => moka::ops::compute::Op::Nop,
            }
        });
        Ok(())
    }
}

#[cfg(feature = "redis")]
pub use self::redis_store::RedisStore;

#[cfg(feature = "redis")]
mod redis_store {
    use std::time::Duration;

    use super::{Claim, EventIdentity, HandledStore, Lease, StoreUnavailable};
    use crate::transport::redis_link::{RedisLink, Target};

    /// `SET NX PX` the lease, or answer what holds the key.
    const CLAIM: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 'claimed' end
return redis.call('GET', KEYS[1]) or 'claimed-late'
";
    /// Marks handled, unless another lease holds the key now.
    const COMMIT: &str = r"
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[1] and held ~= 'done' then return 0 end
redis.call('SET', KEYS[1], 'done', 'PX', ARGV[2])
return 1
";
    /// Gives the lease up, if it is still ours.
    const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
";

    /// Handled events in Redis (feature `redis`), shared by every replica:
    /// a claim is one atomic `SET NX PX`. The same connection options as the
    /// rate limit: `redis://` or `rediss://` (rustls), a cluster, a timeout
    /// per round trip, a fresh connection after any failure. When Redis
    /// cannot answer, every method says [`StoreUnavailable`] and the
    /// delivery is answered with a retryable status: NexHealth sends it again.
    pub struct RedisStore {
        link: RedisLink,
        prefix: String,
        claim: redis::Script,
        commit: redis::Script,
        release: redis::Script,
    }

    impl std::fmt::Debug for RedisStore {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RedisStore")
                .field("url", &"<redacted>")
                .field("prefix", &self.prefix)
                .finish()
        }
    }

    impl RedisStore {
        /// Default prefix of the keys.
        pub const DEFAULT_PREFIX: &'static str = "nexhealth-api:webhook";
        /// Default wait for one round trip.
        ///
        /// Value: 500 ms.
        pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);

        /// A store in the Redis at `url` (`redis://` or `rediss://`).
        pub fn new(url: &str) -> Result<Self, crate::error::Error> {
            Self::build(Target::Single(url.to_string()), None, Self::DEFAULT_TIMEOUT)
        }

        /// A store in the Redis Cluster reachable at any of `nodes`.
        pub fn cluster<I, S>(nodes: I) -> Result<Self, crate::error::Error>
        where
            I: IntoIterator<Item = S>,
            S: Into<String>,
        {
            let nodes = nodes.into_iter().map(Into::into).collect();
            Self::build(Target::Cluster(nodes), None, Self::DEFAULT_TIMEOUT)
        }

        /// A store with every option: the target, PEM roots for `rediss://`,
        /// the timeout of one round trip.
        pub fn with_options(
            url: &str,
            root_certificates: Option<Vec<u8>>,
            timeout: Duration,
        ) -> Result<Self, crate::error::Error> {
            Self::build(Target::Single(url.to_string()), root_certificates, timeout)
        }

        fn build(
            target: Target,
            root_certificates: Option<Vec<u8>>,
            timeout: Duration,
        ) -> Result<Self, crate::error::Error> {
            let link = RedisLink::new(target, root_certificates, timeout).map_err(|reason| {
                crate::error::Error::invalid_request(format!("the webhook store's Redis: {reason}"))
            })?;
            Ok(Self {
                link,
                prefix: Self::DEFAULT_PREFIX.to_string(),
                claim: redis::Script::new(CLAIM),
                commit: redis::Script::new(COMMIT),
                release: redis::Script::new(RELEASE),
            })
        }

        /// The prefix of the keys (default `nexhealth-api:webhook`).
        pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
            self.prefix = prefix.into();
            self
        }

        fn key(&self, identity: &EventIdentity) -> String {
            format!("{}:{}", self.prefix, identity.to_hex())
        }
    }

    fn millis(d: Duration) -> u64 {
        d.as_millis().clamp(1, u64::MAX as u128) as u64
    }

    impl HandledStore for RedisStore {
        async fn claim(
            &self,
            identity: &EventIdentity,
            lease: Duration,
        ) -> Result<Claim, StoreUnavailable> {
            let fresh = Lease::fresh();
            let key = self.key(identity);
            let mut invocation = self.claim.key(&key);
            invocation.arg(&fresh.0).arg(millis(lease));
            let held: String = self
                .link
                .run(&invocation)
                .await
                .map_err(|reason| StoreUnavailable { reason })?;
            Ok(match held.as_str() {
                "claimed" => Claim::Claimed(fresh),
                "done" => Claim::Handled,
                // Held by a lease, or freed between the two commands: busy,
                // and the retry will find out.
                _ => Claim::Busy,
            })
        }

        async fn commit(
            &self,
            identity: &EventIdentity,
            lease: &Lease,
            keep: Duration,
        ) -> Result<(), StoreUnavailable> {
            let key = self.key(identity);
            let mut invocation = self.commit.key(&key);
            invocation.arg(&lease.0).arg(millis(keep));
            self.link
                .run::<i64>(&invocation)
                .await
                .map(drop)
                .map_err(|reason| StoreUnavailable { reason })
        }

        async fn release(
            &self,
            identity: &EventIdentity,
            lease: &Lease,
        ) -> Result<(), StoreUnavailable> {
            let key = self.key(identity);
            let mut invocation = self.release.key(&key);
            invocation.arg(&lease.0);
            self.link
                .run::<i64>(&invocation)
                .await
                .map(drop)
                .map_err(|reason| StoreUnavailable { reason })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(n: u8) -> EventIdentity {
        EventIdentity::of(&serde_json::json!({"event_name": "e", "n": n}))
    }

    #[tokio::test]
    async fn claim_commit_release_in_memory() {
        let store = MemoryStore::default();
        let lease = Duration::from_secs(30);
        let Claim::Claimed(first) = store.claim(&identity(1), lease).await.unwrap() else {
            panic!("the first claim wins");
        };
        assert_eq!(store.claim(&identity(1), lease).await, Ok(Claim::Busy));
        // Released: claimable again; a stale lease commits nothing.
        store.release(&identity(1), &first).await.unwrap();
        let Claim::Claimed(second) = store.claim(&identity(1), lease).await.unwrap() else {
            panic!("claimable after a release");
        };
        store.commit(&identity(1), &first, lease).await.unwrap();
        assert_eq!(store.claim(&identity(1), lease).await, Ok(Claim::Busy));
        store.commit(&identity(1), &second, lease).await.unwrap();
        assert_eq!(store.claim(&identity(1), lease).await, Ok(Claim::Handled));
        // Another event is its own.
        assert!(matches!(
            store.claim(&identity(2), lease).await,
            Ok(Claim::Claimed(_))
        ));
    }

    #[tokio::test]
    async fn a_stale_lease_releases_nothing_and_handled_entries_expire() {
        let store = MemoryStore::default();
        let Ok(Claim::Claimed(stale)) = store.claim(&identity(1), Duration::from_millis(30)).await
        else {
            panic!("claimed");
        };
        tokio::time::sleep(Duration::from_millis(80)).await;
        let Ok(Claim::Claimed(current)) = store.claim(&identity(1), Duration::from_secs(30)).await
        else {
            panic!("claimable once the lease ran out");
        };
        store.release(&identity(1), &stale).await.unwrap();
        assert_eq!(
            store.claim(&identity(1), Duration::from_secs(30)).await,
            Ok(Claim::Busy)
        );
        // Handled, kept 50 ms: then forgotten (a keep is an expiry, not forever).
        store
            .commit(&identity(1), &current, Duration::from_millis(50))
            .await
            .unwrap();
        assert_eq!(
            store.claim(&identity(1), Duration::from_secs(30)).await,
            Ok(Claim::Handled)
        );
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(matches!(
            store.claim(&identity(1), Duration::from_secs(30)).await,
            Ok(Claim::Claimed(_))
        ));
        assert!(format!("{store:?}").starts_with("MemoryStore { entries: "));
    }

    #[tokio::test]
    async fn a_lease_runs_out_and_the_store_is_bounded() {
        let store = MemoryStore::default();
        let Claim::Claimed(_) = store
            .claim(&identity(1), Duration::from_millis(50))
            .await
            .unwrap()
        else {
            panic!("claimed");
        };
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(matches!(
            store.claim(&identity(1), Duration::from_secs(1)).await,
            Ok(Claim::Claimed(_))
        ));
        let small = MemoryStore::with_capacity(10);
        for n in 0..100 {
            let Ok(Claim::Claimed(lease)) =
                small.claim(&identity(n), Duration::from_secs(60)).await
            else {
                panic!("claimed {n}");
            };
            small
                .commit(&identity(n), &lease, Duration::from_secs(60))
                .await
                .unwrap();
        }
        small.cache.run_pending_tasks();
        assert!(
            small.cache.entry_count() <= 10,
            "{}",
            small.cache.entry_count()
        );
    }
}
