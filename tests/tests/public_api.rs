//! What a user of the published crate meets first: the documented call path,
//! the typed mocks' helpers, the example payloads and the errors at the edges.

use std::time::Duration;

use nexhealth_api::mock::{MockServerExt, StandIn, payloads};
use nexhealth_api::operations::OperationId;
use nexhealth_api::types::{
    AuthToken, Institution, InstitutionLocations, Location, Onboarding, SyncStatus,
    WebhookEndpoint, WebhookEndpointUpdateRequest, WebhookSubscription,
    WebhookSubscriptionUpdateRequest,
};
use nexhealth_api::{Client, Error, OnboardingQuery, Response};
use nexhealth_contract_tests::Harness;

/// The checked-in generated client (kept current by `cargo xtask check`).
const GENERATED: &str = include_str!("../../nexhealth-api/generated/generated_client.rs");

/// Every operation awaited as its documentation shows answers our types: the
/// annotations below do not compile if an operation answers anything else,
/// and the `match` over the generated registry does not compile when the spec
/// gains an operation this test has not learned.
#[tokio::test]
async fn the_documented_call_path_answers_our_types_for_every_operation() {
    let stand_in = StandIn::start().await;
    let client = Client::builder("key")
        .base_url(stand_in.base_url())
        .build()
        .unwrap();
    let mut walked = 0;
    for op in OperationId::ALL {
        match op {
            OperationId::PostAuthenticates => {
                // The client runs it for us; its answer type is ours as well.
                let token: Result<Response<AuthToken>, Error> = client.post_authenticates().await;
                assert!(!token.unwrap().token.is_empty());
            }
            OperationId::GetInstitutions => {
                let institutions: Result<Response<Vec<Institution>>, Error> =
                    client.get_institutions().await;
                assert_eq!(institutions.unwrap()[0].id, 1);
            }
            OperationId::GetInstitutionsId => {
                let institution: Result<Response<Institution>, Error> =
                    client.get_institutions_id().id(1).await;
                assert_eq!(institution.unwrap().id, 1);
            }
            OperationId::GetLocations => {
                let locations: Result<Response<Vec<InstitutionLocations>>, Error> =
                    client.get_locations().subdomain("example-subdomain").await;
                assert_eq!(locations.unwrap()[0].locations.len(), 2);
            }
            OperationId::GetLocationsId => {
                let location: Result<Response<Location>, Error> =
                    client.get_locations_id().id(7).await;
                assert_eq!(location.unwrap().id, 7);
            }
            OperationId::GetSyncStatus => {
                let syncs: Result<Response<Vec<SyncStatus>>, Error> =
                    client.get_sync_status().await;
                assert_eq!(syncs.unwrap().len(), 2);
            }
            OperationId::GetOnboardings => {
                let onboardings: Result<Response<Vec<Onboarding>>, Error> =
                    client.get_onboardings().await;
                assert!(!onboardings.unwrap().is_empty());
                let stream_first = {
                    use futures::TryStreamExt;
                    let mut stream =
                        std::pin::pin!(client.onboardings_stream(OnboardingQuery::default()));
                    stream.try_next().await
                };
                assert!(stream_first.unwrap().is_some());
            }
            OperationId::GetOnboardingsHashid => {
                let onboarding: Result<Response<Onboarding>, Error> =
                    client.get_onboardings_hashid().hashid("abc").await;
                assert!(onboarding.is_ok());
            }
            OperationId::PostOnboardings => {
                let created: Result<Response<Onboarding>, Error> = client
                    .post_onboardings()
                    .body(payloads::onboarding_request())
                    .await;
                assert!(created.is_ok());
            }
            OperationId::GetWebhookEndpoints => {
                let endpoints: Result<Response<Vec<WebhookEndpoint>>, Error> =
                    client.get_webhook_endpoints().await;
                assert!(!endpoints.unwrap().is_empty());
            }
            OperationId::PostWebhookEndpoints => {
                let endpoint: Result<Response<WebhookEndpoint>, Error> = client
                    .post_webhook_endpoints()
                    .body(payloads::examples::post_webhook_endpoints_request())
                    .await;
                assert!(endpoint.is_ok());
            }
            OperationId::PatchWebhookEndpointsId => {
                let endpoint: Result<Response<WebhookEndpoint>, Error> = client
                    .patch_webhook_endpoints_id()
                    .id(1)
                    .body(WebhookEndpointUpdateRequest {
                        target_url: None,
                        active: Some(true),
                    })
                    .await;
                assert!(endpoint.is_ok());
            }
            OperationId::DeleteWebhookEndpointsId => {
                let deleted: Result<Response<()>, Error> =
                    client.delete_webhook_endpoints_id().id(1).await;
                assert!(deleted.is_ok());
            }
            OperationId::GetWebhookEndpointsIdWebhookSubscriptions => {
                let subscriptions: Result<Response<Vec<WebhookSubscription>>, Error> = client
                    .get_webhook_endpoints_id_webhook_subscriptions()
                    .id(1)
                    .await;
                assert!(!subscriptions.unwrap().is_empty());
            }
            OperationId::PostWebhookEndpointsIdWebhookSubscriptions => {
                let subscription: Result<Response<WebhookSubscription>, Error> = client
                    .post_webhook_endpoints_id_webhook_subscriptions()
                    .id(1)
                    .subdomain("example-subdomain")
                    .body(
                        payloads::examples::post_webhook_endpoints_id_webhook_subscriptions_request(
                        ),
                    )
                    .await;
                assert!(subscription.is_ok());
            }
            OperationId::PatchWebhookEndpointsIdWebhookSubscriptionsSubscriptionId => {
                let subscription: Result<Response<WebhookSubscription>, Error> = client
                    .patch_webhook_endpoints_id_webhook_subscriptions_subscription_id()
                    .id(1)
                    .subscription_id(5)
                    .subdomain("example-subdomain")
                    .body(WebhookSubscriptionUpdateRequest {
                        new_endpoint_id: None,
                        active: Some(false),
                    })
                    .await;
                assert!(subscription.is_ok());
            }
            OperationId::DeleteWebhookEndpointsIdWebhookSubscriptionsSubscriptionId => {
                let deleted: Result<Response<()>, Error> = client
                    .delete_webhook_endpoints_id_webhook_subscriptions_subscription_id()
                    .id(1)
                    .subscription_id(5)
                    .await;
                assert!(deleted.is_ok());
            }
        }
        walked += 1;
    }
    assert_eq!(walked, nexhealth_api::operations::OPERATIONS.len());
}

