//! Is a sync healthy, and can I write to this location now?
//!
//! NexHealth turns a sync's read status red when its last read is older than
//! 150 minutes and its write status red when its last write check-in is older
//! than 25 minutes; writes to a location fail while its sync's write status is
//! red. [`SyncReport`] reads `GET /sync_status` with those rules.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::Error;
use crate::generated::Client;
use crate::generated::types::SyncStatus;

/// Age limits past which a side of a sync counts as stale.
///
/// Serialized as `{"read_secs": 9000, "write_secs": 1500}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Thresholds {
    /// Oldest acceptable last read (NexHealth: 150 minutes).
    #[serde(rename = "read_secs", serialize_with = "super::serialize::secs")]
    pub read: Duration,
    /// Oldest acceptable last write check-in (NexHealth: 25 minutes).
    #[serde(rename = "write_secs", serialize_with = "super::serialize::secs")]
    pub write: Duration,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            read: Duration::from_secs(150 * 60),
            write: Duration::from_secs(25 * 60),
        }
    }
}

/// The state NexHealth reports for one side of a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Up.
    Green,
    /// Down.
    Red,
    /// A value this SDK does not know yet.
    Other(String),
    /// Not reported.
    Unknown,
}

impl State {
    /// `green`, `red`, the value NexHealth sent for [`State::Other`], or
    /// `unknown`; also what it serializes as.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Green => "green",
            Self::Red => "red",
            Self::Other(value) => value,
            Self::Unknown => "unknown",
        }
    }

    fn parse(value: Option<&str>) -> Self {
        match value {
            Some("green") => Self::Green,
            Some("red") => Self::Red,
            Some(other) => Self::Other(other.to_string()),
            None => Self::Unknown,
        }
    }
}

/// One side (read or write) of a sync.
///
/// Serialized as `{"state": "green", "last": "2024-…Z", "age_secs": 60, "stale": false}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Side {
    /// What NexHealth reports.
    pub state: State,
    /// When it last happened.
    pub last: Option<DateTime<Utc>>,
    /// How long ago, at assessment time (zero if the timestamp is in the future).
    #[serde(rename = "age_secs", serialize_with = "super::serialize::opt_secs")]
    pub age: Option<Duration>,
    /// Older than the threshold, or never happened.
    pub stale: bool,
}

impl Side {
    fn assess(
        state: Option<&str>,
        last: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        limit: Duration,
    ) -> Self {
        let age = last.map(|t| (now - t).to_std().unwrap_or_default());
        Self {
            state: State::parse(state),
            last,
            age,
            stale: age.is_none_or(|a| a > limit),
        }
    }

    /// Green and fresh.
    pub fn is_healthy(&self) -> bool {
        self.state == State::Green && !self.stale
    }
}

/// Whether a write to a location can be expected to succeed now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteReadiness {
    /// Write status green and the last check-in recent.
    Ready,
    /// Write status green but the last check-in is older than the threshold:
    /// NexHealth is about to turn it red.
    Stale,
    /// Write status red (or not green): writes fail.
    Down,
    /// No sync serves this location (or it is not visible to this key).
    NoSync,
}

impl WriteReadiness {
    /// `ready`, `stale`, `down` or `no_sync`; also what it serializes as.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Stale => "stale",
            Self::Down => "down",
            Self::NoSync => "no_sync",
        }
    }

    /// Only [`WriteReadiness::Ready`] means "go ahead".
    pub fn can_write(&self) -> bool {
        matches!(self, Self::Ready)
    }
}

/// The health of one sync.
///
/// Serialized with what it concludes: `{"sync": {…as NexHealth sent it},
/// "read": Side, "write": Side, "healthy": bool, "write_readiness": "ready"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncHealth {
    /// What NexHealth sent.
    pub sync: SyncStatus,
    /// Reads from the practice database.
    pub read: Side,
    /// Writes to the practice database.
    pub write: Side,
}

impl SyncHealth {
    /// Assesses `sync` at `now`.
    pub fn assess(sync: SyncStatus, now: DateTime<Utc>, thresholds: Thresholds) -> Self {
        let read = Side::assess(
            sync.read_status.as_deref(),
            sync.read_status_at,
            now,
            thresholds.read,
        );
        let write = Side::assess(
            sync.write_status.as_deref(),
            sync.write_status_at,
            now,
            thresholds.write,
        );
        Self { sync, read, write }
    }

