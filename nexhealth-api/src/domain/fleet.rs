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
//! `GET /sync_status`. Applying is idempotent and order does not matter (an
//! event only moves a side's time forward), so replicas agree. An event that
//! could not be stored is kept (bounded) and stored at the next contact.
//!
//! **Keys** follow the rate limit's conventions: a prefix (default
//! `nexhealth-api:fleet`), then a hash tag with the digest of the API key (never
//! the key; one cluster slot), and every key expires
//! ([`FleetShare::expiry`]). A subdomain is named by a digest too.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use sha2::Digest;

use crate::domain::sync_health::{SyncReport, Thresholds};
use crate::error::Error;
use crate::generated::Client;
use crate::generated::types::InstitutionLocations;
use crate::transport::redis_link::{RedisLink, Target};
use crate::webhooks::{Event, SyncStatusEvent};

/// The largest stored directory read back (bigger counts as no copy). A
/// 10,000-location `/locations` is about 7 MiB.
const MAX_SNAPSHOT_BYTES: usize = 32 * 1024 * 1024;
/// The largest stored event read back.
const MAX_EVENT_BYTES: usize = 64 * 1024;

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

/// Reads the stored directory when it is fresh enough, else takes the lease,
/// else answers that another replica holds it. A copy whose generation is
/// not a time (not a number, infinite, negative, or more than a second
/// ahead of Redis's clock: garbage, or a clock that went back) or whose body
/// is larger than the most read back counts as no copy. A lease without
/// expiry, or longer than this replica's, is cut to this replica's. KEYS:
/// snapshot, lease. ARGV: max age (ms), only newer than (ms, -1 for any),
/// lease (ms), token, largest body (bytes).
const READ: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local at = nil
if redis.call('TYPE', KEYS[1]).ok == 'hash' then
  at = tonumber(redis.call('HGET', KEYS[1], 'at') or '')
  if at and (at ~= at or at < 0 or at > now + 1000) then at = nil end
  if at and redis.call('HSTRLEN', KEYS[1], 'body') > tonumber(ARGV[5]) then at = nil end
end
if at then
  local age = math.max(0, now - at)
  if age < tonumber(ARGV[1]) and at > tonumber(ARGV[2]) then
    return { 'fresh', at, age, redis.call('HGET', KEYS[1], 'body') or '',
             redis.call('HGET', KEYS[1], 'replacements') or '{}' }
  end
end
local held = redis.call('PTTL', KEYS[2])
if held == -1 or held > tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
if redis.call('SET', KEYS[2], ARGV[4], 'NX', 'PX', ARGV[3]) then
  return { 'lease', now, 0, '', '' }
end
return { 'wait', at or -1, 0, '', '' }
";

/// Stores a fetched directory, and gives the lease back. The holder of the
/// lease always stores (it is the replica the fleet chose to fetch); one
/// whose lease ran out stores only over an older copy. KEYS: snapshot, lease.
/// ARGV: token, at (ms), body, replacements, expiry (ms).
const PUBLISH: &str = r"
local held = -1
if redis.call('TYPE', KEYS[1]).ok == 'hash' then
  held = tonumber(redis.call('HGET', KEYS[1], 'at') or '') or -1
  if held ~= held then held = math.huge end
end
if redis.call('GET', KEYS[2]) == ARGV[1] or tonumber(ARGV[2]) > held then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'at', ARGV[2], 'body', ARGV[3], 'replacements', ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
";

/// Drops a stored copy that could not be read, unless it was replaced since.
/// KEYS: snapshot. ARGV: its generation (ms).
const DISCARD: &str = r"
local at = nil
if redis.call('TYPE', KEYS[1]).ok == 'hash' then
  at = tonumber(redis.call('HGET', KEYS[1], 'at') or '')
end
if at and at == at and math.floor(at) == tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
end
return 1
";

/// Gives the lease back if it is still ours. KEYS: lease. ARGV: token.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
";

/// Keeps the newest events. KEYS: events. ARGV: expiry (ms), most kept, events…
const PUSH: &str = r"
if redis.call('TYPE', KEYS[1]).ok ~= 'list' then redis.call('DEL', KEYS[1]) end
for i = 3, #ARGV do redis.call('LPUSH', KEYS[1], ARGV[i]) end
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
";

