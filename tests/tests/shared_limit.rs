//! The rate limit shared through Redis: a real `redis-server` per test (Debian's
//! package; without it these tests fail and name it), a stand-in NexHealth that
//! enforces the limit over sliding windows and answers 429 beyond it, and
//! several clients (and, once, several OS processes) hammering it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use nexhealth_api::mock::{EnforcingStandIn, RedisServer};
use nexhealth_api::{CallExt, Client, RateLimit, RedisRateLimit, RetryPolicy};

const KEY: &str = "shared-limit-test-key-9f3";

/// One test at a time: each measures windows and waits on a 2-core machine,
/// so they do not share it with each other.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn redis() -> RedisServer {
    RedisServer::start().unwrap_or_else(|e| panic!("{e}"))
}

fn shared(redis_url: &str, limit: RateLimit) -> RedisRateLimit {
    RedisRateLimit::new(redis_url)
        .limit(limit)
        .redis_timeout(Duration::from_millis(200))
}

fn client(base: &str, limit: impl Into<nexhealth_api::RateLimiter>) -> Client {
    Client::builder(KEY)
        .base_url(base)
        .rate_limit(limit)
        .retry(RetryPolicy::none())
        .build()
        .unwrap()
}

/// Three clients of one shared budget, each falling back to a third of it.
fn replicas(server: &EnforcingStandIn, redis: &RedisServer, limit: RateLimit) -> Vec<Client> {
    (0..3)
        .map(|_| {
            client(
                &server.base_url(),
                shared(&redis.url(), limit).fallback_share(1.0 / 3.0),
            )
        })
        .collect()
}