    /// Whether writes through this sync can be expected to work.
    pub fn write_readiness(&self) -> WriteReadiness {
        match (&self.write.state, self.write.stale) {
            (State::Green, false) => WriteReadiness::Ready,
            (State::Green, true) => WriteReadiness::Stale,
            _ => WriteReadiness::Down,
        }
    }

    /// Both sides green and fresh.
    pub fn is_healthy(&self) -> bool {
        self.read.is_healthy() && self.write.is_healthy()
    }

    /// The ids of the locations this sync serves.
    pub fn location_ids(&self) -> impl Iterator<Item = i32> + '_ {
        self.sync.locations.iter().map(|l| l.id)
    }
}

impl serde::Serialize for SyncHealth {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = serializer.serialize_struct("SyncHealth", 5)?;
        out.serialize_field("sync", &self.sync)?;
        out.serialize_field("read", &self.read)?;
        out.serialize_field("write", &self.write)?;
        out.serialize_field("healthy", &self.is_healthy())?;
        out.serialize_field("write_readiness", &self.write_readiness())?;
        out.end()
    }
}

super::serialize::serialize_as_str!(State, WriteReadiness);

/// Every sync visible to the key, assessed together.
///
/// Serialized as `{"syncs": [...], "assessed_at": "…Z"}`, each sync as
/// [`SyncHealth`] serializes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SyncReport {
    /// One entry per sync.
    pub syncs: Vec<SyncHealth>,
    /// When the report was assessed.
    pub assessed_at: DateTime<Utc>,
}

impl SyncReport {
    /// Assesses `syncs` at `now`.
    pub fn assess(syncs: Vec<SyncStatus>, now: DateTime<Utc>, thresholds: Thresholds) -> Self {
        Self {
            syncs: syncs
                .into_iter()
                .map(|s| SyncHealth::assess(s, now, thresholds))
                .collect(),
            assessed_at: now,
        }
    }

    /// Learns from a `SyncStatus` webhook event, without an API call: the
    /// syncs that serve the event's locations (or carry its sync name) take
    /// the event's read and write states where its times are newer than what
    /// the report holds, and are assessed again at `now` with the default
    /// [`Thresholds`]. Answers whether anything changed: a duplicate or an
    /// out-of-order (older) delivery changes nothing.
    ///
    /// NexHealth pushes a sync's recovery (red to green) but not its failure:
    /// keep polling `/sync_status` (with [`Client::sync_health`]) to see a
    /// sync go down; events only bring the good news sooner.
    pub fn apply_event(
        &mut self,
        event: &crate::webhooks::SyncStatusEvent,
        now: DateTime<Utc>,
    ) -> bool {
        self.apply_event_with(event, now, Thresholds::default())
    }

    /// [`apply_event`](Self::apply_event) with other thresholds.
    pub fn apply_event_with(
        &mut self,
        event: &crate::webhooks::SyncStatusEvent,
        now: DateTime<Utc>,
        thresholds: Thresholds,
    ) -> bool {
        let change = &event.sync;
        let mut changed = false;
        for health in &mut self.syncs {
            let serves = health
                .sync
                .locations
                .iter()
                .any(|l| change.location_ids.contains(&l.id));
            let named = change.sync_source_name.is_some()
                && change.sync_source_name == health.sync.sync_source_name;
            if !(serves || named) {
                continue;
            }
            let mut sync = health.sync.clone();
            let newer = |event: Option<DateTime<Utc>>, held: Option<DateTime<Utc>>| {
                event.is_some_and(|e| held.is_none_or(|h| e > h))
            };
            let mut touched = false;
            if newer(change.read_status_at, sync.read_status_at) {
                sync.read_status_at = change.read_status_at;
                sync.read_status = change.read_status.clone().or(sync.read_status);
                touched = true;
            }
            if newer(change.write_status_at, sync.write_status_at) {
                sync.write_status_at = change.write_status_at;
                sync.write_status = change.write_status.clone().or(sync.write_status);
                touched = true;
            }
            if touched {
                *health = SyncHealth::assess(sync, now, thresholds);
                changed = true;
            }
        }
        if changed {
            self.assessed_at = now;
        }
        changed
    }

    /// The syncs serving `location_id` (normally one).
    pub fn for_location(&self, location_id: i32) -> impl Iterator<Item = &SyncHealth> {
        self.syncs
            .iter()
            .filter(move |s| s.location_ids().any(|id| id == location_id))
    }