/// Each operation's rustdoc shows the awaited builder and says what it answers;
/// none shows progenitor's `.send()`.
#[test]
fn every_operation_doc_shows_the_awaited_builder() {
    let operation_docs: Vec<&str> = GENERATED
        .split("/**")
        .skip(1)
        .filter(|doc| doc.contains("Sends a `"))
        .collect();
    assert_eq!(
        operation_docs.len(),
        nexhealth_api::operations::OPERATIONS.len()
    );
    for doc in operation_docs {
        let doc = &doc[..doc.find("*/").unwrap()];
        assert!(doc.contains(".await?;"), "{doc}");
        assert!(!doc.contains(".send()"), "{doc}");
        assert!(doc.contains("[`Response`](crate::Response)"), "{doc}");
        assert!(doc.contains("[`Error`](crate::Error)"), "{doc}");
    }
    // progenitor's own path is renamed and hidden, and the constructors that
    // needed an unbuildable state are gone from the public API.
    assert!(!GENERATED.contains("pub async fn send("));
    assert_eq!(
        GENERATED
            .matches("#[doc(hidden)]\n        pub async fn progenitor_send(")
            .count(),
        nexhealth_api::operations::OPERATIONS.len()
    );
    assert!(!GENERATED.contains("pub fn new(baseurl"));
    assert!(GENERATED.contains("pub(crate) fn new_with_client("));
}

