//! The in-process rate limit (on by default), the budget wait and the call's
//! deadline, against a stand-in that enforces the limit over sliding windows
//! and answers 429 beyond it. Each test is one promise of the README, tried
//! with the values that broke it before: a 2^64 - 1 `Retry-After`,
//! `Duration::MAX`, bursts at the window edge, calls dropped while they wait.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nexhealth_api::mock::EnforcingStandIn;
use nexhealth_api::{CallExt, Client, MAX_SHARED_PAUSE, RateLimit, RetryPolicy};

const KEY: &str = "limits-test-key-41c";

/// One test at a time: each measures windows on a 2-core machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn client(base: &str, limit: RateLimit) -> Client {
    Client::builder(KEY)
        .base_url(base)
        .rate_limit(limit)
        .retry(RetryPolicy::none())
        .build()
        .unwrap()
}

/// Calls `GET /locations` from `tasks` tasks on clones of `client` for `run`;
/// answers (successes, failures).
async fn hammer(client: &Client, tasks: usize, run: Duration) -> (u64, u64) {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + run;
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let (client, ok, failed) = (client.clone(), ok.clone(), failed.clone());
            tokio::spawn(async move {
                while Instant::now() < until {
                    let left = until.saturating_duration_since(Instant::now());
                    match client.get_locations().deadline(left).await {
                        Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                        // The run ends before the next slot: not a failure.
                        Err(e) if e.is_budget_unavailable() => break,
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.unwrap();
    }
    (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed))
}

/// governor's burst let about twice the limit into a sliding second; the
/// sliding log admits at most the limit in any second, and still uses the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_process_limiter_holds_the_sliding_second() {
    let _serial = SERIAL.lock().await;
    let limit = RateLimit::new(20, 10_000);
    let server = EnforcingStandIn::start(limit).await;
    let client = client(&server.base_url(), limit);
    let (ok, failed) = hammer(&client, 12, Duration::from_millis(3_050)).await;
    let stats = server.stats();
    assert_eq!(stats.rejected, 0, "{stats:?}");
    assert_eq!(failed, 0);
    assert!(stats.max_per_second <= 20, "{stats:?}");
    // Three windows of 20 (a margin of 100 ms each) fit in the run: at least 85 %.
    assert!(stats.accepted >= 51, "{stats:?} ({ok} calls)");
}

/// The minute window: exactly the limit, then calls fail at once and say
/// when budget frees up, without reaching the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_process_limiter_holds_the_sliding_minute_and_fails_fast() {
    let _serial = SERIAL.lock().await;
    let limit = RateLimit::new(100, 30);
    let server = EnforcingStandIn::start(limit).await;
    let client = Client::builder(KEY)
        .base_url(server.base_url())
        .rate_limit(limit)
        .retry(RetryPolicy::none())
        .max_budget_wait(Duration::from_secs(5))
        .build()
        .unwrap();
    for _ in 0..29 {
        client.get_locations().await.unwrap(); // with the token exchange: 30
    }
    let started = Instant::now();
    let error = client.get_locations().await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "failed at once"
    );
    assert!(
        error.is_budget_unavailable() && error.is_rate_limited(),
        "{error}"
    );
    let free_in = error.retry_after().expect("says when");
    assert!(
        free_in > Duration::from_secs(55) && free_in <= Duration::from_secs(61),
        "{free_in:?}"
    );
    let stats = server.stats();
    assert_eq!((stats.accepted, stats.rejected), (30, 0), "{stats:?}");
}

