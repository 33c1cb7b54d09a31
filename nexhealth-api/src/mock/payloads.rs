//! The spec's examples, decoded into the generated types.
//!
//! Every example is checked against its schema by the crate's own tests,
//! so the typed accessors below cannot fail on a spec that passes CI.
//! [`StandIn`](crate::mock::StandIn) answers with the same payloads.
//!
//! They describe one small practice group, consistently across operations:
//!
//! | what | id | values a test can assert on |
//! |---|---|---|
//! | institution | 1 | subdomain `example-subdomain`; named "General Practice" by `/institutions`, "General Practice - Dr. P. Sherman DDS" by `/locations` |
//! | location | 7 | "Default", active, `tz` `America/Los_Angeles`, `map_by_operatory` true, `foreign_id` "1" |
//! | location | 8 | "Uptown", **inactive**, `tz` `America/New_York`, no address, `foreign_id` "2"; not in `/institutions`' answer |
//! | sync "Front desk server" | | Dentrix (on-premises), reads and writes green, serves location 7 |
//! | sync "Uptown cloud" | | Dentrix Ascend (cloud), reads green, **writes red**, serves location 8 |
//! | onboarding | `y2wxl82zldm4` | for `example-subdomain`; `in_progress` in the list, `complete` when fetched alone |
//! | onboarding | `k3m9q2lzp0aa` | the one created by `POST /onboardings`: `in_progress`, no subdomain yet |
//! | webhook endpoint | 1 | `https://hooks.example.com/nexhealth`, active, secret `example-signing-secret` |
//! | webhook subscription | 5 | endpoint 1, institution 1, `SyncStatus` / `sync_status_read_change`, active |
//!
//! Webhook deliveries of the same group, as NexHealth sends them, for every
//! event the SDK types: [`sync_status_delivery`] (`.red` and `.green`, reads
//! or writes), [`onboarding_delivery`], and all of them at once with
//! [`webhook_deliveries`].
//!
//! So with [`sync_status`] (dated two minutes ago), a
//! [`SyncReport`](crate::sync_health::SyncReport) says location 7 can be
//! written to and location 8 cannot:
//!
//! ```
//! use nexhealth_api::mock::payloads;
//! use nexhealth_api::sync_health::{SyncReport, Thresholds, WriteReadiness};
//!
//! let institutions = payloads::locations().data;
//! assert_eq!(institutions[0].id, 1);
//! assert_eq!(institutions[0].subdomain, "example-subdomain");
//! let ids: Vec<i32> = institutions[0].locations.iter().map(|l| l.id).collect();
//! assert_eq!(ids, [7, 8]);
//! assert_eq!(institutions[0].locations[1].inactive, Some(true));
//!
//! let report = SyncReport::assess(
//!     payloads::sync_status().data,
//!     nexhealth_api::chrono::Utc::now(),
//!     Thresholds::default(),
//! );
//! assert_eq!(report.write_readiness(7), WriteReadiness::Ready);
//! assert_eq!(report.write_readiness(8), WriteReadiness::Down);
//! assert_eq!(report.write_readiness(9), WriteReadiness::NoSync);
//! assert_eq!(report.unhealthy().count(), 1); // the "Uptown cloud" sync
//! ```

use serde::de::DeserializeOwned;

use crate::api::operations::EXAMPLES;
use crate::generated::types;

pub use super::generated_httpmock::examples;

/// The example JSON for `operation` and `status` (0 for the request body),
/// exactly as the spec writes it; `None` when the spec has no such example.
/// `operation` is the spec's `operationId` (`"getLocationsId"`, also
/// [`OperationId::id`](crate::operations::OperationId::id)), not the Rust
/// method name (`get_locations_id`). Use it to send a body byte for byte,
/// e.g. a webhook endpoint whose `secret_key` must go out unredacted.
pub fn json(operation: &str, status: u16) -> Option<&'static str> {
    EXAMPLES
        .iter()
        .find(|(op, s, _)| *op == operation && *s == status)
        .map(|(_, _, json)| *json)
}

