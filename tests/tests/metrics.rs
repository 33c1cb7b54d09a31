//! Every instrument of `nexhealth_api::metrics`, read back through the
//! OpenTelemetry SDK's in-memory exporter after a scripted run: calls,
//! retries, a 429 pause, a fallback period on a stopped Redis, a webhook
//! rejection, a directory fetch. And no attribute carries an id, a path, a
//! subdomain or a key.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nexhealth_api::metrics;
use nexhealth_api::mock::httpmock::{HttpMockRequest, HttpMockResponse, MockServer};
use nexhealth_api::mock::{RedisServer, payloads};
use nexhealth_api::opentelemetry::KeyValue;
use nexhealth_api::opentelemetry::metrics::MeterProvider;
use nexhealth_api::webhooks::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use nexhealth_api::webhooks::{MemoryStore, Receiver};
use nexhealth_api::{Client, LocationDirectory, RedisRateLimit, RetryPolicy};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};

const KEY: &str = "metrics-test-key-5b1";

/// One point of one instrument: its attributes and its value (a histogram's
/// count, a sum's or a gauge's value).
#[derive(Debug, Clone)]
struct Point {
    attributes: Vec<(String, String)>,
    value: f64,
}

impl Point {
    fn has(&self, key: &str, value: &str) -> bool {
        self.attributes.iter().any(|(k, v)| k == key && v == value)
    }
}

fn attributes<'a>(kv: impl Iterator<Item = &'a KeyValue>) -> Vec<(String, String)> {
    kv.map(|kv| (kv.key.to_string(), kv.value.to_string()))
        .collect()
}

fn points_of<T: Copy>(data: &MetricData<T>, f: impl Fn(T) -> f64) -> Vec<Point> {
    match data {
        MetricData::Histogram(h) => h
            .data_points()
            .map(|p| Point {
                attributes: attributes(p.attributes()),
                value: p.count() as f64,
            })
            .collect(),
        MetricData::Sum(s) => s
            .data_points()
            .map(|p| Point {
                attributes: attributes(p.attributes()),
                value: f(p.value()),
            })
            .collect(),
        MetricData::Gauge(g) => g
            .data_points()
            .map(|p| Point {
                attributes: attributes(p.attributes()),
                value: f(p.value()),
            })
            .collect(),
        MetricData::ExponentialHistogram(_) => Vec::new(),
    }
}

/// Every instrument's points in the latest (cumulative) export.
fn read(provider: &SdkMeterProvider, exporter: &InMemoryMetricExporter) -> Vec<(String, Point)> {
    provider.force_flush().unwrap();
    let exported: Vec<ResourceMetrics> = exporter.get_finished_metrics().unwrap();
    let latest = exported.last().expect("an export");
    let mut out = Vec::new();
    for scope in latest.scope_metrics() {
        for metric in scope.metrics() {
            let points = match metric.data() {
                AggregatedMetrics::F64(d) => points_of(d, |v| v),
                AggregatedMetrics::U64(d) => points_of(d, |v| v as f64),
                AggregatedMetrics::I64(d) => points_of(d, |v| v as f64),
            };
            for point in points {
                out.push((metric.name().to_string(), point));
            }
        }
    }
    out
}

