//! The retry budget keeps an outage from multiplying: while NexHealth answers
//! every request with 503, 200 calls (10 in flight) send at most 1.3
//! requests per call (3 without the budget); once it is back but flaky
//! (every other request fails), at least 85 of 100 sequential calls succeed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use nexhealth_api::mock::httpmock::{HttpMockRequest, HttpMockResponse, MockServer};
use nexhealth_api::mock::{MockServerExt, payloads};
use nexhealth_api::{Client, RetryBudget, RetryPolicy};

const DOWN: u8 = 0;
const FLAKY: u8 = 1;
/// 503 and 500 in turn: an outage whose last answer is not retried.
const MIXED: u8 = 2;

/// A NexHealth whose `GET /locations/{id}` is down (503 always) or flaky
/// (every other request 503), counting requests.
struct Weather {
    server: MockServer,
    mode: Arc<AtomicU8>,
    requests: Arc<AtomicUsize>,
}

impl Weather {
    async fn start() -> Self {
        let server = MockServer::start_async().await;
        let (mode, requests) = (Arc::new(AtomicU8::new(DOWN)), Arc::new(AtomicUsize::new(0)));
        server.post_authenticates(|_, then| {
            then.created(&payloads::authenticate());
        });
        let (m, r) = (mode.clone(), requests.clone());
        let ok = serde_json::to_string(&payloads::location()).unwrap();
        server
            .mock_async(move |when, then| {
                when.path("/locations/7");
                then.respond_with(move |_: &HttpMockRequest| {
                    let n = r.fetch_add(1, Ordering::SeqCst);
                    let status = match m.load(Ordering::SeqCst) {
                        DOWN => 503,
                        FLAKY if n % 2 == 0 => 503,
                        MIXED if n % 2 == 0 => 503,
                        MIXED => 500,
                        _ => 200,
                    };
                    let body = if status == 200 {
                        ok.clone()
                    } else {
                        serde_json::to_string(&payloads::error(status)).unwrap()
                    };
                    HttpMockResponse::builder()
                        .status(status)
                        .header("content-type", "application/json")
                        .body(body)
                        .build()
                });
            })
            .await;
        Self {
            server,
            mode,
            requests,
        }
    }

    fn client(&self, policy: RetryPolicy) -> Client {
        Client::builder("retry-budget-key")
            .base_url(self.server.base_url())
            .no_rate_limit()
            .retry(policy)
            .build()
            .unwrap()
    }
}

fn fast() -> RetryPolicy {
    RetryPolicy::default().with_backoff(Duration::from_millis(2), Duration::from_millis(10))
}

/// `calls` calls, `in_flight` at a time: how many succeeded.
async fn calls(client: &Client, calls: usize, in_flight: usize) -> usize {
    futures::stream::iter(0..calls)
        .map(|_| async { client.get_locations_id().id(7).await.is_ok() })
        .buffer_unordered(in_flight)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await
}

#[tokio::test]
async fn an_outage_costs_at_most_1_3_requests_per_call_and_a_flaky_recovery_keeps_its_retries() {
    let weather = Weather::start().await;
    let client = weather.client(fast());
    assert_eq!(calls(&client, 200, 10).await, 0);
    let sent = weather.requests.load(Ordering::SeqCst);
    assert!(
        sent <= 260,
        "{sent} requests for 200 calls: {:.2} per call",
        sent as f64 / 200.0
    );
    assert!(sent >= 200, "every call was sent once: {sent}");
    let left = client.retry_budget_left().unwrap();
    assert!(left < 5.0 + 5.0, "the bucket is spent: {left}");

    // Back, but every other request fails: sequential calls, same client.
    weather.mode.store(FLAKY, Ordering::SeqCst);
    let succeeded = calls(&client, 100, 1).await;
    assert!(succeeded >= 85, "{succeeded} of 100 succeeded");
    assert!(
        client.retry_budget_left().unwrap() > left,
        "successes refilled the bucket"
    );
}

#[tokio::test]
async fn without_the_budget_every_call_makes_all_its_attempts() {
    let weather = Weather::start().await;
    let client = weather.client(fast().without_retry_budget());
    assert_eq!(calls(&client, 200, 10).await, 0);
    assert_eq!(weather.requests.load(Ordering::SeqCst), 600);
    assert_eq!(client.retry_budget_left(), None);
    // A call's own policy without the budget retries fully on a client with one.
    let weather = Weather::start().await;
    let client = weather.client(fast().with_retry_budget(RetryBudget {
        capacity: 0,
        ..RetryBudget::default()
    }));
    assert_eq!(calls(&client, 10, 1).await, 0);
    assert_eq!(
        weather.requests.load(Ordering::SeqCst),
        10,
        "an empty bucket"
    );
    use nexhealth_api::CallExt;
    let _ = client
        .get_locations_id()
        .id(7)
        .retry(fast().without_retry_budget())
        .await;
    assert_eq!(weather.requests.load(Ordering::SeqCst), 13);
}

#[tokio::test]
async fn a_healthy_flaky_service_never_drains_the_bucket() {
    let weather = Weather::start().await;
    weather.mode.store(FLAKY, Ordering::SeqCst);
    let client = weather.client(fast().with_retry_budget(RetryBudget {
        capacity: 10,
        refill_per_second: 0,
        ..RetryBudget::default()
    }));
    // 10 tokens, two retries' worth: each retry that works is given back.
    assert_eq!(calls(&client, 100, 1).await, 100);
    assert_eq!(client.retry_budget_left(), Some(10.0));
}

#[tokio::test]
async fn an_outage_answering_503_then_500_still_drains_the_bucket() {
    let weather = Weather::start().await;
    weather.mode.store(MIXED, Ordering::SeqCst);
    let client = weather.client(fast());
    assert_eq!(calls(&client, 200, 1).await, 0);
    let sent = weather.requests.load(Ordering::SeqCst);
    assert!(sent <= 260, "{sent} requests for 200 calls");
    assert!(client.retry_budget_left().unwrap() < 10.0);
}
