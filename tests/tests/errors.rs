//! Every documented error status of every operation, and every error class.

use std::time::Duration;

use httpmock::Method::GET;
use nexhealth_api::mock::payloads;
use nexhealth_api::operations::OPERATIONS;
use nexhealth_api::{Client, Error};
use nexhealth_contract_tests::{API_KEY, Harness, call, operation_id};

fn class(error: &Error) -> &'static str {
    match error {
        Error::BadRequest(_) => "bad request",
        Error::Unauthorized(_) => "unauthorized",
        Error::Forbidden(_) => "forbidden",
        Error::NotFound(_) => "not found",
        Error::RateLimited(_) => "rate limited",
        Error::Server(_) => "server",
        Error::UnexpectedStatus(_) => "unexpected status",
        Error::Transport { .. } => "transport",
        Error::Timeout { .. } => "timeout",
        Error::InvalidRequest { .. } => "invalid request",
        Error::InvalidResponse { .. } => "invalid response",
        _ => "other",
    }
}

fn expected_class(status: u16) -> &'static str {
    match status {
        400 => "bad request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not found",
        429 => "rate limited",
        500..=599 => "server",
        _ => "unexpected status",
    }
}

#[tokio::test]
async fn every_documented_error_status_of_every_operation_maps_to_its_class() {
    let mut checked = 0;
    for op in OPERATIONS {
        for &status in op.error_statuses {
            let h = Harness::start().await;
            if op.id != "postAuthenticates" {
                h.auth();
            }
            let body = payloads::error(status);
            let mock = h.server.mock(|when, then| {
                when.method(op.method)
                    .path_matches(op.path_pattern().as_str());
                then.status(status).json_body_obj(&body);
            });
            // The mapping is tested, not the pause a 429 sets (1 s each).
            let (client, fallback) = h.client_with(|b| b.no_rate_limit());
            let error = call(&client, operation_id(op)).await.unwrap_err();
            assert_eq!(
                class(&error),
                expected_class(status),
                "{} {status}: {error}",
                op.id
            );
            assert_eq!(error.status().map(|s| s.as_u16()), Some(status));
            assert_eq!(error.operation(), Some(op.id));
            let expected: Vec<String> = body
                .error
                .clone()
                .unwrap_or_default()
                .into_iter()
                .chain(match body.description {
                    Some(nexhealth_api::types::Messages::String(ref s)) => vec![s.clone()],
                    _ => vec![],
                })
                .collect();
            assert_eq!(error.messages(), expected.as_slice(), "{} {status}", op.id);
            // A 401 on a call is retried once after re-authenticating; a 429
            // on a call that is safe to repeat is tried three times.
            let expected_calls = match status {
                401 if op.id != "postAuthenticates" => 2,
                429 if op.idempotent => 3,
                _ => 1,
            };
            assert_eq!(mock.calls(), expected_calls, "{} {status}", op.id);
            fallback.assert_calls(0);
            checked += 1;
        }
    }
    assert_eq!(
        checked,
        OPERATIONS
            .iter()
            .map(|op| op.error_statuses.len())
            .sum::<usize>()
    );
    assert!(checked >= 40, "only {checked} operation × status pairs");
}

