//! Webhooks: the eight management operations on the wire, the helpers that
//! make them idempotent, and the receiver (signatures, event shapes, faults).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use httpmock::Method::{DELETE, GET, PATCH, POST};
use nexhealth_api::headers::{JSON_ACCEPT, VENDOR_ACCEPT};
use nexhealth_api::mock::{MockServerExt, payloads};
use nexhealth_api::types::{
    WebhookEndpointCreateRequest, WebhookEndpointListResponse, WebhookEndpointUpdateRequest,
    WebhookEventName, WebhookResourceType, WebhookSubscriptionCreateRequest,
    WebhookSubscriptionListResponse, WebhookSubscriptionUpdateRequest,
};
use nexhealth_api::webhooks::signature::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use nexhealth_api::webhooks::{Event, Receiver, Rejection};
use nexhealth_api::{CallExt, WebhookSecret};
use nexhealth_contract_tests::{Harness, bearer};
use proptest::prelude::*;
use serde_json::{Value, json};

fn v2(when: httpmock::When, token: &str) -> httpmock::When {
    when.header("accept", VENDOR_ACCEPT)
        .header("authorization", bearer(token))
        .header_missing("nex-api-version")
}

fn v3(when: httpmock::When, token: &str) -> httpmock::When {
    when.header("accept", JSON_ACCEPT)
        .header("authorization", bearer(token))
        .header("nex-api-version", "v3.0.0")
}

fn endpoints() -> WebhookEndpointListResponse {
    payloads::webhook_endpoints()
}

fn subscriptions() -> WebhookSubscriptionListResponse {
    payloads::webhook_subscriptions()
}

