//! Each logical event handled once: retries with new timestamps, signatures,
//! `delivery_errors` and JSON serializations; a handler that fails; two
//! deliveries at the same instant; replays; two replicas sharing a real
//! `redis-server`, and that Redis gone mid-way.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use nexhealth_api::mock::RedisServer;
use nexhealth_api::reqwest::header::HeaderMap;
use nexhealth_api::webhooks::handle::Outcome;
use nexhealth_api::webhooks::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use nexhealth_api::webhooks::{Event, HandledStore, MemoryStore, Receiver, RedisStore, Rejection};
use serde_json::{Value, json};

const SECRET: &str = "handling-test-secret";

/// A delivery of `event` as NexHealth would send attempt `attempt`: signed
/// now (shifted by `skew_s`), with `attempt` delivery errors, serialized
/// compactly on even attempts and pretty with keys reversed on odd ones.
fn delivery(event: &Value, attempt: usize, skew_s: i64) -> (HeaderMap, Vec<u8>) {
    let mut value = event.clone();
    value["delivery_errors"] = json!(
        (0..attempt)
            .map(|i| json!({"attempt": i + 1, "status": 500}))
            .collect::<Vec<_>>()
    );
    let body = if attempt.is_multiple_of(2) {
        serde_json::to_vec(&value).unwrap()
    } else {
        let Value::Object(map) = value else {
            unreachable!()
        };
        let reversed: Vec<String> = map
            .iter()
            .rev()
            .map(|(k, v)| format!("\n  {}: {}", serde_json::to_string(k).unwrap(), v))
            .collect();
        format!("{{{}\n}}", reversed.join(",")).into_bytes()
    };
    let timestamp = (Utc::now() + chrono::Duration::seconds(skew_s)).to_rfc3339();
    let mut headers = HeaderMap::new();
    headers.insert(TIMESTAMP_HEADER, timestamp.parse().unwrap());
    headers.insert(
        SIGNATURE_HEADER,
        sign(SECRET, &timestamp, &body).parse().unwrap(),
    );
    (headers, body)
}

fn event(n: u32) -> Value {
    json!({"event_name": "sync_status_read_change", "subdomain": "acme", "event_time": "2026-08-14T10:00:01Z",
           "data": {"sync_status": {"read_status": "green", "read_status_at": format!("2026-08-14T10:00:{n:02}Z"),
                                    "locations": [{"id": 7}]}}})
}

async fn handled_by<S: HandledStore>(
    receiver: &Receiver,
    store: &S,
    (headers, body): &(HeaderMap, Vec<u8>),
    count: &AtomicU64,
) -> Outcome<String> {
    receiver
        .handle(store, headers, body, |event: Event| async move {
            assert!(matches!(event, Event::SyncStatusReadChange(_)));
            count.fetch_add(1, Ordering::SeqCst);
            Ok::<(), String>(())
        })
        .await
}

