//! The answers a service returns from its own health endpoint serialize
//! without hand mapping: `serde_json::to_value(&report)` and the enums'
//! `as_str()` names, durations as whole seconds.

use chrono::{Duration as Age, TimeZone, Utc};
use nexhealth_api::mock::{StandIn, payloads};
use nexhealth_api::onboarding::{Action, Scenario, decide};
use nexhealth_api::overview::{Listing, Overview};
use nexhealth_api::sync_health::{State, SyncReport, Thresholds, WriteReadiness};
use nexhealth_api::webhooks::Rejection;
use nexhealth_api::{Client, RateLimit};
use serde_json::json;

fn report_at(last: chrono::DateTime<Utc>, now: chrono::DateTime<Utc>) -> SyncReport {
    SyncReport::assess(
        payloads::sync_status_at(last).data,
        now,
        Thresholds::default(),
    )
}

#[test]
fn a_sync_report_serializes_with_its_conclusions_and_ages_in_seconds() {
    let now = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
    let report = report_at(now, now);
    let value = serde_json::to_value(&report).unwrap();
    assert_eq!(value["assessed_at"], json!("2026-11-30T12:00:00Z"));
    let syncs = value["syncs"].as_array().unwrap();
    assert_eq!(syncs.len(), report.syncs.len());
    for (json, health) in syncs.iter().zip(&report.syncs) {
        // `sync_status_at` stamps every side two minutes before `last`.
        assert_eq!(json["read"]["age_secs"], json!(120));
        assert_eq!(json["read"]["state"], json!(health.read.state.as_str()));
        assert_eq!(json["write"]["stale"], json!(health.write.stale));
        assert_eq!(json["healthy"], json!(health.is_healthy()));
        assert_eq!(
            json["write_readiness"],
            json!(health.write_readiness().as_str())
        );
        assert_eq!(
            json["sync"]["sync_source_name"],
            json!(health.sync.sync_source_name)
        );
    }
    // The fixture has one healthy sync and one whose writes are red.
    let readiness: Vec<_> = syncs.iter().map(|s| s["write_readiness"].clone()).collect();
    assert!(readiness.contains(&json!("ready")), "{readiness:?}");
    assert!(readiness.contains(&json!("down")), "{readiness:?}");

    // Three hours later every side is stale; the green write side says so.
    let late = report_at(now - Age::hours(3), now);
    let value = serde_json::to_value(&late).unwrap();
    let readiness: Vec<_> = value["syncs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["write_readiness"].clone())
        .collect();
    assert!(readiness.contains(&json!("stale")), "{readiness:?}");
    assert_eq!(value["syncs"][0]["read"]["age_secs"], json!(3 * 3600 + 120));
    assert_eq!(value["syncs"][0]["read"]["stale"], json!(true));
}

#[test]
fn enums_serialize_as_their_as_str_names() {
    for (state, name) in [
        (State::Green, "green"),
        (State::Red, "red"),
        (State::Unknown, "unknown"),
        (State::Other("amber".into()), "amber"),
    ] {
        assert_eq!(state.as_str(), name);
        assert_eq!(serde_json::to_value(&state).unwrap(), json!(name));
    }
    for (readiness, name) in [
        (WriteReadiness::Ready, "ready"),
        (WriteReadiness::Stale, "stale"),
        (WriteReadiness::Down, "down"),
        (WriteReadiness::NoSync, "no_sync"),
    ] {
        assert_eq!(readiness.as_str(), name);
        assert_eq!(serde_json::to_value(&readiness).unwrap(), json!(name));
    }
    for (listing, name) in [
        (Listing::Listed, "listed"),
        (Listing::OnlyInLocations, "only_in_locations"),
    ] {
        assert_eq!(listing.as_str(), name);
        assert_eq!(serde_json::to_value(&listing).unwrap(), json!(name));
    }
    assert_eq!(
        serde_json::to_value(Thresholds::default()).unwrap(),
        json!({"read_secs": 150 * 60, "write_secs": 25 * 60})
    );
    assert_eq!(
        serde_json::to_value(RateLimit::NEXHEALTH_DEFAULT).unwrap(),
        json!({"per_second": 100, "per_minute": 2000})
    );
    let rejection = Rejection::BadSignature;
    assert_eq!(rejection.as_str(), "bad_signature");
    assert_eq!(
        serde_json::to_value(&rejection).unwrap(),
        json!({"kind": "bad_signature", "status": 401, "reason": rejection.to_string()})
    );
}

#[test]
fn an_onboarding_decision_serializes_tagged_by_its_name() {
    let scenario = Scenario::SynchronizerDeleted {
        subdomain: "example-subdomain".into(),
        location_ids: vec![7, 8],
    };
    let value = serde_json::to_value(&scenario).unwrap();
    assert_eq!(value["scenario"], json!(scenario.as_str()));
    assert_eq!(value["details"]["location_ids"], json!([7, 8]));
    let action = decide(&scenario);
    let value = serde_json::to_value(&action).unwrap();
    assert_eq!(value["action"], json!(action.as_str()));
    match &action {
        Action::ReinstallWithNewProductKey {
            request,
            stale_location_ids,
        } => {
            assert_eq!(
                value["details"]["stale_location_ids"],
                json!(stale_location_ids)
            );
            assert_eq!(
                value["details"]["request"]["subject"],
                json!(request.subject)
            );
        }
        other => panic!("unexpected decision {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_the_directory_and_the_limiter_status_serialize() {
    let stand_in = StandIn::start().await;
    let client = Client::builder("serialize-key")
        .base_url(stand_in.base_url())
        .build()
        .unwrap();
    let overview = Overview::fetch(&client).await.unwrap();
    let value = serde_json::to_value(&overview).unwrap();
    let institutions = value["institutions"].as_array().unwrap();
    assert_eq!(institutions.len(), overview.institutions.len());
    for (json, view) in institutions.iter().zip(&overview.institutions) {
        assert_eq!(json["id"], json!(view.id));
        assert_eq!(json["listing"], json!(view.listing.as_str()));
        assert_eq!(
            json["locations"].as_array().unwrap().len(),
            view.locations.len()
        );
        match &view.syncs {
            Ok(report) => {
                assert_eq!(
                    json["syncs"]["syncs"].as_array().unwrap().len(),
                    report.syncs.len()
                );
                assert!(json["syncs_unavailable"].is_null());
            }
            Err(reason) => {
                assert!(json["syncs"].is_null());
                assert_eq!(json["syncs_unavailable"], json!(reason));
            }
        }
    }
    assert_eq!(value["unavailable"], json!([]));

    let directory = nexhealth_api::LocationDirectory::new(client.clone());
    let snapshot = directory.snapshot().await.unwrap();
    let value = serde_json::to_value(&*snapshot).unwrap();
    assert_eq!(
        value["entries"].as_array().unwrap().len(),
        snapshot.entries().len()
    );
    assert_eq!(
        value["entries"][0]["location"]["id"],
        json!(snapshot.entries()[0].location.id)
    );
    assert_eq!(value["subdomains"], json!(snapshot.subdomains()));
    assert!(value["fetched_secs_ago"].as_u64().is_some(), "{value}");

    let status = client.rate_limit_status().unwrap();
    let value = serde_json::to_value(status).unwrap();
    assert_eq!(value["shared"], json!(false));
    assert_eq!(value["fallback_active"], json!(false));
    assert_eq!(value["margin_ms"], json!(status.margin.as_millis() as u64));
}
