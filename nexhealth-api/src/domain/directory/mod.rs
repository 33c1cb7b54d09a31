//! A cached directory of institutions and their locations, from
//! `GET /locations`, as NexHealth advises: store subdomains and location ids
//! instead of asking again before every call.
//!
//! It reads one endpoint only. Institutions are keyed by their id; the
//! subdomain of an [`Entry`] is the one `/locations` gives, which another
//! endpoint may spell differently (see [`crate::overview`]): to join with
//! `/institutions`, use [`Snapshot::in_institution`], not the subdomain.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::domain::changes::Change;
pub use crate::domain::snapshot::{Entry, MAX_REPLACEMENTS, Scope, Snapshot};
use crate::error::Error;
use crate::generated::Client;
use crate::generated::types::InstitutionLocations;

/// The least time between two refreshes caused by unknown ids (see
/// [`LocationDirectory::with_unknown_refresh`]).
///
/// Value: 30 s.
pub const DEFAULT_UNKNOWN_REFRESH: Duration = Duration::from_secs(30);

/// How long a fetched directory is used before it is fetched again.
///
/// Value: 15 minutes.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);

/// What a directory is built from; kept to build it again with one change.
#[derive(Clone)]
struct Settings {
    client: Client,
    subdomain: Option<String>,
    ttl: Duration,
    /// The least time between two refreshes caused by unknown ids.
    unknown_refresh: Duration,
    /// The fleet's copy, when shared.
    #[cfg(feature = "redis")]
    share: Option<Arc<crate::domain::fleet::DirectoryShare>>,
}

/// Which copy a refresh accepts.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
#[derive(Clone, Copy)]
struct Accept {
    /// The oldest copy (from the fleet) accepted; zero fetches now.
    max_age: Duration,
    /// Only a copy fetched after the current one.
    newer: bool,
}

/// A copy of `GET /locations`, fetched here or read from the fleet.
struct Obtained {
    institutions: Vec<InstitutionLocations>,
    /// How long ago its fetch began.
    age: Duration,
    shared_at: Option<i64>,
    /// The replacements stored with a copy read from the fleet (`None`:
    /// fetched here).
    replacements: Option<BTreeMap<i32, i32>>,
    /// This replica fetched it for the fleet, under this lease.
    #[cfg(feature = "redis")]
    lease: Option<HeldLease>,
}

impl Obtained {
    fn fetched(institutions: Vec<InstitutionLocations>, started: Instant) -> Self {
        Self {
            institutions,
            age: started.elapsed(),
            shared_at: None,
            replacements: None,
            #[cfg(feature = "redis")]
            lease: None,
        }
    }
}

/// The fleet's lease, held while this replica fetches and publishes for the
/// fleet. Dropped before it was given back (the refresh cancelled by its
/// caller, its future dropped; or publishing failed), it is given back on the
/// current tokio runtime, so the other replicas do not wait out the lease.
#[cfg(feature = "redis")]
struct HeldLease {
    share: Arc<crate::domain::fleet::DirectoryShare>,
    lease: Option<crate::domain::fleet::Lease>,
}

#[cfg(feature = "redis")]
impl HeldLease {
    fn new(
        share: &Arc<crate::domain::fleet::DirectoryShare>,
        lease: crate::domain::fleet::Lease,
    ) -> Self {
        Self {
            share: share.clone(),
            lease: Some(lease),
        }
    }

    /// The generation fetched under it.
    fn at_ms(&self) -> Option<i64> {
        self.lease.as_ref().map(|lease| lease.at_ms)
    }

    /// Stores the copy, which gives the lease back; a failure is Redis
    /// trouble, and the lease is then given back in the background.
    async fn publish(
        mut self,
        institutions: &[InstitutionLocations],
        replacements: &BTreeMap<i32, i32>,
    ) {
        let Some(lease) = &self.lease else { return };
        // Cancelled while it waits: still held, so given back on drop.
        match self.share.publish(lease, institutions, replacements).await {
            Ok(()) => self.lease = None,
            Err(reason) => self.share.trouble(reason),
        }
    }

    /// Gives the lease back now (after a failed fetch).
    async fn release(mut self) {
        if let Some(lease) = &self.lease {
            self.share.release(lease).await;
        }
        self.lease = None;
    }
}

#[cfg(feature = "redis")]
impl Drop for HeldLease {
    fn drop(&mut self) {
        let Some(lease) = self.lease.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let share = self.share.clone();
                runtime.spawn(async move { share.release(&lease).await });
            }
            // No runtime to run it on: the lease expires.
            Err(_) => tracing::debug!("the directory's lease could not be given back: it expires"),
        }
    }
}