#[tokio::test]
async fn get_webhook_endpoints() {
    let h = Harness::start().await;
    let _auth = h.auth();
    let mock = h.server.mock(|when, then| {
        v2(
            when.method(GET)
                .path("/webhook_endpoints")
                .query_param("active", "false"),
            &h.token,
        );
        // The example's text: served typed, the secret would go out redacted.
        then.status(200)
            .header("content-type", "application/json")
            .body(payloads::json("getWebhookEndpoints", 200).unwrap());
    });
    let (client, fallback) = h.client();
    let list = client.get_webhook_endpoints().active(false).await.unwrap();
    assert_eq!(list[0].id, 1);
    assert_eq!(
        list[0].secret_key.as_ref().unwrap().expose(),
        "example-signing-secret"
    );
    // The secret never shows in Debug output.
    let debug = format!("{:?}", list.data());
    assert!(!debug.contains("example-signing-secret"), "{debug}");
    mock.assert_calls(1);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn post_webhook_endpoints_is_not_retried() {
    let h = Harness::start().await;
    let _auth = h.auth();
    let created = h.server.mock(|when, then| {
        v2(when.method(POST).path("/webhook_endpoints"), &h.token)
            .json_body(json!({"target_url": "https://hooks.example.com/nexhealth"}));
        then.status(503);
    });
    let (client, fallback) = h.client();
    let body = WebhookEndpointCreateRequest {
        target_url: "https://hooks.example.com/nexhealth".into(),
        active: None,
    };
    let error = client
        .post_webhook_endpoints()
        .body(body.clone())
        .await
        .unwrap_err();
    assert!(error.is_server());
    created.assert_calls(1);
    // Opted in: retried.
    let _ = client
        .post_webhook_endpoints()
        .body(body)
        .retry_unsafe()
        .await;
    created.assert_calls(4);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn patch_and_delete_webhook_endpoints_id() {
    let h = Harness::start().await;
    let _auth = h.auth();
    let patch = h.server.mock(|when, then| {
        v2(when.method(PATCH).path("/webhook_endpoints/1"), &h.token)
            .json_body(json!({"active": true}));
        then.status(200)
            .header("content-type", "application/json")
            .body(payloads::json("patchWebhookEndpointsId", 200).unwrap());
    });
    let delete = h.server.delete_webhook_endpoints_id(|when, then| {
        when.id(1);
        then.no_content();
    });
    let (client, fallback) = h.client();
    let endpoint = client
        .patch_webhook_endpoints_id()
        .id(1)
        .body(WebhookEndpointUpdateRequest {
            target_url: None,
            active: Some(true),
        })
        .await
        .unwrap();
    assert_eq!(endpoint.active, Some(true));
    let deleted = client.delete_webhook_endpoints_id().id(1).await.unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    assert_eq!(*deleted, ());
    patch.assert_calls(1);
    delete.assert_calls(1);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn subscription_operations_carry_the_version_and_their_parameters() {
    let h = Harness::start().await;
    let _auth = h.auth();
    let list = h.server.mock(|when, then| {
        v3(
            when.method(GET)
                .path("/webhook_endpoints/1/webhook_subscriptions")
                .query_param("subdomain", "example-subdomain")
                .query_param("resource_type", "SyncStatus")
                .query_param("event", "sync_status_read_change"),
            &h.token,
        );
        then.status(200).json_body_obj(&subscriptions());
    });
    let create = h.server.mock(|when, then| {
        v3(
            when.method(POST)
                .path("/webhook_endpoints/1/webhook_subscriptions")
                .query_param("subdomain", "example-subdomain"),
            &h.token,
        )
        .json_body(json!({"resource_type": "SyncStatus", "event": "sync_status_write_change"}));
        then.status(201)
            .header("content-type", "application/json")
            .body(payloads::json("postWebhookEndpointsIdWebhookSubscriptions", 201).unwrap());
    });
    let patch = h.server.mock(|when, then| {
        v3(
            when.method(PATCH)
                .path("/webhook_endpoints/1/webhook_subscriptions/5")
                .query_param("subdomain", "example-subdomain"),
            &h.token,
        )
        .json_body(json!({"new_endpoint_id": 2}));
        then.status(200)
            .header("content-type", "application/json")
            .body(
                payloads::json(
                    "patchWebhookEndpointsIdWebhookSubscriptionsSubscriptionId",
                    200,
                )
                .unwrap(),
            );
    });
    let delete = h.server.mock(|when, then| {
        v3(
            when.method(DELETE)
                .path("/webhook_endpoints/1/webhook_subscriptions/5"),
            &h.token,
        );
        then.status(204);
    });
    let (client, fallback) = h.client();
    let found = client
        .get_webhook_endpoints_id_webhook_subscriptions()
        .id(1)
        .subdomain("example-subdomain")
        .resource_type(WebhookResourceType::SyncStatus)
        .event(WebhookEventName::SyncStatusReadChange)
        .await
        .unwrap();
    assert_eq!(found[0].event.as_deref(), Some("sync_status_read_change"));
    let created = client
        .post_webhook_endpoints_id_webhook_subscriptions()
        .id(1)
        .subdomain("example-subdomain")
        .body(WebhookSubscriptionCreateRequest {
            resource_type: WebhookResourceType::SyncStatus,
            event: WebhookEventName::SyncStatusWriteChange,
            active: None,
        })
        .await
        .unwrap();
    assert_eq!(created.id, 5);
    let moved = client
        .patch_webhook_endpoints_id_webhook_subscriptions_subscription_id()
        .id(1)
        .subscription_id(5)
        .subdomain("example-subdomain")
        .body(WebhookSubscriptionUpdateRequest {
            new_endpoint_id: Some(2),
            active: None,
        })
        .await
        .unwrap();
    assert_eq!(moved.id, 5);
    client
        .delete_webhook_endpoints_id_webhook_subscriptions_subscription_id()
        .id(1)
        .subscription_id(5)
        .await
        .unwrap();
    for mock in [&list, &create, &patch, &delete] {
        mock.assert_calls(1);
    }
    fallback.assert_calls(0);
}

/// A new event name or resource type in an answer never breaks decoding.
#[tokio::test]
async fn unknown_event_names_in_answers_decode() {
    let h = Harness::start().await;
    let _auth = h.auth();
    let mut body = serde_json::to_value(subscriptions()).unwrap();
    body["data"][0]["resource_type"] = json!("Conversation");
    body["data"][0]["event"] = json!("conversation_created");
    h.server.mock(|when, then| {
        when.method(GET)
            .path("/webhook_endpoints/1/webhook_subscriptions");
        then.status(200).json_body(body);
    });
    let (client, _) = h.client();
    let found = client
        .get_webhook_endpoints_id_webhook_subscriptions()
        .id(1)
        .await
        .unwrap();
    assert_eq!(found[0].event.as_deref(), Some("conversation_created"));
}

/// Ensuring twice creates nothing twice; an endpoint NexHealth turned off is turned back on.
#[tokio::test]
async fn ensure_helpers_are_idempotent() {
    let h = Harness::start().await;
    let _auth = h.auth();
    let mut inactive = endpoints();
    inactive.data[0].active = Some(false);
    let list = h.server.get_webhook_endpoints(|_, then| {
        then.ok(&inactive);
    });
    let reactivate = h.server.mock(|when, then| {
        when.method(PATCH)
            .path("/webhook_endpoints/1")
            .json_body(json!({"active": true}));
        then.status(200)
            .header("content-type", "application/json")
            .body(payloads::json("patchWebhookEndpointsId", 200).unwrap());
    });
    let create_endpoint = h.server.mock(|when, then| {
        when.method(POST).path("/webhook_endpoints");
        then.status(201);
    });
    // Subscriptions: the read change exists, the write change does not.
    let existing = subscriptions();
    let subs = h
        .server
        .get_webhook_endpoints_id_webhook_subscriptions(|when, then| {
            when.id(1).subdomain("example-subdomain");
            then.ok(&existing);
        });
    let create_sub = h.server.mock(|when, then| {
        when.method(POST)
            .path("/webhook_endpoints/1/webhook_subscriptions")
            .json_body(json!({"resource_type": "SyncStatus", "event": "sync_status_write_change"}));
        then.status(201)
            .header("content-type", "application/json")
            .body(payloads::json("postWebhookEndpointsIdWebhookSubscriptions", 201).unwrap());
    });
    let (client, fallback) = h.client();
    let endpoint = client
        .ensure_webhook_endpoint("https://hooks.example.com/nexhealth")
        .await
        .unwrap();
    assert_eq!(endpoint.active, Some(true));
    let both = client
        .ensure_sync_status_subscriptions(endpoint.id, "example-subdomain")
        .await
        .unwrap();
    assert_eq!(both.len(), 2);
    list.assert_calls(1);
    reactivate.assert_calls(1);
    create_endpoint.assert_calls(0);
    subs.assert_calls(1);
    create_sub.assert_calls(1);
    fallback.assert_calls(0);
}

/// Once everything exists and is active, ensuring again sends only the two lists.
#[tokio::test]
async fn ensuring_what_already_exists_changes_nothing() {
    let h = Harness::start().await;
    let _auth = h.auth();
    h.server.get_webhook_endpoints(|_, then| {
        then.ok(&endpoints());
    });
    let mut both = subscriptions();
    let mut write = both.data[0].clone();
    write.id = 6;
    write.event = Some("sync_status_write_change".into());
    both.data.push(write);
    h.server
        .get_webhook_endpoints_id_webhook_subscriptions(|when, then| {
            when.id(1).subdomain("example-subdomain");
            then.ok(&both);
        });
    // Anything else (a POST or PATCH) would reach the fallback mock.
    let (client, fallback) = h.client();
    for _ in 0..2 {
        let endpoint = client
            .ensure_webhook_endpoint("https://hooks.example.com/nexhealth")
            .await
            .unwrap();
        let subscriptions = client
            .ensure_sync_status_subscriptions(endpoint.id, "example-subdomain")
            .await
            .unwrap();
        let ids: Vec<i32> = subscriptions.iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![5, 6]);
    }
    fallback.assert_calls(0);
}

// ---- Receiving ----

const SECRET: &str = "NArWk7gdI96Bdn";
const TIMESTAMP: &str = "2026-08-14T10:00:00Z";

fn headers(timestamp: &str, signature: &str) -> nexhealth_api::reqwest::header::HeaderMap {
    let mut headers = nexhealth_api::reqwest::header::HeaderMap::new();
    headers.insert(TIMESTAMP_HEADER, timestamp.parse().unwrap());
    headers.insert(SIGNATURE_HEADER, signature.parse().unwrap());
    headers
}

fn signed(body: &[u8]) -> nexhealth_api::reqwest::header::HeaderMap {
    headers(TIMESTAMP, &signature::sign(SECRET, TIMESTAMP, body))
}

/// Vectors computed by Python's hmac (tests/data/webhook_vectors.py); when
/// python3 is here, the script is run again and must print the same.
#[test]
fn signatures_match_an_independent_implementation() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/webhook-vectors.json");
    let text = std::fs::read_to_string(path).unwrap();
    let vectors: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(vectors.len(), 4);
    for v in &vectors {
        let secret = v["secret"].as_str().unwrap();
        let timestamp = v["timestamp"].as_str().unwrap();
        let body = STANDARD.decode(v["body_base64"].as_str().unwrap()).unwrap();
        let hex = v["signature_hex"].as_str().unwrap();
        assert_eq!(signature::sign(secret, timestamp, &body), hex);
        assert!(signature::verify(secret, timestamp, hex, &body).is_ok());
        let b64 = v["signature_base64"].as_str().unwrap();
        assert!(signature::verify(secret, timestamp, b64, &body).is_ok());
    }
    if let Ok(out) = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/webhook_vectors.py"
        ))
        .output()
        && out.status.success()
    {
        let fresh: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            fresh, vectors,
            "the Python script disagrees with its committed output"
        );
    }
}