/// Calls `GET /locations` on every client, `per_client` at a time, for `run`.
/// Answers (successes, failures).
async fn hammer(clients: &[Client], per_client: usize, run: Duration) -> (u64, u64) {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + run;
    let mut tasks = Vec::new();
    for client in clients {
        for _ in 0..per_client {
            let (client, ok, failed) = (client.clone(), ok.clone(), failed.clone());
            tasks.push(tokio::spawn(async move {
                while Instant::now() < until {
                    match client.get_locations().await {
                        Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed))
}

/// Three clients, one budget: never a 429, and the windows are used well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_sharing_redis_stay_inside_the_per_second_window() {
    let _serial = SERIAL.lock().await;
    let redis = redis();
    let limit = RateLimit::new(20, 10_000);
    let server = EnforcingStandIn::start(limit).await;
    let clients: Vec<Client> = (0..3)
        .map(|_| client(&server.base_url(), shared(&redis.url(), limit)))
        .collect();
    let (ok, failed) = hammer(&clients, 4, Duration::from_secs(3)).await;
    let stats = server.stats();
    assert_eq!(stats.rejected, 0, "{stats:?}");
    assert_eq!(failed, 0);
    assert!(stats.max_per_second <= 20, "{stats:?}");
    // The budget is used: some second held at least 90 % of the limit.
    assert!(stats.max_per_second >= 18, "{stats:?}");
    assert!(ok >= 45, "{ok} calls in 3 s at 20/s");
    for client in &clients {
        let status = client.rate_limit_status().unwrap();
        assert!(status.shared && !status.fallback_active && status.fallbacks == 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_sharing_redis_stay_inside_the_per_minute_window() {
    let _serial = SERIAL.lock().await;
    let redis = redis();
    let limit = RateLimit::new(100, 40);
    let server = EnforcingStandIn::start(limit).await;
    let clients: Vec<Client> = (0..3)
        .map(|_| client(&server.base_url(), shared(&redis.url(), limit)))
        .collect();
    // Calls wait for the minute window; their timeout ends the run.
    let calls: Vec<_> = futures::stream::iter(0..60)
        .map(|i| {
            let client = clients[i % 3].clone();
            async move { client.get_locations().timeout(Duration::from_secs(2)).await }
        })
        .buffer_unordered(12)
        .collect()
        .await;
    let stats = server.stats();
    assert_eq!(stats.rejected, 0, "{stats:?}");
    // 40 slots a minute, three token exchanges among them.
    assert_eq!(stats.accepted, 40, "{stats:?}");
    let timeouts = calls
        .iter()
        .filter(|c| matches!(c, Err(e) if e.is_timeout()))
        .count();
    assert_eq!(calls.iter().filter(|c| c.is_ok()).count(), 37);
    assert_eq!(
        timeouts, 23,
        "the rest waited for the budget until their timeout"
    );
}

/// The same load with each client limiting only itself: the server's 429s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_limiting_only_themselves_collect_429s() {
    let _serial = SERIAL.lock().await;
    let limit = RateLimit::new(20, 10_000);
    let server = EnforcingStandIn::start(limit).await;
    let clients: Vec<Client> = (0..3).map(|_| client(&server.base_url(), limit)).collect();
    let (_, failed) = hammer(&clients, 4, Duration::from_secs(2)).await;
    let stats = server.stats();
    assert!(stats.rejected > 0, "{stats:?}");
    assert!(failed > 0);
}

/// Several OS processes: this test binary, run again as replicas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_processes_share_one_budget() {
    let _serial = SERIAL.lock().await;
    const REPLICA: &str = "NEXHEALTH_TEST_REPLICA";
    if let Ok(spec) = std::env::var(REPLICA) {
        let (base, redis_url) = spec.split_once(' ').unwrap();
        let limit = RateLimit::new(20, 10_000);
        let clients = vec![client(base, shared(redis_url, limit))];
        let (_, failed) = hammer(&clients, 4, Duration::from_secs(3)).await;
        assert_eq!(failed, 0);
        return;
    }
    let redis = redis();
    let limit = RateLimit::new(20, 10_000);
    let server = EnforcingStandIn::start(limit).await;
    let children: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args(["replica_processes_share_one_budget", "--exact", "--quiet"])
                .env(REPLICA, format!("{} {}", server.base_url(), redis.url()))
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let clients = vec![client(&server.base_url(), shared(&redis.url(), limit))];
    let (_, failed) = hammer(&clients, 4, Duration::from_secs(3)).await;
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a replica failed");
    }
    let stats = server.stats();
    assert_eq!(failed, 0);
    assert_eq!(stats.rejected, 0, "{stats:?}");
    assert!((18..=20).contains(&stats.max_per_second), "{stats:?}");
}

/// Redis stopped mid-run: the fallback takes over with no error to callers;
/// restarted (empty, scripts gone): the limiter goes back to it by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_and_restarted() {
    let _serial = SERIAL.lock().await;
    let mut redis = redis();
    let limit = RateLimit::new(30, 10_000);
    let server = EnforcingStandIn::start(limit).await;
    let clients = replicas(&server, &redis, limit);
    let (_, failed) = hammer(&clients, 2, Duration::from_millis(1_500)).await;
    assert_eq!(failed, 0);
    redis.stop();
    let (during, failed) = hammer(&clients, 2, Duration::from_secs(2)).await;
    assert_eq!(failed, 0, "Redis down must not fail calls");
    assert!(during > 0);
    for client in &clients {
        let status = client.rate_limit_status().unwrap();
        assert!(
            status.fallback_active && status.fallbacks == 1,
            "{status:?}"
        );
    }
    redis.restart().unwrap();
    // Past the probe interval, every client is back on Redis.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (_, failed) = hammer(&clients, 2, Duration::from_millis(1_500)).await;
    assert_eq!(failed, 0);
    for client in &clients {
        let status = client.rate_limit_status().unwrap();
        assert!(!status.fallback_active, "{status:?}");
    }
    let stats = server.stats();
    assert_eq!(stats.rejected, 0, "{stats:?}");
    // The script was loaded again into the empty server.
    assert!(redis.command("SCRIPT EXISTS 0").is_ok());
}

/// A Redis that does not answer in time: each call waits at most the Redis
/// timeout, then the fallback admits it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_redis_costs_at_most_its_timeout() {
    let _serial = SERIAL.lock().await;
    let redis = redis();
    let server = EnforcingStandIn::start(RateLimit::NEXHEALTH_DEFAULT).await;
    let client = client(
        &server.base_url(),
        shared(&redis.url(), RateLimit::NEXHEALTH_DEFAULT)
            .redis_timeout(Duration::from_millis(100)),
    );
    client.get_locations().await.unwrap();
    let url = redis.url();
    let port = redis.port();
    let sleeper = std::thread::spawn(move || {
        let _ = url;
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        use std::io::{Read, Write};
        stream.write_all(b"DEBUG SLEEP 1.5\r\n").unwrap();
        let mut reply = [0u8; 5];
        let _ = stream.read(&mut reply);
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    client.get_locations().await.unwrap();
    // The Redis timeout, then the fallback's first window (one second and its margin).
    assert!(
        started.elapsed() < Duration::from_millis(1_400),
        "{:?}",
        started.elapsed()
    );
    assert!(client.rate_limit_status().unwrap().fallback_active);
    sleeper.join().unwrap();
}

/// A "Redis" that answers garbage, and one that is not there at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_answering_garbage_or_absent_falls_back() {
    let _serial = SERIAL.lock().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let garbage_port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = socket
                    .write_all(b"%%\x00\xffnot redis at all\r\n$-7\r\n")
                    .await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            });
        }
    });
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = EnforcingStandIn::start(RateLimit::NEXHEALTH_DEFAULT).await;
    for port in [garbage_port, closed_port] {
        let client = client(
            &server.base_url(),
            shared(
                &format!("redis://127.0.0.1:{port}/"),
                RateLimit::NEXHEALTH_DEFAULT,
            ),
        );
        for _ in 0..3 {
            client.get_locations().await.unwrap();
        }
        let status = client.rate_limit_status().unwrap();
        assert!(
            status.fallback_active && status.fallbacks == 1,
            "{port}: {status:?}"
        );
    }
}

