//! A cached directory of institutions and their locations, from
//! `GET /locations`, as NexHealth advises: store subdomains and location ids
//! instead of asking again before every call.
//!
//! It reads one endpoint only. Institutions are keyed by their id; the
//! subdomain of an [`Entry`] is the one `/locations` gives, which another
//! endpoint may spell differently (see [`crate::overview`]): to join with
//! `/institutions`, use [`Snapshot::in_institution`], not the subdomain.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::domain::changes::Change;
use crate::error::Error;
use crate::generated::Client;
use crate::generated::types::{InstitutionLocations, Location};

/// The least time between two refreshes caused by unknown ids (see
/// [`LocationDirectory::with_unknown_refresh`]).
///
/// Value: 30 s.
pub const DEFAULT_UNKNOWN_REFRESH: Duration = Duration::from_secs(30);

/// How long a fetched directory is used before it is fetched again.
///
/// Value: 15 minutes.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);

/// The two values a location-scoped call needs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Scope {
    /// The institution's subdomain (`?subdomain=`).
    pub subdomain: String,
    /// The location's id (`?location_id=`).
    pub location_id: i32,
    /// NexHealth flags the location inactive: it should not be used for new work.
    pub inactive: bool,
}

/// One location and the institution it belongs to.
///
/// Serialized as its fields, the location as NexHealth sent it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Entry {
    /// The institution's id.
    pub institution_id: i32,
    /// The institution's name.
    pub institution_name: Option<String>,
    /// The institution's subdomain.
    pub subdomain: String,
    /// The location as NexHealth described it.
    pub location: Location,
}

impl Entry {
    /// Whether NexHealth flags the location inactive.
    pub fn is_inactive(&self) -> bool {
        self.location.inactive == Some(true)
    }

    /// The values a location-scoped call needs.
    pub fn scope(&self) -> Scope {
        Scope {
            subdomain: self.subdomain.clone(),
            location_id: self.location.id,
            inactive: self.is_inactive(),
        }
    }
}

/// An immutable view of the directory at one moment.
///
/// Serialized as `{"entries": [Entry…], "subdomains": […], "fetched_secs_ago": 12}`
/// (`null` for a snapshot that was not fetched).
#[derive(Debug, Default)]
pub struct Snapshot {
    entries: Vec<Entry>,
    by_id: HashMap<i32, usize>,
    subdomains: Vec<String>,
    fetched_at: Option<Instant>,
    /// Old location id → the id that replaced it, over the directory's life.
    replacements: std::collections::BTreeMap<i32, i32>,
    /// The fleet's generation of this copy (when its fetch began, on Redis's
    /// clock, in ms), when it came through a [`fleet`](crate::fleet) share.
    shared_at: Option<i64>,
}

impl Snapshot {
    /// Flattens NexHealth's institution → locations answer.
    pub fn from_institutions(institutions: Vec<InstitutionLocations>) -> Self {
        let mut snapshot = Self::default();
        for institution in institutions {
            snapshot.subdomains.push(institution.subdomain.clone());
            for location in institution.locations {
                snapshot.by_id.insert(location.id, snapshot.entries.len());
                snapshot.entries.push(Entry {
                    institution_id: institution.id,
                    institution_name: institution.name.clone(),
                    subdomain: institution.subdomain.clone(),
                    location,
                });
            }
        }
        snapshot
    }

    /// The location to use now in place of `old_id`: itself when it is still
    /// current, else the end of the chain of [`Change::Replaced`](crate::changes::Change::Replaced)
    /// the directory has seen (an id replaced, then its successor replaced,
    /// …). `None` when `old_id` is gone with no successor singled out: the
    /// directory does not guess.
    pub fn successor(&self, old_id: i32) -> Option<i32> {
        let mut id = old_id;
        // Bounded: a chain can be no longer than the replacements known.
        for _ in 0..=self.replacements.len() {
            match self.replacements.get(&id) {
                Some(&next) => id = next,
                None => break,
            }
        }
        match self.location(id) {
            Some(entry) if !entry.is_inactive() => Some(id),
            _ => None,
        }
    }