#[tokio::test]
async fn retries_reserialized_with_new_signatures_are_handled_once() {
    let receiver = Receiver::new(SECRET).unwrap();
    let store = MemoryStore::default();
    let count = AtomicU64::new(0);
    for attempt in 0..4 {
        let outcome = handled_by(&receiver, &store, &delivery(&event(1), attempt, 0), &count).await;
        assert_eq!(
            outcome.status(),
            200,
            "attempt {attempt}: {}",
            outcome.kind()
        );
        let expected = if attempt == 0 { "handled" } else { "duplicate" };
        assert_eq!(outcome.kind(), expected);
        assert!(outcome.verified());
    }
    assert_eq!(count.load(Ordering::SeqCst), 1);
    // Another event is handled too.
    handled_by(&receiver, &store, &delivery(&event(2), 0, 0), &count).await;
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_handler_that_fails_first_runs_again_on_the_retry_once() {
    let receiver = Receiver::new(SECRET).unwrap();
    let store = MemoryStore::default();
    let runs = AtomicU64::new(0);
    let attempt = |n: usize| {
        let delivery = delivery(&event(3), n, 0);
        let receiver = &receiver;
        let store = &store;
        let runs = &runs;
        async move {
            receiver
                .handle(store, &delivery.0, &delivery.1, |_| async move {
                    let run = runs.fetch_add(1, Ordering::SeqCst);
                    if run == 0 {
                        Err("the database was down")
                    } else {
                        Ok(())
                    }
                })
                .await
        }
    };
    let first = attempt(0).await;
    assert!(matches!(
        first,
        Outcome::HandlerFailed(_, "the database was down")
    ));
    assert_eq!(first.status(), 500, "retryable: NexHealth sends it again");
    assert_eq!(attempt(1).await.kind(), "handled");
    assert_eq!(attempt(2).await.kind(), "duplicate");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_deliveries_at_the_same_instant_one_handles_the_other_retries() {
    let receiver = Arc::new(Receiver::new(SECRET).unwrap());
    let store = Arc::new(MemoryStore::default());
    let runs = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let tasks: Vec<_> = (0..2)
        .map(|i| {
            let (receiver, store, runs, barrier) = (
                receiver.clone(),
                store.clone(),
                runs.clone(),
                barrier.clone(),
            );
            tokio::spawn(async move {
                let (headers, body) = delivery(&event(4), i, 0);
                barrier.wait().await;
                receiver
                    .handle(&*store, &headers, &body, |_| async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        Ok::<(), String>(())
                    })
                    .await
                    .kind()
            })
        })
        .collect();
    let mut kinds = Vec::new();
    for task in tasks {
        kinds.push(task.await.unwrap());
    }
    kinds.sort();
    assert_eq!(kinds, ["handled", "in_progress"]);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // The one that answered 503 comes back: a duplicate now.
    let count = AtomicU64::new(0);
    let again = handled_by(&receiver, &*store, &delivery(&event(4), 2, 0), &count).await;
    assert_eq!(again.kind(), "duplicate");
    assert_eq!(count.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn replays_are_refused_by_default_once_a_store_is_used() {
    let receiver = Receiver::new(SECRET).unwrap();
    let store = MemoryStore::default();
    let count = AtomicU64::new(0);
    // 25 years old, replayed 1,000 times.
    let old = delivery(&event(5), 0, -25 * 365 * 24 * 3_600);
    for _ in 0..1_000 {
        let outcome = handled_by(&receiver, &store, &old, &count).await;
        assert!(matches!(
            outcome,
            Outcome::Rejected(Rejection::TooOld { .. })
        ));
        assert_eq!(outcome.status(), 401);
        assert!(!outcome.verified());
    }
    // Clock skew: four minutes ahead is fine, ten is not.
    assert_eq!(
        handled_by(&receiver, &store, &delivery(&event(6), 0, 240), &count)
            .await
            .kind(),
        "handled"
    );
    assert_eq!(
        handled_by(&receiver, &store, &delivery(&event(7), 0, 600), &count)
            .await
            .kind(),
        "from_the_future"
    );
    // A byte-for-byte replay of a handled delivery is a duplicate.
    let fresh = delivery(&event(8), 0, 0);
    assert_eq!(
        handled_by(&receiver, &store, &fresh, &count).await.kind(),
        "handled"
    );
    assert_eq!(
        handled_by(&receiver, &store, &fresh, &count).await.kind(),
        "duplicate"
    );
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

/// Two replicas share Redis: a retry landing on the other replica is a
/// duplicate. Redis gone: 503 and the handler does not run (nothing lost,
/// NexHealth retries); back: the retry is handled, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_redis_handle_once_and_lose_nothing_when_it_is_gone() {
    let mut redis = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let receiver = Receiver::new(SECRET).unwrap();
    let replicas = [
        RedisStore::new(&redis.url()).unwrap(),
        RedisStore::new(&redis.url()).unwrap(),
    ];
    let count = AtomicU64::new(0);
    for attempt in 0..4 {
        let store = &replicas[attempt % 2];
        let outcome = handled_by(&receiver, store, &delivery(&event(9), attempt, 0), &count).await;
        assert_eq!(outcome.status(), 200);
    }
    assert_eq!(count.load(Ordering::SeqCst), 1);

    redis.stop();
    let down = handled_by(&receiver, &replicas[0], &delivery(&event(10), 0, 0), &count).await;
    assert!(
        matches!(down, Outcome::StoreUnavailable(_)),
        "{}",
        down.kind()
    );
    assert_eq!(down.status(), 503);
    assert_eq!(count.load(Ordering::SeqCst), 1, "the handler did not run");
    redis.restart().unwrap();
    let back = handled_by(&receiver, &replicas[1], &delivery(&event(10), 1, 0), &count).await;
    assert_eq!(back.kind(), "handled");
    let again = handled_by(&receiver, &replicas[0], &delivery(&event(10), 2, 0), &count).await;
    assert_eq!(again.kind(), "duplicate");
    assert_eq!(count.load(Ordering::SeqCst), 2);
    // The keys hold the identity's digest, not the body; they expire.
    let keys = redis.command("KEYS *").unwrap();
    assert!(keys.starts_with("nexhealth-api:webhook:"), "{keys}");
    assert!(!keys.contains("acme"));
    let ttl: i64 = redis
        .command(&format!("PTTL {}", keys.lines().next().unwrap()))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        ttl > 48 * 3_600_000,
        "kept past NexHealth's 48 h of retries: {ttl}"
    );
}

/// Two replicas (two stores on one Redis) receive the same event at the same
/// instant: one handles it, the other answers 503 and, retried, is a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_at_the_same_instant_through_redis() {
    let redis = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let receiver = Arc::new(Receiver::new(SECRET).unwrap());
    let runs = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let tasks: Vec<_> = (0..2)
        .map(|i| {
            let store = RedisStore::new(&redis.url()).unwrap();
            let (receiver, runs, barrier) = (receiver.clone(), runs.clone(), barrier.clone());
            tokio::spawn(async move {
                let (headers, body) = delivery(&event(11), i, 0);
                barrier.wait().await;
                let kind = receiver
                    .handle(&store, &headers, &body, |_| async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        Ok::<(), String>(())
                    })
                    .await
                    .kind();
                (kind, store)
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let mut kinds: Vec<_> = results.iter().map(|(k, _)| *k).collect();
    kinds.sort();
    assert_eq!(kinds, ["handled", "in_progress"]);
    let count = AtomicU64::new(0);
    for (_, store) in &results {
        let again = handled_by(&receiver, store, &delivery(&event(11), 3, 0), &count).await;
        assert_eq!(again.kind(), "duplicate");
    }
    assert_eq!(
        runs.load(Ordering::SeqCst) + count.load(Ordering::SeqCst),
        1
    );
}

/// Through Redis, a failed handler releases its claim at once: the retry
/// (well inside the lease) runs it, once. The store's Debug hides the URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_redis_a_failed_handler_is_run_again_by_the_retry() {
    let redis = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let receiver = Receiver::new(SECRET).unwrap();
    let store = RedisStore::new(&format!("redis://:hunter2@127.0.0.1:{}/", redis.port()));
    // A password the server does not ask for is refused by Redis: use the plain URL.
    assert!(!format!("{:?}", store.unwrap()).contains("hunter2"));
    let store = RedisStore::new(&redis.url()).unwrap();
    let runs = AtomicU64::new(0);
    for (attempt, expected) in ["handler_failed", "handled", "duplicate"]
        .iter()
        .enumerate()
    {
        let (headers, body) = delivery(&event(12), attempt, 0);
        let outcome = receiver
            .handle(&store, &headers, &body, |_| async {
                let run = runs.fetch_add(1, Ordering::SeqCst);
                if run == 0 {
                    Err("first run fails")
                } else {
                    Ok(())
                }
            })
            .await;
        assert_eq!(outcome.kind(), *expected, "attempt {attempt}");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}
