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
    // Back, and empty: while the replicas hand back what they handled, a
    // claim answers 503; then event 9 is still a duplicate everywhere.
    tokio::time::sleep(RedisStore::RESTORING_WINDOW + Duration::from_millis(700)).await;
    for (attempt, store) in replicas.iter().enumerate() {
        let again = handled_by(
            &receiver,
            store,
            &delivery(&event(9), 5 + attempt, 0),
            &count,
        )
        .await;
        assert_eq!(again.kind(), "duplicate");
    }
    let back = handled_by(&receiver, &replicas[1], &delivery(&event(10), 1, 0), &count).await;
    assert_eq!(back.kind(), "handled");
    let again = handled_by(&receiver, &replicas[0], &delivery(&event(10), 2, 0), &count).await;
    assert_eq!(again.kind(), "duplicate");
    assert_eq!(count.load(Ordering::SeqCst), 2);
    // The keys hold the identity's digest, not the body; they expire.
    let keys = redis.command("KEYS *").unwrap();
    assert!(
        keys.lines()
            .all(|k| k.starts_with("{nexhealth-api:webhook}:")),
        "{keys}"
    );
    assert!(!keys.contains("acme"));
    let key = keys.lines().find(|k| !k.ends_with(":epoch")).unwrap();
    let ttl: i64 = redis
        .command(&format!("PTTL {key}"))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        ttl > (49 + 48) * 3_600_000,
        "kept for the maximum age past NexHealth's 48 h of retries: {ttl}"
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

/// A signed delivery of `value` dated `timestamp`.
fn signed_at(value: &Value, timestamp: chrono::DateTime<Utc>) -> (HeaderMap, Vec<u8>) {
    let body = serde_json::to_vec(value).unwrap();
    let timestamp = timestamp.to_rfc3339();
    let mut headers = HeaderMap::new();
    headers.insert(TIMESTAMP_HEADER, timestamp.parse().unwrap());
    headers.insert(
        SIGNATURE_HEADER,
        sign(SECRET, &timestamp, &body).parse().unwrap(),
    );
    (headers, body)
}