struct Inner {
    settings: Settings,
    current: RwLock<Arc<Snapshot>>,
    refresh: tokio::sync::Mutex<()>,
    fetches: std::sync::atomic::AtomicU64,
}

/// The directory: fetched on first use, kept for a TTL, refreshed on demand.
/// Cloning shares the cache; concurrent lookups share one refresh.
#[derive(Clone)]
pub struct LocationDirectory(Arc<Inner>);

impl std::fmt::Debug for LocationDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocationDirectory")
            .field("ttl", &self.0.settings.ttl)
            .field("fetches", &self.fetches())
            .finish()
    }
}

impl LocationDirectory {
    /// A directory of every institution the client's key can reach.
    pub fn new(client: Client) -> Self {
        Self::build(Settings {
            client,
            subdomain: None,
            ttl: DEFAULT_TTL,
            unknown_refresh: DEFAULT_UNKNOWN_REFRESH,
            #[cfg(feature = "redis")]
            share: None,
        })
    }

    /// A directory of one institution.
    pub fn for_subdomain(client: Client, subdomain: impl Into<String>) -> Self {
        let mut settings = Self::new(client).0.settings.clone();
        settings.subdomain = Some(subdomain.into());
        Self::build(settings)
    }

    /// Changes how long a fetched directory is used.
    pub fn with_ttl(self, ttl: Duration) -> Self {
        let mut settings = self.0.settings.clone();
        settings.ttl = ttl;
        Self::build(settings)
    }

    /// Shares the directory with every replica that uses the same Redis and
    /// API key (feature `redis`; see [`fleet`](crate::fleet)): one
    /// `GET /locations` per refresh for the whole fleet, fetched by the
    /// replica holding a lease and read by the others; each replica still
    /// sees every change, and fetches for itself while Redis is in trouble.
    /// `Err` when the share's Redis URL is not valid (nothing is connected yet).
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn shared(self, share: &crate::domain::fleet::FleetShare) -> Result<Self, Error> {
        let mut settings = self.0.settings.clone();
        settings.share = Some(Arc::new(crate::domain::fleet::DirectoryShare::new(
            share,
            &settings.client,
            settings.subdomain.as_deref(),
        )?));
        Ok(Self::build(settings))
    }

    /// Changes the least time between two refreshes caused by looking up an
    /// id the directory does not know ([`DEFAULT_UNKNOWN_REFRESH`]): a location
    /// added after the last fetch is found on first use, and a flood of
    /// unknown ids costs at most one `GET /locations` per interval.
    pub fn with_unknown_refresh(self, interval: Duration) -> Self {
        let mut settings = self.0.settings.clone();
        settings.unknown_refresh = interval;
        Self::build(settings)
    }

    fn build(settings: Settings) -> Self {
        Self(Arc::new(Inner {
            settings,
            current: RwLock::new(Arc::new(Snapshot::default())),
            refresh: tokio::sync::Mutex::new(()),
            fetches: Default::default(),
        }))
    }

