//! The README's recipe for OpenTelemetry traces: the SDK's tracing spans go
//! through `tracing-opentelemetry` to an OpenTelemetry tracer, here the SDK's
//! in-memory exporter. Each call is one `nexhealth_call` span with its
//! operation, status and attempts, and no span carries the key, the token, a
//! query string or a body.

use nexhealth_api::Client;
use nexhealth_api::mock::StandIn;
use nexhealth_api::opentelemetry::trace::TracerProvider;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing_subscriber::layer::SubscriberExt;

const KEY: &str = "traces-test-key-0c4";

#[tokio::test]
async fn each_call_is_one_span_with_its_operation_and_no_secret() {
    let stand_in = StandIn::start().await;
    // --- the README's recipe ---
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = provider.tracer("my-service");
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer));
    // --- end of the recipe (a service calls `tracing::subscriber::set_global_default`) ---
    let _guard = tracing::subscriber::set_default(subscriber);

    let client = Client::builder(KEY)
        .base_url(stand_in.base_url())
        .build()
        .unwrap();
    client
        .get_locations()
        .subdomain("example-subdomain")
        .await
        .unwrap();
    client.get_locations_id().id(7).await.unwrap();
    provider.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let calls: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "nexhealth_call")
        .collect();
    assert_eq!(calls.len(), 2, "{spans:#?}");
    let attribute = |span: &opentelemetry_sdk::trace::SpanData, key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    };
    let operations: Vec<_> = calls.iter().map(|s| attribute(s, "operation")).collect();
    assert_eq!(
        operations,
        [
            Some("getLocations".to_string()),
            Some("getLocationsId".to_string())
        ]
    );
    for span in &calls {
        assert_eq!(attribute(span, "status").as_deref(), Some("200"));
        assert_eq!(attribute(span, "attempts").as_deref(), Some("1"));
    }
    for span in &spans {
        for kv in &span.attributes {
            let value = kv.value.to_string();
            assert!(
                !value.contains(KEY)
                    && !value.to_lowercase().contains("bearer")
                    && !value.contains("example-subdomain")
                    && !value.contains('?'),
                "{}: {} = {value}",
                span.name,
                kv.key
            );
        }
    }
}
