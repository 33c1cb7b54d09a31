//! `Retry-After` in both of its forms, the least pause after a 429, and the
//! retry budget of calls dropped while they wait: each test is a defect
//! seen before (an HTTP-date read as no value and a 1 s cooldown, a
//! `Retry-After: 0` 429 retried at once with no shared pause, 20 cancelled
//! calls taking 94 tokens without sending a retry).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use nexhealth_api::mock::httpmock::{HttpMockRequest, HttpMockResponse};
use nexhealth_api::mock::payloads;
use nexhealth_api::{CallExt, Client, DEFAULT_COOLDOWN, RetryPolicy};
use nexhealth_contract_tests::Harness;

/// One test at a time: several measure waits of a second on a 2-core machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// An IMF-fixdate `ahead` from now (whole seconds, rounded down).
fn http_date(ahead: chrono::TimeDelta) -> String {
    (Utc::now() + ahead)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// `GET /locations` answers `status` with `retry_after` (if any) to the first
/// `failures` requests, then 200; answers the count of requests.
fn failing(
    harness: &Harness,
    status: u16,
    retry_after: Option<String>,
    failures: usize,
) -> Arc<AtomicUsize> {
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = requests.clone();
    let ok = serde_json::to_string(&payloads::locations()).unwrap();
    let error = serde_json::to_string(&payloads::error(status)).unwrap();
    harness.server.mock(move |when, then| {
        when.method("GET").path("/locations");
        then.respond_with(move |_: &HttpMockRequest| {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let mut response =
                HttpMockResponse::builder().header("content-type", "application/json");
            if n < failures {
                response = response.status(status).body(error.clone());
                if let Some(retry_after) = &retry_after {
                    response = response.header("retry-after", retry_after.clone());
                }
            } else {
                response = response.status(200).body(ok.clone());
            }
            response.build()
        });
    });
    requests
}

fn without_limiter(harness: &Harness) -> Client {
    harness.client_with(|b| b.no_rate_limit()).0
}

/// An HTTP-date far ahead is a long `Retry-After`, over the policy's cap: the
/// caller gets it at once, with no retry. It was read as no value at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_date_far_ahead_is_handed_back_at_once() {
    let _serial = SERIAL.lock().await;
    let harness = Harness::start().await;
    harness.auth();
    let requests = failing(
        &harness,
        429,
        Some("Wed, 21 Oct 2099 07:28:00 GMT".to_string()),
        usize::MAX,
    );
    let client = without_limiter(&harness);
    let started = Instant::now();
    let error = client.get_locations().await.unwrap_err();
    assert!(error.is_rate_limited(), "{error}");
    let asked = error.retry_after().expect("the date is read");
    assert!(
        asked > Duration::from_secs(70 * 365 * 86_400),
        "{asked:?}: from now to 2099"
    );
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(requests.load(Ordering::SeqCst), 1, "not retried");
}

/// An HTTP-date a few seconds ahead is waited out, like the seconds form.
/// A 503, which sets no cooldown of its own, shows the wait is the date's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_date_a_few_seconds_ahead_is_waited_out() {
    let _serial = SERIAL.lock().await;
    let harness = Harness::start().await;
    harness.auth();
    // Whole seconds: between 2 and 3 s from now.
    let requests = failing(
        &harness,
        503,
        Some(http_date(chrono::TimeDelta::seconds(3))),
        1,
    );
    let client = without_limiter(&harness);
    let started = Instant::now();
    client.get_locations().await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1_900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert_eq!(requests.load(Ordering::SeqCst), 2);
    // A date already past: retried at once.
    let harness = Harness::start().await;
    harness.auth();
    let requests = failing(
        &harness,
        503,
        Some("Wed, 21 Oct 2015 07:28:00 GMT".to_string()),
        1,
    );
    let client = without_limiter(&harness);
    let started = Instant::now();
    client.get_locations().await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(requests.load(Ordering::SeqCst), 2);
}

/// A 429 with `Retry-After: 0` pauses every client sharing the limiter for
/// the default cooldown: the next call is held back, not sent at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_0_pauses_the_limiter_for_the_cooldown() {
    let _serial = SERIAL.lock().await;
    for retry_after in [Some("0".to_string()), None] {
        let harness = Harness::start().await;
        harness.auth();
        let requests = failing(&harness, 429, retry_after.clone(), 1);
        let (client, _fallback) = harness.client_with(|b| b.retry(RetryPolicy::none()));
        let error = client.get_locations().await.unwrap_err();
        assert!(error.is_rate_limited(), "{error}");
        let paused = Instant::now();
        let error = client
            .get_locations()
            .deadline(Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(error.is_budget_unavailable(), "{retry_after:?}: {error}");
        let free_in = error.retry_after().unwrap();
        assert!(
            free_in > DEFAULT_COOLDOWN / 2 && free_in <= DEFAULT_COOLDOWN,
            "{retry_after:?}: {free_in:?}"
        );
        assert_eq!(requests.load(Ordering::SeqCst), 1, "{retry_after:?}");
        // After the cooldown, calls go again.
        client.get_locations().await.unwrap();
        assert!(paused.elapsed() >= DEFAULT_COOLDOWN - Duration::from_millis(50));
        assert_eq!(requests.load(Ordering::SeqCst), 2);
    }
}

/// Without a limiter, the retry after a 429 itself waits the cooldown, for
/// `Retry-After: 0` and for none; a 503 with `Retry-After: 0` is retried at
/// once, as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_retry_without_a_limiter_waits_the_cooldown() {
    let _serial = SERIAL.lock().await;
    for retry_after in [Some("0".to_string()), None] {
        let harness = Harness::start().await;
        harness.auth();
        let requests = failing(&harness, 429, retry_after.clone(), 1);
        let client = without_limiter(&harness);
        let started = Instant::now();
        client.get_locations().await.unwrap();
        let waited = started.elapsed();
        assert!(
            waited >= DEFAULT_COOLDOWN && waited < DEFAULT_COOLDOWN * 3,
            "{retry_after:?}: {waited:?}"
        );
        assert_eq!(requests.load(Ordering::SeqCst), 2);
    }
    let harness = Harness::start().await;
    harness.auth();
    let requests = failing(&harness, 503, Some("0".to_string()), 2);
    let client = without_limiter(&harness);
    let started = Instant::now();
    client.get_locations().await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(requests.load(Ordering::SeqCst), 3);
}

/// 20 calls dropped while they wait out a `Retry-After` give back what their
/// retries took: the budget is full again, and no retry was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_dropped_while_waiting_out_retry_after_keep_the_retry_budget() {
    let _serial = SERIAL.lock().await;
    for limiter in [false, true] {
        let harness = Harness::start().await;
        harness.auth();
        let requests = failing(&harness, 503, Some("5".to_string()), usize::MAX);
        let (client, _fallback) =
            harness.client_with(|b| if limiter { b } else { b.no_rate_limit() });
        let full = client.retry_budget_left().unwrap();
        assert_eq!(full, 200.0);
        let calls =
            (0..20).map(|_| {
                let client = client.clone();
                async move {
                    tokio::time::timeout(Duration::from_millis(300), client.get_locations()).await
                }
            });
        for dropped in futures::future::join_all(calls).await {
            assert!(dropped.is_err(), "still waiting out the 5 s");
        }
        assert_eq!(requests.load(Ordering::SeqCst), 20, "no retry was sent");
        assert_eq!(client.retry_budget_left(), Some(full), "limiter: {limiter}");
    }
}
