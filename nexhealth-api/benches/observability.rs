//! What metrics cost per call, and what the retry budget saves in an outage,
//! in one run: `cargo bench -p nexhealth-api --bench observability`.
//!
//! 1. **Metrics overhead.** The same call (`GET /locations/{id}` against the
//!    stand-in) on three clients of one build: instrumentation off
//!    (`no_metrics()`), on with no provider installed (OpenTelemetry's no-op),
//!    and on with the SDK's provider and the Prometheus exporter. Paired:
//!    each round times a run of each, in a rotating order, so that the
//!    machine's drift hits all three alike; each round's ratio to "off" is
//!    kept, and the median ratio and median per-call latency are printed.
//! 2. **An outage.** 200 calls, 10 in flight, against a server answering 503
//!    to everything: requests per call with the default retry budget and
//!    without one. Then the server recovers: the time until the bucket allows
//!    a retry again and until it is full, calling once every 50 ms.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use nexhealth_api::mock::httpmock::{HttpMockRequest, HttpMockResponse, MockServer};
use nexhealth_api::mock::{StandIn, payloads};
use nexhealth_api::opentelemetry::metrics::MeterProvider;
use nexhealth_api::{Client, RetryPolicy};
use opentelemetry_sdk::metrics::SdkMeterProvider;

const ROUNDS: usize = 20;
const CALLS_PER_ROUND: usize = 200;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn overhead() {
    let stand_in = StandIn::start().await;
    let registry = prometheus::Registry::new();
    let exporter = opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .build()
        .unwrap();
    let provider = SdkMeterProvider::builder().with_reader(exporter).build();
    let build = |b: nexhealth_api::ClientBuilder| {
        b.base_url(stand_in.base_url())
            .no_rate_limit()
            .build()
            .unwrap()
    };
    let clients = [
        (
            "instrumentation off (`no_metrics()`)",
            build(Client::builder("k").no_metrics()),
        ),
        (
            "no provider (no-op instruments)",
            build(Client::builder("k")),
        ),
        (
            "SDK provider + Prometheus exporter",
            build(Client::builder("k").meter(provider.meter("nexhealth-api"))),
        ),
    ];
    for (_, client) in &clients {
        for _ in 0..100 {
            client.get_locations_id().id(7).await.unwrap();
        }
    }
    let mut per_call: [Vec<f64>; 3] = Default::default();
    let mut ratios: [Vec<f64>; 3] = Default::default();
    for round in 0..ROUNDS {
        let mut totals = [0.0; 3];
        for k in 0..3 {
            let i = (round + k) % 3;
            let started = Instant::now();
            for _ in 0..CALLS_PER_ROUND {
                let call = Instant::now();
                clients[i].1.get_locations_id().id(7).await.unwrap();
                per_call[i].push(call.elapsed().as_secs_f64() * 1e6);
            }
            totals[i] = started.elapsed().as_secs_f64();
        }
        for i in 0..3 {
            ratios[i].push(totals[i] / totals[0]);
        }
    }
    let scraped = registry.gather().len();
    println!(
        "metrics overhead, {} calls per client in {ROUNDS} paired rounds (the exporter holds {scraped} metric families):",
        ROUNDS * CALLS_PER_ROUND
    );
    println!("| client | median per call | p99 | median round time / off |");
    println!("|---|---|---|---|");
    for (i, (name, _)) in clients.iter().enumerate() {
        per_call[i].sort_by(f64::total_cmp);
        ratios[i].sort_by(f64::total_cmp);
        println!(
            "| {name} | {:.1} µs | {:.1} µs | {:.3} |",
            percentile(&per_call[i], 0.5),
            percentile(&per_call[i], 0.99),
            percentile(&ratios[i], 0.5)
        );
    }
}

/// A server whose `/locations/7` answers 503 while `down`, 200 after.
async fn weather(down: Arc<AtomicBool>, requests: Arc<AtomicUsize>) -> MockServer {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.path("/authenticates");
            then.status(201)
                .header("content-type", "application/json")
                .body(serde_json::to_string(&payloads::authenticate()).unwrap());
        })
        .await;
    let ok = serde_json::to_string(&payloads::location()).unwrap();
    let unavailable = serde_json::to_string(&payloads::error(503)).unwrap();
    server
        .mock_async(move |when, then| {
            when.path("/locations/7");
            then.respond_with(move |_: &HttpMockRequest| {
                requests.fetch_add(1, Ordering::SeqCst);
                let (status, body) = if down.load(Ordering::SeqCst) {
                    (503, unavailable.clone())
                } else {
                    (200, ok.clone())
                };
                HttpMockResponse::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(body)
                    .build()
            });
        })
        .await;
    server
}

async fn outage() {
    println!();
    println!("an outage: 200 calls, 10 in flight, every request answered 503 (default backoff):");
    println!("| retry budget | requests | per call | wall time |");
    println!("|---|---|---|---|");
    for with_budget in [true, false] {
        let (down, requests) = (
            Arc::new(AtomicBool::new(true)),
            Arc::new(AtomicUsize::new(0)),
        );
        let server = weather(down.clone(), requests.clone()).await;
        let policy = if with_budget {
            RetryPolicy::default()
        } else {
            RetryPolicy::default().without_retry_budget()
        };
        let client = Client::builder("k")
            .base_url(server.base_url())
            .no_rate_limit()
            .retry(policy)
            .build()
            .unwrap();
        let started = Instant::now();
        futures::stream::iter(0..200)
            .map(|_| async { client.get_locations_id().id(7).await.is_ok() })
            .buffer_unordered(10)
            .count()
            .await;
        let took = started.elapsed();
        let sent = requests.load(Ordering::SeqCst);
        println!(
            "| {} | {sent} | {:.2} | {:.1} s |",
            if with_budget {
                "default (200 tokens)"
            } else {
                "none"
            },
            sent as f64 / 200.0,
            took.as_secs_f64()
        );
        if with_budget {
            // Recovery: one call every 50 ms until the bucket is full again.
            down.store(false, Ordering::SeqCst);
            let recovered = Instant::now();
            let mut retry_again = None;
            loop {
                client.get_locations_id().id(7).await.unwrap();
                let left = client.retry_budget_left().unwrap();
                if retry_again.is_none() && left >= 5.0 {
                    retry_again = Some(recovered.elapsed());
                }
                if left >= 200.0 || recovered.elapsed() > Duration::from_secs(300) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            println!(
                "| after recovery (a call every 50 ms) | retries allowed again after {:.2} s | bucket full after {:.1} s | |",
                retry_again.unwrap_or_default().as_secs_f64(),
                recovered.elapsed().as_secs_f64()
            );
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    overhead().await;
    outage().await;
}