#[test]
fn a_changed_byte_timestamp_or_secret_and_missing_or_cut_headers_are_rejected() {
    let body = br#"{"event_name":"sync_status_read_change","subdomain":"acme","data":{}}"#;
    let receiver = Receiver::new(SECRET).unwrap();
    assert!(receiver.receive(&signed(body), body).is_ok());
    let mut changed = body.to_vec();
    changed[5] ^= 1;
    assert_eq!(
        receiver.receive(&signed(body), &changed),
        Err(Rejection::BadSignature)
    );
    let signature = signature::sign(SECRET, TIMESTAMP, body);
    assert_eq!(
        receiver.receive(&headers("2026-08-14T10:00:01Z", &signature), body),
        Err(Rejection::BadSignature)
    );
    assert_eq!(
        Receiver::new("another-secret")
            .unwrap()
            .receive(&signed(body), body),
        Err(Rejection::BadSignature)
    );
    let mut missing = signed(body);
    missing.remove(SIGNATURE_HEADER);
    assert_eq!(
        receiver.receive(&missing, body),
        Err(Rejection::MissingHeader("signature"))
    );
    let mut no_time = signed(body);
    no_time.remove(TIMESTAMP_HEADER);
    assert_eq!(
        receiver.receive(&no_time, body),
        Err(Rejection::MissingHeader("timestamp"))
    );
    assert_eq!(
        receiver.receive(&headers(TIMESTAMP, &signature[..40]), body),
        Err(Rejection::MalformedSignature)
    );
    assert_eq!(Rejection::BadSignature.status(), 401);
    assert_eq!(Rejection::NotJson.status(), 400);
}