    /// How many times the directory called `GET /locations`.
    pub fn fetches(&self) -> u64 {
        self.0.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn fresh(&self) -> Option<Arc<Snapshot>> {
        let current = self.0.current.read().ok()?.clone();
        current
            .fetched_at
            .filter(|at| at.elapsed() < self.0.settings.ttl)
            .map(|_| current)
    }

    /// The current snapshot, fetching it if missing or older than the TTL.
    pub async fn snapshot(&self) -> Result<Arc<Snapshot>, Error> {
        if let Some(snapshot) = self.fresh() {
            return Ok(snapshot);
        }
        let _guard = self.0.refresh.lock().await;
        if let Some(snapshot) = self.fresh() {
            return Ok(snapshot);
        }
        self.fetch(Accept {
            max_age: self.0.settings.ttl,
            newer: false,
        })
        .await
    }

    /// Fetches the directory now, whatever its age.
    pub async fn refresh(&self) -> Result<Arc<Snapshot>, Error> {
        self.refresh_changes().await.map(|(snapshot, _)| snapshot)
    }

    /// Fetches the directory now and answers what changed since the previous
    /// fetch (nothing for the first one). Shared, a copy that another replica
    /// is fetching at this moment is waited for and used.
    pub async fn refresh_changes(&self) -> Result<(Arc<Snapshot>, Vec<Change>), Error> {
        self.refresh_within(Duration::ZERO).await
    }

    /// A refresh that accepts the fleet's copy when it is younger than
    /// `max_age` and newer than this replica's.
    async fn refresh_within(
        &self,
        max_age: Duration,
    ) -> Result<(Arc<Snapshot>, Vec<Change>), Error> {
        let _guard = self.0.refresh.lock().await;
        self.fetch_changes(Accept {
            max_age,
            newer: true,
        })
        .await
    }

    /// Refreshes every `every` and yields each change as it is seen: the
    /// first fetch is the baseline (no changes), then one item per change of
    /// each refresh. A failed refresh is yielded as an error and the watch
    /// goes on at the next tick. Shared, a tick uses the fleet's copy when
    /// another replica fetched it within `every`.
    pub fn watch(
        &self,
        every: Duration,
    ) -> impl futures::Stream<Item = Result<Change, Error>> + use<> {
        use futures::StreamExt;
        let directory = self.clone();
        let mut ticks = tokio::time::interval(every.max(Duration::from_millis(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        futures::stream::unfold(
            (directory, ticks),
            move |(directory, mut ticks)| async move {
                ticks.tick().await;
                let batch: Vec<Result<Change, Error>> = match directory.refresh_within(every).await
                {
                    Ok((_, changes)) => changes.into_iter().map(Ok).collect(),
                    Err(e) => vec![Err(e)],
                };
                Some((futures::stream::iter(batch), (directory, ticks)))
            },
        )
        .flatten()
    }

    async fn fetch(&self, accept: Accept) -> Result<Arc<Snapshot>, Error> {
        self.fetch_changes(accept)
            .await
            .map(|(snapshot, _)| snapshot)
    }

    /// `GET /locations`, counted.
    async fn get_locations(&self) -> Result<Vec<InstitutionLocations>, Error> {
        use progenitor_client::ClientInfo;
        self.0
            .fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.0.settings.client.inner().metrics.directory_fetch();
        let mut request = self.0.settings.client.get_locations();
        if let Some(subdomain) = &self.0.settings.subdomain {
            request = request.subdomain(subdomain.as_str());
        }
        Ok(request.await?.into_data())
    }

    /// A copy to use now: the fleet's when shared and acceptable, else fetched.
    async fn obtain(&self, accept: Accept, previous: &Snapshot) -> Result<Obtained, Error> {
        #[cfg(feature = "redis")]
        if let Some(share) = &self.0.settings.share {
            return self.obtain_shared(share, accept, previous).await;
        }
        let _ = (accept, previous);
        let started = Instant::now();
        Ok(Obtained::fetched(self.get_locations().await?, started))
    }

    /// The fleet's copy when it is acceptable; else this replica fetches it
    /// for the fleet under the lease, or waits (at most the lease) for the
    /// replica that does, or, with Redis in trouble, fetches for itself.
    #[cfg(feature = "redis")]
    async fn obtain_shared(
        &self,
        share: &Arc<crate::domain::fleet::DirectoryShare>,
        accept: Accept,
        previous: &Snapshot,
    ) -> Result<Obtained, Error> {
        use crate::domain::fleet::Read;
        let started = Instant::now();
        let (mut max_age, mut newer_than) = (accept.max_age, None);
        if accept.newer
            && let Some(fetched_at) = previous.fetched_at
        {
            // Fetched after this replica's copy, on either clock.
            max_age = max_age.min(fetched_at.elapsed());
            newer_than = previous.shared_at;
        }
        let give_up = started + share.lease + share.redis_timeout;
        let mut pause = Duration::from_millis(20);
        loop {
            let read = match share.read(max_age, newer_than).await {
                Ok(read) => read,
                Err(reason) => {
                    share.trouble(reason);
                    return Ok(Obtained::fetched(self.get_locations().await?, started));
                }
            };
            share.cleared();
            match read {
                Read::Fresh(copy) => {
                    return Ok(Obtained {
                        institutions: copy.institutions,
                        age: copy.age,
                        shared_at: Some(copy.at_ms),
                        replacements: Some(copy.replacements),
                        lease: None,
                    });
                }
                Read::Lease(lease) => {
                    // Given back however this ends, a cancelled refresh included.
                    let lease = HeldLease::new(share, lease);
                    return match self.get_locations().await {
                        Ok(institutions) => Ok(Obtained {
                            shared_at: lease.at_ms(),
                            lease: Some(lease),
                            ..Obtained::fetched(institutions, started)
                        }),
                        Err(e) => {
                            lease.release().await;
                            Err(e)
                        }
                    };
                }
                Read::Wait(stored) => {
                    // Whatever the replica holding the lease stores next.
                    max_age = share.lease.saturating_add(share.redis_timeout);
                    newer_than = newer_than.max(stored).or(Some(i64::MIN));
                    let now = Instant::now();
                    if now >= give_up {
                        return Ok(Obtained::fetched(self.get_locations().await?, started));
                    }
                    tokio::time::sleep(pause.min(give_up - now)).await;
                    pause = (pause * 2).min(Duration::from_millis(250));
                }
            }
        }
    }

    async fn fetch_changes(&self, accept: Accept) -> Result<(Arc<Snapshot>, Vec<Change>), Error> {
        let previous = self.0.current.read().map(|c| c.clone()).unwrap_or_default();
        let obtained = self.obtain(accept, &previous).await?;
        #[cfg(feature = "redis")]
        let for_fleet = obtained
            .lease
            .as_ref()
            .map(|_| obtained.institutions.clone());
        let mut snapshot = Snapshot::from_institutions(obtained.institutions);
        snapshot.fetched_at = Some(
            Instant::now()
                .checked_sub(obtained.age)
                .unwrap_or_else(Instant::now),
        );
        snapshot.shared_at = obtained.shared_at;
        let changes = if previous.fetched_at.is_some() {
            crate::domain::changes::changes(&previous, &snapshot)
        } else {
            Vec::new()
        };
        snapshot.settle_replacements(
            &previous,
            changes.iter().filter_map(Change::replacement),
            obtained.replacements.as_ref(),
        );
        #[cfg(feature = "redis")]
        if let (Some(lease), Some(institutions)) = (obtained.lease, &for_fleet) {
            // Fetched here: only the replacements this replica justifies.
            lease.publish(institutions, &snapshot.replacements).await;
        }
        let snapshot = Arc::new(snapshot);
        if let Ok(mut current) = self.0.current.write() {
            *current = snapshot.clone();
        }
        Ok((snapshot, changes))
    }

    /// The snapshot, refreshed first when `known` says it lacks what is
    /// asked and no fetch happened within the unknown-id interval: concurrent
    /// misses share one refresh, and a flood costs one call per interval.
    async fn knowing(&self, known: impl Fn(&Snapshot) -> bool) -> Result<Arc<Snapshot>, Error> {
        let snapshot = self.snapshot().await?;
        if known(&snapshot) || self.recently_fetched(&snapshot) {
            return Ok(snapshot);
        }
        let _guard = self.0.refresh.lock().await;
        let current = self
            .0
            .current
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|_| snapshot.clone());
        // A refresh finished while this lookup waited: it is this lookup's too.
        if !Arc::ptr_eq(&current, &snapshot) || known(&current) || self.recently_fetched(&current) {
            return Ok(current);
        }
        self.fetch(Accept {
            max_age: self.0.settings.unknown_refresh,
            newer: true,
        })
        .await
    }

    fn recently_fetched(&self, snapshot: &Snapshot) -> bool {
        snapshot
            .fetched_at
            .is_some_and(|at| at.elapsed() < self.0.settings.unknown_refresh)
    }

    /// A location by NexHealth id. An id the directory does not know causes
    /// one refresh (at most one per [`with_unknown_refresh`](Self::with_unknown_refresh)
    /// interval) before the answer is `None`.
    pub async fn location(&self, location_id: i32) -> Result<Option<Entry>, Error> {
        Ok(self
            .knowing(|s| s.location(location_id).is_some())
            .await?
            .location(location_id)
            .cloned())
    }

    /// The location to use now in place of `old_id` (see [`Snapshot::successor`]).
    pub async fn successor(&self, old_id: i32) -> Result<Option<i32>, Error> {
        Ok(self.snapshot().await?.successor(old_id))
    }

    /// A location by its id in the practice's health record system.
    pub async fn by_foreign_id(
        &self,
        subdomain: &str,
        foreign_id: &str,
    ) -> Result<Option<Entry>, Error> {
        Ok(self
            .snapshot()
            .await?
            .by_foreign_id(subdomain, foreign_id)
            .cloned())
    }

    /// The locations of one institution, inactive ones included.
    pub async fn in_subdomain(&self, subdomain: &str) -> Result<Vec<Entry>, Error> {
        Ok(self
            .snapshot()
            .await?
            .in_subdomain(subdomain)
            .cloned()
            .collect())
    }

    /// The subdomain and location id a location-scoped call needs (an
    /// unknown id refreshes first, as for [`location`](Self::location)).
    pub async fn scope(&self, location_id: i32) -> Result<Scope, Error> {
        self.knowing(|s| s.location(location_id).is_some())
            .await?
            .scope(location_id, None)
    }

    /// Like [`LocationDirectory::scope`], and checks the location belongs to `subdomain`.
    pub async fn scope_in(&self, subdomain: &str, location_id: i32) -> Result<Scope, Error> {
        self.knowing(|s| s.location(location_id).is_some())
            .await?
            .scope(location_id, Some(subdomain))
    }
}

#[cfg(all(test, feature = "mock"))]
mod tests;

#[cfg(all(test, feature = "mock", feature = "redis"))]
mod shared_tests;
