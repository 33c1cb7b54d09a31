//! The spec's examples, decoded into the generated types.
//!
//! Every example is checked against its schema by the crate's own tests,
//! so the typed accessors below cannot fail on a spec that passes CI.

use serde::de::DeserializeOwned;

use crate::api::operations::EXAMPLES;
use crate::types;

/// The example JSON for `operation` (spec id) and `status` (0 for the request body).
pub fn json(operation: &str, status: u16) -> Option<&'static str> {
    EXAMPLES
        .iter()
        .find(|(op, s, _)| *op == operation && *s == status)
        .map(|(_, _, json)| *json)
}

/// The example decoded into `T`.
pub fn decode<T: DeserializeOwned>(operation: &str, status: u16) -> Result<T, String> {
    let text = json(operation, status)
        .ok_or_else(|| format!("the spec has no example for {operation} {status}"))?;
    serde_json::from_str(text).map_err(|e| format!("example {operation} {status}: {e}"))
}

fn known<T: DeserializeOwned>(operation: &str, status: u16) -> T {
    decode(operation, status).unwrap_or_else(|e| panic!("{e}"))
}

/// `POST /authenticates` 201.
pub fn authenticate() -> types::AuthenticateResponse {
    known("postAuthenticates", 201)
}
/// `GET /institutions` 200.
pub fn institutions() -> types::InstitutionListResponse {
    known("getInstitutions", 200)
}
/// `GET /institutions/{id}` 200.
pub fn institution() -> types::InstitutionResponse {
    known("getInstitutionsId", 200)
}
/// `GET /locations` 200: one institution with an active and an inactive location.
pub fn locations() -> types::LocationListResponse {
    known("getLocations", 200)
}
/// `GET /locations` 200 holding `n` locations, for size and load tests: the
/// example's first institution with `n` copies of its first location, ids
/// `0..n`, and `count` 1.
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
/// `GET /locations/{id}` 200.
pub fn location() -> types::LocationResponse {
    known("getLocationsId", 200)
}
/// `GET /sync_status` 200: one healthy sync and one whose writes are down,
/// as of now: every `*_status_at` is two minutes ago, well inside NexHealth's
/// thresholds, so [`Client::sync_health`](crate::Client::sync_health) reads
/// the first sync as healthy whatever today's date is. See [`sync_status_at`].
pub fn sync_status() -> types::SyncStatusListResponse {
    sync_status_at(chrono::Utc::now())
}

/// [`sync_status`] as of `now`: each `*_status_at` is `now` minus two minutes.
/// Use it to test what a service does at a fixed time, or when a sync has been
/// quiet too long (`sync_status_at(now - Duration::hours(3))` is stale by then).
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

/// `GET /onboardings` 200.
pub fn onboardings() -> types::OnboardingListResponse {
    known("getOnboardings", 200)
}
/// `GET /onboardings/{hashid}` 200.
pub fn onboarding() -> types::OnboardingResponse {
    known("getOnboardingsHashid", 200)
}
/// `POST /onboardings` 201.
pub fn onboarding_created() -> types::OnboardingResponse {
    known("postOnboardings", 201)
}
/// `POST /onboardings` request body.
pub fn onboarding_request() -> types::OnboardingCreateRequest {
    known("postOnboardings", 0)
}
/// `GET /webhook_endpoints` 200: one active endpoint (its `secret_key` is
/// `example-signing-secret`). A typed mock serializes it, and a
/// [`WebhookSecret`](crate::WebhookSecret) always serializes as
/// `"<redacted>"`: to send the secret itself, answer with the example's
/// text, `json("getWebhookEndpoints", 200)`.
pub fn webhook_endpoints() -> types::WebhookEndpointListResponse {
    known("getWebhookEndpoints", 200)
}
/// `POST /webhook_endpoints` 201 (served typed, its secret goes out as
/// `"<redacted>"`; see [`webhook_endpoints`]).
pub fn webhook_endpoint() -> types::WebhookEndpointResponse {
    known("postWebhookEndpoints", 201)
}
/// `GET /webhook_endpoints/{id}/webhook_subscriptions` 200: the read-change
/// subscription of one institution.
pub fn webhook_subscriptions() -> types::WebhookSubscriptionListResponse {
    known("getWebhookEndpointsIdWebhookSubscriptions", 200)
}
/// `POST /webhook_endpoints/{id}/webhook_subscriptions` 201.
pub fn webhook_subscription() -> types::WebhookSubscriptionResponse {
    known("postWebhookEndpointsIdWebhookSubscriptions", 201)
}
/// An error envelope for any `status`: the spec's example where it has one
/// (400, 401, 403, 404, 429, 500), otherwise an envelope in the same shape
/// whose message is the status's reason phrase (`502` → "Bad Gateway").
/// Never panics.
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
