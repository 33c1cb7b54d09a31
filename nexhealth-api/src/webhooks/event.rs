//! Typed webhook events, decoded leniently from the shapes deliveries are
//! known (or suspected) to take.
//!
//! The envelope is `{event_name, resource_type, subdomain, event_time,
//! subscription_id, data, …}`. `event_name` may carry an outcome after a dot
//! (`appointment_insertion.complete`, possibly `sync_status_read_change.green`).
//! A sync event's `data` may be `{"sync_status": {…}}`, `{"syncstatus": {…}}`,
//! a one-element list under either key (or their plurals), or the sync itself.
//! Anything unknown decodes into [`Event::Unknown`], never an error; the raw
//! JSON stays reachable on every event.
//!
//! Deliveries are at least once and may come out of order: [`EventEnvelope::event_time`]
//! and the sync's `read_status_at` / `write_status_at` let a receiver drop
//! duplicates and stale events (see [`SyncStatusChange::is_newer_than`]).

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
    /// Whether this change carries a newer read or write time than `other`:
    /// an older or equal one is a duplicate or came out of order.
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

/// A `SyncStatus` event.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncStatusEvent {
    /// The delivery.
    pub envelope: EventEnvelope,
    /// The sync as the event reports it.
    pub sync: SyncStatusChange,
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
    /// `sync_status_read_change`: reads came back (NexHealth does not push the
    /// change from green to red: keep polling `/sync_status`).
    SyncStatusReadChange(SyncStatusEvent),
    /// `sync_status_write_change`.
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
