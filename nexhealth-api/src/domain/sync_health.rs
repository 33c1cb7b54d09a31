//! Is a sync healthy, and can I write to this location now?
//!
//! NexHealth turns a sync's read status red when its last read is older than
//! 150 minutes and its write status red when its last write check-in is older
//! than 25 minutes; writes to a location fail while its sync's write status is
//! red. [`SyncReport`] reads `GET /sync_status` with those rules.
//!
//! Both limits can be set per sync at NexHealth. A [`ThresholdPolicy`] judges
//! each sync by its own limits (named by sync or by a location it serves),
//! falling back to its defaults; it is accepted wherever [`Thresholds`] is
//! (any [`ThresholdsFor`]).
//!
//! NexHealth pushes both directions of a change: `sync_status_read_change`
//! and `sync_status_write_change` arrive as `.red` when a side goes down and
//! `.green` when it comes back. [`SyncReport::apply_event`] applies them in
//! any order to the same result.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::Error;
use crate::generated::Client;
use crate::generated::types::SyncStatus;
use crate::webhooks::SyncStatusEvent;
pub use crate::webhooks::event::SyncSide;

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

impl Thresholds {
    /// The limit of `side`.
    pub fn of(&self, side: SyncSide) -> Duration {
        match side {
            SyncSide::Read => self.read,
            SyncSide::Write => self.write,
        }
    }
}

/// What decides the limits a sync is judged by: [`Thresholds`] (the same for
/// every sync), a [`ThresholdPolicy`] (per sync, with defaults), a reference
/// to either, or a type of yours (limits kept in your own configuration).
pub trait ThresholdsFor {
    /// The limits for `sync`.
    fn thresholds_for(&self, sync: &SyncStatus) -> Thresholds;
}

impl ThresholdsFor for Thresholds {
    /// These limits, unless the entry carries its own (see
    /// [`ThresholdPolicy`], step 1).
    fn thresholds_for(&self, sync: &SyncStatus) -> Thresholds {
        entry_limits(sync, *self)
    }
}

/// The longest limit an entry may set for itself: a larger one is cut to it.
///
/// Value: 30 days.
pub const LONGEST_ENTRY_LIMIT: Duration = Duration::from_secs(30 * 86_400);

/// `fallback`, with each side replaced by the limit the entry itself carries
/// (`read_threshold_minutes`, `write_threshold_minutes`: forward-compatible
/// fields no answer carries today), cut to [`LONGEST_ENTRY_LIMIT`].
fn entry_limits(sync: &SyncStatus, fallback: Thresholds) -> Thresholds {
    let own = |minutes: Option<std::num::NonZeroU32>| {
        minutes.map(|m| Duration::from_secs(u64::from(m.get()) * 60).min(LONGEST_ENTRY_LIMIT))
    };
    Thresholds {
        read: own(sync.read_threshold_minutes).unwrap_or(fallback.read),
        write: own(sync.write_threshold_minutes).unwrap_or(fallback.write),
    }
}

impl<T: ThresholdsFor + ?Sized> ThresholdsFor for &T {
    fn thresholds_for(&self, sync: &SyncStatus) -> Thresholds {
        (**self).thresholds_for(sync)
    }
}

/// Which syncs an override of a [`ThresholdPolicy`] is for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SyncKey {
    /// `sync_source_name`, in one institution or (`None`) in any.
    Name(Option<i32>, String),
    /// The syncs serving a location.
    Location(i32),
}