/// The sum of the values of `name`'s points that have every `(key, value)`.
fn total(points: &[(String, Point)], name: &str, with: &[(&str, &str)]) -> f64 {
    points
        .iter()
        .filter(|(n, p)| n == name && with.iter().all(|(k, v)| p.has(k, v)))
        .map(|(_, p)| p.value)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_instrument_reads_back_what_a_scripted_run_did() {
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    let meter = provider.meter("nexhealth-api");

    let server = MockServer::start_async().await;
    let served = Arc::new(AtomicUsize::new(0));
    let count = |served: &Arc<AtomicUsize>| {
        let served = served.clone();
        move || served.fetch_add(1, Ordering::SeqCst)
    };
    let auth = count(&served);
    let auth_body = serde_json::to_string(&payloads::authenticate()).unwrap();
    server
        .mock_async(move |when, then| {
            when.path("/authenticates");
            then.respond_with(move |_: &HttpMockRequest| {
                auth();
                HttpMockResponse::builder()
                    .status(201)
                    .header("content-type", "application/json")
                    .body(auth_body.clone())
                    .build()
            });
        })
        .await;
    // /locations/7: 503, then 429 (Retry-After: 1), then 200s.
    let seven = count(&served);
    let seven_hits = Arc::new(AtomicUsize::new(0));
    let hits = seven_hits.clone();
    let location = serde_json::to_string(&payloads::location()).unwrap();
    server
        .mock_async(move |when, then| {
            when.path("/locations/7");
            then.respond_with(move |_: &HttpMockRequest| {
                seven();
                let (status, retry_after, body) = match hits.fetch_add(1, Ordering::SeqCst) {
                    0 => (
                        503,
                        None,
                        serde_json::to_string(&payloads::error(503)).unwrap(),
                    ),
                    1 => (
                        429,
                        Some("1"),
                        serde_json::to_string(&payloads::error(429)).unwrap(),
                    ),
                    _ => (200, None, location.clone()),
                };
                let mut response = HttpMockResponse::builder()
                    .status(status)
                    .header("content-type", "application/json");
                if let Some(seconds) = retry_after {
                    response = response.header("retry-after", seconds);
                }
                response.body(body).build()
            });
        })
        .await;
    let missing = count(&served);
    let not_found = serde_json::to_string(&payloads::error(404)).unwrap();
    server
        .mock_async(move |when, then| {
            when.path("/locations/99");
            then.respond_with(move |_: &HttpMockRequest| {
                missing();
                HttpMockResponse::builder()
                    .status(404)
                    .header("content-type", "application/json")
                    .body(not_found.clone())
                    .build()
            });
        })
        .await;
    // A 200 whose body is not a location: the call fails to decode.
    let garbled = count(&served);
    server
        .mock_async(move |when, then| {
            when.path("/locations/13");
            then.respond_with(move |_: &HttpMockRequest| {
                garbled();
                HttpMockResponse::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(r#"{"code": true, "data": {"id": "not a number"}}"#)
                    .build()
            });
        })
        .await;
    let list = count(&served);
    let locations = serde_json::to_string(&payloads::locations()).unwrap();
    server
        .mock_async(move |when, then| {
            when.path("/locations");
            then.respond_with(move |_: &HttpMockRequest| {
                list();
                HttpMockResponse::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(locations.clone())
                    .build()
            });
        })
        .await;

    let client = Client::builder(KEY)
        .base_url(server.base_url())
        .meter(meter.clone())
        .retry(
            RetryPolicy::default()
                .with_backoff(Duration::from_millis(5), Duration::from_millis(20)),
        )
        .build()
        .unwrap();
    // A 503 retried; then a 429 (a shared pause of 1 s) retried.
    client.get_locations_id().id(7).await.unwrap();
    client.get_locations_id().id(7).await.unwrap();
    assert!(client.get_locations_id().id(99).await.is_err());
    assert!(matches!(
        client.get_locations_id().id(13).await,
        Err(nexhealth_api::Error::InvalidResponse { .. })
    ));
    LocationDirectory::new(client.clone())
        .location(7)
        .await
        .unwrap();

    // A fallback period: a shared limiter whose Redis is gone.
    let mut redis = RedisServer::start().unwrap();
    let cut_off = Client::builder(KEY)
        .base_url(server.base_url())
        .meter(meter.clone())
        .rate_limit(RedisRateLimit::new(redis.url()).redis_timeout(Duration::from_millis(50)))
        .build()
        .unwrap();
    cut_off.get_locations_id().id(7).await.unwrap();
    redis.stop();
    cut_off.get_locations_id().id(7).await.unwrap();
    assert!(cut_off.rate_limit_status().unwrap().fallback_active);

    // A webhook delivery without a signature.
    let receiver = Receiver::new("whsec-test").unwrap().meter(&meter);
    let outcome = receiver
        .handle(
            &MemoryStore::default(),
            &Default::default(),
            b"{}",
            |_| async { Ok::<(), ()>(()) },
        )
        .await;
    assert!(!outcome.verified());
    // A store full of live identities: the second event is answered 503,
    // counted with the store's trouble.
    let full = MemoryStore::with_capacity(1);
    for n in 0..2 {
        let body = serde_json::to_vec(&serde_json::json!({
            "event_name": "sync_status_read_change", "event_time": "2026-08-14T10:00:00Z", "data": {"n": n}
        }))
        .unwrap();
        let timestamp = chrono::Utc::now().to_rfc3339();
        let mut headers = nexhealth_api::reqwest::header::HeaderMap::new();
        headers.insert(TIMESTAMP_HEADER, timestamp.parse().unwrap());
        headers.insert(
            SIGNATURE_HEADER,
            sign("whsec-test", &timestamp, &body).parse().unwrap(),
        );
        let outcome = receiver
            .handle(&full, &headers, &body, |_| async { Ok::<(), ()>(()) })
            .await;
        assert_eq!(outcome.kind(), ["handled", "store_unavailable"][n]);
    }

    let points = read(&provider, &exporter);
    let names: BTreeSet<&str> = points.iter().map(|(n, _)| n.as_str()).collect();
    for name in metrics::ALL {
        assert!(names.contains(name), "{name} missing from {names:?}");
    }
    assert_eq!(
        total(
            &points,
            metrics::WEBHOOK_DELIVERIES,
            &[
                ("nexhealth.outcome", "store_unavailable"),
                ("nexhealth.store.trouble", "full")
            ]
        ),
        1.0
    );
    let requests = served.load(Ordering::SeqCst) as f64;
    assert_eq!(
        total(&points, metrics::HTTP_CLIENT_REQUEST_DURATION, &[]),
        requests,
        "one histogram point per request the server saw"
    );
    assert_eq!(
        total(
            &points,
            metrics::HTTP_CLIENT_REQUEST_DURATION,
            &[("http.response.status_code", "503"), ("error.type", "503")]
        ),
        1.0
    );
    let host = ("server.address", "127.0.0.1");
    assert_eq!(
        total(&points, metrics::HTTP_CLIENT_REQUEST_DURATION, &[host]),
        requests
    );
    assert_eq!(
        total(&points, metrics::ATTEMPTS, &[("nexhealth.retry", "true")]),
        2.0
    );
    assert_eq!(
        total(
            &points,
            metrics::ATTEMPTS,
            &[("nexhealth.operation", "getLocationsId")]
        ),
        8.0,
        "503 + retry, 429 + retry, the 404, the garbled 200, the cut-off client's two calls"
    );
    assert_eq!(
        total(
            &points,
            metrics::OPERATION_DURATION,
            &[
                ("nexhealth.operation", "getLocationsId"),
                ("nexhealth.outcome", "ok")
            ]
        ),
        4.0,
        "two calls on each client"
    );
    assert_eq!(
        total(
            &points,
            metrics::OPERATION_DURATION,
            &[("nexhealth.outcome", "not_found")]
        ),
        1.0
    );
    // The outcome is the call's, not the status's: a 200 that did not decode.
    assert_eq!(
        total(
            &points,
            metrics::OPERATION_DURATION,
            &[("nexhealth.outcome", "invalid_response")]
        ),
        1.0
    );
    assert_eq!(total(&points, metrics::RATE_LIMIT_PAUSES, &[]), 1.0);
    assert!(
        total(
            &points,
            metrics::RATE_LIMIT_WAIT,
            &[("nexhealth.limiter", "local")]
        ) >= 6.0
    );
    assert!(
        total(
            &points,
            metrics::RATE_LIMIT_WAIT,
            &[("nexhealth.limiter", "redis")]
        ) >= 2.0
    );
    assert_eq!(total(&points, metrics::RATE_LIMIT_FALLBACK, &[]), 1.0);
    assert_eq!(
        total(
            &points,
            metrics::AUTH_EXCHANGES,
            &[("nexhealth.outcome", "ok")]
        ),
        2.0,
        "one exchange per client"
    );
    assert_eq!(total(&points, metrics::DIRECTORY_FETCHES, &[]), 1.0);
    assert_eq!(
        total(
            &points,
            metrics::WEBHOOK_DELIVERIES,
            &[("nexhealth.outcome", "missing_header")]
        ),
        1.0
    );
    let budget = total(&points, metrics::RETRY_BUDGET, &[]);
    assert!(budget > 0.0 && budget <= 200.0, "{budget}");

    // The cut-off client dropped: it no longer counts as on its fallback.
    drop(cut_off);
    let points = read(&provider, &exporter);
    assert_eq!(total(&points, metrics::RATE_LIMIT_FALLBACK, &[]), 0.0);

    // Only these keys, and no value that names a resource, a path or the key.
    let allowed = [
        "http.request.method",
        "http.response.status_code",
        "server.address",
        "server.port",
        "error.type",
        "nexhealth.operation",
        "nexhealth.outcome",
        "nexhealth.retry",
        "nexhealth.limiter",
        "nexhealth.store.trouble",
    ];
    for (name, point) in &points {
        for (key, value) in &point.attributes {
            assert!(allowed.contains(&key.as_str()), "{name}: {key}={value}");
            assert!(
                !value.contains('/') && !value.contains(KEY) && value != "7" && value != "99",
                "{name}: {key}={value}"
            );
            assert!(
                !value.contains("example-subdomain"),
                "{name}: {key}={value}"
            );
        }
    }
}