#[tokio::test]
async fn seed_rules_forbidden_subdomain_and_location_outside_the_institution() {
    let h = Harness::start().await;
    h.auth();
    let forbidden = h.server.mock(|when, then| {
        when.method(GET)
            .path("/locations")
            .query_param("subdomain", "someone-else");
        then.status(403).json_body_obj(&payloads::error(403));
    });
    let missing = h.server.mock(|when, then| {
        when.method(GET).path("/locations/999");
        then.status(404).json_body_obj(&payloads::error(404));
    });
    let (client, fallback) = h.client();
    let error = client
        .get_locations()
        .subdomain("someone-else")
        .await
        .unwrap_err();
    assert!(error.is_forbidden(), "{error}");
    assert_eq!(
        error.messages(),
        ["You don't have access to perform this action."]
    );
    let error = client.get_locations_id().id(999).await.unwrap_err();
    assert!(error.is_not_found(), "{error}");
    forbidden.assert_calls(1);
    missing.assert_calls(1);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn rate_limited_carries_retry_after() {
    let h = Harness::start().await;
    h.auth();
    // Longer than the policy's 30 s cap: not waited out, handed to the caller.
    let limited = h.server.mock(|when, then| {
        when.method(GET).path("/institutions");
        then.status(429)
            .header("retry-after", "120")
            .json_body_obj(&payloads::error(429));
    });
    let (client, fallback) = h.client();
    let error = client.get_institutions().await.unwrap_err();
    assert!(error.is_rate_limited());
    assert_eq!(
        error.api_error().unwrap().retry_after(),
        Some(Duration::from_secs(120))
    );
    limited.assert_calls(1);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn an_html_page_from_a_proxy_is_a_server_error() {
    for status in [500, 502, 503] {
        let h = Harness::start().await;
        h.auth();
        h.server.mock(|when, then| {
            when.method(GET).path("/institutions");
            then.status(status)
                .header("content-type", "text/html")
                .body("<html><body>Bad gateway</body></html>");
        });
        let (client, _) = h.client();
        let error = client.get_institutions().await.unwrap_err();
        assert!(error.is_server(), "{status}: {error}");
        assert_eq!(error.status().unwrap().as_u16(), status);
        assert!(
            !error.to_string().contains("html"),
            "no body in the message: {error}"
        );
    }
}

#[tokio::test]
async fn a_wrongly_typed_field_is_an_invalid_response_naming_the_field() {
    let h = Harness::start().await;
    h.auth();
    let mut body = serde_json::to_value(payloads::locations()).unwrap();
    body["data"][0]["locations"][1]["id"] = serde_json::json!("patient-secret-value");
    h.server.mock(|when, then| {
        when.method(GET).path("/locations");
        then.status(200).json_body(body);
    });
    let (client, _) = h.client();
    let error = client.get_locations().await.unwrap_err();
    match &error {
        Error::InvalidResponse { field, status, .. } => {
            assert_eq!(field.as_deref(), Some("data[0].locations[1].id"));
            assert_eq!(*status, Some(200));
        }
        other => panic!("expected an invalid response, got {other}"),
    }
    let text = format!("{error} {error:?}");
    assert!(!text.contains("patient-secret-value"), "{text}");
}

#[tokio::test]
async fn malformed_truncated_and_empty_bodies_are_invalid_responses() {
    for body in [
        "{\"code\": true, \"data\": [",
        "not json at all",
        "",
        "{\"code\": true}",
    ] {
        let h = Harness::start().await;
        h.auth();
        h.server.mock(|when, then| {
            when.method(GET).path("/institutions");
            then.status(200).body(body);
        });
        let (client, _) = h.client();
        let error = client.get_institutions().await.unwrap_err();
        assert!(error.is_invalid_response(), "{body:?}: {error}");
    }
}

#[tokio::test]
async fn an_undocumented_status_is_classified_by_its_code() {
    let h = Harness::start().await;
    h.auth();
    h.server.mock(|when, then| {
        when.method(GET).path("/institutions");
        then.status(404).json_body_obj(&payloads::error(404));
    });
    h.server.mock(|when, then| {
        when.method(GET).path("/institutions/1");
        then.status(418);
    });
    h.server.mock(|when, then| {
        when.method(GET).path("/locations/7");
        then.status(204);
    });
    let (client, _) = h.client();
    // GET /institutions documents no 404, yet a 404 is still "not found".
    assert!(client.get_institutions().await.unwrap_err().is_not_found());
    let teapot = client.get_institutions_id().id(1).await.unwrap_err();
    assert!(matches!(teapot, Error::UnexpectedStatus(_)), "{teapot}");
    assert!(
        client
            .get_locations_id()
            .id(7)
            .await
            .unwrap_err()
            .is_invalid_response()
    );
}

#[tokio::test]
async fn a_slow_answer_times_out() {
    let h = Harness::start().await;
    h.auth();
    h.server.mock(|when, then| {
        when.method(GET).path("/institutions");
        then.status(200)
            .delay(Duration::from_secs(1))
            .json_body_obj(&payloads::institutions());
    });
    let client = Client::builder(API_KEY)
        .base_url(h.server.base_url())
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let error = client.get_institutions().await.unwrap_err();
    assert!(error.is_timeout(), "{error}");
}

#[tokio::test]
async fn an_unreachable_host_is_a_transport_error_without_the_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let client = Client::builder(API_KEY)
        .base_url(format!("http://127.0.0.1:{port}"))
        .build()
        .unwrap();
    let error = client
        .get_locations()
        .subdomain("secret-subdomain")
        .await
        .unwrap_err();
    assert!(error.is_transport(), "{error}");
    let text = format!("{error} {error:?}");
    assert!(!text.contains("secret-subdomain"), "{text}");
    assert!(!text.contains("/locations"), "no URL in the error: {text}");
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_is_sent() {
    let h = Harness::start().await;
    let auth = h.auth();
    let (client, fallback) = h.client();
    for subdomain in ["", "   "] {
        let error = client
            .get_locations()
            .subdomain(subdomain)
            .await
            .unwrap_err();
        assert!(error.is_invalid_request(), "{error}");
        let error = client
            .get_sync_status()
            .subdomain(subdomain)
            .await
            .unwrap_err();
        assert!(error.is_invalid_request(), "{error}");
    }
    assert!(Client::from_api_key("").unwrap_err().is_invalid_request());
    assert!(
        Client::builder(API_KEY)
            .base_url("not a url")
            .build()
            .unwrap_err()
            .is_invalid_request()
    );
    auth.assert_calls(0);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn query_values_are_percent_encoded() {
    let h = Harness::start().await;
    h.auth();
    let mock = h.server.mock(|when, then| {
        when.method(GET)
            .path("/locations")
            .query_param("subdomain", "a&location_id=5 #x")
            .query_param_missing("location_id")
            .is_true(|r| r.uri().query() == Some("subdomain=a%26location_id%3D5+%23x"));
        then.status(200).json_body_obj(&payloads::locations());
    });
    let (client, fallback) = h.client();
    client
        .get_locations()
        .subdomain("a&location_id=5 #x")
        .await
        .unwrap();
    mock.assert_calls(1);
    fallback.assert_calls(0);
}

#[tokio::test]
async fn an_unexpected_request_fails_naming_it() {
    let h = Harness::start().await;
    h.auth();
    let (client, fallback) = h.client();
    let error = client.get_locations_id().id(12345).await.unwrap_err();
    assert_eq!(error.messages(), ["no mock matched GET /locations/12345"]);
    fallback.assert_calls(1);
}

#[tokio::test]
async fn polling_a_finished_call_again_is_an_error_not_a_panic() {
    let h = Harness::start().await;
    h.auth();
    let location = h.server.mock(|when, then| {
        when.method(GET).path("/locations/7");
        then.status(200).json_body_obj(&payloads::location());
    });
    let (client, fallback) = h.client();
    let mut call = std::future::IntoFuture::into_future(client.get_locations_id().id(7));
    assert_eq!((&mut call).await.unwrap().id, 7);
    let again = (&mut call).await.unwrap_err();
    assert!(again.is_invalid_request(), "{again}");
    location.assert_calls(1);
    fallback.assert_calls(0);
}