/// Limits per sync, falling back to defaults.
///
/// NexHealth lets both limits (150 and 25 minutes by default) be set per
/// sync; `/sync_status` entries carry no sync id, so a sync is named here by
/// its `sync_source_name` (in one institution, or in any) or by a location it
/// serves. [`thresholds_for`](Self::thresholds_for) picks, for each sync, the
/// first that applies:
///
/// 1. the limits the entry itself carries, side by side
///    (`read_threshold_minutes`, `write_threshold_minutes`, cut to
///    [`LONGEST_ENTRY_LIMIT`]): forward-compatible fields of the spec, since
///    NexHealth lets the limits be set per sync but does not say whether
///    `/sync_status` returns them, and no answer carries them today;
/// 2. the override for its name in its institution
///    ([`sync_named_in`](Self::sync_named_in));
/// 3. the override for its name ([`sync_named`](Self::sync_named));
/// 4. the overrides for the locations it serves
///    ([`sync_serving`](Self::sync_serving)), the shortest limit of each side
///    when several match;
/// 5. the defaults ([`defaults`](Self::defaults); NexHealth's unless given).
///
/// Names are compared exactly. Setting the same override twice keeps the last.
///
/// ```
/// use std::time::Duration;
/// use nexhealth_api::sync_health::{ThresholdPolicy, Thresholds};
///
/// let minutes = |m: u64| Duration::from_secs(m * 60);
/// let policy = ThresholdPolicy::default()
///     .sync_named("Front desk server", Thresholds { read: minutes(60), write: minutes(10) })
///     .sync_serving(8, Thresholds { read: minutes(300), ..Thresholds::default() });
/// # let _ = policy;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThresholdPolicy {
    defaults: Thresholds,
    overrides: Vec<(SyncKey, Thresholds)>,
}

impl From<Thresholds> for ThresholdPolicy {
    fn from(defaults: Thresholds) -> Self {
        Self::new(defaults)
    }
}

impl ThresholdPolicy {
    /// `defaults` for every sync, until overrides are added.
    pub fn new(defaults: Thresholds) -> Self {
        Self {
            defaults,
            overrides: Vec::new(),
        }
    }

    /// The limits of syncs no override names.
    pub fn defaults(&self) -> Thresholds {
        self.defaults
    }

    /// The limits of every sync named `name` (its `sync_source_name`), in any
    /// institution.
    pub fn sync_named(self, name: impl Into<String>, thresholds: Thresholds) -> Self {
        self.with(SyncKey::Name(None, name.into()), thresholds)
    }

    /// The limits of the sync named `name` in institution `institution_id`
    /// (names repeat across institutions).
    pub fn sync_named_in(
        self,
        institution_id: i32,
        name: impl Into<String>,
        thresholds: Thresholds,
    ) -> Self {
        self.with(SyncKey::Name(Some(institution_id), name.into()), thresholds)
    }

    /// The limits of the sync(s) serving location `location_id`.
    pub fn sync_serving(self, location_id: i32, thresholds: Thresholds) -> Self {
        self.with(SyncKey::Location(location_id), thresholds)
    }

    fn with(mut self, key: SyncKey, thresholds: Thresholds) -> Self {
        self.overrides.retain(|(k, _)| *k != key);
        self.overrides.push((key, thresholds));
        self
    }

    /// The limits `sync` is judged by (see the type's documentation for the
    /// order).
    pub fn thresholds_for(&self, sync: &SyncStatus) -> Thresholds {
        entry_limits(sync, self.configured_for(sync))
    }

    /// Steps 2 to 5: what this policy sets for `sync`.
    fn configured_for(&self, sync: &SyncStatus) -> Thresholds {
        let named = |institution: Option<i32>| {
            let name = sync.sync_source_name.as_deref()?;
            self.overrides
                .iter()
                .find_map(|(key, thresholds)| match key {
                    SyncKey::Name(i, n) if *i == institution && n == name => Some(*thresholds),
                    _ => None,
                })
        };
        if let Some(thresholds) = sync.institution_id.and_then(|i| named(Some(i))) {
            return thresholds;
        }
        if let Some(thresholds) = named(None) {
            return thresholds;
        }
        let serving = self
            .overrides
            .iter()
            .filter_map(|(key, thresholds)| match key {
                SyncKey::Location(id) if sync.locations.iter().any(|l| l.id == *id) => {
                    Some(*thresholds)
                }
                _ => None,
            });
        serving
            .reduce(|a, b| Thresholds {
                read: a.read.min(b.read),
                write: a.write.min(b.write),
            })
            .unwrap_or(self.defaults)
    }
}

