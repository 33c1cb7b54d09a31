//! Typed webhook events, decoded leniently from the shapes deliveries are
//! known (or suspected) to take.
//!
//! The envelope is `{event_name, resource_type, subdomain, event_time,
//! subscription_id, data, …}`. `event_name` may carry an outcome after a dot
//! (`appointment_insertion.complete`). The sync events carry the colour their
//! side turned: `sync_status_read_change.red` / `sync_status_write_change.red`
//! when reads or writes go down, `.green` when they come back (NexHealth's
//! reference, October 2026: both events fire both ways).
//! A sync event's `data` may be `{"sync_status": {…}}`, `{"syncstatus": {…}}`,
//! a one-element list under either key (or their plurals), or the sync itself.
//! Anything unknown decodes into [`Event::Unknown`], never an error; the raw
//! JSON stays reachable on every event.
//!
//! Deliveries are at least once and may come out of order: [`EventEnvelope::event_time`]
//! and the sync's `read_status_at` / `write_status_at` let a receiver drop
//! duplicates and stale events. [`SyncStatusEvent::status_of`] and
//! [`SyncStatusEvent::time_of`] say what an event reports of each side (the
//! suffix first), and
//! [`SyncReport::apply_event`](crate::sync_health::SyncReport::apply_event)
//! applies them in any order to the same result.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// The fields every delivery carries, and the raw JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct EventEnvelope {
    /// `event_name` as delivered, outcome included (`sync_status_read_change.green`).
    pub event_name: String,
    /// `resource_type`, e.g. `SyncStatus`.
    pub resource_type: Option<String>,
    /// The institution the event is about.
    pub subdomain: Option<String>,
    /// `event_time`, when it parses as RFC 3339.
    pub event_time: Option<DateTime<Utc>>,
    /// `subscription_id`, as delivered (a number or a string).
    pub subscription_id: Option<Value>,
    /// The whole delivery.
    pub raw: Value,
}

impl EventEnvelope {
    /// The event without its outcome: `sync_status_read_change`.
    pub fn family(&self) -> &str {
        self.event_name.split('.').next().unwrap_or_default()
    }

    /// The outcome after the dot, if any: `green`, `complete`, `failed`.
    pub fn outcome(&self) -> Option<&str> {
        self.event_name.split_once('.').map(|(_, outcome)| outcome)
    }

    /// `data`, as delivered.
    pub fn data(&self) -> &Value {
        self.raw.get("data").unwrap_or(&Value::Null)
    }
}

/// A sync's state as an event reports it: every field optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncStatusChange {
    /// The institution's id (a number or a numeric string, as delivered; the
    /// same type as the REST answers' ids).
    pub institution_id: Option<i32>,
    /// The sync's name.
    pub sync_source_name: Option<String>,
    /// `green` or `red` (or a value NexHealth adds later).
    pub read_status: Option<String>,
    /// Last successful read.
    pub read_status_at: Option<DateTime<Utc>>,
    /// `green` or `red`.
    pub write_status: Option<String>,
    /// Last successful write.
    pub write_status_at: Option<DateTime<Utc>>,
    /// The locations the sync serves (each a number or a numeric string, as
    /// delivered; one that is neither, or out of range, is left out).
    pub location_ids: Vec<i32>,
}

impl SyncStatusChange {
    /// Whether this change carries a newer read or write time than `other`.
    ///
    /// It compares times only. An equal time is not always a duplicate: a
    /// `.red` event repeats the time of the side's last read or check-in, and
    /// is still a change from green;
    /// [`SyncReport::apply_event`](crate::sync_health::SyncReport::apply_event)
    /// orders events by time, then status.
    pub fn is_newer_than(&self, other: &SyncStatusChange) -> bool {
        let newer = |a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>| match (a, b) {
            (Some(a), Some(b)) => a > b,
            (Some(_), None) => true,
            _ => false,
        };
        newer(self.read_status_at, other.read_status_at)
            || newer(self.write_status_at, other.write_status_at)
    }
}

/// The side of a sync an event is about: its reads or its writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncSide {
    /// Reads from the practice database (`read_status`, `read_status_at`).
    Read,
    /// Writes to it (`write_status`, `write_status_at`).
    Write,
}

impl SyncSide {
    /// `read` or `write`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }

