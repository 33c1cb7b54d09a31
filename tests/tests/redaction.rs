//! The API key and the token never appear in Debug output, errors or logs.

use httpmock::Method::GET;
use nexhealth_api::ApiKey;
use nexhealth_api::mock::payloads;
use nexhealth_contract_tests::{API_KEY, Harness};

#[tokio::test]
async fn debug_output_never_shows_the_key_or_the_token() {
    let h = Harness::start().await;
    h.auth();
    h.server.mock(|when, then| {
        when.method(GET).path("/institutions");
        then.status(200).json_body_obj(&payloads::institutions());
    });
    h.server.mock(|when, then| {
        when.method(GET).path("/locations");
        then.status(403).json_body_obj(&payloads::error(403));
    });
    let (client, _) = h.client();
    let before = format!("{client:?}");
    let institutions = client.get_institutions().await.unwrap();
    let after = format!("{client:?} {:?}", client.session());
    let error = client
        .get_locations()
        .subdomain("private-subdomain")
        .await
        .unwrap_err();
    let texts = [
        before,
        after,
        format!("{institutions:?}"),
        format!("{error} {error:?}"),
        format!("{:?}", ApiKey::new(API_KEY)),
        format!("{:?}", Client::builder(API_KEY)),
    ];
    for text in &texts {
        assert!(!text.contains(API_KEY), "key leaked: {text}");
        assert!(!text.contains(&h.token), "token leaked: {text}");
        assert!(!text.contains("private-subdomain"), "query leaked: {text}");
    }
    assert!(texts[1].contains("<redacted>"));
}

use nexhealth_api::Client;