impl ThresholdsFor for ThresholdPolicy {
    fn thresholds_for(&self, sync: &SyncStatus) -> Thresholds {
        ThresholdPolicy::thresholds_for(self, sync)
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
/// Serialized as `{"state": "green", "last": "2024-…Z", "age_secs": 60,
/// "limit_secs": 1500, "stale": false}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Side {
    /// What NexHealth reports.
    pub state: State,
    /// When it last happened.
    pub last: Option<DateTime<Utc>>,
    /// How long ago, at assessment time (zero if the timestamp is in the future).
    #[serde(rename = "age_secs", serialize_with = "super::serialize::opt_secs")]
    pub age: Option<Duration>,
    /// The threshold it was judged by (this sync's own, with a
    /// [`ThresholdPolicy`]).
    #[serde(rename = "limit_secs", serialize_with = "super::serialize::secs")]
    pub limit: Duration,
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
            limit,
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
    /// Assesses `sync` at `now`, by the limits `thresholds` gives it
    /// ([`Thresholds`], or per sync with a [`ThresholdPolicy`]).
    pub fn assess(sync: SyncStatus, now: DateTime<Utc>, thresholds: impl ThresholdsFor) -> Self {
        let thresholds = thresholds.thresholds_for(&sync);
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

    /// The limits this sync was judged by.
    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            read: self.read.limit,
            write: self.write.limit,
        }
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
    /// Assesses `syncs` at `now`, each by the limits `thresholds` gives it
    /// ([`Thresholds`], or per sync with a [`ThresholdPolicy`]).
    pub fn assess(
        syncs: Vec<SyncStatus>,
        now: DateTime<Utc>,
        thresholds: impl ThresholdsFor,
    ) -> Self {
        Self {
            syncs: syncs
                .into_iter()
                .map(|s| SyncHealth::assess(s, now, &thresholds))
                .collect(),
            assessed_at: now,
        }
    }

    /// Learns from a `SyncStatus` webhook event, without an API call, and
    /// answers whether anything changed.
    ///
    /// NexHealth pushes both directions: `sync_status_read_change` and
    /// `sync_status_write_change` come as `.red` when the side goes down and
    /// `.green` when it comes back. The event applies to the syncs that serve
    /// one of its locations, or carry its sync name. For each side it reports
    /// ([`SyncStatusEvent::status_of`], [`SyncStatusEvent::time_of`]):
    ///
    /// - **the status**: for the side the event names, the suffix's colour,
    ///   also when the data says another (the suffix is what NexHealth says
    ///   happened); the data's when there is no `.green`/`.red` suffix. So a
    ///   `.red` read event without a `read_status` turns reads red. The other
    ///   side is taken from the data alone.
    /// - **the order**: a side takes the event's status and time when the
    ///   event is not older than what the report holds: a newer time wins;
    ///   at the same time, a different status is a change, and the worse one
    ///   wins (red, then a value this SDK does not know, then green). A
    ///   `.red` that repeats the last check-in time turns a green side red;
    ///   a `.green` with that same time (an earlier recovery, delivered late)
    ///   does not turn it back.
    /// - a side the event gives no status or no time for is left as it is.
    ///
    /// Each side ends at the greatest (time, status) of the report and every
    /// event applied, so events apply in any order, any number of times, to
    /// the same result: an older `.red` arriving after a newer `.green`
    /// changes nothing, and a duplicate changes nothing.
    ///
    /// The syncs changed are assessed again at `now` by the limits they were
    /// judged by. Polling `/sync_status` ([`Client::sync_health`]) still
    /// matters: a missed or lost delivery, and a side that goes stale before
    /// NexHealth turns it red, show there.
    pub fn apply_event(&mut self, event: &SyncStatusEvent, now: DateTime<Utc>) -> bool {
        self.apply(event, now, None::<Thresholds>)
    }

    /// [`apply_event`](Self::apply_event), assessing the syncs it changes by
    /// `thresholds` ([`Thresholds`], or per sync with a [`ThresholdPolicy`]).
    pub fn apply_event_with(
        &mut self,
        event: &SyncStatusEvent,
        now: DateTime<Utc>,
        thresholds: impl ThresholdsFor,
    ) -> bool {
        self.apply(event, now, Some(thresholds))
    }

    fn apply(
        &mut self,
        event: &SyncStatusEvent,
        now: DateTime<Utc>,
        thresholds: Option<impl ThresholdsFor>,
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
            let read = take(
                &mut sync.read_status,
                &mut sync.read_status_at,
                event.status_of(SyncSide::Read),
                event.time_of(SyncSide::Read),
            );
            let write = take(
                &mut sync.write_status,
                &mut sync.write_status_at,
                event.status_of(SyncSide::Write),
                event.time_of(SyncSide::Write),
            );
            if read || write {
                let limits = match &thresholds {
                    Some(thresholds) => thresholds.thresholds_for(&sync),
                    None => health.thresholds(),
                };
                *health = SyncHealth::assess(sync, now, limits);
                changed = true;
            }
        }
        if changed {
            self.assessed_at = now;
        }
        changed
    }