/// The stored events, newest first. KEYS: events. ARGV: most read.
const EVENTS: &str = r"
if redis.call('TYPE', KEYS[1]).ok ~= 'list' then return {} end
return redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
";

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

/// The read script's answer: kind, generation or now (ms), age (ms), body,
/// replacements.
type ReadAnswer = (String, i64, i64, Vec<u8>, Vec<u8>);

/// A stored copy that does not decode, by its generation.
struct Garbage(i64);

/// A directory copy as the fleet stored it.
pub(crate) struct SharedCopy {
    /// When its fetch began, on Redis's clock (ms): its generation.
    pub(crate) at_ms: i64,
    pub(crate) age: Duration,
    pub(crate) institutions: Vec<InstitutionLocations>,
    pub(crate) replacements: BTreeMap<i32, i32>,
}

/// The fleet's lease to fetch, held by this replica.
pub(crate) struct Lease {
    token: String,
    pub(crate) at_ms: i64,
}

/// What the fleet answers a replica whose directory is due.
pub(crate) enum Read {
    /// A copy fresh enough: use it.
    Fresh(SharedCopy),
    /// No such copy, and this replica fetches for the fleet.
    Lease(Lease),
    /// Another replica is fetching; the stored copy's generation, if any.
    Wait(Option<i64>),
}

/// The directory's side of the share.
pub(crate) struct DirectoryShare {
    link: RedisLink,
    read: redis::Script,
    publish: redis::Script,
    release: redis::Script,
    discard: redis::Script,
    snapshot_key: String,
    lease_key: String,
    pub(crate) lease: Duration,
    pub(crate) redis_timeout: Duration,
    expiry: Duration,
    trouble: Trouble,
}

impl std::fmt::Debug for DirectoryShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryShare")
            .field("lease", &self.lease)
            .field("on_its_own", &self.trouble.active())
            .finish()
    }
}

impl DirectoryShare {
    pub(crate) fn new(
        share: &FleetShare,
        client: &Client,
        subdomain: Option<&str>,
    ) -> Result<Self, Error> {
        let scope = subdomain.map_or_else(|| "all".to_string(), digest);
        let key = format!("{}:directory:{scope}", share.base(client));
        Ok(Self {
            link: share.link("directory")?,
            read: redis::Script::new(READ),
            publish: redis::Script::new(PUBLISH),
            release: redis::Script::new(RELEASE),
            discard: redis::Script::new(DISCARD),
            lease_key: format!("{key}:lease"),
            snapshot_key: key,
            lease: share.lease,
            redis_timeout: share.redis_timeout,
            expiry: share.expiry,
            trouble: Trouble::default(),
        })
    }