#[test]
fn a_body_that_is_not_utf8_verifies_then_is_not_json() {
    let body = b"\xff\xfe\x00binary, not UTF-8";
    assert_eq!(
        Receiver::new(SECRET).unwrap().receive(&signed(body), body),
        Err(Rejection::NotJson)
    );
    let not_event = br#"{"hello":"world"}"#;
    assert_eq!(
        Receiver::new(SECRET)
            .unwrap()
            .receive(&signed(not_event), not_event),
        Err(Rejection::NotAnEvent)
    );
}

#[test]
fn the_maximum_age_refuses_old_deliveries() {
    use chrono::TimeZone;
    let body = br#"{"event_name":"onboarding_created","data":{"onboarding":{"id":"y2wx"}}}"#;
    let receiver = Receiver::new(SECRET)
        .unwrap()
        .max_age(std::time::Duration::from_secs(49 * 3600))
        .unwrap();
    let now = chrono::Utc.with_ymd_and_hms(2026, 8, 16, 10, 0, 0).unwrap(); // 48 h later
    assert!(receiver.receive_at(&signed(body), body, now).is_ok());
    let later = now + chrono::Duration::hours(2);
    assert!(matches!(
        receiver.receive_at(&signed(body), body, later),
        Err(Rejection::TooOld { .. })
    ));
    // Without a maximum age (the default) an old retry is accepted.
    assert!(
        Receiver::new(SECRET)
            .unwrap()
            .receive_at(&signed(body), body, later)
            .is_ok()
    );
}