    /// The event that reports this side: `sync_status_read_change` or
    /// `sync_status_write_change`.
    pub fn event_name(&self) -> &'static str {
        match self {
            Self::Read => "sync_status_read_change",
            Self::Write => "sync_status_write_change",
        }
    }
}

/// A `SyncStatus` event: `sync_status_read_change` or
/// `sync_status_write_change`, with the colour the side turned as the event
/// name's suffix (`.red` when it went down, `.green` when it came back).
///
/// What it says of a side: [`status_of`](Self::status_of) and
/// [`time_of`](Self::time_of). For the side the event names, the suffix
/// decides the status, also when the data says otherwise (the suffix is what
/// NexHealth says happened; the data is a copy of the sync that may lag);
/// the data decides when there is no `.green` or `.red` suffix. The other
/// side is read from the data alone.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncStatusEvent {
    /// The delivery.
    pub envelope: EventEnvelope,
    /// The sync as the event's data reports it (the suffix not applied).
    pub sync: SyncStatusChange,
}

impl SyncStatusEvent {
    /// The side the event names: [`SyncSide::Read`] for
    /// `sync_status_read_change`, [`SyncSide::Write`] for
    /// `sync_status_write_change`, `None` for any other name.
    pub fn side(&self) -> Option<SyncSide> {
        match self.envelope.family() {
            "sync_status_read_change" => Some(SyncSide::Read),
            "sync_status_write_change" => Some(SyncSide::Write),
            _ => None,
        }
    }

    /// The colour in the event name's suffix: `green` or `red` (in any case,
    /// answered in lower case). `None` without a suffix or for any other one,
    /// which is left to the data.
    pub fn outcome_status(&self) -> Option<&'static str> {
        let outcome = self.envelope.outcome()?;
        if outcome.eq_ignore_ascii_case("green") {
            Some("green")
        } else if outcome.eq_ignore_ascii_case("red") {
            Some("red")
        } else {
            None
        }
    }

    /// The status the event reports for `side`: for the side it names, the
    /// suffix's colour ([`outcome_status`](Self::outcome_status)), else the
    /// data's; for the other side, the data's. `None` when it says nothing.
    pub fn status_of(&self, side: SyncSide) -> Option<&str> {
        let data = match side {
            SyncSide::Read => self.sync.read_status.as_deref(),
            SyncSide::Write => self.sync.write_status.as_deref(),
        };
        match self.outcome_status() {
            Some(colour) if self.side() == Some(side) => Some(colour),
            _ => data,
        }
    }

    /// The time the event gives `side` (`read_status_at` or
    /// `write_status_at`: the last read, or the last write check-in). A `.red`
    /// event usually repeats the time the side last worked. `None` when the
    /// data has none: the event cannot be ordered for that side.
    pub fn time_of(&self, side: SyncSide) -> Option<DateTime<Utc>> {
        match side {
            SyncSide::Read => self.sync.read_status_at,
            SyncSide::Write => self.sync.write_status_at,
        }
    }
}

/// An `Onboarding` event.
#[derive(Debug, Clone, PartialEq)]
pub struct OnboardingEvent {
    /// The delivery.
    pub envelope: EventEnvelope,
    /// The onboarding's id, when the delivery names it.
    pub onboarding_id: Option<String>,
}

/// A verified delivery, by event.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `sync_status_read_change`: a sync's read status changed, both ways:
    /// `.red` when reads went down (NexHealth turns them red when the last
    /// read is older than 150 minutes, or the sync's own limit), `.green` when
    /// they came back.
    SyncStatusReadChange(SyncStatusEvent),
    /// `sync_status_write_change`: a sync's write status changed, both ways:
    /// `.red` when writes went down (the last write check-in is older than
    /// 25 minutes, or the sync's own limit; writes to its locations fail),
    /// `.green` when they came back.
    SyncStatusWriteChange(SyncStatusEvent),
    /// `onboarding_created`.
    OnboardingCreated(OnboardingEvent),
    /// `onboarding_updated`.
    OnboardingUpdated(OnboardingEvent),
    /// `onboarding_availability_ready`.
    OnboardingAvailabilityReady(OnboardingEvent),
    /// Any other event, kept as delivered.
    Unknown(EventEnvelope),
}

impl Event {
    /// The delivery's envelope.
    pub fn envelope(&self) -> &EventEnvelope {
        match self {
            Self::SyncStatusReadChange(e) | Self::SyncStatusWriteChange(e) => &e.envelope,
            Self::OnboardingCreated(e)
            | Self::OnboardingUpdated(e)
            | Self::OnboardingAvailabilityReady(e) => &e.envelope,
            Self::Unknown(envelope) => envelope,
        }
    }