/// A copy signed later verifies for longer than the first: the store keeps
/// the identity for the maximum age past NexHealth's 48 h of retries, and a
/// duplicate extends it. Time is controlled: the receiver is told `now`, the
/// store runs on tokio's paused clock, advanced by the same amounts.
#[tokio::test(start_paused = true)]
async fn every_copy_that_still_verifies_is_a_duplicate() {
    let t0 = Utc::now();
    let at = |s: f64| t0 + chrono::Duration::milliseconds((s * 1000.0) as i64);
    let runs = AtomicU64::new(0);
    let handle = |receiver: Receiver, store: MemoryStore, copy: (HeaderMap, Vec<u8>), now| {
        let runs = &runs;
        async move {
            receiver
                .handle_at(&store, &copy.0, &copy.1, now, |_| async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    Ok::<(), ()>(())
                })
                .await
                .kind()
        }
    };
    // A short maximum age, chosen explicitly.
    let short = Receiver::new(SECRET)
        .unwrap()
        .max_age_below_retry_horizon(Duration::from_secs(1));
    let store = MemoryStore::default();
    let first = signed_at(&event(20), at(0.0));
    assert_eq!(
        handle(short.clone(), store.clone(), first, at(0.0)).await,
        "handled"
    );
    tokio::time::advance(Duration::from_millis(303_000)).await;
    let later = signed_at(&event(20), at(302.5));
    assert_eq!(
        handle(short.clone(), store.clone(), later, at(303.0)).await,
        "duplicate"
    );
    // With the defaults: a retry signed at 47 h, arriving at 50 h.
    let receiver = Receiver::new(SECRET).unwrap();
    let store = MemoryStore::default();
    let first = signed_at(&event(21), at(0.0));
    assert_eq!(
        handle(receiver.clone(), store.clone(), first, at(0.0)).await,
        "handled"
    );
    let hour = 3_600.0;
    tokio::time::advance(Duration::from_secs(50 * 3_600)).await;
    let retry = signed_at(&event(21), at(47.0 * hour));
    assert_eq!(
        handle(
            receiver.clone(),
            store.clone(),
            retry.clone(),
            at(50.0 * hour)
        )
        .await,
        "duplicate"
    );
    // That duplicate pushed the keep time on: at 96 h (over 97 h 5 min
    // after the first handling only if extended) it is still remembered.
    tokio::time::advance(Duration::from_secs(46 * 3_600)).await;
    let copy = signed_at(&event(21), at(95.5 * hour));
    assert_eq!(
        handle(receiver.clone(), store.clone(), copy, at(96.0 * hour)).await,
        "duplicate"
    );
    // A copy too old to verify is refused, not handled.
    assert_eq!(
        handle(receiver.clone(), store.clone(), retry, at(96.5 * hour)).await,
        "too_old"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[test]
fn a_max_age_under_the_retry_horizon_is_refused_unless_chosen() {
    let refused = Receiver::new(SECRET)
        .unwrap()
        .max_age(Duration::from_secs(3_600))
        .unwrap_err();
    let message = refused.to_string();
    assert!(
        message.contains("48 h") && message.contains("max_age_below_retry_horizon"),
        "{message}"
    );
    assert!(
        Receiver::new(SECRET)
            .unwrap()
            .max_age(Duration::from_secs(48 * 3_600))
            .is_ok()
    );
}

/// Under RawBody the `timestamp` header is not signed: a delivery captured
/// 60 h ago and replayed with the header rewritten to now is too old by its
/// signed `event_time`; one with no `event_time` cannot be dated.
#[tokio::test]
async fn raw_body_ages_by_the_signed_event_time_not_the_header() {
    use nexhealth_api::webhooks::Scheme;
    use nexhealth_api::webhooks::signature::sign_with;
    let receiver = Receiver::new(SECRET).unwrap().scheme(Scheme::RawBody);
    let raw = |value: &Value| {
        let body = serde_json::to_vec(value).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(TIMESTAMP_HEADER, Utc::now().to_rfc3339().parse().unwrap());
        headers.insert(
            "x-nexhealth-signature",
            sign_with(Scheme::RawBody, SECRET, "", &body)
                .parse()
                .unwrap(),
        );
        (headers, body)
    };
    let mut captured = event(22);
    captured["event_time"] = json!((Utc::now() - chrono::Duration::hours(60)).to_rfc3339());
    let count = AtomicU64::new(0);
    let store = MemoryStore::default();
    let replayed = handled_by(&receiver, &store, &raw(&captured), &count).await;
    assert_eq!(replayed.kind(), "too_old");
    assert!(replayed.to_string_lossy().contains("event_time"));
    let mut undated = event(23);
    undated.as_object_mut().unwrap().remove("event_time");
    assert_eq!(
        handled_by(&receiver, &store, &raw(&undated), &count)
            .await
            .kind(),
        "no_signed_time"
    );
    let mut fresh = event(24);
    fresh["event_time"] = json!(Utc::now().to_rfc3339());
    assert_eq!(
        handled_by(&receiver, &store, &raw(&fresh), &count)
            .await
            .kind(),
        "handled"
    );
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

trait Lossy {
    fn to_string_lossy(&self) -> String;
}

impl<E> Lossy for Outcome<E> {
    fn to_string_lossy(&self) -> String {
        match self {
            Outcome::Rejected(rejection) => rejection.to_string(),
            other => other.kind().to_string(),
        }
    }
}

/// A full MemoryStore never runs a handler twice and never answers 2xx for
/// what it neither handled nor remembers; running handlers keep their claims.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_memory_store_loses_nothing() {
    let receiver = Arc::new(Receiver::new(SECRET).unwrap());
    let store = MemoryStore::with_capacity(1_000);
    let runs: Arc<Vec<AtomicU64>> = Arc::new((0..5_000).map(|_| AtomicU64::new(0)).collect());
    let run = |n: usize, attempt: usize| {
        let (receiver, store, runs) = (receiver.clone(), store.clone(), runs.clone());
        async move {
            let copy = delivery(&numbered(n), attempt, 0);
            receiver
                .handle(&store, &copy.0, &copy.1, |_| async move {
                    runs[n].fetch_add(1, Ordering::SeqCst);
                    Ok::<(), ()>(())
                })
                .await
                .kind()
        }
    };
    let mut handled = vec![false; 5_000];
    for (n, handled) in handled.iter_mut().enumerate() {
        match run(n, 0).await {
            "handled" => *handled = true,
            "store_unavailable" => {}
            other => panic!("event {n}: {other}"),
        }
    }
    for n in (0..100).chain(4_900..5_000) {
        let kind = run(n, 1).await;
        match kind {
            "duplicate" => assert!(handled[n], "event {n}: 200 for an event never handled"),
            "store_unavailable" => assert!(!handled[n], "event {n} forgotten"),
            other => panic!("event {n}: {other}"),
        }
    }
    for (n, count) in runs.iter().enumerate() {
        assert!(count.load(Ordering::SeqCst) <= 1, "event {n} handled twice");
    }
    // 50 handlers still running while 3,000 other events pass.
    let store = MemoryStore::with_capacity(1_000);
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let ran = Arc::new(AtomicU64::new(0));
    let running: Vec<_> = (0..50)
        .map(|n| {
            let (receiver, store, gate, ran) =
                (receiver.clone(), store.clone(), gate.clone(), ran.clone());
            tokio::spawn(async move {
                let copy = delivery(&numbered(10_000 + n), 0, 0);
                receiver
                    .handle(&store, &copy.0, &copy.1, |_| async move {
                        ran.fetch_add(1, Ordering::SeqCst);
                        let _ = gate.acquire().await;
                        Ok::<(), ()>(())
                    })
                    .await
                    .kind()
            })
        })
        .collect();
    while ran.load(Ordering::SeqCst) < 50 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for n in 0..3_000 {
        let copy = delivery(&numbered(20_000 + n), 0, 0);
        let _ = receiver
            .handle(&store, &copy.0, &copy.1, |_| async { Ok::<(), ()>(()) })
            .await;
    }
    for n in 0..50 {
        let copy = delivery(&numbered(10_000 + n), 1, 0);
        let kind = receiver
            .handle(&store, &copy.0, &copy.1, |_| async { Ok::<(), ()>(()) })
            .await
            .kind();
        assert_eq!(kind, "in_progress", "running handler {n} lost its claim");
    }
    gate.add_permits(50);
    for task in running {
        assert_eq!(task.await.unwrap(), "handled");
    }
    assert_eq!(ran.load(Ordering::SeqCst), 50);
}

fn numbered(n: usize) -> Value {
    json!({"event_name": "sync_status_read_change", "subdomain": "acme",
           "event_time": "2026-08-14T10:00:01Z", "data": {"n": n}})
}

/// A handling dropped by its caller gives its claim back: the retry 300 ms
/// later runs the handler, in memory and through Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_handling_gives_its_claim_back() {
    let redis = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let receiver = Receiver::new(SECRET).unwrap();
    async fn drop_then_retry<S: HandledStore>(receiver: &Receiver, store: &S) {
        let copy = delivery(&event(30), 0, 0);
        let slow = receiver.handle(store, &copy.0, &copy.1, |_| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok::<(), ()>(())
        });
        assert!(
            tokio::time::timeout(Duration::from_millis(100), slow)
                .await
                .is_err()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        let count = AtomicU64::new(0);
        let retry = handled_by(receiver, store, &delivery(&event(30), 1, 0), &count).await;
        assert_eq!(retry.kind(), "handled");
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }
    drop_then_retry(&receiver, &MemoryStore::default()).await;
    drop_then_retry(&receiver, &RedisStore::new(&redis.url()).unwrap()).await;
}

