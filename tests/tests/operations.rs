//! Every operation of the spec: the exact request on the wire and the decoded answer.

use httpmock::Method::{GET, POST};
use nexhealth_api::headers::{JSON_ACCEPT, VENDOR_ACCEPT};
use nexhealth_api::mock::{MockServerExt, payloads};
use nexhealth_api::types::{OnboardingStatusFilter, SubscriptionFeature, SyncState};
use nexhealth_contract_tests::{Harness, bearer};

/// Headers every authenticated v2-style call carries.
fn v2_headers(when: httpmock::When, token: &str) -> httpmock::When {
    when.header("accept", VENDOR_ACCEPT)
        .header("authorization", bearer(token))
        .header_missing("api-version")
        .header_missing("nex-api-version")
}

/// Headers every v20240412 (onboarding) call carries: `application/json`, as
/// NexHealth's description says these operations produce, never the vendor type.
fn v3_headers(when: httpmock::When, token: &str) -> httpmock::When {
    when.header("accept", JSON_ACCEPT)
        .header("authorization", bearer(token))
        .header("nex-api-version", "v3.0.0")
        .header_missing("api-version")
}

#[tokio::test]
async fn get_institutions() {
    let h = Harness::start().await;
    let auth = h.auth();
    let mock = h.server.mock(|when, then| {
        v2_headers(
            when.method(GET)
                .path("/institutions")
                .is_true(|r| r.uri().query().is_none()),
            &h.token,
        );
        then.status(200).json_body_obj(&payloads::institutions());
    });
    let (client, fallback) = h.client();
    let institutions = client.get_institutions().await.unwrap();
    assert_eq!(institutions.len(), 1);
    assert_eq!(institutions[0].subdomain, "example-subdomain");
    assert_eq!(institutions[0].emrs, vec!["dentrix", "curve2"]);
    assert_eq!(institutions.count(), Some(1));
    assert!(institutions.warnings().is_empty());
    mock.assert_calls(1);
    auth.assert_calls(1);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn get_institutions_id() {
    let h = Harness::start().await;
    let auth = h.auth();
    let mock = h.server.mock(|when, then| {
        v2_headers(when.method(GET).path("/institutions/1"), &h.token);
        then.status(200).json_body_obj(&payloads::institution());
    });
    let (client, fallback) = h.client();
    let institution = client.get_institutions_id().id(1).await.unwrap();
    assert_eq!(institution.id, 1);
    assert_eq!(institution.locations[0].id, 7);
    mock.assert_calls(1);
    auth.assert_calls(1);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn get_locations_sends_every_filter() {
    let h = Harness::start().await;
    let auth = h.auth();
    let mock = h.server.mock(|when, then| {
        v2_headers(when.method(GET).path("/locations"), &h.token)
            .query_param("subdomain", "example-subdomain")
            .query_param("inactive", "false")
            .query_param("foreign_id", "1")
            .query_param("filter_by_subscription_feature", "online_booking")
            .query_param_count(".*", ".*", 4);
        then.status(200).json_body_obj(&payloads::locations());
    });
    let (client, fallback) = h.client();
    let institutions = client
        .get_locations()
        .subdomain("example-subdomain")
        .inactive(false)
        .foreign_id("1")
        .filter_by_subscription_feature(SubscriptionFeature::OnlineBooking)
        .await
        .unwrap();
    let locations = &institutions[0].locations;
    assert_eq!(locations.len(), 2);
    assert_eq!(locations[0].map_by_operatory, Some(true));
    assert_eq!(locations[0].appt_types_map_by_operatory, Some(false));
    assert_eq!(locations[1].inactive, Some(true));
    assert_eq!(
        locations[1].city, None,
        "null address fields decode as None"
    );
    mock.assert_calls(1);
    auth.assert_calls(1);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn get_locations_typed_mock() {
    let h = Harness::start().await;
    h.auth();
    let mock = h.server.get_locations(|when, then| {
        when.subdomain("example-subdomain");
        then.ok(&payloads::locations());
    });
    let (client, fallback) = h.client();
    let institutions = client
        .get_locations()
        .subdomain("example-subdomain")
        .await
        .unwrap();
    assert_eq!(
        institutions[0].locations[0].tz.as_deref(),
        Some("America/Los_Angeles")
    );
    mock.assert_calls(1);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn get_locations_id() {
    let h = Harness::start().await;
    let auth = h.auth();
    let mock = h.server.mock(|when, then| {
        v2_headers(when.method(GET).path("/locations/7"), &h.token);
        then.status(200).json_body_obj(&payloads::location());
    });
    let (client, fallback) = h.client();
    let location = client.get_locations_id().id(7).await.unwrap();
    assert_eq!(location.id, 7);
    assert_eq!(location.insert_appt_client, Some(true));
    assert_eq!(location.latitude, Some(37.777_502_8));
    mock.assert_calls(1);
    auth.assert_calls(1);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn get_sync_status_repeats_location_ids() {
    let h = Harness::start().await;
    let auth = h.auth();
    let mock = h.server.mock(|when, then| {
        v2_headers(when.method(GET).path("/sync_status"), &h.token).is_true(|r| {
            r.uri().query()
                == Some("location_ids%5B%5D=7&location_ids%5B%5D=8&read_status=green&subdomain=example-subdomain&write_status=red")
        });
        then.status(200).json_body_obj(&payloads::sync_status());
    });
    let typed = h.server.get_sync_status(|when, then| {
        when.location_ids(&vec![7, 8]).subdomain("typed");
        then.ok(&payloads::sync_status());
    });
    let (client, fallback) = h.client();
    let syncs = client
        .get_sync_status()
        .subdomain("example-subdomain")
        .location_ids(vec![7, 8])
        .read_status(SyncState::Green)
        .write_status(SyncState::Red)
        .await
        .unwrap();
    assert_eq!(syncs.len(), 2);
    assert_eq!(syncs[1].write_status.as_deref(), Some("red"));
    assert_eq!(
        syncs[1].emr.as_ref().and_then(|e| e.type_.as_deref()),
        Some("cloud")
    );
    client
        .get_sync_status()
        .subdomain("typed")
        .location_ids(vec![7, 8])
        .await
        .unwrap();
    mock.assert_calls(1);
    typed.assert_calls(1);
    auth.assert_calls(1);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn get_onboardings_sends_cursor_and_version() {
    let h = Harness::start().await;
    let auth = h.auth();
    let mock = h.server.mock(|when, then| {
        v3_headers(when.method(GET).path("/onboardings"), &h.token)
            .query_param("subdomain", "example-subdomain")
            .query_param("status", "in_progress")
            .query_param("end_cursor", "BBBBBB")
            .query_param("per_page", "50")
            .query_param("sort", "-created_at")
            .query_param_missing("start_cursor");
        then.status(200).json_body_obj(&payloads::onboardings());
    });
    let (client, fallback) = h.client();
    let page = client
        .get_onboardings()
        .subdomain("example-subdomain")
        .status(OnboardingStatusFilter::InProgress)
        .end_cursor("BBBBBB")
        .per_page(50)
        .sort("-created_at")
        .await
        .unwrap();
    assert_eq!(page[0].id, "y2wxl82zldm4");
    assert_eq!(page[0].booking_params, None);
    let info = page.page_info().expect("cursor pages carry page_info");
    assert_eq!(info.has_next_page, Some(false));
    assert_eq!(info.end_cursor.as_deref(), Some("BBBBBB"));
    mock.assert_calls(1);
    auth.assert_calls(1);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn caller_chosen_api_version_wins() {
    let h = Harness::start().await;
    h.auth();
    let mock = h.server.mock(|when, then| {
        when.method(GET)
            .path("/onboardings/y2wxl82zldm4")
            .header("nex-api-version", "v20240412")
            .header_count("nex-api-version", ".*", 1);
        then.status(200).json_body_obj(&payloads::onboarding());
    });
    let (client, fallback) = h.client();
    let onboarding = client
        .get_onboardings_hashid()
        .hashid("y2wxl82zldm4")
        .nex_api_version("v20240412")
        .await
        .unwrap();
    assert_eq!(onboarding.status.as_deref(), Some("complete"));
    mock.assert_calls(1);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn get_onboardings_hashid() {
    let h = Harness::start().await;
    let auth = h.auth();
    let mock = h.server.mock(|when, then| {
        v3_headers(when.method(GET).path("/onboardings/y2wxl82zldm4"), &h.token);
        then.status(200).json_body_obj(&payloads::onboarding());
    });
    let (client, fallback) = h.client();
    let onboarding = client
        .get_onboardings_hashid()
        .hashid("y2wxl82zldm4")
        .await
        .unwrap();
    let params = onboarding.booking_params.as_ref().expect("booking params");
    assert_eq!(params.appointment_type_ids, vec![19, 20]);
    assert!(onboarding.availability_ready_at.is_some());
    mock.assert_calls(1);
    auth.assert_calls(1);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn post_onboardings_sends_the_body() {
    let h = Harness::start().await;
    let auth = h.auth();
    let request = payloads::onboarding_request();
    let mock = h.server.mock(|when, then| {
        v3_headers(when.method(POST).path("/onboardings"), &h.token)
            .header("content-type", "application/json")
            .json_body(serde_json::json!({
                "onboarding": {
                    "institution_name": "Smile Dental Group",
                    "institution_zip_code": "94105",
                    "institution_website": "https://www.smiledentalgroup.example.com",
                    "institution_email": "office@smiledentalgroup.example.com",
                    "emr_name": "opendental"
                }
            }));
        then.status(201)
            .json_body_obj(&payloads::onboarding_created());
    });
    let (client, fallback) = h.client();
    let created = client.post_onboardings().body(request).await.unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(created.subdomain, None, "not yet matched to an institution");
    assert!(created.url.as_deref().unwrap().contains(&created.id));
    mock.assert_calls(1);
    auth.assert_calls(1);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn post_authenticates_called_directly_sends_the_raw_key() {
    let h = Harness::start().await;
    let auth = h.auth();
    let (client, fallback) = h.client();
    let token = client.post_authenticates().await.unwrap();
    assert_eq!(token.token, h.token);
    assert_eq!(token.status(), 201);
    assert_eq!(
        client.session().authentications(),
        0,
        "the session's cache is not involved"
    );
    auth.assert_calls(1);
    fallback.assert_calls(0);
}