    /// Records that `new` replaced `old` (the directory does, on each
    /// refresh that finds a [`Change::Replaced`]).
    pub(crate) fn record_replacement(&mut self, old: i32, new: i32) {
        self.replacements.insert(old, new);
    }

    /// The replacements seen so far: old id → new id.
    pub fn replacements(&self) -> &std::collections::BTreeMap<i32, i32> {
        &self.replacements
    }

    /// Every location, inactive ones included.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The subdomains this key can reach.
    pub fn subdomains(&self) -> &[String] {
        &self.subdomains
    }

    /// A location by NexHealth id.
    pub fn location(&self, location_id: i32) -> Option<&Entry> {
        self.by_id.get(&location_id).map(|&i| &self.entries[i])
    }

    /// The locations of the institution with NexHealth id `institution_id`:
    /// the join key to use with `/institutions`.
    pub fn in_institution(&self, institution_id: i32) -> impl Iterator<Item = &Entry> + '_ {
        self.entries
            .iter()
            .filter(move |e| e.institution_id == institution_id)
    }

    /// The locations whose institution `/locations` files under `subdomain`.
    pub fn in_subdomain<'a>(&'a self, subdomain: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries
            .iter()
            .filter(move |e| e.subdomain == subdomain)
    }

    /// A location by its id in the practice's health record system.
    pub fn by_foreign_id(&self, subdomain: &str, foreign_id: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| {
            e.subdomain == subdomain && e.location.foreign_id.as_deref() == Some(foreign_id)
        })
    }

    /// The scope of `location_id`, checked against `subdomain` when given:
    /// answers "not accessible" or "not in this institution" without a call.
    pub fn scope(&self, location_id: i32, subdomain: Option<&str>) -> Result<Scope, Error> {
        if let Some(subdomain) = subdomain
            && !self.subdomains.iter().any(|s| s == subdomain)
        {
            return Err(Error::SubdomainNotAccessible {
                subdomain: subdomain.to_string(),
            });
        }
        match (self.location(location_id), subdomain) {
            (Some(entry), Some(subdomain)) if entry.subdomain != subdomain => {
                Err(Error::LocationNotInInstitution {
                    location_id,
                    subdomain: subdomain.to_string(),
                })
            }
            (Some(entry), _) => Ok(entry.scope()),
            (None, _) => Err(Error::UnknownLocation { location_id }),
        }
    }
}

impl serde::Serialize for Snapshot {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = serializer.serialize_struct("Snapshot", 4)?;
        out.serialize_field("entries", &self.entries)?;
        out.serialize_field("subdomains", &self.subdomains)?;
        out.serialize_field("replacements", &self.replacements)?;
        out.serialize_field(
            "fetched_secs_ago",
            &self.fetched_at.map(|at| at.elapsed().as_secs()),
        )?;
        out.end()
    }
}

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
    replacements: std::collections::BTreeMap<i32, i32>,
    /// This replica fetched it for the fleet, under this lease.
    #[cfg(feature = "redis")]
    lease: Option<crate::domain::fleet::Lease>,
}