/// Three replicas on one Redis handle 12 events; Redis is killed and
/// restarted empty; NexHealth's retries of all 12, signed anew and sent to
/// other replicas, are 12 duplicates, a few seconds after the restart and
/// again later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_still_knows_every_handled_event() {
    let mut redis = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let receiver = Receiver::new(SECRET).unwrap();
    let replicas: Vec<RedisStore> = (0..3)
        .map(|_| RedisStore::new(&redis.url()).unwrap())
        .collect();
    let count = AtomicU64::new(0);
    for n in 0..12u32 {
        let outcome = handled_by(
            &receiver,
            &replicas[n as usize % 3],
            &delivery(&event(40 + n), 0, 0),
            &count,
        )
        .await;
        assert_eq!(outcome.kind(), "handled");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    redis.stop();
    redis.restart().unwrap();
    for (round, wait) in [(1, Duration::from_secs(3)), (2, Duration::from_secs(3))] {
        tokio::time::sleep(wait).await;
        let mut kinds = Vec::new();
        for n in 0..12u32 {
            let other = &replicas[(n as usize + round) % 3];
            kinds.push(
                handled_by(
                    &receiver,
                    other,
                    &delivery(&event(40 + n), round, 0),
                    &count,
                )
                .await
                .kind(),
            );
        }
        assert_eq!(kinds, ["duplicate"; 12], "round {round}");
    }
    assert_eq!(count.load(Ordering::SeqCst), 12);
}
