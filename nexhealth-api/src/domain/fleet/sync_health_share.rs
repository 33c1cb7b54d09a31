//! The sync-health side of the fleet share: the webhook events every
//! replica applies to its own `GET /sync_status`.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{FleetShare, Trouble, millis};
use crate::domain::sync_health::{SyncReport, ThresholdPolicy};
use crate::error::Error;
use crate::generated::Client;
use crate::transport::redis_link::RedisLink;
use crate::webhooks::receive::MAX_CLOCK_SKEW;
use crate::webhooks::{Event, SyncStatusEvent};

/// The largest stored event read back.
pub(super) const MAX_EVENT_BYTES: usize = 64 * 1024;

/// Keeps the newest events. KEYS: events. ARGV: expiry (ms), most kept, events…
pub(super) const PUSH: &str = r"
if redis.call('TYPE', KEYS[1]).ok ~= 'list' then redis.call('DEL', KEYS[1]) end
for i = 3, #ARGV do redis.call('LPUSH', KEYS[1], ARGV[i]) end
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
";

/// Gives back, at the tail (as the oldest), the events a replica recorded
/// that the list lacks, while it holds fewer than the most kept: never pushes
/// out what it holds, never adds one it holds (byte for byte), never grows
/// past the most kept. KEYS: events. ARGV: expiry (ms), most kept, events
/// (newest first)…
pub(super) const HAND_BACK: &str = r"
if redis.call('TYPE', KEYS[1]).ok ~= 'list' then redis.call('DEL', KEYS[1]) end
local most = tonumber(ARGV[2])
local room = most - redis.call('LLEN', KEYS[1])
if room <= 0 then return 0 end
local held = {}
for _, v in ipairs(redis.call('LRANGE', KEYS[1], 0, most - 1)) do held[v] = true end
local added = 0
for i = 3, #ARGV do
  if added >= room then break end
  if not held[ARGV[i]] then
    redis.call('RPUSH', KEYS[1], ARGV[i])
    held[ARGV[i]] = true
    added = added + 1
  end
end
if added > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return added
";

/// The stored events, newest first. KEYS: events. ARGV: most read.
pub(super) const EVENTS: &str = r"
if redis.call('TYPE', KEYS[1]).ok ~= 'list' then return {} end
return redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
";

/// Sync health shared by a fleet (feature `redis`): a `sync_status_*` webhook
/// handled by any replica shows in every replica's [`report`](Self::report).
///
/// Each replica also keeps a record of the events it applied and the events
/// it read from the fleet (the newest [`FleetShare::MAX_EVENTS`], each for the
/// share's [`expiry`](FleetShare::expiry) from when this replica first saw
/// it). Its report applies the record with what Redis holds, and it gives
/// Redis back the recorded events Redis lacks while Redis has room for them:
/// a Redis restarted empty (no persistence, `FLUSHALL`, failover to an empty
/// replica) loses no webhook-applied change, even for a replica started
/// after it. An event whose read or write time is later than now by more
/// than [`MAX_CLOCK_SKEW`](crate::webhooks::receive::MAX_CLOCK_SKEW) is
/// refused (not stored, applied, recorded or given back), wherever it comes
/// from.
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
    thresholds: ThresholdPolicy,
    refresh: Duration,
    link: RedisLink,
    push: redis::Script,
    hand_back: redis::Script,
    events: redis::Script,
    pub(super) events_key: String,
    expiry: Duration,
    /// `GET /sync_status` as last fetched, and when.
    fetched: tokio::sync::Mutex<Option<(Instant, SyncReport)>>,
    /// Events Redis could not take yet (the newest, bounded).
    pub(super) pending: Mutex<VecDeque<serde_json::Value>>,
    /// Every event this replica applied or read from the fleet (newest
    /// first, bounded, expiring): applied with what Redis holds, given back
    /// to a Redis that lost them, and used alone while Redis errors.
    pub(super) record: Mutex<VecDeque<Recorded>>,
    /// Events refused for a read or write time too far in the future.
    pub(super) refused: AtomicU64,
    trouble: Trouble,
}

/// One event of a replica's record.
pub(super) struct Recorded {
    pub(super) event: SyncStatusEvent,
    /// Its canonical JSON: what is stored, and what identifies it.
    pub(super) canonical: String,
    /// When this replica forgets it.
    until: Instant,
}