/// Every shape the reference lists decodes into its event.
#[test]
fn every_known_delivery_shape_decodes() {
    let sync_shapes = [
        json!({"event_name": "sync_status_read_change.green", "subdomain": "demo-subdomain", "subscription_id": "sub-1",
               "data": {"syncstatus": {"read_status": "green", "read_status_at": "2026-08-14T10:00:00Z", "locations": [{"id": "7"}]}}}),
        json!({"event_name": "sync_status_read_change", "data": {"sync_status": {"read_status": "green", "read_status_at": "2026-08-14T10:00:00Z", "locations": [{"id": 7}]}}}),
        json!({"event_name": "sync_status_read_change", "data": {"sync_statuses": [{"read_status": "green", "read_status_at": "2026-08-14T10:00:00Z", "locations": [{"id": 7}]}]}}),
        json!({"event_name": "sync_status_read_change", "data": {"syncstatus": [{"read_status": "green", "read_status_at": "2026-08-14T10:00:00Z", "locations": [{"id": 7}]}]}}),
        json!({"event_name": "sync_status_read_change", "resource_type": "SyncStatus", "event_time": "2026-08-14T10:00:01Z",
               "data": {"sync_source_type": "pms", "sync_source_name": "Dentrix", "read_status": "green", "read_status_at": "2026-08-14T10:00:00Z",
                        "write_status": "red", "write_status_at": "2026-08-14T10:05:00Z", "emr": {"id": "emr-1", "name": "dentrix"}, "locations": [{"id": " 7 "}]}}),
    ];
    for shape in sync_shapes {
        let body = serde_json::to_vec(&shape).unwrap();
        let event = Receiver::new(SECRET)
            .unwrap()
            .receive(&signed(&body), &body)
            .unwrap();
        let Event::SyncStatusReadChange(sync) = &event else {
            panic!("{shape}: {event:?}");
        };
        assert_eq!(sync.sync.read_status.as_deref(), Some("green"), "{shape}");
        assert!(sync.sync.read_status_at.is_some(), "{shape}");
        assert_eq!(sync.sync.location_ids, vec![7], "{shape}");
        assert_eq!(event.envelope().raw, shape);
    }
    // Ids decode leniently into the REST types' i32: a number or a numeric
    // string; anything else (or out of range) is left out.
    let ids = json!({"event_name": "sync_status_read_change", "data": {"sync_status": {"institution_id": "12",
        "locations": [{"id": 8}, {"id": "9"}, {"id": "nexloc-1"}, {"id": 5_000_000_000u64}, {"id": null}]}}});
    let Some(Event::SyncStatusReadChange(sync)) = Event::from_json(ids) else {
        panic!("a sync event");
    };
    assert_eq!(sync.sync.location_ids, vec![8, 9]);
    assert_eq!(sync.sync.institution_id, Some(12));
    let write = json!({"event_name": "sync_status_write_change", "data": {"sync_status": {"write_status": "green", "write_status_at": "2026-08-14T10:05:00Z", "locations": [{"id": 7}]}}});
    assert!(matches!(
        Event::from_json(write),
        Some(Event::SyncStatusWriteChange(_))
    ));
    for (name, shape) in [
        (
            "onboarding_created",
            json!({"onboarding": {"id": "y2wxl82zldm4"}}),
        ),
        (
            "onboarding_updated",
            json!({"onboardings": [{"id": "y2wxl82zldm4"}]}),
        ),
        (
            "onboarding_availability_ready",
            json!({"id": "y2wxl82zldm4"}),
        ),
    ] {
        let event = Event::from_json(json!({"event_name": name, "data": shape})).unwrap();
        match event {
            Event::OnboardingCreated(e)
            | Event::OnboardingUpdated(e)
            | Event::OnboardingAvailabilityReady(e) => {
                assert_eq!(e.onboarding_id.as_deref(), Some("y2wxl82zldm4"), "{name}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    let insertion = Event::from_json(
        json!({"event_name": "appointment_insertion.complete", "data": {"appointment": {"id": 9}}}),
    )
    .unwrap();
    let Event::Unknown(envelope) = insertion else {
        panic!()
    };
    assert_eq!(envelope.family(), "appointment_insertion");
    assert_eq!(envelope.outcome(), Some("complete"));
}

/// A SyncStatus event updates the sync report for its subdomain without an
/// API call; older or duplicate events change nothing.
#[test]
fn sync_health_learns_from_events() {
    use nexhealth_api::sync_health::{SyncReport, Thresholds, WriteReadiness};
    let now = chrono::Utc::now();
    let stale = now - chrono::Duration::hours(5);
    let mut report = SyncReport::assess(
        payloads::sync_status_at(stale).data,
        now,
        Thresholds::default(),
    );
    assert_eq!(report.write_readiness(8), WriteReadiness::Down);
    let recent = (now - chrono::Duration::minutes(1)).to_rfc3339();
    let event = Event::from_json(json!({"event_name": "sync_status_write_change", "subdomain": "example-subdomain",
        "data": {"sync_status": {"write_status": "green", "write_status_at": recent, "read_status": "green", "read_status_at": recent, "locations": [{"id": 8}]}}}))
        .unwrap();
    let Event::SyncStatusWriteChange(change) = &event else {
        panic!()
    };
    assert!(report.apply_event(change, now));
    assert_eq!(report.write_readiness(8), WriteReadiness::Ready);
    // The same delivery again, or an older one: nothing changes.
    assert!(!report.apply_event(change, now));
}

/// 5,000 mutated deliveries: none panics, each ends in an event or a typed
/// rejection, and no rejection names the secret or any of the body.
#[test]
fn mutated_deliveries_never_panic_or_leak() {
    let base = br#"{"event_name":"sync_status_read_change","subdomain":"acme-secret-subdomain","data":{"sync_status":{"read_status":"green","locations":[{"id":7}]}}}"#;
    let receiver = Receiver::new(SECRET).unwrap();
    let mut seed: u64 = 0x5eed;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut events, mut rejections) = (0, 0);
    for i in 0..5_000 {
        let mut body = base.to_vec();
        for _ in 0..(1 + next() % 4) {
            let at = (next() as usize) % body.len();
            match next() % 3 {
                0 => body[at] = next() as u8,
                1 => body.truncate(at.max(1)),
                _ => body.insert(at, next() as u8),
            }
        }
        // Half signed correctly (so the JSON path runs), half with a stale signature.
        let headers = if i % 2 == 0 {
            signed(&body)
        } else {
            signed(base)
        };
        match receiver.receive(&headers, &body) {
            Ok(_) => events += 1,
            Err(rejection) => {
                rejections += 1;
                let text = format!("{rejection} {rejection:?}");
                assert!(
                    !text.contains(SECRET) && !text.contains("acme-secret"),
                    "{text}"
                );
            }
        }
    }
    assert_eq!(events + rejections, 5_000);
    assert!(
        events > 0 && rejections > 2_500,
        "{events} events, {rejections} rejections"
    );
}

proptest! {
    #[test]
    fn what_we_sign_we_verify(body in proptest::collection::vec(any::<u8>(), 0..512), secret in "[ -~]{1,40}", ts in "[0-9TZ:.+-]{1,30}") {
        let sig = signature::sign(&secret, &ts, &body);
        prop_assert!(signature::verify(&secret, &ts, &sig, &body).is_ok());
        let mut other = body.clone();
        other.push(0);
        prop_assert!(signature::verify(&secret, &ts, &sig, &other).is_err());
    }
}

#[test]
fn the_secret_is_redacted() {
    let secret = WebhookSecret::new("whsec-abc");
    assert!(!format!("{secret:?}").contains("whsec-abc"));
    let receiver = Receiver::new("whsec-abc").unwrap();
    assert!(!format!("{receiver:?}").contains("whsec-abc"));
}

/// An empty or whitespace secret is refused when the receiver is built, and
/// the free function verifies nothing with one: a forger's empty-key MAC
/// never passes.
#[test]
fn an_empty_secret_is_refused_and_forgeries_with_it_never_pass() {
    for empty in ["", " ", "\t\n"] {
        assert!(Receiver::new(empty).is_err(), "{empty:?}");
        let body = br#"{"event_name":"sync_status_read_change","data":{}}"#;
        let forged = headers(TIMESTAMP, &signature::sign(empty, TIMESTAMP, body));
        let secret = nexhealth_api::WebhookSecret::new(empty);
        assert_eq!(
            nexhealth_api::webhooks::receive(&forged, body, &secret),
            Err(Rejection::NoSecret)
        );
    }
}

/// Several signatures: repeated headers or a list in one header; any valid
/// one verifies, an empty one never does.
#[test]
fn several_signatures_verify_when_any_one_is_valid() {
    let body = br#"{"event_name":"sync_status_read_change","data":{}}"#;
    let receiver = Receiver::new(SECRET).unwrap();
    let good = signature::sign(SECRET, TIMESTAMP, body);
    let old = signature::sign("rotated-away", TIMESTAMP, body);
    let mut repeated = headers(TIMESTAMP, &old);
    repeated.append(SIGNATURE_HEADER, good.parse().unwrap());
    assert!(receiver.receive(&repeated, body).is_ok());
    let listed = headers(TIMESTAMP, &format!("{old},{good}"));
    assert!(receiver.receive(&listed, body).is_ok());
    let only_old = headers(TIMESTAMP, &format!("{old}, "));
    assert_eq!(
        receiver.receive(&only_old, body),
        Err(Rejection::BadSignature)
    );
    assert_eq!(
        receiver.receive(&headers(TIMESTAMP, ""), body),
        Err(Rejection::MalformedSignature)
    );
}

/// A delivery signed under another scheme is diagnosed from the first one:
/// refused as WrongScheme (saying which), and accepted once configured.
#[test]
fn a_wrong_scheme_is_diagnosed_and_fixed_by_configuration() {
    use nexhealth_api::webhooks::Scheme;
    let body = br#"{"event_name":"sync_status_read_change","data":{}}"#;
    for scheme in Scheme::ALL {
        let signature = signature::sign_with(scheme, SECRET, TIMESTAMP, body);
        let mut delivery = headers(TIMESTAMP, &signature);
        if scheme == Scheme::RawBody {
            delivery.remove(SIGNATURE_HEADER);
            delivery.insert("x-nexhealth-signature", signature.parse().unwrap());
        }
        let default = Receiver::new(SECRET).unwrap();
        let outcome = default.receive(&delivery, body);
        if scheme == Scheme::default() {
            assert!(outcome.is_ok());
            continue;
        }
        let rejection = outcome.unwrap_err();
        assert_eq!(
            rejection,
            Rejection::WrongScheme {
                configured: Scheme::default(),
                verifies_under: scheme,
            }
        );
        assert_eq!(rejection.status(), 401);
        let text = rejection.to_string();
        assert!(
            text.contains(scheme.name()) && !text.contains(SECRET),
            "{text}"
        );
        let configured = Receiver::new(SECRET).unwrap().scheme(scheme);
        assert!(configured.receive(&delivery, body).is_ok(), "{scheme}");
        // A forgery under another scheme is a plain bad signature.
        let forged = signature::sign_with(scheme, "not-the-secret", TIMESTAMP, body);
        let mut forged_delivery = headers(TIMESTAMP, &forged);
        if scheme == Scheme::RawBody {
            forged_delivery.insert("x-nexhealth-signature", forged.parse().unwrap());
        }
        assert!(matches!(
            default.receive(&forged_delivery, body),
            Err(Rejection::BadSignature | Rejection::MissingHeader(_))
        ));
    }
}

/// Timestamps with an age limit: not a time is refused, a few minutes ahead
/// (clock skew) is accepted, further ahead is refused; a 25-year-old
/// delivery replayed is refused every time.
#[test]
fn timestamps_are_checked_in_both_directions() {
    use chrono::TimeZone;
    let body = br#"{"event_name":"onboarding_created","data":{"onboarding":{"id":"y2wx"}}}"#;
    let receiver = Receiver::new(SECRET)
        .unwrap()
        .max_age(std::time::Duration::from_secs(49 * 3600))
        .unwrap();
    let now = chrono::Utc.with_ymd_and_hms(2026, 8, 14, 10, 0, 0).unwrap();
    let at = |t: &str| headers(t, &signature::sign(SECRET, t, body));
    assert!(
        receiver
            .receive_at(&at("2026-08-14T10:04:00Z"), body, now)
            .is_ok()
    );
    assert!(matches!(
        receiver.receive_at(&at("2026-08-14T10:06:00Z"), body, now),
        Err(Rejection::FromTheFuture { .. })
    ));
    assert_eq!(
        receiver.receive_at(&at("yesterday"), body, now),
        Err(Rejection::BadTimestamp)
    );
    for _ in 0..1_000 {
        assert!(matches!(
            receiver.receive_at(&at("2001-08-14T10:00:00Z"), body, now),
            Err(Rejection::TooOld { .. })
        ));
    }
    let secret = nexhealth_api::WebhookSecret::new(SECRET);
    assert!(matches!(
        nexhealth_api::webhooks::receive_within(
            &at("2001-08-14T10:00:00Z"),
            body,
            &secret,
            Some(std::time::Duration::from_secs(49 * 3600))
        ),
        Err(Rejection::TooOld { .. })
    ));
}

/// A body over the limit is refused before any work, with 413.
#[test]
fn a_body_over_the_limit_is_refused_before_any_work() {
    let receiver = Receiver::new(SECRET).unwrap().max_body_bytes(1_024);
    let body = vec![b'x'; 1_025];
    let rejection = receiver.receive(&signed(&body), &body).unwrap_err();
    assert_eq!(rejection, Rejection::TooLarge { limit: 1_024 });
    assert_eq!(rejection.status(), 413);
    let default = Receiver::new(SECRET).unwrap();
    assert_eq!(
        default.body_limit(),
        nexhealth_api::webhooks::receive::DEFAULT_MAX_BODY_BYTES
    );
}

/// An endpoint serialized (to a cache, a log) never shows its secret.
#[test]
fn an_endpoint_serializes_without_its_secret() {
    let endpoint: nexhealth_api::types::WebhookEndpoint = serde_json::from_value(serde_json::json!({
        "id": 1, "target_url": "https://hooks.example.com/x", "secret_key": "whsec-live-1",
        "active": true, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"
    }))
    .unwrap();
    let json = serde_json::to_string(&endpoint).unwrap();
    assert!(!json.contains("whsec-live-1"), "{json}");
    assert_eq!(endpoint.secret_key.unwrap().expose(), "whsec-live-1");
}

/// The receiver's defaults and edges, to the byte and to the second: a body
/// of exactly the limit is read, the default limit is 1 MiB, a delivery
/// exactly 5 minutes ahead or exactly the maximum age old is accepted.
#[test]
fn limits_and_ages_hold_to_the_edge() {
    use chrono::TimeZone;
    assert_eq!(
        nexhealth_api::webhooks::receive::DEFAULT_MAX_BODY_BYTES,
        1_048_576
    );
    let mut body = br#"{"event_name":"onboarding_created","data":{}}"#.to_vec();
    body.resize(4_096, b' ');
    let exact = Receiver::new(SECRET).unwrap().max_body_bytes(4_096);
    assert!(exact.receive(&signed(&body), &body).is_ok());
    let mut big = br#"{"event_name":"onboarding_created","data":{}}"#.to_vec();
    big.resize(512 * 1024, b' ');
    assert!(
        Receiver::new(SECRET)
            .unwrap()
            .receive(&signed(&big), &big)
            .is_ok()
    );

    let max_age = std::time::Duration::from_secs(3_600);
    let receiver = Receiver::new(SECRET)
        .unwrap()
        .max_age_below_retry_horizon(max_age);
    let now = chrono::Utc.with_ymd_and_hms(2026, 8, 14, 10, 0, 0).unwrap();
    let at = |t: &str| headers(t, &signature::sign(SECRET, t, &body));
    assert!(
        receiver
            .receive_at(&at("2026-08-14T10:05:00Z"), &body, now)
            .is_ok()
    );
    assert!(
        receiver
            .receive_at(&at("2026-08-14T10:05:01Z"), &body, now)
            .is_err()
    );
    assert!(
        receiver
            .receive_at(&at("2026-08-14T09:00:00Z"), &body, now)
            .is_ok()
    );
    assert!(
        receiver
            .receive_at(&at("2026-08-14T08:59:59Z"), &body, now)
            .is_err()
    );
}

/// A raw-body signature without any `timestamp` header is still diagnosed.
#[test]
fn a_raw_body_signature_without_a_timestamp_is_diagnosed() {
    use nexhealth_api::webhooks::Scheme;
    let body = br#"{"event_name":"sync_status_read_change","data":{}}"#;
    let mut delivery = nexhealth_api::reqwest::header::HeaderMap::new();
    let signature = signature::sign_with(Scheme::RawBody, SECRET, "", body);
    delivery.insert("x-nexhealth-signature", signature.parse().unwrap());
    assert_eq!(
        Receiver::new(SECRET).unwrap().receive(&delivery, body),
        Err(Rejection::WrongScheme {
            configured: Scheme::default(),
            verifies_under: Scheme::RawBody,
        })
    );
    let message = nexhealth_api::webhooks::InvalidSecret.to_string();
    assert!(message.contains("empty"), "{message}");
}