    /// The same syncs assessed again at `now` (ages grow, sides turn stale),
    /// each by the limits `thresholds` gives it.
    pub fn reassessed(self, now: DateTime<Utc>, thresholds: impl ThresholdsFor) -> Self {
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
    pub fn write_readiness_of(&self, entry: &crate::domain::snapshot::Entry) -> WriteReadiness {
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

/// How a status ranks among those reported at the same time: the worse
/// wins (none, green, a value this SDK does not know, red).
fn rank(status: Option<&str>) -> (u8, &str) {
    match status {
        None => (0, ""),
        Some("green") => (1, ""),
        Some("red") => (3, ""),
        Some(other) => (2, other),
    }
}

/// Takes a side's status and time from an event when the event gives both
/// and is not older than what is held: a newer time, or the same time and a
/// worse status. Answers whether the side changed.
fn take(
    status: &mut Option<String>,
    at: &mut Option<DateTime<Utc>>,
    event_status: Option<&str>,
    event_at: Option<DateTime<Utc>>,
) -> bool {
    let (Some(new_status), Some(new_at)) = (event_status, event_at) else {
        return false;
    };
    let newer = match *at {
        None => true,
        Some(held) => (new_at, rank(Some(new_status))) > (held, rank(status.as_deref())),
    };
    if newer {
        *status = Some(new_status.to_string());
        *at = Some(new_at);
    }
    newer
}

impl Client {
    /// Fetches `GET /sync_status` (for one institution, or all) and assesses it
    /// now with NexHealth's thresholds.
    pub async fn sync_health(&self, subdomain: Option<&str>) -> Result<SyncReport, Error> {
        self.sync_health_with(subdomain, Thresholds::default())
            .await
    }

    /// Like [`Client::sync_health`] with other thresholds: [`Thresholds`] for
    /// every sync, or a [`ThresholdPolicy`] (per sync, with defaults).
    pub async fn sync_health_with(
        &self,
        subdomain: Option<&str>,
        thresholds: impl ThresholdsFor,
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
            institution_id: Some(1),
            locations: vec![at(location)],
            read_status: Some(read.into()),
            read_status_at: Some(now - chrono::Duration::minutes(read_min_ago)),
            write_status: Some(write.into()),
            write_status_at: Some(now - chrono::Duration::minutes(write_min_ago)),
            ..Default::default()
        }
    }

    /// A location in its short form, by id alone.
    fn at(location: i32) -> LocationSummary {
        serde_json::from_value(serde_json::json!({ "id": location })).unwrap()
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
    #[test]
    fn limits_an_entry_carries_win_side_by_side() {
        let mut carrying = aged(
            Duration::from_secs(200 * 60),
            Duration::from_secs(30 * 60),
            7,
        );
        let defaults = Thresholds::default();
        assert_eq!(defaults.thresholds_for(&carrying), defaults);
        assert!(
            SyncHealth::assess(carrying.clone(), now(), defaults)
                .read
                .stale
        );
        carrying.read_threshold_minutes = std::num::NonZeroU32::new(240);
        let policy = ThresholdPolicy::from(defaults).sync_serving(
            7,
            Thresholds {
                read: Duration::from_secs(60),
                write: Duration::from_secs(3_600),
            },
        );
        // The entry's read limit wins; the write side keeps the configured one.
        assert_eq!(
            policy.thresholds_for(&carrying),
            Thresholds {
                read: Duration::from_secs(240 * 60),
                write: Duration::from_secs(3_600),
            }
        );
        assert_eq!(
            defaults.thresholds_for(&carrying),
            Thresholds {
                read: Duration::from_secs(240 * 60),
                write: defaults.write,
            }
        );
        let health = SyncHealth::assess(carrying.clone(), now(), defaults);
        assert!(!health.read.stale, "200 minutes old, under its own 240");
        assert_eq!(health.read.limit, Duration::from_secs(240 * 60));
        // An absurd limit is cut to 30 days.
        carrying.write_threshold_minutes = std::num::NonZeroU32::new(u32::MAX);
        assert_eq!(
            defaults.thresholds_for(&carrying).write,
            LONGEST_ENTRY_LIMIT
        );
    }

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

    /// A sync event named `name` (suffix included) with `data` as its sync.
    fn named(name: &str, data: serde_json::Value) -> SyncStatusEvent {
        match crate::webhooks::Event::from_json(serde_json::json!({
            "event_name": name, "subdomain": "example-subdomain", "data": {"sync_status": data},
        })) {
            Some(
                crate::webhooks::Event::SyncStatusReadChange(change)
                | crate::webhooks::Event::SyncStatusWriteChange(change),
            ) => change,
            other => panic!("{other:?}"),
        }
    }

    fn minutes_ago(minutes: i64) -> String {
        (now() - chrono::Duration::minutes(minutes)).to_rfc3339()
    }

    /// Location 7's sync, green both ways, last read 10 and last check-in 2
    /// minutes ago.
    fn green_report() -> SyncReport {
        SyncReport::assess(
            vec![sync("green", 10, "green", 2, 7)],
            now(),
            Thresholds::default(),
        )
    }

    #[test]
    fn a_red_write_event_repeating_the_last_check_in_stops_writes() {
        let mut report = green_report();
        assert_eq!(report.write_readiness(7), WriteReadiness::Ready);
        let down = named(
            "sync_status_write_change.red",
            serde_json::json!({"write_status": "red", "write_status_at": minutes_ago(2), "locations": [{"id": 7}]}),
        );
        assert!(report.apply_event(&down, now()));
        assert_eq!(report.write_readiness(7), WriteReadiness::Down);
        assert_eq!(report.syncs[0].write.state, State::Red);
        assert_eq!(
            report.syncs[0].write.last,
            Some(now() - chrono::Duration::minutes(2))
        );
        assert!(report.syncs[0].read.is_healthy(), "reads untouched");
        // Again: nothing changes.
        assert!(!report.apply_event(&down, now()));
    }

    #[test]
    fn the_suffix_decides_the_named_side_when_the_data_is_silent_or_disagrees() {
        // No read status in the data: `.red` says it.
        let mut report = green_report();
        let silent = named(
            "sync_status_read_change.red",
            serde_json::json!({"read_status_at": minutes_ago(10), "locations": [{"id": 7}]}),
        );
        assert!(report.apply_event(&silent, now()));
        assert_eq!(report.syncs[0].read.state, State::Red);
        assert!(!report.syncs[0].is_healthy());
        assert_eq!(report.unhealthy().count(), 1);
        // The data says green, the suffix red: red.
        let mut report = green_report();
        let disagreeing = named(
            "sync_status_write_change.RED",
            serde_json::json!({"write_status": "green", "write_status_at": minutes_ago(1), "locations": [{"id": 7}]}),
        );
        assert!(report.apply_event(&disagreeing, now()));
        assert_eq!(report.syncs[0].write.state, State::Red);
        // The suffix names one side only: the other side comes from the data.
        let mut report = green_report();
        let both = named(
            "sync_status_write_change.green",
            serde_json::json!({"read_status": "red", "read_status_at": minutes_ago(5),
                "write_status": "red", "write_status_at": minutes_ago(1), "locations": [{"id": 7}]}),
        );
        assert!(report.apply_event(&both, now()));
        assert_eq!(
            report.syncs[0].read.state,
            State::Red,
            "the data's read status"
        );
        assert_eq!(
            report.syncs[0].write.state,
            State::Green,
            "the suffix's write status"
        );
        // Without a colour suffix the data decides.
        let mut report = green_report();
        let plain = named(
            "sync_status_write_change.changed",
            serde_json::json!({"write_status": "red", "write_status_at": minutes_ago(1), "locations": [{"id": 7}]}),
        );
        assert!(report.apply_event(&plain, now()));
        assert_eq!(report.syncs[0].write.state, State::Red);
    }

    #[test]
    fn a_side_without_a_status_or_a_time_is_left_as_it_is() {
        let mut report = green_report();
        let before = report.clone();
        for (name, data) in [
            // No status anywhere (no colour suffix), a newer time.
            (
                "sync_status_read_change",
                serde_json::json!({"read_status_at": minutes_ago(0), "locations": [{"id": 7}]}),
            ),
            // A status, no time.
            (
                "sync_status_read_change.red",
                serde_json::json!({"read_status": "red", "locations": [{"id": 7}]}),
            ),
            (
                "sync_status_write_change.red",
                serde_json::json!({"locations": [{"id": 7}]}),
            ),
            // The other side's time without its status.
            (
                "sync_status_write_change",
                serde_json::json!({"read_status_at": minutes_ago(0), "locations": [{"id": 7}]}),
            ),
        ] {
            assert!(
                !report.apply_event(&named(name, data.clone()), now()),
                "{name} {data}"
            );
        }
        assert_eq!(report, before);
        // A sync the report does not hold yet a time for takes any dated event.
        let mut never = sync("green", 0, "green", 0, 7);
        never.write_status_at = None;
        let mut report = SyncReport::assess(vec![never], now(), Thresholds::default());
        let old = named(
            "sync_status_write_change.red",
            serde_json::json!({"write_status_at": minutes_ago(600), "locations": [{"id": 7}]}),
        );
        assert!(report.apply_event(&old, now()));
        assert_eq!(report.syncs[0].write.state, State::Red);
    }

    #[test]
    fn events_apply_in_any_order_to_the_same_result() {
        let (t1, t2) = (minutes_ago(30), minutes_ago(5));
        let loc = serde_json::json!([{"id": 7}]);
        let events = [
            named(
                "sync_status_read_change.red",
                serde_json::json!({"read_status_at": t1, "locations": loc}),
            ),
            named(
                "sync_status_read_change.green",
                serde_json::json!({"read_status": "green", "read_status_at": t1, "locations": loc}),
            ),
            named(
                "sync_status_read_change.green",
                serde_json::json!({"read_status": "green", "read_status_at": t2, "locations": loc}),
            ),
            named(
                "sync_status_write_change.red",
                serde_json::json!({"write_status_at": t1, "locations": loc}),
            ),
            named(
                "sync_status_write_change.green",
                serde_json::json!({"write_status_at": t1, "locations": loc}),
            ),
            named(
                "sync_status_write_change",
                serde_json::json!({"write_status": "amber", "write_status_at": t1, "locations": loc}),
            ),
        ];
        let base = SyncReport::assess(
            vec![sync("red", 60, "green", 60, 7)],
            now(),
            Thresholds::default(),
        );
        let mut results = Vec::new();
        // Every order of the six (720).
        let mut order: Vec<usize> = (0..events.len()).collect();
        permutations(&mut order, 0, &mut |order| {
            let mut report = base.clone();
            for &i in order {
                report.apply_event(&events[i], now());
            }
            // Twice over: nothing more changes.
            for &i in order {
                assert!(!report.apply_event(&events[i], now()));
            }
            results.push(report);
        });
        assert_eq!(results.len(), 720);
        assert!(results.iter().all(|r| *r == results[0]));
        let health = &results[0].syncs[0];
        // Reads: the newest time wins (green at t2).
        assert_eq!(health.read.state, State::Green);
        assert_eq!(health.read.last, Some(now() - chrono::Duration::minutes(5)));
        // Writes: at the same time red beats a value this SDK does not know,
        // which beats green.
        assert_eq!(health.write.state, State::Red);
        assert_eq!(
            health.write.last,
            Some(now() - chrono::Duration::minutes(30))
        );
    }

    fn permutations(items: &mut [usize], k: usize, visit: &mut impl FnMut(&[usize])) {
        if k == items.len() {
            visit(items);
            return;
        }
        for i in k..items.len() {
            items.swap(k, i);
            permutations(items, k + 1, visit);
            items.swap(k, i);
        }
    }

    #[test]
    fn an_older_red_after_a_newer_green_changes_nothing() {
        let mut report = SyncReport::assess(
            vec![sync("red", 200, "green", 2, 7)],
            now(),
            Thresholds::default(),
        );
        let green = named(
            "sync_status_read_change.green",
            serde_json::json!({"read_status": "green", "read_status_at": minutes_ago(1), "locations": [{"id": 7}]}),
        );
        assert!(report.apply_event(&green, now()));
        assert!(report.syncs[0].is_healthy());
        let older_red = named(
            "sync_status_read_change.red",
            serde_json::json!({"read_status": "red", "read_status_at": minutes_ago(200), "locations": [{"id": 7}]}),
        );
        let assessed = report.clone();
        assert!(!report.apply_event(&older_red, now() + chrono::Duration::minutes(1)));
        assert_eq!(report, assessed, "not even assessed_at moves");
        // A green at the time of a red it follows changes nothing either.
        let mut report = SyncReport::assess(
            vec![sync("green", 10, "red", 40, 7)],
            now(),
            Thresholds::default(),
        );
        let late = named(
            "sync_status_write_change.green",
            serde_json::json!({"write_status_at": minutes_ago(40), "locations": [{"id": 7}]}),
        );
        assert!(!report.apply_event(&late, now()));
        assert_eq!(report.write_readiness(7), WriteReadiness::Down);
        // A newer one does.
        let back = named(
            "sync_status_write_change.green",
            serde_json::json!({"write_status_at": minutes_ago(0), "locations": [{"id": 7}]}),
        );
        assert!(report.apply_event(&back, now()));
        assert_eq!(report.write_readiness(7), WriteReadiness::Ready);
        assert_eq!(report.assessed_at, now());
    }

    #[test]
    fn statuses_at_one_time_rank_red_above_unknown_values_above_green() {
        assert!(rank(Some("red")) > rank(Some("amber")));
        assert!(rank(Some("amber")) > rank(Some("green")));
        assert!(rank(Some("green")) > rank(None));
        assert!(
            rank(Some("blue")) > rank(Some("amber")),
            "unknown values by name"
        );
        // A status beats none at the same time.
        let (mut status, mut at) = (None, Some(now()));
        assert!(take(&mut status, &mut at, Some("green"), Some(now())));
        assert_eq!(status.as_deref(), Some("green"));
        assert!(!take(&mut status, &mut at, Some("green"), Some(now())));
        assert!(take(&mut status, &mut at, Some("red"), Some(now())));
        assert!(!take(&mut status, &mut at, Some("green"), Some(now())));
        let later = now() + chrono::Duration::seconds(1);
        assert!(take(&mut status, &mut at, Some("green"), Some(later)));
        assert_eq!((status.as_deref(), at), (Some("green"), Some(later)));
        assert!(!take(&mut status, &mut at, Some("red"), Some(now())));
        assert!(!take(
            &mut status,
            &mut at,
            None,
            Some(later + chrono::Duration::seconds(1))
        ));
        assert!(!take(&mut status, &mut at, Some("red"), None));
        assert_eq!((status.as_deref(), at), (Some("green"), Some(later)));
    }

    fn minutes(m: u64) -> Duration {
        Duration::from_secs(m * 60)
    }

    /// A sync named `name` in institution `institution` serving `locations`,
    /// its reads `read` and writes `write` old.
    fn sync_named(
        name: Option<&str>,
        institution: i32,
        locations: &[i32],
        read: Duration,
        write: Duration,
    ) -> SyncStatus {
        let mut sync = aged(read, write, locations[0]);
        sync.sync_source_name = name.map(str::to_string);
        sync.institution_id = Some(institution);
        sync.locations = locations.iter().map(|&id| at(id)).collect();
        sync
    }

    #[test]
    fn a_policy_judges_each_sync_by_its_own_limits_to_the_second() {
        let second = Duration::from_secs(1);
        let north = Thresholds {
            read: minutes(30),
            write: minutes(5),
        };
        let south = Thresholds {
            read: minutes(300),
            write: minutes(60),
        };
        let policy = ThresholdPolicy::default()
            .sync_named("North", north)
            .sync_serving(8, south);
        let syncs = vec![
            // Reads exactly at North's limit, writes one second past it.
            sync_named(Some("North"), 1, &[7], minutes(30), minutes(5) + second),
            // Reads one second past South's limit, writes exactly at it.
            sync_named(Some("South"), 1, &[8], minutes(300) + second, minutes(60)),
            // No override: NexHealth's.
            sync_named(Some("East"), 1, &[9], minutes(150), minutes(25) + second),
        ];
        let report = SyncReport::assess(syncs.clone(), now(), &policy);
        let stale = |r: &SyncReport, i: usize| (r.syncs[i].read.stale, r.syncs[i].write.stale);
        assert_eq!(stale(&report, 0), (false, true));
        assert_eq!(stale(&report, 1), (true, false));
        assert_eq!(stale(&report, 2), (false, true));
        assert_eq!(report.syncs[0].thresholds(), north);
        assert_eq!(report.syncs[1].thresholds(), south);
        assert_eq!(report.syncs[2].thresholds(), Thresholds::default());
        assert_eq!(report.syncs[1].read.limit, minutes(300));
        // One second later, every side at its limit crosses it.
        let later = report
            .clone()
            .reassessed(now() + chrono::Duration::seconds(1), &policy);
        assert_eq!(stale(&later, 0), (true, true));
        assert_eq!(stale(&later, 1), (true, true));
        // By one threshold for all, the same syncs read otherwise.
        let flat = SyncReport::assess(syncs, now(), Thresholds::default());
        assert_eq!(stale(&flat, 0), (false, false));
        assert_eq!(stale(&flat, 1), (true, true));
        // An event reassesses a sync by the limits it was judged by.
        let mut report = report;
        let change = named(
            "sync_status_write_change.green",
            serde_json::json!({"write_status_at": now().to_rfc3339(), "locations": [{"id": 8}]}),
        );
        assert!(report.apply_event(&change, now()));
        assert_eq!(report.syncs[1].thresholds(), south);
        assert!(report.syncs[1].read.stale, "still by South's 300 minutes");
        let mut flat_after = report.clone();
        let newer = named(
            "sync_status_write_change.green",
            serde_json::json!({"write_status_at": (now() + chrono::Duration::seconds(1)).to_rfc3339(), "locations": [{"id": 8}]}),
        );
        assert!(flat_after.apply_event_with(&newer, now(), Thresholds::default()));
        assert_eq!(flat_after.syncs[1].thresholds(), Thresholds::default());
    }

    #[test]
    fn a_policy_prefers_the_institution_and_name_then_the_name_then_locations() {
        let t = |m: u64| Thresholds {
            read: minutes(m),
            write: minutes(m + 1),
        };
        let policy = ThresholdPolicy::new(t(100))
            .sync_serving(7, t(40))
            .sync_serving(8, t(50))
            .sync_named("Front", t(20))
            .sync_named_in(2, "Front", t(10));
        let of = |name: Option<&str>, institution: i32, locations: &[i32]| {
            policy.thresholds_for(&sync_named(
                name,
                institution,
                locations,
                minutes(1),
                minutes(1),
            ))
        };
        assert_eq!(of(Some("Front"), 2, &[7]), t(10));
        assert_eq!(of(Some("Front"), 3, &[7]), t(20));
        assert_eq!(of(Some("front"), 3, &[9]), t(100), "names compare exactly");
        assert_eq!(of(Some("Back"), 2, &[7]), t(40));
        assert_eq!(of(None, 2, &[9, 8]), t(50));
        // Several locations: the shortest limit of each side.
        let mixed = ThresholdPolicy::default()
            .sync_serving(
                7,
                Thresholds {
                    read: minutes(10),
                    write: minutes(90),
                },
            )
            .sync_serving(
                8,
                Thresholds {
                    read: minutes(70),
                    write: minutes(5),
                },
            );
        let both = sync_named(None, 1, &[7, 8], minutes(1), minutes(1));
        assert_eq!(
            mixed.thresholds_for(&both),
            Thresholds {
                read: minutes(10),
                write: minutes(5)
            }
        );
        assert_eq!(of(None, 2, &[9]), t(100));
        assert_eq!(policy.defaults(), t(100));
        // Set twice: the last one holds.
        let again = ThresholdPolicy::default()
            .sync_named("Front", t(20))
            .sync_named("Front", t(30));
        assert_eq!(
            again.thresholds_for(&sync_named(Some("Front"), 1, &[7], minutes(1), minutes(1))),
            t(30)
        );
        assert_eq!(again, ThresholdPolicy::default().sync_named("Front", t(30)));
        // A name in one institution does not hold for a sync without one.
        let mut nowhere = sync_named(Some("Front"), 2, &[9], minutes(1), minutes(1));
        nowhere.institution_id = None;
        assert_eq!(policy.thresholds_for(&nowhere), t(20));
        // Thresholds are a policy without overrides.
        let flat = t(60);
        assert_eq!(ThresholdPolicy::from(flat), ThresholdPolicy::new(flat));
        assert_eq!(flat.thresholds_for(&nowhere), flat);
        assert_eq!((&&flat).thresholds_for(&nowhere), flat);
        assert_eq!(flat.of(SyncSide::Read), minutes(60));
        assert_eq!(flat.of(SyncSide::Write), minutes(61));
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