    /// Asks for a copy younger than `max_age` and, when `newer_than` is
    /// given, of a later generation than it. A stored copy that does not
    /// decode is dropped and asked for again: this replica then takes the
    /// lease, and its fetch replaces the garbage for the whole fleet.
    pub(crate) async fn read(
        &self,
        max_age: Duration,
        newer_than: Option<i64>,
    ) -> Result<Read, &'static str> {
        match self.read_once(max_age, newer_than).await {
            Err(Garbage(at)) => {
                tracing::debug!("the fleet's directory copy does not decode: dropped");
                let mut invocation = self.discard.key(&self.snapshot_key);
                invocation.arg(at);
                self.link.run::<i64>(&invocation).await?;
                self.read_once(max_age, newer_than)
                    .await
                    .map_err(|_| "Redis answered an error or garbage")?
            }
            Ok(read) => read,
        }
    }

    /// One read: `Err(Garbage)` when the stored copy does not decode.
    async fn read_once(
        &self,
        max_age: Duration,
        newer_than: Option<i64>,
    ) -> Result<Result<Read, &'static str>, Garbage> {
        let token = format!("{:x}", crate::transport::random_u64());
        let mut invocation = self.read.key(&self.snapshot_key);
        invocation
            .key(&self.lease_key)
            .arg(millis(max_age).min(i64::MAX as u64))
            .arg(newer_than.unwrap_or(-1))
            .arg(millis(self.lease))
            .arg(&token)
            .arg(MAX_SNAPSHOT_BYTES);
        let answer: Result<ReadAnswer, _> = self.link.run(&invocation).await;
        let (kind, at, age, body, replacements) = match answer {
            Ok(answer) => answer,
            Err(reason) => return Ok(Err(reason)),
        };
        Ok(match kind.as_str() {
            "fresh" => {
                let institutions = serde_json::from_slice(&body).map_err(|_| Garbage(at))?;
                let replacements =
                    serde_json::from_slice(&replacements).map_err(|_| Garbage(at))?;
                Ok(Read::Fresh(SharedCopy {
                    at_ms: at,
                    age: Duration::from_millis(age.clamp(0, i64::MAX) as u64),
                    institutions,
                    replacements,
                }))
            }
            "lease" => Ok(Read::Lease(Lease { token, at_ms: at })),
            "wait" => Ok(Read::Wait((at >= 0).then_some(at))),
            _ => Err("Redis answered an error or garbage"),
        })
    }

    /// Stores what the lease holder fetched, and gives the lease back.
    pub(crate) async fn publish(
        &self,
        lease: &Lease,
        institutions: &[InstitutionLocations],
        replacements: &BTreeMap<i32, i32>,
    ) -> Result<(), &'static str> {
        let body = serde_json::to_vec(institutions).map_err(|_| "the directory is not JSON")?;
        let replacements =
            serde_json::to_vec(replacements).map_err(|_| "the directory is not JSON")?;
        let mut invocation = self.publish.key(&self.snapshot_key);
        invocation
            .key(&self.lease_key)
            .arg(&lease.token)
            .arg(lease.at_ms)
            .arg(body)
            .arg(replacements)
            .arg(millis(self.expiry));
        self.link.run::<i64>(&invocation).await.map(drop)
    }

    /// Gives the lease back after a failed fetch: another replica may try.
    pub(crate) async fn release(&self, lease: &Lease) {
        let mut invocation = self.release.key(&self.lease_key);
        invocation.arg(&lease.token);
        if let Err(reason) = self.link.run::<i64>(&invocation).await {
            self.trouble(reason);
        }
    }

    pub(crate) fn trouble(&self, reason: &'static str) {
        self.trouble.seen("location directory", reason);
    }

    pub(crate) fn cleared(&self) {
        self.trouble.cleared("location directory");
    }
}

/// Sync health shared by a fleet (feature `redis`): a `sync_status_*` webhook
/// handled by any replica shows in every replica's [`report`](Self::report).
///
/// ```no_run
/// use nexhealth_api::Client;
/// use nexhealth_api::fleet::{FleetShare, SharedSyncHealth};
/// use nexhealth_api::webhooks::Event;
///
/// # async fn run(client: Client, event: Event) -> Result<(), nexhealth_api::Error> {
/// let health = SharedSyncHealth::new(&client, &FleetShare::new("redis://redis.internal/"))?;
/// // In the webhook handler of whichever replica receives it:
/// if let Event::SyncStatusWriteChange(sync) = &event {
///     health.apply_event(sync).await;
/// }
/// // On any replica:
/// let report = health.report().await?;
/// # Ok(()) }
/// ```
pub struct SharedSyncHealth {
    client: Client,
    subdomain: Option<String>,
    thresholds: Thresholds,
    refresh: Duration,
    link: RedisLink,
    push: redis::Script,
    events: redis::Script,
    events_key: String,
    expiry: Duration,
    /// `GET /sync_status` as last fetched, and when.
    fetched: tokio::sync::Mutex<Option<(Instant, SyncReport)>>,
    /// Events Redis could not take yet (the newest, bounded), and every
    /// event this replica applied (for when Redis cannot be read).
    pending: Mutex<VecDeque<serde_json::Value>>,
    local: Mutex<VecDeque<serde_json::Value>>,
    trouble: Trouble,
}

impl std::fmt::Debug for SharedSyncHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSyncHealth")
            .field("subdomain", &self.subdomain)
            .field("refresh", &self.refresh)
            .field("on_its_own", &self.trouble.active())
            .finish()
    }
}