/// The example for `operation` and `status` decoded into `T`; an error
/// naming the operation and status when there is none or it does not decode.
/// `operation` is the spec's `operationId` (`"getLocationsId"`), as for
/// [`json`]. The typed accessors in [`examples`]
/// (`examples::get_locations_id_200()`) need neither the id nor the type.
pub fn decode<T: DeserializeOwned>(operation: &str, status: u16) -> Result<T, String> {
    let text = json(operation, status)
        .ok_or_else(|| format!("the spec has no example for {operation} {status}"))?;
    serde_json::from_str(text).map_err(|e| format!("example {operation} {status}: {e}"))
}

fn known<T: DeserializeOwned>(operation: &str, status: u16) -> T {
    decode(operation, status).unwrap_or_else(|e| panic!("{e}"))
}

/// `POST /authenticates` 201: a bearer token whose claims say `iat`
/// 2025-11-24 and `exp` 2100-01-01 (`sub` "1"), so a client never needs to
/// refresh it during a test. Its signature is not a real one.
pub fn authenticate() -> types::AuthenticateResponse {
    known("postAuthenticates", 201)
}
/// `GET /institutions` 200, `count` 1: institution 1, "General Practice",
/// subdomain `example-subdomain`, EMRs `dentrix` and `curve2`, country `US`,
/// with one location in its short form: 7 "Default" (New York, NY), active.
/// Location 8 is not listed here.
pub fn institutions() -> types::InstitutionListResponse {
    known("getInstitutions", 200)
}
/// `GET /institutions/{id}` 200: institution 1 as in [`institutions`], its
/// one location (7 "Default") given by id and name only.
pub fn institution() -> types::InstitutionResponse {
    known("getInstitutionsId", 200)
}
/// `GET /locations` 200, `count` 1: institution 1 ("General Practice -
/// Dr. P. Sherman DDS", subdomain `example-subdomain`) with two locations:
///
/// - 7 "Default": active (`inactive` false), 123 Law St, New York, NY,
///   `tz` `America/Los_Angeles`, `map_by_operatory` true,
///   `insert_appt_client` true, `foreign_id` "1", specialty "General
///   Dentistry", last synced 2020-06-17T19:23:49.176Z;
/// - 8 "Uptown": `inactive` true, no address, phone or coordinates,
///   `tz` `America/New_York`, `map_by_operatory` false, `foreign_id` "2",
///   never synced (`last_sync_time` null).
///
/// Both have `foreign_id_type` `msg-opendental-DataSource-35` and
/// `institution_id` 1.
pub fn locations() -> types::LocationListResponse {
    known("getLocations", 200)
}
/// `GET /locations` 200 holding `n` locations, for size and load tests: the
/// example's first institution (1, `example-subdomain`) with `n` copies of
/// its first location (7 "Default"), ids `0..n`, and `count` 1.
pub fn locations_with(n: usize) -> types::LocationListResponse {
    let mut body = locations();
    body.data.truncate(1);
    for institution in &mut body.data {
        let template = institution.locations.swap_remove(0);
        institution.locations = (0..)
            .take(n)
            .map(|id| types::Location {
                id,
                ..template.clone()
            })
            .collect();
    }
    body.count = Some(1);
    body
}
/// `GET /locations/{id}` 200: location 7 "Default" of institution 1, the
/// same fields as in [`locations`] (active, `tz` `America/Los_Angeles`,
/// `map_by_operatory` true), without `specialty`, `wlogo` and `weight`.
pub fn location() -> types::LocationResponse {
    known("getLocationsId", 200)
}
/// `GET /sync_status` 200, `count` 2: the two syncs of institution 1, as of
/// now.
///
/// - "Front desk server" (`DataSource`; EMR 11 `dentrix`, "Dentrix",
///   `onprem`): reads green, writes green; serves location 7 "Default".
/// - "Uptown cloud" (`DataSource`; EMR 23 `dentrixascend`, "Dentrix Ascend",
///   `cloud`): reads green, writes **red**; serves location 8 "Uptown".
///
/// Every `*_status_at` is two minutes ago, well inside NexHealth's
/// thresholds, so [`Client::sync_health`](crate::Client::sync_health) reads
/// the first sync as healthy whatever today's date is: location 7's
/// [`WriteReadiness`](crate::sync_health::WriteReadiness) is `Ready`,
/// location 8's is `Down`, and any other location's is `NoSync`. See
/// [`sync_status_at`] for a fixed time.
pub fn sync_status() -> types::SyncStatusListResponse {
    sync_status_at(chrono::Utc::now())
}

