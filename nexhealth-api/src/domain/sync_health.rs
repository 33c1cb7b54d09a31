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
    /// NexHealth flags the location inactive: no new work goes to it,
    /// whatever its sync says.
    Inactive,
}

impl WriteReadiness {
    /// `ready`, `stale`, `down` or `no_sync`; also what it serializes as.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Stale => "stale",
            Self::Down => "down",
            Self::NoSync => "no_sync",
            Self::Inactive => "inactive",
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

    /// The same syncs assessed again at `now` (ages grow, sides turn stale).
    pub fn reassessed(self, now: DateTime<Utc>, thresholds: Thresholds) -> Self {
        Self::assess(
            self.syncs.into_iter().map(|health| health.sync).collect(),
            now,
            thresholds,
        )
    }

    /// The syncs serving `location_id` (normally one).
    pub fn for_location(&self, location_id: i32) -> impl Iterator<Item = &SyncHealth> {
        self.syncs
            .iter()
            .filter(move |s| s.location_ids().any(|id| id == location_id))
    }

    /// Whether a write to `location_id` can be expected to succeed now:
    /// [`WriteReadiness::Inactive`] when a sync lists the location as
    /// inactive, else the worst of the syncs that serve it. A location that
    /// `/locations` flags inactive is checked with
    /// [`write_readiness_of`](Self::write_readiness_of).
    pub fn write_readiness(&self, location_id: i32) -> WriteReadiness {
        let inactive = self
            .for_location(location_id)
            .flat_map(|s| &s.sync.locations)
            .any(|l| l.id == location_id && l.inactive == Some(true));
        if inactive {
            return WriteReadiness::Inactive;
        }
        self.for_location(location_id)
            .map(SyncHealth::write_readiness)
            .min_by_key(|r| match r {
                WriteReadiness::Inactive => 0,
                WriteReadiness::Down => 0,
                WriteReadiness::Stale => 1,
                WriteReadiness::Ready => 2,
                WriteReadiness::NoSync => 3,
            })
            .unwrap_or(WriteReadiness::NoSync)
    }