/// A dropped or timed-out wait gives back what it reserved: the minute keeps
/// every slot no request used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_dropped_while_waiting_lose_no_budget() {
    let _serial = SERIAL.lock().await;
    let limit = RateLimit::new(2, 4);
    let server = EnforcingStandIn::start(limit).await;
    let client = client(&server.base_url(), limit);
    client.get_locations().await.unwrap(); // the token exchange and one call
    for _ in 0..10 {
        let dropped = tokio::time::timeout(Duration::from_millis(20), client.get_locations()).await;
        assert!(dropped.is_err(), "it had to wait for the next second");
    }
    // The two slots left in the minute are still there.
    client.get_locations().await.unwrap();
    client.get_locations().await.unwrap();
    let error = client
        .get_locations()
        .deadline(Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(error.is_budget_unavailable(), "{error}");
    let stats = server.stats();
    assert_eq!((stats.accepted, stats.rejected), (4, 0), "{stats:?}");
}

/// `Retry-After: 18446744073709551615` panicked ("overflow when adding
/// duration to instant"). Now the caller gets the value as sent, and the
/// client pauses at most MAX_SHARED_PAUSE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_of_2_pow_64_minus_1_neither_panics_nor_stops_the_client() {
    let _serial = SERIAL.lock().await;
    let server = EnforcingStandIn::start(RateLimit::NEXHEALTH_DEFAULT).await;
    let client = client(&server.base_url(), RateLimit::NEXHEALTH_DEFAULT);
    client.get_locations().await.unwrap();
    server.inject_429("18446744073709551615");
    let error = client.get_locations().await.unwrap_err();
    assert!(
        matches!(error, nexhealth_api::Error::RateLimited(_)),
        "{error}"
    );
    assert_eq!(error.retry_after(), Some(Duration::from_secs(u64::MAX)));
    let error = client
        .get_locations()
        .deadline(Duration::from_millis(200))
        .await
        .unwrap_err();
    let free_in = error.retry_after().expect("budget error says when");
    assert!(
        error.is_budget_unavailable() && free_in <= MAX_SHARED_PAUSE,
        "{error} {free_in:?}"
    );
    assert!(
        free_in > MAX_SHARED_PAUSE - Duration::from_secs(1),
        "{free_in:?}"
    );
    assert_eq!(server.stats().injected, 1);
}

/// `Duration::MAX` anywhere a duration is taken: no panic, the call works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duration_max_everywhere_does_not_panic() {
    let _serial = SERIAL.lock().await;
    let server = EnforcingStandIn::start(RateLimit::NEXHEALTH_DEFAULT).await;
    let client = Client::builder(KEY)
        .base_url(server.base_url())
        .timeout(Duration::MAX)
        .deadline(Duration::MAX)
        .max_budget_wait(Duration::MAX)
        .retry(RetryPolicy::default().with_max_retry_after(Duration::MAX))
        .build()
        .unwrap();
    client.get_locations().await.unwrap();
    client
        .get_locations()
        .timeout(Duration::MAX)
        .deadline(Duration::MAX)
        .await
        .unwrap();
    // And zero: refused as the caller's mistake before anything is sent,
    // never a panic.
    let error = client
        .get_locations()
        .deadline(Duration::ZERO)
        .await
        .unwrap_err();
    assert!(error.is_invalid_request(), "{error}");
}

/// The deadline bounds the whole call: attempts, backoff and `Retry-After` waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_bounds_retries_and_retry_after_waits() {
    let _serial = SERIAL.lock().await;
    let harness = nexhealth_contract_tests::Harness::start().await;
    harness.auth();
    let slow = harness.server.mock(|when, then| {
        when.method("GET").path("/locations");
        then.status(503)
            .header("retry-after", "2")
            .delay(Duration::from_millis(100));
    });
    let (client, _fallback) = harness.client_with(|b| {
        b.retry(
            RetryPolicy::default()
                .with_max_attempts(20)
                .with_backoff(Duration::from_millis(50), Duration::from_millis(50)),
        )
    });
    let started = Instant::now();
    let error = client
        .get_locations()
        .deadline(Duration::from_millis(600))
        .await
        .unwrap_err();
    // The first 503 asks for 2 s, past the deadline: its answer stands.
    assert!(error.is_server(), "{error}");
    assert!(
        started.elapsed() < Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
    slow.assert_calls(1);
}