    /// Whether a write to `location_id` can be expected to succeed now.
    pub fn write_readiness(&self, location_id: i32) -> WriteReadiness {
        self.for_location(location_id)
            .map(SyncHealth::write_readiness)
            .min_by_key(|r| match r {
                WriteReadiness::Down => 0,
                WriteReadiness::Stale => 1,
                WriteReadiness::Ready => 2,
                WriteReadiness::NoSync => 3,
            })
            .unwrap_or(WriteReadiness::NoSync)
    }

    /// Syncs with a red or stale side.
    pub fn unhealthy(&self) -> impl Iterator<Item = &SyncHealth> {
        self.syncs.iter().filter(|s| !s.is_healthy())
    }
}

impl Client {
    /// Fetches `GET /sync_status` (for one institution, or all) and assesses it
    /// now with NexHealth's thresholds.
    pub async fn sync_health(&self, subdomain: Option<&str>) -> Result<SyncReport, Error> {
        self.sync_health_with(subdomain, Thresholds::default())
            .await
    }

    /// Like [`Client::sync_health`] with other thresholds.
    pub async fn sync_health_with(
        &self,
        subdomain: Option<&str>,
        thresholds: Thresholds,
    ) -> Result<SyncReport, Error> {
        let mut request = self.get_sync_status();
        if let Some(subdomain) = subdomain {
            request = request.subdomain(subdomain);
        }
        let syncs = request.await?.into_data();
        Ok(SyncReport::assess(syncs, Utc::now(), thresholds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generated::types::{LocationSummary, SyncStatus};

    fn sync(
        read: &str,
        read_min_ago: i64,
        write: &str,
        write_min_ago: i64,
        location: i32,
    ) -> SyncStatus {
        let now = now();
        SyncStatus {
            emr: None,
            institution_id: Some(1),
            locations: vec![LocationSummary {
                id: location,
                city: None,
                email: None,
                inactive: None,
                name: None,
                phone_number: None,
                state: None,
                street_address: None,
                street_address_2: None,
                zip_code: None,
            }],
            read_status: Some(read.into()),
            read_status_at: Some(now - chrono::Duration::minutes(read_min_ago)),
            sync_source_name: None,
            sync_source_type: None,
            write_status: Some(write.into()),
            write_status_at: Some(now - chrono::Duration::minutes(write_min_ago)),
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T12:00:00Z")
            .unwrap()
            .to_utc()
    }

    #[test]
    fn thresholds_are_nexhealths() {
        let report = SyncReport::assess(
            vec![
                sync("green", 149, "green", 24, 1),
                sync("green", 151, "green", 26, 2),
            ],
            now(),
            Thresholds::default(),
        );
        assert!(report.syncs[0].is_healthy());
        assert!(report.syncs[1].read.stale && report.syncs[1].write.stale);
        assert_eq!(report.write_readiness(1), WriteReadiness::Ready);
        assert_eq!(report.write_readiness(2), WriteReadiness::Stale);
        assert_eq!(report.unhealthy().count(), 1);
    }

    #[test]
    fn red_write_status_means_no_writes_and_unknown_locations_have_no_sync() {
        let report = SyncReport::assess(
            vec![
                sync("green", 1, "red", 1, 8),
                sync("yellow", 1, "purple", 1, 9),
            ],
            now(),
            Thresholds::default(),
        );
        assert_eq!(report.write_readiness(8), WriteReadiness::Down);
        assert!(!report.write_readiness(8).can_write());
        assert_eq!(report.syncs[1].read.state, State::Other("yellow".into()));
        assert_eq!(report.write_readiness(9), WriteReadiness::Down);
        assert_eq!(report.write_readiness(404), WriteReadiness::NoSync);
    }

    #[test]
    fn thresholds_are_configurable_and_missing_times_are_stale() {
        let strict = Thresholds {
            read: Duration::from_secs(60),
            write: Duration::from_secs(60),
        };
        let report = SyncReport::assess(vec![sync("green", 2, "green", 2, 1)], now(), strict);
        assert!(report.syncs[0].read.stale);
        let mut never = sync("green", 0, "green", 0, 1);
        never.write_status_at = None;
        let health = SyncHealth::assess(never, now(), Thresholds::default());
        assert!(health.write.stale);
        assert_eq!(health.write_readiness(), WriteReadiness::Stale);
    }
}