/// A 429 seen by one client pauses all of them: one shared pause, not one
/// discovery per client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_pauses_every_client_once() {
    let _serial = SERIAL.lock().await;
    let redis = redis();
    let mock = httpmock::MockServer::start_async().await;
    mock.mock(|when, then| {
        when.method("POST").path("/authenticates");
        then.status(201)
            .header("content-type", "application/json")
            .json_body_obj(&nexhealth_api::mock::payloads::authenticate());
    });
    // The first request to /locations opens a one-second storm of 429s.
    let storm_started: Arc<std::sync::Mutex<Option<Instant>>> = Default::default();
    let storm_429s = Arc::new(AtomicU64::new(0));
    let (started, count) = (storm_started.clone(), storm_429s.clone());
    mock.mock(move |when, then| {
        when.method("GET").path("/locations");
        then.respond_with(move |_: &httpmock::HttpMockRequest| {
            let mut start = started.lock().unwrap();
            let now = Instant::now();
            let begun = *start.get_or_insert(now);
            let body = |status: u16| {
                httpmock::HttpMockResponse::builder()
                    .status(status)
                    .header("content-type", "application/json")
            };
            if now.duration_since(begun) < Duration::from_secs(1) {
                count.fetch_add(1, Ordering::Relaxed);
                body(429)
                    .header("retry-after", "1")
                    .body(
                        serde_json::to_string(&nexhealth_api::mock::payloads::error(429)).unwrap(),
                    )
                    .build()
            } else {
                body(200)
                    .body(
                        serde_json::to_string(&nexhealth_api::mock::payloads::locations()).unwrap(),
                    )
                    .build()
            }
        });
    });
    let limit = RateLimit::new(50, 10_000);
    // No retries: a task that gets a 429 goes straight on to its next call.
    let clients: Vec<Client> = (0..3)
        .map(|_| client(&mock.base_url(), shared(&redis.url(), limit)))
        .collect();
    // Three clients, three calls in flight each, for two seconds.
    let (ok, failed) = hammer(&clients, 3, Duration::from_secs(2)).await;
    let seen = storm_429s.load(Ordering::Relaxed);
    // Only the calls in flight when the storm began saw a 429; every other
    // call waited out the one shared pause (without it, each task would
    // collect a 429 every few milliseconds for a whole second).
    assert!((1..=9).contains(&seen), "{seen} responses with 429");
    assert_eq!(failed, seen);
    assert!(ok > 9);
}

