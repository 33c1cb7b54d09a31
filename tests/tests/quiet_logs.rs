//! A healthy service's `info` logs stay quiet: a run of successful calls of
//! every operation prints nothing from the crate under an `info` filter, while
//! the one thing an operator must act on here, a refused API key, is a WARN
//! (without the key).

use nexhealth_api::mock::payloads;
use nexhealth_contract_tests::{API_KEY, Capture, Harness, call};

#[tokio::test]
async fn successful_calls_print_nothing_under_info_and_a_refused_key_warns() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info,httpmock=off"))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let h = Harness::start().await;
    h.auth();
    // Every operation answered with its documented success and the spec's example.
    h.mock_every_operation();
    let (client, _) = h.client();
    let mut ok = 0;
    for op in nexhealth_api::operations::OperationId::ALL {
        if op == nexhealth_api::operations::OperationId::PostAuthenticates {
            continue;
        }
        call(&client, op)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", op.id()));
        ok += 1;
    }
    assert!(ok >= 10, "only {ok} operations ran");
    let quiet = capture.text();
    assert!(
        !quiet.contains("nexhealth_api"),
        "successful calls logged under `info`:\n{quiet}"
    );

    // A refused key: the exchange answers 401, which an operator must see.
    let refused = httpmock::MockServer::start_async().await;
    refused.mock(|when, then| {
        when.method(httpmock::Method::POST).path("/authenticates");
        then.status(401).json_body_obj(&payloads::error(401));
    });
    let client = nexhealth_api::Client::builder(API_KEY)
        .base_url(refused.base_url())
        .build()
        .unwrap();
    let error = client.get_institutions().await.unwrap_err();
    assert!(error.is_unauthorized(), "{error}");
    let logs = capture.text();
    let warned: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("nexhealth_api"))
        .collect();
    assert_eq!(warned.len(), 1, "one WARN for the refused key:\n{logs}");
    assert!(warned[0].contains("refused the API key"), "{logs}");
    assert!(!logs.contains(API_KEY), "the key reached the logs:\n{logs}");
}