/// A value outside a parameter's range names the parameter and the range.
#[tokio::test]
async fn an_out_of_range_parameter_names_itself_and_its_range() {
    let h = Harness::start().await;
    let (client, fallback) = h.client();
    let error = client.get_onboardings().per_page(0u32).await.unwrap_err();
    assert!(error.is_invalid_request(), "{error:?}");
    assert_eq!(
        error.to_string(),
        "invalid request: `per_page` must be a whole number from 1 to 4294967295"
    );
    let missing = client.get_locations_id().await.unwrap_err();
    assert!(missing.is_invalid_request());
    assert!(
        missing
            .to_string()
            .contains("`id` is required and was not set"),
        "{missing}"
    );
    fallback.assert_calls(0);
}

/// `Then::header`: a 429 with `Retry-After` is one line, and the client
/// honours it.
#[tokio::test]
async fn then_header_sets_retry_after_on_a_429() {
    let h = Harness::start().await;
    let _auth = h.auth();
    let limited = h.server.get_institutions(|_, then| {
        then.too_many_requests(&payloads::error(429))
            .header("retry-after", "120");
    });
    let (client, fallback) = h.client();
    let error = client.get_institutions().await.unwrap_err();
    assert!(error.is_rate_limited(), "{error:?}");
    assert_eq!(
        error.api_error().unwrap().retry_after(),
        Some(Duration::from_secs(120))
    );
    limited.assert_calls(1);
    fallback.assert_calls(0);
}

/// `payloads::error` answers every 4xx and 5xx status without panicking,
/// with the spec's example where there is one and the reason phrase otherwise.
#[test]
fn payloads_error_answers_every_error_status() {
    for status in 400..=599u16 {
        let envelope = payloads::error(status);
        assert_eq!(envelope.code, Some(false), "{status}");
        let messages = envelope.error.unwrap_or_default();
        assert!(
            !messages.is_empty() || envelope.description.is_some(),
            "{status} has no message"
        );
    }
    assert_eq!(payloads::error(502).error, Some(vec!["Bad Gateway".into()]));
    // Outside the error range it still answers rather than panicking.
    assert_eq!(payloads::error(200).code, Some(false));
}

/// An undocumented status served with `payloads::error` reaches the caller as
/// the right error with the envelope's message.
#[tokio::test]
async fn an_undocumented_error_status_served_with_its_envelope() {
    let h = Harness::start().await;
    let _auth = h.auth();
    let gateway = h.server.get_institutions(|_, then| {
        then.into_inner()
            .status(502)
            .header("content-type", "application/json")
            .json_body_obj(&payloads::error(502));
    });
    let client = Client::builder(nexhealth_contract_tests::API_KEY)
        .base_url(h.server.base_url())
        .retry(nexhealth_contract_tests::fast_retries())
        .build()
        .unwrap();
    let error = client.get_institutions().await.unwrap_err();
    assert_eq!(error.status().map(|s| s.as_u16()), Some(502));
    assert!(error.to_string().contains("Bad Gateway"), "{error}");
    gateway.assert_calls(3);
}

/// `payloads::sync_status()` is what its documentation says whatever today's
/// date: one healthy sync and one whose writes are down.
#[tokio::test]
async fn payloads_sync_status_is_healthy_today() {
    let h = Harness::start().await;
    let _auth = h.auth();
    h.server.get_sync_status(|_, then| {
        then.ok(&payloads::sync_status());
    });
    let (client, _fallback) = h.client();
    let health = client.sync_health(None).await.unwrap();
    assert_eq!(health.unhealthy().count(), 1, "{health:?}");
    assert!(health.write_readiness(7).can_write(), "{health:?}");
    assert!(!health.write_readiness(8).can_write(), "{health:?}");

    // The same payloads three hours old, assessed now: both syncs are past
    // NexHealth's read threshold, and location 7 is green but stale.
    let now = nexhealth_api::chrono::Utc::now();
    let old = payloads::sync_status_at(now - nexhealth_api::chrono::Duration::hours(3));
    let report = nexhealth_api::sync_health::SyncReport::assess(
        old.data,
        now,
        nexhealth_api::sync_health::Thresholds::default(),
    );
    assert!(report.syncs.iter().all(|s| s.read.stale), "{report:?}");
    assert_eq!(report.unhealthy().count(), 2, "{report:?}");
    assert_eq!(
        report.write_readiness(7),
        nexhealth_api::sync_health::WriteReadiness::Stale
    );
}