impl std::fmt::Debug for SharedSyncHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSyncHealth")
            .field("subdomain", &self.subdomain)
            .field("refresh", &self.refresh)
            .field("on_its_own", &self.trouble.active())
            .field("refused_events", &self.refused.load(Ordering::Relaxed))
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
            thresholds: ThresholdPolicy::default(),
            refresh: Self::DEFAULT_REFRESH,
            link: share.link("sync health")?,
            push: redis::Script::new(PUSH),
            hand_back: redis::Script::new(HAND_BACK),
            events: redis::Script::new(EVENTS),
            events_key: format!("{}:sync-events", share.base(client)),
            expiry: share.expiry,
            fetched: tokio::sync::Mutex::new(None),
            pending: Mutex::new(VecDeque::new()),
            record: Mutex::new(VecDeque::new()),
            refused: AtomicU64::new(0),
            trouble: Trouble::default(),
        })
    }

    /// Reads `GET /sync_status` of one institution only.
    pub fn for_subdomain(mut self, subdomain: impl Into<String>) -> Self {
        self.subdomain = Some(subdomain.into());
        self
    }

    /// Assesses with other thresholds (default NexHealth's): a
    /// [`Thresholds`](crate::sync_health::Thresholds) for every sync, or a
    /// [`ThresholdPolicy`] (per sync, with defaults). Give every replica the
    /// same, or their reports differ.
    pub fn thresholds(mut self, thresholds: impl Into<ThresholdPolicy>) -> Self {
        self.thresholds = thresholds.into();
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
    /// An event whose read or write time is later than now by more than
    /// [`MAX_CLOCK_SKEW`](crate::webhooks::receive::MAX_CLOCK_SKEW), or
    /// larger than 64 KiB as JSON, is refused: not stored, not applied
    /// (`false`).
    pub async fn apply_event(&self, event: &SyncStatusEvent) -> bool {
        let Some((event, canonical)) = admit(event.envelope.raw.clone()) else {
            return false;
        };
        if self.refuse_future(&event, Utc::now()) {
            tracing::debug!(
                "sync health: an event with a read or write time in the future was refused"
            );
            return false;
        }
        let raw = event.envelope.raw.clone();
        self.remember(event, canonical);
        push_bounded(&self.pending, raw);
        self.flush().await
    }

    /// Whether `event` carries a read or write time later than `now` by more
    /// than [`MAX_CLOCK_SKEW`]; such an event is counted.
    fn refuse_future(&self, event: &SyncStatusEvent, now: DateTime<Utc>) -> bool {
        let future = from_the_future(event, now);
        if future {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        future
    }

    /// Puts an event applied here at the front of the record, with a new
    /// expiry.
    fn remember(&self, event: SyncStatusEvent, canonical: String) {
        let mut record = lock(&self.record);
        let now = Instant::now();
        record.retain(|r| r.until > now && r.canonical != canonical);
        record.push_front(Recorded {
            event,
            canonical,
            until: now.checked_add(self.expiry).unwrap_or(now + FAR),
        });
        record.truncate(FleetShare::MAX_EVENTS);
    }

    /// Puts the events read from the fleet (oldest first) that the record
    /// lacks at its front.
    fn remember_read(&self, read: Vec<(SyncStatusEvent, String)>) {
        let mut record = lock(&self.record);
        let now = Instant::now();
        record.retain(|r| r.until > now);
        let held: HashSet<&str> = record.iter().map(|r| r.canonical.as_str()).collect();
        let fresh: Vec<_> = read
            .into_iter()
            .filter(|(_, canonical)| !held.contains(canonical.as_str()))
            .collect();
        let until = now.checked_add(self.expiry).unwrap_or(now + FAR);
        for (event, canonical) in fresh {
            record.push_front(Recorded {
                event,
                canonical,
                until,
            });
        }
        record.truncate(FleetShare::MAX_EVENTS);
    }

    /// Stores the pending events; answers whether Redis took them.
    async fn flush(&self) -> bool {
        let pending: Vec<String> = lock(&self.pending).iter().map(canonical).collect();
        if pending.is_empty() {
            return true;
        }
        let mut invocation = self.push.key(&self.events_key);
        invocation
            .arg(millis(self.expiry))
            .arg(FleetShare::MAX_EVENTS);
        // Oldest first: LPUSH leaves the newest at the head.
        for raw in pending.iter().rev() {
            invocation.arg(raw.as_bytes());
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

    /// The events to apply: the fleet's merged with this replica's record
    /// (what Redis lacks is given back), or the record alone when Redis
    /// cannot answer. Events from the future are left out.
    async fn fleet_events(&self) -> Vec<SyncStatusEvent> {
        self.flush().await;
        let mut invocation = self.events.key(&self.events_key);
        invocation.arg(FleetShare::MAX_EVENTS);
        let read = self.link.run::<Vec<Vec<u8>>>(&invocation).await;
        let now = Utc::now();
        // Not yet taken: stored by the next flush, never given back.
        let pending: Vec<(SyncStatusEvent, String)> = lock(&self.pending)
            .iter()
            .cloned()
            .filter_map(admit)
            .collect();
        let unflushed: HashSet<String> = pending.iter().map(|(_, c)| c.clone()).collect();
        let mut refused = 0_u64;
        let mut events = Vec::new();
        let mut seen = HashSet::new();
        let mut give_back = Vec::new();
        match read {
            Ok(stored) => {
                self.trouble.cleared("sync health");
                let full = stored.len() >= FleetShare::MAX_EVENTS;
                // Oldest first, so that the record keeps the newest in front.
                let decoded: Vec<(SyncStatusEvent, String)> = stored
                    .iter()
                    .take(FleetShare::MAX_EVENTS)
                    .rev()
                    .filter(|raw| raw.len() <= MAX_EVENT_BYTES)
                    .filter_map(|raw| serde_json::from_slice(raw).ok())
                    .filter_map(admit)
                    .collect();
                let mut read = Vec::new();
                for (event, canonical) in decoded {
                    if from_the_future(&event, now) {
                        refused += 1;
                    } else if seen.insert(canonical.clone()) {
                        events.push(event.clone());
                        read.push((event, canonical));
                    }
                }
                self.remember_read(read);
                let recorded = self.recorded();
                for (event, canonical) in recorded {
                    if from_the_future(&event, now) {
                        refused += 1;
                    } else if seen.insert(canonical.clone()) {
                        events.push(event);
                        if !full && !unflushed.contains(&canonical) {
                            give_back.push(canonical);
                        }
                    }
                }
            }
            Err(reason) => {
                self.trouble.seen("sync health", reason);
                for (event, canonical) in self.recorded() {
                    if from_the_future(&event, now) {
                        refused += 1;
                    } else if seen.insert(canonical) {
                        events.push(event);
                    }
                }
            }
        }
        // What Redis has not taken yet counts too (normally recorded already).
        for (event, canonical) in pending {
            if from_the_future(&event, now) {
                refused += 1;
            } else if seen.insert(canonical) {
                events.push(event);
            }
        }
        if refused > 0 {
            self.refused.fetch_add(refused, Ordering::Relaxed);
            tracing::debug!(
                refused,
                "sync health: events with a read or write time in the future were refused"
            );
        }
        if !give_back.is_empty() {
            self.give_back(&give_back).await;
        }
        events
    }

    /// The unexpired record, newest first.
    fn recorded(&self) -> Vec<(SyncStatusEvent, String)> {
        let mut record = lock(&self.record);
        let now = Instant::now();
        record.retain(|r| r.until > now);
        record
            .iter()
            .map(|r| (r.event.clone(), r.canonical.clone()))
            .collect()
    }

    /// Gives Redis back recorded events (newest first) it lacks.
    async fn give_back(&self, events: &[String]) {
        let mut invocation = self.hand_back.key(&self.events_key);
        invocation
            .arg(millis(self.expiry))
            .arg(FleetShare::MAX_EVENTS);
        for raw in events.iter().take(FleetShare::MAX_EVENTS) {
            invocation.arg(raw.as_bytes());
        }
        match self.link.run::<i64>(&invocation).await {
            Ok(added) if added > 0 => {
                tracing::debug!(added, "sync health: gave Redis back events it had lost");
            }
            Ok(_) => {}
            Err(reason) => self.trouble.seen("sync health", reason),
        }
    }

    /// The sync health now: `GET /sync_status` (fetched again when older
    /// than the refresh interval) with every event the fleet stored and this
    /// replica recorded applied, assessed now.
    pub async fn report(&self) -> Result<SyncReport, Error> {
        let base = {
            let mut fetched = self.fetched.lock().await;
            match fetched.as_ref() {
                Some((at, report)) if at.elapsed() < self.refresh => report.clone(),
                _ => {
                    let report = self
                        .client
                        .sync_health_with(self.subdomain.as_deref(), &self.thresholds)
                        .await?;
                    *fetched = Some((Instant::now(), report.clone()));
                    report
                }
            }
        };
        let now = Utc::now();
        let mut report = base;
        for sync in self.fleet_events().await {
            report.apply_event_with(&sync, now, &self.thresholds);
        }
        Ok(report.reassessed(now, &self.thresholds))
    }
}

/// Far enough for an expiry that overflows `Instant`.
const FAR: Duration = Duration::from_secs(30 * 86_400);

/// A sync-status event at most [`MAX_EVENT_BYTES`] as canonical JSON, and
/// that JSON; anything else is not one.
fn admit(raw: Value) -> Option<(SyncStatusEvent, String)> {
    let canonical = canonical(&raw);
    if canonical.len() > MAX_EVENT_BYTES {
        return None;
    }
    match Event::from_json(raw)? {
        Event::SyncStatusReadChange(sync) | Event::SyncStatusWriteChange(sync) => {
            Some((sync, canonical))
        }
        _ => None,
    }
}

/// Whether a read or write time is later than `now` by more than
/// [`MAX_CLOCK_SKEW`].
pub(super) fn from_the_future(event: &SyncStatusEvent, now: DateTime<Utc>) -> bool {
    let skew = chrono::Duration::from_std(MAX_CLOCK_SKEW).unwrap_or(chrono::Duration::MAX);
    let latest = now
        .checked_add_signed(skew)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    [event.sync.read_status_at, event.sync.write_status_at]
        .into_iter()
        .flatten()
        .any(|at| at > latest)
}

/// `value` as compact JSON with every object's keys sorted: equal values
/// give equal text, whatever order their keys came in.
pub(super) fn canonical(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                out.push('{');
                for (i, (key, item)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    write(item, out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) fn push_bounded(queue: &Mutex<VecDeque<serde_json::Value>>, raw: serde_json::Value) {
    let mut queue = lock(queue);
    queue.push_front(raw);
    queue.truncate(FleetShare::MAX_EVENTS);
}
