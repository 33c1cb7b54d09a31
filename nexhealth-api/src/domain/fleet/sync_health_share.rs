//! The sync-health side of the fleet share: the webhook events every
//! replica applies to its own `GET /sync_status`.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::{FleetShare, Trouble, millis};
use crate::domain::sync_health::{SyncReport, Thresholds};
use crate::error::Error;
use crate::generated::Client;
use crate::transport::redis_link::RedisLink;
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

/// The stored events, newest first. KEYS: events. ARGV: most read.
pub(super) const EVENTS: &str = r"
if redis.call('TYPE', KEYS[1]).ok ~= 'list' then return {} end
return redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
";

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
    pub(super) events_key: String,
    expiry: Duration,
    /// `GET /sync_status` as last fetched, and when.
    fetched: tokio::sync::Mutex<Option<(Instant, SyncReport)>>,
    /// Events Redis could not take yet (the newest, bounded), and every
    /// event this replica applied (for when Redis cannot be read).
    pub(super) pending: Mutex<VecDeque<serde_json::Value>>,
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

pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) fn push_bounded(queue: &Mutex<VecDeque<serde_json::Value>>, raw: serde_json::Value) {
    let mut queue = lock(queue);
    queue.push_front(raw);
    queue.truncate(FleetShare::MAX_EVENTS);
}