/// A zero per-call timeout or deadline is the caller's mistake, said as such
/// before anything is sent (not a timeout, not a rate-limit budget).
#[tokio::test]
async fn a_zero_per_call_timeout_or_deadline_is_refused_before_sending() {
    use nexhealth_api::CallExt;
    let h = Harness::start().await;
    let (client, fallback) = h.client();
    let by_deadline = client
        .get_institutions()
        .deadline(Duration::ZERO)
        .await
        .unwrap_err();
    let by_timeout = client
        .get_institutions()
        .timeout(Duration::ZERO)
        .await
        .unwrap_err();
    for (error, name) in [(by_deadline, "deadline"), (by_timeout, "timeout")] {
        assert!(error.is_invalid_request(), "{error:?}");
        assert!(!error.is_rate_limited() && !error.is_timeout(), "{error:?}");
        assert!(error.to_string().contains(name), "{error}");
    }
    fallback.assert_calls(0);
}

#[test]
fn a_base_url_without_a_scheme_says_so() {
    for url in ["nexhealth.info", "localhost:8080", "127.0.0.1:3000/api"] {
        let error = Client::builder("key").base_url(url).build().unwrap_err();
        assert!(error.is_invalid_request());
        assert!(
            error.to_string().contains("has no scheme")
                && error.to_string().contains("https://nexhealth.info"),
            "{url}: {error}"
        );
    }
}

/// Runs in a child process without `NEXHEALTH_API_KEY`: changing the
/// environment of the test process itself would race with other tests.
#[test]
fn from_env_without_a_key_names_the_variable_and_where_keys_come_from() {
    const CHILD: &str = "NEXHEALTH_TEST_FROM_ENV_CHILD";
    if std::env::var_os(CHILD).is_some() {
        let error = Client::from_env().unwrap_err();
        assert!(error.is_invalid_request());
        let text = error.to_string();
        assert!(text.contains("NEXHEALTH_API_KEY is not set"), "{text}");
        assert!(text.contains("Developer Portal"), "{text}");
        assert!(text.contains("Client::builder"), "{text}");
        return;
    }
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "from_env_without_a_key_names_the_variable_and_where_keys_come_from",
            "--exact",
            "--quiet",
        ])
        .env(CHILD, "1")
        .env_remove(nexhealth_api::API_KEY_VAR)
        .output()
        .unwrap();
    assert!(
        child.status.success(),
        "{}{}",
        String::from_utf8_lossy(&child.stdout),
        String::from_utf8_lossy(&child.stderr)
    );
}

/// Plain http to a host that is not loopback would send the key and the token
/// in clear text: refused before anything is sent, unless the caller opts in.
#[test]
fn plain_http_to_a_remote_host_is_refused_unless_opted_in() {
    for url in [
        "http://nexhealth.info",
        "http://10.1.2.3:8080",
        "http://[2001:db8::1]/",
    ] {
        let error = Client::builder("key").base_url(url).build().unwrap_err();
        assert!(error.is_invalid_request(), "{url}: {error:?}");
        let text = error.to_string();
        assert!(text.contains("clear text"), "{text}");
        assert!(
            text.contains("danger_send_credentials_over_plain_http"),
            "{text}"
        );
        assert!(!text.contains("key\""), "{text}");
        let opted_in = Client::builder("key")
            .base_url(url)
            .danger_send_credentials_over_plain_http()
            .build();
        assert!(opted_in.is_ok(), "{url}");
    }
}

/// Loopback stays allowed over plain http (tests and stand-ins): the stand-in
/// answers through `localhost` and `127.0.0.1` alike.
#[tokio::test]
async fn plain_http_to_loopback_is_allowed() {
    let stand_in = StandIn::start().await;
    let port = stand_in.base_url().rsplit(':').next().unwrap().to_string();
    for host in ["127.0.0.1", "localhost"] {
        let client = Client::builder("key")
            .base_url(format!("http://{host}:{port}"))
            .build()
            .unwrap();
        assert_eq!(client.get_institutions().await.unwrap()[0].id, 1, "{host}");
    }
    assert!(
        Client::builder("key")
            .base_url("http://[::1]:9")
            .build()
            .is_ok()
    );
}