impl Obtained {
    fn fetched(institutions: Vec<InstitutionLocations>, started: Instant) -> Self {
        Self {
            institutions,
            age: started.elapsed(),
            shared_at: None,
            replacements: Default::default(),
            #[cfg(feature = "redis")]
            lease: None,
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
        share: &crate::domain::fleet::DirectoryShare,
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
                        replacements: copy.replacements,
                        lease: None,
                    });
                }
                Read::Lease(lease) => {
                    return match self.get_locations().await {
                        Ok(institutions) => Ok(Obtained {
                            shared_at: Some(lease.at_ms),
                            lease: Some(lease),
                            ..Obtained::fetched(institutions, started)
                        }),
                        Err(e) => {
                            share.release(&lease).await;
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
        snapshot.replacements = previous.replacements.clone();
        snapshot.replacements.extend(obtained.replacements);
        for change in &changes {
            if let Change::Replaced { old, new, .. } = change {
                snapshot.record_replacement(*old, *new);
            }
        }
        #[cfg(feature = "redis")]
        if let (Some(share), Some(lease), Some(institutions)) =
            (&self.0.settings.share, &obtained.lease, &for_fleet)
            && let Err(reason) = share
                .publish(lease, institutions, &snapshot.replacements)
                .await
        {
            share.trouble(reason);
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
mod tests {
    use super::*;
    use crate::mock::{MockServerExt, StandIn, payloads};

    fn snapshot() -> Snapshot {
        Snapshot::from_institutions(payloads::locations().data)
    }

    fn client(base: &str) -> Client {
        Client::builder("unit-key")
            .base_url(base)
            .retry(crate::transport::policy::RetryPolicy::none())
            .build()
            .unwrap()
    }

    #[test]
    fn a_snapshot_answers_by_id_institution_subdomain_and_foreign_id() {
        let s = snapshot();
        assert_eq!(s.entries().len(), 2);
        assert_eq!(s.subdomains(), ["example-subdomain"]);
        assert_eq!(s.location(7).unwrap().location.id, 7);
        assert!(s.location(9).is_none());
        assert_eq!(s.in_institution(1).count(), 2);
        assert_eq!(s.in_institution(2).count(), 0);
        assert_eq!(s.in_subdomain("example-subdomain").count(), 2);
        assert_eq!(s.in_subdomain("other").count(), 0);
        assert_eq!(
            s.by_foreign_id("example-subdomain", "2")
                .map(|e| e.location.id),
            Some(8)
        );
        assert!(s.by_foreign_id("other", "2").is_none());
        assert!(s.by_foreign_id("example-subdomain", "3").is_none());
        let seven = s.location(7).unwrap();
        let eight = s.location(8).unwrap();
        assert!(!seven.is_inactive() && eight.is_inactive());
        assert_eq!(
            eight.scope(),
            Scope {
                subdomain: "example-subdomain".into(),
                location_id: 8,
                inactive: true
            }
        );
        assert_eq!(s.scope(7, None).unwrap().location_id, 7);
        assert_eq!(
            s.scope(7, Some("example-subdomain")).unwrap().location_id,
            7
        );
        assert!(matches!(
            s.scope(7, Some("elsewhere")),
            Err(Error::SubdomainNotAccessible { .. })
        ));
        assert!(matches!(
            s.scope(9, None),
            Err(Error::UnknownLocation { location_id: 9 })
        ));
        // Two institutions: a location checked against the other's subdomain.
        let mut two = payloads::locations().data;
        let mut other = two[0].clone();
        other.id = 2;
        other.subdomain = "second".into();
        other.locations.truncate(0);
        two.push(other);
        let s = Snapshot::from_institutions(two);
        assert!(matches!(
            s.scope(7, Some("second")),
            Err(Error::LocationNotInInstitution { location_id: 7, .. })
        ));
    }

    #[test]
    fn a_successor_follows_the_chain_to_an_active_location_and_never_guesses() {
        let mut s = snapshot();
        assert_eq!(s.successor(7), Some(7), "current: itself");
        assert_eq!(s.successor(8), None, "inactive, no successor");
        assert_eq!(s.successor(5), None, "unknown");
        s.record_replacement(5, 6);
        s.record_replacement(6, 7);
        assert_eq!(s.successor(5), Some(7), "5 → 6 → 7");
        assert_eq!(s.replacements().len(), 2);
        s.record_replacement(3, 8);
        assert_eq!(s.successor(3), None, "the end of the chain is inactive");
        // A loop ends: bounded by the replacements known.
        s.record_replacement(1, 2);
        s.record_replacement(2, 1);
        assert_eq!(s.successor(1), None);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["replacements"]["5"], 6);
        assert_eq!(json["fetched_secs_ago"], serde_json::Value::Null);
        assert_eq!(json["entries"].as_array().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_directory_fetches_once_per_ttl_and_refresh_always_fetches() {
        let server = StandIn::with_moving_locations(usize::MAX / 2).await;
        let directory = LocationDirectory::new(client(&server.base_url()));
        assert_eq!(directory.fetches(), 0);
        let first = directory.snapshot().await.unwrap();
        let again = directory.snapshot().await.unwrap();
        assert!(Arc::ptr_eq(&first, &again), "within the TTL: the same copy");
        assert_eq!(server.locations_served(), 1);
        directory.refresh().await.unwrap();
        assert_eq!((directory.fetches(), server.locations_served()), (2, 2));
        let serialized = serde_json::to_value(&*directory.snapshot().await.unwrap()).unwrap();
        assert_eq!(serialized["fetched_secs_ago"], 0);
        // A zero TTL: every snapshot fetches.
        let eager = directory.clone().with_ttl(Duration::ZERO);
        eager.snapshot().await.unwrap();
        eager.snapshot().await.unwrap();
        assert_eq!(eager.fetches(), 2);
        assert_eq!(directory.fetches(), 2, "a new directory: its own cache");
        let shown = format!("{eager:?}");
        assert!(
            shown.contains("ttl: 0ns") && shown.contains("fetches: 2"),
            "{shown}"
        );
    }

    /// Mocks the token exchange and a `GET /locations` answering the
    /// spec's example after `delay`.
    pub(super) async fn slow_locations(
        server: &crate::mock::httpmock::MockServer,
        delay: Duration,
    ) -> crate::mock::httpmock::Mock<'_> {
        server.post_authenticates(|_, then| {
            then.created(&payloads::authenticate());
        });
        server
            .mock_async(|when, then| {
                when.path("/locations");
                then.status(200)
                    .delay(delay)
                    .header("content-type", "application/json")
                    .body(serde_json::to_string(&payloads::locations()).unwrap());
            })
            .await
    }

    #[test]
    fn the_defaults_are_nexhealth_s_advice_and_bounded() {
        assert_eq!(DEFAULT_TTL, Duration::from_secs(900));
        assert_eq!(DEFAULT_UNKNOWN_REFRESH, Duration::from_secs(30));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_of_unknown_ids_costs_one_fetch_and_known_ids_never_wait() {
        let server = crate::mock::httpmock::MockServer::start_async().await;
        let slow = slow_locations(&server, Duration::from_millis(400)).await;
        let directory = LocationDirectory::new(client(&server.base_url()))
            .with_unknown_refresh(Duration::from_millis(1));
        directory.snapshot().await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        // 1,000 lookups of unknown ids at once: one refresh for all of them.
        let lookups = (0..1_000).map(|n| {
            let directory = directory.clone();
            async move { directory.location(100_000 + n).await }
        });
        let flood = tokio::spawn(futures::future::join_all(lookups));
        tokio::time::sleep(Duration::from_millis(100)).await;
        // A known id is answered while that refresh is in flight.
        let started = Instant::now();
        assert!(directory.location(7).await.unwrap().is_some());
        assert!(
            started.elapsed() < Duration::from_millis(200),
            "{:?}",
            started.elapsed()
        );
        let answers = flood.await.unwrap();
        assert!(answers.iter().all(|a| matches!(a, Ok(None))));
        slow.assert_calls_async(2).await;
        assert_eq!(directory.fetches(), 2);
    }

    #[tokio::test]
    async fn an_unknown_id_refreshes_once_per_interval() {
        let server = StandIn::with_moving_locations(1).await;
        let directory = LocationDirectory::new(client(&server.base_url()))
            .with_unknown_refresh(Duration::from_secs(3_600));
        // Known after the first fetch: no refresh.
        assert!(directory.location(7).await.unwrap().is_some());
        assert_eq!(directory.fetches(), 1);
        // Just fetched: 9 is not looked for again within the interval.
        assert!(directory.location(9).await.unwrap().is_none());
        assert_eq!(directory.fetches(), 1);
        // With no interval, an unknown id refreshes, and 9 (added) is found.
        let server = StandIn::with_moving_locations(1).await;
        let eager = LocationDirectory::new(client(&server.base_url()))
            .with_unknown_refresh(Duration::ZERO)
            .with_ttl(Duration::from_secs(3_600));
        eager.snapshot().await.unwrap();
        assert_eq!(eager.scope(9).await.unwrap().location_id, 9);
        assert_eq!(eager.fetches(), 2);
        assert_eq!(
            eager
                .scope_in("example-subdomain", 9)
                .await
                .unwrap()
                .location_id,
            9
        );
        assert_eq!(eager.fetches(), 2, "known now");
        assert!(matches!(
            eager.scope_in("elsewhere", 9).await,
            Err(Error::SubdomainNotAccessible { .. })
        ));
        assert!(matches!(
            eager.scope(12_345).await,
            Err(Error::UnknownLocation { .. })
        ));
        assert_eq!(eager.fetches(), 3, "an unknown id refreshed (now phase 2)");
        assert_eq!(
            eager
                .by_foreign_id("example-subdomain", "9")
                .await
                .unwrap()
                .map(|e| e.location.id),
            Some(9)
        );
        assert_eq!(
            eager.in_subdomain("example-subdomain").await.unwrap().len(),
            4
        );
        assert_eq!(
            eager.successor(7).await.unwrap(),
            Some(70),
            "migrated in phase 2"
        );
    }

    #[tokio::test]
    async fn refreshes_answer_the_changes_and_record_replacements() {
        let server = StandIn::with_moving_locations(1).await;
        let directory = LocationDirectory::new(client(&server.base_url()));
        let (_, first) = directory.refresh_changes().await.unwrap();
        assert!(first.is_empty(), "the first fetch is the baseline");
        let (_, added) = directory.refresh_changes().await.unwrap();
        assert!(matches!(added[..], [Change::Added { .. }]), "{added:?}");
        let (snapshot, migrated) = directory.refresh_changes().await.unwrap();
        assert!(
            migrated.iter().any(|c| matches!(
                c,
                Change::Replaced {
                    old: 7,
                    new: 70,
                    ..
                }
            )),
            "{migrated:?}"
        );
        assert_eq!(snapshot.successor(7), Some(70));
        assert_eq!(directory.successor(7).await.unwrap(), Some(70));
        // Remembered at later refreshes.
        let (later, _) = directory.refresh_changes().await.unwrap();
        assert_eq!(later.replacements().get(&7), Some(&70));
    }

    #[tokio::test]
    async fn a_directory_of_one_institution_asks_for_its_subdomain_only() {
        let server = crate::mock::httpmock::MockServer::start_async().await;
        let scoped = server
            .mock_async(|when, then| {
                when.path("/locations")
                    .query_param("subdomain", "example-subdomain");
                then.status(200)
                    .header("content-type", "application/json")
                    .body(serde_json::to_string(&payloads::locations()).unwrap());
            })
            .await;
        server.post_authenticates(|_, then| {
            then.created(&payloads::authenticate());
        });
        let directory =
            LocationDirectory::for_subdomain(client(&server.base_url()), "example-subdomain");
        assert!(directory.location(7).await.unwrap().is_some());
        scoped.assert_calls_async(1).await;
    }

    #[tokio::test]
    async fn a_watch_yields_each_change_and_goes_on_after_a_failed_refresh() {
        use futures::StreamExt;
        let server = crate::mock::httpmock::MockServer::start_async().await;
        let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = served.clone();
        let mut phases = crate::mock::location_phases();
        phases.truncate(2);
        let bodies: Vec<String> = phases
            .iter()
            .map(|p| serde_json::to_string(p).unwrap())
            .collect();
        server
            .mock_async(move |when, then| {
                when.path("/locations");
                then.respond_with(move |_: &crate::mock::httpmock::HttpMockRequest| {
                    let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    // Baseline, a failure, then phase 1.
                    let (status, body) = match n {
                        0 => (200, bodies[0].clone()),
                        1 => (500, "{}".to_string()),
                        _ => (200, bodies[1].clone()),
                    };
                    crate::mock::httpmock::HttpMockResponse::builder()
                        .status(status)
                        .header("content-type", "application/json")
                        .body(body)
                        .build()
                });
            })
            .await;
        server.post_authenticates(|_, then| {
            then.created(&payloads::authenticate());
        });
        let directory = LocationDirectory::new(client(&server.base_url()));
        let started = Instant::now();
        let items: Vec<Result<Change, Error>> = tokio::time::timeout(
            Duration::from_secs(10),
            directory.watch(Duration::from_millis(50)).take(2).collect(),
        )
        .await
        .expect("two items within 10 s");
        assert!(items[0].is_err(), "{items:?}");
        assert!(matches!(items[1], Ok(Change::Added { .. })), "{items:?}");
        assert!(
            started.elapsed() >= Duration::from_millis(100),
            "ticks apart"
        );
    }
}

#[cfg(all(test, feature = "mock", feature = "redis"))]
mod shared_tests {
    use super::tests::slow_locations;
    use super::*;
    use crate::domain::fleet::FleetShare;
    use crate::mock::{MockServerExt, RedisServer, StandIn, payloads};

    fn client(base: &str) -> Client {
        Client::builder("shared-unit-key")
            .base_url(base)
            .retry(crate::transport::policy::RetryPolicy::none())
            .build()
            .unwrap()
    }

    fn replica(base: &str, share: &FleetShare) -> LocationDirectory {
        LocationDirectory::new(client(base)).shared(share).unwrap()
    }

    const HOUR: Duration = Duration::from_secs(3_600);

    #[tokio::test]
    async fn the_fleet_fetches_each_generation_once_and_only_newer_copies_are_read() {
        let redis = RedisServer::start().unwrap();
        let server = StandIn::with_moving_locations(1).await;
        let share = FleetShare::new(redis.url()).prefix("gen");
        let (a, b) = (
            replica(&server.base_url(), &share),
            replica(&server.base_url(), &share),
        );
        a.refresh_within(HOUR).await.unwrap();
        let (copy, changes) = b.refresh_within(HOUR).await.unwrap();
        assert_eq!((a.fetches(), b.fetches()), (1, 0));
        assert!(changes.is_empty() && copy.location(9).is_none());
        // A's copy is the stored one: not newer for A, so A fetches the next.
        let (_, changes) = a.refresh_within(HOUR).await.unwrap();
        assert_eq!(a.fetches(), 2);
        assert!(matches!(changes[..], [Change::Added { .. }]), "{changes:?}");
        // B reads it, and sees the change itself.
        let (copy, changes) = b.refresh_within(HOUR).await.unwrap();
        assert_eq!(b.fetches(), 0);
        assert!(copy.location(9).is_some());
        assert!(matches!(changes[..], [Change::Added { .. }]), "{changes:?}");
        // Nothing newer than B's copy: B fetches the next generation.
        b.refresh_within(HOUR).await.unwrap();
        assert_eq!(b.fetches(), 1);
        // A copy older than the interval asked for is not read.
        tokio::time::sleep(Duration::from_millis(30)).await;
        a.refresh_within(Duration::from_millis(10)).await.unwrap();
        assert_eq!(a.fetches(), 3);
        // The TTL path reads any copy younger than the TTL, even one this
        // replica has; a new replica reads the replacements the fleet saw.
        let c = replica(&server.base_url(), &share);
        let (copy, _) = c.refresh_within(HOUR).await.unwrap();
        assert_eq!(c.fetches(), 0);
        assert!(copy.fetched_at.unwrap().elapsed() < Duration::from_secs(5));
        c.snapshot().await.unwrap();
        assert_eq!(c.fetches(), 0);
        // `refresh` fetches whatever the stored copy's age.
        c.refresh().await.unwrap();
        assert_eq!(c.fetches(), 1);
        let replaced = a.refresh_within(HOUR).await.unwrap();
        let d = replica(&server.base_url(), &share);
        let seen = d.snapshot().await.unwrap();
        assert_eq!(seen.replacements(), replaced.0.replacements());
    }

    #[tokio::test]
    async fn a_failed_fetch_gives_the_lease_back() {
        let redis = RedisServer::start().unwrap();
        let server = crate::mock::httpmock::MockServer::start_async().await;
        server.post_authenticates(|_, then| {
            then.created(&payloads::authenticate());
        });
        let failing = server
            .mock_async(|when, then| {
                when.path("/locations");
                then.status(500).body("{}");
            })
            .await;
        let share = FleetShare::new(redis.url()).prefix("fail");
        let a = replica(&server.base_url(), &share);
        assert!(a.snapshot().await.is_err());
        failing.delete_async().await;
        server
            .mock_async(|when, then| {
                when.path("/locations");
                then.status(200)
                    .header("content-type", "application/json")
                    .body(serde_json::to_string(&payloads::locations()).unwrap());
            })
            .await;
        // Not the 30 s lease: B takes it at once and fetches.
        let b = replica(&server.base_url(), &share);
        let started = Instant::now();
        b.snapshot().await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(b.fetches(), 1);
    }

    #[tokio::test]
    async fn replicas_wait_for_the_lease_holder_but_no_longer_than_the_lease() {
        let redis = RedisServer::start().unwrap();
        let server = crate::mock::httpmock::MockServer::start_async().await;
        let slow = slow_locations(&server, Duration::from_millis(300)).await;
        let share = FleetShare::new(redis.url()).prefix("wait");
        let replicas: Vec<_> = (0..3)
            .map(|_| replica(&server.base_url(), &share))
            .collect();
        let answers = futures::future::join_all(replicas.iter().map(|r| r.snapshot())).await;
        assert!(answers.iter().all(Result::is_ok));
        slow.assert_calls_async(1).await;
        // A lease held elsewhere (a replica that died): waited for at most
        // the lease, then fetched alone.
        let short = FleetShare::new(redis.url())
            .prefix("stuck")
            .lease(Duration::from_millis(200))
            .redis_timeout(Duration::from_millis(100));
        let probe = replica(&server.base_url(), &short);
        let keys = redis.command("KEYS stuck:*").unwrap_or_default();
        assert!(keys.trim().is_empty(), "{keys}");
        let key = format!(
            "stuck:{{{}}}:directory:all:lease",
            probe.0.settings.client.session().key_id()
        );
        redis.command(&format!("SET {key} other PX 60000")).unwrap();
        let started = Instant::now();
        probe.snapshot().await.unwrap();
        let waited = started.elapsed();
        // The lease and one round trip's timeout (300 ms), then its own
        // fetch (300 ms on this server).
        assert!(waited >= Duration::from_millis(580), "{waited:?}");
        assert!(waited < Duration::from_secs(3), "{waited:?}");
        assert_eq!(probe.fetches(), 1);
    }

    /// Redis's clock, in ms.
    fn redis_now(redis: &RedisServer) -> i64 {
        let time = redis.command("TIME").unwrap();
        let mut parts = time.lines().map(|l| l.trim().parse::<i64>().unwrap());
        let (secs, micros) = (parts.next().unwrap(), parts.next().unwrap());
        secs * 1_000 + micros / 1_000
    }

    #[tokio::test]
    async fn a_stored_copy_of_garbage_costs_one_fetch_and_the_fleet_heals() {
        let redis = RedisServer::start().unwrap();
        let server = StandIn::with_moving_locations(usize::MAX / 2).await;
        let share = FleetShare::new(redis.url()).prefix("heal");
        let first = replica(&server.base_url(), &share);
        first.snapshot().await.unwrap();
        let key = format!(
            "heal:{{{}}}:directory:all",
            first.0.settings.client.session().key_id()
        );
        let now = redis_now(&redis);
        let locations = serde_json::to_string(&payloads::locations().data).unwrap();
        let stale = serde_json::to_string(&Vec::<InstitutionLocations>::new()).unwrap();
        let poisons = [
            // Generations that are not times: a copy that would never be replaced.
            format!("HSET {key} at inf body {stale}"),
            format!("HSET {key} at 1e400 body {stale}"),
            format!("HSET {key} at nan body {stale}"),
            format!("HSET {key} at 99999999999999 body {stale}"),
            format!("HSET {key} at 0x7fffffffffffffff body {stale}"),
            format!("HSET {key} at -5 body {stale}"),
            // A current generation whose body or replacements do not decode.
            format!("HSET {key} at {now} body nonsense replacements {{}}"),
            format!("HSET {key} at {now} body {locations} replacements [1]"),
            format!("HSET {key} at {now} body null replacements {{}}"),
        ];
        for poison in poisons {
            redis.command(&format!("DEL {key}")).unwrap();
            redis.command(&poison).unwrap();
            let a = replica(&server.base_url(), &share);
            assert!(a.location(7).await.unwrap().is_some(), "{poison}");
            assert_eq!(a.fetches(), 1, "{poison}: one fetch");
            // Healed: the next replica reads what A stored.
            let b = replica(&server.base_url(), &share);
            assert!(b.location(7).await.unwrap().is_some(), "{poison}");
            assert_eq!(b.fetches(), 0, "{poison}: healed");
        }
    }

    #[tokio::test]
    async fn a_longer_lease_than_this_replica_s_is_cut_to_it() {
        let redis = RedisServer::start().unwrap();
        let server = StandIn::with_moving_locations(usize::MAX / 2).await;
        let share = FleetShare::new(redis.url())
            .prefix("cut")
            .lease(Duration::from_millis(300))
            .redis_timeout(Duration::from_millis(100));
        let a = replica(&server.base_url(), &share);
        let key = format!(
            "cut:{{{}}}:directory:all:lease",
            a.0.settings.client.session().key_id()
        );
        redis
            .command(&format!("SET {key} other PX 3600000"))
            .unwrap();
        let started = Instant::now();
        assert!(a.location(7).await.unwrap().is_some());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        let left: i64 = redis
            .command(&format!("PTTL {key}"))
            .unwrap()
            .parse()
            .unwrap();
        assert!(left <= 300, "{left}");
    }

    #[tokio::test]
    async fn without_redis_each_replica_fetches_for_itself() {
        let mut redis = RedisServer::start().unwrap();
        let share = FleetShare::new(redis.url()).redis_timeout(Duration::from_millis(100));
        redis.stop();
        let server = StandIn::with_moving_locations(usize::MAX / 2).await;
        let (a, b) = (
            replica(&server.base_url(), &share),
            replica(&server.base_url(), &share),
        );
        assert!(a.location(7).await.unwrap().is_some());
        assert!(b.location(7).await.unwrap().is_some());
        assert_eq!((a.fetches(), b.fetches()), (1, 1));
        assert!(format!("{:?}", a.0.settings.share.as_ref().unwrap()).contains("on_its_own: true"));
        // Redis back: the next refresh shares again.
        redis.restart().unwrap();
        a.refresh().await.unwrap();
        assert!(
            format!("{:?}", a.0.settings.share.as_ref().unwrap()).contains("on_its_own: false")
        );
        let c = replica(&server.base_url(), &share);
        assert!(c.location(7).await.unwrap().is_some());
        assert_eq!(c.fetches(), 0, "reads what A stored once Redis was back");
        let bad = FleetShare::new("not a url");
        assert!(matches!(
            LocationDirectory::new(client(&server.base_url())).shared(&bad),
            Err(Error::InvalidRequest { .. })
        ));
    }
}