/// A `Retry-After` over the policy's cap (30 s) but inside the deadline
/// (120 s) is handed to the caller at once, not waited out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_over_the_cap_comes_back_at_once() {
    let _serial = SERIAL.lock().await;
    let harness = nexhealth_contract_tests::Harness::start().await;
    harness.auth();
    let limited = harness.server.mock(|when, then| {
        when.method("GET").path("/locations");
        then.status(429).header("retry-after", "40");
    });
    let (client, _fallback) = harness.client_with(|b| b.no_rate_limit());
    let started = Instant::now();
    let error = client.get_locations().await.unwrap_err();
    assert_eq!(error.retry_after(), Some(Duration::from_secs(40)));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    limited.assert_calls(1);
}

/// The deadline covers the token exchange too, and an attempt past it is not sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_covers_the_token_exchange() {
    let _serial = SERIAL.lock().await;
    let harness = nexhealth_contract_tests::Harness::start().await;
    harness.server.mock(|when, then| {
        when.method("POST").path("/authenticates");
        then.status(201).delay(Duration::from_millis(800));
    });
    let (client, fallback) = harness.client();
    let started = Instant::now();
    let error = client
        .get_locations()
        .deadline(Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error}");
    assert!(started.elapsed() < Duration::from_millis(700));
    fallback.assert_calls(0);
}

/// On by default at NexHealth's limits; off when asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limiting_is_on_by_default_and_can_be_turned_off() {
    let _serial = SERIAL.lock().await;
    let server = EnforcingStandIn::start(RateLimit::NEXHEALTH_DEFAULT).await;
    let default = Client::builder(KEY)
        .base_url(server.base_url())
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let status = default.rate_limit_status().expect("a limiter by default");
    assert!(!status.shared);
    // A burst of 150 at once: 100 in the first second, the rest after it.
    let calls: Vec<_> = (0..150)
        .map(|_| {
            let client = default.clone();
            tokio::spawn(async move { client.get_locations().await.map(drop) })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let stats = server.stats();
    assert_eq!(stats.rejected, 0, "{stats:?}");
    assert!(stats.max_per_second <= 100, "{stats:?}");
    let off = Client::builder(KEY)
        .base_url(server.base_url())
        .no_rate_limit()
        .build()
        .unwrap();
    assert!(off.rate_limit_status().is_none());
}

/// The margin learns from slow answers: each grant is then counted later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_margin_learns_from_slow_answers() {
    let _serial = SERIAL.lock().await;
    let harness = nexhealth_contract_tests::Harness::start().await;
    harness.auth();
    harness.server.mock(|when, then| {
        when.method("GET").path("/locations");
        then.status(200)
            .header("content-type", "application/json")
            .json_body_obj(&nexhealth_api::mock::payloads::locations())
            .delay(Duration::from_millis(400));
    });
    let (client, _fallback) = harness.client();
    let before = client.rate_limit_status().unwrap().margin;
    assert_eq!(before, nexhealth_api::DEFAULT_WINDOW_MARGIN);
    client.get_locations().await.unwrap();
    let after = client.rate_limit_status().unwrap().margin;
    assert!(
        after >= Duration::from_millis(500) && after <= nexhealth_api::MAX_MARGIN,
        "{after:?}: a quarter more than the 400 ms answer"
    );
}

/// `divided_among` sizes a limiter for replicas without Redis.
#[test]
fn a_limit_divided_among_replicas() {
    let third = RateLimit::NEXHEALTH_DEFAULT.divided_among(3);
    assert_eq!((third.per_second.get(), third.per_minute.get()), (33, 666));
    let many = RateLimit::new(2, 3).divided_among(10);
    assert_eq!((many.per_second.get(), many.per_minute.get()), (1, 1));
    assert_eq!(RateLimit::new(2, 3).divided_among(0), RateLimit::new(2, 3));
}
