//! Real payload shapes: nulls, unknown fields, values NexHealth adds later,
//! `description` as a string, a list or null, and warnings on success.

use httpmock::Method::GET;
use nexhealth_api::mock::payloads;
use nexhealth_contract_tests::Harness;
use serde_json::json;

async fn serve_locations(
    body: serde_json::Value,
) -> Result<
    nexhealth_api::Response<Vec<nexhealth_api::types::InstitutionLocations>>,
    nexhealth_api::Error,
> {
    let h = Harness::start().await;
    h.auth();
    h.server.mock(|when, then| {
        when.method(GET).path("/locations");
        then.status(200).json_body(body);
    });
    let (client, fallback) = h.client();
    let result = client.get_locations().await;
    fallback.assert_calls(0);
    result
}

#[tokio::test]
async fn nulls_where_nexhealth_sends_null() {
    let mut body = serde_json::to_value(payloads::locations()).unwrap();
    let location = &mut body["data"][0]["locations"][0];
    for field in [
        "street_address",
        "city",
        "state",
        "zip_code",
        "latitude",
        "longitude",
        "phone_number",
        "email",
        "last_sync_time",
        "wlogo",
        "weight",
        "country_code",
    ] {
        location[field] = serde_json::Value::Null;
    }
    body["description"] = serde_json::Value::Null;
    body["error"] = serde_json::Value::Null;
    let institutions = serve_locations(body).await.unwrap();
    let location = &institutions[0].locations[0];
    assert_eq!(location.city, None);
    assert_eq!(location.weight, None);
    assert!(institutions.warnings().is_empty());
}

#[tokio::test]
async fn minimal_objects_decode() {
    let body =
        json!({"code": true, "data": [{"id": 1, "subdomain": "s", "locations": [{"id": 2}]}]});
    let institutions = serve_locations(body).await.unwrap();
    assert_eq!(institutions[0].locations[0].id, 2);
    assert_eq!(institutions[0].locations[0].map_by_operatory, None);
    assert_eq!(institutions.count(), None);
}

#[tokio::test]
async fn unknown_fields_and_new_values_are_accepted() {
    let mut body = serde_json::to_value(payloads::locations()).unwrap();
    body["brand_new_envelope_field"] = json!({"nested": [1, 2]});
    let location = &mut body["data"][0]["locations"][0];
    location["ehr"] = json!({"id": 99, "name": "future-ehr"});
    location["some_future_flag"] = json!(true);
    let institutions = serve_locations(body).await.unwrap();
    assert_eq!(institutions[0].locations[0].id, 7);

    // Sync and onboarding states and EMR kinds that NexHealth adds later.
    let h = Harness::start().await;
    h.auth();
    let mut syncs = serde_json::to_value(payloads::sync_status()).unwrap();
    syncs["data"][0]["read_status"] = json!("yellow");
    syncs["data"][0]["emr"]["type"] = json!("hybrid");
    syncs["data"][0]["emr"]["name"] = json!("a-new-emr");
    h.server.mock(|when, then| {
        when.method(GET).path("/sync_status");
        then.status(200).json_body(syncs);
    });
    let mut onboarding = serde_json::to_value(payloads::onboarding()).unwrap();
    onboarding["data"]["status"] = json!("paused");
    onboarding["data"]["booking_params"]["location_id"] = json!("105");
    h.server.mock(|when, then| {
        when.method(GET).path("/onboardings/y2wxl82zldm4");
        then.status(200).json_body(onboarding);
    });
    let (client, fallback) = h.client();
    let syncs = client.get_sync_status().await.unwrap();
    assert_eq!(syncs[0].read_status.as_deref(), Some("yellow"));
    assert_eq!(
        syncs[0].emr.as_ref().unwrap().type_.as_deref(),
        Some("hybrid")
    );
    let onboarding = client
        .get_onboardings_hashid()
        .hashid("y2wxl82zldm4")
        .await
        .unwrap();
    assert_eq!(onboarding.status.as_deref(), Some("paused"));
    assert_eq!(
        onboarding.booking_params.as_ref().unwrap().location_id,
        Some(nexhealth_api::types::FlexibleId::String("105".into()))
    );
    fallback.assert_calls(0);
}

#[tokio::test]
async fn description_as_string_list_or_null_becomes_warnings() {
    for (description, expected) in [
        (
            json!("Note that following parameters are ignored: location_id."),
            vec!["Note that following parameters are ignored: location_id."],
        ),
        (json!(["first", "second"]), vec!["first", "second"]),
        (json!(null), vec![]),
    ] {
        let mut body = serde_json::to_value(payloads::locations()).unwrap();
        body["description"] = description;
        let institutions = serve_locations(body).await.unwrap();
        assert_eq!(institutions.warnings(), expected.as_slice());
    }
    let mut body = serde_json::to_value(payloads::locations()).unwrap();
    body["error"] = json!(["parameter foo is ignored"]);
    let institutions = serve_locations(body).await.unwrap();
    assert_eq!(institutions.warnings(), ["parameter foo is ignored"]);
}

#[tokio::test]
async fn error_bodies_of_any_shape_keep_the_status() {
    for body in [
        json!({"code": false, "description": ["a", "b"], "error": null, "data": null}),
        json!({}),
        json!([1, 2]),
    ] {
        let h = Harness::start().await;
        h.auth();
        h.server.mock(|when, then| {
            when.method(GET).path("/locations");
            then.status(403).json_body(body.clone());
        });
        let (client, _) = h.client();
        let error = client.get_locations().await.unwrap_err();
        assert!(error.is_forbidden(), "{body}: {error}");
    }
}

#[tokio::test]
async fn a_success_keeps_its_status_headers_and_envelope_fields() {
    let h = Harness::start().await;
    h.auth();
    let mut body = serde_json::to_value(payloads::locations()).unwrap();
    body["count"] = json!(7);
    body["description"] = json!("ignored parameter: foo");
    h.server.mock(|when, then| {
        when.method(GET).path("/locations");
        then.status(200)
            .header("x-request-id", "req-42")
            .json_body(body);
    });
    let (client, fallback) = h.client();
    let response = client.get_locations().await.unwrap();
    fallback.assert_calls(0);
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "req-42");
    assert_eq!(response.count(), Some(7));
    assert_eq!(response.warnings(), ["ignored parameter: foo"]);
    let debug = format!("{response:?}");
    let name = institutions_name(&response);
    assert!(
        debug.contains("status: 200") && !debug.contains(&name),
        "{debug}"
    );
    let (institutions, meta) = response.into_parts();
    assert_eq!(meta.count, Some(7));
    assert!(!institutions.is_empty());
}

fn institutions_name(
    response: &nexhealth_api::Response<Vec<nexhealth_api::types::InstitutionLocations>>,
) -> String {
    response[0].locations[0]
        .name
        .clone()
        .expect("the spec example names its location")
}