/// Waiting for the budget counts against the call's timeout, and a call
/// dropped while it waits takes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_wait_respects_timeout_and_cancellation() {
    let _serial = SERIAL.lock().await;
    let redis = redis();
    let limit = RateLimit::new(2, 10_000);
    let server = EnforcingStandIn::start(limit).await;
    let client = client(&server.base_url(), shared(&redis.url(), limit));
    client.get_locations().await.unwrap(); // the token exchange and one call: the second is full
    let started = Instant::now();
    let error = client
        .get_locations()
        .timeout(Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    // Dropped while waiting: it took no slot, so the next call gets the one
    // that frees up first.
    let dropped = tokio::time::timeout(Duration::from_millis(100), client.get_locations()).await;
    assert!(dropped.is_err());
    client.get_locations().await.unwrap();
    assert_eq!(server.stats().accepted, 3);
    assert_eq!(server.stats().rejected, 0);
}

/// The keys in Redis: a digest instead of the key, a prefix, and an expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keys_hold_no_api_key_and_expire() {
    let _serial = SERIAL.lock().await;
    let redis = redis();
    let server = EnforcingStandIn::start(RateLimit::NEXHEALTH_DEFAULT).await;
    let client = client(
        &server.base_url(),
        shared(&redis.url(), RateLimit::NEXHEALTH_DEFAULT).prefix("acme-svc:nh"),
    );
    client.get_locations().await.unwrap();
    let mut connection = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}"); // the two windows; no pause was set
    for key in &keys {
        assert!(!key.contains(KEY), "{key}");
        assert!(key.starts_with("acme-svc:nh:{"), "{key}");
        let ttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut connection)
            .await
            .unwrap();
        assert!(ttl > 0 && ttl <= 61_050, "{key}: {ttl}");
    }
    // And nothing about the key or the URL in Debug output.
    let debug = format!("{:?}", RedisRateLimit::new("redis://:hunter2@127.0.0.1:1/"));
    assert!(!debug.contains("hunter2"), "{debug}");
}

/// Redis goes away when the fleet has spent its minute budget: the fallback
/// starts from each replica's share of what Redis last reported, so it spends
/// nothing more until that budget frees up, and NexHealth sees no 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fallback_does_not_spend_what_the_fleet_already_spent() {
    let _serial = SERIAL.lock().await;
    let mut redis = redis();
    let limit = RateLimit::new(100, 30);
    let server = EnforcingStandIn::start(limit).await;
    let clients = replicas(&server, &redis, limit);
    // Spend the minute: 3 token exchanges and 27 calls.
    for i in 0..27 {
        clients[i % 3].get_locations().await.unwrap();
    }
    redis.stop();
    for client in &clients {
        let error = client
            .get_locations()
            .timeout(Duration::from_millis(1_500))
            .await
            .unwrap_err();
        assert!(error.is_timeout(), "{error:?}");
        assert!(client.rate_limit_status().unwrap().fallback_active);
    }
    let stats = server.stats();
    assert_eq!(stats.accepted, 30, "{stats:?}");
    assert_eq!(stats.rejected, 0, "{stats:?}");
}