impl SharedSyncHealth {
    /// How long a fetched `GET /sync_status` is used before it is fetched
    /// again (events in between are applied to it).
    ///
    /// Value: 60 s.
    pub const DEFAULT_REFRESH: Duration = Duration::from_secs(60);

    /// Sync health of every institution the client's key can reach, shared
    /// through `share`.
    pub fn new(client: &Client, share: &FleetShare) -> Result<Self, Error> {
        Ok(Self {
            client: client.clone(),
            subdomain: None,
            thresholds: Thresholds::default(),
            refresh: Self::DEFAULT_REFRESH,
            link: share.link("sync health")?,
            push: redis::Script::new(PUSH),
            events: redis::Script::new(EVENTS),
            events_key: format!("{}:sync-events", share.base(client)),
            expiry: share.expiry,
            fetched: tokio::sync::Mutex::new(None),
            pending: Mutex::new(VecDeque::new()),
            local: Mutex::new(VecDeque::new()),
            trouble: Trouble::default(),
        })
    }

    /// Reads `GET /sync_status` of one institution only.
    pub fn for_subdomain(mut self, subdomain: impl Into<String>) -> Self {
        self.subdomain = Some(subdomain.into());
        self
    }

    /// Assesses with other thresholds (default NexHealth's).
    pub fn thresholds(mut self, thresholds: Thresholds) -> Self {
        self.thresholds = thresholds;
        self
    }

    /// How long a fetched `GET /sync_status` is used ([`Self::DEFAULT_REFRESH`]).
    pub fn refresh(mut self, refresh: Duration) -> Self {
        self.refresh = refresh;
        self
    }

    /// Records a sync-status event for the whole fleet. Answers whether Redis
    /// took it; when it did not, this replica applies it anyway and stores it
    /// at the next contact (the newest [`FleetShare::MAX_EVENTS`] are kept).
    pub async fn apply_event(&self, event: &SyncStatusEvent) -> bool {
        let raw = event.envelope.raw.clone();
        push_bounded(&self.local, raw.clone());
        push_bounded(&self.pending, raw);
        self.flush().await
    }

    /// Stores the pending events; answers whether Redis took them.
    async fn flush(&self) -> bool {
        let pending: Vec<Vec<u8>> = lock(&self.pending)
            .iter()
            .filter_map(|raw| serde_json::to_vec(raw).ok())
            .collect();
        if pending.is_empty() {
            return true;
        }
        let mut invocation = self.push.key(&self.events_key);
        invocation
            .arg(millis(self.expiry))
            .arg(FleetShare::MAX_EVENTS);
        // Oldest first: LPUSH leaves the newest at the head.
        for raw in pending.iter().rev() {
            invocation.arg(raw.as_slice());
        }
        match self.link.run::<i64>(&invocation).await {
            Ok(_) => {
                let mut queue = lock(&self.pending);
                let keep = queue.len().saturating_sub(pending.len());
                queue.truncate(keep);
                self.trouble.cleared("sync health");
                true
            }
            Err(reason) => {
                self.trouble.seen("sync health", reason);
                false
            }
        }
    }

    /// The fleet's events (newest first), or this replica's own when Redis
    /// cannot answer.
    async fn fleet_events(&self) -> Vec<serde_json::Value> {
        self.flush().await;
        let mut invocation = self.events.key(&self.events_key);
        invocation.arg(FleetShare::MAX_EVENTS);
        match self.link.run::<Vec<Vec<u8>>>(&invocation).await {
            Ok(stored) => {
                self.trouble.cleared("sync health");
                let mut events: Vec<serde_json::Value> = stored
                    .iter()
                    .take(FleetShare::MAX_EVENTS)
                    .filter(|raw| raw.len() <= MAX_EVENT_BYTES)
                    .filter_map(|raw| serde_json::from_slice(raw).ok())
                    .collect();
                // What Redis has not taken yet counts too.
                events.extend(lock(&self.pending).iter().cloned());
                events
            }
            Err(reason) => {
                self.trouble.seen("sync health", reason);
                lock(&self.local).iter().cloned().collect()
            }
        }
    }

