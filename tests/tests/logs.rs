//! Captures every log line at TRACE level, from every crate, during a run of
//! every operation, and finds neither the key, the token, nor query values.

use httpmock::Method::GET;
use nexhealth_api::mock::payloads;
use nexhealth_api::operations::OperationId;
use nexhealth_contract_tests::{API_KEY, Capture, Harness, call};

const SECRET_SUBDOMAIN: &str = "subdomain-q7x";
const SECRET_FOREIGN_ID: &str = "foreign-q7x";
const SECRET_CURSOR: &str = "cursor-q7x";

#[tokio::test]
async fn trace_logs_hold_no_key_token_or_query_value() {
    let capture = Capture::default();
    let writer = capture.clone();
    // Everything at TRACE except the mock server's own logging: it is the
    // stand-in for NexHealth, not part of a service that holds the client.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace,httpmock=off"))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let h = Harness::start().await;
    h.auth();
    // First: httpmock answers with the first mock that matches.
    h.server.mock(|when, then| {
        when.method(GET).path("/locations/8");
        then.status(403).json_body_obj(&payloads::error(403));
    });
    // Every operation of the registry answered with its documented success
    // and the spec's example (the webhook answers carry a secret_key).
    h.mock_every_operation();
    let (client, fallback) = h.client();
    for op in OperationId::ALL {
        if let Err(error) = call(&client, op).await {
            let facts = op.operation();
            panic!(
                "{} {} ({}) got no mocked answer: {error}",
                facts.method,
                facts.path,
                op.id()
            );
        }
    }
    // Query values that must not be logged.
    client
        .get_locations()
        .subdomain(SECRET_SUBDOMAIN)
        .foreign_id(SECRET_FOREIGN_ID)
        .await
        .unwrap();
    client
        .get_onboardings()
        .end_cursor(SECRET_CURSOR)
        .await
        .unwrap();
    client
        .get_sync_status()
        .subdomain(SECRET_SUBDOMAIN)
        .await
        .unwrap();
    let _ = client.get_locations_id().id(8).await.unwrap_err();
    fallback.assert_calls(0);

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    // The capture saw the SDK's own tracing and the HTTP stack's.
    assert!(logs.contains("nexhealth_call"), "no SDK spans captured");
    assert!(logs.contains("operation=\"getLocations\""), "{logs}");
    assert!(logs.contains("attempts=1"), "{logs}");
    assert!(
        logs.lines().count() > 50,
        "suspiciously few log lines: {}",
        logs.lines().count()
    );
    for secret in [
        API_KEY,
        h.token.as_str(),
        SECRET_SUBDOMAIN,
        SECRET_FOREIGN_ID,
        SECRET_CURSOR,
        // The webhook endpoint's signing secret, in the examples' answers.
        "example-signing-secret",
        "example-subdomain",
    ] {
        assert!(
            !logs.contains(secret),
            "`{secret}` appears in the logs:\n{}",
            logs.lines()
                .filter(|l| l.contains(secret))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    // No body either: a field value from the responses.
    assert!(!logs.contains("defaultLocation@nexhealth.com"));
}