    /// Decodes a delivery's JSON. `None` when it is not an event at all (no
    /// `event_name` string); an event this SDK does not know is [`Event::Unknown`].
    pub fn from_json(raw: Value) -> Option<Self> {
        let event_name = raw.get("event_name")?.as_str()?.to_string();
        let text = |key: &str| raw.get(key).and_then(Value::as_str).map(str::to_string);
        let envelope = EventEnvelope {
            resource_type: text("resource_type"),
            subdomain: text("subdomain"),
            event_time: raw.get("event_time").and_then(time),
            subscription_id: raw.get("subscription_id").cloned(),
            event_name,
            raw,
        };
        let sync = |envelope: EventEnvelope| {
            let sync = sync_change(envelope.data());
            SyncStatusEvent { envelope, sync }
        };
        let onboarding = |envelope: EventEnvelope| {
            let onboarding_id = onboarding_id(envelope.data());
            OnboardingEvent {
                envelope,
                onboarding_id,
            }
        };
        Some(match envelope.family() {
            "sync_status_read_change" => Self::SyncStatusReadChange(sync(envelope)),
            "sync_status_write_change" => Self::SyncStatusWriteChange(sync(envelope)),
            "onboarding_created" => Self::OnboardingCreated(onboarding(envelope)),
            "onboarding_updated" => Self::OnboardingUpdated(onboarding(envelope)),
            "onboarding_availability_ready" => {
                Self::OnboardingAvailabilityReady(onboarding(envelope))
            }
            _ => Self::Unknown(envelope),
        })
    }
}

