//! The second contract suite: every operation of the SDK against Stoplight
//! Prism serving NexHealth's own published description.
//!
//! httpmock checks what we meant; Prism checks it against what NexHealth
//! published. Prism validates each request it receives (parameters, headers,
//! body, `Accept`) and answers with the description's examples (`prism mock`)
//! or with values it generates from the schemas (`prism mock -d`). A request
//! Prism rejects, or an answer the SDK cannot decode, fails the test with
//! Prism's own words from its log.
//!
//! Prism is pinned in `tests/prism/package-lock.json`; the first run installs it
//! with `npm ci` (Node and npm are needed, nothing else). It serves
//! `tests/data/nexhealth-published-facts.json`, NexHealth's description with
//! its prose removed (`cargo xtask published-facts` refreshes it).

use futures::TryStreamExt;
use nexhealth_api::operations::OperationId;
use nexhealth_api::types::{OnboardingCreateRequest, OnboardingStatusFilter, SyncState};
use nexhealth_api::{Error, OnboardingQuery};
use nexhealth_contract_tests::prism::{Prism, not_walked};

/// Rounds of every operation against generated answers.
const DYNAMIC_ROUNDS: usize = 5;

/// Fails with the operation, the SDK's error and Prism's words.
fn ok<T>(prism: &Prism, operation: &str, result: Result<T, Error>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!(
            "{operation}: {error} ({error:?})\nPrism's violations: {:#?}\nPrism's log:\n{}",
            prism.violations(),
            prism.tail()
        ),
    }
}

/// Every operation, with every parameter the SDK can send, once. The `match`
/// is exhaustive over the generated registry: a new operation does not compile
/// here until it is walked or declared in `not_walked` with a reason.
async fn every_operation(prism: &Prism) {
    let client = prism.client();
    for op in OperationId::ALL {
        if not_walked(op).is_some() {
            continue;
        }
        prism.assert_described(op);
        let name = op.id();
        match op {
            // The client exchanges its key for a token before its first call.
            OperationId::PostAuthenticates => {}
            OperationId::GetInstitutions => {
                ok(prism, name, client.get_institutions().await);
            }
            OperationId::GetInstitutionsId => {
                ok(prism, name, client.get_institutions_id().id(1).await);
            }
            OperationId::GetLocations => {
                ok(
                    prism,
                    name,
                    client
                        .get_locations()
                        .subdomain("example-subdomain")
                        .inactive(false)
                        .foreign_id("F-1")
                        .filter_by_subscription_feature(
                            nexhealth_api::types::SubscriptionFeature::Messaging,
                        )
                        .await,
                );
            }
            OperationId::GetLocationsId => {
                ok(prism, name, client.get_locations_id().id(7).await);
            }
            OperationId::GetSyncStatus => {
                ok(
                    prism,
                    name,
                    client
                        .get_sync_status()
                        .subdomain("example-subdomain")
                        .read_status(SyncState::Green)
                        .write_status(SyncState::Red)
                        .location_ids(vec![7, 8])
                        .await,
                );
            }
            OperationId::GetOnboardings => {
                ok(
                    prism,
                    name,
                    client
                        .get_onboardings()
                        .subdomain("example-subdomain")
                        .status(OnboardingStatusFilter::InProgress)
                        .per_page(10u32)
                        .sort("-created_at")
                        .end_cursor("AAAA")
                        .await,
                );
                // The cursor walk: its first page (generated answers may offer
                // a next cursor forever).
                let mut stream =
                    std::pin::pin!(client.onboardings_stream(OnboardingQuery::default()));
                ok(prism, "getOnboardings (stream)", stream.try_next().await);
            }
            OperationId::GetOnboardingsHashid => {
                ok(
                    prism,
                    name,
                    client.get_onboardings_hashid().hashid("y2wxl82zldm4").await,
                );
            }
            OperationId::PostOnboardings => {
                let request: OnboardingCreateRequest =
                    nexhealth_api::mock::payloads::onboarding_request();
                ok(prism, name, client.post_onboardings().body(request).await);
            }
            OperationId::GetWebhookEndpoints
            | OperationId::PostWebhookEndpoints
            | OperationId::PatchWebhookEndpointsId
            | OperationId::DeleteWebhookEndpointsId
            | OperationId::GetWebhookEndpointsIdWebhookSubscriptions
            | OperationId::PostWebhookEndpointsIdWebhookSubscriptions
            | OperationId::PatchWebhookEndpointsIdWebhookSubscriptionsSubscriptionId
            | OperationId::DeleteWebhookEndpointsIdWebhookSubscriptionsSubscriptionId => {
                unreachable!("{name} is declared in not_walked")
            }
        }
    }
    // The token exchange ran first, once, as part of the first call.
    assert_eq!(client.session().authentications(), 1);
}

fn assert_no_violations(prism: &Prism, mode: &str) {
    let violations = prism.violations();
    assert!(
        violations.is_empty(),
        "Prism ({mode}) rejected requests of ours:\n{}",
        violations.join("\n")
    );
}

#[tokio::test]
async fn every_operation_is_valid_and_decodes_against_the_published_examples() {
    let prism = Prism::start(false);
    every_operation(&prism).await;
    prism.assert_saw_every_operation();
    assert_no_violations(&prism, "examples");
}

#[tokio::test]
async fn every_operation_is_valid_and_decodes_against_generated_answers() {
    let prism = Prism::start(true);
    for _ in 0..DYNAMIC_ROUNDS {
        every_operation(&prism).await;
    }
    prism.assert_saw_every_operation();
    assert_no_violations(&prism, "dynamic");
}
