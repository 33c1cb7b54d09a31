//! The token exchange: caching, one refresh for many callers, refresh before
//! expiry, and exactly one re-authentication after a 401.

use std::time::Duration;

use httpmock::Method::{GET, POST};
use nexhealth_api::mock::payloads;
use nexhealth_contract_tests::{API_KEY, Harness, auth_body, bearer, token};

#[tokio::test]
async fn the_token_is_cached_between_calls() {
    let h = Harness::start().await;
    let auth = h.auth();
    let mock = h.server.mock(|when, then| {
        when.method(GET)
            .path("/institutions")
            .header("authorization", bearer(&h.token));
        then.status(200).json_body_obj(&payloads::institutions());
    });
    let (client, fallback) = h.client();
    for _ in 0..3 {
        client.get_institutions().await.unwrap();
    }
    // Clones share the session and its token.
    client.clone().get_institutions().await.unwrap();
    mock.assert_calls(4);
    auth.assert_calls(1);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn many_concurrent_first_calls_share_one_exchange() {
    let h = Harness::start().await;
    let auth = h.server.mock(|when, then| {
        when.method(POST).path("/authenticates");
        // Slow enough that every caller arrives while the exchange is in flight.
        then.status(201)
            .delay(Duration::from_millis(200))
            .json_body_obj(&auth_body(&h.token));
    });
    let mock = h.server.mock(|when, then| {
        when.method(GET)
            .path("/institutions")
            .header("authorization", bearer(&h.token));
        then.status(200).json_body_obj(&payloads::institutions());
    });
    let (client, fallback) = h.client();
    let calls = (0..100).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.get_institutions().await.map(drop) })
    });
    for result in futures::future::join_all(calls).await {
        result.unwrap().unwrap();
    }
    auth.assert_calls(1);
    mock.assert_calls(100);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn the_token_is_refreshed_shortly_before_it_expires() {
    // A one-second token is refreshed after 0.9 s (a tenth of its life early).
    let h = Harness::with_token(token("short", 1)).await;
    let auth = h.auth();
    let mock = h.server.mock(|when, then| {
        when.method(GET).path("/institutions");
        then.status(200).json_body_obj(&payloads::institutions());
    });
    let (client, fallback) = h.client();
    client.get_institutions().await.unwrap();
    client.get_institutions().await.unwrap();
    auth.assert_calls(1);
    tokio::time::sleep(Duration::from_millis(950)).await;
    client.get_institutions().await.unwrap();
    auth.assert_calls(2);
    mock.assert_calls(3);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn a_401_drops_the_token_reauthenticates_and_retries_once() {
    let h = Harness::start().await;
    let (old, new) = (token("old", 3600), token("new", 3600));
    // The first exchange hands out `old`, the second `new`.
    let first_auth = h.server.mock(|when, then| {
        when.method(POST)
            .path("/authenticates")
            .header("authorization", API_KEY);
        then.status(201)
            .json_body_obj(&auth_body(&old))
            .up_to_n_times(1);
    });
    let second_auth = h.server.mock(|when, then| {
        when.method(POST)
            .path("/authenticates")
            .header("authorization", API_KEY);
        then.status(201).json_body_obj(&auth_body(&new));
    });
    let refused = h.server.mock(|when, then| {
        when.method(GET)
            .path("/locations/7")
            .header("authorization", bearer(&old));
        then.status(401).json_body_obj(&payloads::error(401));
    });
    let accepted = h.server.mock(|when, then| {
        when.method(GET)
            .path("/locations/7")
            .header("authorization", bearer(&new));
        then.status(200).json_body_obj(&payloads::location());
    });
    let (client, fallback) = h.client();
    let location = client.get_locations_id().id(7).await.unwrap();
    assert_eq!(location.id, 7);
    // The new token is kept for the next call.
    client.get_locations_id().id(7).await.unwrap();
    first_auth.assert_calls(1);
    second_auth.assert_calls(1);
    refused.assert_calls(1);
    accepted.assert_calls(2);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn a_second_401_is_unauthorized() {
    let h = Harness::start().await;
    let auth = h.auth();
    let refused = h.server.mock(|when, then| {
        when.method(GET).path("/locations/7");
        then.status(401).json_body_obj(&payloads::error(401));
    });
    let (client, fallback) = h.client();
    let error = client.get_locations_id().id(7).await.unwrap_err();
    assert!(error.is_unauthorized(), "{error}");
    assert_eq!(error.messages(), ["Unauthorized"]);
    refused.assert_calls(2);
    auth.assert_calls(2);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn a_refused_key_is_unauthorized_and_nothing_else_is_sent() {
    let h = Harness::start().await;
    let auth = h.server.mock(|when, then| {
        when.method(POST)
            .path("/authenticates")
            .header("authorization", API_KEY);
        then.status(401).json_body_obj(&payloads::error(401));
    });
    let (client, fallback) = h.client();
    let error = client.get_institutions().await.unwrap_err();
    assert!(error.is_unauthorized(), "{error}");
    assert_eq!(error.operation(), Some("postAuthenticates"));
    auth.assert_calls(1);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn an_empty_token_is_an_invalid_response() {
    let h = Harness::with_token(String::new()).await;
    let auth = h.auth();
    let (client, fallback) = h.client();
    let error = client.get_institutions().await.unwrap_err();
    assert!(error.is_invalid_response(), "{error}");
    assert!(error.to_string().contains("data.token"), "{error}");
    auth.assert_calls(1);
    fallback.assert_calls(0);
}