    /// The sync health now: `GET /sync_status` (fetched again when older
    /// than the refresh interval) with every event the fleet stored applied,
    /// assessed now.
    pub async fn report(&self) -> Result<SyncReport, Error> {
        let base = {
            let mut fetched = self.fetched.lock().await;
            match fetched.as_ref() {
                Some((at, report)) if at.elapsed() < self.refresh => report.clone(),
                _ => {
                    let report = self
                        .client
                        .sync_health_with(self.subdomain.as_deref(), self.thresholds)
                        .await?;
                    *fetched = Some((Instant::now(), report.clone()));
                    report
                }
            }
        };
        let now = Utc::now();
        let mut report = base;
        for raw in self.fleet_events().await {
            if let Some(Event::SyncStatusReadChange(sync) | Event::SyncStatusWriteChange(sync)) =
                Event::from_json(raw)
            {
                report.apply_event_with(&sync, now, self.thresholds);
            }
        }
        Ok(report.reassessed(now, self.thresholds))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn push_bounded(queue: &Mutex<VecDeque<serde_json::Value>>, raw: serde_json::Value) {
    let mut queue = lock(queue);
    queue.push_front(raw);
    queue.truncate(FleetShare::MAX_EVENTS);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_bounded_and_the_url_is_never_shown() {
        let share = FleetShare::new("redis://:hunter2@host:1/")
            .lease(Duration::ZERO)
            .expiry(Duration::from_secs(u64::MAX))
            .redis_timeout(Duration::ZERO)
            .prefix("p");
        assert_eq!(share.lease, Duration::from_millis(10));
        assert_eq!(share.expiry, Duration::from_secs(30 * 86_400));
        assert_eq!(share.redis_timeout, Duration::from_millis(1));
        let shown = format!("{share:?}");
        assert!(
            shown.starts_with("FleetShare {") && shown.contains("prefix: \"p\""),
            "{shown}"
        );
        assert!(
            !shown.contains("hunter2") && !shown.contains("host"),
            "{shown}"
        );
        let upper = FleetShare::cluster(["redis://a:1"])
            .lease(Duration::from_secs(u64::MAX))
            .expiry(Duration::ZERO)
            .redis_timeout(Duration::from_secs(u64::MAX));
        assert_eq!(upper.lease, Duration::from_secs(600));
        assert_eq!(upper.expiry, Duration::from_secs(1));
        assert_eq!(upper.redis_timeout, Duration::from_secs(60));
    }

    #[test]
    fn the_defaults_and_bounds_are_pinned() {
        assert_eq!(MAX_SNAPSHOT_BYTES, 33_554_432);
        assert_eq!(MAX_EVENT_BYTES, 65_536);
        assert_eq!(FleetShare::DEFAULT_EXPIRY, Duration::from_secs(86_400));
        assert_eq!(FleetShare::DEFAULT_LEASE, Duration::from_secs(30));
        assert_eq!(
            FleetShare::DEFAULT_REDIS_TIMEOUT,
            Duration::from_millis(250)
        );
        assert_eq!(FleetShare::MAX_EVENTS, 256);
        let share = FleetShare::new("redis://x/");
        assert_eq!(
            (
                share.lease,
                share.expiry,
                share.redis_timeout,
                share.prefix.as_str()
            ),
            (
                FleetShare::DEFAULT_LEASE,
                FleetShare::DEFAULT_EXPIRY,
                FleetShare::DEFAULT_REDIS_TIMEOUT,
                "nexhealth-api:fleet"
            )
        );
    }

    #[test]
    fn a_subdomain_is_named_by_a_digest() {
        let named = digest("acme-dental");
        assert_eq!(named.len(), 24);
        assert!(!named.contains("acme"));
        assert_ne!(named, digest("acme-dentaL"));
        assert_eq!(millis(Duration::ZERO), 1);
        assert_eq!(millis(Duration::from_secs(u64::MAX)), u64::MAX);
    }

    #[test]
    fn trouble_warns_once_when_it_starts_and_notes_once_when_it_ends() {
        #[derive(Clone, Default)]
        struct Captured(std::sync::Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Captured {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                lock(&self.0).extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let trouble = Trouble::default();
        let warnings = || {
            String::from_utf8(lock(&captured.0).clone())
                .unwrap()
                .matches("WARN")
                .count()
        };
        tracing::subscriber::with_default(subscriber, || {
            trouble.cleared("x");
            trouble.seen("x", "Redis cannot be reached");
            assert_eq!(warnings(), 1, "the first sign of trouble warns");
            trouble.seen("x", "Redis cannot be reached");
            assert!(trouble.active());
            trouble.cleared("x");
            trouble.cleared("x");
            assert!(!trouble.active());
        });
        let text = String::from_utf8(lock(&captured.0).clone()).unwrap();
        assert_eq!(text.matches("WARN").count(), 1, "{text}");
        assert_eq!(text.matches("INFO").count(), 1, "{text}");
        assert!(text.find("WARN") < text.find("INFO"), "{text}");
    }

    #[test]
    fn queued_events_are_bounded_newest_first() {
        let queue = Mutex::new(VecDeque::new());
        for n in 0..(FleetShare::MAX_EVENTS + 10) {
            push_bounded(&queue, serde_json::json!(n));
        }
        let queue = lock(&queue);
        assert_eq!(queue.len(), FleetShare::MAX_EVENTS);
        assert_eq!(queue[0], serde_json::json!(FleetShare::MAX_EVENTS + 9));
    }
}

#[cfg(all(test, feature = "mock"))]
mod redis_tests {
    use super::*;
    use crate::mock::{MockServerExt, RedisServer, StandIn};
    use crate::sync_health::WriteReadiness;

    fn client(base: &str) -> Client {
        Client::builder("fleet-unit-key")
            .base_url(base)
            .retry(crate::transport::policy::RetryPolicy::none())
            .build()
            .unwrap()
    }

    fn write_green(location: i64) -> SyncStatusEvent {
        let at = Utc::now().to_rfc3339();
        let raw = serde_json::json!({"event_name": "sync_status_write_change",
            "data": {"sync_status": {"write_status": "green", "write_status_at": at,
            "locations": [{"id": location}]}}});
        match Event::from_json(raw) {
            Some(Event::SyncStatusWriteChange(sync)) => sync,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn events_reach_every_replica_in_order_and_survive_an_outage() {
        let mut redis = RedisServer::start().unwrap();
        let server = StandIn::start().await;
        let share = FleetShare::new(redis.url())
            .prefix("unit")
            .redis_timeout(Duration::from_millis(100));
        let a = SharedSyncHealth::new(&client(&server.base_url()), &share).unwrap();
        let b = SharedSyncHealth::new(&client(&server.base_url()), &share)
            .unwrap()
            .refresh(Duration::from_secs(3_600));
        assert_eq!(
            b.report().await.unwrap().write_readiness(8),
            WriteReadiness::Down
        );
        redis.stop();
        for location in [8, 9, 10] {
            assert!(!a.apply_event(&write_green(location)).await);
        }
        assert_eq!(lock(&a.pending).len(), 3);
        assert!(format!("{a:?}").contains("on_its_own: true"));
        // Applied where they arrived, from its own list.
        assert_eq!(
            a.report().await.unwrap().write_readiness(8),
            WriteReadiness::Ready
        );
        redis.restart().unwrap();
        assert!(a.apply_event(&write_green(11)).await, "Redis took all four");
        assert!(lock(&a.pending).is_empty());
        assert!(format!("{a:?}").contains("on_its_own: false"));
        let key = a.events_key.clone();
        assert_eq!(redis.command(&format!("LLEN {key}")).unwrap(), "4");
        let newest = redis.command(&format!("LINDEX {key} 0")).unwrap();
        assert!(newest.contains("[{\"id\":11}]"), "{newest}");
        let oldest = redis.command(&format!("LINDEX {key} 3")).unwrap();
        assert!(oldest.contains("[{\"id\":8}]"), "{oldest}");
        assert!(
            redis
                .command(&format!("PTTL {key}"))
                .unwrap()
                .parse::<i64>()
                .unwrap()
                > 0
        );
        // B's cached /sync_status, with the fleet's events.
        assert_eq!(
            b.report().await.unwrap().write_readiness(8),
            WriteReadiness::Ready
        );
        // Garbage in the list is skipped; a huge element too.
        redis.command(&format!("LPUSH {key} nonsense")).unwrap();
        redis
            .command(&format!("LPUSH {key} {}", "x".repeat(MAX_EVENT_BYTES + 1)))
            .unwrap();
        assert_eq!(
            b.report().await.unwrap().write_readiness(8),
            WriteReadiness::Ready
        );
        // The wrong type: read as no events, and replaced at the next push.
        redis.command(&format!("SET {key} nonsense")).unwrap();
        assert_eq!(
            b.report().await.unwrap().write_readiness(8),
            WriteReadiness::Down
        );
        assert!(a.apply_event(&write_green(8)).await);
        assert_eq!(redis.command(&format!("LLEN {key}")).unwrap(), "1");
    }

    #[tokio::test]
    async fn sync_status_is_fetched_once_per_refresh() {
        let redis = RedisServer::start().unwrap();
        let server = crate::mock::httpmock::MockServer::start_async().await;
        server.post_authenticates(|_, then| {
            then.created(&crate::mock::payloads::authenticate());
        });
        let syncs = server
            .mock_async(|when, then| {
                when.path("/sync_status");
                then.status(200)
                    .header("content-type", "application/json")
                    .body(serde_json::to_string(&crate::mock::payloads::sync_status()).unwrap());
            })
            .await;
        let share = FleetShare::new(redis.url()).prefix("refresh");
        let cached = SharedSyncHealth::new(&client(&server.base_url()), &share)
            .unwrap()
            .for_subdomain("example-subdomain")
            .thresholds(Thresholds::default());
        cached.report().await.unwrap();
        cached.report().await.unwrap();
        syncs.assert_calls_async(1).await;
        let eager = SharedSyncHealth::new(&client(&server.base_url()), &share)
            .unwrap()
            .refresh(Duration::ZERO);
        eager.report().await.unwrap();
        eager.report().await.unwrap();
        syncs.assert_calls_async(3).await;
    }

    #[tokio::test]
    async fn the_directory_share_answers_wait_while_another_replica_holds_the_lease() {
        let redis = RedisServer::start().unwrap();
        let server = StandIn::start().await;
        let client = client(&server.base_url());
        let share = FleetShare::new(redis.url()).prefix("lease");
        let one = DirectoryShare::new(&share, &client, None).unwrap();
        let Ok(Read::Lease(lease)) = one.read(Duration::from_secs(60), None).await else {
            panic!("the first replica takes the lease");
        };
        let other = DirectoryShare::new(&share, &client, None).unwrap();
        assert!(matches!(
            other.read(Duration::from_secs(60), None).await,
            Ok(Read::Wait(None))
        ));
        one.publish(&lease, &[], &BTreeMap::from([(1, 2)]))
            .await
            .unwrap();
        let Ok(Read::Fresh(copy)) = other.read(Duration::from_secs(60), None).await else {
            panic!("the stored copy");
        };
        assert_eq!(copy.at_ms, lease.at_ms);
        assert_eq!(copy.replacements.get(&1), Some(&2));
        // Not newer than itself: the lease again; another replica waits on
        // the stored copy's generation.
        let Ok(Read::Lease(again)) = other.read(Duration::from_secs(60), Some(copy.at_ms)).await
        else {
            panic!("a lease for the next generation");
        };
        assert!(matches!(
            one.read(Duration::from_secs(60), Some(copy.at_ms)).await,
            Ok(Read::Wait(Some(at))) if at == copy.at_ms
        ));
        other.release(&again).await;
        assert!(matches!(
            one.read(Duration::ZERO, None).await,
            Ok(Read::Lease(_))
        ));
        // One for a subdomain is another copy.
        let scoped = DirectoryShare::new(&share, &client, Some("example-subdomain")).unwrap();
        assert!(matches!(
            scoped.read(Duration::from_secs(60), None).await,
            Ok(Read::Lease(_))
        ));
    }
}