fn time(value: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// An object, or the first element of a list.
fn one(value: &Value) -> Option<&Value> {
    match value {
        Value::Object(_) => Some(value),
        Value::Array(items) => items.first().filter(|v| v.is_object()),
        _ => None,
    }
}

fn sync_change(data: &Value) -> SyncStatusChange {
    let sync = ["sync_status", "syncstatus", "sync_statuses", "syncstatuses"]
        .iter()
        .find_map(|key| data.get(key).and_then(one))
        .or_else(|| one(data))
        .unwrap_or(&Value::Null);
    let text = |key: &str| sync.get(key).and_then(Value::as_str).map(str::to_string);
    SyncStatusChange {
        institution_id: sync.get("institution_id").and_then(lenient_id),
        sync_source_name: text("sync_source_name"),
        read_status: text("read_status"),
        read_status_at: sync.get("read_status_at").and_then(time),
        write_status: text("write_status"),
        write_status_at: sync.get("write_status_at").and_then(time),
        location_ids: sync
            .get("locations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|l| l.get("id").and_then(lenient_id))
            .collect(),
    }
}

/// An id as NexHealth may deliver it: a number or a numeric string, within
/// the `i32` the REST types use.
fn lenient_id(value: &Value) -> Option<i32> {
    match value {
        Value::Number(n) => n.as_i64().and_then(|n| i32::try_from(n).ok()),
        Value::String(s) => s.trim().parse::<i32>().ok(),
        _ => None,
    }
}

fn onboarding_id(data: &Value) -> Option<String> {
    let onboarding = ["onboarding", "onboardings"]
        .iter()
        .find_map(|key| data.get(key).and_then(one))
        .or_else(|| one(data))?;
    match onboarding.get("id")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sync(name: &str, data: Value) -> SyncStatusEvent {
        match Event::from_json(json!({"event_name": name, "data": {"sync_status": data}})) {
            Some(Event::SyncStatusReadChange(e) | Event::SyncStatusWriteChange(e)) => e,
            other => panic!("{name}: {other:?}"),
        }
    }

    fn at(text: &str) -> Option<DateTime<Utc>> {
        Some(DateTime::parse_from_rfc3339(text).unwrap().to_utc())
    }

    #[test]
    fn a_sync_event_names_its_side_and_the_colour_it_turned() {
        let red = sync("sync_status_write_change.red", json!({}));
        assert_eq!(red.side(), Some(SyncSide::Write));
        assert_eq!(red.outcome_status(), Some("red"));
        let green = sync("sync_status_read_change.Green", json!({}));
        assert_eq!(green.side(), Some(SyncSide::Read));
        assert_eq!(green.outcome_status(), Some("green"));
        assert_eq!(
            sync("sync_status_read_change", json!({})).outcome_status(),
            None
        );
        assert_eq!(
            sync("sync_status_read_change.complete", json!({})).outcome_status(),
            None
        );
        // Built by hand under another name: no side.
        let mut other = red.clone();
        other.envelope.event_name = "appointment_insertion.red".into();
        assert_eq!(other.side(), None);
        assert_eq!(
            other.status_of(SyncSide::Write),
            None,
            "no side: the suffix names none"
        );
        assert_eq!(SyncSide::Read.as_str(), "read");
        assert_eq!(SyncSide::Write.as_str(), "write");
        assert_eq!(SyncSide::Read.event_name(), "sync_status_read_change");
        assert_eq!(SyncSide::Write.event_name(), "sync_status_write_change");
    }

    #[test]
    fn the_suffix_decides_the_named_side_and_the_data_the_other() {
        let data = json!({"read_status": "green", "read_status_at": "2026-08-14T10:00:00Z",
            "write_status": "green", "write_status_at": "2026-08-14T10:05:00Z"});
        let red_write = sync("sync_status_write_change.red", data.clone());
        assert_eq!(red_write.status_of(SyncSide::Write), Some("red"));
        assert_eq!(red_write.status_of(SyncSide::Read), Some("green"));
        assert_eq!(
            red_write.time_of(SyncSide::Read),
            at("2026-08-14T10:00:00Z")
        );
        assert_eq!(
            red_write.time_of(SyncSide::Write),
            at("2026-08-14T10:05:00Z")
        );
        // The data stays as delivered.
        assert_eq!(red_write.sync.write_status.as_deref(), Some("green"));
        let red_read = sync("sync_status_read_change.red", data.clone());
        assert_eq!(red_read.status_of(SyncSide::Read), Some("red"));
        assert_eq!(red_read.status_of(SyncSide::Write), Some("green"));
        // No colour suffix: the data's.
        let plain = sync(
            "sync_status_read_change.changed",
            json!({"read_status": "amber"}),
        );
        assert_eq!(plain.status_of(SyncSide::Read), Some("amber"));
        assert_eq!(plain.status_of(SyncSide::Write), None);
        assert_eq!(plain.time_of(SyncSide::Read), None);
        // The suffix alone.
        let bare = sync("sync_status_read_change.red", json!({}));
        assert_eq!(bare.status_of(SyncSide::Read), Some("red"));
        assert_eq!(bare.status_of(SyncSide::Write), None);
    }

    #[test]
    fn every_family_decodes_to_its_variant_and_anything_else_is_unknown() {
        let names = [
            ("sync_status_read_change.red", "read"),
            ("sync_status_write_change", "write"),
            ("onboarding_created", "created"),
            ("onboarding_updated.x", "updated"),
            ("onboarding_availability_ready", "ready"),
            ("appointment_insertion.complete", "unknown"),
        ];
        for (name, expected) in names {
            let raw = json!({"event_name": name, "resource_type": "R", "subdomain": "s",
                "event_time": "2026-08-14T10:00:00+02:00", "subscription_id": 5, "data": {}});
            let event = Event::from_json(raw.clone()).unwrap();
            let variant = match &event {
                Event::SyncStatusReadChange(_) => "read",
                Event::SyncStatusWriteChange(_) => "write",
                Event::OnboardingCreated(_) => "created",
                Event::OnboardingUpdated(_) => "updated",
                Event::OnboardingAvailabilityReady(_) => "ready",
                Event::Unknown(_) => "unknown",
            };
            assert_eq!(variant, expected, "{name}");
            let envelope = event.envelope();
            assert_eq!(envelope.event_name, name);
            assert_eq!(envelope.resource_type.as_deref(), Some("R"));
            assert_eq!(envelope.subdomain.as_deref(), Some("s"));
            assert_eq!(envelope.event_time, at("2026-08-14T08:00:00Z"));
            assert_eq!(envelope.subscription_id, Some(json!(5)));
            assert_eq!(envelope.data(), &json!({}));
            assert_eq!(envelope.raw, raw);
        }
        assert_eq!(Event::from_json(json!({"data": {}})), None);
        assert_eq!(Event::from_json(json!({"event_name": 5})), None);
        let Some(Event::Unknown(bare)) = Event::from_json(json!({"event_name": "x",
            "event_time": "yesterday"}))
        else {
            panic!()
        };
        assert_eq!(bare.data(), &Value::Null);
        assert_eq!(bare.event_time, None);
        assert_eq!(bare.family(), "x");
        assert_eq!(bare.outcome(), None);
        let dotted = EventEnvelope {
            event_name: "a.b.c".into(),
            ..bare
        };
        assert_eq!((dotted.family(), dotted.outcome()), ("a", Some("b.c")));
    }

    #[test]
    fn a_sync_decodes_from_every_shape_with_lenient_ids() {
        let sync_data = json!({"institution_id": "12", "sync_source_name": "Front",
            "read_status": "green", "read_status_at": "2026-08-14T10:00:00Z",
            "write_status": "red", "write_status_at": "2026-08-14T10:05:00Z",
            "locations": [{"id": 8}, {"id": " 9 "}, {"id": "nexloc-1"}, {"id": 5_000_000_000_u64},
                {"id": 1.5}, {"id": null}, {"name": "no id"}]});
        let expected = SyncStatusChange {
            institution_id: Some(12),
            sync_source_name: Some("Front".into()),
            read_status: Some("green".into()),
            read_status_at: at("2026-08-14T10:00:00Z"),
            write_status: Some("red".into()),
            write_status_at: at("2026-08-14T10:05:00Z"),
            location_ids: vec![8, 9],
        };
        for data in [
            json!({"sync_status": sync_data}),
            json!({"syncstatus": sync_data}),
            json!({"sync_statuses": [sync_data, {}]}),
            json!({"syncstatuses": [sync_data]}),
            json!({"sync_status": "not an object", "syncstatus": [5], "syncstatuses": [sync_data]}),
            sync_data.clone(),
            json!([sync_data]),
        ] {
            let Some(Event::SyncStatusWriteChange(e)) =
                Event::from_json(json!({"event_name": "sync_status_write_change", "data": data}))
            else {
                panic!()
            };
            assert_eq!(e.sync, expected, "{}", e.envelope.raw);
        }
        for nothing in [json!(null), json!("text"), json!([]), json!([1]), json!(7)] {
            let Some(Event::SyncStatusReadChange(e)) =
                Event::from_json(json!({"event_name": "sync_status_read_change", "data": nothing}))
            else {
                panic!()
            };
            assert_eq!(e.sync, SyncStatusChange::default(), "{nothing}");
        }
        assert_eq!(lenient_id(&json!(-3)), Some(-3));
        assert_eq!(lenient_id(&json!(i64::from(i32::MAX) + 1)), None);
        assert_eq!(lenient_id(&json!("-4")), Some(-4));
        assert_eq!(lenient_id(&json!(true)), None);
    }

    #[test]
    fn an_onboarding_id_is_read_from_every_shape() {
        let id = |data: Value| match Event::from_json(
            json!({"event_name": "onboarding_updated", "data": data}),
        ) {
            Some(Event::OnboardingUpdated(e)) => e.onboarding_id,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            id(json!({"onboarding": {"id": "y2wx"}})),
            Some("y2wx".into())
        );
        assert_eq!(id(json!({"onboardings": [{"id": 42}]})), Some("42".into()));
        assert_eq!(id(json!({"id": "bare"})), Some("bare".into()));
        assert_eq!(id(json!([{"id": "listed"}])), Some("listed".into()));
        assert_eq!(id(json!({"onboarding": {"id": true}})), None);
        assert_eq!(id(json!({"onboarding": {}})), None);
        assert_eq!(id(json!(null)), None);
    }

    #[test]
    fn newer_compares_times_only() {
        let change = |read: Option<&str>, write: Option<&str>| SyncStatusChange {
            read_status_at: read.and_then(at),
            write_status_at: write.and_then(at),
            ..Default::default()
        };
        let (early, late) = ("2026-08-14T10:00:00Z", "2026-08-14T10:05:00Z");
        assert!(change(Some(late), None).is_newer_than(&change(Some(early), None)));
        assert!(!change(Some(early), None).is_newer_than(&change(Some(late), None)));
        assert!(!change(Some(early), None).is_newer_than(&change(Some(early), None)));
        assert!(change(Some(early), None).is_newer_than(&change(None, None)));
        assert!(!change(None, None).is_newer_than(&change(Some(early), None)));
        assert!(change(None, Some(late)).is_newer_than(&change(None, Some(early))));
        assert!(change(Some(early), Some(late)).is_newer_than(&change(Some(late), Some(early))));
    }
}