    /// [`write_readiness`](Self::write_readiness) of a directory entry:
    /// [`WriteReadiness::Inactive`] when `/locations` flags it inactive,
    /// whatever its sync says.
    pub fn write_readiness_of(&self, entry: &crate::domain::directory::Entry) -> WriteReadiness {
        if entry.is_inactive() {
            WriteReadiness::Inactive
        } else {
            self.write_readiness(entry.location.id)
        }
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

    /// A sync whose sides were last seen `read_age` and `write_age` ago.
    fn aged(read_age: Duration, write_age: Duration, location: i32) -> SyncStatus {
        let mut sync = sync("green", 0, "green", 0, location);
        sync.read_status_at = Some(now() - chrono::Duration::from_std(read_age).unwrap());
        sync.write_status_at = Some(now() - chrono::Duration::from_std(write_age).unwrap());
        sync
    }

    #[test]
    fn the_thresholds_are_150_and_25_minutes_to_the_second_and_inclusive() {
        let minute = Duration::from_secs(60);
        let second = Duration::from_secs(1);
        let report = SyncReport::assess(
            vec![
                // Exactly at each threshold: still fresh.
                aged(150 * minute, 25 * minute, 1),
                // One second past each: stale.
                aged(150 * minute + second, 25 * minute + second, 2),
                // One second short of each: fresh.
                aged(150 * minute - second, 25 * minute - second, 3),
            ],
            now(),
            Thresholds::default(),
        );
        let stale = |i: usize| (report.syncs[i].read.stale, report.syncs[i].write.stale);
        assert_eq!(stale(0), (false, false));
        assert_eq!(stale(1), (true, true));
        assert_eq!(stale(2), (false, false));
        assert_eq!(report.write_readiness(1), WriteReadiness::Ready);
        assert_eq!(report.write_readiness(2), WriteReadiness::Stale);
        assert_eq!(
            Thresholds::default(),
            Thresholds {
                read: 150 * minute,
                write: 25 * minute
            }
        );
        // Read and write are judged by their own threshold: a read 26
        // minutes old is fresh, a write 26 minutes old is not.
        let report = SyncReport::assess(
            vec![aged(26 * minute, 26 * minute, 4)],
            now(),
            Thresholds::default(),
        );
        assert!(!report.syncs[0].read.stale);
        assert!(report.syncs[0].write.stale);
    }

    #[test]
    fn a_location_served_by_two_syncs_is_as_writable_as_the_worse() {
        let report = SyncReport::assess(
            vec![
                sync("green", 1, "green", 1, 5),
                sync("green", 1, "red", 1, 5),
                sync("green", 1, "green", 1, 6),
                sync("green", 1, "green", 30, 6),
            ],
            now(),
            Thresholds::default(),
        );
        assert_eq!(report.for_location(5).count(), 2);
        assert_eq!(report.write_readiness(5), WriteReadiness::Down);
        assert!(!report.write_readiness(5).can_write());
        assert_eq!(report.write_readiness(6), WriteReadiness::Stale);
    }

    #[test]
    fn unhealthy_lists_exactly_the_syncs_with_a_red_or_stale_side() {
        let report = SyncReport::assess(
            vec![
                sync("green", 1, "green", 1, 1),
                sync("red", 1, "green", 1, 2),
                sync("green", 1, "green", 26, 3),
                sync("green", 1, "green", 2, 4),
            ],
            now(),
            Thresholds::default(),
        );
        let ids: Vec<i32> = report
            .unhealthy()
            .flat_map(|s| s.location_ids().collect::<Vec<_>>())
            .collect();
        assert_eq!(ids, [2, 3]);
    }

    #[test]
    fn a_location_a_sync_lists_as_inactive_is_never_writable() {
        let mut green = sync("green", 1, "green", 1, 7);
        green.locations[0].inactive = Some(true);
        let report = SyncReport::assess(vec![green], now(), Thresholds::default());
        assert!(report.syncs[0].is_healthy());
        assert_eq!(report.write_readiness(7), WriteReadiness::Inactive);
        assert!(!report.write_readiness(7).can_write());
        assert_eq!(WriteReadiness::Inactive.as_str(), "inactive");
    }

    fn event(data: serde_json::Value) -> crate::webhooks::SyncStatusEvent {
        let event = crate::webhooks::Event::from_json(serde_json::json!({
            "event_name": "sync_status_read_change",
            "subdomain": "example-subdomain",
            "data": {"sync_status": data},
        }))
        .expect("an event");
        match event {
            crate::webhooks::Event::SyncStatusReadChange(change) => change,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_event_that_says_reads_came_back_turns_the_read_side_green() {
        let mut red = sync("red", 200, "green", 1, 7);
        red.sync_source_name = Some("Front desk".into());
        let mut report = SyncReport::assess(vec![red], now(), Thresholds::default());
        assert!(!report.syncs[0].read.is_healthy());
        let back = (now() - chrono::Duration::minutes(1)).to_rfc3339();
        let change = event(serde_json::json!({
            "read_status": "green", "read_status_at": back, "locations": [{"id": 7}]
        }));
        assert!(report.apply_event(&change, now()));
        assert_eq!(report.syncs[0].read.state, State::Green);
        assert!(report.syncs[0].read.is_healthy());
        assert!(report.syncs[0].is_healthy());
        // The same delivery again (same time) changes nothing.
        assert!(!report.apply_event(&change, now()));
    }

    #[test]
    fn an_event_with_a_sync_name_and_no_locations_updates_that_sync_only() {
        let mut front = sync("red", 200, "green", 1, 7);
        front.sync_source_name = Some("Front desk".into());
        let mut uptown = sync("red", 200, "green", 1, 8);
        uptown.sync_source_name = Some("Uptown".into());
        let mut report = SyncReport::assess(vec![front, uptown], now(), Thresholds::default());
        let back = (now() - chrono::Duration::minutes(1)).to_rfc3339();
        let change = event(serde_json::json!({
            "sync_source_name": "Uptown", "read_status": "green", "read_status_at": back, "locations": []
        }));
        assert!(report.apply_event(&change, now()));
        assert_eq!(
            report.syncs[0].read.state,
            State::Red,
            "Front desk untouched"
        );
        assert_eq!(report.syncs[1].read.state, State::Green, "Uptown updated");
        // An event without a name and without locations touches nothing.
        let anonymous = event(serde_json::json!({
            "read_status": "green", "read_status_at": now().to_rfc3339(), "locations": []
        }));
        assert!(!report.apply_event(&anonymous, now()));
        assert_eq!(report.syncs[0].read.state, State::Red);
    }

    #[test]
    fn names_and_the_one_state_that_can_write() {
        let states = [
            (State::Green, "green"),
            (State::Red, "red"),
            (State::Unknown, "unknown"),
            (State::Other("amber".into()), "amber"),
        ];
        for (state, name) in states {
            assert_eq!(state.as_str(), name);
        }
        assert!(WriteReadiness::Ready.can_write());
        for other in [
            WriteReadiness::Stale,
            WriteReadiness::Down,
            WriteReadiness::NoSync,
            WriteReadiness::Inactive,
        ] {
            assert!(!other.can_write(), "{other:?}");
        }
    }
}