/// [`sync_status`] as of `now`: each `*_status_at` is `now` minus two minutes.
/// Use it to test what a service does at a fixed time, or when a sync has been
/// quiet too long: with `sync_status_at(now - Duration::hours(3))`, assessed
/// at `now`, both syncs' reads are older than 150 minutes and their writes
/// older than 25, so location 7 is `Stale` (green but old) and location 8
/// still `Down`.
pub fn sync_status_at(now: chrono::DateTime<chrono::Utc>) -> types::SyncStatusListResponse {
    let mut body: types::SyncStatusListResponse = known("getSyncStatus", 200);
    let at = now - chrono::Duration::minutes(2);
    for sync in &mut body.data {
        for stamp in [&mut sync.read_status_at, &mut sync.write_status_at] {
            if stamp.is_some() {
                *stamp = Some(at);
            }
        }
    }
    body
}

/// `GET /onboardings` 200: one page (`has_next_page` false, cursors `AAAAA`
/// and `BBBBBB`) holding onboarding `y2wxl82zldm4` for `example-subdomain`,
/// `in_progress`, created 2026-01-01, its link valid until 2026-04-01, no
/// booking parameters and no `availability_ready_at` yet.
pub fn onboardings() -> types::OnboardingListResponse {
    known("getOnboardings", 200)
}
/// `GET /onboardings/{hashid}` 200: onboarding `y2wxl82zldm4` finished:
/// `complete`, booking parameters location 105 with appointment types 19 and
/// 20, availability ready at 2026-01-02T00:00:00Z.
pub fn onboarding() -> types::OnboardingResponse {
    known("getOnboardingsHashid", 200)
}
/// `POST /onboardings` 201: the new onboarding `k3m9q2lzp0aa`,
/// `in_progress`, no subdomain yet, link
/// `https://app.nexhealth.com/onboardings/k3m9q2lzp0aa` valid until
/// 2026-04-01, empty booking parameters.
pub fn onboarding_created() -> types::OnboardingResponse {
    known("postOnboardings", 201)
}
/// `POST /onboardings` request body: a new institution, "Smile Dental
/// Group", zip code 94105, EMR `opendental`, with a website and an email.
pub fn onboarding_request() -> types::OnboardingCreateRequest {
    known("postOnboardings", 0)
}
/// `GET /webhook_endpoints` 200, `count` 1: endpoint 1,
/// `https://hooks.example.com/nexhealth`, active (its `secret_key` is
/// `example-signing-secret`). A typed mock serializes it, and a
/// [`WebhookSecret`](crate::WebhookSecret) always serializes as
/// `"<redacted>"`: to send the secret itself, answer with the example's
/// text, `json("getWebhookEndpoints", 200)`.
pub fn webhook_endpoints() -> types::WebhookEndpointListResponse {
    known("getWebhookEndpoints", 200)
}
/// `POST /webhook_endpoints` 201: endpoint 1 as in [`webhook_endpoints`]
/// (served typed, its secret goes out as `"<redacted>"`; see there).
pub fn webhook_endpoint() -> types::WebhookEndpointResponse {
    known("postWebhookEndpoints", 201)
}
/// `GET /webhook_endpoints/{id}/webhook_subscriptions` 200, `count` 1:
/// subscription 5 of endpoint 1 for institution 1, resource `SyncStatus`,
/// event `sync_status_read_change`, active. The write-change subscription
/// is missing, so `ensure_sync_status_subscriptions` would create it.
pub fn webhook_subscriptions() -> types::WebhookSubscriptionListResponse {
    known("getWebhookEndpointsIdWebhookSubscriptions", 200)
}
/// `POST /webhook_endpoints/{id}/webhook_subscriptions` 201: subscription 5
/// as in [`webhook_subscriptions`].
pub fn webhook_subscription() -> types::WebhookSubscriptionResponse {
    known("postWebhookEndpointsIdWebhookSubscriptions", 201)
}
/// A `sync_status_read_change` or `sync_status_write_change` webhook delivery
/// (`side`) with the outcome `outcome` (`green` or `red`), as NexHealth sends
/// it: the event name with its suffix (`sync_status_write_change.red`),
/// `resource_type` `SyncStatus`, `subdomain` `example-subdomain`,
/// `subscription_id` 5 for reads and 6 for writes (the write subscription
/// the example lacks), `event_time` `last`, an empty `delivery_errors`, and
/// the sync under `data.sync_status`.
///
/// The sync is the [`sync_status`] entry serving `location_id` ("Front desk
/// server" for 7, "Uptown cloud" for 8; for any other id, the first entry
/// without its name, serving that location alone): its institution, name,
/// source type, EMR and locations, and the side the event names, its status
/// `outcome` and its `*_status_at` `last`. The other side is left out, so
/// that the sample moves only the side it names. For a `.red` delivery
/// `last` is the side's last read or check-in, the time it stopped (NexHealth
/// repeats it); for `.green`, when it came back. The data's key is not
/// confirmed by NexHealth (`syncstatus` is seen too); the receiver reads both.
///
/// ```
/// use nexhealth_api::mock::payloads;
/// use nexhealth_api::sync_health::{SyncReport, SyncSide, Thresholds, WriteReadiness};
/// use nexhealth_api::webhooks::Event;
///
/// let now = nexhealth_api::chrono::Utc::now();
/// let mut report = SyncReport::assess(payloads::sync_status_at(now).data, now, Thresholds::default());
/// assert_eq!(report.write_readiness(7), WriteReadiness::Ready);
/// // Writes to location 7 go down; NexHealth repeats the last check-in time.
/// let last = report.syncs[0].write.last.unwrap();
/// let delivery = payloads::sync_status_delivery(SyncSide::Write, "red", 7, last);
/// assert_eq!(delivery["event_name"], "sync_status_write_change.red");
/// let Some(Event::SyncStatusWriteChange(down)) = Event::from_json(delivery) else { panic!() };
/// assert!(report.apply_event(&down, now));
/// assert_eq!(report.write_readiness(7), WriteReadiness::Down);
/// ```
pub fn sync_status_delivery(
    side: crate::domain::sync_health::SyncSide,
    outcome: &str,
    location_id: i32,
    last: chrono::DateTime<chrono::Utc>,
) -> serde_json::Value {
    use crate::domain::sync_health::SyncSide;
    let syncs = sync_status_at(last).data;
    let serving = syncs
        .iter()
        .find(|s| s.locations.iter().any(|l| l.id == location_id))
        .cloned();
    let mut sync = serving.unwrap_or_else(|| {
        let mut sync = syncs[0].clone();
        sync.sync_source_name = None;
        sync.locations.truncate(1);
        for location in &mut sync.locations {
            location.id = location_id;
        }
        sync
    });
    let status = Some(outcome.to_string());
    let subscription_id = match side {
        SyncSide::Read => {
            (sync.read_status, sync.read_status_at) = (status, Some(last));
            (sync.write_status, sync.write_status_at) = (None, None);
            5
        }
        SyncSide::Write => {
            (sync.write_status, sync.write_status_at) = (status, Some(last));
            (sync.read_status, sync.read_status_at) = (None, None);
            6
        }
    };
    serde_json::json!({
        "resource_type": "SyncStatus",
        "event_name": format!("{}.{outcome}", side.event_name()),
        "event_time": last.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "subdomain": "example-subdomain",
        "subscription_id": subscription_id,
        "data": {"sync_status": sync},
        "delivery_errors": [],
    })
}

