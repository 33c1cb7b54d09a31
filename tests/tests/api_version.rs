//! `ClientBuilder::api_version` (issue #29): the chosen `Nex-Api-Version` on
//! every operation that takes it and on no other, v3.0.0 by default, and the
//! answers of v3.1.0 ("Edge", beta) decoding into the same types as v3.0.0's.

use httpmock::Method::POST;
use httpmock::Mock;
use nexhealth_api::headers::{ApiVersion, NEX_API_VERSION};
use nexhealth_api::mock::payloads;
use nexhealth_api::operations::OPERATIONS;
use nexhealth_api::types::{Emr, SyncStatus, SyncStatusListResponse};
use nexhealth_contract_tests::{Harness, auth_body, call, operation_id};
use serde_json::Value;

/// Calls every operation of the spec through a client built with `version`
/// (the builder's default when `None`) and checks each request: `expected`
/// in `Nex-Api-Version`, exactly once, on the operations that take it; no
/// `Nex-Api-Version` on the others, the token exchange included.
async fn every_operation_sends(version: Option<ApiVersion>, expected: &str) {
    let h = Harness::start().await;
    // The token exchange the first call makes, and the explicit call to it.
    let auth = h.server.mock(|when, then| {
        when.method(POST)
            .path("/authenticates")
            .header_missing(NEX_API_VERSION);
        then.status(201).json_body_obj(&auth_body(&h.token));
    });
    let mut mocks: Vec<(&str, Mock<'_>)> = Vec::new();
    for op in OPERATIONS.iter().filter(|op| op.id != "postAuthenticates") {
        let pattern = op.path_pattern();
        let body = payloads::json(op.id, op.success_status);
        let mock = h.server.mock(|when, then| {
            let when = when.method(op.method).path_matches(pattern.as_str());
            if op.needs_api_version {
                when.header(NEX_API_VERSION, expected)
                    .header_count(NEX_API_VERSION, ".*", 1);
            } else {
                when.header_missing(NEX_API_VERSION);
            }
            let then = then.status(op.success_status);
            if let Some(body) = body {
                then.header("content-type", "application/json").body(body);
            }
        });
        mocks.push((op.id, mock));
    }
    let (client, fallback) = h.client_with(|builder| match version {
        Some(version) => builder.api_version(version),
        None => builder,
    });
    assert_eq!(client.nex_api_version().as_str(), expected);
    for op in OPERATIONS {
        if let Err(e) = call(&client, operation_id(op)).await {
            panic!(
                "{} ({} the header) was refused by its mock: {e}",
                op.id,
                if op.needs_api_version {
                    "takes"
                } else {
                    "does not take"
                }
            );
        }
    }
    for (id, mock) in &mocks {
        assert_eq!(mock.calls(), 1, "{id}");
    }
    auth.assert_calls(2);
    fallback.assert_calls(0);
    // The walk covered both kinds of operation.
    let taking = OPERATIONS.iter().filter(|op| op.needs_api_version).count();
    assert!(taking > 0 && taking < OPERATIONS.len(), "{taking}");
}

#[tokio::test]
async fn v3_1_0_is_sent_on_every_operation_that_takes_it_and_no_other() {
    every_operation_sends(Some(ApiVersion::V3_1_0), "v3.1.0").await;
}

#[tokio::test]
async fn by_default_v3_0_0_is_sent_on_every_operation_that_takes_it_and_no_other() {
    every_operation_sends(None, "v3.0.0").await;
}

#[tokio::test]
async fn the_date_name_and_a_value_from_configuration_are_sent_as_given() {
    every_operation_sends(Some(ApiVersion::V20240412), "v20240412").await;
    let configured: ApiVersion = "v3.2.0-rc1".parse().unwrap();
    assert_eq!(configured, ApiVersion::Other("v3.2.0-rc1".into()));
    every_operation_sends(Some(configured), "v3.2.0-rc1").await;
}

#[tokio::test]
async fn a_call_s_own_version_still_wins_over_the_client_s() {
    let h = Harness::start().await;
    h.auth();
    let mock = h.server.mock(|when, then| {
        when.path("/onboardings/y2wxl82zldm4")
            .header(NEX_API_VERSION, "v3.0.0")
            .header_count(NEX_API_VERSION, ".*", 1);
        then.status(200).json_body_obj(&payloads::onboarding());
    });
    let (client, fallback) = h.client_with(|b| b.api_version(ApiVersion::V3_1_0));
    client
        .get_onboardings_hashid()
        .hashid("y2wxl82zldm4")
        .nex_api_version("v3.0.0")
        .await
        .unwrap();
    mock.assert_calls(1);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn a_version_that_is_not_a_header_value_is_refused_before_anything_is_sent() {
    let h = Harness::start().await;
    let auth = h.auth();
    for bad in ["", "v3.1.0\r\nX-Injected: 1", "v3 1 0"] {
        let parsed = bad.parse::<ApiVersion>().unwrap_err();
        assert!(parsed.is_invalid_request(), "{bad:?}: {parsed}");
        let built = nexhealth_api::Client::builder(nexhealth_contract_tests::API_KEY)
            .base_url(h.server.base_url())
            .api_version(ApiVersion::Other(bad.into()))
            .build()
            .unwrap_err();
        assert!(built.is_invalid_request(), "{bad:?}: {built}");
        assert!(built.to_string().contains("Nex-Api-Version"), "{built}");
    }
    auth.assert_calls(0);
}

/// GET /sync_status's example (v3.0.0: `emr`) and the same answer as v3.1.0
/// sends it (`ehr`), as JSON.
fn sync_status_in_both_versions() -> (Value, Value) {
    let v3_0 = serde_json::to_value(payloads::sync_status()).unwrap();
    let mut v3_1 = v3_0.clone();
    for sync in v3_1["data"].as_array_mut().unwrap() {
        let sync = sync.as_object_mut().unwrap();
        let system = sync.remove("emr").expect("the example names its EMR");
        sync.insert("ehr".into(), system);
    }
    assert!(!v3_1.to_string().contains("\"emr\""));
    (v3_0, v3_1)
}

fn systems(syncs: &[SyncStatus]) -> Vec<Emr> {
    syncs
        .iter()
        .map(|s| s.health_record_system().expect("a system").clone())
        .collect()
}

#[test]
fn a_v3_1_sync_status_with_ehr_decodes_to_the_same_system_as_v3_0_s_emr() {
    let (v3_0, v3_1) = sync_status_in_both_versions();
    let old: SyncStatusListResponse = serde_json::from_value(v3_0).unwrap();
    let new: SyncStatusListResponse = serde_json::from_value(v3_1).unwrap();
    assert!(old.data.iter().all(|s| s.emr.is_some() && s.ehr.is_none()));
    assert!(new.data.iter().all(|s| s.ehr.is_some() && s.emr.is_none()));
    assert_eq!(systems(&new.data), systems(&old.data));
    let names: Vec<Option<&str>> = new
        .data
        .iter()
        .map(|s| {
            s.health_record_system()
                .and_then(|e| e.display_name.as_deref())
        })
        .collect();
    assert_eq!(names, [Some("Dentrix"), Some("Dentrix Ascend")]);
    // Neither name: no system, not an error.
    let bare: SyncStatus = serde_json::from_str(r#"{"institution_id": 1}"#).unwrap();
    assert_eq!(bare.health_record_system(), None);
}

#[tokio::test]
async fn a_v3_1_client_reads_the_system_of_a_v3_1_sync_status_through_the_same_accessor() {
    let (v3_0, v3_1) = sync_status_in_both_versions();
    let h = Harness::start().await;
    h.auth();
    let mock = h.server.mock(|when, then| {
        when.path("/sync_status").header_missing(NEX_API_VERSION);
        then.status(200).json_body(v3_1);
    });
    let (client, fallback) = h.client_with(|b| b.api_version(ApiVersion::V3_1_0));
    let syncs = client.get_sync_status().await.unwrap();
    let expected: SyncStatusListResponse = serde_json::from_value(v3_0).unwrap();
    assert_eq!(systems(&syncs), systems(&expected.data));
    assert_eq!(
        syncs[0]
            .health_record_system()
            .and_then(|e| e.name.as_deref()),
        Some("dentrix")
    );
    mock.assert_calls(1);
    fallback.assert_calls(0);
}

/// v3.1.0 drops `last_sync_time` from locations: its absence is normal.
#[tokio::test]
async fn a_location_without_last_sync_time_decodes() {
    let mut body: Value =
        serde_json::from_str(payloads::json("getLocationsId", 200).unwrap()).unwrap();
    let removed = body["data"]
        .as_object_mut()
        .unwrap()
        .remove("last_sync_time");
    assert!(removed.is_some(), "the example carries last_sync_time");
    let h = Harness::start().await;
    h.auth();
    let mock = h.server.mock(|when, then| {
        when.path("/locations/7");
        then.status(200).json_body(body);
    });
    let (client, fallback) = h.client_with(|b| b.api_version(ApiVersion::V3_1_0));
    let location = client.get_locations_id().id(7).await.unwrap();
    assert_eq!(location.id, 7);
    assert_eq!(location.last_sync_time, None);
    mock.assert_calls(1);
    fallback.assert_calls(0);
}