/// An `Onboarding` webhook delivery as NexHealth sends it, for
/// `event_name` `onboarding_created` (the new onboarding `k3m9q2lzp0aa` of
/// [`onboarding_created`], `event_time` its creation), `onboarding_updated` or
/// `onboarding_availability_ready` (onboarding `y2wxl82zldm4` as
/// [`onboarding`] has it, complete, `event_time` its availability): the
/// onboarding under `data.onboarding`, `resource_type` `Onboarding`, no
/// subdomain (onboarding subscriptions belong to no institution), an empty
/// `delivery_errors`. `None` for any other name.
pub fn onboarding_delivery(event_name: &str) -> Option<serde_json::Value> {
    let onboarding = match event_name {
        "onboarding_created" => onboarding_created().data,
        "onboarding_updated" | "onboarding_availability_ready" => onboarding().data,
        _ => return None,
    };
    let at = match event_name {
        "onboarding_created" => onboarding.created_at,
        _ => onboarding.availability_ready_at,
    };
    Some(serde_json::json!({
        "resource_type": "Onboarding",
        "event_name": event_name,
        "event_time": at,
        "data": {"onboarding": onboarding},
        "delivery_errors": [],
    }))
}

/// One sample delivery of every event the SDK types
/// ([`Event`](crate::webhooks::Event)'s variants), both outcomes of the sync
/// events included, dated `last` where a sync event is: reads of location 7
/// going `red` and coming back `green`, writes of location 8 (red in
/// [`sync_status`]) going `red` and coming back `green`, then
/// `onboarding_created`, `onboarding_updated` and
/// `onboarding_availability_ready` (see [`sync_status_delivery`] and
/// [`onboarding_delivery`]). [`DeliverySimulator::deliver_samples`](crate::mock::DeliverySimulator::deliver_samples)
/// sends them.
pub fn webhook_deliveries(last: chrono::DateTime<chrono::Utc>) -> Vec<serde_json::Value> {
    use crate::domain::sync_health::SyncSide;
    let mut deliveries = vec![
        sync_status_delivery(SyncSide::Read, "red", 7, last),
        sync_status_delivery(SyncSide::Read, "green", 7, last),
        sync_status_delivery(SyncSide::Write, "red", 8, last),
        sync_status_delivery(SyncSide::Write, "green", 8, last),
    ];
    deliveries.extend(
        [
            "onboarding_created",
            "onboarding_updated",
            "onboarding_availability_ready",
        ]
        .into_iter()
        .filter_map(onboarding_delivery),
    );
    deliveries
}

/// An error envelope for any `status`: the spec's example where it has one,
/// otherwise an envelope in the same shape whose message is the status's
/// reason phrase (`502` → "Bad Gateway", "Error" for a status without one).
/// Never panics. What [`Error::messages`](crate::Error::messages) returns
/// for the spec's examples (the envelope's `error`, then its `description`):
///
/// | status | messages |
/// |---|---|
/// | 400 | "per_page must be less than or equal to 1000" |
/// | 401 | "Unauthorized" |
/// | 403 | "You don't have access to perform this action." |
/// | 404 | "Record not found" |
/// | 429 | "Too many requests" |
/// | 500 | "Internal server error" (its `description`; `error` is empty) |
pub fn error(status: u16) -> types::ErrorEnvelope {
    let documented = crate::api::operations::OPERATIONS
        .iter()
        .find(|op| op.error_statuses.contains(&status))
        .and_then(|op| decode(op.id, status).ok());
    documented.unwrap_or_else(|| {
        let reason = http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error");
        types::ErrorEnvelope {
            code: Some(false),
            count: None,
            data: None,
            description: None,
            error: Some(vec![reason.to_string()]),
            page_info: None,
        }
    })
}
